import DESKit
import DESSQLDialects
import Foundation

/// Registers SQL Server (`connection.type: mssql`, over FreeTDS db-lib) as a source type.
public enum MSSQLPlugin {
    /// The type it answers to.
    public static let type = "mssql"

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
        registry.registerSource(type: type, connection: MSSQLConnectionOptions.self) { context in
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
        let o = try MSSQLConnectionOptions.of(c, what: what)
        if let v = o.loginTimeoutSeconds { s.loginTimeoutSeconds = v }
        if let v = o.statementTimeoutSeconds { s.statementTimeoutSeconds = v }
        if let v = o.charset { s.charset = v }
        if let v = o.tdsMinorVersion { s.tdsMinorVersion = v }
        return (s, "\(s.host):\(s.port)/\(s.database ?? "")")
    }
}

/// The SQL Server plugin's own key of a `connection:` block: `driver_options`, read once.
public struct MSSQLConnectionOptions: ConnectionPluginConfiguration {
    public static let keys = [
        ConfigKey(
            "driver_options", .textMap, help: "login_timeout, statement_timeout (whole seconds), charset (FreeTDS's client charset), tds_version (7.1–7.4).",
            example: "{charset: utf8, tds_version: '7.4'}"),
    ]
    /// The options it knows.
    public static let optionKeys = [
        ConfigKey("login_timeout", .integer(1...86_400), default: "10", help: "Seconds to wait when logging in."),
        ConfigKey("statement_timeout", .integer(0...86_400), default: "0", help: "The longest a statement may run, in seconds (0: no limit)."),
        ConfigKey("charset", .text, default: "UTF-8", help: "The client character set FreeTDS converts text to (utf8 is read as UTF-8)."),
        ConfigKey("tds_version", .choice(["7.1", "7.2", "7.3", "7.4"]), default: "7.4", help: "The TDS protocol version."),
    ]
    public var loginTimeoutSeconds: Int?
    public var statementTimeoutSeconds: Int?
    /// FreeTDS's name of the client charset.
    public var charset: String?
    /// The TDS minor version (7.x).
    public var tdsMinorVersion: Int?

    public init(connection: ConnectionConfig) throws {
        let o = try DriverOptions(connection.driverOptions, table: Self.optionKeys, plugin: "mssql plugin")
        loginTimeoutSeconds = try o.int("login_timeout")
        statementTimeoutSeconds = try o.int("statement_timeout")
        if let v = o.text("charset") {
            guard let name = MSSQLPlugin.charset(v) else { throw ConfigProblem("mssql plugin: charset '\(v)' is not a character set name") }
            charset = name
        }
        if let v = o.text("tds_version") {
            guard let minor = MSSQLPlugin.tdsMinor(v) else { throw ConfigProblem("mssql plugin: tds_version '\(v)' must be 7.1, 7.2, 7.3 or 7.4") }
            tdsMinorVersion = minor
        }
    }
}
