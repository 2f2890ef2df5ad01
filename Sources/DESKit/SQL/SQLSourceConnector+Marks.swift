import DESFormat

#if canImport(Foundation)
import Foundation
#endif

extension SQLSourceConnector {
    /// Runs `UPDATE … WHERE <prefix> [AND claimed_by = holder] AND id IN (…) [AND des_name IN (…)]`
    /// over `ids` (and any of `names`, when given), in chunks the dialect's bind limit allows
    /// (``SQLDialect/chunkSize(valuesPerRow:fixed:)``): one statement when ids and names fit in one,
    /// else every chunk of ids with every chunk of names; each chunk in a transaction of its own.
    func updateInChunks(
        ids: [String], names: [String]? = nil, shape: SQLTableShape, prefix: @escaping @Sendable (inout [SQLValue]) -> String,
        holder: String?
    ) async throws -> Int {
        let dialect = self.dialect
        var total = 0
        for (slice, named) in Self.chunkPlan(ids: ids, names: names, dialect: dialect) {
            total += try await transaction { session in
                try Self.update(session, dialect: dialect, shape: shape, sql: prefix, holder: holder, ids: slice, names: named)
            }
        }
        return total
    }

    /// Each of `marks` as ``updateInChunks(ids:names:shape:prefix:holder:)`` would run it (`prefix`
    /// given the mark's container), all in one transaction. Returns the rows changed per mark.
    func updateMarks(
        _ marks: [ContainerMark], byName: Bool, shape: SQLTableShape,
        prefix: @escaping @Sendable (_ container: String, inout [SQLValue]) -> String, holder: String?
    ) async throws -> [Int] {
        let dialect = self.dialect
        let plans = marks.map { Self.chunkPlan(ids: $0.rowIDs, names: byName ? $0.names : nil, dialect: dialect) }
        guard plans.contains(where: { !$0.isEmpty }) else { return marks.map { _ in 0 } }
        return try await transaction { session in
            try zip(marks, plans).map { mark, plan in
                try plan.reduce(0) { total, chunk in
                    total + (try Self.update(
                        session, dialect: dialect, shape: shape, sql: { prefix(mark.container, &$0) }, holder: holder, ids: chunk.ids,
                        names: chunk.names))
                }
            }
        }
    }

    /// The statements one update over `ids` (and `names`) takes: slices of each that fit the
    /// dialect's bind limit, every slice of ids with every slice of names. Empty when `ids` (or a
    /// given `names`) is.
    static func chunkPlan(ids: [String], names: [String]?, dialect: any SQLDialect) -> [(ids: [String], names: [String]?)] {
        guard !ids.isEmpty else { return [] }
        var plan: [(ids: [String], names: [String]?)] = []
        let budget = dialect.chunkSize(valuesPerRow: 1, fixed: 16)
        if let names {
            guard !names.isEmpty else { return [] }
            let chunk = ids.count + names.count <= budget ? max(ids.count, names.count) : max(1, budget / 2)
            for start in stride(from: 0, to: ids.count, by: chunk) {
                for from in stride(from: 0, to: names.count, by: chunk) {
                    plan.append((Array(ids[start..<min(ids.count, start + chunk)]), Array(names[from..<min(names.count, from + chunk)])))
                }
            }
        } else {
            for start in stride(from: 0, to: ids.count, by: budget) { plan.append((Array(ids[start..<min(ids.count, start + budget)]), nil)) }
        }
        return plan
    }

    /// One statement of an update: `sql` (the `UPDATE … WHERE …` start, filling its binds), then
    /// the holder, the ids and the names.
    static func update(
        _ session: any SQLSession, dialect: any SQLDialect, shape: SQLTableShape, sql prefix: (inout [SQLValue]) throws -> String,
        holder: String?, ids: [String], names: [String]?
    ) throws -> Int {
        var binds: [SQLValue] = []
        var sql = try prefix(&binds)
        if let holder {
            binds.append(.text(holder))
            sql += " AND \(shape.claimedBy) = \(dialect.placeholder(binds.count))"
        }
        sql += " AND " + (try dialect.idMatches(in: session, table: shape, ids: ids, binds: &binds))
        if let names {
            sql += " AND " + dialect.textMatches(shape.desName, values: names, binds: &binds)
        }
        return try session.execute(sql, binds)
    }

