/// `des rebuild`: container records recreated from the containers in storage.
extension SQLMetadataStore {
    public func importContainer(_ record: ContainerRecord) async throws -> Bool {
        let (key, now) = (dialect.keyColumn, dialect.now)
        let insert = """
            INSERT INTO des_containers (id, day, shard, \(key), state, holder, token, file_count, bytes, size, etag, created_at, updated_at, uploaded_at,
              retired_at, replaced_by)
            SELECT \(p(1)), \(p(2)), \(p(3)), \(p(4)), \(p(5)), \(p(6)), \(p(7)), \(p(8)), \(p(9)), \(p(10)), \(p(11)), \(now), \(now), \(now),
              \(record.state == .retired ? now : "NULL"), \(p(14))
            \(dialect.fromDual) WHERE NOT EXISTS (SELECT 1 FROM des_containers WHERE id = \(p(12)) OR \(key) = \(p(13)))
            """
        let binds: [SQLValue] = [
            .int(record.id), .text(record.day), .int(Int64(record.shard)), .text(record.key), .text(record.state.rawValue),
            .text(record.holder), .int(record.token), .int(Int64(record.fileCount)), .int(Int64(clamping: record.bytes)),
            record.size.map { .int(Int64(clamping: $0)) } ?? .null, record.etag.map { .text($0) } ?? .null, .int(record.id), .text(record.key),
            record.replacedBy.map { .int($0) } ?? .null,
        ]
        let resync = dialect.resyncContainerIDs
        return try await transaction { [self] s in
            let added = try s.execute(insert, binds) > 0
            if added, let resync { _ = try s.query(resync, []) }
            if added, record.state == .uploaded { try emitContainerEvents(.containerUploaded, ids: [record.id], in: s) }
            return added
        }
    }
}
