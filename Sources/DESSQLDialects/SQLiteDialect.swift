import DESKit

/// SQLite's SQL: claims are `UPDATE … RETURNING` inside `BEGIN IMMEDIATE`
/// (SQLite has one writer at a time, so no row locks are needed); times are
/// REAL seconds since the Unix epoch.
public struct SQLiteDialect: SQLDialect {
    /// Creates the dialect.
    public init() {}

    public var name: String { "sqlite" }
    public var writesTouchedPagesAgain: Bool { true }

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

    /// `likely(filter)`: with no statistics SQLite's planner takes `source = 'x'` (a filesystem
    /// catalog's filter) for a selective condition and walks every row of the source through
    /// an index that column leads, instead of looking the listed names up in their index.
    /// `likely` keeps the filter's meaning and tells the planner it holds for most rows.
    public func listLookupFilter(_ filter: String) -> String { "likely(\(filter))" }

    public var transactionalDDL: Bool { true }

    public var partialIndexes: Bool { true }

    /// A column declared `TIMESTAMP`/`DATETIME` holds UTC text (`2025-01-01 12:00:00.000`, which
    /// sorts as it compares); any other holds REAL epoch seconds.
    public func now(for kind: SQLColumnKind) -> String {
        switch kind {
        case .timestamp, .timestampWithTimeZone: return "strftime('%Y-%m-%d %H:%M:%f', 'now')"
        default: return Self.now
        }
    }

    public func olderThan(_ column: String, kind: SQLColumnKind, seconds: Double) -> String {
        switch kind {
        case .timestamp, .timestampWithTimeZone:
            return "\(column) < strftime('%Y-%m-%d %H:%M:%f', 'now', '\(-seconds) seconds')"
        default: return olderThan(column, seconds: seconds)
        }
    }

    public func ddlType(for role: SQLDESColumnRole) -> String {
        switch role {
        case .shard: return "INTEGER"
        case .claimedAt, .packedAt: return "REAL"
        default: return "TEXT"
        }
    }

    public func createIndex(name: String, table: String, columns: [String], predicate: String?) -> String {
        "CREATE INDEX IF NOT EXISTS \(quoteIdentifier(name)) ON \(table) (\(columns.joined(separator: ", ")))"
            + (predicate.map { " WHERE \($0)" } ?? "")
    }

    /// `pragma table_xinfo`: each column's declared type, classified by SQLite's affinity rules
    /// (a type naming `INT` is an integer, `CHAR`/`CLOB`/`TEXT` text, `BLOB` bytes, `REAL`/`FLOA`/
    /// `DOUB` a float), with `TIMESTAMP`/`DATETIME`, `DATE`, `JSON` and `BOOL` read as such;
    /// indexes from `pragma index_list` and `index_info`.
    public func reflectTable(in session: any SQLSession, schema: String?, table: String) throws -> SQLTableCatalog {
        let prefix = schema.map { quoteIdentifier($0) + "." } ?? ""
        let rows = try session.query("PRAGMA \(prefix)table_xinfo(\(quoteIdentifier(table)))", [])
        let columns = rows.compactMap { row -> SQLCatalogColumn? in
            guard let name = row["name"].text else { return nil }
            let type = row["type"].text ?? ""
            return SQLCatalogColumn(name: name, type: type, kind: Self.affinity(type), nullable: row["notnull"].int == 0)
        }
        var indexes: [[String]] = []
        for index in try session.query("PRAGMA \(prefix)index_list(\(quoteIdentifier(table)))", []) {
            guard let name = index["name"].text else { continue }
            let info = try session.query("PRAGMA \(prefix)index_info(\(quoteIdentifier(name)))", [])
            indexes.append(info.sorted { ($0["seqno"].int ?? 0) < ($1["seqno"].int ?? 0) }.compactMap { $0["name"].text })
        }
        return SQLTableCatalog(columns: columns, indexes: indexes)
    }

    /// The kind of a declared SQLite type.
    static func affinity(_ declared: String) -> SQLColumnKind {
        let t = declared.uppercased()
        if t.contains("TIMESTAMP") || t.contains("DATETIME") { return .timestamp }
        if t.contains("JSON") { return .json }
        if t.contains("BOOL") { return .boolean }
        if t.contains("INT") { return .integer }
        if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") || t.contains("UUID") { return .text }
        if t.contains("BLOB") { return .binary }
        if t.isEmpty { return .other }
        if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") { return .float }
        if t == "DATE" { return .date }
        return .decimal
    }

