import DESKit
import Foundation
import Testing

@testable import DESPluginPostgreSQL

/// A refused login is an authentication failure (SQLSTATE class 28, not transient), naming the
/// server and the role, never the password. The test server trusts every loopback login, so no
/// wrong password can be refused live; a role that does not exist and a role that may not log in
/// are (28000), and libpq's message for a wrong password (28P01) is checked as libpq words it.
@Suite("PostgreSQL authentication failures")
struct PostgresAuthTests {
    static func settings() throws -> (host: String, port: Int, database: String) {
        let env = ProcessInfo.processInfo.environment
        let host = try #require(env["DES_TEST_PG_HOST"], "DES_TEST_PG_HOST is not set: start the test servers (scripts/test-servers.sh up)")
        let port = try #require(env["DES_TEST_PG_PORT"].flatMap(Int.init))
        return (host, port, try #require(env["DES_TEST_PG_DATABASE"]))
    }

    static func connect(as role: String, password: String) async throws -> SQLError? {
        let s = try settings()
        let config = ConnectionConfig(
            type: "postgresql", host: s.host, port: s.port, database: s.database, username: role, password: Secret(password), poolSize: 1)
        let (conninfo, target) = try PostgresPlugin.connectionString(config, what: "metadata")
        do {
            let c = try await PostgresConnection.connect(conninfo: conninfo, target: target)
            await c.close()
            return nil
        } catch let error as SQLError {
            return error
        }
    }

    @Test("A role that does not exist and a role that may not log in: authentication failures, not transient, naming server and role")
    func refusedRoles() async throws {
        let s = try Self.settings()
        let missing = "des_nobody_" + UUID().uuidString.prefix(8).lowercased()
        let secret = "pw-" + UUID().uuidString
        let error = try #require(await Self.connect(as: missing, password: secret), "an unknown role must be refused")
        #expect(error.isAuthenticationFailure && !error.isTransient && error.code == "28000", "\(error)")
        #expect(error.message.contains("authentication failed") && error.message.contains("\(s.host):\(s.port)/\(s.database)"), "\(error)")
        #expect(error.message.contains(missing) && !"\(error)".contains(secret))

        let nologin = "des_nologin_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try await PostgresConnection.connect(conninfo: try testServer(), target: "test server")
        _ = try await admin.withSession { try $0.execute("CREATE ROLE \(nologin) NOLOGIN PASSWORD 'irrelevant'") }
        let attempt = try? await Self.connect(as: nologin, password: secret)
        _ = try await admin.withSession { try $0.execute("DROP ROLE IF EXISTS \(nologin)") }
        await admin.close()
        let refused = try #require(attempt ?? nil, "a NOLOGIN role must be refused")
        #expect(refused.isAuthenticationFailure && !refused.isTransient, "\(refused)")
        #expect(refused.message.contains("not permitted to log in") && !"\(refused)".contains(secret))
        // The metadata store fails at once with it, rather than retrying a refused login for seconds.
        let config = ConnectionConfig(
            type: "postgresql", host: s.host, port: s.port, database: s.database, username: missing, password: Secret(secret), poolSize: 1)
        let registry = PluginRegistry()
        PostgresPlugin.register(in: registry)
        do {
            _ = try await registry.makeMetadataStore(config, baseDirectory: ".")
            Issue.record("the store must not open")
        } catch let error as SQLError {
            #expect(error.isAuthenticationFailure && !"\(error)".contains(secret))
        }
    }

    @Test("libpq's messages for refused logins are recognized; a refused connection is not one")
    func classifier() {
        let cases: [(String, Bool, String?)] = [
            (#"connection to server at "db" (10.0.0.1), port 5432 failed: FATAL: password authentication failed for user "app""#, false, "28P01"),
            (#"connection to server at "db", port 5432 failed: fe_sendauth: no password supplied"#, true, "28000"),
            (#"connection to server at "db", port 5432 failed: FATAL: no pg_hba.conf entry for host "10.0.0.2", user "app", database "d", no encryption"#, false, "28000"),
            (#"connection to server at "db", port 5432 failed: FATAL: role "app" does not exist"#, false, "28000"),
            (#"connection to server at "db", port 5432 failed: FATAL: Ident authentication failed for user "app""#, false, "28000"),
            (#"connection to server at "db", port 5432 failed: Connection refused Is the server running on that host and accepting TCP/IP connections?"#, false, nil),
            (#"connection to server at "db", port 5432 failed: FATAL: database "nope" does not exist"#, false, nil),
        ]
        for (message, needsPassword, want) in cases {
            #expect(PostgresConnection.authenticationFailure(message, needsPassword: needsPassword) == want, "\(message)")
        }
    }
}
