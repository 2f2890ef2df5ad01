import Yams

/// The `sources:` list: each upstream catalog's connection, table, columns and bodies.
extension ConfigLoader {
    static let sourceKeys = [
        "name", "enabled", "connection", "table", "bodies", "batch_size", "claim_timeout_seconds", "shard_bits", "retention",
    ]
    /// `bodies:`: DES reads `type`; the body-fetcher plugin reads the rest.
    static let bodiesRules = PluginSectionRules(kind: .bodies, ownKeys: ["delete_after_pack"], secretKeys: [])
    /// The keys of a `connection:` block DES reads itself: where the server is, who logs in, and
    /// the pool's settings (the SQL layer and its pool are DES's). `driver_options` and `dialect`
    /// are the plugin's, read by its configuration type.
    static let connectionOwnKeys = [
        "host", "port", "database", "username", "password", "schema", "charset", "pool_size", "pool_recycle", "pool_pre_ping",
    ]
    /// Every key of the original's `connection:` block (what a loader without plugins allows).
    static let connectionKeys = ["type"] + connectionOwnKeys + ["driver_options", "dialect"]
    /// How a `connection:` block is shared between DES and the plugin of `kind`.
    static func connectionRules(_ kind: PluginKind) -> PluginSectionRules {
        PluginSectionRules(kind: kind, ownKeys: connectionOwnKeys, secretKeys: ["password"])
    }

    /// Opens a `connection:` block: with a registry any key (the plugin refuses what neither it
    /// nor DES reads), without one only the original's keys. Returns it with its type.
    static func openConnection(_ node: Node, path: String, context: ConfigContext, plugins: PluginRegistry?) throws
        -> (ConfigMapping, String)
    {
        let m = try ConfigMapping(
            node, path: path, context: context, allowed: connectionKeys, secretKeys: ["password"], acceptAll: plugins != nil)
        return (m, try connectionType(m))
    }
    static let tableKeys = [
        "name", "schema", "columns", "where_clause", "status_new_value", "status_pending_value", "status_claimed_value",
        "status_packed_value", "status_failed_value", "status_source_deleted_value", "status_deleted_value",
        "shard_key_column",
    ]
    static let columnKeys = [
        "id", "s3_bucket", "s3_key", "size_bytes", "status", "created_at", "metadata_columns", "des_name", "des_hash",
        "des_container", "claimed_by", "claimed_at", "error", "packed_at", "source_deleted_at",
    ]

    /// Reads every source; checks names (non-empty, `[A-Za-z0-9_-]`, unique) and that shard bits agree with the packer's.
    ///
    /// When the packer section does not set `shard_bits`, the first source that does sets it for the packer.
    static func parseSources(
        _ items: [ConfigItem], context: ConfigContext, packer: inout PackerConfig, packerBitsGiven: Bool,
        knownSourceTypes: Set<String>?, plugins: PluginRegistry?
    ) throws -> [SourceConfig] {
        var sources: [SourceConfig] = []
        var names: [String: String] = [:]  // name -> key path of its first use
        var tables: [String: String] = [:]  // a table's place (connection and name) -> the source mapping it
        var bitsOrigin: String? = packerBitsGiven ? "packer.shard_bits" : nil
        for item in items {
            let m = try ConfigMapping(item.node, path: item.path, context: context, allowed: sourceKeys)
            let source = try parseSource(m, knownSourceTypes: knownSourceTypes, plugins: plugins)
            if let first = names[source.name] {
                throw m.error("name", .duplicate, "source name '\(source.name)' is already used by \(first) (names must be unique)")
            }
            names[source.name] = item.path
            // claim_mode lease reads pending rows without writing a claim: two sources over one table
            // would each read — and pack — a row both where_clauses accept. Row claims exclude each other.
            if packer.claimMode == .lease, source.enabled, m.node("table") != nil {
                let place = tablePlace(source)
                if let first = tables[place] {
                    throw m.error(
                        "table", .invalidValue,
                        "source '\(first)' maps the same table (\(source.table.name)) over the same connection: with packer.claim_mode lease "
                            + "a row both sources' where_clauses accept would be packed twice; use claim_mode row (claims exclude each other), or one source")
                }
                tables[place] = source.name
            }
            if let bits = source.shardBits {
                if let origin = bitsOrigin {
                    if bits != packer.shardBits {
                        // A reader finds a file's shard from its name alone, so one width serves every source.
                        m.warn(
                            "shard_bits",
                            "\(bits) differs from \(origin) (\(packer.shardBits)): DES shards every source with \(packer.shardBits) bits, "
                                + "since a reader finds a file's shard from its name alone")
                    }
                } else {
                    packer.shardBits = bits
                    bitsOrigin = m.childPath("shard_bits")
                }
            }
            sources.append(source)
        }
        return sources
    }

