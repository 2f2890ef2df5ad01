import DESKit
import DESSQLDialects
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
        let connection = try await SQLiteConnection.open(path: databasePath)
        do {
            let ddl = try SQLiteCatalogSchema.createStatements(for: table)
            let insert = try SQLiteCatalogSchema.insertStatement(for: table)
            // The table first, and its shape checked: no body is written for a table that cannot take the rows.
            try await connection.withTransaction { session in
                for statement in ddl { try session.execute(statement) }
                try SampleBodies.requireShape(of: table, in: session, dialect: SQLiteDialect())
            }
            let rows = try SampleBodies.write(
                table: table, bodiesRoot: bodiesRoot, files: files, size: size, seed: seed, metadataValue: metadataValue
            ).rows
            try await connection.withTransaction { session in
                for row in rows { try session.execute(insert, row) }
            }
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        return files
    }
}
