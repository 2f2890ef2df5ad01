import Foundation

/// How to reach a database (the original `connection:` block).
///
/// Every key of the original's block is here. The connection parameters (`host`
/// to `driverOptions`) are handed to the plugin registered for ``type``; the pool
/// settings are DES's (``poolSize`` is honoured; ``poolRecycleSeconds`` and
/// ``poolPrePing`` are kept, and the loader warns when they ask for something the
/// pool does not do).
public struct ConnectionConfig: Sendable, Hashable {
    /// The plugin type: `sqlite`, `postgresql`, `mysql`, `mariadb`, `mssql`, `oracle`, `odbc`, or a custom one.
    ///
    /// The loader writes it in lower case and reads the original's `postgres` as `postgresql`.
    public var type: String
    /// The database server's host name or address.
    public var host: String?
    /// The server's TCP port (nil: the driver's usual port; ``ConfigLimits/port``).
    public var port: Int?
    /// Database name (for SQLite: the database file's path).
    public var database: String?
    /// The user to log in as.
    public var username: String?
    /// The password (printed as `***`).
    public var password: Secret?
    /// The connection's default schema; the catalog table is looked up in it when the table sets no schema of its own.
    public var schema: String?
    /// The connection's character set (MySQL and MariaDB).
    public var charset: String?
    /// Connections per pool (default 4; ``ConfigLimits/poolSize``).
    public var poolSize: Int
    /// Seconds after which a pooled connection is replaced; -1 (the default) means never, as in SQLAlchemy
    /// (``ConfigLimits/poolRecycleSeconds``).
    public var poolRecycleSeconds: Double
    /// Whether a pooled connection is tested before each use (default false).
    public var poolPrePing: Bool
    /// Driver-specific options, passed through as text (a number or boolean in the config becomes its text).
    public var driverOptions: [String: String]
    /// For a driver that reaches many databases (ODBC): which database's SQL to speak
    /// (`postgres`, `mysql`, `mssql`, `oracle`, `sqlite`; checked by the plugin).
    public var dialect: String? = nil
    /// The plugin's own keys (`driver_options`, `dialect`) as its configuration type read them
    /// when the file was loaded; nil for a connection built in code (the plugin then reads
    /// ``driverOptions`` and ``dialect`` with the same parser).
    public var settings: PluginSettings? = nil

    /// Creates a connection config.
    public init(
        type: String, host: String? = nil, port: Int? = nil, database: String? = nil, username: String? = nil,
        password: Secret? = nil, schema: String? = nil, charset: String? = nil, poolSize: Int = 4,
        driverOptions: [String: String] = [:], poolRecycleSeconds: Double = ConfigLimits.poolRecycleNever,
        poolPrePing: Bool = false
    ) {
        self.type = type
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.password = password
        self.schema = schema
        self.charset = charset
        self.poolSize = poolSize
        self.poolRecycleSeconds = poolRecycleSeconds
        self.poolPrePing = poolPrePing
        self.driverOptions = driverOptions
    }
}

/// One column copied into each entry's META: the key it is stored under and the catalog column it is read from.
public struct MetadataColumn: Sendable, Hashable {
    /// The META key.
    public var key: String
    /// The catalog column.
    public var column: String
    /// Creates a metadata column; `key` and `column` may differ (`document_type: doc_type`).
    public init(key: String, column: String) {
        self.key = key
        self.column = column
    }
    /// A column stored under its own name.
    public init(_ column: String) {
        self.init(key: column, column: column)
    }
}

/// Which catalog columns hold what (the original `columns:` block plus DES's own columns).
public struct ColumnMapping: Sendable, Hashable {
    /// The primary key.
    public var id: String = "id"
    /// The body's bucket, when it varies per row.
    public var s3Bucket: String? = nil
    /// The body as the catalog recorded it (``BodyLocation/stamp``), for a catalog DES keeps
    /// itself (the filesystem source's `stamp`); no config key sets it.
    public var bodyStamp: String? = nil
    /// Where the body is: an object key, or a path under the bodies' root.
    public var s3Key: String = "s3_key"
    /// The body's size in bytes (checked against the body when given).
    public var sizeBytes: String? = nil
    /// The status column DES moves through pending, claimed, packed and failed.
    public var status: String = "des_status"
    /// When the file was created: copied into each entry's META as `created_at`, ISO 8601 UTC.
    public var createdAt: String? = nil
    /// What is copied into each entry's META, in this order: META key and column
    /// (`metadata_columns` as a mapping `meta_key: column`, or a list where each key is its column).
    public var metadata: [MetadataColumn] = []
    /// The catalog columns of ``metadata``, in order; setting it stores each column under its own name.
    public var metadataColumns: [String] {
        get { metadata.map(\.column) }
        set { metadata = newValue.map(MetadataColumn.init) }
    }
    /// The DES name column.
    public var desName: String = "des_name"
    /// Where the name's hash is stored (nil: not stored).
    public var desHash: String? = nil
    /// Where the container's key is stored once packed.
    public var desContainer: String = "des_container"
    /// Who claimed the row.
    public var claimedBy: String = "des_claimed_by"
    /// When the row was claimed (database time).
    public var claimedAt: String = "des_claimed_at"
    /// Why the row failed.
    public var error: String = "des_error"
    /// When the row was packed (database time), written only where the table has the column.
    public var packedAt: String = "des_packed_at"
    /// When the row's body was deleted by the retire worker (database time), written only where
    /// the table has the column.
    public var sourceDeletedAt: String = "des_source_deleted_at"
    /// Creates the default mapping.
    public init() {}
}

