import DESKit
import DESSQLDialects
import Foundation

/// Registers MySQL and MariaDB (`connection.type: mysql` or `mariadb`, both over MariaDB
/// Connector/C) as source types and metadata store types.
public enum MariaDBPlugin {
    /// The types this plugin answers to.
    public static let types = ["mariadb", "mysql"]

    /// Adds the sources and metadata stores to `registry`.
    public static func register(in registry: PluginRegistry) {
        for type in types {
            registry.registerSource(type: type, connection: MariaDBConnectionOptions.self) { context in
                let connection = context.source.connection
                let (settings, target) = try settings(connection, what: "source '\(context.source.name)'")
                let options = SQLConnectionPool.Options.from(connection, healthQuery: MariaDBDialect().healthQuery)
                let pool = SQLConnectionPool(size: max(1, connection.poolSize), options: options) {
                    try await MariaDBConnection.connect(settings, target: target)
                }
                return try SQLSourceConnector(config: context.source, dialect: MariaDBDialect(name: type), pool: pool)
            }
            registry.registerSampleCatalog(type: type) { source, base, files, size, seed in
                let (settings, target) = try settings(source.connection, what: "source '\(source.name)'")
                let connection = try await MariaDBConnection.connect(settings, target: target)
                let bodies = source.bodies.directory(resolvedAgainst: base)
                defer { Task { await connection.close() } }
                return try await MariaDBSampleCatalog.create(
                    connection: connection, table: source.table, bodiesRoot: bodies, files: files, size: size, seed: seed)
            }
            registry.registerMetadataStore(type: type, connection: MariaDBConnectionOptions.self) { connection, _ in
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
        let o = try MariaDBConnectionOptions.of(c, what: what)
        if let v = o.connectTimeoutSeconds { s.connectTimeoutSeconds = max(1, Int(v.rounded(.up))) }
        if let v = o.readTimeoutSeconds { s.readTimeoutSeconds = Int(v.rounded(.up)) }
        if let v = o.writeTimeoutSeconds { s.writeTimeoutSeconds = Int(v.rounded(.up)) }
        if let v = o.statementTimeoutSeconds { s.statementTimeoutSeconds = v }
        s.unixSocket = o.unixSocket
        if let v = o.verifyServerCertificate { s.verifyServerCertificate = v }
        return (s, "\(s.host):\(s.port)/\(s.database ?? "")")
    }
}

/// The MySQL/MariaDB plugin's own key of a `connection:` block: `driver_options`, read once.
public struct MariaDBConnectionOptions: ConnectionPluginConfiguration {
    /// The block's `charset` is the connection's character set (default `utf8mb4`): none unused.
    public static let ignoredConnectionKeys: Set<String> = []
    public static let keys = [
        ConfigKey(
            "driver_options", .textMap, help: "connect_timeout, read_timeout, write_timeout, statement_timeout (seconds), unix_socket, ssl_verify_cert.",
            example: "{connect_timeout: 5, ssl_verify_cert: false}"),
    ]
    /// The options it knows.
    public static let optionKeys = [
        ConfigKey("connect_timeout", .seconds(0...86_400), default: "10", help: "Seconds to wait for the server when connecting."),
        ConfigKey("read_timeout", .seconds(0...86_400), help: "Seconds to wait for a reply."),
        ConfigKey("write_timeout", .seconds(0...86_400), help: "Seconds to wait while sending."),
        ConfigKey("statement_timeout", .seconds(0...86_400), help: "The longest a statement may run (max_statement_time)."),
        ConfigKey("unix_socket", .text, help: "A local socket path instead of host and port."),
        ConfigKey("ssl_verify_cert", .boolean, help: "Whether TLS must verify the server's certificate (default: the library's)."),
    ]
    public var connectTimeoutSeconds: Double?
    public var readTimeoutSeconds: Double?
    public var writeTimeoutSeconds: Double?
    public var statementTimeoutSeconds: Double?
    public var unixSocket: String?
    public var verifyServerCertificate: Bool?

    public init(connection: ConnectionConfig) throws {
        if let charset = connection.charset, charset.isEmpty || !charset.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
            throw ConfigProblem("mariadb plugin: charset '\(charset)' is not a character set name (like utf8mb4)", key: "charset")
        }
        let o = try DriverOptions(connection.driverOptions, table: Self.optionKeys, plugin: "mariadb plugin")
        connectTimeoutSeconds = try o.seconds("connect_timeout")
        readTimeoutSeconds = try o.seconds("read_timeout")
        writeTimeoutSeconds = try o.seconds("write_timeout")
        statementTimeoutSeconds = try o.seconds("statement_timeout")
        unixSocket = o.text("unix_socket")
        verifyServerCertificate = try o.bool("ssl_verify_cert")
    }
}
