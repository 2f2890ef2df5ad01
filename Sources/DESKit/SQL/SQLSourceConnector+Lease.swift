/// What a packer that holds a shard's lease does instead of claiming rows (`packer.claim_mode:
/// lease`): it reads pending rows with a plain keyset read, and marks each container's rows
/// packed in one statement. No row lock is taken and no row is written until it is packed: the
/// lease, fenced in the metadata store, is the claim.
extension SQLSourceConnector {
    public func readPending(shards: [Int], afterRowID: String?, limit: Int) async throws -> [PendingFile] {
        guard !shards.isEmpty, limit > 0 else { return [] }
        let s = try await tableShape()
        return try await keysetRead(s.claimSelectList, shape: s, shards: shards, afterRowID: afterRowID, limit: limit).map { try pendingFile($0, s) }
    }

    /// Reads only the key and name columns: no row is decoded whole.
    public func readPendingNames(shards: [Int], afterRowID: String?, limit: Int) async throws -> [NamedRow]? {
        guard !shards.isEmpty, limit > 0 else { return [] }
        let s = try await tableShape()
        return try await keysetRead("\(s.id), \(s.desName)", shape: s, shards: shards, afterRowID: afterRowID, limit: limit).compactMap { row in
            guard let id = row[0].text, let name = row[1].text else { return nil }
            return NamedRow(rowID: id, desName: name, state: .pending)
        }
    }

    public func readPending(rowIDs: [String], shards: [Int]) async throws -> [PendingFile] {
        guard !rowIDs.isEmpty, !shards.isEmpty else { return [] }
        let (d, s) = (dialect, try await tableShape())
        let pending = s.pendingPredicate(d, shards: shards, firstBind: 1)
        let chunk = d.chunkSize(valuesPerRow: 1, fixed: 16)
        var found: [PendingFile] = []
        for start in stride(from: 0, to: rowIDs.count, by: chunk) {
            let slice = Array(rowIDs[start..<min(rowIDs.count, start + chunk)])
            let rows = try await pool.withConnection { conn in
                try await conn.withSession { session in
                    var binds = pending.binds
                    let match = try d.idMatches(in: session, table: s, ids: slice, binds: &binds)
                    return try session.query("SELECT \(s.claimSelectList) FROM \(s.table) WHERE \(pending.sql) AND \(match) ORDER BY \(s.id)", binds)
                }
            }
            found += try rows.map { try pendingFile($0, s) }
        }
        return found
    }

    /// `SELECT columns` of the pending rows of `shards` after `afterRowID`, in key order, up to `limit`.
    private func keysetRead(_ columns: String, shape s: SQLTableShape, shards: [Int], afterRowID: String?, limit: Int) async throws -> [SQLRow] {
        let d = dialect
        let pending = s.pendingPredicate(d, shards: shards, firstBind: 1)
        var binds = pending.binds
        var rest = "\(s.table) WHERE \(pending.sql)"
        if let afterRowID {
            binds.append(s.idValue(afterRowID))
            rest += " AND \(s.id) > \(s.idParam(d, binds.count))"
        }
        let limited = d.limitedSelect(columns, from: rest + " ORDER BY \(s.id)", limit: limit, bind: binds.count + 1)
        if let bind = limited.bind { binds.append(bind) }
        let (query, values, maxRows) = (limited.sql, binds, limited.maxRows)
        return try await pool.withConnection { conn in
            try await conn.withSession { try $0.query(query, values, maxRows: maxRows) }
        }
    }

    public func markPackedUnlessPacked(rowIDs: [String], names: [String], container: String) async throws -> Int {
        let (d, s) = (dialect, try await tableShape())
        return try await updateInChunks(
            ids: rowIDs, names: names, shape: s, prefix: { binds in Self.markPackedSQL(d, s, container, unlessPacked: true, &binds) }, holder: nil)
    }

    public func markPackedUnlessPacked(_ marks: [ContainerMark]) async throws -> [Int] {
        let (d, s) = (dialect, try await tableShape())
        return try await updateMarks(marks, byName: true, shape: s, prefix: { Self.markPackedSQL(d, s, $0, unlessPacked: true, &$1) }, holder: nil)
    }

    public func rowsNamed(_ names: [String]) async throws -> [NamedRow] {
        guard !names.isEmpty else { return [] }
        let (d, s) = (dialect, try await tableShape())
        let chunk = d.chunkSize(valuesPerRow: 1, fixed: 16)
        let labels: [String: NamedRow.State] = [
            s.statusPending: .pending, s.statusClaimed: .claimed, s.statusPacked: .packed, s.statusFailed: .failed,
        ]
        var found: [NamedRow] = []
        for start in stride(from: 0, to: names.count, by: chunk) {
            let slice = Array(names[start..<min(names.count, start + chunk)])
            let sql = "SELECT \(s.id), \(s.desName), \(s.status) FROM \(s.table) WHERE \(s.desName) IN (\(d.placeholders(slice.count, from: 1)))\(s.andWhere(findingByListIn: d))"
            let binds: [SQLValue] = slice.map { .text($0) }
            let rows = try await pool.withConnection { conn in
                try await conn.withSession { try $0.query(sql, binds) }
            }
            for row in rows {
                guard let id = row[0].text, let name = row[1].text else { continue }
                found.append(NamedRow(rowID: id, desName: name, state: row[2].text.flatMap { labels[$0] } ?? .other))
            }
        }
        return found
    }

    public func markFailedIfPending(_ rows: [FailedRow]) async throws -> Int {
        try await markFailed(rows, fromPending: true, holder: nil)
    }
}
