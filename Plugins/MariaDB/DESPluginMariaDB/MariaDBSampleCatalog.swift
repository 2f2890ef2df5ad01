import DESKit
import DESSQLDialects
import Foundation

/// Writes sample bodies and MySQL/MariaDB catalog rows (`des sample` on a `mysql` or `mariadb` source).
public enum MariaDBSampleCatalog {
    /// Creates the table (InnoDB, utf8mb4, with the claim and name indexes) if needed and adds
    /// `files` rows with bodies. The claim time is a `DATETIME(6)`, as such tables usually have it.
    public static func create(
        connection: MariaDBConnection, table: TableConfig, bodiesRoot: String, files: Int, size: Int?, seed: UInt64
    ) async throws -> Int {
        let d = MariaDBDialect()
        let shape = try SQLTableShape(config: table, dialect: d)
        let c = table.columns
        var columns = ["\(shape.id) BIGINT AUTO_INCREMENT PRIMARY KEY", "\(shape.key) VARCHAR(1024) NOT NULL"]
        if let bucket = shape.bucket { columns.append("\(bucket) VARCHAR(255)") }
        if let size = shape.size { columns.append("\(size) BIGINT") }
        columns += c.metadata.map { "\(d.quoteIdentifier($0.column)) TEXT" }
        columns += [
            "\(shape.status) VARCHAR(64)", "\(shape.desName) VARCHAR(255)", "\(shape.shard) INT",
            "\(d.quoteIdentifier(c.desContainer)) VARCHAR(1024)", "\(shape.claimedBy) VARCHAR(255)",
            "\(d.quoteIdentifier(c.claimedAt)) DATETIME(6)", "\(d.quoteIdentifier(c.error)) TEXT",
        ]
        if let hash = shape.desHash { columns.append("\(hash) VARCHAR(255)") }
        // MySQL has no CREATE INDEX IF NOT EXISTS: the indexes are part of the table.
        let name = table.name
        columns += [
            "INDEX \(d.quoteIdentifier(name + "_des_claim")) (\(shape.status), \(shape.shard), \(shape.id))",
            "INDEX \(d.quoteIdentifier(name + "_des_name")) (\(shape.desName))",
        ]
        let ddl = "CREATE TABLE IF NOT EXISTS \(shape.table) (\(columns.joined(separator: ", "))) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        // The table first, and its shape checked: no body is written for a table that cannot take the rows.
        try await connection.withTransaction { s in
            try s.execute(ddl)
            try SampleBodies.requireShape(of: table, in: s, dialect: d)
        }
        let bodies = try SampleBodies.write(table: table, bodiesRoot: bodiesRoot, files: files, size: size, seed: seed)
        try await connection.withTransaction { s in try bodies.insert(into: s, table: table, dialect: d) }
        return files
    }
}
