import DESKit

/// SQL Server's SQL: `[name]` quoting; placeholders written `?{n}` (the FreeTDS driver sends them
/// as typed `sp_executesql` parameters `@P1…`, the ODBC driver as `?`); epoch seconds from
/// `SYSUTCDATETIME()`; `TOP (n)`; at most 2,100 values per statement.
///
/// A claim sets `READ COMMITTED` (SQL Server refuses `READPAST` under `SERIALIZABLE`), then updates a
/// `TOP (n)` CTE read `WITH (ROWLOCK, UPDLOCK, READPAST)` — rows another claimer holds are skipped,
/// never waited on — and returns the claimed rows with `OUTPUT inserted.…`.
public struct MSSQLDialect: SQLDialect {
    /// Creates the dialect.
    public init() {}

    public var name: String { "mssql" }

    public func quoteIdentifier(_ identifier: String) -> String {
        "[" + identifier.replacingOccurrences(of: "]", with: "]]") + "]"
    }

    public func placeholder(_ position: Int) -> String { "?{\(position)}" }

    /// Database time as epoch seconds (milliseconds).
    public static let now = "CAST(DATEDIFF_BIG(MILLISECOND, '19700101', SYSUTCDATETIME()) AS FLOAT) / 1000.0"

    public var currentTimestamp: String { Self.now }

    public func olderThan(_ column: String, seconds: Double) -> String { "\(column) < \(Self.now) - \(seconds)" }

    public var maxBindParameters: Int { 2_100 }

    public var rowLimit: SQLRowLimit { .top }

    /// The statement that makes claims skip locked rows: READPAST needs READ COMMITTED or lower.
    public static let isolation = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"

    public func claim(in session: any SQLSession, table t: SQLTableShape, shards: [Int], limit: Int, holder: String)
        throws -> [SQLRow]
    {
        try session.execute(Self.isolation)
        let pending = t.pendingPredicate(self, shards: shards, firstBind: 3)
        let output = t.claimColumns.map { "inserted.\($0)" }.joined(separator: ", ")
        let sql = """
            WITH des_c AS (SELECT TOP (\(placeholder(3 + pending.binds.count))) * FROM \(t.table) WITH (ROWLOCK, UPDLOCK, READPAST) \
            WHERE \(pending.sql)) \
            UPDATE des_c SET \(t.status) = ?{1}, \(t.claimedBy) = ?{2}, \(t.claimedAt) = \(Self.now) OUTPUT \(output)
            """
        return try session.query(sql, [.text(t.statusClaimed), .text(holder)] + pending.binds + [.int(Int64(limit))])
    }

    public func selectUnnamed(in session: any SQLSession, table t: SQLTableShape, limit: Int) throws -> [SQLRow] {
        try session.execute(Self.isolation)
        let unnamed = t.unnamedPredicate(self)
        let sql = """
            SELECT TOP (\(placeholder(unnamed.binds.count + 1))) \(t.id), \(t.key), \(t.desName) FROM \(t.table) \
            WITH (ROWLOCK, UPDLOCK, READPAST) WHERE \(unnamed.sql) ORDER BY \(t.id)
            """
        return try session.query(sql, unnamed.binds + [.int(Int64(limit))])
    }

    /// Rows per name-assignment statement: four values each, under the 2,100-value limit.
    public static let assignChunk = 500

    /// `UPDATE des_t SET … FROM t AS des_t JOIN (VALUES (…), …) AS v(id, name, hash, shard) ON …`.
    public func assignNames(in session: any SQLSession, table t: SQLTableShape, _ assignments: [NameAssignment]) throws
        -> Int
    {
        var changed = 0
        for start in stride(from: 0, to: assignments.count, by: Self.assignChunk) {
            let chunk = assignments[start..<min(assignments.count, start + Self.assignChunk)]
            var binds: [SQLValue] = [.text(t.statusPending)]
            var tuples: [String] = []
            for a in chunk {
                let n = binds.count
                tuples.append("(?{\(n + 1)}, ?{\(n + 2)}, ?{\(n + 3)}, ?{\(n + 4)})")
                binds += [.rowID(a.rowID), .text(a.desName), .text(a.hash), .int(Int64(a.shard))]
            }
            var set = "\(t.desName) = v.name, \(t.shard) = v.shard, \(t.status) = ?{1}"
            if let hash = t.desHash { set += ", \(hash) = v.hash" }
            let sql = """
                UPDATE des_t SET \(set) FROM \(t.table) AS des_t JOIN (VALUES \(tuples.joined(separator: ", "))) \
                AS v(id, name, hash, shard) ON des_t.\(t.id) = v.id WHERE des_t.\(t.desName) IS NULL
                """
            changed += try session.execute(sql, binds)
        }
        return changed
    }
}
