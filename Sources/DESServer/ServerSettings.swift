import DESEngine
import DESKit
import Foundation

/// The HTTP service's settings: the `server:` section of the config, with the
/// command line's host and port and the tokens of `DES_SERVER_TOKENS` applied.
public struct ServerSettings: Sendable {
    /// The address to listen on.
    public var host: String
    /// The port to listen on (0: any free port; the bound one is passed to `onRunning`).
    public var port: Int
    /// The Snowflake node of the names `/assign` gives.
    public var nodeID: Int
    /// The prefix `/assign` uses when a request names none.
    public var defaultPrefix: String
    /// Bearer tokens accepted on `/assign` and `/files` (empty: no authentication).
    public var tokens: [Secret]
    /// The largest request body accepted, in bytes.
    public var maxRequestBytes: Int
    /// The most names one `/assign` may ask for.
    public var maxAssignCount: Int
    /// Seconds readiness answers 503 before the listener closes, on shutdown.
    public var drainSeconds: Double
    /// The most one readiness check may take.
    public var readyTimeoutSeconds: Double
    /// How stale a (day, shard)'s container list may be before a miss asks again.
    public var containerRefreshSeconds: Double
    /// How often deletes are polled (`server.tombstone_poll_seconds`).
    public var tombstonePollSeconds: Double
    /// Whether `/files` follows the metadata store's events (default true): new containers and
    /// deletes reach the server as they commit, and the polls above become fallbacks.
    public var followEvents: Bool = true
    /// How the events are followed (`events.poll_seconds`, `events.gap_seconds`).
    public var events = EventFollower.Settings()
    /// While the events are followed, how stale a container list may be (`events.fallback_refresh_seconds`).
    public var fallbackRefreshSeconds: Double = 60
    /// Names whose location (container, entry, META) is remembered, so that a warm read is one ranged read.
    public var locatedCacheEntries: Int = 100_000
    /// Bodies up to this many bytes are read whole and checked against their META sha256 before
    /// the answer starts; larger ones are checked as they stream (`server.verify_max_bytes`).
    public var verifyMaxBytes: UInt64
    /// The most a client may take to send a request's head (`server.header_timeout`).
    public var headerTimeoutSeconds: Double
    /// How long a kept-alive connection may wait for its next request (`server.idle_timeout`).
    public var idleTimeoutSeconds: Double
    /// The most client connections open at once (`server.max_connections`), before the
    /// descriptor limit is applied (see ``ConnectionGuard/effectiveLimit(configured:)``).
    public var maxConnections: Int

    /// Settings from a config's `server:` section (and `marker.name_prefix` as the default prefix).
    /// `environment` adds the comma-separated tokens of `DES_SERVER_TOKENS`.
    public init(config: DESConfig, environment: [String: String] = ProcessInfo.processInfo.environment) {
        let s = config.server
        host = s.host
        port = s.port
        nodeID = s.nodeID
        defaultPrefix = config.marker.namePrefix
        var tokens = s.authTokens
        if let extra = environment["DES_SERVER_TOKENS"] {
            tokens += extra.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { Secret($0) }
        }
        self.tokens = tokens
        maxRequestBytes = s.maxRequestBytes
        maxAssignCount = s.maxAssignCount
        drainSeconds = s.drainSeconds
        readyTimeoutSeconds = s.readyTimeoutSeconds
        containerRefreshSeconds = s.containerRefreshSeconds
        tombstonePollSeconds = s.tombstonePollSeconds
        verifyMaxBytes = s.verifyMaxBytes
        headerTimeoutSeconds = s.headerTimeoutSeconds
        idleTimeoutSeconds = s.idleTimeoutSeconds
        maxConnections = s.maxConnections
        followEvents = config.events.follow
        events = EventFollower.Settings(config.events)
        fallbackRefreshSeconds = config.events.fallbackRefreshSeconds
    }
}
