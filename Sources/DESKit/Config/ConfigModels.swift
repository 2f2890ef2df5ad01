/// A secret from the config (a password, a key): printed and logged as `***`.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself. Never log it.
    public let value: String
    /// Wraps a secret.
    public init(_ value: String) { self.value = value }
    public var description: String { value.isEmpty ? "" : "***" }
    public var debugDescription: String { description }
}

/// How to reach a database (the original `connection:` block).
public struct ConnectionConfig: Sendable, Hashable {
    /// The plugin type: `sqlite`, `postgresql`, `mysql`, `mariadb`, `mssql`, `oracle`, `odbc`, or a custom one.
    public var type: String
    public var host: String?
    public var port: Int?
    /// Database name (for SQLite: the database file's path).
    public var database: String?
    public var username: String?
    public var password: Secret?
    public var schema: String?
    public var charset: String?
    /// Connections per pool (default 4; ``ConfigLimits/poolSize``).
    public var poolSize: Int
    /// Driver-specific options, passed through.
    public var driverOptions: [String: String]

    /// Creates a connection config.
    public init(
        type: String, host: String? = nil, port: Int? = nil, database: String? = nil, username: String? = nil,
        password: Secret? = nil, schema: String? = nil, charset: String? = nil, poolSize: Int = 4,
        driverOptions: [String: String] = [:]
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
        self.driverOptions = driverOptions
    }
}

/// Which catalog columns hold what (the original `columns:` block plus DES's own columns).
public struct ColumnMapping: Sendable, Hashable {
    public var id: String = "id"
    public var s3Bucket: String? = nil
    public var s3Key: String = "s3_key"
    public var sizeBytes: String? = nil
    public var status: String = "des_status"
    public var createdAt: String? = nil
    /// Columns copied into each entry's META, in this order.
    public var metadataColumns: [String] = []
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
    /// Creates the default mapping.
    public init() {}
}

/// The catalog table of a source (the original `table:` block).
public struct TableConfig: Sendable, Hashable {
    public var name: String
    public var schema: String?
    public var columns: ColumnMapping
    /// Extra SQL condition, trusted from the config (not user input).
    public var whereClause: String?
    /// Status of rows that need a name (nil: rows whose name column is NULL, whatever their status).
    public var statusNewValue: String?
    public var statusPendingValue: String
    public var statusClaimedValue: String
    public var statusPackedValue: String
    public var statusFailedValue: String
    /// The column holding the shard number.
    public var shardKeyColumn: String

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

/// Where a source's file bodies are read from.
public struct BodiesConfig: Sendable, Hashable {
    /// `local` (keys are paths under `root`) or `s3` (keys are objects in the row's bucket).
    public var type: String
    /// For `local`: the directory keys are relative to.
    public var root: String?
    /// Whether the catalog may name bodies by absolute path (default false):
    /// absolute body paths in the catalog are refused unless this is true.
    public var allowAbsolute: Bool
    /// Creates a bodies config.
    public init(type: String = "local", root: String? = nil, allowAbsolute: Bool = false) {
        self.type = type
        self.root = root
        self.allowAbsolute = allowAbsolute
    }
}

/// One upstream catalog (an item of `sources:`).
public struct SourceConfig: Sendable, Hashable {
    public var name: String
    public var enabled: Bool
    public var connection: ConnectionConfig
    public var table: TableConfig
    public var bodies: BodiesConfig
    /// Rows per claim (default 100; ``ConfigLimits/sourceBatchSize``).
    public var batchSize: Int
    /// Shard bits (must match the packer's; default the packer's).
    public var shardBits: Int?

