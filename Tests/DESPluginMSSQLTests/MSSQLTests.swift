import DESKit
@testable import DESPluginMSSQL
import Foundation
import Testing

/// What can be checked of the FreeTDS driver without a SQL Server: a refused connection, the RPC
/// it would send, and the plugin's config check.
@Suite("SQL Server plugin (FreeTDS)")
struct MSSQLTests {
    @Test("A refused connection is a clear, transient error that names the server and never the password", .timeLimit(.minutes(3)))
    func refused() async throws {
        var c = ConnectionConfig(type: "mssql", host: "127.0.0.1", port: 1, database: "catalog", username: "sa", password: Secret("s3cr3t-pw"))
        c.driverOptions = ["login_timeout": "5"]
        let (settings, target) = try MSSQLPlugin.settings(c, what: "source 'x'")
        do {
            _ = try await MSSQLConnection.connect(settings, target: target)
            Issue.record("expected a refused connection")
        } catch let error as SQLError {
            #expect(error.isTransient)
            #expect(error.message.contains("127.0.0.1:1/catalog"), "\(error)")
            #expect(!"\(error)".contains("s3cr3t-pw"))
        }
    }

    @Test("Values travel as typed sp_executesql parameters: ?{n} becomes @Pn, declared by the value's type")
    func rpc() throws {
        let (text, declaration) = try MSSQLConnection.rpc(
            "UPDATE t SET a = ?{1}, b = ?{2} WHERE id IN (?{3}, ?{10}) AND c = ?{1}",
            [.text("x"), .blob([1]), .int(3), .double(1), .null, .null, .null, .null, .null, .int(10)])
        #expect(text == "UPDATE t SET a = @P1, b = @P2 WHERE id IN (@P3, @P10) AND c = @P1")
        #expect(declaration.hasPrefix("@P1 NVARCHAR(MAX), @P2 VARBINARY(MAX), @P3 BIGINT, @P4 FLOAT, @P5 NVARCHAR(MAX)"))
        #expect(declaration.hasSuffix("@P10 BIGINT"))
    }

    @Test("Config check: an unknown driver option names the plugin")
    func configCheck() throws {
        let registry = PluginRegistry()
        MSSQLPlugin.register(in: registry)
        let yaml = "sources:\n  - name: s\n    connection: {type: mssql, host: h, driver_options: {login_timout: 5}}\n    table: {name: f, columns: {id: id, s3_key: k}}\n"
        do {
            _ = try ConfigLoader.parse(yaml: yaml, file: "s.yaml", environment: [:], plugins: registry)
            Issue.record("login_timout must be refused")
        } catch let error as ConfigError {
            #expect(error.message.contains("mssql plugin") && error.suggestion == "login_timeout" && error.line == 3)
        }
    }
}
