import DESKit
import Foundation

/// MySQL's and MariaDB's SQL for the catalog: backtick quoting; placeholders written `?{n}`
/// (numbered, so that the shared SQL may name a value twice or out of order — the driver
/// turns them into `?` and orders the values, see ``NumberedPlaceholders``); epoch seconds
/// from `UNIX_TIMESTAMP(NOW(6))`.
///
/// A claim is `SELECT id … LIMIT n FOR UPDATE SKIP LOCKED`, then `UPDATE … WHERE id IN (…)`
/// and a `SELECT` of the claimed rows, in one transaction (neither database has
/// `UPDATE … RETURNING`): rows another claimer holds are skipped, never waited on (MySQL 8,
/// MariaDB 10.6 and later).
public struct MariaDBDialect: SQLDialect {
    /// `mysql` or `mariadb`.
    public let name: String

    /// Creates the dialect.
    public init(name: String = "mariadb") { self.name = name }

    public var readsDecimalsAsDoubles: Bool { true }

    public func quoteIdentifier(_ identifier: String) -> String {
        "`" + identifier.replacingOccurrences(of: "`", with: "``") + "`"
    }

    public func placeholder(_ position: Int) -> String { "?{\(position)}" }

    /// Database time as epoch seconds (microseconds).
    public static let now = "UNIX_TIMESTAMP(NOW(6))"

    public var currentTimestamp: String { Self.now }

    public func olderThan(_ column: String, seconds: Double) -> String { "\(column) < \(Self.now) - \(seconds)" }

    public var maxBindParameters: Int { 65_535 }

    /// `DATETIME` holds UTC wall time (`UTC_TIMESTAMP(6)`); `TIMESTAMP` converts from the
    /// session's zone (`NOW(6)`); numbers hold epoch seconds.
    public func now(for kind: SQLColumnKind) -> String {
        switch kind {
        case .timestamp: return "UTC_TIMESTAMP(6)"
        case .timestampWithTimeZone: return "NOW(6)"
        case .integer: return "UNIX_TIMESTAMP()"
        default: return Self.now
        }
    }

    public func olderThan(_ column: String, kind: SQLColumnKind, seconds: Double) -> String {
        switch kind {
        case .timestamp, .timestampWithTimeZone:
            return "\(column) < \(now(for: kind)) - INTERVAL \(Int64((seconds * 1e6).rounded())) MICROSECOND"
        default: return olderThan(column, seconds: seconds)
        }
    }

    public func ddlType(for role: SQLDESColumnRole) -> String {
        switch role {
        case .status: return "VARCHAR(64)"
        case .desName, .desHash, .claimedBy: return "VARCHAR(255)"
        case .container: return "VARCHAR(1024)"
        case .shard: return "INT"
        case .claimedAt, .packedAt: return "DATETIME(6)"
        case .error: return "TEXT"
        }
    }

    /// MariaDB has `IF NOT EXISTS` on both; MySQL on neither (then `des catalog prepare` adds
    /// only what reflection found missing).
    public func addColumn(table: String, column: String, type: String) -> String {
        "ALTER TABLE \(table) ADD COLUMN \(name == "mariadb" ? "IF NOT EXISTS " : "")\(column) \(type)"
    }

    public func createIndex(name index: String, table: String, columns: [String], predicate: String?) -> String {
        "CREATE INDEX \(name == "mariadb" ? "IF NOT EXISTS " : "")\(quoteIdentifier(index)) ON \(table) (\(columns.joined(separator: ", ")))"
    }

    /// `information_schema.COLUMNS` (in the table's schema, or the connection's database),
    /// `tinyint(1)` read as a boolean; a MariaDB `JSON` column (a `LONGTEXT` checked by
    /// `json_valid`) found through `information_schema.CHECK_CONSTRAINTS`; indexes from `STATISTICS`.
    public func reflectTable(in session: any SQLSession, schema: String?, table: String) throws -> SQLTableCatalog {
        let schemaBind: SQLValue = schema.map { .text($0) } ?? .null
        let rows = try session.query(
            """
            SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, IS_NULLABLE FROM information_schema.COLUMNS \
            WHERE TABLE_SCHEMA = COALESCE(?{1}, DATABASE()) AND TABLE_NAME = ?{2} ORDER BY ORDINAL_POSITION
            """, [schemaBind, .text(table)])
        var jsonColumns = Set<String>()
        for check in try jsonChecks(in: session, schema: schemaBind, table: table) {
            guard let clause = check[0].text?.lowercased(), clause.hasPrefix("json_valid(") else { continue }
            jsonColumns.insert(clause.dropFirst("json_valid(".count).trimmingCharacters(in: CharacterSet(charactersIn: "`) ")))
        }
        let columns = rows.compactMap { row -> SQLCatalogColumn? in
            guard let name = row[0].text, let type = row[1].text else { return nil }
            let data = (row[2].text ?? type).lowercased()
            var kind = SQLColumnKind.classify(data == "enum" ? type : data)
            if type.lowercased().hasPrefix("tinyint(1)") { kind = .boolean }
            if jsonColumns.contains(name.lowercased()) { kind = .json }
            return SQLCatalogColumn(
                name: name, type: type, kind: kind, nullable: row[3].text == "YES", labels: SQLCatalogColumn.mysqlEnumLabels(type))
        }
        let indexes = try session.query(
            """
            SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
            WHERE TABLE_SCHEMA = COALESCE(?{1}, DATABASE()) AND TABLE_NAME = ?{2} ORDER BY INDEX_NAME, SEQ_IN_INDEX
            """, [schemaBind, .text(table)])
        return SQLTableCatalog(columns: columns, indexes: SQLTableCatalog.indexes(fromRows: indexes))
    }

