/// A catalog table's identifiers, validated and quoted for one dialect, its status values, and —
/// once reflected — the type of every mapped column, by which values are bound and decoded.
///
/// Required columns (a table without one is refused at connect, naming it):
/// - `id`, `s3_key`: which row, and where its body is;
/// - `status`: the row's place in the protocol (pending, claimed, packed, failed);
/// - `des_name`, the shard column: the marker writes them, the packer claims by shard;
/// - `claimed_by`: the compare-and-set that keeps a paused or fenced recovery from touching a
///   claim made since it read (every write of a claimed row names the claimer it read).
///
/// Optional columns, written only where the table has them (as the original did):
/// `claimed_at` (without it a claim's age is unknown, so only its holder's lease decides when
/// it is stale), `error`, `des_container`, `packed_at`, and the name's hash.
public struct SQLTableShape: Sendable {
    /// `schema.table`, quoted.
    public let table: String
    public let id: String, key: String, bucket: String?, size: String?
    public let status: String, desName: String, desHash: String?, shard: String
    /// The claimer's column (required).
    public let claimedBy: String
    /// Optional columns: nil when the reflected table lacks them.
    public let container: String?, claimedAt: String?, error: String?, packedAt: String?
    /// Metadata columns, quoted, the META keys their values are stored under, and their kinds
    /// (`columns.created_at` is the last, under `created_at`, when configured).
    public let metadata: [(quoted: String, name: String, kind: SQLColumnKind?)]
    /// The extra condition from the config, parenthesised, or nil.
    public let whereClause: String?
    public let statusNew: String?, statusPending: String, statusClaimed: String, statusPacked: String, statusFailed: String
    /// The reflected table, or nil for a shape built from the config alone (SQL text, DDL).
    public let catalog: SQLTableCatalog?
    /// The reflected kinds of the key, status and claim-time columns (nil when not reflected).
    public let idKind: SQLColumnKind?, statusKind: SQLColumnKind?, claimedAtKind: SQLColumnKind?
    /// The casts bound key and status values need (a PostgreSQL `uuid` or enum), or nil.
    public let idCast: String?, statusCast: String?
    /// The key column's type in the database's words (PostgreSQL casts id lists to it).
    public let idType: String?

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

    // MARK: Binding by the reflected type

    /// A row id bound in its column's type: an integer key as an integer, every other key
    /// (text, `varchar`, zero-padded strings, uuid) as text, so `'7'` and `'07'` stay two rows.
    /// An unreflected shape (tests of SQL text) guesses from the value.
    public func idValue(_ id: String) -> SQLValue {
        switch idKind {
        case .integer?: return Int64(id).map(SQLValue.int) ?? .text(id)
        case nil: return .rowID(id)
        default: return .text(id)
        }
    }

    /// The placeholder for a bound id at `position`, cast where the column needs it.
    public func idParam(_ dialect: any SQLDialect, _ position: Int) -> String {
        Self.cast(dialect.placeholder(position), idCast)
    }

    /// A status value bound in its column's type: an integer code for an integer column, the
    /// label otherwise.
    public func statusValue(_ label: String) -> SQLValue {
        if statusKind == .integer || statusKind == .decimal, let code = Int64(label) { return .int(code) }
        return .text(label)
    }

    /// The placeholder for a bound status at `position`, cast to the enum type where there is one.
    public func statusParam(_ dialect: any SQLDialect, _ position: Int) -> String {
        Self.cast(dialect.placeholder(position), statusCast)
    }

    /// Database time as the claim-time column stores it (a timestamp, or epoch seconds).
    public func claimTime(_ dialect: any SQLDialect) -> String { dialect.now(for: claimedAtKind ?? .float) }

    /// `, claimed_at = now` for a claim, or nothing when the table has no claim-time column.
    public func setClaimedAt(_ dialect: any SQLDialect) -> String {
        claimedAt.map { ", \($0) = \(claimTime(dialect))" } ?? ""
    }

    /// `, claimed_at = NULL` when the column exists.
    public var clearClaimedAt: String { claimedAt.map { ", \($0) = NULL" } ?? "" }

    /// `, packed_at = now` when the table has the column.
    public func setPackedAt(_ dialect: any SQLDialect) -> String {
        guard let packedAt else { return "" }
        let kind = catalog?.column(Self.unquoted(packedAt), caseSensitive: dialect.identifiersCaseSensitive)?.kind ?? .float
        return ", \(packedAt) = \(dialect.now(for: kind))"
    }

