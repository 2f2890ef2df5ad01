import DESNaming

/// The `storage:`, `metadata:`, `packer:`, `marker:`, `cache:` and `server:` sections.
extension ConfigLoader {
    /// `storage:`: DES reads `type` and `prefix`; the storage plugin reads the rest.
    static let storageRules = PluginSectionRules(kind: .storage, ownKeys: ["prefix"], secretKeys: [])
    /// `cache:`: DES reads `type`; the cache plugin reads the rest.
    static let cacheRules = PluginSectionRules(kind: .cache, ownKeys: [], secretKeys: [])
    static let packerKeys = [
        "work_dir", "shard_bits", "pod_index", "pod_count", "pod_name", "batch_size", "fetch_concurrency",
        "max_container_bytes", "big_file_threshold", "max_container_files", "max_container_age_seconds", "checkpoint_every_files",
        "checkpoint_every_seconds", "lease_ttl_seconds", "heartbeat_seconds", "claim_timeout_seconds", "drain_seconds",
        "idle_sleep_seconds", "claim_mode",
    ]
    static let markerKeys = [
        "batch_size", "concurrency", "rate_limit_per_second", "max_retries", "retry_backoff_base", "interval_seconds", "node_id",
        "name_prefix", "naming", "enable_dead_letter_queue",
    ]

    /// `storage:` — DES's `prefix`; everything else is the storage plugin's.
    static func parseStorage(_ read: PluginSectionRead) throws -> StorageConfig {
        let m = read.mapping
        var s = StorageConfig()
        s.type = read.type
        s.settings = read.settings
        if let prefix = try m.string("prefix") {
            if prefix.hasPrefix("/") || prefix.hasSuffix("/") || prefix.contains("//") {
                throw m.error("prefix", .invalidValue, "'\(prefix)' must not start or end with '/' or contain '//'")
            }
            s.prefix = prefix
        }
        return s
    }

    /// `metadata:` — a `connection:` block naming a metadata store (checked against the registry).
    static func parseMetadata(_ m: ConfigMapping, plugins: PluginRegistry?) throws -> MetadataConfig {
        var metadata = MetadataConfig()
        guard let node = m.node("connection") else { return metadata }
        let (connection, type) = try openConnection(node, path: m.childPath("connection"), context: m.context, plugins: plugins)
        metadata.connection = try parseConnection(connection, knownTypes: nil)
        // The registry knows which metadata stores this binary has; the store reads its own keys.
        metadata.connection.settings = try readPlugin(connection, type: type, rules: connectionRules(.metadata), plugins: plugins)
        return metadata
    }

