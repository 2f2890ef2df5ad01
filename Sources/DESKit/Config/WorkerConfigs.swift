import Foundation

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
    /// Stable identity of this packer (default: the host name plus the pod index); see ``podNameProblem(_:)``.
    public var podName: String? = nil

    /// The longest pod name, in UTF-8 bytes: it names a directory under `work_dir` and is kept with every lease.
    public static let maxPodNameBytes = 128

    /// What is wrong with `name` as a pod name (nil when nothing): empty, longer than
    /// ``maxPodNameBytes``, or holding a control character or a `/`.
    public static func podNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.utf8.count > maxPodNameBytes { return "is \(name.utf8.count) bytes long; a pod name has at most \(maxPodNameBytes)" }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "/" }) {
            return "may not hold a control character or '/'"
        }
        return nil
    }
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
    /// Bytes of bodies, read whole and checked, that `des serve` keeps in memory to answer the
    /// same file again without reading or hashing it (default 64 MiB; 0: none;
    /// ``ConfigLimits/bodyCacheBytes``). A body larger than an eighth of this is not kept.
    public var bodyCacheBytes: UInt64 = 64 << 20
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
    /// TLS (`server.tls`): nil serves plain HTTP.
    public var tls: ServerTLSConfig? = nil
    /// JSON Web Tokens of an identity provider accepted beside the static tokens (`server.jwt`).
    public var jwt: ServerJWTConfig? = nil
    /// Creates the defaults.
    public init() {}
}

/// `server.tls`: the service speaks TLS 1.2 or 1.3 only, with this certificate; with a client CA,
/// it also asks every client for a certificate that CA signed (mutual TLS) and refuses the
/// connection without one. Paths are relative to the config file's directory.
public struct ServerTLSConfig: Sendable, Hashable {
    /// The PEM certificate chain, the server's own first.
    public var certificate: String
    /// The PEM private key of that certificate.
    public var key: String
    /// PEM certificates of the CAs whose client certificates are accepted (nil: clients are not asked).
    public var clientCA: String?
    /// A TLS config.
    public init(certificate: String, key: String, clientCA: String? = nil) {
        self.certificate = certificate
        self.key = key
        self.clientCA = clientCA
    }
}

/// `server.jwt`: bearer tokens that are JSON Web Tokens (RFC 7519) signed by an identity
/// provider, accepted beside `server.auth_tokens`. A token is accepted when its signature
/// verifies with one of the keys (RS256/384/512, ES256/384, or HS256/384/512 with a JWKS `oct`
/// key), it is within its `exp` and `nbf` (give or take the leeway), its `aud` names the
/// audience and, when set, its `iss` is the issuer. Such a token may read (`GET`/`HEAD /files`);
/// it may also write (`/assign`, `DELETE /files`) when its `scope` (space-separated) or `scp`
/// (a list) holds the write scope. Paths are relative to the config file's directory; the
/// keys are read again on SIGHUP.
public struct ServerJWTConfig: Sendable, Hashable {
    /// A JWKS file (RFC 7517): `{"keys": [...]}`, as an identity provider publishes it.
    public var jwksFile: String?
    /// PEM public keys (RSA or EC), for providers that hand out PEM.
    public var publicKeys: [String]
    /// The audience every token's `aud` must name.
    public var audience: String
    /// The issuer every token's `iss` must be (nil: not checked).
    public var issuer: String?
    /// The scope that allows writes (default `des:write`).
    public var writeScope: String
    /// Clock skew allowed on `exp` and `nbf`, in seconds (default 30).
    public var leewaySeconds: Double
    /// The signature algorithms accepted (default: all the ones DES verifies).
    public var algorithms: [String]

    /// Every algorithm DES verifies.
    public static let supportedAlgorithms = ["RS256", "RS384", "RS512", "ES256", "ES384", "HS256", "HS384", "HS512"]

    /// A JWT config.
    public init(
        jwksFile: String? = nil, publicKeys: [String] = [], audience: String, issuer: String? = nil, writeScope: String = "des:write",
        leewaySeconds: Double = 30, algorithms: [String] = ServerJWTConfig.supportedAlgorithms
    ) {
        self.jwksFile = jwksFile
        self.publicKeys = publicKeys
        self.audience = audience
        self.issuer = issuer
        self.writeScope = writeScope
        self.leewaySeconds = leewaySeconds
        self.algorithms = algorithms
    }
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
