/// Deletes: the tombstones servers, `des get`, `des check` and compaction read.
extension SQLMetadataStore {
    public func addTombstones(_ tombstones: [Tombstone]) async throws -> Int {
        try await addTombstonesNamingAdded(tombstones).count
    }

    public func addTombstonesNamingAdded(_ tombstones: [Tombstone]) async throws -> [String] {
        guard !tombstones.isEmpty else { return [] }
        // A container compacted since the caller found the file in it is replaced by the one that
        // holds the file now: the tombstone names that one, so its garbage is counted there. Two
        // deletes of one name at once: the unique name lets one insert, the other inserts nothing
        // (not an error), and only the first is told it deleted the file.
        let sql = dialect.insertIgnoringDuplicate(
            """
            INSERT INTO des_tombstones (des_name, reason, origin, deleted_at, container_id, bytes)
            SELECT \(p(1)), \(p(2)), \(p(3)), \(dialect.now),
              COALESCE((SELECT replaced_by FROM des_containers WHERE id = \(p(4)) AND replaced_by IS NOT NULL), \(p(5))), \(p(6))\(dialect.fromDual)
            WHERE NOT EXISTS (SELECT 1 FROM des_tombstones WHERE des_name = \(p(7)))
            """, on: "des_name")
        return try await transaction { [self] s in
            var added: [String] = []
            for t in tombstones {
                let inserted = try s.execute(
                    sql,
                    [.text(t.name), .text(String(t.reason.prefix(2000))), .text(t.origin), t.containerID.map { .int($0) } ?? .null,
                     t.containerID.map { .int($0) } ?? .null, .int(Int64(clamping: t.bytes)), .text(t.name)])
                if inserted > 0 { added.append(t.name) }
            }
            try emitTombstones(added, in: s)
            return added
        }
    }

    public func assignTombstones(names: [String], toContainer containerID: Int64) async throws {
        for start in stride(from: 0, to: names.count, by: 500) {
            let slice = Array(names[start..<min(names.count, start + 500)])
            let sql = "UPDATE des_tombstones SET container_id = \(p(1)) WHERE des_name IN (\((2...(slice.count + 1)).map { p($0) }.joined(separator: ", ")))"
            _ = try await transaction { s in try s.execute(sql, [.int(containerID)] + slice.map { .text($0) }) }
        }
    }

    public func tombstones(afterSeq: Int64, limit: Int) async throws -> [Tombstone] {
        let sql = """
            SELECT seq, des_name, reason, origin, deleted_at, container_id, bytes FROM des_tombstones WHERE seq > \(p(1)) ORDER BY seq LIMIT \(p(2))
            """
        return try await session { s in try s.query(sql, [.int(afterSeq), .int(Int64(max(0, limit)))]).map(Self.tombstone) }
    }

    public func tombstone(named name: String) async throws -> Tombstone? {
        let sql = "SELECT seq, des_name, reason, origin, deleted_at, container_id, bytes FROM des_tombstones WHERE des_name = \(p(1))"
        return try await session { s in try s.query(sql, [.text(name)]).first.map(Self.tombstone) }
    }

    static func tombstone(_ r: SQLRow) -> Tombstone {
        Tombstone(
            name: r[1].text ?? "", reason: r[2].text ?? "", origin: r[3].text ?? "", containerID: r[5].int,
            bytes: UInt64(max(0, r[6].int ?? 0)), seq: r[0].int ?? 0, deletedAt: r[4].double ?? 0)
    }
}
