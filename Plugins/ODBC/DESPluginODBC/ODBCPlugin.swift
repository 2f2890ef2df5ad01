import DESKit
import DESSQLDialects
import Foundation

/// Registers ODBC sources: `connection.type: odbc` with a `dialect:` saying which database's SQL
/// to speak (`postgres`, `mysql`/`mariadb`, `mssql`, `oracle`, `sqlite`), and `connection.type:
/// oracle`, which is ODBC with the Oracle dialect.
///
/// The ODBC connection string is built from the block: `driver_options` are its attributes as
/// written (`DRIVER` — a driver's name in odbcinst.ini or the path of its shared library — or
/// `DSN`, plus anything the driver takes), and `host`, `port`, `database`, `username` and
/// `password` become `SERVER`, `PORT`, `DATABASE`, `UID` and `PWD` unless `driver_options` sets
/// those itself. `statement_timeout` (seconds) and `login_timeout` (seconds, default 10) are
/// DES's own options, not sent to the driver.
public enum ODBCPlugin {
    /// The dialects `dialect:` may name, and the placeholder style each writes.
    public static let dialects: [String: (dialect: any SQLDialect, style: ODBCConnection.PlaceholderStyle)] = [
        "postgres": (PostgresDialect(), .dollar), "postgresql": (PostgresDialect(), .dollar),
        "mysql": (MariaDBDialect(name: "mysql"), .braced), "mariadb": (MariaDBDialect(), .braced),
        "mssql": (MSSQLDialect(), .braced), "oracle": (OracleDialect(), .braced), "sqlite": (SQLiteDialect(), .questionNumber),
    ]

    /// DES's own driver options (not passed to the driver).
    public static let desOptions = ["statement_timeout", "login_timeout"]

    /// Adds `odbc` and `oracle` to `registry`.
    public static func register(in registry: PluginRegistry) {
        for type in ["odbc", "oracle"] {
            registry.registerSource(type: type, check: { try check($0, type: type) }) { context in
                let connection = context.source.connection
                let what = "source '\(context.source.name)'"
                let (dialect, style) = try dialect(for: connection, type: type, what: what)
                let (conninfo, target) = try connectionString(connection, what: what)
                let login = Int(connection.driverOptions["login_timeout"] ?? "") ?? 10
                let statement = Int(connection.driverOptions["statement_timeout"] ?? "") ?? 0
                let options = SQLConnectionPool.Options.from(connection, healthQuery: dialect.healthQuery)
                let pool = SQLConnectionPool(size: max(1, connection.poolSize), options: options) {
                    try await ODBCConnection.connect(
                        connectionString: conninfo, target: target, style: style, loginTimeoutSeconds: login,
                        statementTimeoutSeconds: statement)
                }
                return try SQLSourceConnector(config: context.source, dialect: ODBCBoundedDialect(dialect), pool: pool)
            }
        }
    }

    /// The dialect a block names (`oracle` blocks: Oracle's).
    public static func dialect(for c: ConnectionConfig, type: String, what: String) throws
        -> (any SQLDialect, ODBCConnection.PlaceholderStyle)
    {
        let name = c.dialect ?? (type == "oracle" ? "oracle" : "")
        guard let found = dialects[name] else {
            throw DESKitError(
                .configuration,
                "\(what): connection.dialect '\(name)' is not one the odbc plugin speaks (\(dialects.keys.sorted().joined(separator: ", ")))")
        }
        return found
    }

    /// The ODBC connection string, and where it goes (no secret in it).
    public static func connectionString(_ c: ConnectionConfig, what: String) throws -> (String, String) {
        func escaped(_ v: String) -> String {
            v.contains(where: { ";{}=".contains($0) }) || v.hasPrefix(" ") || v.hasSuffix(" ")
                ? "{" + v.replacingOccurrences(of: "}", with: "}}") + "}" : v
        }
        var attributes: [(String, String)] = []
        var given = Set<String>()
        for (key, value) in c.driverOptions.sorted(by: { $0.key < $1.key }) where !desOptions.contains(key) && !foreignOptions.contains(key) {
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == " " }) else {
                throw DESKitError(.configuration, "\(what): driver_options key '\(key)' is not an ODBC attribute name")
            }
            attributes.append((key, value))
            given.insert(key.uppercased())
        }
        guard given.contains("DRIVER") || given.contains("DSN") else {
            throw DESKitError(
                .configuration,
                "\(what): set connection.driver_options.DRIVER to the ODBC driver's name or library path "
                    + "(for Oracle, Instant Client's libsqora.so), or DSN to a data source in odbc.ini")
        }
        let standard: [(String, String?)] = [
            ("SERVER", c.host), ("PORT", c.port.map(String.init)), ("DATABASE", c.database), ("UID", c.username),
            ("PWD", c.password?.value),
        ]
        for (key, value) in standard where !given.contains(key) {
            if let value { attributes.append((key, value)) }
        }
        // DRIVER or DSN first, as some driver managers expect.
        attributes.sort { a, b in
            let ka = ["DRIVER", "DSN"].contains(a.0.uppercased()), kb = ["DRIVER", "DSN"].contains(b.0.uppercased())
            return ka && !kb
        }
        let string = attributes.map { "\($0.0)=\(escaped($0.1))" }.joined(separator: ";")
        let dsn = c.driverOptions.first { ["DSN", "DRIVER"].contains($0.key.uppercased()) }?.value ?? "?"
        let target = "\(c.host ?? URL(fileURLWithPath: dsn).lastPathComponent)\(c.port.map { ":\($0)" } ?? "")/\(c.database ?? "")"
        return (string, target)
    }

    /// Options of the original's Python drivers (cx_Oracle, pyodbc) that mean nothing to ODBC:
    /// accepted with a warning and left out of the connection string.
    public static let foreignOptions: Set<String> = ["threaded", "events", "encoding", "nencoding", "purity", "edition", "cclass", "autocommit"]

    /// The `connection:` check: a known `dialect:` (did you mean), whole-second timeouts; Python
    /// driver options warned about.
    static func check(_ section: ConfigSection, type: String) throws {
        let name = try section.string("dialect")?.lowercased() ?? (type == "oracle" ? "oracle" : nil)
        guard let name else {
            throw section.error(
                "dialect", "odbc plugin: connection.dialect is required (\(dialects.keys.sorted().joined(separator: ", ")))")
        }
        guard dialects[name] != nil else {
            throw section.error(
                "dialect", "odbc plugin: unknown dialect '\(name)' (known: \(dialects.keys.sorted().joined(separator: ", ")))",
                suggestion: KeySuggestion.suggest(for: name, among: dialects.keys.sorted()))
        }
        if type == "oracle", name != "oracle" {
            throw section.error("dialect", "odbc plugin: a connection of type oracle speaks the oracle dialect, not '\(name)'")
        }
        let options = try section.stringMap("driver_options") ?? [:]
        // A missing DRIVER or DSN is an error when connecting (saying what to set), not here: a
        // config written for the original (cx_Oracle) checks as it is.
        let foreign = options.keys.filter { foreignOptions.contains($0) }.sorted()
        if !foreign.isEmpty {
            section.warn("driver_options", "\(foreign.joined(separator: ", ")) mean nothing to ODBC (Python driver options); ignored")
        }
        for key in desOptions {
            if let text = options[key], Int(text).map({ $0 < 0 || $0 > 86_400 }) ?? true {
                throw section.error("driver_options", "odbc plugin: driver option \(key) must be whole seconds between 0 and 86400, got '\(text)'")
            }
        }
    }
}