    /// `packer:` — sizes, intervals and this pod's place among the packers.
    static func parsePacker(_ m: ConfigMapping) throws -> PackerConfig {
        var p = PackerConfig()
        if let v = try nonEmpty(m, "work_dir") { p.workDir = v }
        if let v = try m.int("shard_bits", in: ConfigLimits.shardBits) { p.shardBits = v }
        if let v = try m.int("pod_count", in: ConfigLimits.podCount) { p.podCount = v }
        if let v = try m.int("pod_index", in: ConfigLimits.podIndex) { p.podIndex = v }
        if p.podIndex >= p.podCount {
            throw m.error("pod_index", .invalidValue, "must be less than pod_count (\(p.podCount)), got \(p.podIndex)")
        }
        if let name = try m.string("pod_name") {
            if let problem = PackerConfig.podNameProblem(name) { throw m.error("pod_name", .invalidValue, problem) }
            p.podName = name
        }
        if let v = try m.int("batch_size", in: ConfigLimits.packerBatchSize) { p.batchSize = v }
        if let v = try m.int("fetch_concurrency", in: ConfigLimits.fetchConcurrency) { p.fetchConcurrency = v }
        if let v = try m.byteCount("max_container_bytes", in: ConfigLimits.maxContainerBytes) { p.maxContainerBytes = v }
        if let v = try m.byteCount("big_file_threshold", in: ConfigLimits.bigFileThreshold) { p.bigFileThreshold = v }
        if let v = try m.int("max_container_files", in: ConfigLimits.maxContainerFiles) { p.maxContainerFiles = v }
        if let v = try m.double("max_container_age_seconds", in: ConfigLimits.maxContainerAgeSeconds) { p.maxContainerAgeSeconds = v }
        if let v = try m.int("checkpoint_every_files", in: ConfigLimits.checkpointEveryFiles) { p.checkpointEveryFiles = v }
        if let v = try m.double("checkpoint_every_seconds", in: ConfigLimits.checkpointEverySeconds) { p.checkpointEverySeconds = v }
        if let v = try m.double("lease_ttl_seconds", in: ConfigLimits.leaseTTLSeconds) { p.leaseTTLSeconds = v }
        if let v = try m.double("heartbeat_seconds", in: ConfigLimits.heartbeatSeconds) { p.heartbeatSeconds = v }
        if let v = try m.double("drain_seconds", in: ConfigLimits.packerDrainSeconds) { p.drainSeconds = v }
        if p.heartbeatSeconds >= p.leaseTTLSeconds {
            let key = m.node("heartbeat_seconds") != nil ? "heartbeat_seconds" : "lease_ttl_seconds"
            throw m.error(
                key, .invalidValue,
                "heartbeat_seconds (\(ConfigMapping.format(p.heartbeatSeconds))) must be less than lease_ttl_seconds (\(ConfigMapping.format(p.leaseTTLSeconds))), or leases expire between heartbeats")
        }
        if let v = try m.double("claim_timeout_seconds", in: ConfigLimits.claimTimeoutSeconds) { p.claimTimeoutSeconds = v }
        if let v = try m.double("idle_sleep_seconds", in: ConfigLimits.idleSleepSeconds) { p.idleSleepSeconds = v }
        if let v = try m.choice("claim_mode", among: ClaimMode.allCases.map(\.rawValue)), let mode = ClaimMode(rawValue: v) { p.claimMode = mode }
        return p
    }

    /// `marker:` — naming and pacing of the marker.
    static func parseMarker(_ m: ConfigMapping) throws -> MarkerConfig {
        var k = MarkerConfig()
        if let v = try m.int("batch_size", in: ConfigLimits.markerBatchSize) { k.batchSize = v }
        if let v = try m.int("concurrency", in: ConfigLimits.markerConcurrency) { k.concurrency = v }
        if let v = try m.double("rate_limit_per_second", in: ConfigLimits.rateLimitPerSecond, unit: ConfigLimits.rateUnit) {
            if v > 0, v < ConfigLimits.rateLimitSmallestNonZero {
                let range = ConfigLimits.rateLimitSmallestNonZero...ConfigLimits.rateLimitPerSecond.upperBound
                throw m.error(
                    "rate_limit_per_second", .invalidValue,
                    "must be 0 (unlimited) or \(ConfigMapping.bounds(range, unit: ConfigLimits.rateUnit)), got \(ConfigMapping.format(v))")
            }
            k.rateLimitPerSecond = v
        }
        if let v = try m.int("max_retries", in: ConfigLimits.maxRetries) { k.maxRetries = v }
        if let v = try m.double("retry_backoff_base", in: ConfigLimits.retryBackoffBase, unit: "") { k.retryBackoffBase = v }
        if let v = try m.double("interval_seconds", in: ConfigLimits.intervalSeconds) { k.intervalSeconds = v }
        if let v = try m.int("node_id", in: ConfigLimits.nodeID) { k.nodeID = v }
        if let v = try m.string("name_prefix") {
            guard SnowflakeName.isValidPrefix(v) else {
                throw m.error(
                    "name_prefix", .invalidValue,
                    "'\(v)' must be 1–\(SnowflakeName.maxPrefixLength) ASCII letters and digits (like DES or IMG)")
            }
            k.namePrefix = v
        }
        if let v = try m.choice("naming", among: ["snowflake", "column", "key_basename"]) { k.naming = v }
        if let v = try m.bool("enable_dead_letter_queue") { k.enableDeadLetterQueue = v }
        return k
    }

    /// `cache:` — the index cache: everything but `type` is the cache plugin's.
    static func parseCache(_ read: PluginSectionRead) -> CacheConfig {
        var c = CacheConfig()
        c.type = read.type
        c.settings = read.settings
        return c
    }

