import DESKit
import DESSQLDialects
import Foundation

/// Writes sample bodies and PostgreSQL catalog rows (`des sample` on a PostgreSQL source).
public enum PostgresSampleCatalog {
    /// Creates the table (and its claim indexes) if needed and adds `files` rows with bodies.
    public static func create(
        connection: PostgresConnection, table: TableConfig, bodiesRoot: String, files: Int, size: Int?, seed: UInt64
    ) async throws -> Int {
        let d = PostgresDialect()
        let shape = try SQLTableShape(config: table, dialect: d)
        var columns = ["\(shape.id) BIGSERIAL PRIMARY KEY", "\(shape.key) TEXT NOT NULL"]
        if let bucket = shape.bucket { columns.append("\(bucket) TEXT") }
        if let size = shape.size { columns.append("\(size) BIGINT") }
        let c = table.columns
        columns += c.metadata.map { "\(d.quoteIdentifier($0.column)) TEXT" }
        columns += [
            "\(shape.status) TEXT", "\(shape.desName) TEXT", "\(shape.shard) INTEGER", "\(d.quoteIdentifier(c.desContainer)) TEXT",
            "\(shape.claimedBy) TEXT", "\(d.quoteIdentifier(c.claimedAt)) DOUBLE PRECISION", "\(d.quoteIdentifier(c.error)) TEXT",
        ]
        if let hash = shape.desHash { columns.append("\(hash) TEXT") }
        let name = table.name
        func literal(_ value: String) -> String { "'" + value.replacingOccurrences(of: "'", with: "''") + "'" }
        let ddl = [
            "CREATE TABLE IF NOT EXISTS \(shape.table) (\(columns.joined(separator: ", ")))",
            // Partial indexes hold only the rows in flight, so a claim or a mark adds no entry to a
            // status index that spans the table (docs/operations.md, "Catalog indexes").
            "CREATE INDEX IF NOT EXISTS \(d.quoteIdentifier(name + "_des_claim")) ON \(shape.table) (\(shape.shard), \(shape.id)) "
                + "WHERE \(shape.status) = \(literal(shape.statusPending))",
            "CREATE INDEX IF NOT EXISTS \(d.quoteIdentifier(name + "_des_claimed")) ON \(shape.table) (\(shape.shard)) "
                + "WHERE \(shape.status) = \(literal(shape.statusClaimed))",
            "CREATE INDEX IF NOT EXISTS \(d.quoteIdentifier(name + "_des_unnamed")) ON \(shape.table) (\(shape.id)) WHERE \(shape.desName) IS NULL",
        ]
        // The table first, and its shape checked: no body is written for a table that cannot take the rows.
        try await connection.withTransaction { s in
            for statement in ddl { try s.execute(statement) }
            try SampleBodies.requireShape(of: table, in: s, dialect: d)
        }
        let bodies = try SampleBodies.write(table: table, bodiesRoot: bodiesRoot, files: files, size: size, seed: seed)
        try await connection.withTransaction { s in try bodies.insert(into: s, table: table, dialect: d) }
        return files
    }
}
