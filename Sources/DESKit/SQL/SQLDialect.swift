/// A catalog table's identifiers, validated and quoted for one dialect, plus its status values.
public struct SQLTableShape: Sendable {
    /// `schema.table`, quoted.
    public let table: String
    public let id: String, key: String, bucket: String?, size: String?
    public let status: String, desName: String, desHash: String?, shard: String
    public let container: String, claimedBy: String, claimedAt: String, error: String
    /// Metadata columns, quoted, and the META keys their values are stored under.
    public let metadata: [(quoted: String, name: String)]
    /// The extra condition from the config, parenthesised, or nil.
    public let whereClause: String?
    public let statusNew: String?, statusPending: String, statusClaimed: String, statusPacked: String, statusFailed: String

    /// The columns a claim returns, in order: id, key, bucket?, size?, name, shard, metadata….
    public var claimColumns: [String] {
        var cols = [id, key]
        if let bucket { cols.append(bucket) }
        if let size { cols.append(size) }
        cols += [desName, shard]
        cols += metadata.map(\.quoted)
        return cols
    }

    /// ``claimColumns``, comma-separated.
    public var claimSelectList: String { claimColumns.joined(separator: ", ") }

    /// ` AND (where_clause)` or an empty string.
    public var andWhere: String { whereClause.map { " AND (\($0))" } ?? "" }

    /// The rows that need a name — no DES name yet, not failed (a row whose naming failed went to
    /// the dead-letter table once and is not tried again), in `status_new` when one is configured —
    /// with its bound values, whose placeholders start at `firstBind`. Written once for every dialect.
    public func unnamedPredicate(_ dialect: any SQLDialect, firstBind: Int = 1) -> (sql: String, binds: [SQLValue]) {
        var sql = "\(desName) IS NULL AND (\(status) IS NULL OR \(status) <> \(dialect.placeholder(firstBind)))"
        var binds: [SQLValue] = [.text(statusFailed)]
        if let statusNew {
            sql += " AND \(status) = \(dialect.placeholder(firstBind + 1))"
            binds.append(.text(statusNew))
        }
        return (sql + andWhere, binds)
    }

    /// The rows ready to be claimed — pending, named — of `shards` (inlined integers: they are ours).
    /// The shard filter is part of the predicate, so it applies before any row limit.
    public func pendingPredicate(_ dialect: any SQLDialect, shards: [Int], firstBind: Int = 1) -> (sql: String, binds: [SQLValue]) {
        ("\(status) = \(dialect.placeholder(firstBind)) AND \(shard) IN (\(dialect.shardList(shards))) AND \(desName) IS NOT NULL\(andWhere)",
         [.text(statusPending)])
    }

    /// Builds the shape, validating every identifier.
    public init(config: TableConfig, dialect: any SQLDialect) throws {
        func q(_ name: String, _ what: String) throws -> String {
            try SQLIdentifier.validate(name, what: what)
            return dialect.quoteIdentifier(name)
        }
        let c = config.columns
        if let schema = config.schema {
            table = try q(schema, "table.schema") + "." + q(config.name, "table.name")
        } else {
            table = try q(config.name, "table.name")
        }
        id = try q(c.id, "columns.id")
        key = try q(c.s3Key, "columns.s3_key")
        bucket = try c.s3Bucket.map { try q($0, "columns.s3_bucket") }
        size = try c.sizeBytes.map { try q($0, "columns.size_bytes") }
        status = try q(c.status, "columns.status")
        desName = try q(c.desName, "columns.des_name")
        desHash = try c.desHash.map { try q($0, "columns.des_hash") }
        shard = try q(config.shardKeyColumn, "shard_key_column")
        container = try q(c.desContainer, "columns.des_container")
        claimedBy = try q(c.claimedBy, "columns.claimed_by")
        claimedAt = try q(c.claimedAt, "columns.claimed_at")
        error = try q(c.error, "columns.error")
        // The column is read; the value is stored in META under the configured key (the original's mapping).
        metadata = try c.metadata.map { (try q($0.column, "columns.metadata_columns"), $0.key) }
        whereClause = config.whereClause.flatMap { $0.isEmpty ? nil : "(\($0))" }
        statusNew = config.statusNewValue
        statusPending = config.statusPendingValue
        statusClaimed = config.statusClaimedValue
        statusPacked = config.statusPackedValue
        statusFailed = config.statusFailedValue
    }
}

