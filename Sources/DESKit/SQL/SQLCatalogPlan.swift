import DESNaming

/// A source's mapping held against its real table: each mapped column found (with its type) or
/// missing, each recommended index present or missing, the DDL (in the table's own dialect) that
/// adds what is missing, and what no DDL can fix. `des catalog check` prints it; `des catalog
/// prepare --apply` runs its DDL.
public struct SQLCatalogPlan: Sendable, Codable, Equatable {
    /// One mapped column.
    public struct Column: Sendable, Codable, Equatable {
        /// The config key that maps it (`columns.status`).
        public var key: String
        /// The column's name as configured.
        public var name: String
        /// Whether the table has it.
        public var found: Bool
        /// Its type in the database's words, when found.
        public var type: String?
        /// What DES makes of the type, when found.
        public var kind: String?
        /// Whether a source cannot run without it.
        public var required: Bool
        /// Whether DES owns it (so `prepare` can add it).
        public var desColumn: Bool
    }

    /// One recommended index.
    public struct Index: Sendable, Codable, Equatable {
        /// The name `prepare` gives it.
        public var name: String
        /// What it serves.
        public var purpose: String
        /// Whether an index that serves it exists (one leading with the same column).
        public var present: Bool
    }

    /// The source's name.
    public var source: String
    /// The table, as configured (`schema.table`).
    public var table: String
    /// Whether the table exists.
    public var exists: Bool
    /// Every mapped column.
    public var columns: [Column]
    /// The recommended indexes.
    public var indexes: [Index]
    /// The statements that add the missing DES columns and indexes, in order.
    public var ddl: [String]
    /// What stops the source from running that no DDL of DES's can fix (a missing key or body
    /// column, a type DES cannot use), each naming the column.
    public var problems: [String]

    /// Whether the source can run as the table is now.
    public var canRun: Bool { exists && problems.isEmpty && !columns.contains { $0.required && !$0.found } }

    /// Holds `config` against `catalog` in `dialect`.
    public init(source: String, config: TableConfig, dialect: any SQLDialect, catalog: SQLTableCatalog) throws {
        self.source = source
        table = (config.schema.map { "\($0)." } ?? "") + config.name
        exists = catalog.exists
        let base = try SQLTableShape(config: config, dialect: dialect)
        let c = config.columns
        // key, name, required, DES role (nil: the user's own column, which DES never adds).
        var mapped: [(String, String, Bool, SQLDESColumnRole?)] = [
            ("columns.id", c.id, true, nil), ("columns.s3_key", c.s3Key, true, nil), ("columns.status", c.status, true, .status),
            ("columns.des_name", c.desName, true, .desName), ("shard_key_column", config.shardKeyColumn, true, .shard),
            ("columns.claimed_by", c.claimedBy, true, .claimedBy), ("columns.claimed_at", c.claimedAt, false, .claimedAt),
            ("columns.des_container", c.desContainer, false, .container), ("columns.error", c.error, false, .error),
            ("columns.packed_at", c.packedAt, false, .packedAt),
        ]
        if let v = c.s3Bucket { mapped.append(("columns.s3_bucket", v, true, nil)) }
        if let v = c.sizeBytes { mapped.append(("columns.size_bytes", v, true, nil)) }
        if let v = c.desHash { mapped.append(("columns.des_hash", v, true, .desHash)) }
        if let v = c.createdAt { mapped.append(("columns.created_at", v, true, nil)) }
        mapped += c.metadata.map { ("columns.metadata_columns.\($0.key)", $0.column, true, nil) }
        var ddl: [String] = []
        var problems: [String] = []
        columns = mapped.map { key, name, required, role in
            let found = catalog.column(dialect.storedName(name), caseSensitive: dialect.identifiersCaseSensitive)
            if found == nil, let role, catalog.exists {
                ddl.append(dialect.addColumn(table: base.table, column: dialect.quoteIdentifier(name), type: dialect.ddlType(for: role)))
            } else if found == nil, required, catalog.exists {
                var p = "no column '\(name)' (\(key))"
                if let guess = catalog.suggestion(for: name) { p += "; did you mean '\(guess)'?" }
                problems.append(p)
            }
            return Column(
                key: key, name: name, found: found != nil, type: found?.type, kind: found?.kind.rawValue, required: required,
                desColumn: role != nil)
        }
        if !catalog.exists { problems.append("table \(table) does not exist (or this user cannot see its columns)") }
        // The types, once every column is there: the shape refuses what it cannot bind.
        if catalog.exists, problems.isEmpty, ddl.isEmpty {
            do {
                _ = try SQLTableShape(config: config, dialect: dialect, catalog: catalog, source: source)
            } catch let error as DESKitError {
                problems.append(error.message)
            }
        }
        // Recommended indexes: the claim (pending rows of a shard) and the marker (rows with no name).
        let q = dialect.quoteIdentifier
        let status = q(c.status), shard = q(config.shardKeyColumn), id = q(c.id), name = q(c.desName)
        let pendingLiteral = Int64(config.statusPendingValue) != nil
            ? config.statusPendingValue : "'" + config.statusPendingValue.replacingOccurrences(of: "'", with: "''") + "'"
        let claimName = Self.indexName(config.name, "_des_claim"), nameIndex = Self.indexName(config.name, "_des_name")
        let hasClaim = catalog.hasIndex(leadingWith: dialect.storedName(c.status))
            || catalog.hasIndex(leadingWith: dialect.storedName(config.shardKeyColumn))
        let hasName = catalog.hasIndex(leadingWith: dialect.storedName(c.desName))
        indexes = [
            Index(name: claimName, purpose: "claims: the pending rows of a shard", present: hasClaim),
            Index(name: nameIndex, purpose: "the marker and lookups by DES name", present: hasName),
        ]
        if catalog.exists && problems.isEmpty {
            if !hasClaim {
                ddl.append(dialect.partialIndexes
                    ? dialect.createIndex(name: claimName, table: base.table, columns: [shard, id], predicate: "\(status) = \(pendingLiteral)")
                    : dialect.createIndex(name: claimName, table: base.table, columns: [status, shard, id], predicate: nil))
            }
            if !hasName { ddl.append(dialect.createIndex(name: nameIndex, table: base.table, columns: [name], predicate: nil)) }
        }
        self.ddl = ddl
        self.problems = problems
    }
}

extension SQLCatalogPlan {
    /// The longest index name DES makes, in bytes: under PostgreSQL's 63 and MariaDB's 64, which
    /// cut longer names — two of them cut to one name, and the second index is never made.
    static let maxIndexNameBytes = 60

    /// `table + suffix`, or, when that is too long, the table's name shortened with 8 hex digits
    /// of its hash before the suffix: distinct for distinct tables, and the same on every run.
    static func indexName(_ table: String, _ suffix: String) -> String {
        let full = table + suffix
        guard full.utf8.count > maxIndexNameBytes else { return full }
        let hash = String(consistentHash(table, bits: 32), radix: 16)
        let tag = "_" + String(repeating: "0", count: 8 - hash.count) + hash + suffix
        var head = Substring(table)
        while head.utf8.count + tag.utf8.count > maxIndexNameBytes { head = head.dropLast() }
        return head + tag
    }
}
