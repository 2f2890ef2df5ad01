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

@Suite("Credentials written into a connection's host or database")
struct ConnectionCredentialTests {
    static func yaml(host: String = "db.example", database: String = "files") -> String {
        """
        sources:
          - name: a
            connection: {type: postgresql, host: '\(host)', database: '\(database)', username: u}
            table: {name: files}
        """
    }

    @Test("A URL or user@host as host, a URL or libpq connection string as database: refused at the key, the password never repeated")
    func refused() throws {
        let cases: [(String, String, String)] = [
            (Self.yaml(host: "postgresql://postgres:S3cr3tPW@127.0.0.1:5432/x"), "host", "S3cr3tPW"),
            (Self.yaml(host: "postgres:S3cr3tPW@127.0.0.1"), "host", "S3cr3tPW"),
            (Self.yaml(database: "host=127.0.0.1 user=postgres password=S3cr3tPW"), "database", "S3cr3tPW"),
            (Self.yaml(database: "postgresql://u:S3cr3tPW@h/db"), "database", "S3cr3tPW"),
        ]
        for (text, key, secret) in cases {
            let error = try #require(stockError(text))
            #expect(error.keyPath.hasSuffix("connection.\(key)"), "\(error)")
            #expect(!"\(error)".contains(secret) && !error.message.contains(secret), "\(error)")
        }
        // A socket directory, an address, a plain name: accepted; and any path as SQLite's database.
        for text in [Self.yaml(host: "/var/run/postgresql"), Self.yaml(host: "::1"), Self.yaml(host: "db-1.internal", database: "my_db")] {
            #expect(throws: Never.self) { _ = try parseStock(text) }
        }
        #expect(throws: Never.self) { _ = try parseStock(sourceYAML().replacingOccurrences(of: "a.sqlite", with: "'data/a=b://c.sqlite'")) }
    }
}
