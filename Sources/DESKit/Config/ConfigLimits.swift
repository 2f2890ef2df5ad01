import DESNaming

/// The allowed range of every numeric key of a DES config file.
///
/// The loader checks each number against its range here and reports a value
/// outside it as a ``ConfigError`` with code ``ConfigError/Code/invalidValue``,
/// naming the file, line, key and range. Every default of the model structs
/// (``PackerConfig``, ``MarkerConfig``, ``CacheConfig``, ``ServerConfig``,
/// ``SourceConfig``, ``ConnectionConfig``) lies inside its range.
///
/// Durations are in seconds (`ClosedRange<Double>`), counts are `ClosedRange<Int>`,
/// sizes are bytes (`ClosedRange<UInt64>`). The bounds are chosen so that no value
/// the checker accepts can overflow a later conversion (to nanoseconds for a sleep,
/// for instance) and so that a typo of a few digits is caught.
public enum ConfigLimits {
    // MARK: Shared

    /// A TCP port (`server.port`, and `port` of every `connection:` block).
    public static let port: ClosedRange<Int> = 1...65_535
    /// `pool_size` of a `connection:` block: connections per pool.
    public static let poolSize: ClosedRange<Int> = 1...1_000
    /// `shard_bits` of the packer and of a source: 2 to 65,536 shards (``ShardAssignment/shardBitsRange``).
    public static let shardBits: ClosedRange<Int> = ShardAssignment.shardBitsRange
    /// `pool_recycle` of a `connection:` block: seconds before a pooled connection is replaced,
    /// up to a day; ``poolRecycleNever`` (-1) means never, as in SQLAlchemy. Values between
    /// -1 and 0 are refused.
    public static let poolRecycleSeconds: ClosedRange<Double> = poolRecycleNever...day
    /// The `pool_recycle` value meaning "never recycle" (the only value below 0 allowed).
    public static let poolRecycleNever: Double = -1

    // MARK: sources[]

    /// `sources[].batch_size`: rows per claim.
    public static let sourceBatchSize: ClosedRange<Int> = 1...100_000

    // MARK: packer

    /// `packer.pod_count`: packers sharing the shards.
    public static let podCount: ClosedRange<Int> = 1...65_536
    /// `packer.pod_index`: this packer's place (also less than `pod_count`).
    public static let podIndex: ClosedRange<Int> = 0...(podCount.upperBound - 1)
    /// `packer.batch_size`: rows claimed per round trip.
    public static let packerBatchSize: ClosedRange<Int> = 1...100_000
    /// `packer.fetch_concurrency`: bodies downloaded at once.
    public static let fetchConcurrency: ClosedRange<Int> = 1...1_024
    /// `packer.max_container_bytes`: from 1 KiB to 5 TiB (the largest S3 object).
    public static let maxContainerBytes: ClosedRange<UInt64> = (1 << 10)...(5 << 40)
    /// `packer.big_file_threshold`: files at least this large are stored outside the containers.
    public static let bigFileThreshold: ClosedRange<UInt64> = (1 << 10)...(5 << 40)
    /// `packer.max_container_files`: files per container.
    public static let maxContainerFiles: ClosedRange<Int> = 1...10_000_000
    /// `packer.max_container_age_seconds`: from a second to a week.
    public static let maxContainerAgeSeconds: ClosedRange<Double> = 1...week
    /// `packer.checkpoint_every_files`.
    public static let checkpointEveryFiles: ClosedRange<Int> = 1...10_000_000
    /// `packer.checkpoint_every_seconds`: from a millisecond to a day.
    public static let checkpointEverySeconds: ClosedRange<Double> = 0.001...day
    /// `packer.lease_ttl_seconds`: from 0.1 s to an hour.
    public static let leaseTTLSeconds: ClosedRange<Double> = 0.1...3_600
    /// `packer.heartbeat_seconds`: from 0.05 s to half an hour (also less than `lease_ttl_seconds`,
    /// so each end of ``leaseTTLSeconds`` can be used).
    public static let heartbeatSeconds: ClosedRange<Double> = 0.05...1_800
    /// `packer.drain_seconds`: from a tenth of a second to an hour.
    public static let packerDrainSeconds: ClosedRange<Double> = 0.1...3_600
    /// `packer.claim_timeout_seconds` and `sources[].claim_timeout_seconds`: from a second to a week.
    public static let claimTimeoutSeconds: ClosedRange<Double> = 1...week
    /// `sources[].bodies.delete_after_pack`: from at once (when safe) to ten years.
    public static let deleteAfterPack: ClosedRange<Double> = 0...(3_660 * day)
    /// `compaction.garbage_ratio`: a share, above nothing and at most all.
    public static let garbageRatio: ClosedRange<Double> = 0.01...1
    /// `compaction.small_container_bytes`: from nothing (never merge) to 64 GiB.
    public static let smallContainerBytes: ClosedRange<UInt64> = 0...(64 << 30)
    /// `compaction.concurrency`: from one shard at a time to 64.
    public static let compactionConcurrency: ClosedRange<Int> = 1...64
    /// `compaction.grace`: from at once (one process, tests) to a year.
    public static let compactionGrace: ClosedRange<Double> = 0...(366 * day)
    /// `sources[].retention`: from a day to a hundred years (a file's age is the day in its name).
    public static let retention: ClosedRange<Double> = day...(36_600 * day)
    /// `packer.idle_sleep_seconds`: from no pause to an hour.
    public static let idleSleepSeconds: ClosedRange<Double> = 0...3_600

