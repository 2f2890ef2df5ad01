import DESKit
import DESSQLDialects

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
