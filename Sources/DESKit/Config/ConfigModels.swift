import Foundation

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

/// `compaction:` — when `des compact` rewrites containers, and how long it keeps the old ones.
public struct CompactionConfig: Sendable, Hashable {
    /// A container whose deleted bytes reach this share of its bytes is rewritten.
    public var garbageRatio: Double = 0.3
    /// Uploaded containers of one (day, shard) smaller than this are merged (two or more).
    public var smallContainerBytes: UInt64 = 64 << 20
    /// How long a replaced container's object stays readable before it is deleted. It must
    /// exceed the index-cache TTL, the servers' container refresh and the longest request.
    public var graceSeconds: Double = 86_400
    /// The compaction lease's time to live (renewed while a shard is compacted).
    public var leaseTTLSeconds: Double = 60
    /// How many shards one compactor compacts at once (each group writes with two threads and
    /// holds its old and new containers in the work directory). Four keep two cores busy
    /// through each group's single-threaded steps (opening the old indexes, the tombstone
    /// lookups, the upload and its sync).
    public var concurrency = 4
    /// Creates the defaults.
    public init() {}
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

/// Where containers are stored: the `storage:` section, read by the storage plugin its `type` names.
public struct StorageConfig: Sendable, Hashable {
    /// The storage plugin: `local` (default), `s3`, or a custom one.
    public var type: String = "local"
    /// Key prefix of every container (`{prefix}/{YYYY-MM-DD}/shard_{NN}….des`): DES's own key.
    public var prefix: String = "des"
    /// The section as the plugin's configuration type read it (nil: built in code; the plugin
    /// then reads an empty section, its defaults).
    public var settings: PluginSettings? = nil
    /// Creates the default (local) storage config.
    public init() {}