    // MARK: marker

    /// `marker.batch_size`: rows per update.
    public static let markerBatchSize: ClosedRange<Int> = 1...100_000
    /// `marker.concurrency`: batches in flight at once per source.
    public static let markerConcurrency: ClosedRange<Int> = 1...64
    /// `marker.rate_limit_per_second`: rows per second; 0 means unlimited.
    ///
    /// A value other than 0 must also be at least ``rateLimitSmallestNonZero``.
    public static let rateLimitPerSecond: ClosedRange<Double> = 0...10_000_000
    /// The smallest rate other than 0 (unlimited): slower rates would make the marker
    /// wait longer than it can sleep in one step.
    public static let rateLimitSmallestNonZero: Double = 0.001
    /// `marker.max_retries`: retries of a failing batch.
    public static let maxRetries: ClosedRange<Int> = 0...100
    /// `marker.retry_backoff_base`: the growth factor of the retry delay (the first delay is 0.05 s times it).
    public static let retryBackoffBase: ClosedRange<Double> = 0.001...60
    /// `marker.interval_seconds`: the pause between scans when idle, from a millisecond to a day.
    public static let intervalSeconds: ClosedRange<Double> = 0.001...day
    /// `marker.node_id`: the Snowflake node (8 bits).
    public static let nodeID: ClosedRange<Int> = 0...255

    // MARK: cache


    // MARK: server

    /// `server.max_request_bytes`: from 1 KiB to 16 MiB (requests carry JSON, never files).
    public static let maxRequestBytes: ClosedRange<Int> = 1_024...(16 << 20)
    /// `server.max_assign_count`: names one `/assign` may ask for.
    public static let maxAssignCount: ClosedRange<Int> = 1...1_000_000
    /// `server.jwt.leeway_seconds`: clock skew allowed on a token's `exp` and `nbf`, up to ten minutes.
    public static let jwtLeewaySeconds: ClosedRange<Double> = 0...600
    /// `server.drain_seconds`: up to ten minutes (0: stop at once).
    public static let drainSeconds: ClosedRange<Double> = 0...600
    /// `server.ready_timeout_seconds`: from 10 ms to a minute.
    public static let readyTimeoutSeconds: ClosedRange<Double> = 0.01...60
    /// `server.container_refresh_seconds`: up to an hour (0: ask on every miss).
    public static let containerRefreshSeconds: ClosedRange<Double> = 0...3_600
    /// `server.tombstone_poll_seconds`: from 50 ms to a minute (a deleted file is served until the next poll).
    public static let tombstonePollSeconds: ClosedRange<Double> = 0.05...60
    /// `server.verify_max_bytes`: bodies up to this size are read whole and checked before the
    /// answer starts; up to 256 MiB (each request in flight may hold that much). 0: none are.
    public static let verifyMaxBytes: ClosedRange<UInt64> = 0...(256 << 20)
    /// `server.body_cache_bytes`: checked bodies kept in memory, up to 64 GiB. 0: none are.
    public static let bodyCacheBytes: ClosedRange<UInt64> = 0...(64 << 30)
    /// `server.header_timeout`: from 0.1 s to ten minutes.
    public static let headerTimeoutSeconds: ClosedRange<Double> = 0.1...600
    /// `server.idle_timeout`: from 0.1 s to an hour.
    public static let idleTimeoutSeconds: ClosedRange<Double> = 0.1...3_600
    /// `server.max_connections`: open client connections (further capped by the descriptor limit).
    public static let maxConnections: ClosedRange<Int> = 1...1_000_000