    /// Where a source's table lives, for telling two sources over one table apart: the
    /// connection's type, host, port, database and schema, and the table's schema and name,
    /// with what is left out filled in as the server would (the default port, PostgreSQL's
    /// `public` schema, this machine under any of its names). Table and schema names are
    /// compared as written: DES quotes them, so `files` and `FILES` are two tables.
    static func tablePlace(_ source: SourceConfig) -> String {
        let c = source.connection
        let type = c.type.lowercased()
        let family = ["postgres": "postgresql", "postgresql": "postgresql", "mysql": "mariadb", "mariadb": "mariadb"][type] ?? type
        let defaultPort = ["postgresql": 5432, "mariadb": 3306, "mssql": 1433, "oracle": 1521][family]
        var host = (c.host ?? "").lowercased()
        while host.hasSuffix(".") { host.removeLast() }
        if ["", "localhost", "127.0.0.1", "::1", "[::1]", "localhost.localdomain"].contains(host) { host = "local" }
        let port = (c.port ?? defaultPort).map(String.init) ?? ""
        let schema = source.table.schema ?? c.schema ?? (family == "postgresql" ? "public" : "")
        return [family, host, port, c.database ?? "", schema, source.table.name].joined(separator: "\u{0}")
    }

    /// One item of `sources:`.
    ///
    /// Without a `bodies:` block, a table whose columns name an `s3_bucket` reads its bodies from S3,
    /// as the original did; otherwise bodies are local.
    static func parseSource(
        _ m: ConfigMapping, knownSourceTypes: Set<String>?, plugins: PluginRegistry? = nil
    ) throws -> SourceConfig {
        let name = try m.requiredString("name")
        guard name.utf8.allSatisfy(isNameByte) else {
            throw m.error("name", .invalidValue, "source name '\(name)' may use only ASCII letters, digits, '_' and '-'")
        }
        guard let connectionNode = m.node("connection") else { throw m.missing("connection") }
        let (connectionMapping, _) = try openConnection(
            connectionNode, path: m.childPath("connection"), context: m.context, plugins: plugins)
        var connection = try parseConnection(connectionMapping, knownTypes: knownSourceTypes)
        connection.settings = try readPlugin(connectionMapping, type: connection.type, rules: connectionRules(.source), plugins: plugins)
        if let owned = plugins?.ownedCatalog(type: connection.type) {
            // DES keeps this source's catalog: a table or bodies block would be ignored, so it is refused.
            for key in ["table", "bodies"] where m.node(key) != nil {
                throw m.error(
                    key, .unknownKey, "a '\(connection.type)' source has no \(key): block: DES keeps its catalog (in the metadata store) and reads its files")
            }
            var source = SourceConfig(name: name, connection: connection, table: owned(name))
            source.bodies = BodiesConfig(type: connection.type)
            if let enabled = try m.bool("enabled") { source.enabled = enabled }
            return try parseSourceLimits(m, into: source)
        }
        guard let tableMapping = try m.mapping("table", allowed: tableKeys) else { throw m.missing("table") }
        var table = try parseTable(tableMapping)
        if table.schema == nil { table.schema = connection.schema }
        var source = SourceConfig(name: name, connection: connection, table: table)
        if let enabled = try m.bool("enabled") { source.enabled = enabled }
        if let bodies = try pluginSection(m, "bodies", rules: bodiesRules, defaultType: "local", plugins: plugins, table: table) {
            source.bodies = BodiesConfig(type: bodies.type, settings: bodies.settings)
            source.bodies.deleteAfterPack = try bodies.mapping.duration("delete_after_pack", in: ConfigLimits.deleteAfterPack)
        } else if table.columns.s3Bucket != nil {
            source.bodies.type = "s3"
        }
        return try parseSourceLimits(m, into: source)
    }