    public func claim(in session: any SQLSession, table t: SQLTableShape, shards: [Int], limit: Int, holder: String)
        throws -> [SQLRow]
    {
        let pending = t.pendingPredicate(self, shards: shards, firstBind: 1)
        let select = "SELECT \(t.id) FROM \(t.table) WHERE \(pending.sql) LIMIT \(placeholder(pending.binds.count + 1)) FOR UPDATE SKIP LOCKED"
        let ids = try session.query(select, pending.binds + [.int(Int64(limit))]).map { $0[0] }
        guard !ids.isEmpty else { return [] }
        var rows: [SQLRow] = []
        rows.reserveCapacity(ids.count)
        let size = chunkSize(valuesPerRow: 1)
        for start in stride(from: 0, to: ids.count, by: size) {
            let chunk = Array(ids[start..<min(ids.count, start + size)])
            let update = """
                UPDATE \(t.table) SET \(t.status) = ?{1}, \(t.claimedBy) = ?{2}\(t.setClaimedAt(self)) \
                WHERE \(t.id) IN (\(placeholders(chunk.count, from: 3)))
                """
            try session.execute(update, [t.statusValue(t.statusClaimed), .text(holder)] + chunk)
            rows += try session.query(
                "SELECT \(t.claimSelectList) FROM \(t.table) WHERE \(t.id) IN (\(placeholders(chunk.count)))", chunk)
        }
        return rows
    }

    public func selectUnnamed(in session: any SQLSession, table t: SQLTableShape, limit: Int) throws -> [SQLRow] {
        let unnamed = t.unnamedPredicate(self)
        let sql = """
            SELECT \(t.id), \(t.key), \(t.desName) FROM \(t.table) WHERE \(unnamed.sql) \
            ORDER BY \(t.id) LIMIT \(placeholder(unnamed.binds.count + 1)) FOR UPDATE SKIP LOCKED
            """
        return try session.query(sql, unnamed.binds + [.int(Int64(limit))])
    }

    /// `UPDATE t JOIN (SELECT ? AS id, … UNION ALL SELECT …) v ON t.id = v.id SET …`; ids bound
    /// in the key's own type (a `varchar` key compares as text, so `'7'` and `'07'` stay two rows).
    public func assignNames(in session: any SQLSession, table t: SQLTableShape, _ assignments: [NameAssignment]) throws
        -> Int
    {
        guard !assignments.isEmpty else { return 0 }
        var binds: [SQLValue] = [t.statusValue(t.statusPending)]
        var selects: [String] = []
        selects.reserveCapacity(assignments.count)
        for a in assignments {
            let n = binds.count
            let row = selects.isEmpty
                ? "SELECT ?{\(n + 1)} AS id, ?{\(n + 2)} AS name, ?{\(n + 3)} AS hash, ?{\(n + 4)} AS shard"
                : "SELECT ?{\(n + 1)}, ?{\(n + 2)}, ?{\(n + 3)}, ?{\(n + 4)}"
            selects.append(row)
            binds += [t.idValue(a.rowID), .text(a.desName), .text(a.hash), .int(Int64(a.shard))]
        }
        var set = "des_t.\(t.desName) = v.name, des_t.\(t.shard) = v.shard, des_t.\(t.status) = ?{1}"
        if let hash = t.desHash { set += ", des_t.\(hash) = v.hash" }
        let sql = """
            UPDATE \(t.table) AS des_t JOIN (\(selects.joined(separator: " UNION ALL "))) AS v ON des_t.\(t.id) = v.id \
            SET \(set) WHERE des_t.\(t.desName) IS NULL
            """
        return try session.execute(sql, binds)
    }