    public func markPacked(rowIDs: [String], container: String, holder: String?) async throws -> Int {
        let (d, s) = (dialect, try await tableShape())
        return try await updateInChunks(ids: rowIDs, shape: s, prefix: { binds in Self.markPackedSQL(d, s, container, &binds) }, holder: holder)
    }

    public func markPacked(_ marks: [ContainerMark], holder: String?) async throws -> [Int] {
        let (d, s) = (dialect, try await tableShape())
        return try await updateMarks(marks, byName: false, shape: s, prefix: { Self.markPackedSQL(d, s, $0, &$1) }, holder: holder)
    }

    /// `UPDATE … SET <packed into container> WHERE status = claimed` — or, `unlessPacked`
    /// (`claim_mode: lease`), `WHERE status <> packed` — its binds in `binds`.
    static func markPackedSQL(
        _ d: any SQLDialect, _ s: SQLTableShape, _ container: String, unlessPacked: Bool = false, _ binds: inout [SQLValue]
    ) -> String {
        binds = []
        let set = s.packedAssignments(d, key: container, binds: &binds)
        binds.append(s.statusValue(unlessPacked ? s.statusPacked : s.statusClaimed))
        return "UPDATE \(s.table) SET \(set) WHERE \(s.status) \(unlessPacked ? "<>" : "=") \(s.statusParam(d, binds.count))"
    }

    public func releaseClaims(rowIDs: [String], holder: String?) async throws -> Int {
        let (d, s) = (dialect, try await tableShape())
        return try await updateInChunks(
            ids: rowIDs, shape: s,
            prefix: { binds in
                binds = [s.statusValue(s.statusPending), s.statusValue(s.statusClaimed)]
                return "UPDATE \(s.table) SET \(s.status) = \(s.statusParam(d, 1)), \(s.claimedBy) = NULL\(s.clearClaimedAt) "
                    + "WHERE \(s.status) = \(s.statusParam(d, 2))"
            }, holder: holder)
    }

    public func returnFailedRows(_ rowIDs: [String], to target: FailedRowTarget) async throws -> Int {
        let (d, s) = (dialect, try await tableShape())
        return try await updateInChunks(
            ids: rowIDs, shape: s,
            prefix: { binds in
                binds = []
                var set: String
                switch target {
                case .naming:
                    if let new = s.statusNew {
                        binds.append(s.statusValue(new))
                        set = "\(s.status) = \(s.statusParam(d, binds.count))"
                    } else {
                        set = "\(s.status) = NULL"
                    }
                case .packing:
                    binds.append(s.statusValue(s.statusPending))
                    set = "\(s.status) = \(s.statusParam(d, binds.count)), \(s.claimedBy) = NULL\(s.clearClaimedAt)"
                }
                if let error = s.error { set += ", \(error) = NULL" }
                binds.append(s.statusValue(s.statusFailed))
                let named = target == .naming ? "IS NULL" : "IS NOT NULL"
                return "UPDATE \(s.table) SET \(set) WHERE \(s.status) = \(s.statusParam(d, binds.count)) AND \(s.desName) \(named)"
            }, holder: nil)
    }

    public func markSourceDeleted(rowIDs: [String]) async throws -> Int {
        let (d, s) = (dialect, try await tableShape())
        if let problem = s.statusSourceDeletedProblem { throw DESKitError(.catalog, problem) }
        if rowIDs.isEmpty { try await probeSourceDeleted(s); return 0 }
        return try await updateInChunks(
            ids: rowIDs, shape: s,
            prefix: { binds in
                binds = [s.statusValue(s.statusSourceDeleted)]
                var set = "\(s.status) = \(s.statusParam(d, 1))"
                if let at = s.sourceDeletedAt { set += ", \(at) = \(d.now(for: s.sourceDeletedAtKind ?? .float))" }
                binds.append(s.statusValue(s.statusPacked))
                return "UPDATE \(s.table) SET \(set) WHERE \(s.status) = \(s.statusParam(d, 2))"
            }, holder: nil)
    }

