/// `des retire`'s intents: rows whose bodies it is about to delete.
extension SQLMetadataStore {
    public func addRetireIntents(source: String, rowIDs: [String]) async throws {
        guard !rowIDs.isEmpty else { return }
        let sql = """
            INSERT INTO des_retire_intents (source, row_id, created_at) SELECT \(p(1)), \(p(2)), \(dialect.now)\(dialect.fromDual)
            WHERE NOT EXISTS (SELECT 1 FROM des_retire_intents WHERE source = \(p(3)) AND row_id = \(p(4)))
            """
        try await transaction { s in
            for id in rowIDs { _ = try s.execute(sql, [.text(source), .text(id), .text(source), .text(id)]) }
        }
    }

    public func retireIntents(source: String, rowIDs: [String]) async throws -> Set<String> {
        var found = Set<String>()
        for start in stride(from: 0, to: rowIDs.count, by: 500) {
            let slice = Array(rowIDs[start..<min(rowIDs.count, start + 500)])
            let list = (2...(slice.count + 1)).map { p($0) }.joined(separator: ", ")
            let sql = "SELECT row_id FROM des_retire_intents WHERE source = \(p(1)) AND row_id IN (\(list))"
            let binds: [SQLValue] = [.text(source)] + slice.map { .text($0) }
            for row in try await session({ s in try s.query(sql, binds) }) { if let id = row[0].text { found.insert(id) } }
        }
        return found
    }

    public func clearRetireIntents(source: String, rowIDs: [String]) async throws {
        for start in stride(from: 0, to: rowIDs.count, by: 500) {
            let slice = Array(rowIDs[start..<min(rowIDs.count, start + 500)])
            let list = (2...(slice.count + 1)).map { p($0) }.joined(separator: ", ")
            let sql = "DELETE FROM des_retire_intents WHERE source = \(p(1)) AND row_id IN (\(list))"
            let binds: [SQLValue] = [.text(source)] + slice.map { .text($0) }
            try await transaction { [self] s in
                try emitRetirements(source: source, rowIDs: slice, in: s)
                try s.execute(sql, binds)
            }
        }
    }
}