    /// The table's check clauses, where MariaDB's `JSON` columns show as `json_valid(col)`. MySQL
    /// (a real `JSON` type, and no `TABLE_NAME` in `CHECK_CONSTRAINTS`) refuses the query with a
    /// syntax-or-access error (SQLSTATE class 42): then there are none. Any other error is passed on.
    func jsonChecks(in session: any SQLSession, schema: SQLValue, table: String) throws -> [SQLRow] {
        do {
            return try session.query(
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = COALESCE(?{1}, DATABASE()) AND TABLE_NAME = ?{2}",
                [schema, .text(table)])
        } catch let error as SQLError where error.code.hasPrefix("42") {
            return []
        }
    }

    /// A `UNION ALL` of a thousand selects is what the server plans quickly.
    public var maxListLength: Int { 1_000 }
}

/// MySQL's and MariaDB's side of ``SQLMetadataStore``: the schema's DDL (InnoDB, utf8mb4 with a
/// binary collation), `key` quoted, `FROM DUAL`, the new container's id from `LAST_INSERT_ID()`,
/// and the lease taken in steps under a row lock (there is no `INSERT … ON CONFLICT … RETURNING`).
public struct MariaDBMetadataDialect: SQLMetadataDialect {
    /// `mysql` or `mariadb`.
    public let name: String

    /// Creates the dialect.
    public init(name: String = "mariadb") { self.name = name }

    public func placeholder(_ position: Int) -> String { "?{\(position)}" }
    public var now: String { MariaDBDialect.now }
    public var keyColumn: String { "`key`" }
    public var fromDual: String { " FROM DUAL" }

    public func insertIgnoringDuplicate(_ insert: String, on column: String) -> String {
        // No ON CONFLICT: IGNORE turns the duplicate key of a concurrent insert into nothing inserted.
        insert.hasPrefix("INSERT INTO") ? "INSERT IGNORE INTO" + insert.dropFirst("INSERT INTO".count) : insert
    }

    public var migrations: [[String]] {
        let table = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        return [[
            """
            CREATE TABLE IF NOT EXISTS des_shard_locks (
              shard INT PRIMARY KEY, holder_pod VARCHAR(255) NOT NULL, holder_instance VARCHAR(255) NOT NULL,
              token BIGINT NOT NULL, expires_at DOUBLE NOT NULL, acquired_at DOUBLE NOT NULL) \(table)
            """,
            """
            CREATE TABLE IF NOT EXISTS des_containers (
              id BIGINT AUTO_INCREMENT PRIMARY KEY, day VARCHAR(10) NOT NULL, shard INT NOT NULL,
              `key` VARCHAR(768) NOT NULL, state VARCHAR(16) NOT NULL, holder VARCHAR(512) NOT NULL, token BIGINT NOT NULL,
              file_count BIGINT NOT NULL DEFAULT 0, bytes BIGINT NOT NULL DEFAULT 0, size BIGINT NULL, etag VARCHAR(255) NULL,
              created_at DOUBLE NOT NULL, updated_at DOUBLE NOT NULL, uploaded_at DOUBLE NULL,
              UNIQUE KEY des_containers_key (`key`), KEY des_containers_lookup (day, shard, state), KEY des_containers_state (state)) \(table)
            """,
            """
            CREATE TABLE IF NOT EXISTS des_dead_letters (
              id BIGINT AUTO_INCREMENT PRIMARY KEY, source VARCHAR(255) NOT NULL, catalog_entry_id VARCHAR(255) NOT NULL,
              des_name VARCHAR(255) NULL, stage VARCHAR(32) NOT NULL, error_message TEXT NOT NULL, created_at DOUBLE NOT NULL,
              resolved INT NOT NULL DEFAULT 0, resolved_at DOUBLE NULL) \(table)
            """,
            "CREATE OR REPLACE VIEW des_marker_dlq AS SELECT * FROM des_dead_letters WHERE stage = 'marker'",
        ], [
            // 2: container manifests (packer.claim_mode lease).
            "ALTER TABLE des_containers ADD COLUMN IF NOT EXISTS manifest LONGTEXT NULL, ADD COLUMN IF NOT EXISTS marked_at DOUBLE NULL",
            "CREATE INDEX IF NOT EXISTS des_containers_unmarked ON des_containers (marked_at, shard)",
        ], [
            // 3: deletes (tombstones) and compaction (containers retired, and what replaced them).
            """
            CREATE TABLE IF NOT EXISTS des_tombstones (
              seq BIGINT AUTO_INCREMENT PRIMARY KEY, des_name VARCHAR(255) NOT NULL UNIQUE, reason TEXT NOT NULL, origin VARCHAR(32) NOT NULL,
              deleted_at DOUBLE NOT NULL, container_id BIGINT NULL, bytes BIGINT NOT NULL DEFAULT 0) \(table)
            """,
            "CREATE INDEX IF NOT EXISTS des_tombstones_container ON des_tombstones (container_id)",
            "ALTER TABLE des_containers ADD COLUMN IF NOT EXISTS retired_at DOUBLE NULL, ADD COLUMN IF NOT EXISTS replaced_by BIGINT NULL",
        ], [
            // 4: bodies des retire is about to delete (so a missing body is known to be its own doing).
            """
            CREATE TABLE IF NOT EXISTS des_retire_intents (
              source VARCHAR(255) NOT NULL, row_id VARCHAR(255) NOT NULL, created_at DOUBLE NOT NULL, PRIMARY KEY (source, row_id)) \(table)
            """,
        ], [
            // 5: the names each uploaded container holds (first, last, and a filter where ranges overlap).
            "ALTER TABLE des_containers ADD COLUMN IF NOT EXISTS name_first VARCHAR(1024) NULL, ADD COLUMN IF NOT EXISTS name_last VARCHAR(1024) NULL, ADD COLUMN IF NOT EXISTS name_filter LONGTEXT NULL",
        ], [
            // 6: the outbox of events (written with each change they announce, pruned to the newest).
            """
            CREATE TABLE IF NOT EXISTS des_events (
              seq BIGINT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(32) NOT NULL, container_id BIGINT NULL, container_key VARCHAR(1024) NULL,
              day VARCHAR(10) NULL, shard INT NULL, des_name VARCHAR(255) NULL, source VARCHAR(255) NULL, row_id VARCHAR(255) NULL,
              created_at DOUBLE NOT NULL) \(table)
            """,
        ], [
            // 7: open dead letters by row: a letter is added only when its row has no open one of
            // the stage, and without this index each addition read every letter.
            "CREATE INDEX IF NOT EXISTS des_dead_letters_open ON des_dead_letters (source, catalog_entry_id, stage, resolved)",
        ]]
    }