    /// A source's own limits: its claim batch, claim timeout, shard bits and retention.
    private static func parseSourceLimits(_ m: ConfigMapping, into source: SourceConfig) throws -> SourceConfig {
        var source = source
        source.batchSize = try m.int("batch_size", in: ConfigLimits.sourceBatchSize)
        source.claimTimeoutSeconds = try m.double("claim_timeout_seconds", in: ConfigLimits.claimTimeoutSeconds)
        source.shardBits = try m.int("shard_bits", in: ConfigLimits.shardBits)
        source.retentionSeconds = try m.duration("retention", in: ConfigLimits.retention)
        return source
    }

    /// A `connection:` block (of a source, or of `metadata:`).
    ///
    /// `type` is required (and, with `knownTypes`, must be one of them); `postgres` is read as `postgresql`.
    /// SQLite needs `database` (the file's path). `pool_recycle` and `pool_pre_ping` are the pool's
    /// (``SQLConnectionPool/Options``); `charset` on a stock type other than MySQL and MariaDB is kept
    /// with a warning.
    static func parseConnection(_ m: ConfigMapping, knownTypes: Set<String>?) throws -> ConnectionConfig {
        let type = try connectionType(m)
        if let knownTypes {
            let known = Set(knownTypes.map { $0.lowercased() })
            if !known.contains(type) {
                throw m.error(
                    "type", .invalidValue,
                    "unknown connection type '\(type)' (known: \(known.sorted().joined(separator: ", ")))",
                    suggestion: KeySuggestion.suggest(for: type, among: known.sorted()))
            }
        }
        var connection = ConnectionConfig(type: type)
        connection.host = try nonEmpty(m, "host")
        connection.port = try m.int("port", in: ConfigLimits.port)
        connection.database = try nonEmpty(m, "database")
        // A URL or connection string here would carry the password past its redaction (into
        // `des config check`, errors and logs); the value itself is not repeated.
        if let host = connection.host, host.contains("://") || host.contains("@") {
            throw m.error(
                "host", .invalidValue,
                "must be a host name, an address or a socket directory, not a URL or user@host: give the user and password in username and password")
        }
        // (SQLite's database is a file's path, which may hold anything a path may.)
        if let database = connection.database, type != "sqlite",
            database.contains("://") || (type.hasPrefix("postgres") && database.contains("="))
        {
            throw m.error(
                "database", .invalidValue,
                "must be a database name, not a URL or connection string (libpq would read one as such): give host, port, username and password in their own keys")
        }
        connection.username = try m.string("username")
        connection.password = try m.string("password").map(Secret.init)
        connection.schema = try nonEmpty(m, "schema")
        connection.charset = try nonEmpty(m, "charset")
        if let pool = try m.int("pool_size", in: ConfigLimits.poolSize) { connection.poolSize = pool }
        if let recycle = try m.double("pool_recycle", in: ConfigLimits.poolRecycleSeconds) {
            if recycle < 0, recycle != ConfigLimits.poolRecycleNever {
                let range = 0...ConfigLimits.poolRecycleSeconds.upperBound
                throw m.error(
                    "pool_recycle", .invalidValue,
                    "must be -1 (never) or \(ConfigMapping.bounds(range, unit: "seconds")), got \(ConfigMapping.format(recycle))")
            }
            connection.poolRecycleSeconds = recycle
        }
        if let ping = try m.bool("pool_pre_ping") { connection.poolPrePing = ping }
        connection.dialect = try nonEmpty(m, "dialect").map { $0.lowercased() }
        connection.driverOptions = try m.stringMap("driver_options") ?? [:]
        return connection
    }

    /// `connection.type`, in lower case (a plugin may register several spellings: the PostgreSQL
    /// plugin answers to the original's `postgres` too).
    static func connectionType(_ m: ConfigMapping) throws -> String {
        try m.requiredString("type").lowercased()
    }

