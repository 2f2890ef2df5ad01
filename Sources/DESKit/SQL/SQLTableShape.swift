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
    public let id: String, key: String, bucket: String?, bodyStamp: String?, size: String?
    public let status: String, desName: String, desHash: String?, shard: String
    /// The claimer's column (required).
    public let claimedBy: String
    /// Optional columns: nil when the reflected table lacks them.
    public let container: String?, claimedAt: String?, error: String?, packedAt: String?
    /// When the retire worker deleted the body (optional, like `packed_at`).
    public let sourceDeletedAt: String?, sourceDeletedAtKind: SQLColumnKind?
    /// The status of a row whose body the retire worker deleted.
    public let statusSourceDeleted: String
    /// Why ``statusSourceDeleted`` cannot be written to this table's status column (an enum
    /// without the label, a numeric column and a text value); nil when it can. Checked when the
    /// retire worker starts, not at connect: a table that never retires need not have the label.
    public let statusSourceDeletedProblem: String?
    /// The status of a row whose file was deleted, and why it cannot be written here (as above).
    public let statusDeleted: String, statusDeletedProblem: String?
    /// Metadata columns, quoted, the META keys their values are stored under, and their kinds
    /// (`columns.created_at` is the last, under `created_at`, when configured).
    public let metadata: [(quoted: String, name: String, kind: SQLColumnKind?)]
    /// The extra condition from the config, parenthesised, or nil.
    public let whereClause: String?
    public let statusNew: String?, statusPending: String, statusClaimed: String, statusPacked: String, statusFailed: String
    /// The reflected kinds of the key, status, claim-time and packed-time columns (nil when not
    /// reflected: a shape built from the config alone, for SQL text and DDL).
    public let idKind: SQLColumnKind?, statusKind: SQLColumnKind?, claimedAtKind: SQLColumnKind?, packedAtKind: SQLColumnKind?
    /// The casts bound key and status values need (a PostgreSQL `uuid` or enum), or nil.
    public let idCast: String?, statusCast: String?
    /// The key column's type in the database's words (PostgreSQL casts id lists to it).
    public let idType: String?

    /// The columns a claim returns, in order: id, key, bucket?, stamp?, size?, name, shard, metadata….
    public var claimColumns: [String] {
        var cols = [id, key]
        if let bucket { cols.append(bucket) }
        if let bodyStamp { cols.append(bodyStamp) }
        if let size { cols.append(size) }
        cols += [desName, shard]
        cols += metadata.map(\.quoted)
        return cols
    }

    /// ``claimColumns``, comma-separated.
    public var claimSelectList: String { claimColumns.joined(separator: ", ") }

    /// ` AND (where_clause)` or an empty string.
    public var andWhere: String { whereClause.map { " AND (\($0))" } ?? "" }

    /// ``andWhere`` for a statement whose rows a list of names or keys finds, in the form
    /// `dialect` plans by that list (``SQLDialect/listLookupFilter(_:)``).
    public func andWhere(findingByListIn dialect: any SQLDialect) -> String {
        whereClause.map { " AND (\(dialect.listLookupFilter($0)))" } ?? ""
    }

    // MARK: Binding by the reflected type

    /// A row id bound in its column's type: an integer key as an integer, every other key
    /// (text, `varchar`, zero-padded strings, uuid) as text, so `'7'` and `'07'` stay two rows.
    /// Never by the look of the value: an unreflected shape binds text.
    public func idValue(_ id: String) -> SQLValue {
        if idKind == .integer, let i = Int64(id) { return .int(i) }
        return .text(id)
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

    /// `, claimed_at = now` for a claim (a timestamp or epoch seconds, as the column stores it),
    /// or nothing when the table has no claim-time column.
    public func setClaimedAt(_ dialect: any SQLDialect) -> String {
        claimedAt.map { ", \($0) = \(dialect.now(for: claimedAtKind ?? .float))" } ?? ""
    }

    /// `, claimed_at = NULL` when the column exists.
    public var clearClaimedAt: String { claimedAt.map { ", \($0) = NULL" } ?? "" }

    /// `, packed_at = now` when the table has the column.
    public func setPackedAt(_ dialect: any SQLDialect) -> String {
        packedAt.map { ", \($0) = \(dialect.now(for: packedAtKind ?? .float))" } ?? ""
    }

    static func cast(_ placeholder: String, _ type: String?) -> String {
        type.map { "CAST(\(placeholder) AS \($0))" } ?? placeholder
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
        let columns = ColumnLookup(catalog: catalog, dialect: dialect, table: config, source: source)
        if let catalog, !catalog.exists {
            throw DESKitError(.catalog, "\(columns.who)table \(columns.tableName) does not exist (or has no columns this user can see)")
        }
        let c = config.columns
        if let schema = config.schema {
            table = try columns.quoted(schema, "table.schema") + "." + columns.quoted(config.name, "table.name")
        } else {
            table = try columns.quoted(config.name, "table.name")
        }
        let text: Set<SQLColumnKind> = [.text, .other]
        let number: Set<SQLColumnKind> = [.integer, .decimal, .other]
        let idColumn = try columns.required(c.id, "columns.id", kinds: number.union([.text, .uuid]))
        id = idColumn.quoted
        key = try columns.required(c.s3Key, "columns.s3_key", kinds: text).quoted
        bucket = try c.s3Bucket.map { try columns.required($0, "columns.s3_bucket", kinds: text).quoted }
        bodyStamp = try c.bodyStamp.map { try columns.required($0, "columns.body_stamp", kinds: text).quoted }
        size = try c.sizeBytes.map { try columns.required($0, "columns.size_bytes", kinds: number.union([.float])).quoted }
        let statusColumn = try columns.required(c.status, "columns.status", kinds: number.union([.text, .enumeration]))
        status = statusColumn.quoted
        desName = try columns.required(c.desName, "columns.des_name", kinds: text).quoted
        desHash = try c.desHash.map { try columns.required($0, "columns.des_hash", kinds: text).quoted }
        shard = try columns.required(config.shardKeyColumn, "shard_key_column", kinds: number).quoted
        claimedBy = try columns.required(c.claimedBy, "columns.claimed_by", kinds: text).quoted
        // A time is written in the column's own type: a timestamp, or epoch seconds.
        let time = number.union([.float, .timestamp, .timestampWithTimeZone])
        let claimedAtColumn = try columns.optional(c.claimedAt, "columns.claimed_at", kinds: time)
        let packedAtColumn = try columns.optional(c.packedAt, "columns.packed_at", kinds: time)
        claimedAt = claimedAtColumn?.quoted
        packedAt = packedAtColumn?.quoted
        let sourceDeletedColumn = try columns.optional(c.sourceDeletedAt, "columns.source_deleted_at", kinds: time)
        sourceDeletedAt = sourceDeletedColumn?.quoted
        sourceDeletedAtKind = sourceDeletedColumn?.reflected?.kind
        statusSourceDeleted = config.statusSourceDeletedValue
        container = try columns.optional(c.desContainer, "columns.des_container", kinds: text)?.quoted
        error = try columns.optional(c.error, "columns.error", kinds: text)?.quoted
        // The column is read; the value is stored in META under the configured key (the original's mapping).
        var meta: [(quoted: String, name: String, kind: SQLColumnKind?)] = try c.metadata.map {
            let column = try columns.required($0.column, "columns.metadata_columns.\($0.key)")
            return (column.quoted, $0.key, column.reflected?.kind)
        }
        if let created = c.createdAt, !c.metadata.contains(where: { $0.key == "created_at" }) {
            let column = try columns.required(created, "columns.created_at")
            meta.append((column.quoted, "created_at", column.reflected?.kind))
        }
        metadata = meta
        whereClause = config.whereClause.flatMap { $0.isEmpty ? nil : "(\($0))" }
        statusNew = config.statusNewValue
        statusPending = config.statusPendingValue
        statusClaimed = config.statusClaimedValue
        statusPacked = config.statusPackedValue
        statusFailed = config.statusFailedValue
        idKind = idColumn.reflected?.kind
        idCast = idColumn.reflected?.bindCast
        idType = idColumn.reflected?.type
        statusKind = statusColumn.reflected?.kind
        statusCast = statusColumn.reflected?.bindCast
        claimedAtKind = claimedAtColumn?.reflected?.kind
        packedAtKind = packedAtColumn?.reflected?.kind
        let values: [(String, String?)] = [
            ("status_new_value", statusNew), ("status_pending_value", statusPending), ("status_claimed_value", statusClaimed),
            ("status_packed_value", statusPacked), ("status_failed_value", statusFailed),
        ]
        /// Why the status column cannot hold `value` (an enum without that label; a numeric
        /// column and a value that is no integer code), or nil.
        let (who, tableName, kind) = (columns.who, columns.tableName, statusColumn.reflected?.kind)
        func problem(_ value: String, _ key: String) -> String? {
            if let labels = statusColumn.reflected?.labels, !labels.contains(value) {
                return "\(who)status column '\(c.status)' of \(tableName) is \(statusColumn.reflected?.type ?? "an enum"), "
                    + "whose labels are \(labels.map { "'\($0)'" }.joined(separator: ", ")): \(key) '\(value)' is not one of them "
                    + "(set \(key) to a label, or add '\(value)' to the type)"
            }
            if kind == .integer || kind == .decimal, Int64(value) == nil {
                return "\(who)status column '\(c.status)' of \(tableName) is \(statusColumn.reflected?.type ?? "numeric"): "
                    + "\(key) '\(value)' must be its integer code"
            }
            return nil
        }
        if idKind == .decimal, dialect.readsDecimalsAsDoubles, let why = Self.decimalKeyProblem(idType) {
            throw DESKitError(.catalog, "\(who)key column '\(c.id)' of \(tableName) is \(idType ?? "numeric"): \(why)")
        }
        // The statuses the pipeline writes are checked at connect (a value the column lacks would fail
        // the first mark, with rows in hand); those only the lifecycle workers write, when they run.
        for (key, value) in values {
            if let value, let problem = problem(value, key) { throw DESKitError(.catalog, problem) }
        }
        statusSourceDeletedProblem = problem(config.statusSourceDeletedValue, "status_source_deleted_value")
        statusDeleted = config.statusDeletedValue
        statusDeletedProblem = problem(config.statusDeletedValue, "status_deleted_value")
    }
}