    public func claim(in session: any SQLSession, table t: SQLTableShape, shards: [Int], limit: Int, holder: String)
        throws -> [SQLRow]
    {
        let pending = t.pendingPredicate(self, shards: shards, firstBind: 3)
        let sql = """
            UPDATE \(t.table) SET \(t.status) = ?1, \(t.claimedBy) = ?2\(t.setClaimedAt(self)) \
            WHERE \(t.id) IN (SELECT \(t.id) FROM \(t.table) WHERE \(pending.sql) \
            ORDER BY \(t.id) LIMIT ?\(3 + pending.binds.count)) \
            RETURNING \(t.claimSelectList)
            """
        return try session.query(sql, [t.statusValue(t.statusClaimed), .text(holder)] + pending.binds + [.int(Int64(limit))])
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
        var binds: [SQLValue] = [t.statusValue(t.statusPending)]
        var tuples: [String] = []
        tuples.reserveCapacity(assignments.count)
        for a in assignments {
            let n = binds.count
            tuples.append("(?\(n + 1), ?\(n + 2), ?\(n + 3), ?\(n + 4))")
            binds += [t.idValue(a.rowID), .text(a.desName), .text(a.hash), .int(Int64(a.shard))]
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

/// SQLite's side of the metadata store: `?N` placeholders, REAL epoch seconds for time, and the
/// schema's DDL. The statements themselves are ``SQLMetadataStore``'s, shared with every database.
public struct SQLiteMetadataDialect: SQLMetadataDialect {
    /// Creates the dialect.
    public init() {}

    public var name: String { "sqlite" }
    public var writesTouchedPagesAgain: Bool { true }
    public func placeholder(_ position: Int) -> String { "?\(position)" }
    public var now: String { SQLiteDialect.now }

    public var migrations: [[String]] {
        [[
            """
            CREATE TABLE IF NOT EXISTS des_shard_locks (
              shard INTEGER PRIMARY KEY, holder_pod TEXT NOT NULL, holder_instance TEXT NOT NULL,
              token INTEGER NOT NULL, expires_at REAL NOT NULL, acquired_at REAL NOT NULL)
            """,
            """
            CREATE TABLE IF NOT EXISTS des_containers (
              id INTEGER PRIMARY KEY AUTOINCREMENT, day TEXT NOT NULL, shard INTEGER NOT NULL,
              key TEXT NOT NULL UNIQUE, state TEXT NOT NULL, holder TEXT NOT NULL, token INTEGER NOT NULL,
              file_count INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0, size INTEGER, etag TEXT,
              created_at REAL NOT NULL, updated_at REAL NOT NULL, uploaded_at REAL)
            """,
            "CREATE INDEX IF NOT EXISTS des_containers_lookup ON des_containers(day, shard, state)",
            "CREATE INDEX IF NOT EXISTS des_containers_state ON des_containers(state)",
            """
            CREATE TABLE IF NOT EXISTS des_dead_letters (
              id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, catalog_entry_id TEXT NOT NULL,
              des_name TEXT, stage TEXT NOT NULL, error_message TEXT NOT NULL, created_at REAL NOT NULL,
              resolved INTEGER NOT NULL DEFAULT 0, resolved_at REAL)
            """,
            "CREATE VIEW IF NOT EXISTS des_marker_dlq AS SELECT * FROM des_dead_letters WHERE stage = 'marker'",
        ], [
            // 2: container manifests (packer.claim_mode lease).
            "ALTER TABLE des_containers ADD COLUMN manifest TEXT",
            "ALTER TABLE des_containers ADD COLUMN marked_at REAL",
            "CREATE INDEX IF NOT EXISTS des_containers_unmarked ON des_containers(shard) WHERE manifest IS NOT NULL AND marked_at IS NULL",
        ], [
            // 3: deletes (tombstones) and compaction (containers retired, and what replaced them).
            """
            CREATE TABLE IF NOT EXISTS des_tombstones (
              seq INTEGER PRIMARY KEY AUTOINCREMENT, des_name TEXT NOT NULL UNIQUE, reason TEXT NOT NULL, origin TEXT NOT NULL,
              deleted_at REAL NOT NULL, container_id INTEGER, bytes INTEGER NOT NULL DEFAULT 0)
            """,
            "CREATE INDEX IF NOT EXISTS des_tombstones_container ON des_tombstones(container_id)",
            "ALTER TABLE des_containers ADD COLUMN retired_at REAL",
            "ALTER TABLE des_containers ADD COLUMN replaced_by INTEGER",
        ], [
            // 4: bodies des retire is about to delete (so a missing body is known to be its own doing).
            """
            CREATE TABLE IF NOT EXISTS des_retire_intents (
              source TEXT NOT NULL, row_id TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (source, row_id))
            """,
        ], [
            // 5: the names each uploaded container holds (first, last, and a filter where ranges overlap).
            "ALTER TABLE des_containers ADD COLUMN name_first TEXT",
            "ALTER TABLE des_containers ADD COLUMN name_last TEXT",
            "ALTER TABLE des_containers ADD COLUMN name_filter TEXT",
        ], [
            // 6: the outbox of events (written with each change they announce, pruned to the newest).
            """
            CREATE TABLE IF NOT EXISTS des_events (
              seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, container_id INTEGER, container_key TEXT, day TEXT,
              shard INTEGER, des_name TEXT, source TEXT, row_id TEXT, created_at REAL NOT NULL)
            """,
        ], [
            // 7: open dead letters by row: a letter is added only when its row has no open one of
            // the stage, and without this index each addition read every letter.
            "CREATE INDEX IF NOT EXISTS des_dead_letters_open ON des_dead_letters(source, catalog_entry_id, stage) WHERE resolved = 0",
        ]]
    }
}
