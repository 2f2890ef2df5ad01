@testable import DESServer
import Foundation
import Testing

@Suite("Percent-decoding of request paths") struct PercentDecodingTests {
    @Test("Decodes as Foundation's removingPercentEncoding does, malformed and non-UTF-8 input included")
    func sameAsFoundation() {
        let inputs = [
            "", "plain", "DES_20261206_(4BE7E46600B5_31)", "DES_20261206_%284BE7E46600B5_31%29", "%28%29", "a%2Fb", "a%2fb", "%",
            "%2", "%2G", "%G2", "abc%", "abc%4", "r%20%C3%A9.txt", "%C3%A9%E2%82%AC%F0%9F%98%80", "%C3", "%E2%82", "%FF", "%C0%AF",
            "%ED%A0%80", "%00", "100%25", "%25%32%35", "+", "a+b%2B", "日本", "%E6%97%A5%E6%9C%AC",
        ]
        for text in inputs {
            #expect(PercentDecoding.decode(text) == text.removingPercentEncoding, "\(text)")
        }
        // Every byte value, encoded: an ASCII one decodes to itself, as in Foundation; a lone
        // byte from 0x80 is never UTF-8, so nil (Foundation agrees, but for %A9, which it turns
        // into U+FFFD).
        for byte in 0...255 {
            let text = String(format: "x%%%02Xy", byte)
            if byte < 0x80 {
                #expect(PercentDecoding.decode(text) == text.removingPercentEncoding && PercentDecoding.decode(text)?.utf8.count == 3, "\(text)")
            } else {
                #expect(PercentDecoding.decode(text) == nil, "\(text)")
            }
        }
    }
}
