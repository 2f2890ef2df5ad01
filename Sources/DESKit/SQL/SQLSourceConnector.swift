import DESFormat
import Logging

/// The generic source over any SQL database: a ``SQLConnection`` pool plus a ``SQLDialect``.
///
/// Every identifier comes from the config and is validated and quoted; every
/// value is a bound parameter. The shard filter is in the SQL, before the limit.
public final class SQLSourceConnector: SourceConnector {
    public let name: String
    /// The source's configuration.
    public let config: SourceConfig
    /// The dialect in use.
    public let dialect: any SQLDialect
    /// The table's quoted identifiers.
    public let shape: SQLTableShape
    private let pool: SQLConnectionPool

    /// Creates the connector; fails when an identifier in the config is invalid.
    public init(config: SourceConfig, dialect: any SQLDialect, pool: SQLConnectionPool) throws {
        self.name = config.name
        self.config = config
        self.dialect = dialect
        self.pool = pool
        self.shape = try SQLTableShape(config: config.table, dialect: dialect)
    }

    private func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await pool.withConnection { try await $0.withTransaction(body) }
    }

    public func claim(shards: [Int], limit: Int, holder: String) async throws -> [PendingFile] {
        guard !shards.isEmpty, limit > 0 else { return [] }
        let (dialect, shape) = (self.dialect, self.shape)
        let rows = try await transaction { session in
            try dialect.claim(in: session, table: shape, shards: shards, limit: limit, holder: holder)
        }
        return try rows.map(pendingFile)
    }

    /// Turns a row with the claim columns into a pending file.
    func pendingFile(_ row: SQLRow) throws -> PendingFile {
        var i = 0
        func next() -> SQLValue {
            defer { i += 1 }
            return row[i]
        }
        guard let id = next().text else { throw DESKitError(.invalidData, "source \(name): a claimed row has a NULL id") }
        let key = next().text ?? ""
        let bucket = shape.bucket != nil ? next().text : nil
        let size = shape.size != nil ? next().int.map { UInt64(max(0, $0)) } : nil
        guard let desName = next().text else {
            throw DESKitError(.invalidData, "source \(name): row \(id) is pending but has no DES name")
        }
        guard let shard = next().int else {
            throw DESKitError(.invalidData, "source \(name): row \(id) is pending but has no shard")
        }
        var meta = DESMetadata()
        for column in shape.metadata {
            let v = next()
            switch v {
            case .null: meta[column.name] = .null
            case .int(let x): meta[column.name] = .int(x)
            case .double(let x): meta[column.name] = .double(x)
            case .text(let s): meta[column.name] = .string(s)
            case .blob(let b): meta[column.name] = .string(b.map { String(format: "%02x", $0) }.joined())
            }
        }
        return PendingFile(
            source: name, rowID: id, desName: desName, shard: Int(shard), size: size,
            body: BodyLocation(bucket: bucket, key: key), metadata: meta)
    }

    /// Runs an `UPDATE … WHERE id IN (…)` (``SQLDialect/idMatches(in:table:count:firstBind:)``) over `ids` in chunks that fit the bind limit.
    private func updateInChunks(
        ids: [String], prefix: @escaping @Sendable (inout [SQLValue]) -> String, holder: String?
    ) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let (dialect, shape) = (self.dialect, self.shape)
        let chunk = max(1, min(1000, dialect.maxBindParameters - 8))
        var total = 0
        for start in stride(from: 0, to: ids.count, by: chunk) {
            let slice = Array(ids[start..<min(ids.count, start + chunk)])
            total += try await transaction { session in
                var binds: [SQLValue] = []
                var sql = prefix(&binds)
                if let holder {
                    binds.append(.text(holder))
                    sql += " AND \(shape.claimedBy) = \(dialect.placeholder(binds.count))"
                }
                sql += " AND " + (try dialect.idMatches(in: session, table: shape, count: slice.count, firstBind: binds.count + 1))
                binds += slice.map { SQLValue.rowID($0) }
                return try session.execute(sql, binds)
            }
        }
        return total
    }

    public func markPacked(rowIDs: [String], container: String, holder: String?) async throws -> Int {
        let (d, s) = (dialect, shape)
        return try await updateInChunks(
            ids: rowIDs,
            prefix: { binds in
                binds = [.text(s.statusPacked), .text(container), .text(s.statusClaimed)]
                return "UPDATE \(s.table) SET \(s.status) = \(d.placeholder(1)), \(s.container) = \(d.placeholder(2)), "
                    + "\(s.error) = NULL WHERE \(s.status) = \(d.placeholder(3))"
            }, holder: holder)
    }

    public func releaseClaims(rowIDs: [String], holder: String?) async throws -> Int {
        let (d, s) = (dialect, shape)
        return try await updateInChunks(
            ids: rowIDs,
            prefix: { binds in
                binds = [.text(s.statusPending), .text(s.statusClaimed)]
                return "UPDATE \(s.table) SET \(s.status) = \(d.placeholder(1)), \(s.claimedBy) = NULL, "
                    + "\(s.claimedAt) = NULL WHERE \(s.status) = \(d.placeholder(2))"
            }, holder: holder)
    }

    public func markFailed(_ rows: [FailedRow], holder: String?) async throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let (d, s) = (dialect, shape)
        return try await transaction { session in
            var changed = 0
            for row in rows {
                var binds: [SQLValue] = [.text(s.statusFailed), .text(String(row.reason.prefix(2000))), .rowID(row.rowID)]
                var sql = "UPDATE \(s.table) SET \(s.status) = \(d.placeholder(1)), \(s.error) = \(d.placeholder(2)) "
                    + "WHERE \(s.id) = \(d.placeholder(3))"
                if let holder {
                    // The packer fails only rows it still has claimed.
                    binds += [.text(s.statusClaimed), .text(holder)]
                    sql += " AND \(s.status) = \(d.placeholder(4)) AND \(s.claimedBy) = \(d.placeholder(5))"
                }
                changed += try session.execute(sql, binds)
            }
            return changed
        }
    }

    public func staleClaims(shards: [Int]?, excludingHolder: String?, olderThanSeconds: Double?) async throws
        -> [PendingFile]
    {
        let (d, s) = (dialect, shape)
        var binds: [SQLValue] = [.text(s.statusClaimed)]
        var sql = "SELECT \(s.claimSelectList), \(s.claimedBy) FROM \(s.table) WHERE \(s.status) = \(d.placeholder(1))"
        if let shards {
            if shards.isEmpty { return [] }
            sql += " AND \(s.shard) IN (\(d.shardList(shards)))"
        }
        var conditions: [String] = []
        if let excludingHolder {
            binds.append(.text(excludingHolder))
            conditions.append("(\(s.claimedBy) IS NULL OR \(s.claimedBy) <> \(d.placeholder(binds.count)))")
        }
        if let olderThanSeconds {
            conditions.append("(\(s.claimedAt) IS NULL OR \(d.olderThan(s.claimedAt, seconds: olderThanSeconds)))")
        }
        if !conditions.isEmpty { sql += " AND (" + conditions.joined(separator: " OR ") + ")" }
        let query = sql, values = binds
        let rows = try await pool.withConnection { conn in
            try await conn.withSession { session in try session.query(query, values) }
        }
        return try rows.map { row in
            var file = try pendingFile(row)
            file.claimedBy = row.values.last?.text
            return file
        }
    }

    public func nameRows(limit: Int, assign: @escaping @Sendable ([UnnamedRow]) throws -> [NameAssignment]) async throws
        -> Int
    {
        let (d, s) = (dialect, shape)
        return try await transaction { session in
            let rows = try d.selectUnnamed(in: session, table: s, limit: limit)
            if rows.isEmpty { return 0 }
            let unnamed = rows.compactMap { row -> UnnamedRow? in
                guard let id = row[0].text else { return nil }
                return UnnamedRow(rowID: id, key: row[1].text ?? "", presetName: row[2].text)
            }
            let assignments = try assign(unnamed)
            return try d.assignNames(in: session, table: s, assignments)
        }
    }

    public func packedRows(afterRowID: String?, limit: Int) async throws -> [PackedRow] {
        let (d, s) = (dialect, shape)
        var binds: [SQLValue] = [.text(s.statusPacked)]
        var cols = "\(s.id), \(s.desName), \(s.container), \(s.key)"
        if let bucket = s.bucket { cols += ", \(bucket)" }
        var rest = "\(s.table) WHERE \(s.status) = \(d.placeholder(1))\(s.andWhere)"
        if let afterRowID {
            binds.append(.rowID(afterRowID))
            rest += " AND \(s.id) > \(d.placeholder(2))"
        }
        let limited = d.limitedSelect(cols, from: rest + " ORDER BY \(s.id)", limit: limit, bind: binds.count + 1)
        if let bind = limited.bind { binds.append(bind) }
        let (query, values, maxRows, hasBucket) = (limited.sql, binds, limited.maxRows, s.bucket != nil)
        let rows = try await pool.withConnection { conn in
            try await conn.withSession { try $0.query(query, values, maxRows: maxRows) }
        }
        return rows.compactMap { r in
            guard let id = r[0].text, let name = r[1].text, let container = r[2].text else { return nil }
            return PackedRow(
                rowID: id, desName: name, container: container,
                body: BodyLocation(bucket: hasBucket ? r[4].text : nil, key: r[3].text ?? ""))
        }
    }

    public func stats() async throws -> SourceStats {
        let (s, d) = (shape, dialect)
        // Named rows by status, plus rows whose naming failed (counted as failed, not as unnamed).
        let grouped = "SELECT \(s.status), COUNT(*) FROM \(s.table) WHERE (\(s.desName) IS NOT NULL OR \(s.status) = \(d.placeholder(1)))"
            + "\(s.andWhere) GROUP BY \(s.status)"
        let predicate = s.unnamedPredicate(d)
        let unnamed = "SELECT COUNT(*) FROM \(s.table) WHERE \(predicate.sql)"
        let failedValue: [SQLValue] = [.text(s.statusFailed)]
        let (rows, unnamedRows) = try await pool.withConnection { conn in
            try await conn.withSession { session in
                (try session.query(grouped, failedValue), try session.query(unnamed, predicate.binds))
            }
        }
        var stats = SourceStats()
        stats.unnamed = Int(unnamedRows.first?[0].int ?? 0)
        for row in rows {
            let n = Int(row[1].int ?? 0)
            switch row[0].text {
            case s.statusPending: stats.pending += n
            case s.statusClaimed: stats.claimed += n
            case s.statusPacked: stats.packed += n
            case s.statusFailed: stats.failed += n
            default: stats.other += n
            }
        }
        return stats
    }

    public func shardsWithWork() async throws -> Set<Int>? {
        let (s, d) = (shape, dialect)
        let sql = "SELECT DISTINCT \(s.shard) FROM \(s.table) WHERE \(s.status) IN (\(d.placeholder(1)), \(d.placeholder(2))) "
            + "AND \(s.shard) IS NOT NULL AND \(s.desName) IS NOT NULL\(s.andWhere)"
        let binds: [SQLValue] = [.text(s.statusPending), .text(s.statusClaimed)]
        let rows = try await pool.withConnection { conn in
            try await conn.withSession { try $0.query(sql, binds) }
        }
        return Set(rows.compactMap { $0[0].int.map(Int.init) })
    }

    public func healthCheck() async throws {
        let sql = dialect.healthQuery
        _ = try await pool.withConnection { conn in try await conn.withSession { try $0.query(sql) } }
    }

    public func close() async { await pool.close() }
}

#if canImport(Foundation)
import Foundation
#endif
