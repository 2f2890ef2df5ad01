import DESKit
import Foundation

/// Registers SQLite as a source type and a metadata store type.
public enum SQLitePlugin {
    /// The `connection.type` this plugin answers to.
    public static let type = "sqlite"

    /// Adds the SQLite source and metadata store to `registry`.
    public static func register(in registry: PluginRegistry) {
        registry.registerSource(type: type) { context in
            let path = try databasePath(context.source.connection, base: context.baseDirectory, what: "source '\(context.source.name)'")
            let pool = SQLConnectionPool(size: max(1, context.source.connection.poolSize)) {
                try await SQLiteConnection.open(path: path)
            }
            return try SQLSourceConnector(config: context.source, dialect: SQLiteDialect(), pool: pool)
        }
        registry.registerMetadataStore(type: type) { connection, base in
            let path = try databasePath(connection, base: base, what: "metadata")
            let store = try await SQLiteMetadataStore.open(path: path)
            try await store.migrate()
            return store
        }
    }

    /// The database file of a connection (`database:`), resolved against the config's directory.
    static func databasePath(_ connection: ConnectionConfig, base: String, what: String) throws -> String {
        guard let database = connection.database, !database.isEmpty else {
            throw DESKitError(.configuration, "\(what): connection.database must name the SQLite file")
        }
        let path = database.hasPrefix("/") ? database : (base as NSString).appendingPathComponent(database)
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        return path
    }
}
