import DESKit

/// Oracle's SQL: `"NAME"` quoting (a name written in lower case in the config is upper-cased, as
/// Oracle stores an unquoted name); placeholders written `?{n}` (the ODBC driver sends `?`);
/// epoch seconds from `SYS_EXTRACT_UTC(SYSTIMESTAMP)`; `SELECT 1 FROM DUAL`.
///
/// A claim opens a `SELECT id … FOR UPDATE SKIP LOCKED` cursor and fetches `n` rows of it — the
/// rows are locked as they are fetched, and only those (Oracle refuses `FETCH FIRST n ROWS ONLY`
/// with `FOR UPDATE`, ORA-02014) — then updates them and reads them back, `IN` lists of at most
/// 1,000 ids (Oracle's limit, ORA-01795).
public struct OracleDialect: SQLDialect {
    /// Creates the dialect.
    public init() {}

    public var name: String { "oracle" }

    public func quoteIdentifier(_ identifier: String) -> String {
        let plain = identifier.allSatisfy { ($0.isLowercase && $0.isASCII) || $0.isNumber || $0 == "_" || $0 == "$" }
        let name = plain ? identifier.uppercased() : identifier
        return "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public func placeholder(_ position: Int) -> String { "?{\(position)}" }

    /// Database time as epoch seconds (whole seconds).
    public static let now = "((CAST(SYS_EXTRACT_UTC(SYSTIMESTAMP) AS DATE) - DATE '1970-01-01') * 86400)"

    public var currentTimestamp: String { Self.now }

    public func olderThan(_ column: String, seconds: Double) -> String { "\(column) < \(Self.now) - \(seconds)" }

    public var maxBindParameters: Int { 65_535 }

    public var rowLimit: SQLRowLimit { .cursor }

    public var healthQuery: String { "SELECT 1 FROM DUAL" }

    /// Ids per `IN (…)` list (ORA-01795 above 1,000).
    public static let idChunk = 1_000

    public func claim(in session: any SQLSession, table t: SQLTableShape, shards: [Int], limit: Int, holder: String)
        throws -> [SQLRow]
    {
        let pending = t.pendingPredicate(self, shards: shards, firstBind: 1)
        let select = "SELECT \(t.id) FROM \(t.table) WHERE \(pending.sql) FOR UPDATE SKIP LOCKED"
        let ids = try session.query(select, pending.binds, maxRows: limit).map { $0[0] }
        guard !ids.isEmpty else { return [] }
        var rows: [SQLRow] = []
        for start in stride(from: 0, to: ids.count, by: Self.idChunk) {
            let chunk = Array(ids[start..<min(ids.count, start + Self.idChunk)])
            try session.execute(
                """
                UPDATE \(t.table) SET \(t.status) = ?{1}, \(t.claimedBy) = ?{2}, \(t.claimedAt) = \(Self.now) \
                WHERE \(t.id) IN (\(placeholders(chunk.count, from: 3)))
                """, [.text(t.statusClaimed), .text(holder)] + chunk)
            rows += try session.query(
                "SELECT \(t.claimSelectList) FROM \(t.table) WHERE \(t.id) IN (\(placeholders(chunk.count)))", chunk)
        }
        return rows
    }

    public func selectUnnamed(in session: any SQLSession, table t: SQLTableShape, limit: Int) throws -> [SQLRow] {
        let unnamed = t.unnamedPredicate(self)
        let sql = "SELECT \(t.id), \(t.key), \(t.desName) FROM \(t.table) WHERE \(unnamed.sql) ORDER BY \(t.id) FOR UPDATE SKIP LOCKED"
        return try session.query(sql, unnamed.binds, maxRows: limit)
    }

    /// Rows per `MERGE`.
    public static let assignChunk = 250

    /// `MERGE INTO t USING (SELECT … FROM DUAL UNION ALL …) v ON (…) WHEN MATCHED THEN UPDATE SET … WHERE …`.
    public func assignNames(in session: any SQLSession, table t: SQLTableShape, _ assignments: [NameAssignment]) throws
        -> Int
    {
        var changed = 0
        for start in stride(from: 0, to: assignments.count, by: Self.assignChunk) {
            let chunk = assignments[start..<min(assignments.count, start + Self.assignChunk)]
            var binds: [SQLValue] = [.text(t.statusPending)]
            var selects: [String] = []
            for a in chunk {
                let n = binds.count
                selects.append("SELECT ?{\(n + 1)} AS id, ?{\(n + 2)} AS name, ?{\(n + 3)} AS hash, ?{\(n + 4)} AS shard FROM DUAL")
                binds += [.rowID(a.rowID), .text(a.desName), .text(a.hash), .int(Int64(a.shard))]
            }
            var set = "des_t.\(t.desName) = v.name, des_t.\(t.shard) = v.shard, des_t.\(t.status) = ?{1}"
            if let hash = t.desHash { set += ", des_t.\(hash) = v.hash" }
            let sql = """
                MERGE INTO \(t.table) des_t USING (\(selects.joined(separator: " UNION ALL "))) v ON (des_t.\(t.id) = v.id) \
                WHEN MATCHED THEN UPDATE SET \(set) WHERE des_t.\(t.desName) IS NULL
                """
            changed += try session.execute(sql, binds)
        }
        return changed
    }
}
