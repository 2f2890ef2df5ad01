import DESKit

/// Registers PostgreSQL (`connection.type: postgresql` or `postgres`) as a source type and a
/// metadata store type.
public enum PostgresPlugin {
    /// The types this plugin answers to.
    public static let types = ["postgresql", "postgres"]

    /// Adds the PostgreSQL source and metadata store to `registry`.
    public static func register(in registry: PluginRegistry) {
        for type in types {
            registry.registerSource(type: type) { context in
                let (conninfo, target) = try connectionString(context.source.connection, what: "source '\(context.source.name)'")
                let pool = SQLConnectionPool(size: max(1, context.source.connection.poolSize)) {
                    try await PostgresConnection.connect(conninfo: conninfo, target: target)
                }
                return try SQLSourceConnector(config: context.source, dialect: PostgresDialect(), pool: pool)
            }
            registry.registerMetadataStore(type: type) { connection, _ in
                let store = try await open(connection)
                try await store.migrate()
                return store
            }
        }
    }

    /// A metadata store on the database `connection` names (call `migrate()` before use).
    public static func open(_ connection: ConnectionConfig) async throws -> SQLMetadataStore {
        let (conninfo, target) = try connectionString(connection, what: "metadata")
        let first = try await PostgresConnection.connect(conninfo: conninfo, target: target)  // fail fast, naming the server
        await first.close()
        let pool = SQLConnectionPool(size: max(1, min(connection.poolSize, 4))) {
            try await PostgresConnection.connect(conninfo: conninfo, target: target)
        }
        return SQLMetadataStore(pool: pool, dialect: PostgresMetadataDialect())
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
        var options = c.driverOptions
        if options["connect_timeout"] == nil { options["connect_timeout"] = "10" }
        if let schema = c.schema {
            try SQLIdentifier.validate(schema, what: "\(what): connection.schema")
            options["options"] = "-c search_path=\(schema)" + (options["options"].map { " " + $0 } ?? "")
        }
        for (key, value) in options.sorted(by: { $0.key < $1.key }) {
            guard key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw DESKitError(.configuration, "\(what): driver_options key '\(key)' is not a libpq keyword")
            }
            parts.append("\(key)=\(quote(value))")
        }
        let target = "\(c.host ?? "localhost"):\(c.port ?? 5432)/\(c.database ?? "")"
        return (parts.joined(separator: " "), target)
    }
}