/// Identifier rules for names that come from the config.
public enum SQLIdentifier {
    /// Checks an identifier: a letter or `_`, then letters, digits, `_` or `$`, at most 128 characters.
    public static func validate(_ name: String, what: String) throws {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first, scalars.count <= 128 else {
            throw DESKitError(.configuration, "\(what): identifier '\(name)' must be 1–128 characters")
        }
        func isLetter(_ s: Unicode.Scalar) -> Bool { (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || s == "_" }
        guard isLetter(first), scalars.allSatisfy({ isLetter($0) || ($0 >= "0" && $0 <= "9") || $0 == "$" }) else {
            throw DESKitError(
                .configuration,
                "\(what): identifier '\(name)' may hold only letters, digits, '_' and '$' and must not start with a digit")
        }
    }
}

/// How one database claims, names, quotes and limits: the dialect half of a SQL plugin.
///
/// The generic ``SQLSourceConnector`` builds ordinary statements from the
/// dialect's quoting, placeholders and time expressions, and asks the dialect
/// for the two statements that differ most between databases: the claim and
/// the bulk name assignment.
public protocol SQLDialect: Sendable {
    /// The dialect's name, e.g. `sqlite`.
    var name: String { get }
    /// Quotes an already validated identifier.
    func quoteIdentifier(_ identifier: String) -> String
    /// The placeholder for the `position`-th (1-based) bound value.
    func placeholder(_ position: Int) -> String
    /// SQL for the current database time, as stored in `claimed_at`.
    var currentTimestamp: String { get }
    /// A condition that is true when `column` is more than `seconds` in the past.
    func olderThan(_ column: String, seconds: Double) -> String
    /// Most bound values in one statement.
    var maxBindParameters: Int { get }
    /// How a select is limited to n rows (default `LIMIT`).
    var rowLimit: SQLRowLimit { get }
    /// A statement that proves the connection works (default `SELECT 1`; Oracle: `SELECT 1 FROM DUAL`).
    var healthQuery: String { get }

    /// Claims up to `limit` pending rows of `shards` for `holder` inside the
    /// current transaction, skipping rows locked by others, and returns them
    /// with the columns of ``SQLTableShape/claimSelectList``.
    func claim(in session: any SQLSession, table: SQLTableShape, shards: [Int], limit: Int, holder: String) throws -> [SQLRow]

    /// Selects up to `limit` rows needing a name (id, key, name columns),
    /// locking them where the database can (`FOR UPDATE SKIP LOCKED`).
    func selectUnnamed(in session: any SQLSession, table: SQLTableShape, limit: Int) throws -> [SQLRow]

    /// Writes names, hashes, shards and the pending status for many rows in one statement.
    func assignNames(in session: any SQLSession, table: SQLTableShape, _ assignments: [NameAssignment]) throws -> Int

    /// The condition "the row's id is one of `count` bound ids" (placeholders from `firstBind`),
    /// used by the packer's batch updates (mark packed, give back). Default `id IN (…)`; a dialect
    /// whose planner would scan the table for a long list writes it so that the key's index is used.
    func idMatches(in session: any SQLSession, table: SQLTableShape, count: Int, firstBind: Int) throws -> String
}

/// The ways databases limit a select to n rows.
public enum SQLRowLimit: Sendable, Equatable {
    /// `SELECT … LIMIT n` (PostgreSQL, MySQL/MariaDB, SQLite).
    case limit
    /// `SELECT TOP (n) …` (SQL Server).
    case top
    /// `SELECT … FETCH FIRST n ROWS ONLY` (Oracle 12c and later, DB2, standard SQL).
    case fetchFirst
    /// No limit in the SQL: the cursor is fetched n rows (``SQLSession/query(_:_:maxRows:)``).
    case cursor
}

extension SQLDialect {
    public var rowLimit: SQLRowLimit { .limit }
    public var healthQuery: String { "SELECT 1" }

    public func idMatches(in session: any SQLSession, table: SQLTableShape, count: Int, firstBind: Int) throws -> String {
        "\(table.id) IN (\(placeholders(count, from: firstBind)))"
    }

    /// `SELECT columns FROM rest` limited to `limit` rows in this dialect's form; `limit` is bound at
    /// placeholder `bind`. Returns the SQL, the bind value (nil when the limit is not in the SQL) and
    /// the number of rows to fetch.
    public func limitedSelect(_ columns: String, from rest: String, limit: Int, bind: Int) -> (sql: String, bind: SQLValue?, maxRows: Int) {
        let n = SQLValue.int(Int64(limit))
        switch rowLimit {
        case .limit: return ("SELECT \(columns) FROM \(rest) LIMIT \(placeholder(bind))", n, limit)
        case .top: return ("SELECT TOP (\(placeholder(bind))) \(columns) FROM \(rest)", n, limit)
        case .fetchFirst: return ("SELECT \(columns) FROM \(rest) FETCH FIRST \(placeholder(bind)) ROWS ONLY", n, limit)
        case .cursor: return ("SELECT \(columns) FROM \(rest)", nil, limit)
        }
    }

    /// `?, ?, ?` starting at `start` (1-based) for `count` values.
    public func placeholders(_ count: Int, from start: Int = 1) -> String {
        (0..<count).map { placeholder(start + $0) }.joined(separator: ", ")
    }

    /// `id IN (…)` over shard numbers, inlined as integers (they are ours, not input).
    public func shardList(_ shards: [Int]) -> String {
        shards.map(String.init).joined(separator: ", ")
    }
}
