import DESKit
import Testing

/// A dialect that only sets the row-limit form and placeholders, so the shared SQL can be read exactly.
private struct FormDialect: SQLDialect {
    var rowLimit: SQLRowLimit
    var name: String { "form" }
    func quoteIdentifier(_ identifier: String) -> String { "[\(identifier)]" }
    func placeholder(_ position: Int) -> String { "@p\(position)" }
    var currentTimestamp: String { "NOW()" }
    func olderThan(_ column: String, seconds: Double) -> String { "\(column) < NOW() - \(seconds)" }
    var maxBindParameters: Int { 2100 }
    func claim(in session: any SQLSession, table: SQLTableShape, shards: [Int], limit: Int, holder: String) throws -> [SQLRow] { [] }
    func selectUnnamed(in session: any SQLSession, table: SQLTableShape, limit: Int) throws -> [SQLRow] { [] }
    func assignNames(in session: any SQLSession, table: SQLTableShape, _ assignments: [NameAssignment]) throws -> Int { 0 }
    func reflectTable(in session: any SQLSession, schema: String?, table: String) throws -> SQLTableCatalog { SQLTableCatalog(columns: []) }
}

@Suite("SQL shared by every dialect")
struct SQLDialectTests {
    @Test("A row limit in each dialect's form", arguments: [
        (SQLRowLimit.limit, "SELECT a FROM t ORDER BY a LIMIT @p3", true),
        (.top, "SELECT TOP (@p3) a FROM t ORDER BY a", true),
        (.fetchFirst, "SELECT a FROM t ORDER BY a FETCH FIRST @p3 ROWS ONLY", true),
        (.cursor, "SELECT a FROM t ORDER BY a", false),
    ])
    func rowLimits(form: SQLRowLimit, sql: String, bound: Bool) {
        let d = FormDialect(rowLimit: form)
        let limited = d.limitedSelect("a", from: "t ORDER BY a", limit: 50, bind: 3)
        #expect(limited.sql == sql)
        #expect((limited.bind != nil) == bound)
        #expect(limited.maxRows == 50)
        #expect(d.healthQuery == "SELECT 1")
    }

    @Test("The unnamed and pending predicates are written once, with the shard filter inside")
    func predicates() throws {
        var table = TableConfig(name: "files", columns: ColumnMapping())
        table.whereClause = "tenant = 7"
        let shape = try SQLTableShape(config: table, dialect: FormDialect(rowLimit: .limit))
        let unnamed = shape.unnamedPredicate(FormDialect(rowLimit: .limit), firstBind: 4)
        #expect(unnamed.sql == "[des_name] IS NULL AND ([des_status] IS NULL OR [des_status] <> @p4) AND ((tenant = 7))")
        #expect(unnamed.binds == [.text(shape.statusFailed)])
        let pending = shape.pendingPredicate(FormDialect(rowLimit: .limit), shards: [1, 5], firstBind: 2)
        #expect(pending.sql.hasPrefix("[des_status] = @p2 AND [des_shard] IN (1, 5) AND [des_name] IS NOT NULL"))
        #expect(pending.binds == [.text(shape.statusPending)])
    }
}
