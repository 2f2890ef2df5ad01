/// The dead-letter table as `des dlq` reads and closes it.
extension SQLMetadataStore {
    public func deadLetters(matching query: DeadLetterQuery) async throws -> [DeadLetterRecord] {
        if let ids = query.ids, ids.isEmpty { return [] }
        if let rows = query.rowIDs, rows.isEmpty { return [] }
        if let rows = query.rowIDs, rows.count > 500 {
            throw DESKitError(.configuration, "dead letters of \(rows.count) rows asked for at once: at most 500")
        }
        var binds: [SQLValue] = []
        var conditions: [String] = []
        if !query.includeResolved { conditions.append("resolved = 0") }
        if let source = query.source {
            binds.append(.text(source))
            conditions.append("source = \(p(binds.count))")
        }
        if let stage = query.stage {
            binds.append(.text(stage))
            conditions.append("stage = \(p(binds.count))")
        }
        if let rows = query.rowIDs {
            let first = binds.count + 1
            binds += rows.map { .text($0) }
            conditions.append("catalog_entry_id IN (\((first..<first + rows.count).map { p($0) }.joined(separator: ", ")))")
        }
        // Ids are integers of ours: inlined, so a long list needs no binds.
        if let ids = query.ids { conditions.append("id IN (\(ids.map(String.init).joined(separator: ", ")))") }
        binds.append(.int(Int64(max(0, query.limit))))
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let sql = """
            SELECT id, source, catalog_entry_id, des_name, stage, error_message, created_at, resolved_at FROM des_dead_letters\(filter) \
            ORDER BY id LIMIT \(p(binds.count))
            """
        let values = binds
        return try await session { s in
            try s.query(sql, values).map { r in
                DeadLetterRecord(
                    id: r[0].int ?? 0,
                    letter: DeadLetter(source: r[1].text ?? "", rowID: r[2].text ?? "", desName: r[3].text, stage: r[4].text ?? "", reason: r[5].text ?? ""),
                    createdAt: r[6].double ?? 0, resolvedAt: r[7].double)
            }
        }
    }

    public func resolveDeadLetters(ids: [Int64]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let now = dialect.now
        return try await transaction { s in
            var closed = 0
            for start in stride(from: 0, to: ids.count, by: 500) {
                let list = ids[start..<min(ids.count, start + 500)].map(String.init).joined(separator: ", ")
                closed += try s.execute("UPDATE des_dead_letters SET resolved = 1, resolved_at = \(now) WHERE resolved = 0 AND id IN (\(list))", [])
            }
            return closed
        }
    }
}
