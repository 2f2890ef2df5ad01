import DESKit

/// Leases, containers and dead letters in a SQLite database: the embedded default.
///
/// Tables follow the original design: `des_shard_locks`, `des_containers`, and
/// `des_dead_letters` (with the view `des_marker_dlq` over the marker's rows).
/// Every time is database time, REAL seconds since the epoch.
public final class SQLiteMetadataStore: MetadataStore {
    /// The schema version this code writes.
    public static let schemaVersion = 1
    private let connection: SQLiteConnection
    private static let now = SQLiteDialect.now

    /// Opens the store on a database file.
    public static func open(path: String) async throws -> SQLiteMetadataStore {
        SQLiteMetadataStore(connection: try await SQLiteConnection.open(path: path))
    }

    /// Uses an open connection.
    public init(connection: SQLiteConnection) { self.connection = connection }

    @discardableResult
    public func migrate() async throws -> Int {
        try await connection.withTransaction { s in
            try s.execute("CREATE TABLE IF NOT EXISTS des_schema_version (version INTEGER NOT NULL)")
            let current = try s.query("SELECT MAX(version) FROM des_schema_version").first?[0].int ?? 0
            if current > Int64(Self.schemaVersion) {
                throw DESKitError(
                    .configuration,
                    "metadata schema version \(current) is newer than this des (\(Self.schemaVersion)); upgrade des")
            }
            try s.execute(
                """
                CREATE TABLE IF NOT EXISTS des_shard_locks (
                  shard INTEGER PRIMARY KEY, holder_pod TEXT NOT NULL, holder_instance TEXT NOT NULL,
                  token INTEGER NOT NULL, expires_at REAL NOT NULL, acquired_at REAL NOT NULL)
                """)
            try s.execute(
                """
                CREATE TABLE IF NOT EXISTS des_containers (
                  id INTEGER PRIMARY KEY AUTOINCREMENT, day TEXT NOT NULL, shard INTEGER NOT NULL,
                  key TEXT NOT NULL UNIQUE, state TEXT NOT NULL, holder TEXT NOT NULL, token INTEGER NOT NULL,
                  file_count INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0, size INTEGER, etag TEXT,
                  created_at REAL NOT NULL, updated_at REAL NOT NULL, uploaded_at REAL)
                """)
            try s.execute("CREATE INDEX IF NOT EXISTS des_containers_lookup ON des_containers(day, shard, state)")
            try s.execute("CREATE INDEX IF NOT EXISTS des_containers_state ON des_containers(state)")
            try s.execute(
                """
                CREATE TABLE IF NOT EXISTS des_dead_letters (
                  id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, catalog_entry_id TEXT NOT NULL,
                  des_name TEXT, stage TEXT NOT NULL, error_message TEXT NOT NULL, created_at REAL NOT NULL,
                  resolved INTEGER NOT NULL DEFAULT 0, resolved_at REAL)
                """)
            try s.execute(
                "CREATE VIEW IF NOT EXISTS des_marker_dlq AS SELECT * FROM des_dead_letters WHERE stage = 'marker'")
            if current < Int64(Self.schemaVersion) {
                try s.execute("INSERT INTO des_schema_version (version) VALUES (?1)", [.int(Int64(Self.schemaVersion))])
            }
            return Self.schemaVersion
        }
    }

    public func acquireLease(shard: Int, holder: LeaseHolder, ttlSeconds: Double) async throws -> ShardLease? {
        try await connection.withTransaction { s in
            let before = try s.query("SELECT token, holder_pod, holder_instance, expires_at > \(Self.now) FROM des_shard_locks WHERE shard = ?1", [.int(Int64(shard))]).first
            let rows = try s.query(
                """
                INSERT INTO des_shard_locks (shard, holder_pod, holder_instance, token, expires_at, acquired_at)
                VALUES (?1, ?2, ?3, 1, \(Self.now) + ?4, \(Self.now))
                ON CONFLICT(shard) DO UPDATE SET
                  token = CASE WHEN des_shard_locks.holder_pod = excluded.holder_pod
                                AND des_shard_locks.holder_instance = excluded.holder_instance
                                AND des_shard_locks.expires_at > \(Self.now)
                          THEN des_shard_locks.token ELSE des_shard_locks.token + 1 END,
                  holder_pod = excluded.holder_pod, holder_instance = excluded.holder_instance,
                  expires_at = excluded.expires_at, acquired_at = excluded.acquired_at
                WHERE des_shard_locks.expires_at <= \(Self.now)
                   OR (des_shard_locks.holder_pod = excluded.holder_pod AND des_shard_locks.holder_instance = excluded.holder_instance)
                RETURNING token, expires_at
                """, [.int(Int64(shard)), .text(holder.pod), .text(holder.instance), .double(ttlSeconds)])
            guard let row = rows.first, let token = row[0].int, let expires = row[1].double else { return nil }
            let renewed = before.map { $0[0].int == token && $0[1].text == holder.pod && $0[2].text == holder.instance && $0[3].int == 1 } ?? false
            return ShardLease(shard: shard, holder: holder, token: token, expiresAt: expires, isNewGrant: !renewed)
        }
    }