    /// Writes the retired status on one packed row inside a transaction that is then rolled
    /// back: a CHECK constraint, a trigger or a type the reflection did not see refuses it here,
    /// before any body is deleted.
    private func probeSourceDeleted(_ s: SQLTableShape) async throws {
        let d = dialect
        let limited = d.limitedSelect(s.id, from: "\(s.table) WHERE \(s.status) = \(s.statusParam(d, 1))", limit: 1, bind: 2)
        let binds = [s.statusValue(s.statusPacked)] + (limited.bind.map { [$0] } ?? [])
        let found = try await pool.withConnection { conn in
            try await conn.withSession { try $0.query(limited.sql, binds, maxRows: limited.maxRows) }
        }
        guard let id = found.first?[0].text else { return }
        var set = "\(s.status) = \(s.statusParam(d, 1))"
        if let at = s.sourceDeletedAt { set += ", \(at) = \(d.now(for: s.sourceDeletedAtKind ?? .float))" }
        let sql = "UPDATE \(s.table) SET \(set) WHERE \(s.id) = \(s.idParam(d, 2))"
        let values = [s.statusValue(s.statusSourceDeleted), s.idValue(id)]
        do {
            try await transaction { session -> Void in
                _ = try session.execute(sql, values)
                throw ProbeRollback()
            }
        } catch is ProbeRollback {
            return
        } catch {
            throw DESKitError(
                .catalog,
                "source '\(name)': \(s.table) refuses status_source_deleted_value '\(s.statusSourceDeleted)' (tried on row \(id), rolled back): \(error)")
        }
    }

    public func markDeleted(names: [String]) async throws -> Int {
        let (d, s) = (dialect, try await tableShape())
        if let problem = s.statusDeletedProblem { throw DESKitError(.catalog, problem) }
        guard !names.isEmpty else { return 0 }
        let chunk = d.chunkSize(valuesPerRow: 1, fixed: 16)
        var total = 0
        for start in stride(from: 0, to: names.count, by: chunk) {
            let slice = Array(names[start..<min(names.count, start + chunk)])
            total += try await transaction { session in
                var binds: [SQLValue] = [s.statusValue(s.statusDeleted), s.statusValue(s.statusPacked)]
                var statuses = s.statusParam(d, 2)
                if s.statusSourceDeletedProblem == nil {
                    binds.append(s.statusValue(s.statusSourceDeleted))
                    statuses += ", " + s.statusParam(d, binds.count)
                }
                let list = d.placeholders(slice.count, from: binds.count + 1)
                binds += slice.map { .text($0) }
                return try session.execute(
                    "UPDATE \(s.table) SET \(s.status) = \(s.statusParam(d, 1)) WHERE \(s.status) IN (\(statuses)) AND \(s.desName) IN (\(list))\(s.andWhere(findingByListIn: d))", binds)
            }
        }
        return total
    }

    public func markFailed(_ rows: [FailedRow], holder: String?) async throws -> Int {
        try await markFailed(rows, fromPending: false, holder: holder)
    }

    /// Marks rows failed with their reasons: with `holder`, only rows it has claimed; with
    /// `fromPending`, only rows still pending (claim_mode lease); else any row.
    func markFailed(_ rows: [FailedRow], fromPending: Bool, holder: String?) async throws -> Int {
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
                var sql = "UPDATE \(s.table) SET \(set) WHERE \(s.id) = \(s.idParam(d, binds.count))"
                if let holder {
                    // The packer fails only rows it still has claimed.
                    binds += [s.statusValue(s.statusClaimed), .text(holder)]
                    sql += " AND \(s.status) = \(s.statusParam(d, binds.count - 1)) AND \(s.claimedBy) = \(d.placeholder(binds.count))"
                } else if fromPending {
                    binds.append(s.statusValue(s.statusPending))
                    sql += " AND \(s.status) = \(s.statusParam(d, binds.count))"
                    if let name = row.desName {
                        binds.append(.text(name))
                        sql += " AND \(s.desName) = \(d.placeholder(binds.count))"
                    }
                }
                changed += try session.execute(sql, binds)
            }
            return changed
        }
    }
}

extension SQLTableShape {
    /// `status = packed, container = key, error = NULL[, packed_at = now]` for the columns the
    /// table has; the values are appended to `binds`.
    func packedAssignments(_ d: any SQLDialect, key: String, binds: inout [SQLValue]) -> String {
        binds.append(statusValue(statusPacked))
        var set = "\(status) = \(statusParam(d, binds.count))"
        if let column = container {
            binds.append(.text(key))
            set += ", \(column) = \(d.placeholder(binds.count))"
        }
        if let error { set += ", \(error) = NULL" }
        return set + setPackedAt(d)
    }
}

/// Rolls back a probe's transaction.
private struct ProbeRollback: Error {}
