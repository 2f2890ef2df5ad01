import DESKit

/// SQLite's SQL: claims are `UPDATE … RETURNING` inside `BEGIN IMMEDIATE`
/// (SQLite has one writer at a time, so no row locks are needed); times are
/// REAL seconds since the Unix epoch.
public struct SQLiteDialect: SQLDialect {
    /// Creates the dialect.
    public init() {}

    public var name: String { "sqlite" }

    public func quoteIdentifier(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public func placeholder(_ position: Int) -> String { "?\(position)" }

    /// Database time as REAL epoch seconds.
    public static let now = "((julianday('now') - 2440587.5) * 86400.0)"

    public var currentTimestamp: String { Self.now }

    public func olderThan(_ column: String, seconds: Double) -> String {
        "\(column) < \(Self.now) - \(seconds)"
    }

    public var maxBindParameters: Int { 32_766 }

    public func claim(in session: any SQLSession, table t: SQLTableShape, shards: [Int], limit: Int, holder: String)
        throws -> [SQLRow]
    {
        let pending = t.pendingPredicate(self, shards: shards, firstBind: 3)
        let sql = """
            UPDATE \(t.table) SET \(t.status) = ?1, \(t.claimedBy) = ?2, \(t.claimedAt) = \(Self.now) \
            WHERE \(t.id) IN (SELECT \(t.id) FROM \(t.table) WHERE \(pending.sql) \
            ORDER BY \(t.id) LIMIT ?\(3 + pending.binds.count)) \
            RETURNING \(t.claimSelectList)
            """
        return try session.query(sql, [.text(t.statusClaimed), .text(holder)] + pending.binds + [.int(Int64(limit))])
    }

    public func selectUnnamed(in session: any SQLSession, table t: SQLTableShape, limit: Int) throws -> [SQLRow] {
        let unnamed = t.unnamedPredicate(self)
        let sql = "SELECT \(t.id), \(t.key), \(t.desName) FROM \(t.table) WHERE \(unnamed.sql) ORDER BY \(t.id) LIMIT ?\(unnamed.binds.count + 1)"
        return try session.query(sql, unnamed.binds + [.int(Int64(limit))])
    }

    public func assignNames(in session: any SQLSession, table t: SQLTableShape, _ assignments: [NameAssignment]) throws
        -> Int
    {
        guard !assignments.isEmpty else { return 0 }
        var binds: [SQLValue] = [.text(t.statusPending)]
        var tuples: [String] = []
        tuples.reserveCapacity(assignments.count)
        for a in assignments {
            let n = binds.count
            tuples.append("(?\(n + 1), ?\(n + 2), ?\(n + 3), ?\(n + 4))")
            binds += [.rowID(a.rowID), .text(a.desName), .text(a.hash), .int(Int64(a.shard))]
        }
        var set = "\(t.desName) = v.name, \(t.shard) = v.shard, \(t.status) = ?1"
        if let hash = t.desHash { set += ", \(hash) = v.hash" }
        let sql = """
            WITH v(id, name, hash, shard) AS (VALUES \(tuples.joined(separator: ", "))) \
            UPDATE \(t.table) AS des_t SET \(set) FROM v WHERE des_t.\(t.id) = v.id AND des_t.\(t.desName) IS NULL
            """
        return try session.execute(sql, binds)
    }
}