    /// A `table:` block.
    ///
    /// `where_clause` is kept exactly as written (an empty or blank one means none). `shard_key_column`
    /// must not be a column the table maps to anything else, since the marker writes shard numbers into it;
    /// written with another name than `des_shard`, it draws a warning, as its meaning differs from the original's.
    static func parseTable(_ m: ConfigMapping) throws -> TableConfig {
        guard let name = try identifier(m, "name") else { throw m.missing("name") }
        var table = TableConfig(name: name)
        table.schema = try identifier(m, "schema")
        if let columns = try m.mapping("columns", allowed: columnKeys) {
            table.columns = try parseColumns(columns)
        }
        if let clause = try m.string("where_clause"), clause.contains(where: { !$0.isWhitespace }) {
            table.whereClause = clause
        }
        table.statusNewValue = try nonEmpty(m, "status_new_value")
        if let v = try nonEmpty(m, "status_pending_value") { table.statusPendingValue = v }
        if let v = try nonEmpty(m, "status_claimed_value") { table.statusClaimedValue = v }
        if let v = try nonEmpty(m, "status_packed_value") { table.statusPackedValue = v }
        if let v = try nonEmpty(m, "status_failed_value") { table.statusFailedValue = v }
        if let v = try nonEmpty(m, "status_source_deleted_value") { table.statusSourceDeletedValue = v }
        if let v = try nonEmpty(m, "status_deleted_value") { table.statusDeletedValue = v }
        if let v = try identifier(m, "shard_key_column") { table.shardKeyColumn = v }
        let statuses = [
            ("status_pending_value", table.statusPendingValue), ("status_claimed_value", table.statusClaimedValue),
            ("status_packed_value", table.statusPackedValue), ("status_failed_value", table.statusFailedValue),
            ("status_source_deleted_value", table.statusSourceDeletedValue), ("status_deleted_value", table.statusDeletedValue),
        ]
        for (i, (key, value)) in statuses.enumerated() {
            if let earlier = statuses[..<i].first(where: { $0.1 == value }) {
                throw m.error(key, .invalidValue, "'\(value)' is also \(earlier.0); each status needs its own value")
            }
        }
        let shard = table.shardKeyColumn
        if let (other, _) = mappedColumns(table.columns).first(where: { $0.1.lowercased() == shard.lowercased() }) {
            guard m.contains("shard_key_column") else {
                throw m.error(
                    "columns", .invalidValue,
                    "'\(shard)' is also \(other); the marker writes each row's shard number into shard_key_column, so it needs a column of its own")
            }
            // The original hashed this column's value; DES hashes the DES name and keeps the shard in a column of its own.
            let own = TableConfig(name: table.name).shardKeyColumn
            m.warn(
                "shard_key_column",
                "'\(shard)' is \(other): DES shards by the DES name's hash and stores the shard in '\(own)' instead")
            table.shardKeyColumn = own
            return table
        }
        if m.node("shard_key_column") != nil, shard.lowercased() != TableConfig(name: table.name).shardKeyColumn {
            m.warn(
                "shard_key_column",
                "DES writes each row's shard number into '\(shard)' (shards come from the DES name's hash; the original hashed this column's value instead)")
        }
        return table
    }

    /// Every column a table's mapping names, with the key naming it (`columns.id`).
    static func mappedColumns(_ c: ColumnMapping) -> [(String, String)] {
        var out: [(String, String)] = [
            ("columns.id", c.id), ("columns.s3_key", c.s3Key), ("columns.status", c.status), ("columns.des_name", c.desName),
            ("columns.des_container", c.desContainer), ("columns.claimed_by", c.claimedBy),
            ("columns.claimed_at", c.claimedAt), ("columns.error", c.error), ("columns.packed_at", c.packedAt),
            ("columns.source_deleted_at", c.sourceDeletedAt),
        ]
        let optional: [(String, String?)] = [
            ("columns.s3_bucket", c.s3Bucket), ("columns.size_bytes", c.sizeBytes), ("columns.created_at", c.createdAt),
            ("columns.des_hash", c.desHash),
        ]
        out += optional.compactMap { key, column in column.map { (key, $0) } }
        out += c.metadata.map { ("columns.metadata_columns.\($0.key)", $0.column) }
        return out
    }