extension SQLTableShape {
    /// The most digits of a `numeric`/`decimal` key DES reads exactly: drivers read such a
    /// column as a double, which holds every whole number of up to 15 digits (2^53 has 16).
    public static let maxDecimalKeyDigits = 15

    /// Why a `numeric`/`decimal` key column of type `type` cannot be a key (no precision, a
    /// scale, more than ``maxDecimalKeyDigits`` digits), or nil when it can. Two keys past 2^53
    /// would read back as one number: both rows named alike, and marks landing on the wrong row.
    static func decimalKeyProblem(_ type: String?) -> String? {
        let advice = "use bigint or text for the key, or numeric(\(maxDecimalKeyDigits),0) or narrower"
        guard let type, let open = type.firstIndex(of: "("), let close = type.lastIndex(of: ")"), open < close else {
            return "a numeric key of unbounded precision cannot be read exactly past 2^53 (\(advice))"
        }
        let parts = type[type.index(after: open)..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let digits = parts.first.flatMap({ Int($0) }) else { return "its precision cannot be read (\(advice))" }
        if parts.count > 1, let scale = Int(parts[1]), scale != 0 { return "a key with \(scale) decimal places is not a row id DES can bind (\(advice))" }
        if digits > maxDecimalKeyDigits {
            return "\(digits) digits cannot be read exactly past 2^53 (\(advice))"
        }
        return nil
    }
}

/// Finds the config's columns in the reflected table (an unreflected shape takes every one as
/// present, of no known type), validating and quoting each name.
private struct ColumnLookup {
    let catalog: SQLTableCatalog?
    let dialect: any SQLDialect
    /// `schema.table` as configured, and `source 'name': ` (or nothing), for messages.
    let tableName: String, who: String

