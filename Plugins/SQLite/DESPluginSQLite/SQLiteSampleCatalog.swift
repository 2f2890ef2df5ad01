import DESKit
import Foundation

/// Writes sample bodies and SQLite catalog rows (`des sample`, tests and benchmarks).
public enum SQLiteSampleCatalog {
    /// Creates the table if needed and adds `files` rows with bodies; returns the number added.
    public static func create(
        databasePath: String, table: TableConfig, bodiesRoot: String, files: Int, size: Int?, seed: UInt64,
        metadataValue: @escaping @Sendable (String, Int) -> SQLValue = { column, i in .text("\(column)-\(i % 7)") }
    ) async throws -> Int {
        let dir = (databasePath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir.isEmpty ? "." : dir, withIntermediateDirectories: true)
        let bodies = try SampleBodies.write(
            table: table, bodiesRoot: bodiesRoot, files: files, size: size, seed: seed, metadataValue: metadataValue)
        let connection = try await SQLiteConnection.open(path: databasePath)
        let ddl = try SQLiteCatalogSchema.createStatements(for: table)
        let insert = try SQLiteCatalogSchema.insertStatement(for: table)
        let rows = bodies.rows
        try await connection.withTransaction { session in
            for statement in ddl { try session.execute(statement) }
            for row in rows { try session.execute(insert, row) }
        }
        await connection.close()
        return files
    }
}