    /// A `columns:` block; every column not given keeps its default name.
    static func parseColumns(_ m: ConfigMapping) throws -> ColumnMapping {
        var c = ColumnMapping()
        if let v = try identifier(m, "id") { c.id = v }
        c.s3Bucket = try identifier(m, "s3_bucket")
        if let v = try identifier(m, "s3_key") { c.s3Key = v }
        c.sizeBytes = try identifier(m, "size_bytes")
        if let v = try identifier(m, "status") { c.status = v }
        c.createdAt = try identifier(m, "created_at")
        if let v = try m.metadataColumns("metadata_columns") { c.metadata = v }
        if let v = try identifier(m, "des_name") { c.desName = v }
        c.desHash = try identifier(m, "des_hash")
        if let v = try identifier(m, "des_container") { c.desContainer = v }
        if let v = try identifier(m, "claimed_by") { c.claimedBy = v }
        if let v = try identifier(m, "claimed_at") { c.claimedAt = v }
        if let v = try identifier(m, "error") { c.error = v }
        if let v = try identifier(m, "packed_at") { c.packedAt = v }
        if let v = try identifier(m, "source_deleted_at") { c.sourceDeletedAt = v }
        try checkWrittenColumnsApart(c, in: m)
        // columns.created_at goes into META as created_at: a metadata column under that key would take its place.
        if c.createdAt != nil, c.metadata.contains(where: { $0.key == "created_at" }) {
            throw m.error(
                "metadata_columns", .invalidValue,
                "META key 'created_at' is where columns.created_at goes; give this column another key, or drop columns.created_at")
        }
        return c
    }

    /// A column DES writes (status, names, containers, claims, errors, times) must not be a
    /// column of any other role: the writes would overwrite it — the body's key with container
    /// keys, a status with names. Columns DES only reads (id, key, bucket, size, created_at,
    /// metadata) may share one (an id that is the path). Compared without case, as most
    /// databases compare unquoted names.
    static func checkWrittenColumnsApart(_ c: ColumnMapping, in m: ConfigMapping) throws {
        // Each role as (key under columns:, column, whether DES writes it).
        let roles = mappedColumns(c).map { path, column in
            let key = String(path.dropFirst("columns.".count))
            return (key, column, writtenColumnKeys.contains(key))
        }
        func top(_ key: String) -> String { String(key.split(separator: ".")[0]) }
        func line(_ key: String) -> Int { m.node(top(key))?.mark?.line ?? -1 }
        for (i, (key, column, writes)) in roles.enumerated() {
            for (otherKey, otherColumn, otherWrites) in roles[(i + 1)...] where writes || otherWrites {
                guard column.lowercased() == otherColumn.lowercased() else { continue }
                // At the key the user wrote (the later in the file when both are), naming the other.
                let at = line(otherKey) >= line(key) ? otherKey : key
                let other = at == otherKey ? key : otherKey
                throw m.error(
                    top(at), .invalidValue,
                    "'\(otherColumn)' is also columns.\(other)\(m.contains(top(other)) ? "" : " (its default)"): DES writes columns.\(writes ? key : otherKey) into it, which would overwrite the other; map each to a column of its own")
            }
        }
    }

    /// The `columns:` keys whose columns DES writes (the others it only reads).
    static let writtenColumnKeys: Set<String> = [
        "status", "des_name", "des_hash", "des_container", "claimed_by", "claimed_at", "error", "packed_at", "source_deleted_at",
    ]

    /// A table, schema or column name: non-empty, and an identifier every dialect can quote
    /// (``SQLIdentifier``), refused here, at its line, rather than at the first statement.
    static func identifier(_ m: ConfigMapping, _ key: String) throws -> String? {
        guard let name = try nonEmpty(m, key) else { return nil }
        do { try SQLIdentifier.validate(name, what: key) } catch let error as DESKitError {
            throw m.error(key, .invalidValue, error.message.replacingOccurrences(of: "\(key): ", with: ""))
        }
        return name
    }

    /// A string that, when written, must not be empty.
    static func nonEmpty(_ m: ConfigMapping, _ key: String) throws -> String? {
        guard let value = try m.string(key) else { return nil }
        if value.isEmpty { throw m.error(key, .invalidValue, "must not be empty") }
        return value
    }

    /// `[A-Za-z0-9_-]`.
    static func isNameByte(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x5F || b == 0x2D
    }
}