    static func cast(_ placeholder: String, _ type: String?) -> String {
        type.map { "CAST(\(placeholder) AS \($0))" } ?? placeholder
    }

    /// The name inside a dialect's quotes.
    static func unquoted(_ quoted: String) -> String {
        guard quoted.count >= 2, let first = quoted.first else { return quoted }
        let close: Character = first == "[" ? "]" : first
        return String(quoted.dropFirst().dropLast()).replacingOccurrences(of: String([close, close]), with: String(close))
    }

    // MARK: Predicates written once for every dialect

    /// The rows that need a name — no DES name yet, not failed (a row whose naming failed went to
    /// the dead-letter table once and is not tried again), in `status_new` when one is configured —
    /// with its bound values, whose placeholders start at `firstBind`. Written once for every dialect.
    public func unnamedPredicate(_ dialect: any SQLDialect, firstBind: Int = 1) -> (sql: String, binds: [SQLValue]) {
        var sql = "\(desName) IS NULL AND (\(status) IS NULL OR \(status) <> \(statusParam(dialect, firstBind)))"
        var binds: [SQLValue] = [statusValue(statusFailed)]
        if let statusNew {
            sql += " AND \(status) = \(statusParam(dialect, firstBind + 1))"
            binds.append(statusValue(statusNew))
        }
        return (sql + andWhere, binds)
    }

    /// The rows ready to be claimed — pending, named — of `shards` (inlined integers: they are ours).
    /// The shard filter is part of the predicate, so it applies before any row limit.
    public func pendingPredicate(_ dialect: any SQLDialect, shards: [Int], firstBind: Int = 1) -> (sql: String, binds: [SQLValue]) {
        ("\(status) = \(statusParam(dialect, firstBind)) AND \(shard) IN (\(dialect.shardList(shards))) AND \(desName) IS NOT NULL\(andWhere)",
         [statusValue(statusPending)])
    }

    // MARK: Building

    /// Builds the shape from the config alone, validating every identifier: every DES column is
    /// taken to exist and no type is known (for SQL text and DDL, not for running).
    public init(config: TableConfig, dialect: any SQLDialect) throws {
        try self.init(config: config, dialect: dialect, catalog: nil, source: nil)
    }

