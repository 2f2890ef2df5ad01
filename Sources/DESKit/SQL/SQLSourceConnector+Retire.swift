extension SQLSourceConnector {
    /// One read per slice of keys: every row of this source (its `where_clause` included) whose
    /// key column holds one of `keys`, with its status; rows in `excluding` are left out.
    public func rowsSharingBodies(keys: [String], excluding rowIDs: Set<String>) async throws -> [String: SharedBody] {
        let unique = Array(Set(keys))
        guard !unique.isEmpty else { return [:] }
        let (d, s) = (dialect, try await tableShape())
        // What a row's status says about its need of the body: packed (its bytes are archived)
        // and deleted rows need it no more; a retired row's body was deleted by des retire.
        let done: Set<String> = [s.statusPacked, s.statusDeleted]
        var found: [String: SharedBody] = [:]
        let chunk = d.chunkSize(valuesPerRow: 1, fixed: 16)
        for start in stride(from: 0, to: unique.count, by: chunk) {
            let slice = Array(unique[start..<min(unique.count, start + chunk)])
            let sql = "SELECT \(s.id), \(s.key), \(s.status) FROM \(s.table) WHERE \(s.key) IN (\(d.placeholders(slice.count, from: 1)))\(s.andWhere)"
            let binds: [SQLValue] = slice.map { .text($0) }
            let rows = try await pool.withConnection { conn in
                try await conn.withSession { try $0.query(sql, binds) }
            }
            for row in rows {
                guard let id = row[0].text, !rowIDs.contains(id), let key = row[1].text else { continue }
                var shared = found[key] ?? SharedBody(neededByUnpacked: false, retiredByAnother: false)
                switch row[2].text {
                case let status? where status == s.statusSourceDeleted: shared.retiredByAnother = true
                case let status? where done.contains(status): break
                default: shared.neededByUnpacked = true  // unnamed (NULL or the "new" value), pending, claimed, failed, or another value
                }
                found[key] = shared
            }
        }
        return found
    }
}
