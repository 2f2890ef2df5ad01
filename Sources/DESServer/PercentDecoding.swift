/// Percent-decoding of a request path's parts (RFC 3986 §2.1), without Foundation's detour
/// through `NSString` (which showed in profiles of warm reads: DES names carry parentheses,
/// and many clients encode them).
enum PercentDecoding {
    /// `text` with every `%XX` replaced by its byte; nil when a `%` is not followed by two hex
    /// digits or the bytes are not UTF-8 (as Foundation's `removingPercentEncoding`). Text
    /// without a `%` is returned as it is.
    static func decode(_ text: String) -> String? {
        let utf8 = text.utf8
        guard utf8.contains(UInt8(ascii: "%")) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var i = utf8.startIndex
        while i != utf8.endIndex {
            let byte = utf8[i]
            i = utf8.index(after: i)
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                continue
            }
            guard i != utf8.endIndex, let high = hexValue(utf8[i]) else { return nil }
            i = utf8.index(after: i)
            guard i != utf8.endIndex, let low = hexValue(utf8[i]) else { return nil }
            i = utf8.index(after: i)
            out.append(high << 4 | low)
        }
        return String(validating: out, as: UTF8.self)
    }

    /// The value of one hex digit (either case), or nil.
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
