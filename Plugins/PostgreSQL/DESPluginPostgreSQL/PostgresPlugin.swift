import DESKit
import DESSQLDialects
import Foundation

/// Registers PostgreSQL (`connection.type: postgresql` or `postgres`) as a source type and a
/// metadata store type.
public enum PostgresPlugin {
    /// The types this plugin answers to.
    public static let types = ["postgresql", "postgres"]

    /// Adds the PostgreSQL source and metadata store to `registry`.
    public static func register(in registry: PluginRegistry) {
        for type in types {
            registry.registerSource(type: type, connection: PostgresConnectionOptions.self) { context in
                let (conninfo, target) = try connectionString(context.source.connection, what: "source '\(context.source.name)'")
                let options = SQLConnectionPool.Options.from(context.source.connection, healthQuery: PostgresDialect().healthQuery)
                let pool = SQLConnectionPool(size: max(1, context.source.connection.poolSize), options: options) {
                    try await PostgresConnection.connect(conninfo: conninfo, target: target)
                }
                return try SQLSourceConnector(config: context.source, dialect: PostgresDialect(), pool: pool)
            }
            registry.registerSampleCatalog(type: type) { source, base, files, size, seed in
                let (conninfo, target) = try connectionString(source.connection, what: "source '\(source.name)'")
                let connection = try await PostgresConnection.connect(conninfo: conninfo, target: target)
                let bodies = source.bodies.directory(resolvedAgainst: base)
                defer { Task { await connection.close() } }
                return try await PostgresSampleCatalog.create(
                    connection: connection, table: source.table, bodiesRoot: bodies, files: files, size: size, seed: seed)
            }
            registry.registerMetadataStore(type: type, connection: PostgresConnectionOptions.self) { connection, _ in
                // A server restarting or a connection killed while the store opens is ridden out.
                try await retryingTransient {
                    let store = try await open(connection)
                    try await store.migrate()
                    return store
                }
            }
        }
    }

    /// Runs `body` up to 6 times while it fails with a transient database error (0.2 s, 0.4 s, … apart).
    static func retryingTransient<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        var delay = 0.2
        for _ in 0..<5 {
            do {
                return try await body()
            } catch let error as SQLError where error.isTransient {
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                delay *= 2
            }
        }
        return try await body()
    }

    /// A metadata store on the database `connection` names (call `migrate()` before use).
    public static func open(_ connection: ConnectionConfig) async throws -> SQLMetadataStore {
        let (conninfo, target) = try connectionString(connection, what: "metadata")
        let first = try await PostgresConnection.connect(conninfo: conninfo, target: target)  // fail fast, naming the server
        await first.close()
        let options = SQLConnectionPool.Options.from(connection, healthQuery: PostgresDialect().healthQuery)
        let pool = SQLConnectionPool(size: max(1, connection.poolSize), options: options) {
            try await PostgresConnection.connect(conninfo: conninfo, target: target)
        }
        return SQLMetadataStore(pool: pool, dialect: PostgresMetadataDialect()) {
            try await PostgresListener.listen(conninfo: conninfo, target: target)
        }
    }

    /// The libpq connection string of a connection config (values quoted as libpq wants), and a
    /// description of where it goes with no secret in it. `driver_options` are passed through as
    /// libpq keywords (`sslmode`, `application_name`, `connect_timeout`, …); `schema` sets the search path.
    public static func connectionString(_ c: ConnectionConfig, what: String) throws -> (conninfo: String, target: String) {
        func quote(_ v: String) -> String { "'" + v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'" }
        var parts: [String] = []
        if let host = c.host { parts.append("host=\(quote(host))") }
        if let port = c.port { parts.append("port=\(port)") }
        if let db = c.database { parts.append("dbname=\(quote(db))") }
        if let user = c.username { parts.append("user=\(quote(user))") }
        if let password = c.password, !password.value.isEmpty { parts.append("password=\(quote(password.value))") }
        let read = try PostgresConnectionOptions.of(c, what: what)
        var options = read.keywords
        if options["connect_timeout"] == nil { options["connect_timeout"] = "10" }
        var serverSettings: [String] = []
        if let timeout = read.statementTimeout { serverSettings.append("-c statement_timeout=\(timeout)") }
        if let schema = c.schema {
            try SQLIdentifier.validate(schema, what: "\(what): connection.schema")
            serverSettings.append("-c search_path=\(schema)")
        }
        if !serverSettings.isEmpty {
            options["options"] = (serverSettings + (options["options"].map { [$0] } ?? [])).joined(separator: " ")
        }
        for (key, value) in options.sorted(by: { $0.key < $1.key }) { parts.append("\(key)=\(quote(value))") }
        let target = "\(c.host ?? "localhost"):\(c.port ?? 5432)/\(c.database ?? "")"
        return (parts.joined(separator: " "), target)
    }
}

