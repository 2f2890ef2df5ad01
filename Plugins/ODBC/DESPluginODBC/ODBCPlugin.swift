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

    /// Adds `odbc` and `oracle` to `registry`.
    public static func register(in registry: PluginRegistry) {
        for type in ["odbc", "oracle"] {
            registry.registerSource(type: type, connection: ODBCConnectionOptions.self) { context in
                let connection = context.source.connection
                let what = "source '\(context.source.name)'"
                let read = try ODBCConnectionOptions.of(connection, what: what)
                let (dialect, style) = try dialect(named: read.dialect, what: what)
                let (conninfo, target) = try connectionString(connection, what: what)
                let (login, statement) = (read.loginTimeoutSeconds, read.statementTimeoutSeconds)
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

    /// The dialect a block names (`oracle` blocks: Oracle's), read by ``ODBCConnectionOptions``.
    public static func dialect(for c: ConnectionConfig, what: String) throws -> (any SQLDialect, ODBCConnection.PlaceholderStyle) {
        try dialect(named: ODBCConnectionOptions.of(c, what: what).dialect, what: what)
    }

    /// The dialect of a name ``ODBCConnectionOptions`` accepted.
    static func dialect(named name: String, what: String) throws -> (any SQLDialect, ODBCConnection.PlaceholderStyle) {
        guard let found = dialects[name] else {
            throw DESKitError(.configuration, "\(what): connection.dialect '\(name)' is not one the odbc plugin speaks")
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
        let read: [String: String]
        if let settings = c.settings?.value(as: ODBCConnectionOptions.self) {
            read = settings.attributes
        } else {
            do { read = try ODBCConnectionOptions.attributes(of: c.driverOptions) } catch let problem as ConfigProblem {
                throw DESKitError(.configuration, "\(what): \(problem.message)")
            }
        }
        for (key, value) in read.sorted(by: { $0.key < $1.key }) {
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
}

/// The ODBC plugin's own keys of a `connection:` block: `dialect` and `driver_options`, read once.
public struct ODBCConnectionOptions: ConnectionPluginConfiguration {
    public static let keys = [
        ConfigKey(
            "dialect", .choice(ODBCPlugin.dialects.keys.sorted()),
            help: "Which database's SQL to speak (required for type odbc; type oracle speaks oracle).", example: "postgres"),
        ConfigKey(
            "driver_options", .textMap,
            help: "ODBC connection-string attributes as written (DRIVER or DSN, and anything the driver takes); login_timeout and statement_timeout (whole seconds) are DES's; Python driver options (threaded, …) are ignored with a warning.",
            example: "{DRIVER: /usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so, login_timeout: 5}"),
    ]
    /// DES's own options (not sent to the driver).
    public static let optionKeys = [
        ConfigKey("login_timeout", .integer(0...86_400), default: "10", help: "Seconds to wait when connecting."),
        ConfigKey("statement_timeout", .integer(0...86_400), default: "0", help: "The longest a statement may run, in seconds (0: no limit)."),
    ]
    /// The dialect's name (a key of ``ODBCPlugin/dialects``).
    public var dialect: String
    /// The connection-string attributes (DES's and the Python drivers' options left out).
    public var attributes: [String: String]
    public var loginTimeoutSeconds = 10
    public var statementTimeoutSeconds = 0
    /// The original's Python driver options that were written (and are ignored).
    public var ignored: [String]

    public init(connection c: ConnectionConfig) throws {
        let names = ODBCPlugin.dialects.keys.sorted()
        guard let name = c.dialect?.lowercased() ?? (c.type == "oracle" ? "oracle" : nil) else {
            throw ConfigProblem("odbc plugin: connection.dialect is required (\(names.joined(separator: ", ")))", key: "dialect")
        }
        guard ODBCPlugin.dialects[name] != nil else {
            throw ConfigProblem(
                "odbc plugin: unknown dialect '\(name)' (known: \(names.joined(separator: ", ")))",
                suggestion: KeySuggestion.suggest(for: name, among: names), key: "dialect")
        }
        if c.type == "oracle", name != "oracle" {
            throw ConfigProblem("odbc plugin: a connection of type oracle speaks the oracle dialect, not '\(name)'", key: "dialect")
        }
        dialect = name
        let own = Set(Self.optionKeys.map(\.name))
        ignored = c.driverOptions.keys.filter { ODBCPlugin.foreignOptions.contains($0) }.sorted()
        let o = try DriverOptions(
            c.driverOptions.filter { own.contains($0.key) }, table: Self.optionKeys, plugin: "odbc plugin")
        if let v = try o.int("login_timeout") { loginTimeoutSeconds = v }
        if let v = try o.int("statement_timeout") { statementTimeoutSeconds = v }
        attributes = try Self.attributes(of: c.driverOptions)
        // A missing DRIVER or DSN is an error when connecting (saying what to set), not here: a
        // config written for the original (cx_Oracle) checks as it is.
    }

    /// The connection-string attributes of `driverOptions`: all but DES's own options and the
    /// Python drivers'; each name must be an ODBC attribute name.
    public static func attributes(of driverOptions: [String: String]) throws -> [String: String] {
        let own = Set(optionKeys.map(\.name))
        var attributes: [String: String] = [:]
        for (key, value) in driverOptions where !own.contains(key) && !ODBCPlugin.foreignOptions.contains(key) {
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == " " }) else {
                throw ConfigProblem("odbc plugin: driver_options key '\(key)' is not an ODBC attribute name")
            }
            attributes[key] = value
        }
        return attributes
    }

    public var ignoredOptionsWarnings: [String] {
        ignored.isEmpty
            ? [] : ["\(ignored.joined(separator: ", ")) \(ignored.count == 1 ? "means" : "mean") nothing to ODBC (Python driver options); ignored"]
    }
}