    /// The keys of `server:`.
    static let serverKeys = [
        "host", "port", "node_id", "auth_tokens", "max_request_bytes", "max_assign_count", "drain_seconds",
        "ready_timeout_seconds", "container_refresh_seconds", "tombstone_poll_seconds", "verify_max_bytes", "body_cache_bytes", "header_timeout", "idle_timeout", "max_connections",
        "tls", "jwt",
    ]

    /// The keys of `server.jwt:`.
    static let jwtKeys = ["jwks_file", "public_keys", "audience", "issuer", "write_scope", "leeway_seconds", "algorithms"]

    static let compactionKeys = ["garbage_ratio", "small_container_bytes", "grace", "lease_ttl_seconds", "concurrency"]

    /// `compaction:` — a grace shorter than an hour is accepted with a warning saying what it risks.
    static func parseCompaction(_ m: ConfigMapping) throws -> CompactionConfig {
        var c = CompactionConfig()
        if let v = try m.double("garbage_ratio", in: ConfigLimits.garbageRatio, unit: "") { c.garbageRatio = v }
        if let v = try m.byteCount("small_container_bytes", in: ConfigLimits.smallContainerBytes) { c.smallContainerBytes = v }
        if let v = try m.duration("grace", in: ConfigLimits.compactionGrace) {
            c.graceSeconds = v
            if v < 3_600 {
                m.warn(
                    "grace",
                    "\(ConfigMapping.format(v)) s: a server that cached a replaced container's index (cache TTL, container refresh) or a "
                        + "request still reading it fails once its object is deleted; keep it below an hour only for one process or a test")
            }
        }
        if let v = try m.double("lease_ttl_seconds", in: ConfigLimits.leaseTTLSeconds) { c.leaseTTLSeconds = v }
        if let v = try m.int("concurrency", in: ConfigLimits.compactionConcurrency) { c.concurrency = v }
        return c
    }

    static let eventsKeys = ["follow", "poll_seconds", "gap_seconds", "retain", "fallback_refresh_seconds", "publish"]
    static let eventSinkRules = PluginSectionRules(kind: .events, ownKeys: [], secretKeys: [])

    /// `events:` — how followers read the outbox, how much it keeps, and `publish:`, the sink
    /// `des relay` writes to (read by the event sink plugin its `type` names, `redis` by default).
    static func parseEvents(_ m: ConfigMapping, plugins: PluginRegistry?) throws -> EventsConfig {
        var e = EventsConfig()
        if let v = try m.bool("follow") { e.follow = v }
        if let v = try m.double("poll_seconds", in: ConfigLimits.eventsPollSeconds) { e.pollSeconds = v }
        if let v = try m.double("gap_seconds", in: ConfigLimits.eventsGapSeconds) { e.gapSeconds = v }
        if let v = try m.int("retain", in: ConfigLimits.eventsRetain) { e.retain = v }
        if let v = try m.double("fallback_refresh_seconds", in: ConfigLimits.eventsFallbackRefreshSeconds) { e.fallbackRefreshSeconds = v }
        if let sink = try pluginSection(m, "publish", rules: eventSinkRules, defaultType: "redis", plugins: plugins) {
            e.publish = EventSinkConfig(type: sink.type, settings: sink.settings)
        }
        return e
    }

