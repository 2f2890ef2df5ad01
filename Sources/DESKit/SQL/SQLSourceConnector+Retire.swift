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
            let sql = "SELECT \(s.id), \(s.key), \(s.status) FROM \(s.table) WHERE \(s.key) IN (\(d.placeholders(slice.count, from: 1)))\(s.andWhere(findingByListIn: d))"
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

extension SQLSourceConnector {
    /// Rows whose status is none of packed, retired and deleted (a NULL status included), in id order.
    public func bodiesNotYetPacked(afterRowID: String?, limit: Int) async throws -> [RowBody]? {
        let (d, s) = (dialect, try await tableShape())
        var binds: [SQLValue] = [s.statusValue(s.statusPacked)]
        var done = s.statusParam(d, 1)
        // A status the column cannot hold is on no row: not asked for.
        for (value, problem) in [(s.statusSourceDeleted, s.statusSourceDeletedProblem), (s.statusDeleted, s.statusDeletedProblem)] where problem == nil {
            binds.append(s.statusValue(value))
            done += ", " + s.statusParam(d, binds.count)
        }
        var cols = "\(s.id), \(s.key)"
        if let bucket = s.bucket { cols += ", \(bucket)" }
        var rest = "\(s.table) WHERE (\(s.status) IS NULL OR \(s.status) NOT IN (\(done)))\(s.andWhere)"
        if let afterRowID {
            binds.append(s.idValue(afterRowID))
            rest += " AND \(s.id) > \(s.idParam(d, binds.count))"
        }
        let limited = d.limitedSelect(cols, from: rest + " ORDER BY \(s.id)", limit: limit, bind: binds.count + 1)
        if let bind = limited.bind { binds.append(bind) }
        let (query, values, maxRows, hasBucket) = (limited.sql, binds, limited.maxRows, s.bucket != nil)
        let rows = try await pool.withConnection { conn in
            try await conn.withSession { try $0.query(query, values, maxRows: maxRows) }
        }
        return rows.compactMap { r in
            guard let id = r[0].text, let key = r[1].text else { return nil }
            return RowBody(rowID: id, body: BodyLocation(bucket: hasBucket ? r[2].text : nil, key: key))
        }
    }
}