    /// Builds the shape against the reflected table: a missing required or mapped column, or one
    /// of a type DES cannot use, is a ``DESKitError/Code/catalog`` error naming the source, table
    /// and column (with "did you mean" from the real columns); optional DES columns the table
    /// lacks are left out of every statement.
    public init(config: TableConfig, dialect: any SQLDialect, catalog: SQLTableCatalog?, source: String?) throws {
        func q(_ name: String, _ what: String) throws -> String {
            try SQLIdentifier.validate(name, what: what)
            return dialect.quoteIdentifier(name)
        }
        let tableName = (config.schema.map { "\($0)." } ?? "") + config.name
        let who = source.map { "source '\($0)': " } ?? ""
        if let catalog, !catalog.exists {
            throw DESKitError(.catalog, "\(who)table \(tableName) does not exist (or has no columns this user can see)")
        }
        /// The reflected column for a configured name, or nil when the shape is not reflected.
        func find(_ name: String, _ key: String, required: Bool) throws -> SQLCatalogColumn?? {
            guard let catalog else { return .some(nil) }
            if let found = catalog.column(dialect.storedName(name), caseSensitive: dialect.identifiersCaseSensitive) {
                return .some(found)
            }
            guard required else { return .none }
            var message = "\(who)table \(tableName) has no column '\(name)' (\(key))"
            if let guess = catalog.suggestion(for: name) { message += "; did you mean '\(guess)'?" }
            message += "; its columns: " + catalog.columns.map(\.name).joined(separator: ", ")
            throw DESKitError(.catalog, message)
        }
        /// A required column: quoted, with its reflected description when there is one.
        func required(_ name: String, _ key: String, kinds allowed: Set<SQLColumnKind>? = nil) throws -> (String, SQLCatalogColumn?) {
            let quoted = try q(name, key)
            let column = try find(name, key, required: true) ?? nil
            if let column, let allowed, !allowed.contains(column.kind) {
                throw DESKitError(
                    .catalog,
                    "\(who)column '\(column.name)' of \(tableName) (\(key)) is \(column.type): DES needs "
                        + allowed.map(\.rawValue).sorted().joined(separator: ", "))
            }
            return (quoted, column)
        }
        /// An optional DES column: quoted when it exists (or when the shape is not reflected).
        func optional(_ name: String, _ key: String) throws -> String? {
            let quoted = try q(name, key)
            guard case .some = try find(name, key, required: false) else { return nil }
            return quoted
        }
        let c = config.columns
        if let schema = config.schema {
            table = try q(schema, "table.schema") + "." + q(config.name, "table.name")
        } else {
            table = try q(config.name, "table.name")
        }
        let keyed: Set<SQLColumnKind> = [.integer, .decimal, .text, .uuid, .other]
        let (idQuoted, idColumn) = try required(c.id, "columns.id", kinds: keyed)
        id = idQuoted
        key = try required(c.s3Key, "columns.s3_key", kinds: [.text, .other]).0
        bucket = try c.s3Bucket.map { try required($0, "columns.s3_bucket", kinds: [.text, .other]).0 }
        size = try c.sizeBytes.map { try required($0, "columns.size_bytes", kinds: [.integer, .decimal, .float, .other]).0 }
        let (statusQuoted, statusColumn) = try required(c.status, "columns.status", kinds: [.text, .enumeration, .integer, .decimal, .other])
        status = statusQuoted
        desName = try required(c.desName, "columns.des_name", kinds: [.text, .other]).0
        desHash = try c.desHash.map { try required($0, "columns.des_hash", kinds: [.text, .other]).0 }
        shard = try required(config.shardKeyColumn, "shard_key_column", kinds: [.integer, .decimal, .other]).0
        claimedBy = try required(c.claimedBy, "columns.claimed_by", kinds: [.text, .other]).0
        container = try optional(c.desContainer, "columns.des_container")
        claimedAt = try optional(c.claimedAt, "columns.claimed_at")
        error = try optional(c.error, "columns.error")
        packedAt = try optional(c.packedAt, "columns.packed_at")
        // The column is read; the value is stored in META under the configured key (the original's mapping).
        var meta: [(quoted: String, name: String, kind: SQLColumnKind?)] = try c.metadata.map {
            let (quoted, column) = try required($0.column, "columns.metadata_columns.\($0.key)")
            return (quoted, $0.key, column?.kind)
        }
        if let created = c.createdAt, !c.metadata.contains(where: { $0.key == "created_at" }) {
            let (quoted, column) = try required(created, "columns.created_at")
            meta.append((quoted, "created_at", column?.kind))
        }
        metadata = meta
        whereClause = config.whereClause.flatMap { $0.isEmpty ? nil : "(\($0))" }
        statusNew = config.statusNewValue
        statusPending = config.statusPendingValue
        statusClaimed = config.statusClaimedValue
        statusPacked = config.statusPackedValue
        statusFailed = config.statusFailedValue
        self.catalog = catalog
        idKind = idColumn?.kind
        idCast = idColumn?.bindCast
        idType = idColumn?.type
        statusKind = statusColumn?.kind
        statusCast = statusColumn?.bindCast
        if let catalog, let at = claimedAt {
            let column = catalog.column(dialect.storedName(c.claimedAt), caseSensitive: dialect.identifiersCaseSensitive)
            let kind = column?.kind ?? .float
            guard [.timestamp, .timestampWithTimeZone, .integer, .decimal, .float, .other].contains(kind) else {
                throw DESKitError(
                    .catalog,
                    "\(who)column \(at) of \(tableName) (columns.claimed_at) is \(column?.type ?? "?"): DES needs a timestamp "
                        + "(timestamp, timestamptz, datetime, datetime2) or a number of epoch seconds")
            }
            claimedAtKind = kind
        } else {
            claimedAtKind = nil
        }
        if statusKind == .integer || statusKind == .decimal {
            let values: [(String, String?)] = [
                ("status_new_value", statusNew), ("status_pending_value", statusPending), ("status_claimed_value", statusClaimed),
                ("status_packed_value", statusPacked), ("status_failed_value", statusFailed),
            ]
            for (key, value) in values {
                guard let value, Int64(value) == nil else { continue }
                throw DESKitError(
                    .catalog,
                    "\(who)status column '\(c.status)' of \(tableName) is \(statusColumn?.type ?? "numeric"): \(key) '\(value)' "
                        + "must be its integer code")
            }
        }
    }
}
