import DESKit

/// SQLite's side of the metadata store: `?N` placeholders, REAL epoch seconds for time, and the
/// schema's DDL. The statements themselves are ``SQLMetadataStore``'s, shared with every database.
public struct SQLiteMetadataDialect: SQLMetadataDialect {
    /// Creates the dialect.
    public init() {}

    public var name: String { "sqlite" }
    public func placeholder(_ position: Int) -> String { "?\(position)" }
    public var now: String { SQLiteDialect.now }

    public var migrations: [[String]] {
        [[
            """
            CREATE TABLE IF NOT EXISTS des_shard_locks (
              shard INTEGER PRIMARY KEY, holder_pod TEXT NOT NULL, holder_instance TEXT NOT NULL,
              token INTEGER NOT NULL, expires_at REAL NOT NULL, acquired_at REAL NOT NULL)
            """,
            """
            CREATE TABLE IF NOT EXISTS des_containers (
              id INTEGER PRIMARY KEY AUTOINCREMENT, day TEXT NOT NULL, shard INTEGER NOT NULL,
              key TEXT NOT NULL UNIQUE, state TEXT NOT NULL, holder TEXT NOT NULL, token INTEGER NOT NULL,
              file_count INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0, size INTEGER, etag TEXT,
              created_at REAL NOT NULL, updated_at REAL NOT NULL, uploaded_at REAL)
            """,
            "CREATE INDEX IF NOT EXISTS des_containers_lookup ON des_containers(day, shard, state)",
            "CREATE INDEX IF NOT EXISTS des_containers_state ON des_containers(state)",
            """
            CREATE TABLE IF NOT EXISTS des_dead_letters (
              id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, catalog_entry_id TEXT NOT NULL,
              des_name TEXT, stage TEXT NOT NULL, error_message TEXT NOT NULL, created_at REAL NOT NULL,
              resolved INTEGER NOT NULL DEFAULT 0, resolved_at REAL)
            """,
            "CREATE VIEW IF NOT EXISTS des_marker_dlq AS SELECT * FROM des_dead_letters WHERE stage = 'marker'",
        ]]
    }
}

/// The embedded default's metadata store: ``SQLMetadataStore`` over a SQLite file.
public enum SQLiteMetadataStore {
    /// Opens (creating if needed) the store's database file. Call `migrate()` before use.
    public static func open(path: String) async throws -> SQLMetadataStore {
        // Fail fast when the file cannot be opened, naming it; later connections reopen it as needed.
        let first = try await SQLiteConnection.open(path: path)
        await first.close()
        let pool = SQLConnectionPool(size: 1) { try await SQLiteConnection.open(path: path) }
        return SQLMetadataStore(pool: pool, dialect: SQLiteMetadataDialect())
    }
}