/// The catalog table of a source (the original `table:` block).
public struct TableConfig: Sendable, Hashable {
    /// The catalog table.
    public var name: String
    /// The table's schema (nil: the connection's default schema).
    public var schema: String?
    /// Which column holds what.
    public var columns: ColumnMapping
    /// Extra SQL condition (without `WHERE`), kept exactly as written: it is trusted, since it comes from the config.
    public var whereClause: String?
    /// Status of rows that need a name (nil: rows whose name column is NULL, whatever their status).
    public var statusNewValue: String?
    /// Status of rows ready to pack.
    public var statusPendingValue: String
    /// Status a packer sets on the rows it claims.
    public var statusClaimedValue: String
    /// Status of rows stored in an uploaded container.
    public var statusPackedValue: String
    /// Status of rows that could not be packed.
    public var statusFailedValue: String
    /// The column the marker writes each row's shard number into (DES routes by the hash of the DES name).
    public var shardKeyColumn: String
    /// Status the retire worker sets on a packed row once its body is deleted.
    public var statusSourceDeletedValue: String = "DES_SOURCE_DELETED"
    /// Status of a packed row whose file was deleted (`des delete`, retention).
    public var statusDeletedValue: String = "DES_DELETED"

    /// Creates a table config with the defaults.
    public init(
        name: String, schema: String? = nil, columns: ColumnMapping = ColumnMapping(), whereClause: String? = nil,
        statusNewValue: String? = nil, statusPendingValue: String = "DES_TODO", statusClaimedValue: String = "DES_CLAIMED",
        statusPackedValue: String = "DES_PACKED", statusFailedValue: String = "DES_FAILED",
        shardKeyColumn: String = "des_shard"
    ) {
        self.name = name
        self.schema = schema
        self.columns = columns
        self.whereClause = whereClause
        self.statusNewValue = statusNewValue
        self.statusPendingValue = statusPendingValue
        self.statusClaimedValue = statusClaimedValue
        self.statusPackedValue = statusPackedValue
        self.statusFailedValue = statusFailedValue
        self.shardKeyColumn = shardKeyColumn
    }
}

/// Where a source's file bodies are read from: the `bodies:` section, read by the body-fetcher
/// plugin its `type` names.
public struct BodiesConfig: Sendable, Hashable {
    /// The body-fetcher plugin (`local` by default; `s3`, or a custom one).
    public var type: String
    /// The section as the plugin's configuration type read it (nil: built in code; the plugin
    /// then reads an empty section, its defaults).
    public var settings: PluginSettings?
    /// Creates a bodies config.
    public init(type: String = "local", settings: PluginSettings? = nil) {
        self.type = type
        self.settings = settings
    }

    /// `delete_after_pack`: how long after its container is uploaded a packed row's body may be
    /// deleted by `des retire` (0: as soon as it is safe). Nil: bodies are never deleted.
    public var deleteAfterPack: Double?

    /// The directory bodies are files under, when the plugin keeps them so (`des sample` writes there).
    public var directory: String? {
        (settings?.base as? any DirectoryBodiesConfiguration)?.directory
    }

    /// ``directory`` (else the config file's directory), a relative one resolved against `base`.
    public func directory(resolvedAgainst base: String) -> String {
        let root = directory ?? "."
        return root.hasPrefix("/") ? root : (base as NSString).appendingPathComponent(root)
    }
}

/// One upstream catalog (an item of `sources:`).
public struct SourceConfig: Sendable, Hashable {
    /// The source's name (ASCII letters, digits, `_` and `-`; unique).
    public var name: String
    /// Whether the source is packed (default true).
    public var enabled: Bool
    /// How to reach its database.
    public var connection: ConnectionConfig
    /// Its catalog table.
    public var table: TableConfig
    /// Where its file bodies are read from.
    public var bodies: BodiesConfig
    /// Rows the packer claims from this source per round trip (nil: `packer.batch_size`;
    /// ``ConfigLimits/sourceBatchSize``).
    public var batchSize: Int?
    /// A claim of this source held longer than this many seconds is stale
    /// (nil: `packer.claim_timeout_seconds`; ``ConfigLimits/claimTimeoutSeconds``).
    public var claimTimeoutSeconds: Double?
    /// Shard bits (must match the packer's; default the packer's).
    public var shardBits: Int?
    /// `retention`: files whose name's day is older than this many seconds are deleted by
    /// `des expire` (nil: kept forever).
    public var retentionSeconds: Double?

    /// Creates a source config.
    public init(
        name: String, enabled: Bool = true, connection: ConnectionConfig, table: TableConfig,
        bodies: BodiesConfig = BodiesConfig(), batchSize: Int? = nil, shardBits: Int? = nil,
        claimTimeoutSeconds: Double? = nil
    ) {
        self.name = name
        self.enabled = enabled
        self.connection = connection
        self.table = table
        self.bodies = bodies
        self.batchSize = batchSize
        self.claimTimeoutSeconds = claimTimeoutSeconds
        self.shardBits = shardBits
    }

    /// Seconds after which a claim of this source is stale: its own `claim_timeout_seconds`, or the packer's.
    public func effectiveClaimTimeoutSeconds(packer: PackerConfig) -> Double {
        claimTimeoutSeconds ?? packer.claimTimeoutSeconds
    }
}
