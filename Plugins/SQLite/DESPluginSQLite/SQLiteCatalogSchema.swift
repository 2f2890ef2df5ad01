import DESKit
import DESSQLDialects

/// DDL for a catalog table shaped by a source's column mapping, with the
/// indexes the marker and the claims use. For samples, demos and tests.
public enum SQLiteCatalogSchema {
    /// `CREATE TABLE IF NOT EXISTS …` plus its indexes.
    public static func createStatements(for table: TableConfig) throws -> [String] {
        let d = SQLiteDialect()
        let shape = try SQLTableShape(config: table, dialect: d)
        let c = table.columns
        var columns = ["\(shape.id) INTEGER PRIMARY KEY", "\(shape.key) TEXT NOT NULL"]
        if let bucket = shape.bucket { columns.append("\(bucket) TEXT") }
        if let size = shape.size { columns.append("\(size) INTEGER") }
        if let created = c.createdAt { columns.append("\(d.quoteIdentifier(created)) REAL") }
        columns += c.metadata.map { "\(d.quoteIdentifier($0.column)) TEXT" }
        columns += [
            "\(shape.status) TEXT", "\(shape.desName) TEXT", "\(shape.shard) INTEGER",
            "\(d.quoteIdentifier(c.desContainer)) TEXT", "\(shape.claimedBy) TEXT", "\(d.quoteIdentifier(c.claimedAt)) REAL",
            "\(d.quoteIdentifier(c.error)) TEXT",
        ]
        if let hash = shape.desHash { columns.append("\(hash) TEXT") }
        let name = table.name
        return [
            "CREATE TABLE IF NOT EXISTS \(shape.table) (\(columns.joined(separator: ", ")))",
            "CREATE INDEX IF NOT EXISTS \(d.quoteIdentifier(name + "_des_claim")) ON \(shape.table) (\(shape.status), \(shape.shard), \(shape.id))",
            "CREATE INDEX IF NOT EXISTS \(d.quoteIdentifier(name + "_des_unnamed")) ON \(shape.table) (\(shape.id)) WHERE \(shape.desName) IS NULL",
            "CREATE INDEX IF NOT EXISTS \(d.quoteIdentifier(name + "_des_name")) ON \(shape.table) (\(shape.desName))",
        ]
    }

    /// `INSERT INTO table (key, size, metadata…) VALUES (?…)` for new, unnamed rows.
    public static func insertStatement(for table: TableConfig) throws -> String {
        let d = SQLiteDialect()
        let shape = try SQLTableShape(config: table, dialect: d)
        var cols = [shape.key]
        if let size = shape.size { cols.append(size) }
        cols += table.columns.metadata.map { d.quoteIdentifier($0.column) }
        if table.statusNewValue != nil { cols.append(shape.status) }
        return "INSERT INTO \(shape.table) (\(cols.joined(separator: ", "))) VALUES (\(d.placeholders(cols.count)))"
    }
}
