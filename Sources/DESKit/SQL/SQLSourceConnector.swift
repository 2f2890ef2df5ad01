import DESFormat
import Logging
import Synchronization

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
    let pool: SQLConnectionPool
    /// The table's shape once reflected (once per connector, before its first statement).
    private let reflected = Mutex<SQLTableShape?>(nil)

    /// Creates the connector; fails when an identifier in the config is invalid. The table is
    /// reflected on first use (see ``tableShape()``).
    public init(config: SourceConfig, dialect: any SQLDialect, pool: SQLConnectionPool) throws {
        self.name = config.name
        self.config = config
        self.dialect = dialect
        self.pool = pool
        _ = try SQLTableShape(config: config.table, dialect: dialect)
    }

    /// Marks in batches of up to 50,000 rows on SQLite (each transaction writes every page it
    /// touched again: 100,000 scattered rows marked in batches of 10,000 took 1.24 s, of 50,000
    /// 0.83 s); each container at once on a server database, where marks then overlap the packing
    /// instead of following it (a 100,000-row PostgreSQL run spent its last half second marking).
    public var markBatchRows: Int { dialect.writesTouchedPagesAgain ? 50_000 : 1 }

    /// The table as the database's catalog describes it, reflected once and kept: every mapped
    /// column checked (a missing one is a ``DESKitError/Code/catalog`` error naming the source,
    /// table and column), its types known for binding and decoding.
    public func tableShape() async throws -> SQLTableShape {
        if let known = reflected.withLock({ $0 }) { return known }
        let catalog = try await reflectCatalog()
        let shape = try SQLTableShape(config: config.table, dialect: dialect, catalog: catalog, source: name)
        reflected.withLock { $0 = shape }
        return shape
    }

    /// The reflected table itself (for `des catalog check`), read anew.
    public func reflectCatalog() async throws -> SQLTableCatalog {
        let (dialect, table) = (self.dialect, config.table.name)
        let schema = config.table.schema ?? config.connection.schema
        return try await pool.withConnection { conn in
            try await conn.withSession { try dialect.reflectTable(in: $0, schema: schema, table: table) }
        }
    }

    /// The mapping held against the real table (`des catalog check`).
    public func catalogPlan() async throws -> SQLCatalogPlan {
        try SQLCatalogPlan(source: name, config: config.table, dialect: dialect, catalog: try await reflectCatalog())
    }

    /// Runs DDL (`des catalog prepare --apply`): in one transaction where the database rolls DDL
    /// back (PostgreSQL, SQLite, SQL Server), else statement by statement. The table is reflected
    /// anew on next use.
    public func apply(ddl: [String]) async throws {
        guard !ddl.isEmpty else { return }
        if dialect.transactionalDDL {
            try await transaction { session in for statement in ddl { try session.execute(statement) } }
        } else {
            try await pool.withConnection { conn in
                try await conn.withSession { session in for statement in ddl { try session.execute(statement) } }
            }
        }
        reflected.withLock { $0 = nil }
    }

    /// Runs `body` in a transaction on one of the source's connections: for a plugin that writes
    /// the catalog itself (the filesystem scanner), through the same pool and dialect.
    public func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await pool.withConnection { try await $0.withTransaction(body) }
    }

    /// Runs `body` on one of the source's connections outside an explicit transaction (each
    /// statement reads its own snapshot): for a long read of the catalog by a plugin (the
    /// filesystem scanner's), which in a transaction would hold SQLite's write lock throughout.
    public func session<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await pool.withConnection { try await $0.withSession(body) }
    }

    public func claim(shards: [Int], limit: Int, holder: String) async throws -> [PendingFile] {
        guard !shards.isEmpty, limit > 0 else { return [] }
        let (dialect, shape) = (self.dialect, try await tableShape())
        let rows = try await transaction { session in
            try dialect.claim(in: session, table: shape, shards: shards, limit: limit, holder: holder)
        }
        return try rows.map { try pendingFile($0, shape) }
    }

    /// Turns a row with the claim columns into a pending file, decoding each metadata column by
    /// its reflected type (``SQLMetadataDecoding``).
    func pendingFile(_ row: SQLRow, _ shape: SQLTableShape) throws -> PendingFile {
        var i = 0
        func next() -> SQLValue {
            defer { i += 1 }
            return row[i]
        }
        guard let id = next().text else { throw DESKitError(.invalidData, "source \(name): a claimed row has a NULL id") }
        let key = next().text ?? ""
        let bucket = shape.bucket != nil ? next().text : nil
        let stamp = shape.bodyStamp != nil ? next().text : nil
        let size = shape.size != nil ? next().int.map { UInt64(max(0, $0)) } : nil
        guard let desName = next().text else {
            throw DESKitError(.invalidData, "source \(name): row \(id) is pending but has no DES name")
        }
        guard let shard = next().int else {
            throw DESKitError(.invalidData, "source \(name): row \(id) is pending but has no shard")
        }
        var meta = DESMetadata()
        for column in shape.metadata {
            meta[SQLMetadataDecoding.key(column.name, kind: column.kind)] = SQLMetadataDecoding.value(next(), kind: column.kind)
        }
        return PendingFile(
            source: name, rowID: id, desName: desName, shard: Int(shard), size: size,
            body: BodyLocation(bucket: bucket, key: key, stamp: stamp), metadata: meta)
    }

    public func staleClaims(shards: [Int]?, excludingHolder: String?, olderThanSeconds: Double?) async throws
        -> [PendingFile]
    {
        let (d, s) = (dialect, try await tableShape())
        var binds: [SQLValue] = [s.statusValue(s.statusClaimed)]
        var sql = "SELECT \(s.claimSelectList), \(s.claimedBy) FROM \(s.table) WHERE \(s.status) = \(s.statusParam(d, 1))"
        if let shards {
            if shards.isEmpty { return [] }
            sql += " AND \(s.shard) IN (\(d.shardList(shards)))"
        }
        // This source's rows only: two sources over one table each recover their own claims,
        // with their own claim timeout.
        sql += s.andWhere
        var conditions: [String] = []
        if let excludingHolder {
            binds.append(.text(excludingHolder))
            conditions.append("(\(s.claimedBy) IS NULL OR \(s.claimedBy) <> \(d.placeholder(binds.count)))")
        }
        // Without a claim-time column a claim's age is unknown: every claim counts as old enough.
        if let olderThanSeconds, let claimedAt = s.claimedAt {
            let kind = s.claimedAtKind ?? .float
            conditions.append("(\(claimedAt) IS NULL OR \(d.olderThan(claimedAt, kind: kind, seconds: olderThanSeconds)))")
        }
        if !conditions.isEmpty { sql += " AND (" + conditions.joined(separator: " OR ") + ")" }
        let query = sql, values = binds
        let rows = try await pool.withConnection { conn in
            try await conn.withSession { session in try session.query(query, values) }
        }
        return try rows.map { row in
            var file = try pendingFile(row, s)
            file.claimedBy = row.values.last?.text
            return file
        }
    }

    public func nameRows(limit: Int, assign: @escaping @Sendable ([UnnamedRow]) throws -> [NameAssignment]) async throws
        -> Int
    {
        let (d, s) = (dialect, try await tableShape())
        // Four values a row: the generic layer splits the names into statements the dialect's bind limit allows.
        let chunk = d.chunkSize(valuesPerRow: 4, fixed: 16)
        return try await transaction { session in
            let rows = try d.selectUnnamed(in: session, table: s, limit: limit)
            if rows.isEmpty { return 0 }
            let unnamed = rows.compactMap { row -> UnnamedRow? in
                guard let id = row[0].text else { return nil }
                return UnnamedRow(rowID: id, key: row[1].text ?? "", presetName: row[2].text)
            }
            let assignments = try assign(unnamed)
            var changed = 0
            for start in stride(from: 0, to: assignments.count, by: chunk) {
                changed += try d.assignNames(in: session, table: s, Array(assignments[start..<min(assignments.count, start + chunk)]))
            }
            return changed
        }
    }

    public func packedRows(afterRowID: String?, limit: Int) async throws -> [PackedRow] {
        let (d, s) = (dialect, try await tableShape())
        var binds: [SQLValue] = [s.statusValue(s.statusPacked)]
        // Without a container column the container is not known here: the audit then finds the name by its (day, shard).
        var cols = "\(s.id), \(s.desName), \(s.container ?? "NULL"), \(s.key), \(s.status)"
        // The bucket and the stamp, where mapped, follow at 5 and after.
        if let bucket = s.bucket { cols += ", \(bucket)" }
        if let stamp = s.bodyStamp { cols += ", \(stamp)" }
        let (bucketAt, stampAt) = (s.bucket != nil ? 5 : nil, s.bodyStamp != nil ? (s.bucket != nil ? 6 : 5) : nil)
        var statuses = s.statusParam(d, 1)
        // Rows whose bodies retire deleted are packed too (a status the column cannot hold is never asked for).
        if s.statusSourceDeletedProblem == nil {
            binds.append(s.statusValue(s.statusSourceDeleted))
            statuses += ", " + s.statusParam(d, binds.count)
        }
        var rest = "\(s.table) WHERE \(s.status) IN (\(statuses))\(s.andWhere)"
        if let afterRowID {
            binds.append(s.idValue(afterRowID))
            rest += " AND \(s.id) > \(s.idParam(d, binds.count))"
        }
        let limited = d.limitedSelect(cols, from: rest + " ORDER BY \(s.id)", limit: limit, bind: binds.count + 1)
        if let bind = limited.bind { binds.append(bind) }
        let (query, values, maxRows, deleted) = (limited.sql, binds, limited.maxRows, s.statusSourceDeleted)
        let rows = try await pool.withConnection { conn in
            try await conn.withSession { try $0.query(query, values, maxRows: maxRows) }
        }
        return rows.compactMap { r in
            guard let id = r[0].text, let name = r[1].text else { return nil }
            return PackedRow(
                rowID: id, desName: name, container: r[2].text ?? "",
                body: BodyLocation(bucket: bucketAt.flatMap { r[$0].text }, key: r[3].text ?? "", stamp: stampAt.flatMap { r[$0].text }),
                bodyDeleted: r[4].text == deleted)
        }
    }

    public func stats() async throws -> SourceStats {
        let (s, d) = (try await tableShape(), dialect)
        // Named rows by status, plus rows whose naming failed (counted as failed, not as unnamed).
        let grouped = "SELECT \(s.status), COUNT(*) FROM \(s.table) WHERE (\(s.desName) IS NOT NULL OR \(s.status) = \(s.statusParam(d, 1)))"
            + "\(s.andWhere) GROUP BY \(s.status)"
        let predicate = s.unnamedPredicate(d)
        let unnamed = "SELECT COUNT(*) FROM \(s.table) WHERE \(predicate.sql)"
        let failedValue: [SQLValue] = [s.statusValue(s.statusFailed)]
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
            case s.statusSourceDeleted: stats.retired += n
            case s.statusDeleted: stats.deleted += n
            default: stats.other += n
            }
        }
        return stats
    }

    public func shardsWithWork() async throws -> Set<Int>? {
        let (s, d) = (try await tableShape(), dialect)
        // One query per status, not `status IN (pending, claimed)`: each can then use its own
        // partial index (docs/operations.md, "Catalog indexes") instead of reading the table.
        let sql = "SELECT DISTINCT \(s.shard) FROM \(s.table) WHERE \(s.status) = \(s.statusParam(d, 1)) "
            + "AND \(s.shard) IS NOT NULL AND \(s.desName) IS NOT NULL\(s.andWhere)"
        let statuses: [SQLValue] = [s.statusValue(s.statusPending), s.statusValue(s.statusClaimed)]
        let rows = try await pool.withConnection { conn in
            try await conn.withSession { session in try statuses.flatMap { try session.query(sql, [$0]) } }
        }
        return Set(rows.compactMap { $0[0].int.map(Int.init) })
    }

    public func healthCheck() async throws {
        let sql = dialect.healthQuery
        _ = try await pool.withConnection { conn in try await conn.withSession { try $0.query(sql) } }
        // A table that does not fit its mapping fails the check too (reflected on first use).
        _ = try await tableShape()
    }

    public func close() async { await pool.close() }
}

#if canImport(Foundation)
import Foundation
#endif
