import DESKit
import DESSQLDialects
import Foundation

/// Registers SQL Server (`connection.type: mssql`, over FreeTDS db-lib) as a source type.
public enum MSSQLPlugin {
    /// The type it answers to.
    public static let type = "mssql"

    /// The `driver_options` it knows (seconds).
    public static let driverOptions = ["login_timeout", "statement_timeout"]

    /// Adds the source to `registry`.
    public static func register(in registry: PluginRegistry) {
        registry.registerSource(type: type, check: checkConnection) { context in
            let connection = context.source.connection
            let (settings, target) = try settings(connection, what: "source '\(context.source.name)'")
            let options = SQLConnectionPool.Options.from(connection, healthQuery: MSSQLDialect().healthQuery)
            let pool = SQLConnectionPool(size: max(1, connection.poolSize), options: options) {
                try await MSSQLConnection.connect(settings, target: target)
            }
            return try SQLSourceConnector(config: context.source, dialect: MSSQLDialect(), pool: pool)
        }
    }

    /// The connection settings of a block, and where it goes (no secret in it).
    public static func settings(_ c: ConnectionConfig, what: String) throws -> (MSSQLConnection.Settings, String) {
        var s = MSSQLConnection.Settings()
        s.host = c.host ?? "127.0.0.1"
        s.port = c.port ?? 1433
        s.user = c.username
        s.password = c.password?.value
        s.database = c.database
        if let v = c.driverOptions["login_timeout"] {
            guard let n = Int(v), (1...86_400).contains(n) else { throw DESKitError(.configuration, "\(what): login_timeout '\(v)'") }
            s.loginTimeoutSeconds = n
        }
        if let v = c.driverOptions["statement_timeout"] {
            guard let n = Int(v), (0...86_400).contains(n) else { throw DESKitError(.configuration, "\(what): statement_timeout '\(v)'") }
            s.statementTimeoutSeconds = n
        }
        return (s, "\(s.host):\(s.port)/\(s.database ?? "")")
    }

    /// The `connection:` check: known driver options with whole seconds.
    @Sendable static func checkConnection(_ section: ConfigSection) throws {
        try section.checkDriverOptions(known: driverOptions, seconds: driverOptions, plugin: "mssql plugin")
    }
}
