import DESKit
import DESSQLDialects
import Foundation

/// Registers SQL Server (`connection.type: mssql`, over FreeTDS db-lib) as a source type.
public enum MSSQLPlugin {
    /// The type it answers to.
    public static let type = "mssql"

    /// The `driver_options` it knows: timeouts (seconds), the client `charset` FreeTDS converts
    /// text to (`utf8` is read as `UTF-8`), and `tds_version` (7.1 to 7.4).
    public static let driverOptions = ["login_timeout", "statement_timeout", "charset", "tds_version"]

    /// FreeTDS's name for a client character set as configs write it (`utf8`, `UTF-8`, `latin1`).
    static func charset(_ text: String) -> String? {
        guard !text.isEmpty, text.count <= 40, text.allSatisfy({ $0.isLetter || $0.isNumber || "-_".contains($0) }) else { return nil }
        switch text.lowercased().replacingOccurrences(of: "-", with: "").replacingOccurrences(of: "_", with: "") {
        case "utf8", "utf8mb4": return "UTF-8"
        case "latin1": return "ISO-8859-1"
        default: return text
        }
    }

    /// The minor version of `tds_version` (`7.4` → 4), 7.1 to 7.4.
    static func tdsMinor(_ text: String) -> Int? {
        guard text.hasPrefix("7."), let minor = Int(text.dropFirst(2)), (1...4).contains(minor) else { return nil }
        return minor
    }

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
        if let v = c.driverOptions["charset"] {
            guard let name = charset(v) else { throw DESKitError(.configuration, "\(what): driver_options charset '\(v)' is not a character set name") }
            s.charset = name
        }
        if let v = c.driverOptions["tds_version"] {
            guard let minor = tdsMinor(v) else { throw DESKitError(.configuration, "\(what): driver_options tds_version '\(v)' (7.1 to 7.4)") }
            s.tdsMinorVersion = minor
        }
        return (s, "\(s.host):\(s.port)/\(s.database ?? "")")
    }

    /// The `connection:` check: known driver options with whole seconds.
    @Sendable static func checkConnection(_ section: ConfigSection) throws {
        try section.checkDriverOptions(known: driverOptions, seconds: ["login_timeout", "statement_timeout"], plugin: "mssql plugin")
        let options = try section.stringMap("driver_options") ?? [:]
        if let v = options["charset"], charset(v) == nil {
            throw section.error("driver_options", "mssql plugin: charset '\(v)' is not a character set name")
        }
        if let v = options["tds_version"], tdsMinor(v) == nil {
            throw section.error("driver_options", "mssql plugin: tds_version '\(v)' must be 7.1, 7.2, 7.3 or 7.4")
        }
    }
}