    /// `server:` — where the HTTP service listens, who may call it, how it drains, checks bodies and sheds clients.
    static func parseServer(_ m: ConfigMapping) throws -> ServerConfig {
        var s = ServerConfig()
        if let v = try nonEmpty(m, "host") { s.host = v }
        if let v = try m.int("port", in: ConfigLimits.port) { s.port = v }
        if let v = try m.int("node_id", in: ConfigLimits.nodeID) { s.nodeID = v }
        if let v = try m.stringList("auth_tokens") {
            for token in v where token.count < 16 {
                throw m.error("auth_tokens", .invalidValue, "a token of \(token.count) characters is too easy to guess: use at least 16")
            }
            s.authTokens = v.map { Secret($0) }
        }
        if let v = try m.int("max_request_bytes", in: ConfigLimits.maxRequestBytes) { s.maxRequestBytes = v }
        if let v = try m.int("max_assign_count", in: ConfigLimits.maxAssignCount) { s.maxAssignCount = v }
        if let v = try m.double("drain_seconds", in: ConfigLimits.drainSeconds) { s.drainSeconds = v }
        if let v = try m.double("ready_timeout_seconds", in: ConfigLimits.readyTimeoutSeconds) { s.readyTimeoutSeconds = v }
        if let v = try m.double("container_refresh_seconds", in: ConfigLimits.containerRefreshSeconds) { s.containerRefreshSeconds = v }
        if let v = try m.double("tombstone_poll_seconds", in: ConfigLimits.tombstonePollSeconds) { s.tombstonePollSeconds = v }
        if let v = try m.byteCount("verify_max_bytes", in: ConfigLimits.verifyMaxBytes) { s.verifyMaxBytes = v }
        if let v = try m.byteCount("body_cache_bytes", in: ConfigLimits.bodyCacheBytes) { s.bodyCacheBytes = v }
        if let v = try m.double("header_timeout", in: ConfigLimits.headerTimeoutSeconds) { s.headerTimeoutSeconds = v }
        if let v = try m.double("idle_timeout", in: ConfigLimits.idleTimeoutSeconds) { s.idleTimeoutSeconds = v }
        if let v = try m.int("max_connections", in: ConfigLimits.maxConnections) { s.maxConnections = v }
        // An empty section (every line of it commented out) is a mistake, not "no TLS" or "no JWTs":
        // it would serve plain HTTP, or leave the API open, while its operator believes otherwise.
        for section in ["tls", "jwt"] where m.contains(section) && m.node(section) == nil {
            throw m.error(
                section, .invalidValue,
                "is empty: give its keys, or remove it (an empty \(section) section would \(section == "tls" ? "serve plain HTTP" : "leave the API without JWT checks"))")
        }
        if let t = try m.mapping("tls", allowed: ["certificate", "key", "client_ca"]) {
            guard let certificate = try nonEmpty(t, "certificate") else { throw t.missing("certificate") }
            guard let key = try nonEmpty(t, "key") else { throw t.missing("key") }
            s.tls = ServerTLSConfig(certificate: certificate, key: key, clientCA: try nonEmpty(t, "client_ca"))
        }
        if let j = try m.mapping("jwt", allowed: jwtKeys) { s.jwt = try parseJWT(j) }
        return s
    }

    /// `server.jwt:` — where the identity provider's keys are, and what every token must say.
    static func parseJWT(_ j: ConfigMapping) throws -> ServerJWTConfig {
        guard let audience = try nonEmpty(j, "audience") else { throw j.missing("audience") }
        var c = ServerJWTConfig(audience: audience)
        c.jwksFile = try nonEmpty(j, "jwks_file")
        if let keys = try j.stringList("public_keys") {
            if keys.contains(where: \.isEmpty) { throw j.error("public_keys", .invalidValue, "a path must not be empty") }
            c.publicKeys = keys
        }
        if c.jwksFile == nil && c.publicKeys.isEmpty {
            throw j.error("jwks_file", .missingKey, "server.jwt needs jwks_file or public_keys: without keys no token could be verified")
        }
        c.issuer = try nonEmpty(j, "issuer")
        if let v = try nonEmpty(j, "write_scope") {
            if v.contains(" ") { throw j.error("write_scope", .invalidValue, "a scope has no spaces (scope claims are space-separated)") }
            c.writeScope = v
        }
        if let v = try j.double("leeway_seconds", in: ConfigLimits.jwtLeewaySeconds) { c.leewaySeconds = v }
        if let v = try j.stringList("algorithms") {
            if v.isEmpty { throw j.error("algorithms", .invalidValue, "must name at least one algorithm") }
            for a in v where !ServerJWTConfig.supportedAlgorithms.contains(a) {
                throw j.error(
                    "algorithms", .invalidValue,
                    "'\(a)' is not an algorithm DES verifies (\(ServerJWTConfig.supportedAlgorithms.joined(separator: ", ")); 'none' never is")
            }
            c.algorithms = v
        }
        return c
    }
}