    /// Creates a source config.
    public init(
        name: String, enabled: Bool = true, connection: ConnectionConfig, table: TableConfig,
        bodies: BodiesConfig = BodiesConfig(), batchSize: Int = 100, shardBits: Int? = nil
    ) {
        self.name = name
        self.enabled = enabled
        self.connection = connection
        self.table = table
        self.bodies = bodies
        self.batchSize = batchSize
        self.shardBits = shardBits
    }
}

/// Where containers are stored.
public struct StorageConfig: Sendable, Hashable {
    /// `local` or `s3`.
    public var type: String = "local"
    /// For `local`: the directory holding the objects.
    public var root: String? = "./des-data/archive"
    /// Key prefix of every container (`{prefix}/{YYYY-MM-DD}/shard_{NN}….des`).
    public var prefix: String = "des"
    public var bucket: String? = nil
    public var endpoint: String? = nil
    public var region: String? = nil
    public var accessKey: String? = nil
    public var secretKey: Secret? = nil
    /// Creates the default (local) storage config.
    public init() {}
}

/// Where leases, containers and dead letters are kept.
public struct MetadataConfig: Sendable, Hashable {
    /// The connection (type `sqlite` or `postgresql`).
    public var connection: ConnectionConfig = ConnectionConfig(type: "sqlite", database: "./des-data/metadata.sqlite")
    /// Creates the default (SQLite) metadata config.
    public init() {}
}

/// Packer settings.
///
/// The loader keeps every number within its range in ``ConfigLimits``.
public struct PackerConfig: Sendable, Hashable {
    /// Where open containers are written before upload.
    public var workDir: String = "./des-data/work"
    /// Shards are `2^shardBits` (``ConfigLimits/shardBits``).
    public var shardBits: Int = 8
    /// This packer's place among `podCount` packers (``ConfigLimits/podIndex``; less than `podCount`).
    public var podIndex: Int = 0
    /// Packers sharing the shards (``ConfigLimits/podCount``).
    public var podCount: Int = 1
    /// Stable identity of this packer (default: the host name plus the pod index).
    public var podName: String? = nil
    /// Rows claimed per round trip (``ConfigLimits/packerBatchSize``).
    public var batchSize: Int = 500
    /// Bodies fetched at once (``ConfigLimits/fetchConcurrency``).
    public var fetchConcurrency: Int = 8
    /// A container is finalized at this size (``ConfigLimits/maxContainerBytes``).
    public var maxContainerBytes: UInt64 = 1 << 30
    /// … or with this many files (``ConfigLimits/maxContainerFiles``).
    public var maxContainerFiles: Int = 100_000
    /// … or at this age, in seconds (``ConfigLimits/maxContainerAgeSeconds``).
    public var maxContainerAgeSeconds: Double = 300
    /// Progress is checkpointed after this many files (``ConfigLimits/checkpointEveryFiles``).
    public var checkpointEveryFiles: Int = 1000
    /// … or after this many seconds (``ConfigLimits/checkpointEverySeconds``).
    public var checkpointEverySeconds: Double = 5
    /// A shard lease lapses this long after its last heartbeat (``ConfigLimits/leaseTTLSeconds``).
    public var leaseTTLSeconds: Double = 30
    /// Seconds between lease renewals (``ConfigLimits/heartbeatSeconds``; less than `leaseTTLSeconds`).
    public var heartbeatSeconds: Double = 10
    /// A claim older than this is stale (``ConfigLimits/claimTimeoutSeconds``).
    public var claimTimeoutSeconds: Double = 600
    /// The pause when there is nothing to pack (``ConfigLimits/idleSleepSeconds``).
    public var idleSleepSeconds: Double = 1
    /// Creates the defaults.
    public init() {}
}

/// Marker settings (seed 002's MarkerConfig).
///
/// The loader keeps every number within its range in ``ConfigLimits``.
public struct MarkerConfig: Sendable, Hashable {
    /// Rows named per update (``ConfigLimits/markerBatchSize``).
    public var batchSize: Int = 200
    /// Rows per second (0: unlimited; ``ConfigLimits/rateLimitPerSecond``).
    public var rateLimitPerSecond: Double = 0
    /// Retries of a failing batch (``ConfigLimits/maxRetries``).
    public var maxRetries: Int = 3
    /// The growth factor of the retry delay (``ConfigLimits/retryBackoffBase``).
    public var retryBackoffBase: Double = 2.0
    /// The pause between scans when idle, in seconds (``ConfigLimits/intervalSeconds``).
    public var intervalSeconds: Double = 5
    /// The Snowflake node of this marker (``ConfigLimits/nodeID``).
    public var nodeID: Int = 0
    /// The first part of every DES name (ASCII letters and digits).
    public var namePrefix: String = "DES"
    /// `snowflake` (default), `column` or `key_basename`.
    public var naming: String = "snowflake"
    public var enableDeadLetterQueue: Bool = true
    /// Creates the defaults.
    public init() {}
}

/// Index cache settings.
public struct CacheConfig: Sendable, Hashable {
    /// `memory`, `redis` or `none`.
    public var type: String = "memory"
    /// Indexes kept (``ConfigLimits/cacheMaxEntries``).
    public var maxEntries: Int = 1024
    /// Seconds an index is kept (nil: no expiry; ``ConfigLimits/cacheTTLSeconds``).
    public var ttlSeconds: Double? = 3600
    /// For `redis`: the server's URL.
    public var url: String? = nil
    /// Creates the defaults.
    public init() {}
}

/// The HTTP server's settings (the `server:` section; used by a later milestone).
public struct ServerConfig: Sendable, Hashable {
    /// The address to listen on (default `127.0.0.1`).
    public var host: String = "127.0.0.1"
    /// The port to listen on (default 8080; ``ConfigLimits/port``).
    public var port: Int = 8080
    /// Creates the defaults.
    public init() {}
}

/// A whole DES configuration file.
public struct DESConfig: Sendable, Hashable {
    public var sources: [SourceConfig] = []
    public var storage = StorageConfig()
    public var metadata = MetadataConfig()
    public var packer = PackerConfig()
    public var marker = MarkerConfig()
    public var cache = CacheConfig()
    public var server = ServerConfig()
    /// The file it was read from, if any.
    public var path: String? = nil
    /// Creates an empty configuration with every default.
    public init() {}

    /// The enabled sources.
    public var enabledSources: [SourceConfig] { sources.filter(\.enabled) }
}
