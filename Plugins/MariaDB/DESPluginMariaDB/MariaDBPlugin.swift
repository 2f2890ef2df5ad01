import DESKit
import DESSQLDialects
import Foundation

/// Registers MySQL and MariaDB (`connection.type: mysql` or `mariadb`, both over MariaDB
/// Connector/C) as source types and metadata store types.
public enum MariaDBPlugin {
    /// The types this plugin answers to.
    public static let types = ["mariadb", "mysql"]

    /// The `driver_options` it knows: timeouts in seconds and a socket path.
    public static let driverOptions = ["connect_timeout", "read_timeout", "write_timeout", "statement_timeout", "unix_socket", "ssl_verify_cert"]

    /// Adds the sources and metadata stores to `registry`.
    public static func register(in registry: PluginRegistry) {
        for type in types {
            registry.registerSource(type: type, check: checkConnection) { context in
                let connection = context.source.connection
                let (settings, target) = try settings(connection, what: "source '\(context.source.name)'")
                let options = SQLConnectionPool.Options.from(connection, healthQuery: MariaDBDialect().healthQuery)
                let pool = SQLConnectionPool(size: max(1, connection.poolSize), options: options) {
                    try await MariaDBConnection.connect(settings, target: target)
                }
                return try SQLSourceConnector(config: context.source, dialect: MariaDBDialect(name: type), pool: pool)
            }
            registry.registerMetadataStore(type: type, check: checkConnection) { connection, _ in
                let store = try await open(connection, type: type)
                try await store.migrate()
                return store
            }
        }
    }

    /// A metadata store on the database `connection` names (call `migrate()` before use).
    public static func open(_ connection: ConnectionConfig, type: String = "mariadb") async throws -> SQLMetadataStore {
        let (settings, target) = try settings(connection, what: "metadata")
        let first = try await MariaDBConnection.connect(settings, target: target)  // fail fast, naming the server
        await first.close()
        let options = SQLConnectionPool.Options.from(connection, healthQuery: MariaDBDialect().healthQuery)
        let pool = SQLConnectionPool(size: max(1, connection.poolSize), options: options) {
            try await MariaDBConnection.connect(settings, target: target)
        }
        return SQLMetadataStore(pool: pool, dialect: MariaDBMetadataDialect(name: type))
    }

    /// The connection settings of a `connection:` block, and where it goes (no secret in it).
    public static func settings(_ c: ConnectionConfig, what: String) throws -> (MariaDBConnection.Settings, String) {
        var s = MariaDBConnection.Settings()
        s.host = c.host ?? "127.0.0.1"
        s.port = c.port ?? 3306
        s.user = c.username
        s.password = c.password?.value
        s.database = c.database
        if let charset = c.charset {
            guard charset.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw DESKitError(.configuration, "\(what): charset '\(charset)' is not a character set name")
            }
            s.charset = charset
        }
        func seconds(_ key: String) throws -> Double? {
            guard let text = c.driverOptions[key] else { return nil }
            guard let value = Double(text), value >= 0, value <= 86_400 else {
                throw DESKitError(.configuration, "\(what): driver_options \(key) must be seconds between 0 and 86400, got '\(text)'")
            }
            return value
        }
        if let v = try seconds("connect_timeout") { s.connectTimeoutSeconds = max(1, Int(v.rounded(.up))) }
        if let v = try seconds("read_timeout") { s.readTimeoutSeconds = Int(v.rounded(.up)) }
        if let v = try seconds("write_timeout") { s.writeTimeoutSeconds = Int(v.rounded(.up)) }
        if let v = try seconds("statement_timeout") { s.statementTimeoutSeconds = v }
        s.unixSocket = c.driverOptions["unix_socket"]
        if let v = c.driverOptions["ssl_verify_cert"] {
            guard let verify = ConfigSection.boolean(v) else { throw DESKitError(.configuration, "\(what): driver_options ssl_verify_cert '\(v)' must be true or false") }
            s.verifyServerCertificate = verify
        }
        return (s, "\(s.host):\(s.port)/\(s.database ?? "")")
    }

    /// The `connection:` check: `driver_options` keys must be ones this plugin knows, with values in range.
    @Sendable static func checkConnection(_ section: ConfigSection) throws {
        try section.checkDriverOptions(
            known: driverOptions, seconds: ["connect_timeout", "read_timeout", "write_timeout", "statement_timeout"],
            plugin: "mariadb plugin")
        if let v = try section.stringMap("driver_options")?["ssl_verify_cert"], ConfigSection.boolean(v) == nil {
            throw section.error("driver_options", "mariadb plugin: ssl_verify_cert '\(v)' must be true or false")
        }
    }
}