    /// Not used: ``acquireLease(in:shard:pod:instance:ttlSeconds:)`` takes the lease in steps.
    public func acquireLeaseStatement() -> String { "" }

    /// Locks the shard's row (`FOR UPDATE`), then inserts it (token 1), takes it over (token + 1)
    /// when it expired or renews it for the same holder, or leaves it; a concurrent first insert
    /// loses on the primary key and is not granted.
    public func acquireLease(in session: any SQLSession, shard: Int, pod: String, instance: String, ttlSeconds: Double) throws
        -> (token: Int64, expiresAt: Double)?
    {
        let now = MariaDBDialect.now
        let current = try session.query(
            "SELECT token, holder_pod, holder_instance, CASE WHEN expires_at > \(now) THEN 1 ELSE 0 END FROM des_shard_locks WHERE shard = ?{1} FOR UPDATE",
            [.int(Int64(shard))]
        ).first
        if let current {
            let same = current[1].text == pod && current[2].text == instance
            let live = current[3].int == 1
            if live && !same { return nil }
            let token = (current[0].int ?? 0) + (same && live ? 0 : 1)
            try session.execute(
                """
                UPDATE des_shard_locks SET token = ?{1}, holder_pod = ?{2}, holder_instance = ?{3}, expires_at = \(now) + ?{4},
                  acquired_at = \(now) WHERE shard = ?{5}
                """, [.int(token), .text(pod), .text(instance), .double(ttlSeconds), .int(Int64(shard))])
        } else {
            do {
                try session.execute(
                    """
                    INSERT INTO des_shard_locks (shard, holder_pod, holder_instance, token, expires_at, acquired_at)
                    VALUES (?{1}, ?{2}, ?{3}, 1, \(now) + ?{4}, \(now))
                    """, [.int(Int64(shard)), .text(pod), .text(instance), .double(ttlSeconds)])
            } catch let error as SQLError where error.message.contains("(error 1062)") {
                return nil  // another holder inserted it first: theirs
            }
        }
        guard let row = try session.query("SELECT token, expires_at FROM des_shard_locks WHERE shard = ?{1}", [.int(Int64(shard))]).first,
            let token = row[0].int, let expires = row[1].double
        else { return nil }
        return (token, expires)
    }

    public func insertReturningID(in session: any SQLSession, _ sql: String, _ binds: [SQLValue]) throws -> Int64? {
        guard try session.execute(sql, binds) == 1 else { return nil }
        return try session.query("SELECT LAST_INSERT_ID()").first?[0].int
    }
}
