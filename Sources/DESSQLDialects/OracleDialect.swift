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
    public var maxListLength: Int { 1_000 }

    public var identifiersCaseSensitive: Bool { true }

    /// As ``quoteIdentifier(_:)`` stores it: a name written in lower case is upper-cased.
    public func storedName(_ identifier: String) -> String {
        let plain = identifier.allSatisfy { ($0.isLowercase && $0.isASCII) || $0.isNumber || $0 == "_" || $0 == "$" }
        return plain ? identifier.uppercased() : identifier
    }

    /// `TIMESTAMP`/`DATE` hold UTC (`SYS_EXTRACT_UTC(SYSTIMESTAMP)`), `TIMESTAMP WITH TIME ZONE` the instant.
    public func now(for kind: SQLColumnKind) -> String {
        switch kind {
        case .timestamp, .date: return "SYS_EXTRACT_UTC(SYSTIMESTAMP)"
        case .timestampWithTimeZone: return "SYSTIMESTAMP"
        default: return Self.now
        }
    }

    public func olderThan(_ column: String, kind: SQLColumnKind, seconds: Double) -> String {
        switch kind {
        case .timestamp, .date, .timestampWithTimeZone:
            return "\(column) < \(now(for: kind)) - NUMTODSINTERVAL(\(seconds), 'SECOND')"
        default: return olderThan(column, seconds: seconds)
        }
    }

    public func ddlType(for role: SQLDESColumnRole) -> String {
        switch role {
        case .status: return "VARCHAR2(64)"
        case .desName, .desHash, .claimedBy: return "VARCHAR2(255)"
        case .container: return "VARCHAR2(1024)"
        case .shard: return "NUMBER(10)"
        case .claimedAt, .packedAt: return "TIMESTAMP(6)"
        case .error: return "VARCHAR2(4000)"
        }
    }

    /// Oracle's `ALTER TABLE t ADD (c type)`.
    public func addColumn(table: String, column: String, type: String) -> String {
        "ALTER TABLE \(table) ADD (\(column) \(type))"
    }

    /// The reflection query over `ALL_TAB_COLUMNS` (the owner given, or the session's schema).
    public static let reflectColumnsSQL = """
        SELECT COLUMN_NAME, DATA_TYPE, DATA_PRECISION, DATA_SCALE, NULLABLE FROM ALL_TAB_COLUMNS \
        WHERE OWNER = COALESCE(?{1}, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) AND TABLE_NAME = ?{2} ORDER BY COLUMN_ID
        """

    /// The indexes' columns, in key order.
    public static let reflectIndexesSQL = """
        SELECT INDEX_NAME, COLUMN_NAME FROM ALL_IND_COLUMNS \
        WHERE TABLE_OWNER = COALESCE(?{1}, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) AND TABLE_NAME = ?{2} \
        ORDER BY INDEX_NAME, COLUMN_POSITION
        """

    /// `ALL_TAB_COLUMNS`: `NUMBER` with scale 0 is an integer, `DATE` (which holds a time) and
    /// `TIMESTAMP(n)` timestamps, `RAW` bytes.
    public func reflectTable(in session: any SQLSession, schema: String?, table: String) throws -> SQLTableCatalog {
        let owner: SQLValue = schema.map { .text(storedName($0)) } ?? .null
        let columns = try session.query(Self.reflectColumnsSQL, [owner, .text(storedName(table))]).compactMap { row -> SQLCatalogColumn? in
            guard let name = row[0].text, let type = row[1].text else { return nil }
            var kind = SQLColumnKind.classify(type)
            if type.uppercased() == "NUMBER", row[3].int == 0 { kind = .integer }
            if type.uppercased() == "DATE" { kind = .timestamp }
            return SQLCatalogColumn(name: name, type: type, kind: kind, nullable: row[4].text != "N")
        }
        let indexes = try session.query(Self.reflectIndexesSQL, [owner, .text(storedName(table))])
        return SQLTableCatalog(columns: columns, indexes: SQLTableCatalog.indexes(fromRows: indexes))
    }

    public func claim(in session: any SQLSession, table t: SQLTableShape, shards: [Int], limit: Int, holder: String)
        throws -> [SQLRow]
    {
        let pending = t.pendingPredicate(self, shards: shards, firstBind: 1)
        let select = "SELECT \(t.id) FROM \(t.table) WHERE \(pending.sql) FOR UPDATE SKIP LOCKED"
        let ids = try session.query(select, pending.binds, maxRows: limit).map { $0[0] }
        guard !ids.isEmpty else { return [] }
        var rows: [SQLRow] = []
        let size = chunkSize(valuesPerRow: 1)
        for start in stride(from: 0, to: ids.count, by: size) {
            let chunk = Array(ids[start..<min(ids.count, start + size)])
            try session.execute(
                """
                UPDATE \(t.table) SET \(t.status) = ?{1}, \(t.claimedBy) = ?{2}\(t.setClaimedAt(self)) \
                WHERE \(t.id) IN (\(placeholders(chunk.count, from: 3)))
                """, [t.statusValue(t.statusClaimed), .text(holder)] + chunk)
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

    /// `MERGE INTO t USING (SELECT … FROM DUAL UNION ALL …) v ON (…) WHEN MATCHED THEN UPDATE SET … WHERE …`.
    public func assignNames(in session: any SQLSession, table t: SQLTableShape, _ assignments: [NameAssignment]) throws
        -> Int
    {
        guard !assignments.isEmpty else { return 0 }
        var binds: [SQLValue] = [t.statusValue(t.statusPending)]
        var selects: [String] = []
        for a in assignments {
            let n = binds.count
            selects.append("SELECT ?{\(n + 1)} AS id, ?{\(n + 2)} AS name, ?{\(n + 3)} AS hash, ?{\(n + 4)} AS shard FROM DUAL")
            binds += [t.idValue(a.rowID), .text(a.desName), .text(a.hash), .int(Int64(a.shard))]
        }
        var set = "des_t.\(t.desName) = v.name, des_t.\(t.shard) = v.shard, des_t.\(t.status) = ?{1}"
        if let hash = t.desHash { set += ", des_t.\(hash) = v.hash" }
        let sql = """
            MERGE INTO \(t.table) des_t USING (\(selects.joined(separator: " UNION ALL "))) v ON (des_t.\(t.id) = v.id) \
            WHEN MATCHED THEN UPDATE SET \(set) WHERE des_t.\(t.desName) IS NULL
            """
        return try session.execute(sql, binds)
    }
}
