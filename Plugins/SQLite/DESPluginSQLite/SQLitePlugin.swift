import DESKit
import DESSQLDialects
import Foundation

/// Registers SQLite as a source type and a metadata store type.
public enum SQLitePlugin {
    /// The `connection.type` this plugin answers to.
    public static let type = "sqlite"

    /// Adds the SQLite source and metadata store to `registry`.
    public static func register(in registry: PluginRegistry) {
        registry.registerSource(type: type, connection: SQLiteConnectionOptions.self) { context in
            let what = "source '\(context.source.name)'"
            let path = try databasePath(context.source.connection, base: context.baseDirectory, what: what, create: false)
            // A catalog is never created here: a mistyped path must not become an empty database.
            guard FileManager.default.fileExists(atPath: path) else {
                throw DESKitError(
                    .notFound,
                    "\(what): SQLite database '\(path)' does not exist (check connection.database; `des sample` creates a sample catalog)")
            }
            let options = SQLConnectionPool.Options.from(context.source.connection, healthQuery: SQLiteDialect().healthQuery)
            let pool = SQLConnectionPool(size: max(1, context.source.connection.poolSize), options: options) {
                try await SQLiteConnection.open(path: path, create: false)
            }
            return try SQLSourceConnector(config: context.source, dialect: SQLiteDialect(), pool: pool)
        }
        registry.registerSampleCatalog(type: type) { source, base, files, size, seed in
            let database = try databasePath(source.connection, base: base, what: "source '\(source.name)'", create: true)
            let bodies = source.bodies.directory(resolvedAgainst: base)
            return try await SQLiteSampleCatalog.create(
                databasePath: database, table: source.table, bodiesRoot: bodies, files: files, size: size, seed: seed)
        }
        registry.registerMetadataStore(type: type, connection: SQLiteConnectionOptions.self) { connection, base in
            let path = try databasePath(connection, base: base, what: "metadata", create: true)
            let store = try await SQLiteMetadataStore.open(path: path)
            try await store.migrate()
            return store
        }
    }

    /// The database file of a connection (`database:`), resolved against the config's directory;
    /// with `create`, its directory is created (the metadata store's database is DES's own).
    static func databasePath(_ connection: ConnectionConfig, base: String, what: String, create: Bool) throws -> String {
        guard let database = connection.database, !database.isEmpty else {
            throw DESKitError(.configuration, "\(what): connection.database must name the SQLite file")
        }
        let path = database.hasPrefix("/") ? database : (base as NSString).appendingPathComponent(database)
        let dir = (path as NSString).deletingLastPathComponent
        if create, !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        return path
    }
}

/// The SQLite plugin's `connection:` block: no keys of its own; `database` (the file) is required.
public struct SQLiteConnectionOptions: ConnectionPluginConfiguration {
    public static let keys: [ConfigKey] = []
    /// A file has no server, login or character set: those keys are warned about.
    public static let ignoredConnectionKeys: Set<String> = ["charset", "host", "port", "username", "password"]
    public init(connection: ConnectionConfig) throws {
        guard let database = connection.database, !database.isEmpty else {
            throw ConfigProblem("sqlite plugin: 'database' must name the SQLite file", key: "database")
        }
    }
}
