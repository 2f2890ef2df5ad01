import DESKit
import DESPluginSQLite
import DESSQLDialects
import Foundation
import Testing

/// What SQLite's planner makes of the statements DES writes, on a table shaped as a filesystem
/// catalog is: several indexes led by the `source` column its rows are filtered by.
@Suite("SQLite query plans") struct SQLitePlanTests {
    /// The plan of `sql` (its `EXPLAIN QUERY PLAN` details, joined).
    static func plan(_ connection: SQLiteConnection, _ sql: String) async throws -> String {
        try await connection.withSession { try $0.query("EXPLAIN QUERY PLAN " + sql, []) }.compactMap { $0[3].text }.joined(separator: "; ")
    }

    @Test("A name list with a source's filter is looked up by the name index, not by walking every row of the source through an index the filter's column leads")
    func nameListUsesNameIndex() async throws {
        let path = NSTemporaryDirectory() + "des-plan-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let connection = try await SQLiteConnection.open(path: path)
        try await connection.withTransaction { s in
            try s.execute(
                "CREATE TABLE files (id INTEGER PRIMARY KEY, source TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT, status TEXT, des_name TEXT)")
            try s.execute("CREATE UNIQUE INDEX files_path ON files (source, path)")
            try s.execute("CREATE INDEX files_sha256 ON files (source, sha256)")
            try s.execute("CREATE INDEX files_name ON files (des_name)")
            for i in 0..<2000 {
                try s.execute(
                    "INSERT INTO files (source, path, sha256, status, des_name) VALUES ('tree', ?1, ?2, 'packed', ?3)",
                    [.text("d/f\(i)"), .text(String(i, radix: 16)), .text("DES_20261207_(\(i))")])
            }
        }
        let names = (0..<300).map { "'DES_20261207_(\($0 * 3))'" }.joined(separator: ", ")
        let filter = "source = 'tree'"
        let plain = try await Self.plan(connection, "SELECT id, status FROM files WHERE des_name IN (\(names)) AND (\(filter))")
        let hinted = try await Self.plan(
            connection, "SELECT id, status FROM files WHERE des_name IN (\(names)) AND (\(SQLiteDialect().listLookupFilter(filter)))")
        // Unhinted, SQLite walks the source's rows by its digest index: what the hint is for.
        #expect(plain.contains("files_sha256") || plain.contains("files_path"), "\(plain)")
        #expect(hinted.contains("files_name") && !hinted.contains("files_sha256") && !hinted.contains("files_path"), "\(hinted)")
        // The hint keeps the filter's meaning.
        let rows = try await connection.withSession {
            try $0.query("SELECT COUNT(*) FROM files WHERE des_name IN (\(names)) AND (\(SQLiteDialect().listLookupFilter("source = 'other'")))", [])
        }
        #expect(rows.first?[0].int == 0)
        await connection.close()
    }
}
