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

    public var transactionalDDL: Bool { true }

    public var partialIndexes: Bool { true }

    /// `datetime`/`datetime2` hold UTC (`SYSUTCDATETIME()`), `datetimeoffset` the instant, numbers epoch seconds.
    public func now(for kind: SQLColumnKind) -> String {
        switch kind {
        case .timestamp: return "SYSUTCDATETIME()"
        case .timestampWithTimeZone: return "SYSDATETIMEOFFSET()"
        case .integer: return "DATEDIFF_BIG(SECOND, '19700101', SYSUTCDATETIME())"
        default: return Self.now
        }
    }

    public func olderThan(_ column: String, kind: SQLColumnKind, seconds: Double) -> String {
        switch kind {
        case .timestamp, .timestampWithTimeZone:
            // DATEADD takes an int: milliseconds up to about 24 days, whole seconds beyond.
            let (unit, amount) = abs(seconds) < 2_000_000 ? ("MILLISECOND", Int64((seconds * 1000).rounded())) : ("SECOND", Int64(seconds.rounded()))
            return "\(column) < DATEADD(\(unit), \(-amount), \(now(for: kind)))"
        default: return olderThan(column, seconds: seconds)
        }
    }

    public func ddlType(for role: SQLDESColumnRole) -> String {
        switch role {
        case .status: return "NVARCHAR(64)"
        case .desName, .desHash, .claimedBy: return "NVARCHAR(255)"
        case .container: return "NVARCHAR(1024)"
        case .shard: return "INT"
        case .claimedAt, .packedAt: return "DATETIME2(6)"
        case .error: return "NVARCHAR(MAX)"
        }
    }

    /// T-SQL's `ALTER TABLE t ADD c type` (no `COLUMN`).
    public func addColumn(table: String, column: String, type: String) -> String {
        "ALTER TABLE \(table) ADD \(column) \(type)"
    }

    public func createIndex(name: String, table: String, columns: [String], predicate: String?) -> String {
        "CREATE INDEX \(quoteIdentifier(name)) ON \(table) (\(columns.joined(separator: ", ")))" + (predicate.map { " WHERE \($0)" } ?? "")
    }

    /// The reflection query: `sys.columns` joined to `sys.types` for the table `OBJECT_ID` finds.
    public static let reflectColumnsSQL = """
        SELECT c.name, t.name, c.max_length, c.precision, c.scale, c.is_nullable FROM sys.columns AS c \
        JOIN sys.types AS t ON t.user_type_id = c.user_type_id WHERE c.object_id = OBJECT_ID(?{1}) ORDER BY c.column_id
        """

    /// The indexes' columns, in key order.
    public static let reflectIndexesSQL = """
        SELECT i.name, col.name FROM sys.indexes AS i JOIN sys.index_columns AS ic ON ic.object_id = i.object_id \
        AND ic.index_id = i.index_id JOIN sys.columns AS col ON col.object_id = ic.object_id AND col.column_id = ic.column_id \
        WHERE i.object_id = OBJECT_ID(?{1}) AND ic.key_ordinal > 0 ORDER BY i.name, ic.key_ordinal
        """

    /// `sys.columns` and `sys.types`: `uniqueidentifier` is a uuid, `bit` a boolean, `datetime2`
    /// a timestamp, `datetimeoffset` one with a zone.
    public func reflectTable(in session: any SQLSession, schema: String?, table: String) throws -> SQLTableCatalog {
        let qualified = (schema.map { quoteIdentifier($0) + "." } ?? "") + quoteIdentifier(table)
        let columns = try session.query(Self.reflectColumnsSQL, [.text(qualified)]).compactMap { row -> SQLCatalogColumn? in
            guard let name = row[0].text, let type = row[1].text else { return nil }
            return SQLCatalogColumn(name: name, type: type, nullable: row[5].int != 0)
        }
        let indexes = try session.query(Self.reflectIndexesSQL, [.text(qualified)])
        return SQLTableCatalog(columns: columns, indexes: SQLTableCatalog.indexes(fromRows: indexes))
    }

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
            UPDATE des_c SET \(t.status) = ?{1}, \(t.claimedBy) = ?{2}\(t.setClaimedAt(self)) OUTPUT \(output)
            """
        return try session.query(sql, [t.statusValue(t.statusClaimed), .text(holder)] + pending.binds + [.int(Int64(limit))])
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

    /// `UPDATE des_t SET … FROM t AS des_t JOIN (VALUES (…), …) AS v(id, name, hash, shard) ON …`
    /// (four values a row: the generic layer keeps a statement under the 2,100-value limit).
    public func assignNames(in session: any SQLSession, table t: SQLTableShape, _ assignments: [NameAssignment]) throws
        -> Int
    {
        guard !assignments.isEmpty else { return 0 }
        var binds: [SQLValue] = [t.statusValue(t.statusPending)]
        var tuples: [String] = []
        for a in assignments {
            let n = binds.count
            tuples.append("(?{\(n + 1)}, ?{\(n + 2)}, ?{\(n + 3)}, ?{\(n + 4)})")
            binds += [t.idValue(a.rowID), .text(a.desName), .text(a.hash), .int(Int64(a.shard))]
        }
        var set = "\(t.desName) = v.name, \(t.shard) = v.shard, \(t.status) = ?{1}"
        if let hash = t.desHash { set += ", \(hash) = v.hash" }
        let sql = """
            UPDATE des_t SET \(set) FROM \(t.table) AS des_t JOIN (VALUES \(tuples.joined(separator: ", "))) \
            AS v(id, name, hash, shard) ON des_t.\(t.id) = v.id WHERE des_t.\(t.desName) IS NULL
            """
        return try session.execute(sql, binds)
    }

    /// A `VALUES` list of at most 1,000 rows (SQL Server's limit for a table value constructor).
    public var maxListLength: Int { 1_000 }
}