    init(catalog: SQLTableCatalog?, dialect: any SQLDialect, table: TableConfig, source: String?) {
        self.catalog = catalog
        self.dialect = dialect
        tableName = (table.schema.map { "\($0)." } ?? "") + table.name
        who = source.map { "source '\($0)': " } ?? ""
    }

    /// A configured column: its quoted name, and its description when the table was reflected.
    struct Found {
        var quoted: String
        var reflected: SQLCatalogColumn?
    }

    func quoted(_ name: String, _ key: String) throws -> String {
        try SQLIdentifier.validate(name, what: key)
        return dialect.quoteIdentifier(name)
    }

    /// A column the source cannot run without: missing, it is an error with "did you mean".
    func required(_ name: String, _ key: String, kinds: Set<SQLColumnKind>? = nil) throws -> Found {
        if let found = try optional(name, key, kinds: kinds) { return found }
        var message = "\(who)table \(tableName) has no column '\(name)' (\(key))"
        if let guess = catalog?.suggestion(for: name) { message += "; did you mean '\(guess)'?" }
        message += "; its columns: " + (catalog?.columns.map(\.name).joined(separator: ", ") ?? "")
        throw DESKitError(.catalog, message)
    }

    /// A column written only where it exists: nil when the reflected table lacks it.
    func optional(_ name: String, _ key: String, kinds: Set<SQLColumnKind>? = nil) throws -> Found? {
        let quoted = try quoted(name, key)
        guard let catalog else { return Found(quoted: quoted, reflected: nil) }
        guard let column = catalog.column(dialect.storedName(name), caseSensitive: dialect.identifiersCaseSensitive) else { return nil }
        if let kinds, !kinds.contains(column.kind) {
            throw DESKitError(
                .catalog,
                "\(who)column '\(column.name)' of \(tableName) (\(key)) is \(column.type): DES needs "
                    + kinds.map(\.rawValue).sorted().joined(separator: ", "))
        }
        return Found(quoted: quoted, reflected: column)
    }
}