    // MARK: Units

    /// Seconds in a day.
    public static let day: Double = 86_400
    /// Seconds in a week.
    public static let week: Double = 7 * day

    // MARK: The table

    /// The range of one key, by kind.
    public enum Bounds: Sendable, Hashable {
        /// An integer count.
        case count(ClosedRange<Int>)
        /// A duration in seconds.
        case seconds(ClosedRange<Double>)
        /// A plain number (a rate or a factor), with the unit named in errors (may be empty).
        case number(ClosedRange<Double>, unit: String)
        /// A size in bytes.
        case bytes(ClosedRange<UInt64>)
    }

    /// One numeric key and its range.
    public struct Entry: Sendable, Hashable {
        /// Where the key is, like `packer.batch_size`; `sources[]` stands for every source.
        public var keyPath: String
        /// Its range.
        public var bounds: Bounds
    }

    /// Every numeric key of the config, with its range, in the order of the documentation.
    public static let entries: [Entry] = [
        Entry(keyPath: "sources[].connection.port", bounds: .count(port)),
        Entry(keyPath: "sources[].connection.pool_size", bounds: .count(poolSize)),
        Entry(keyPath: "sources[].connection.pool_recycle", bounds: .seconds(poolRecycleSeconds)),
        Entry(keyPath: "sources[].batch_size", bounds: .count(sourceBatchSize)),
        Entry(keyPath: "sources[].claim_timeout_seconds", bounds: .seconds(claimTimeoutSeconds)),
        Entry(keyPath: "sources[].shard_bits", bounds: .count(shardBits)),
        Entry(keyPath: "sources[].bodies.delete_after_pack", bounds: .seconds(deleteAfterPack)),
        Entry(keyPath: "sources[].retention", bounds: .seconds(retention)),
        Entry(keyPath: "metadata.connection.port", bounds: .count(port)),
        Entry(keyPath: "metadata.connection.pool_size", bounds: .count(poolSize)),
        Entry(keyPath: "metadata.connection.pool_recycle", bounds: .seconds(poolRecycleSeconds)),
        Entry(keyPath: "packer.shard_bits", bounds: .count(shardBits)),
        Entry(keyPath: "packer.pod_index", bounds: .count(podIndex)),
        Entry(keyPath: "packer.pod_count", bounds: .count(podCount)),
        Entry(keyPath: "packer.batch_size", bounds: .count(packerBatchSize)),
        Entry(keyPath: "packer.fetch_concurrency", bounds: .count(fetchConcurrency)),
        Entry(keyPath: "packer.max_container_bytes", bounds: .bytes(maxContainerBytes)),
        Entry(keyPath: "packer.big_file_threshold", bounds: .bytes(bigFileThreshold)),
        Entry(keyPath: "packer.max_container_files", bounds: .count(maxContainerFiles)),
        Entry(keyPath: "packer.max_container_age_seconds", bounds: .seconds(maxContainerAgeSeconds)),
        Entry(keyPath: "packer.checkpoint_every_files", bounds: .count(checkpointEveryFiles)),
        Entry(keyPath: "packer.checkpoint_every_seconds", bounds: .seconds(checkpointEverySeconds)),
        Entry(keyPath: "packer.lease_ttl_seconds", bounds: .seconds(leaseTTLSeconds)),
        Entry(keyPath: "packer.heartbeat_seconds", bounds: .seconds(heartbeatSeconds)),
        Entry(keyPath: "packer.drain_seconds", bounds: .seconds(packerDrainSeconds)),
        Entry(keyPath: "packer.claim_timeout_seconds", bounds: .seconds(claimTimeoutSeconds)),
        Entry(keyPath: "packer.idle_sleep_seconds", bounds: .seconds(idleSleepSeconds)),
        Entry(keyPath: "marker.batch_size", bounds: .count(markerBatchSize)),
        Entry(keyPath: "marker.concurrency", bounds: .count(markerConcurrency)),
        Entry(keyPath: "marker.rate_limit_per_second", bounds: .number(rateLimitPerSecond, unit: rateUnit)),
        Entry(keyPath: "marker.max_retries", bounds: .count(maxRetries)),
        Entry(keyPath: "marker.retry_backoff_base", bounds: .number(retryBackoffBase, unit: "")),
        Entry(keyPath: "marker.interval_seconds", bounds: .seconds(intervalSeconds)),
        Entry(keyPath: "marker.node_id", bounds: .count(nodeID)),
        Entry(keyPath: "server.port", bounds: .count(port)),
        Entry(keyPath: "server.node_id", bounds: .count(nodeID)),
        Entry(keyPath: "server.max_request_bytes", bounds: .count(maxRequestBytes)),
        Entry(keyPath: "server.max_assign_count", bounds: .count(maxAssignCount)),
        Entry(keyPath: "server.drain_seconds", bounds: .seconds(drainSeconds)),
        Entry(keyPath: "server.ready_timeout_seconds", bounds: .seconds(readyTimeoutSeconds)),
        Entry(keyPath: "server.container_refresh_seconds", bounds: .seconds(containerRefreshSeconds)),
        Entry(keyPath: "server.tombstone_poll_seconds", bounds: .seconds(tombstonePollSeconds)),
        Entry(keyPath: "server.verify_max_bytes", bounds: .bytes(verifyMaxBytes)),
        Entry(keyPath: "server.body_cache_bytes", bounds: .bytes(bodyCacheBytes)),
        Entry(keyPath: "server.header_timeout", bounds: .seconds(headerTimeoutSeconds)),
        Entry(keyPath: "server.idle_timeout", bounds: .seconds(idleTimeoutSeconds)),
        Entry(keyPath: "server.max_connections", bounds: .count(maxConnections)),
        Entry(keyPath: "compaction.garbage_ratio", bounds: .number(garbageRatio, unit: "")),
        Entry(keyPath: "compaction.small_container_bytes", bounds: .bytes(smallContainerBytes)),
        Entry(keyPath: "compaction.grace", bounds: .seconds(compactionGrace)),
        Entry(keyPath: "compaction.lease_ttl_seconds", bounds: .seconds(leaseTTLSeconds)),
        Entry(keyPath: "compaction.concurrency", bounds: .count(compactionConcurrency)),
        Entry(keyPath: "events.poll_seconds", bounds: .seconds(eventsPollSeconds)),
        Entry(keyPath: "events.gap_seconds", bounds: .seconds(eventsGapSeconds)),
        Entry(keyPath: "events.retain", bounds: .count(eventsRetain)),
        Entry(keyPath: "events.fallback_refresh_seconds", bounds: .seconds(eventsFallbackRefreshSeconds)),
    ]

    /// `events.poll_seconds`: from 10 ms to a minute.
    public static let eventsPollSeconds: ClosedRange<Double> = 0.01...60
    /// `events.gap_seconds`: from 0.1 s to an hour.
    public static let eventsGapSeconds: ClosedRange<Double> = 0.1...3_600
    /// `events.retain`: from 1,000 events to 100 million.
    public static let eventsRetain: ClosedRange<Int> = 1_000...100_000_000
    /// `events.fallback_refresh_seconds`: up to a day.
    public static let eventsFallbackRefreshSeconds: ClosedRange<Double> = 0...86_400

    /// The unit of `marker.rate_limit_per_second` in errors.
    static let rateUnit = "rows per second"
}
