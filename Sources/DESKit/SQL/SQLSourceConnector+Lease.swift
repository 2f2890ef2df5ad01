/// What a packer that holds a shard's lease does instead of claiming rows (`packer.claim_mode:
/// lease`): it reads pending rows with a plain keyset read, and marks each container's rows from
/// pending in one statement. No row lock is taken and no row is written until it is packed: the
/// lease, fenced in the metadata store, is the claim.
extension SQLSourceConnector {
    public func readPending(shards: [Int], afterRowID: String?, limit: Int) async throws -> [PendingFile] {
        guard !shards.isEmpty, limit > 0 else { return [] }
        let (d, s) = (dialect, try await tableShape())
        let pending = s.pendingPredicate(d, shards: shards, firstBind: 1)
        var binds = pending.binds
        var rest = "\(s.table) WHERE \(pending.sql)"
        if let afterRowID {
            binds.append(s.idValue(afterRowID))
            rest += " AND \(s.id) > \(s.idParam(d, binds.count))"
        }
        let limited = d.limitedSelect(s.claimSelectList, from: rest + " ORDER BY \(s.id)", limit: limit, bind: binds.count + 1)
        if let bind = limited.bind { binds.append(bind) }
        let (query, values, maxRows) = (limited.sql, binds, limited.maxRows)
        let rows = try await pool.withConnection { conn in
            try await conn.withSession { try $0.query(query, values, maxRows: maxRows) }
        }
        return try rows.map { try pendingFile($0, s) }
    }

    public func markPackedIfPending(rowIDs: [String], container: String) async throws -> Int {
        let (d, s) = (dialect, try await tableShape())
        return try await updateInChunks(
            ids: rowIDs, shape: s,
            prefix: { binds in
                binds = [s.statusValue(s.statusPacked), s.statusValue(s.statusPending)]
                var set = "\(s.status) = \(s.statusParam(d, 1))"
                if let column = s.container {
                    binds.append(.text(container))
                    set += ", \(column) = \(d.placeholder(binds.count))"
                }
                if let error = s.error { set += ", \(error) = NULL" }
                set += s.setPackedAt(d)
                return "UPDATE \(s.table) SET \(set) WHERE \(s.status) = \(s.statusParam(d, 2))"
            }, holder: nil)
    }

    public func markFailedIfPending(_ rows: [FailedRow]) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let (d, s) = (dialect, try await tableShape())
        return try await transaction { session in
            var changed = 0
            for row in rows {
                var binds: [SQLValue] = [s.statusValue(s.statusFailed)]
                var set = "\(s.status) = \(s.statusParam(d, 1))"
                if let error = s.error {
                    binds.append(.text(String(row.reason.prefix(2000))))
                    set += ", \(error) = \(d.placeholder(binds.count))"
                }
                binds.append(s.idValue(row.rowID))
                let idAt = binds.count
                binds.append(s.statusValue(s.statusPending))
                changed += try session.execute(
                    "UPDATE \(s.table) SET \(set) WHERE \(s.id) = \(s.idParam(d, idAt)) AND \(s.status) = \(s.statusParam(d, binds.count))",
                    binds)
            }
            return changed
        }
    }
}