/// The PostgreSQL plugin's own key of a `connection:` block: `driver_options`, read once.
public struct PostgresConnectionOptions: ConnectionPluginConfiguration {
    public static let keys = [
        ConfigKey(
            "driver_options", .textMap,
            help: "libpq connection keywords (sslmode, application_name, connect_timeout — default 10 —, …), asked of libpq itself; and statement_timeout (30s, 500ms, 5min), set for every session.",
            example: "{sslmode: prefer, statement_timeout: 30s}"),
    ]
    /// `30s`, `500ms`, `5min`, `2h`, `1d`, `250us` or a bare number (milliseconds) in milliseconds; nil when malformed.
    static func milliseconds(_ text: String) -> Double? {
        let digits = text.prefix { $0.isNumber }
        guard !digits.isEmpty, digits.count <= 15, let n = Double(digits) else { return nil }
        let factor: [String: Double] = ["": 1, "us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000]
        return factor[String(text.dropFirst(digits.count))].map { n * $0 }
    }

    /// The options DES reads itself (not libpq keywords).
    public static let optionKeys = [
        ConfigKey("statement_timeout", .text, help: "The longest a statement may run, in PostgreSQL's units (30s, 500ms, 5min; a bare number is ms)."),
    ]
    /// The libpq keywords, as written.
    public var keywords: [String: String]
    /// The session's statement timeout (nil: the server's).
    public var statementTimeout: String?

    /// Every option must be a keyword this libpq knows (asked of libpq itself) or `statement_timeout`;
    /// `dbname`, `user` and `password` belong in `database`, `username` and `password`.
    public init(connection: ConnectionConfig) throws {
        let known = PostgresConnection.libpqKeywords()
        let allowed = known.subtracting(["dbname", "user", "password", "host", "port", "hostaddr"]).union(Self.optionKeys.map(\.name))
        var options = connection.driverOptions
        for key in options.keys.sorted() where !allowed.contains(key) {
            let reason = known.contains(key)
                ? "is set by the connection's own keys (host, port, database, username, password)"
                : "is not a libpq connection keyword"
            throw ConfigProblem(
                "postgresql plugin: driver option '\(key)' \(reason)", suggestion: KeySuggestion.suggest(for: key, among: allowed.sorted()))
        }
        if let timeout = options.removeValue(forKey: "statement_timeout") {
            guard Self.milliseconds(timeout).map({ $0 <= Double(Int32.max) }) == true else {
                throw ConfigProblem(
                    "postgresql plugin: driver option statement_timeout '\(timeout)' must be like 30s, 500ms or 5min (at most about 24 days)")
            }
            statementTimeout = timeout
        }
        // The values libpq would only refuse when connecting, refused here with the choices.
        let choices = [
            "sslmode": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
            "target_session_attrs": ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"],
            "gssencmode": ["disable", "prefer", "require"],
        ]
        for (key, allowed) in choices {
            if let value = options[key], !allowed.contains(value) {
                throw ConfigProblem(
                    "postgresql plugin: driver option \(key) must be one of \(allowed.joined(separator: ", ")), got '\(value)'",
                    suggestion: KeySuggestion.suggest(for: value, among: allowed))
            }
        }
        for key in ["connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"] {
            if let value = options[key], Int32(value).map({ $0 >= 0 }) != true {
                throw ConfigProblem("postgresql plugin: driver option \(key) must be a whole number of 0 or more, got '\(value)'")
            }
        }
        keywords = options
    }
}
