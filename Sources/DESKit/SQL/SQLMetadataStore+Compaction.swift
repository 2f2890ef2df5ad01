/// `des compact`: compacted containers recorded under the compaction lease's fencing token, and
/// the retired containers whose objects are deleted after the grace period.
extension SQLMetadataStore {
    /// The lease check of a compaction write (binds 1…4: shard of the lease, pod, instance, token).
    private var leaseHolds: String {
        """
        EXISTS (SELECT 1 FROM des_shard_locks WHERE shard = \(p(1)) AND holder_pod = \(p(2)) AND holder_instance = \(p(3))
                AND token = \(p(4)) AND expires_at > \(dialect.now))
        """
    }

    private static func leaseBinds(_ lease: ShardLease) -> [SQLValue] {
        [.int(Int64(lease.shard)), .text(lease.holder.pod), .text(lease.holder.instance), .int(lease.token)]
    }

    public func beginCompaction(day: String, shard: Int, lease: ShardLease, keyPrefix: String) async throws -> ContainerRecord {
        let (dialect, now, key) = (self.dialect, dialect.now, dialect.keyColumn)
        let insert = """
            INSERT INTO des_containers (day, shard, \(key), state, holder, token, created_at, updated_at)
            SELECT \(p(5)), \(p(6)), \(p(7)), 'compacting', \(p(8)), \(p(4)), \(now), \(now)\(dialect.fromDual) WHERE \(leaseHolds)
            """
        let setKey = "UPDATE des_containers SET \(key) = \(p(1)) WHERE id = \(p(2))"
        return try await transaction { s in
            let holder = lease.holder.description
            let placeholder = "compacting:\(holder):\(shard):\(day):\(UInt64.random(in: 0...UInt64.max))"
            guard
                let id = try dialect.insertReturningID(
                    in: s, insert, Self.leaseBinds(lease) + [.text(day), .int(Int64(shard)), .text(placeholder), .text(holder)])
            else {
                throw DESKitError(.fenced, "compaction lease of shard \(shard) was lost (token \(lease.token)); nothing compacted")
            }
            let key = containerKey(prefix: keyPrefix, day: day, shard: shard, id: id)
            try s.execute(setKey, [.text(key), .int(id)])
            return ContainerRecord(
                id: id, day: day, shard: shard, key: key, state: .compacting, holder: holder, token: lease.token, fileCount: 0, bytes: 0,
                size: nil, etag: nil)
        }
    }

    public func finishCompaction(
        containerID: Int64?, fileCount: Int, bytes: UInt64, size: UInt64, etag: String, replacing: [Int64], lease: ShardLease
    ) async throws -> Bool {
        let now = dialect.now
        let list = replacing.map(String.init).joined(separator: ", ")
        let upload = """
            UPDATE des_containers SET state = 'uploaded', file_count = \(p(5)), bytes = \(p(6)), size = \(p(7)), etag = \(p(8)),
              uploaded_at = \(now), updated_at = \(now) WHERE id = \(p(9)) AND state = 'compacting' AND \(leaseHolds)
            """
        let retire = """
            UPDATE des_containers SET state = 'retired', retired_at = \(now), replaced_by = \(p(1)), updated_at = \(now)
            WHERE state = 'uploaded' AND id IN (\(list.isEmpty ? "NULL" : list)) AND \(leaseHolds.replacingOccurrences(of: p(1), with: p(5)))
            """
        let binds = Self.leaseBinds(lease) + [
            .int(Int64(fileCount)), .int(Int64(clamping: bytes)), .int(Int64(clamping: size)), .text(etag), containerID.map { .int($0) } ?? .null,
        ]
        let retireBinds: [SQLValue] = [containerID.map { .int($0) } ?? .null] + Array(Self.leaseBinds(lease)[1...]) + [.int(Int64(lease.shard))]
        let count = replacing.count
        do {
            return try await transaction { [self] s in
                if containerID != nil { guard try s.execute(upload, binds) == 1 else { throw CompactionRace() } }
                guard try s.execute(retire, retireBinds) == count else { throw CompactionRace() }
                if let containerID { try emitContainerEvents(.containerUploaded, ids: [containerID], in: s) }
                try emitContainerEvents(.containerRetired, ids: replacing, in: s)
                return true
            }
        } catch is CompactionRace {
            return false  // rolled back: nothing changed
        }
    }

    public func abandonCompaction(containerID: Int64) async throws -> Bool {
        let sql = "UPDATE des_containers SET state = 'discarded', updated_at = \(dialect.now) WHERE id = \(p(1)) AND state = 'compacting'"
        return try await transaction { s in try s.execute(sql, [.int(containerID)]) } == 1
    }

    public func retiredContainers(olderThanSeconds seconds: Double) async throws -> [ContainerRecord] {
        let sql = """
            SELECT id, day, shard, \(dialect.keyColumn), state, holder, token, file_count, bytes, size, etag, \(dialect.now) - updated_at,
              replaced_by
            FROM des_containers WHERE state = 'retired' AND retired_at <= \(dialect.now) - \(p(1)) ORDER BY id
            """
        return try await session { s in
            try s.query(sql, [.double(seconds)]).map { row in
                var record = Self.container(row)
                record.replacedBy = row[12].int
                return record
            }
        }
    }

    public func containerObjectDeleted(id: Int64) async throws {
        let sql = "UPDATE des_containers SET state = 'deleted', updated_at = \(dialect.now) WHERE id = \(p(1)) AND state = 'retired'"
        try await transaction { [self] s in
            if try s.execute(sql, [.int(id)]) == 1 { try emitContainerEvents(.containerDeleted, ids: [id], in: s) }
        }
    }

    public func tombstonedBytes(containerIDs: [Int64]) async throws -> [Int64: (files: Int, bytes: UInt64)] {
        guard !containerIDs.isEmpty else { return [:] }
        var out: [Int64: (files: Int, bytes: UInt64)] = [:]
        for start in stride(from: 0, to: containerIDs.count, by: 500) {
            let list = containerIDs[start..<min(containerIDs.count, start + 500)].map(String.init).joined(separator: ", ")
            let sql = "SELECT container_id, COUNT(*), SUM(bytes) FROM des_tombstones WHERE container_id IN (\(list)) GROUP BY container_id"
            for row in try await session({ s in try s.query(sql, []) }) {
                guard let id = row[0].int else { continue }
                out[id] = (Int(row[1].int ?? 0), UInt64(max(0, row[2].int ?? 0)))
            }
        }
        return out
    }

    public func tombstonedNames(among names: [String]) async throws -> Set<String> {
        var found = Set<String>()
        for start in stride(from: 0, to: names.count, by: 500) {
            let slice = Array(names[start..<min(names.count, start + 500)])
            let list = (1...slice.count).map { p($0) }.joined(separator: ", ")
            let sql = "SELECT des_name FROM des_tombstones WHERE des_name IN (\(list))"
            let binds: [SQLValue] = slice.map { .text($0) }
            for row in try await session({ s in try s.query(sql, binds) }) { if let name = row[0].text { found.insert(name) } }
        }
        return found
    }
}

/// A compaction that lost its race (the lease, or a container retired by another): rolled back.
private struct CompactionRace: Error {}
