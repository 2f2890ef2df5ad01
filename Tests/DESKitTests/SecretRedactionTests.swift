import Testing

@testable import DESKit

@Suite("Secrets in text a server sends back")
struct SecretRedactionTests {
    @Test("Every secret made is redacted from text, the longest first; short values are left alone")
    func redacts() {
        _ = Secret("hunter2-Secret")
        _ = Secret("hunter2-Secret-longer")
        _ = Secret("abc")
        let echoed = "ERR unknown command 'AUTH', with args beginning with: 'hunter2-Secret-longer' and 'hunter2-Secret'; abc"
        #expect(SecretRedaction.redact(echoed) == "ERR unknown command 'AUTH', with args beginning with: '***' and '***'; abc")
        #expect(SecretRedaction.redact("nothing secret here") == "nothing secret here")
    }
}
