import Synchronization

/// What differs between databases for the metadata store: placeholders, database time, the
/// schema's DDL (forward-only migrations), and — with a default every database that has
/// `INSERT … ON CONFLICT … RETURNING` (SQLite, PostgreSQL) shares — the lease statement.
public protocol SQLMetadataDialect: Sendable {
    /// The dialect's name (`sqlite`, `postgresql`).
    var name: String { get }
    /// The placeholder for the `position`-th (1-based) bound value.
    func placeholder(_ position: Int) -> String
    /// Database time as seconds since the epoch (a double expression).
    var now: String { get }
    /// The DDL of each schema version, in order: `migrations[0]` creates version 1, `migrations[1]` moves 1 → 2, …
    /// Every statement must be idempotent (`IF NOT EXISTS`), as several processes may migrate at once.
    var migrations: [[String]] { get }
    /// The one statement that takes a lease (binds: shard, pod, instance, ttl seconds) when the shard
    /// is free, expired, or held by this very holder, bumping the token on every new grant; returns
    /// (token, expires_at) when granted and no row otherwise.
    func acquireLeaseStatement() -> String

    /// Takes the lease inside the current transaction; the default runs ``acquireLeaseStatement()``.
    /// A database without `INSERT … ON CONFLICT … RETURNING` (MySQL, MariaDB) does it in steps.
    func acquireLease(in session: any SQLSession, shard: Int, pod: String, instance: String, ttlSeconds: Double) throws
        -> (token: Int64, expiresAt: Double)?

    /// Runs an `INSERT` of one row and returns the new row's `id` (nil when it inserted nothing).
    /// Default: the statement plus `RETURNING id`.
    func insertReturningID(in session: any SQLSession, _ sql: String, _ binds: [SQLValue]) throws -> Int64?

    /// The `key` column as this database must write it (`key` is reserved in MySQL and MariaDB).
    var keyColumn: String { get }

    /// What a `SELECT` of constants needs before its `WHERE` (` FROM DUAL` in MySQL, MariaDB and Oracle).
    var fromDual: String { get }

    /// A statement run after containers were inserted under ids of their own (`des rebuild`), so
    /// that later ids come after them: PostgreSQL moves its sequence; SQLite's AUTOINCREMENT and
    /// MySQL's AUTO_INCREMENT follow explicit ids themselves (nil, the default).
    var resyncContainerIDs: String? { get }

    /// A statement run in each transaction that writes events, waking the store's listeners
    /// when it commits (PostgreSQL: `NOTIFY des_events`); nil (the default) where followers poll.
    var notifyEvents: String? { get }

    /// `insert` (an `INSERT INTO … SELECT … WHERE …`) made to insert nothing, rather than fail,
    /// when a row with the same unique `column` exists, or is inserted meanwhile by a concurrent
    /// transaction: `ON CONFLICT (column) DO NOTHING` by default, `INSERT IGNORE` in MySQL and MariaDB.
    func insertIgnoringDuplicate(_ insert: String, on column: String) -> String
}

extension SQLMetadataDialect {
    public var keyColumn: String { "key" }
    public var fromDual: String { "" }
    public var resyncContainerIDs: String? { nil }
    public var notifyEvents: String? { nil }

    public func insertIgnoringDuplicate(_ insert: String, on column: String) -> String {
        insert + " ON CONFLICT (\(column)) DO NOTHING"
    }

    public func acquireLease(in session: any SQLSession, shard: Int, pod: String, instance: String, ttlSeconds: Double) throws
        -> (token: Int64, expiresAt: Double)?
    {
        let rows = try session.query(acquireLeaseStatement(), [.int(Int64(shard)), .text(pod), .text(instance), .double(ttlSeconds)])
        guard let row = rows.first, let token = row[0].int, let expires = row[1].double else { return nil }
        return (token, expires)
    }

    public func insertReturningID(in session: any SQLSession, _ sql: String, _ binds: [SQLValue]) throws -> Int64? {
        try session.query(sql + " RETURNING id", binds).first?[0].int
    }