    @discardableResult
    public func expireLease(shard: Int, holder: LeaseHolder) async throws -> Bool {
        try await connection.withTransaction { s in
            try s.execute(
                """
                UPDATE des_shard_locks SET expires_at = \(Self.now) - 1
                WHERE shard = ?1 AND holder_pod = ?2 AND holder_instance = ?3 AND expires_at > \(Self.now)
                """, [.int(Int64(shard)), .text(holder.pod), .text(holder.instance)])
        } == 1
    }

    public func renewLease(_ lease: ShardLease, ttlSeconds: Double) async throws -> ShardLease? {
        try await connection.withTransaction { s in
            let rows = try s.query(
                """
                UPDATE des_shard_locks SET expires_at = \(Self.now) + ?1
                WHERE shard = ?2 AND holder_pod = ?3 AND holder_instance = ?4 AND token = ?5 AND expires_at > \(Self.now)
                RETURNING expires_at
                """,
                [.double(ttlSeconds), .int(Int64(lease.shard)), .text(lease.holder.pod), .text(lease.holder.instance),
                 .int(lease.token)])
            guard let expires = rows.first?[0].double else { return nil }
            var renewed = lease
            renewed.expiresAt = expires
            renewed.isNewGrant = false
            return renewed
        }
    }

    public func releaseLease(_ lease: ShardLease) async throws {
        _ = try await connection.withTransaction { s in
            try s.execute(
                "UPDATE des_shard_locks SET expires_at = \(Self.now) - 1 WHERE shard = ?1 AND holder_pod = ?2 AND holder_instance = ?3 AND token = ?4",
                [.int(Int64(lease.shard)), .text(lease.holder.pod), .text(lease.holder.instance), .int(lease.token)])
        }
    }

    public func leases() async throws -> [ShardLease] {
        try await connection.withSession { s in
            try s.query("SELECT shard, holder_pod, holder_instance, token, expires_at FROM des_shard_locks ORDER BY shard").map {
                ShardLease(
                    shard: Int($0[0].int ?? 0), holder: LeaseHolder(pod: $0[1].text ?? "", instance: $0[2].text ?? ""),
                    token: $0[3].int ?? 0, expiresAt: $0[4].double ?? 0, isNewGrant: false)
            }
        }
    }

    /// `AND EXISTS (…)`: the lease still holds with its token (binds ?1…?4 are shard, pod, instance, token).
    private static let guardClause = """
        EXISTS (SELECT 1 FROM des_shard_locks WHERE shard = ?1 AND holder_pod = ?2 AND holder_instance = ?3
                AND token = ?4 AND expires_at > \(now))
        """

    private static func guardBinds(_ lease: ShardLease) -> [SQLValue] {
        [.int(Int64(lease.shard)), .text(lease.holder.pod), .text(lease.holder.instance), .int(lease.token)]
    }

    public func createContainer(day: String, shard: Int, lease: ShardLease, keyPrefix: String) async throws
        -> ContainerRecord
    {
        try await connection.withTransaction { s in
            let holder = lease.holder.description
            let placeholderKey = "pending:\(holder):\(shard):\(day):\(UInt64.random(in: 0...UInt64.max))"
            let rows = try s.query(
                """
                INSERT INTO des_containers (day, shard, key, state, holder, token, created_at, updated_at)
                SELECT ?5, ?1, ?6, 'writing', ?7, ?4, \(Self.now), \(Self.now) WHERE \(Self.guardClause)
                RETURNING id
                """, Self.guardBinds(lease) + [.text(day), .text(placeholderKey), .text(holder)])
            guard let id = rows.first?[0].int else {
                throw DESKitError(.fenced, "lease on shard \(shard) was lost (token \(lease.token)); container not created")
            }
            let key = containerKey(prefix: keyPrefix, day: day, shard: shard, id: id)
            try s.execute("UPDATE des_containers SET key = ?1 WHERE id = ?2", [.text(key), .int(id)])
            return ContainerRecord(
                id: id, day: day, shard: shard, key: key, state: .writing, holder: holder, token: lease.token,
                fileCount: 0, bytes: 0, size: nil, etag: nil)
        }
    }

