import Foundation
import DESKit

/// PostgreSQL's SQL: claims are `UPDATE … WHERE ctid = ANY(ARRAY(SELECT ctid … LIMIT n FOR UPDATE SKIP LOCKED))
/// RETURNING …`, so rows another claimer holds are skipped, never waited on. The rows are found
/// again by their tuple id, with no second walk of the key's index: a row locked by the inner
/// `SELECT` cannot move before the `UPDATE` of the same statement (a version another
/// transaction made after the statement began is not visible to it, and is left unclaimed). The claim has no
/// `ORDER BY`: the planner can then stop at the n-th row of the index instead of sorting every
/// pending row of the shards (2.8× the claim rate in the benchmark); which n rows come first
/// does not matter, as every claimed row is packed; `$N` placeholders;
/// DES's own times are epoch seconds (double precision) from `clock_timestamp()`.
public struct PostgresDialect: SQLDialect {
    /// Creates the dialect.
    public init() {}

    public var name: String { "postgresql" }

    public func quoteIdentifier(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public func placeholder(_ position: Int) -> String { "$\(position)" }

    /// Database time as epoch seconds.
    public static let now = "extract(epoch from clock_timestamp())::double precision"

    public var currentTimestamp: String { Self.now }

    public func olderThan(_ column: String, seconds: Double) -> String { "\(column) < \(Self.now) - \(seconds)" }

    public var maxBindParameters: Int { 65_535 }

    public var identifiersCaseSensitive: Bool { true }

    /// The longest identifier PostgreSQL keeps, in bytes (`NAMEDATALEN - 1`).
    public static let maxIdentifierBytes = 63

    /// The identifier as PostgreSQL stores it: cut to its first 63 bytes, at a character boundary,
    /// as the server cuts a longer name in `CREATE TABLE` and in every statement (with only a
    /// NOTICE). A column configured by its full long name is then found in the catalog.
    public func storedName(_ identifier: String) -> String {
        guard identifier.utf8.count > Self.maxIdentifierBytes else { return identifier }
        var kept = String.UnicodeScalarView()
        var bytes = 0
        for scalar in identifier.unicodeScalars {
            let size = UTF8.width(scalar)
            if bytes + size > Self.maxIdentifierBytes { break }
            kept.append(scalar)
            bytes += size
        }
        return String(kept)
    }

    public var transactionalDDL: Bool { true }

    public var partialIndexes: Bool { true }

    public var readsDecimalsAsDoubles: Bool { true }

    /// Database time in the column's own form: `timestamptz` takes the instant, `timestamp` the
    /// UTC wall time, a number epoch seconds.
    public func now(for kind: SQLColumnKind) -> String {
        switch kind {
        case .timestampWithTimeZone: return "clock_timestamp()"
        case .timestamp: return "(clock_timestamp() AT TIME ZONE 'UTC')"
        case .integer: return "floor(extract(epoch from clock_timestamp()))::bigint"
        default: return Self.now
        }
    }

    public func olderThan(_ column: String, kind: SQLColumnKind, seconds: Double) -> String {
        switch kind {
        case .timestampWithTimeZone, .timestamp:
            return "\(column) < \(now(for: kind)) - make_interval(secs => \(seconds))"
        default: return olderThan(column, seconds: seconds)
        }
    }

    public func ddlType(for role: SQLDESColumnRole) -> String {
        switch role {
        case .shard: return "integer"
        case .claimedAt, .packedAt: return "timestamptz"
        default: return "text"
        }
    }

    public func addColumn(table: String, column: String, type: String) -> String {
        "ALTER TABLE \(table) ADD COLUMN IF NOT EXISTS \(column) \(type)"
    }

    public func createIndex(name: String, table: String, columns: [String], predicate: String?) -> String {
        "CREATE INDEX IF NOT EXISTS \(quoteIdentifier(name)) ON \(table) (\(columns.joined(separator: ", ")))"
            + (predicate.map { " WHERE \($0)" } ?? "")
    }

    /// `pg_catalog`: each column's type as `format_type` names it, a domain resolved to its base
    /// type (kept as the cast, so a value compares in the domain), an enum (`typtype = 'e'`) bound
    /// as its label cast to the type, `uuid` cast likewise; the columns of each index.
    public func reflectTable(in session: any SQLSession, schema: String?, table: String) throws -> SQLTableCatalog {
        let qualified = (schema.map { quoteIdentifier($0) + "." } ?? "") + quoteIdentifier(table)
        let rows = try session.query(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod),
              CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) ELSE format_type(a.atttypid, a.atttypmod) END,
              CASE WHEN t.typtype = 'd' THEN bt.typtype ELSE t.typtype END::text, NOT a.attnotnull,
              array_to_string(ARRAY(SELECT e.enumlabel FROM pg_enum e
                WHERE e.enumtypid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END ORDER BY e.enumsortorder), chr(31))
            FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
            WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
            """, [.text(qualified)])
        let columns = rows.compactMap { row -> SQLCatalogColumn? in
            guard let name = row[0].text, let type = row[1].text, let base = row[2].text else { return nil }
            let isEnum = row[3].text == "e"
            var kind = isEnum ? SQLColumnKind.enumeration : SQLColumnKind.classify(base)
            if base == "\"char\"" { kind = .text }
            // (A numeric key is bound as text: cast, or `id > $1` would compare numeric with text.)
            let needsCast = isEnum || kind == .uuid || kind == .decimal || (type != base && kind != .text && kind != .integer)
            // The server's own words, checked before they go into SQL text all the same.
            let safe = type.allSatisfy { $0.isLetter || $0.isNumber || " (),_.\"".contains($0) }
            let labels = isEnum ? row[5].text.map { $0.isEmpty ? [] : $0.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init) } : nil
            return SQLCatalogColumn(
                name: name, type: type, kind: safe ? kind : .other, bindCast: needsCast && safe ? type : nil,
                nullable: row[4].int != 0, labels: labels)
        }
        let indexes = try session.query(
            """
            SELECT array_to_string(ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n), chr(31))
            FROM pg_index i WHERE i.indrelid = to_regclass($1)
            """, [.text(qualified)]
        ).compactMap { $0[0].text.map { $0.split(separator: "\u{1F}").map(String.init) } }
        return SQLTableCatalog(columns: columns, indexes: indexes)
    }

    public func claim(in session: any SQLSession, table t: SQLTableShape, shards: [Int], limit: Int, holder: String)
        throws -> [SQLRow]
    {
        let pending = t.pendingPredicate(self, shards: shards, firstBind: 3)
        // For this transaction only: walk an index to the first n pending rows. Once the table is
        // analyzed and most rows are pending, the planner otherwise prefers a sequential scan
        // (or a bitmap of every pending row), which must pass over all the rows claimed before
        // — each claim slower than the last (2.5× the packer's time on 50,000 rows). Without a
        // usable index the scan stays sequential.
        _ = try session.query("SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)", [])
        let sql = """
            UPDATE \(t.table) SET \(t.status) = \(t.statusParam(self, 1)), \(t.claimedBy) = $2\(t.setClaimedAt(self)) \
            WHERE ctid = ANY(ARRAY(SELECT ctid FROM \(t.table) WHERE \(pending.sql) \
            LIMIT $\(3 + pending.binds.count) FOR UPDATE SKIP LOCKED)) \
            RETURNING \(t.claimSelectList)
            """
        return try session.query(sql, [t.statusValue(t.statusClaimed), .text(holder)] + pending.binds + [.int(Int64(limit))])
    }

    public func selectUnnamed(in session: any SQLSession, table t: SQLTableShape, limit: Int) throws -> [SQLRow] {
        let unnamed = t.unnamedPredicate(self)
        let sql = """
            SELECT \(t.id), \(t.key), \(t.desName) FROM \(t.table) WHERE \(unnamed.sql) \
            ORDER BY \(t.id) LIMIT $\(unnamed.binds.count + 1) FOR UPDATE SKIP LOCKED
            """
        return try session.query(sql, unnamed.binds + [.int(Int64(limit))])
    }

    public func assignNames(in session: any SQLSession, table t: SQLTableShape, _ assignments: [NameAssignment]) throws
        -> Int
    {
        guard !assignments.isEmpty else { return 0 }
        let idType = try Self.keyType(t)
        var binds: [SQLValue] = [t.statusValue(t.statusPending)]
        var tuples: [String] = []
        tuples.reserveCapacity(assignments.count)
        for a in assignments {
            let n = binds.count
            tuples.append("($\(n + 1)::text, $\(n + 2)::text, $\(n + 3)::text, $\(n + 4)::bigint)")
            binds += [.text(a.rowID), .text(a.desName), .text(a.hash), .int(Int64(a.shard))]
        }
        var set = "\(t.desName) = v.name, \(t.shard) = v.shard, \(t.status) = \(t.statusParam(self, 1))"
        if let hash = t.desHash { set += ", \(hash) = v.hash" }
        let sql = """
            UPDATE \(t.table) AS des_t SET \(set) FROM (VALUES \(tuples.joined(separator: ", "))) AS v(id, name, hash, shard) \
            WHERE des_t.\(t.id) = v.id::\(idType) AND des_t.\(t.desName) IS NULL
            """
        return try session.execute(sql, binds)
    }
}

extension PostgresDialect {
    /// `id = ANY(string_to_array($n, $m)::type[])`: the ids joined into one bound text, split and
    /// read in the key column's own type. Statements go unnamed, so they are planned with the
    /// bound values, and for the usual key types (integers, text, `varchar(n)`, uuid, numeric)
    /// every function here is immutable: the planner folds the array into a
    /// constant, knows how many ids there are and looks them up in a hash — whether it then
    /// probes the key's index or walks the claimed rows of a status index, the cost grows with
    /// the rows, not with rows × ids. (An array it cannot fold — `$n::bigint[]` from text, whose
    /// `array_in` is only stable, or `ARRAY(SELECT unnest(…))` — is searched element by element
    /// for every row walked: marking 50,000 claimed rows took 20–50 s instead of 0.4.) Two values
    /// instead of a placeholder per id: a container's mark of 2,000 rows was parsed and bound in
    /// 3 ms of the server's time, as long as 40 % of its execution.
    ///
    /// The separator is a character no id holds; ids holding all of them, or an empty id, get
    /// `ANY(ARRAY[$n, …]::type[])`, a placeholder per id.
    public func idMatches(in session: any SQLSession, table t: SQLTableShape, ids: [String], binds: inout [SQLValue]) throws -> String {
        let idType = try Self.keyType(t)
        if let array = joinedArray(ids, binds: &binds) { return "\(t.id) = ANY(\(array)::\(idType)[])" }
        return "\(t.id) = ANY(ARRAY[\(placeholders(binding: ids.map(t.idValue), to: &binds))]::\(idType)[])"
    }

    /// `column = ANY(string_to_array($n, $m))`, as ``idMatches(in:table:ids:binds:)`` binds ids:
    /// two values, however many names.
    public func textMatches(_ column: String, values: [String], binds: inout [SQLValue]) -> String {
        if let array = joinedArray(values, binds: &binds) { return "\(column) = ANY(\(array))" }
        return "\(column) IN (\(placeholders(binding: values.map { .text($0) }, to: &binds)))"
    }

    /// `string_to_array($n, $m)` over `values` joined by ``separator(for:)`` (both bound); nil,
    /// binding nothing, when no separator will do.
    private func joinedArray(_ values: [String], binds: inout [SQLValue]) -> String? {
        guard let separator = Self.separator(for: values) else { return nil }
        binds += [.text(values.joined(separator: separator)), .text(separator)]
        return "string_to_array(\(placeholder(binds.count - 1)), \(placeholder(binds.count)))"
    }

    /// A one-character separator that occurs in none of `ids` (nil when every candidate does, or
    /// an id is empty: `string_to_array` reads an empty text as no element at all).
    static func separator(for ids: [String]) -> String? {
        if ids.contains(where: \.isEmpty) { return nil }
        let candidates: [UInt8] = [UInt8(ascii: ","), 0x1F, 0x1E, UInt8(ascii: "|"), UInt8(ascii: ";"), UInt8(ascii: "\t")]
        // Candidate by candidate, each a memchr over each id's bytes: the first is nearly always free.
        for byte in candidates where !ids.contains(where: { Self.holds($0, byte) }) {
            return String(UnicodeScalar(byte))
        }
        return nil
    }

    /// Whether `text`'s UTF-8 holds `byte`.
    private static func holds(_ text: String, _ byte: UInt8) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { bytes in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return false }
            return memchr(base, Int32(byte), bytes.count) != nil
        } ?? text.utf8.contains(byte)
    }

    /// The key column's type, as reflected: ids are cast to it so that they compare in the
    /// column's own type and its index is used.
    static func keyType(_ t: SQLTableShape) throws -> String {
        guard let type = t.idType else {
            throw DESKitError(.configuration, "PostgreSQL statements over \(t.table) need the table reflected (SQLSourceConnector.tableShape())")
        }
        return type
    }
}

/// PostgreSQL's side of ``SQLMetadataStore``: `$N`, epoch seconds, and the schema's DDL.
public struct PostgresMetadataDialect: SQLMetadataDialect {
    /// Creates the dialect.
    public init() {}
    public var name: String { "postgresql" }
    public func placeholder(_ position: Int) -> String { "$\(position)" }
    public var now: String { PostgresDialect.now }
    public var resyncContainerIDs: String? {
        "SELECT setval(pg_get_serial_sequence('des_containers', 'id'), (SELECT MAX(id) FROM des_containers))"
    }
    public var migrations: [[String]] {
        [[
            """
            CREATE TABLE IF NOT EXISTS des_shard_locks (
              shard INTEGER PRIMARY KEY, holder_pod TEXT NOT NULL, holder_instance TEXT NOT NULL,
              token BIGINT NOT NULL, expires_at DOUBLE PRECISION NOT NULL, acquired_at DOUBLE PRECISION NOT NULL)
            """,
            """
            CREATE TABLE IF NOT EXISTS des_containers (
              id BIGSERIAL PRIMARY KEY, day TEXT NOT NULL, shard INTEGER NOT NULL,
              key TEXT NOT NULL UNIQUE, state TEXT NOT NULL, holder TEXT NOT NULL, token BIGINT NOT NULL,
              file_count BIGINT NOT NULL DEFAULT 0, bytes BIGINT NOT NULL DEFAULT 0, size BIGINT, etag TEXT,
              created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL, uploaded_at DOUBLE PRECISION)
            """,
            "CREATE INDEX IF NOT EXISTS des_containers_lookup ON des_containers(day, shard, state)",
            "CREATE INDEX IF NOT EXISTS des_containers_state ON des_containers(state)",
            """
            CREATE TABLE IF NOT EXISTS des_dead_letters (
              id BIGSERIAL PRIMARY KEY, source TEXT NOT NULL, catalog_entry_id TEXT NOT NULL,
              des_name TEXT, stage TEXT NOT NULL, error_message TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
              resolved INTEGER NOT NULL DEFAULT 0, resolved_at DOUBLE PRECISION)
            """,
            "CREATE OR REPLACE VIEW des_marker_dlq AS SELECT * FROM des_dead_letters WHERE stage = 'marker'",
        ], [
            // 2: container manifests (packer.claim_mode lease).
            "ALTER TABLE des_containers ADD COLUMN IF NOT EXISTS manifest TEXT",
            "ALTER TABLE des_containers ADD COLUMN IF NOT EXISTS marked_at DOUBLE PRECISION",
            "CREATE INDEX IF NOT EXISTS des_containers_unmarked ON des_containers(shard) WHERE manifest IS NOT NULL AND marked_at IS NULL",
        ], [
            // 3: deletes (tombstones) and compaction (containers retired, and what replaced them).
            """
            CREATE TABLE IF NOT EXISTS des_tombstones (
              seq BIGSERIAL PRIMARY KEY, des_name TEXT NOT NULL UNIQUE, reason TEXT NOT NULL, origin TEXT NOT NULL,
              deleted_at DOUBLE PRECISION NOT NULL, container_id BIGINT, bytes BIGINT NOT NULL DEFAULT 0)
            """,
            "CREATE INDEX IF NOT EXISTS des_tombstones_container ON des_tombstones(container_id)",
            "ALTER TABLE des_containers ADD COLUMN IF NOT EXISTS retired_at DOUBLE PRECISION",
            "ALTER TABLE des_containers ADD COLUMN IF NOT EXISTS replaced_by BIGINT",
        ], [
            // 4: bodies des retire is about to delete (so a missing body is known to be its own doing).
            """
            CREATE TABLE IF NOT EXISTS des_retire_intents (
              source TEXT NOT NULL, row_id TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (source, row_id))
            """,
        ], [
            // 5: the names each uploaded container holds (first, last, and a filter where ranges overlap).
            "ALTER TABLE des_containers ADD COLUMN IF NOT EXISTS name_first TEXT",
            "ALTER TABLE des_containers ADD COLUMN IF NOT EXISTS name_last TEXT",
            "ALTER TABLE des_containers ADD COLUMN IF NOT EXISTS name_filter TEXT",
        ], [
            // 6: the outbox of events (written with each change they announce, pruned to the newest).
            """
            CREATE TABLE IF NOT EXISTS des_events (
              seq BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, container_id BIGINT, container_key TEXT, day TEXT,
              shard INTEGER, des_name TEXT, source TEXT, row_id TEXT, created_at DOUBLE PRECISION NOT NULL)
            """,
        ], [
            // 7: open dead letters by row: a letter is added only when its row has no open one of
            // the stage, and without this index each addition read every letter.
            "CREATE INDEX IF NOT EXISTS des_dead_letters_open ON des_dead_letters(source, catalog_entry_id, stage) WHERE resolved = 0",
        ]]
    }

    /// Wakes `LISTEN des_events` connections when a transaction that wrote events commits; the
    /// payload is the store's schema, so that a listener wakes only for its own store (several
    /// deployments may share a database, one schema each).
    public var notifyEvents: String? { "SELECT pg_notify('des_events', current_schema())" }
}