    public func acquireLeaseStatement() -> String {
        let (p, now) = (placeholder, self.now)
        return """
            INSERT INTO des_shard_locks (shard, holder_pod, holder_instance, token, expires_at, acquired_at)
            VALUES (\(p(1)), \(p(2)), \(p(3)), 1, \(now) + \(p(4)), \(now))
            ON CONFLICT (shard) DO UPDATE SET
              token = CASE WHEN des_shard_locks.holder_pod = excluded.holder_pod
                            AND des_shard_locks.holder_instance = excluded.holder_instance
                            AND des_shard_locks.expires_at > \(now)
                      THEN des_shard_locks.token ELSE des_shard_locks.token + 1 END,
              holder_pod = excluded.holder_pod, holder_instance = excluded.holder_instance,
              expires_at = excluded.expires_at, acquired_at = excluded.acquired_at
            WHERE des_shard_locks.expires_at <= \(now)
               OR (des_shard_locks.holder_pod = excluded.holder_pod AND des_shard_locks.holder_instance = excluded.holder_instance)
            RETURNING token, expires_at
            """
    }
}

/// Leases, containers and dead letters in any SQL database, over a ``SQLMetadataDialect``:
/// the fencing-token logic exists once, and the conformance kit checks it for every database.
///
/// Tables follow the original design: `des_shard_locks`, `des_containers`, `des_dead_letters`
/// (and the view `des_marker_dlq` over the marker's rows), plus `des_schema_version`.
/// Every time comparison uses database time.
public final class SQLMetadataStore: MetadataStore {
    /// The dialect.
    public let dialect: any SQLMetadataDialect
    private let pool: SQLConnectionPool
    /// Connections in the store's pool (`metadata.connection.pool_size`).
    public var poolSize: Int { pool.size }

    /// The schema version this code writes.
    public var schemaVersion: Int { dialect.migrations.count }

    /// Opens a connection that waits for the dialect's wake-ups (``SQLMetadataDialect/notifyEvents``); nil where followers poll.
    let makeListener: (@Sendable () async throws -> any SQLEventListener)?
    /// The listener ``waitForEvents(timeoutSeconds:)`` waits on, opened at the first wait.
    let listener = Mutex<(any SQLEventListener)?>(nil)
    /// How many events the outbox keeps (the newest); older ones are pruned as new ones come.
    let eventRetentionStorage = Atomic<Int>(SQLMetadataStore.defaultEventRetention)

    /// The events the outbox keeps unless told otherwise.
    public static let defaultEventRetention = 100_000