    public func checkpoint(containerID: Int64, fileCount: Int, bytes: UInt64, lease: ShardLease) async throws {
        let changed = try await connection.withTransaction { s in
            try s.execute(
                """
                UPDATE des_containers SET file_count = ?5, bytes = ?6, updated_at = \(Self.now)
                WHERE id = ?7 AND state = 'writing' AND \(Self.guardClause)
                """, Self.guardBinds(lease) + [.int(Int64(fileCount)), .int(Int64(bytes)), .int(containerID)])
        }
        if changed == 0 {
            throw DESKitError(.fenced, "lease on shard \(lease.shard) was lost (token \(lease.token)); checkpoint rejected")
        }
    }

    public func markUploaded(
        containerID: Int64, fileCount: Int, bytes: UInt64, size: UInt64, etag: String, lease: ShardLease
    ) async throws -> Bool {
        try await connection.withTransaction { s in
            try s.execute(
                """
                UPDATE des_containers SET state = 'uploaded', file_count = ?5, bytes = ?6, size = ?7, etag = ?8,
                  uploaded_at = \(Self.now), updated_at = \(Self.now)
                WHERE id = ?9 AND state = 'writing' AND \(Self.guardClause)
                """,
                Self.guardBinds(lease) + [.int(Int64(fileCount)), .int(Int64(bytes)), .int(Int64(size)), .text(etag), .int(containerID)])
        } == 1
    }

    public func recoverUploaded(containerID: Int64, fileCount: Int, size: UInt64, etag: String) async throws {
        _ = try await connection.withTransaction { s in
            try s.execute(
                """
                UPDATE des_containers SET state = 'uploaded', file_count = ?1, size = ?2, etag = ?3,
                  uploaded_at = \(Self.now), updated_at = \(Self.now) WHERE id = ?4 AND state = 'writing'
                """, [.int(Int64(fileCount)), .int(Int64(size)), .text(etag), .int(containerID)])
        }
    }

    @discardableResult
    public func discardContainer(id: Int64) async throws -> Bool {
        try await connection.withTransaction { s in
            try s.execute(
                "UPDATE des_containers SET state = 'discarded', updated_at = \(Self.now) WHERE id = ?1 AND state = 'writing'",
                [.int(id)])
        } == 1
    }

    public func containers(state: ContainerState?, shard: Int?, day: String?) async throws -> [ContainerRecord] {
        var sql = "SELECT id, day, shard, key, state, holder, token, file_count, bytes, size, etag, \(Self.now) - updated_at FROM des_containers WHERE 1 = 1"
        var binds: [SQLValue] = []
        if let state {
            binds.append(.text(state.rawValue))
            sql += " AND state = ?\(binds.count)"
        }
        if let shard {
            binds.append(.int(Int64(shard)))
            sql += " AND shard = ?\(binds.count)"
        }
        if let day {
            binds.append(.text(day))
            sql += " AND day = ?\(binds.count)"
        }
        sql += " ORDER BY id"
        let (query, values) = (sql, binds)
        return try await connection.withSession { s in
            try s.query(query, values).map { r in
                ContainerRecord(
                    id: r[0].int ?? 0, day: r[1].text ?? "", shard: Int(r[2].int ?? 0), key: r[3].text ?? "",
                    state: ContainerState(rawValue: r[4].text ?? "") ?? .discarded, holder: r[5].text ?? "",
                    token: r[6].int ?? 0, fileCount: Int(r[7].int ?? 0), bytes: UInt64(max(0, r[8].int ?? 0)),
                    size: r[9].int.map { UInt64(max(0, $0)) }, etag: r[10].text, ageSeconds: r[11].double)
            }
        }
    }

    public func addDeadLetters(_ letters: [DeadLetter]) async throws {
        guard !letters.isEmpty else { return }
        _ = try await connection.withTransaction { s in
            for l in letters {
                try s.execute(
                    """
                    INSERT INTO des_dead_letters (source, catalog_entry_id, des_name, stage, error_message, created_at)
                    VALUES (?1, ?2, ?3, ?4, ?5, \(Self.now))
                    """,
                    [.text(l.source), .text(l.rowID), l.desName.map { .text($0) } ?? .null, .text(l.stage), .text(l.reason)])
            }
        }
    }

    public func deadLetters(limit: Int) async throws -> [DeadLetter] {
        try await connection.withSession { s in
            try s.query(
                "SELECT source, catalog_entry_id, des_name, stage, error_message FROM des_dead_letters ORDER BY id DESC LIMIT ?1",
                [.int(Int64(limit))]
            ).map {
                DeadLetter(source: $0[0].text ?? "", rowID: $0[1].text ?? "", desName: $0[2].text, stage: $0[3].text ?? "", reason: $0[4].text ?? "")
            }
        }
    }

    public func healthCheck() async throws {
        _ = try await connection.withSession { try $0.query("SELECT 1") }
    }

    public func close() async { await connection.close() }
}