    /// The key health checks `HEAD` (it need not exist): under the prefix, so that a bucket
    /// policy scoped to the prefix allows it.
    public var healthProbeKey: String { prefix + "/.des-health" }
}

/// Where leases, containers and dead letters are kept.
public struct MetadataConfig: Sendable, Hashable {
    /// The connection (type `sqlite` or `postgresql`).
    public var connection: ConnectionConfig = ConnectionConfig(type: "sqlite", database: "./des-data/metadata.sqlite")
    /// Creates the default (SQLite) metadata config.
    public init() {}
}

/// How a packer takes rows of the shards it leases (`packer.claim_mode`).
public enum ClaimMode: String, Sendable, Hashable, CaseIterable {
    /// Each row is claimed (status, claimer, claim time written), then marked packed: two
    /// catalog writes a row, and the claimed status is visible to other consumers of the table.
    case row
    /// The shard's fenced lease is the claim: pending rows are read with a keyset read and no
    /// write, each container's rows are recorded as its manifest in the metadata store, and
    /// marked packed in one statement per container: one catalog write a row.
    case lease
}

/// Packer settings.
///
/// The loader keeps every number within its range in ``ConfigLimits``.
public struct PackerConfig: Sendable, Hashable {
    /// How rows are taken (default `row`).
    public var claimMode: ClaimMode = .row
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
    /// A file at least this large is stored beside the containers, at
    /// `{prefix}/_bigFiles/{name}`, its entry marked external (``ConfigLimits/bigFileThreshold``).
    public var bigFileThreshold: UInt64 = 100 << 20
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
    /// On SIGTERM or SIGINT, how long the packer may take to finish and upload what it holds
    /// (``ConfigLimits/packerDrainSeconds``). Past it, what it holds is recovered — rows back to
    /// pending, its leases given back — and the process exits (75), even while a fetch hangs.
    public var drainSeconds: Double = 60
    /// A claim older than this is stale (``ConfigLimits/claimTimeoutSeconds``).
    public var claimTimeoutSeconds: Double = 600
    /// The pause when there is nothing to pack (``ConfigLimits/idleSleepSeconds``).
    public var idleSleepSeconds: Double = 1
    /// Creates the defaults.
    public init() {}
}

/// Marker settings (the original's MarkerConfig).
///
/// The loader keeps every number within its range in ``ConfigLimits``.
public struct MarkerConfig: Sendable, Hashable {
    /// Rows named per update (``ConfigLimits/markerBatchSize``).
    public var batchSize: Int = 200
    /// Marker workers at once (default 2), each taking batches from every source in turn: a
    /// database runs each transaction on one core, so two in flight keep two busy. Safe at any
    /// value: rows are locked and skipped (`FOR UPDATE SKIP LOCKED`, `READPAST`), or
    /// transactions serialised (SQLite).
    public var concurrency: Int = 2
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

/// The index cache: the `cache:` section, read by the cache plugin its `type` names.
public struct CacheConfig: Sendable, Hashable {
    /// `memory` (default), `none`, or any type a cache plugin registers (`redis`).
    public var type: String = "memory"
    /// The section as the plugin's configuration type read it (nil: built in code; the plugin
    /// then reads an empty section, its defaults).
    public var settings: PluginSettings? = nil
    /// Creates the defaults.
    public init() {}
}

/// The HTTP service's settings (the `server:` section; `des serve`, and the
/// `--metrics-port` listeners of the workers).
public struct ServerConfig: Sendable, Hashable {
    /// The address to listen on (default `127.0.0.1`).
    public var host: String = "127.0.0.1"
    /// The port to listen on (default 8080; ``ConfigLimits/port``).
    public var port: Int = 8080
    /// The Snowflake node of the names `/assign` gives (default 1; the marker's default is 0).
    /// Two processes giving names at the same time need different nodes.
    public var nodeID: Int = 1
    /// Bearer tokens accepted on `/assign` and `/files` (none: no authentication). The
    /// environment variable `DES_SERVER_TOKENS` (comma-separated) adds more.
    public var authTokens: [Secret] = []
    /// The largest request body accepted, in bytes (default 64 KiB): larger gets 413.
    public var maxRequestBytes: Int = 64 << 10
    /// The most names one `/assign` request may ask for (default 10,000).
    public var maxAssignCount: Int = 10_000
    /// On SIGTERM, how long readiness answers 503 while requests are still served, so that
    /// a load balancer stops sending before the listener closes (default 5 s).
    public var drainSeconds: Double = 5
    /// The most one dependency's readiness check may take (default 2 s).
    public var readyTimeoutSeconds: Double = 2
    /// How stale the list of a (day, shard)'s containers may be before a name it does not
    /// hold makes the server ask the metadata store again (default 1 s).
    public var containerRefreshSeconds: Double = 1
    /// How often a server asks the metadata store for new deletes (tombstones): a deleted file
    /// stops being served within this (plus the query's time).
    public var tombstonePollSeconds: Double = 0.5
    /// Bodies up to this many bytes are read whole and their sha256 checked against META before
    /// the status line goes out (default 1 MiB; ``ConfigLimits/verifyMaxBytes``). Larger ones are
    /// checked as they stream, and a mismatch cuts the connection short of `Content-Length`.
    public var verifyMaxBytes: UInt64 = 1 << 20
    /// The most a client may take to send a request's head, from its first byte (or from
    /// connecting) to the blank line (default 10 s; ``ConfigLimits/headerTimeoutSeconds``).
    public var headerTimeoutSeconds: Double = 10
    /// How long a kept-alive connection may wait for its next request (default 75 s;
    /// ``ConfigLimits/idleTimeoutSeconds``).
    public var idleTimeoutSeconds: Double = 75
    /// The most client connections open at once (default 10,000, and never more than the
    /// descriptor limit leaves room for; ``ConfigLimits/maxConnections``). At the limit, the
    /// longest-idle connection is closed to make room.
    public var maxConnections: Int = 10_000
    /// Creates the defaults.
    public init() {}
}

/// The `events:` section: how followers read the metadata store's outbox of events (servers,
/// `des relay`), how many events it keeps, and where `des relay` publishes them.
public struct EventsConfig: Sendable, Hashable {
    /// How long a follower waits for the store's wake-up (PostgreSQL `LISTEN`) before reading
    /// the outbox anyway; stores without wake-ups are read this often (default 0.25 s).
    public var pollSeconds: Double = 0.25
    /// How long a missing event number is waited for before it is taken as never committed (default 10 s).
    public var gapSeconds: Double = 10
    /// How many events the outbox keeps, the newest (default 100,000): a follower further
    /// behind starts again from what is kept (a server drops its caches).
    public var retain: Int = 100_000
    /// While a server follows the events, how stale its list of a (day, shard)'s containers may
    /// be before a name it does not hold makes it ask the store again anyway (default 60 s;
    /// `server.container_refresh_seconds` applies while it does not follow them).
    public var fallbackRefreshSeconds: Double = 60
    /// Whether servers follow the events (default true); false: they learn of new containers
    /// and deletes only by their polls (`server.container_refresh_seconds`, `server.tombstone_poll_seconds`).
    public var follow = true
    /// Where `des relay` publishes (`events.publish.type`, e.g. `redis`); nil: nowhere.
    public var publish: EventSinkConfig? = nil
    /// Creates the defaults.
    public init() {}
}

/// `events.publish:`, read by the event sink plugin its `type` names.
public struct EventSinkConfig: Sendable, Hashable {
    /// The sink's plugin type (`redis`).
    public var type: String
    /// The section as the plugin's configuration type read it (nil: built in code).
    public var settings: PluginSettings?
    /// A sink of `type`.
    public init(type: String, settings: PluginSettings? = nil) {
        self.type = type
        self.settings = settings
    }
}

/// A whole DES configuration file.
public struct DESConfig: Sendable, Hashable {
    /// The upstream catalogs.
    public var sources: [SourceConfig] = []
    /// Where containers are stored.
    public var storage = StorageConfig()
    /// DES's own database.
    public var metadata = MetadataConfig()
    /// Packer settings.
    public var packer = PackerConfig()
    /// Marker settings.
    public var marker = MarkerConfig()
    /// Index cache settings.
    public var cache = CacheConfig()
    /// HTTP server settings.
    public var server = ServerConfig()
    /// `compaction:`, read by `des compact`.
    public var compaction = CompactionConfig()
    /// `events:`, read by `des serve` and `des relay` (and the metadata store's retention).
    public var events = EventsConfig()
    /// The file it was read from, if any.
    public var path: String? = nil
    /// Keys the loader accepted but DES does not honour (yet), in document order;
    /// `des config check` prints them. Empty for a config built in code.
    public var warnings: [ConfigWarning] = []
    /// Creates an empty configuration with every default.
    public init() {}

    /// The enabled sources.
    public var enabledSources: [SourceConfig] { sources.filter(\.enabled) }
}