    /// A store over `pool` (a pool of one connection is enough; writes are short), with
    /// `listener` opening a connection that waits for the database's wake-ups, if it has them.
    public init(
        pool: SQLConnectionPool, dialect: any SQLMetadataDialect, listener: (@Sendable () async throws -> any SQLEventListener)? = nil
    ) {
        self.pool = pool
        self.dialect = dialect
        self.makeListener = listener
    }

    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await pool.withConnection { try await $0.withTransaction(body) }
    }

    func session<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await pool.withConnection { try await $0.withSession(body) }
    }

    func p(_ n: Int) -> String { dialect.placeholder(n) }

    @discardableResult
    public func migrate() async throws -> Int {
        let (migrations, p1) = (dialect.migrations, p(1))
        return try await transaction { s in
            try s.execute("CREATE TABLE IF NOT EXISTS des_schema_version (version INTEGER NOT NULL)")
            let current = Int(try s.query("SELECT MAX(version) FROM des_schema_version").first?[0].int ?? 0)
            if current > migrations.count {
                throw DESKitError(
                    .configuration, "metadata schema version \(current) is newer than this des (\(migrations.count)); upgrade des")
            }
            for version in current..<migrations.count {
                for statement in migrations[version] { try s.execute(statement) }
                try s.execute("INSERT INTO des_schema_version (version) VALUES (\(p1))", [.int(Int64(version + 1))])
            }
            return migrations.count
        }
    }

    public func acquireLease(shard: Int, holder: LeaseHolder, ttlSeconds: Double) async throws -> ShardLease? {
        let (dialect, now) = (self.dialect, dialect.now)
        let select = "SELECT token, holder_pod, holder_instance, CASE WHEN expires_at > \(now) THEN 1 ELSE 0 END FROM des_shard_locks WHERE shard = \(p(1))"
        return try await transaction { s in
            let before = try s.query(select, [.int(Int64(shard))]).first
            guard let (token, expires) = try dialect.acquireLease(
                in: s, shard: shard, pod: holder.pod, instance: holder.instance, ttlSeconds: ttlSeconds)
            else { return nil }
            let renewed = before.map {
                $0[0].int == token && $0[1].text == holder.pod && $0[2].text == holder.instance && $0[3].int == 1
            } ?? false
            return ShardLease(shard: shard, holder: holder, token: token, expiresAt: expires, isNewGrant: !renewed)
        }
    }

    @discardableResult
    public func expireLease(shard: Int, holder: LeaseHolder) async throws -> Bool {
        let sql = """
            UPDATE des_shard_locks SET expires_at = \(dialect.now) - 1
            WHERE shard = \(p(1)) AND holder_pod = \(p(2)) AND holder_instance = \(p(3)) AND expires_at > \(dialect.now)
            """
        return try await transaction { s in try s.execute(sql, [.int(Int64(shard)), .text(holder.pod), .text(holder.instance)]) } == 1
    }

    public func renewLease(_ lease: ShardLease, ttlSeconds: Double) async throws -> ShardLease? {
        let now = dialect.now
        // An update, then a read in the same transaction (not every database has UPDATE … RETURNING).
        let sql = """
            UPDATE des_shard_locks SET expires_at = \(now) + \(p(1))
            WHERE shard = \(p(2)) AND holder_pod = \(p(3)) AND holder_instance = \(p(4)) AND token = \(p(5)) AND expires_at > \(now)
            """
        let read = "SELECT expires_at FROM des_shard_locks WHERE shard = \(p(1)) AND token = \(p(2))"
        return try await transaction { s in
            let changed = try s.execute(
                sql,
                [.double(ttlSeconds), .int(Int64(lease.shard)), .text(lease.holder.pod), .text(lease.holder.instance), .int(lease.token)])
            guard changed == 1, let expires = try s.query(read, [.int(Int64(lease.shard)), .int(lease.token)]).first?[0].double
            else { return nil }
            var renewed = lease
            renewed.expiresAt = expires
            renewed.isNewGrant = false
            return renewed
        }
    }

    public func releaseLease(_ lease: ShardLease) async throws {
        let sql = """
            UPDATE des_shard_locks SET expires_at = \(dialect.now) - 1
            WHERE shard = \(p(1)) AND holder_pod = \(p(2)) AND holder_instance = \(p(3)) AND token = \(p(4))
            """
        _ = try await transaction { s in try s.execute(sql, Self.guardBinds(lease)) }
    }

    public func leases() async throws -> [ShardLease] {
        try await session { s in
            try s.query("SELECT shard, holder_pod, holder_instance, token, expires_at FROM des_shard_locks ORDER BY shard").map {
                ShardLease(
                    shard: Int($0[0].int ?? 0), holder: LeaseHolder(pod: $0[1].text ?? "", instance: $0[2].text ?? ""),
                    token: $0[3].int ?? 0, expiresAt: $0[4].double ?? 0, isNewGrant: false)
            }
        }
    }

    /// The lease still holds with its token (binds 1…4: shard, pod, instance, token).
    private var guardClause: String {
        """
        EXISTS (SELECT 1 FROM des_shard_locks WHERE shard = \(p(1)) AND holder_pod = \(p(2)) AND holder_instance = \(p(3))
                AND token = \(p(4)) AND expires_at > \(dialect.now))
        """
    }

    private static func guardBinds(_ lease: ShardLease) -> [SQLValue] {
        [.int(Int64(lease.shard)), .text(lease.holder.pod), .text(lease.holder.instance), .int(lease.token)]
    }

    public func createContainer(day: String, shard: Int, lease: ShardLease, keyPrefix: String) async throws -> ContainerRecord {
        let (dialect, now, key) = (self.dialect, dialect.now, dialect.keyColumn)
        let insert = """
            INSERT INTO des_containers (day, shard, \(key), state, holder, token, created_at, updated_at)
            SELECT \(p(5)), \(p(1)), \(p(6)), 'writing', \(p(7)), \(p(4)), \(now), \(now)\(dialect.fromDual) WHERE \(guardClause)
            """
        let setKey = "UPDATE des_containers SET \(key) = \(p(1)) WHERE id = \(p(2))"
        return try await transaction { s in
            let holder = lease.holder.description
            let placeholderKey = "pending:\(holder):\(shard):\(day):\(UInt64.random(in: 0...UInt64.max))"
            guard let id = try dialect.insertReturningID(in: s, insert, Self.guardBinds(lease) + [.text(day), .text(placeholderKey), .text(holder)])
            else {
                throw DESKitError(.fenced, "lease on shard \(shard) was lost (token \(lease.token)); container not created")
            }
            let key = containerKey(prefix: keyPrefix, day: day, shard: shard, id: id)
            try s.execute(setKey, [.text(key), .int(id)])
            return ContainerRecord(
                id: id, day: day, shard: shard, key: key, state: .writing, holder: holder, token: lease.token,
                fileCount: 0, bytes: 0, size: nil, etag: nil)
        }
    }

    public func checkpoint(containerID: Int64, fileCount: Int, bytes: UInt64, lease: ShardLease) async throws {
        let sql = """
            UPDATE des_containers SET file_count = \(p(5)), bytes = \(p(6)), updated_at = \(dialect.now)
            WHERE id = \(p(7)) AND state = 'writing' AND \(guardClause)
            """
        let changed = try await transaction { s in
            try s.execute(sql, Self.guardBinds(lease) + [.int(Int64(fileCount)), .int(Int64(bytes)), .int(containerID)])
        }
        if changed == 0 {
            throw DESKitError(.fenced, "lease on shard \(lease.shard) was lost (token \(lease.token)); checkpoint rejected")
        }
    }

    public func markUploaded(
        containerID: Int64, fileCount: Int, bytes: UInt64, size: UInt64, etag: String, lease: ShardLease
    ) async throws -> Bool {
        let now = dialect.now
        let sql = """
            UPDATE des_containers SET state = 'uploaded', file_count = \(p(5)), bytes = \(p(6)), size = \(p(7)), etag = \(p(8)),
              uploaded_at = \(now), updated_at = \(now)
            WHERE id = \(p(9)) AND state = 'writing' AND \(guardClause)
            """
        // A retry of this very write, whose commit went through but whose answer was lost with
        // the connection, finds the container uploaded already: by this holder, under this
        // token, with these values. That is a success, not fencing (taken for fencing, a
        // lease-mode packer gave the rows back and packed them again, into a second container).
        let again = """
            SELECT 1 FROM des_containers WHERE id = \(p(1)) AND state = 'uploaded' AND holder = \(p(2)) AND token = \(p(3))
              AND file_count = \(p(4)) AND bytes = \(p(5)) AND size = \(p(6)) AND etag = \(p(7))
            """
        let mine: [SQLValue] = [
            .int(containerID), .text(lease.holder.description), .int(lease.token), .int(Int64(fileCount)), .int(Int64(bytes)), .int(Int64(size)),
            .text(etag),
        ]
        return try await transaction { [self] s in
            let changed = try s.execute(
                sql,
                Self.guardBinds(lease) + [.int(Int64(fileCount)), .int(Int64(bytes)), .int(Int64(size)), .text(etag), .int(containerID)])
            if changed == 1 {
                try emitContainerEvents(.containerUploaded, ids: [containerID], in: s)
                return true
            }
            return !(try s.query(again, mine)).isEmpty
        }
    }

    public func recordManifest(containerID: Int64, manifest: ContainerManifest, lease: ShardLease) async throws -> Bool {
        let sql = """
            UPDATE des_containers SET manifest = \(p(5)), updated_at = \(dialect.now)
            WHERE id = \(p(6)) AND state = 'writing' AND \(guardClause)
            """
        let text = manifest.encoded
        return try await transaction { s in try s.execute(sql, Self.guardBinds(lease) + [.text(text), .int(containerID)]) } == 1
    }

    public func unmarkedManifests(shard: Int?) async throws -> [UnmarkedManifest] {
        var sql = """
            SELECT id, day, shard, \(dialect.keyColumn), state, holder, token, file_count, bytes, size, etag, \(dialect.now) - updated_at, manifest
            FROM des_containers WHERE state = 'uploaded' AND manifest IS NOT NULL AND marked_at IS NULL
            """
        var binds: [SQLValue] = []
        if let shard {
            binds.append(.int(Int64(shard)))
            sql += " AND shard = \(p(1))"
        }
        sql += " ORDER BY id"
        let (query, values) = (sql, binds)
        let rows = try await session { s in try s.query(query, values) }
        return try rows.map { r in
            let container = Self.container(r)
            do {
                // No more ids than the files it was recorded with (a damaged manifest cannot mark the catalog wholesale).
                return UnmarkedManifest(
                    container: container, manifest: try ContainerManifest(encoded: r[12].text ?? "", maxRows: max(0, container.fileCount)))
            } catch let error as DESKitError {
                throw DESKitError(
                    .invalidData,
                    "des_containers id \(container.id) (\(container.key), shard \(container.shard)): \(error.message); "
                        + "recovery of its shard stops here until the record is repaired")
            }
        }
    }

    public func manifestMarked(containerID: Int64) async throws {
        let sql = "UPDATE des_containers SET marked_at = \(dialect.now) WHERE id = \(p(1)) AND marked_at IS NULL"
        _ = try await transaction { s in try s.execute(sql, [.int(containerID)]) }
    }

    /// A container record from the first 12 columns of a `des_containers` select.
    static func container(_ r: SQLRow) -> ContainerRecord {
        ContainerRecord(
            id: r[0].int ?? 0, day: r[1].text ?? "", shard: Int(r[2].int ?? 0), key: r[3].text ?? "",
            state: ContainerState(rawValue: r[4].text ?? "") ?? .discarded, holder: r[5].text ?? "",
            token: r[6].int ?? 0, fileCount: Int(r[7].int ?? 0), bytes: UInt64(max(0, r[8].int ?? 0)),
            size: r[9].int.map { UInt64(max(0, $0)) }, etag: r[10].text, ageSeconds: r[11].double)
    }

    public func recoverUploaded(containerID: Int64, fileCount: Int, size: UInt64, etag: String) async throws {
        let now = dialect.now
        let sql = """
            UPDATE des_containers SET state = 'uploaded', file_count = \(p(1)), size = \(p(2)), etag = \(p(3)),
              uploaded_at = \(now), updated_at = \(now) WHERE id = \(p(4)) AND state = 'writing'
            """
        try await transaction { [self] s in
            if try s.execute(sql, [.int(Int64(fileCount)), .int(Int64(size)), .text(etag), .int(containerID)]) == 1 {
                try emitContainerEvents(.containerUploaded, ids: [containerID], in: s)
            }
        }
    }

    @discardableResult
    public func discardContainer(id: Int64) async throws -> Bool {
        let sql = "UPDATE des_containers SET state = 'discarded', updated_at = \(dialect.now) WHERE id = \(p(1)) AND state = 'writing'"
        return try await transaction { s in try s.execute(sql, [.int(id)]) } == 1
    }

    public func containers(state: ContainerState?, shard: Int?, day: String?) async throws -> [ContainerRecord] {
        var sql = """
            SELECT id, day, shard, \(dialect.keyColumn), state, holder, token, file_count, bytes, size, etag, \(dialect.now) - updated_at,
              replaced_by, name_first, name_last, name_filter FROM des_containers WHERE 1 = 1
            """
        var binds: [SQLValue] = []
        if let state {
            binds.append(.text(state.rawValue))
            sql += " AND state = \(p(binds.count))"
        }
        if let shard {
            binds.append(.int(Int64(shard)))
            sql += " AND shard = \(p(binds.count))"
        }
        if let day {
            binds.append(.text(day))
            sql += " AND day = \(p(binds.count))"
        }
        sql += " ORDER BY id"
        let (query, values) = (sql, binds)
        return try await session { s in
            try s.query(query, values).map { row in
                var record = Self.container(row)
                record.replacedBy = row[12].int
                if let first = row[13].text, let last = row[14].text {
                    record.nameRange = NameRange(first: first, last: last, filter: row[15].text.flatMap { NameFilter(encoded: $0) })
                }
                return record
            }
        }
    }

    public func forgetMissingContainer(id: Int64) async throws -> Bool {
        let sql = "UPDATE des_containers SET state = 'deleted', updated_at = \(dialect.now) WHERE id = \(p(1)) AND state = 'uploaded'"
        return try await transaction { [self] s in
            let changed = try s.execute(sql, [.int(id)]) == 1
            if changed { try emitContainerEvents(.containerDeleted, ids: [id], in: s) }
            return changed
        }
    }

    public func recordNameRange(containerID: Int64, range: NameRange) async throws {
        let sql = "UPDATE des_containers SET name_first = \(p(1)), name_last = \(p(2)), name_filter = \(p(3)) WHERE id = \(p(4))"
        let binds: [SQLValue] = [.text(range.first), .text(range.last), range.filter.map { .text($0.encoded) } ?? .null, .int(containerID)]
        _ = try await transaction { s in try s.execute(sql, binds) }
    }

    /// Adds each letter unless the row already has an unresolved one of the same stage: a row that
    /// fails again (two markers that both tried it, a packer's claim recovered and failed anew)
    /// keeps its first letter.
    public func addDeadLetters(_ letters: [DeadLetter]) async throws {
        guard !letters.isEmpty else { return }
        // Eight placeholders, each bound once: some dialects' placeholders are positional. The
        // one-row FROM is the schema-version table (it always has a row): MySQL wants a FROM for a
        // WHERE, and PostgreSQL has no DUAL.
        let sql = """
            INSERT INTO des_dead_letters (source, catalog_entry_id, des_name, stage, error_message, created_at)
            SELECT \(p(1)), \(p(2)), \(p(3)), \(p(4)), \(p(5)), \(dialect.now) FROM des_schema_version
            WHERE NOT EXISTS (SELECT 1 FROM des_dead_letters
              WHERE source = \(p(6)) AND catalog_entry_id = \(p(7)) AND stage = \(p(8)) AND resolved = 0)
            LIMIT 1
            """
        _ = try await transaction { s in
            for l in letters {
                let (source, row, stage) = (SQLValue.text(l.source), SQLValue.text(l.rowID), SQLValue.text(l.stage))
                try s.execute(sql, [source, row, l.desName.map { .text($0) } ?? .null, stage, .text(l.reason), source, row, stage])
            }
        }
    }

    public func deadLetters(limit: Int) async throws -> [DeadLetter] {
        let sql = "SELECT source, catalog_entry_id, des_name, stage, error_message FROM des_dead_letters ORDER BY id DESC LIMIT \(p(1))"
        return try await session { s in
            try s.query(sql, [.int(Int64(limit))]).map {
                DeadLetter(source: $0[0].text ?? "", rowID: $0[1].text ?? "", desName: $0[2].text, stage: $0[3].text ?? "", reason: $0[4].text ?? "")
            }
        }
    }

    /// Checks that the store answers and that the tables the service and the workers read are
    /// there and readable: one cheap row (at most) of the containers and of the leases. A store
    /// whose tables were dropped or cannot be read is unhealthy, not only one that is unreachable.
    public func healthCheck() async throws {
        _ = try await session { s in
            _ = try s.query("SELECT id FROM des_containers LIMIT 1")
            _ = try s.query("SELECT shard FROM des_shard_locks LIMIT 1")
        }
    }

    public func close() async {
        await closeListener()
        await pool.close()
    }
}
