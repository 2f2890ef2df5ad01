import DESStorage
import Foundation
import Testing

@testable import DESKit

// MARK: Helpers

/// A config that sets the key at `keyPath` (`packer.lease_ttl_seconds`, `sources[].batch_size`) to `value`.
private func yaml(setting keyPath: String, to value: String, siblings: [String: String] = [:]) -> String {
    let parts = keyPath.split(separator: ".").map(String.init)
    let key = parts.last ?? keyPath
    var lines = ["\(key): \(value)"]
    lines += siblings.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
    let body = lines.joined(separator: "\n")
    switch parts.dropLast().joined(separator: ".") {
    case "sources[]": return sourceYAML(extra: body)
    case "sources[].bodies": return sourceYAML(extra: "bodies:\n" + lines.map { "  \($0)" }.joined(separator: "\n"))
    case "sources[].connection": return sourceYAML(connectionExtra: body)
    case "metadata.connection":
        return "metadata:\n  connection:\n    type: sqlite\n    database: m.sqlite\n" + lines.map { "    \($0)\n" }.joined()
    case let section:
        return "\(section):\n" + lines.map { "  \($0)\n" }.joined()
    }
}

/// Keys whose values are durations, written with a unit.
private let durationKeys: Set = ["sources[].bodies.delete_after_pack", "sources[].retention", "compaction.grace"]

/// A value as YAML for `keyPath`: durations get the unit `s`. Nil for a negative duration
/// (not a duration at all: refused as the wrong type, which other tests cover).
private func written(_ value: String, for keyPath: String) -> String? {
    guard durationKeys.contains(keyPath) else { return value }
    return value.hasPrefix("-") ? nil : value + "s"
}

/// `3600`, `0.1` (as the loader writes numbers).
private func text(_ value: Double) -> String { ConfigMapping.format(value) }

/// The value just outside each end of `bounds` (nil where the end cannot be passed, like 0 bytes).
private func outside(_ bounds: ConfigLimits.Bounds) -> (below: String?, above: String) {
    switch bounds {
    case .count(let r): return (String(r.lowerBound - 1), String(r.upperBound + 1))
    case .seconds(let r), .number(let r, _):
        // Below a negative end (pool_recycle's -1, "never"): one less; below 0: -1; else half the end.
        let below = r.lowerBound < 0 ? r.lowerBound - 1 : r.lowerBound == 0 ? -1 : r.lowerBound / 2
        return (text(below), text(r.upperBound * 2))
    case .bytes(let r): return (r.lowerBound == 0 ? nil : String(r.lowerBound - 1), String(r.upperBound + 1))
    }
}

/// The two ends of `bounds`, as YAML values.
private func ends(_ bounds: ConfigLimits.Bounds) -> [String] {
    switch bounds {
    case .count(let r): return [String(r.lowerBound), String(r.upperBound)]
    case .seconds(let r), .number(let r, _): return [text(r.lowerBound), text(r.upperBound)]
    case .bytes(let r): return [String(r.lowerBound), String(r.upperBound)]
    }
}

/// The range as the error message states it.
private func stated(_ bounds: ConfigLimits.Bounds) -> String {
    switch bounds {
    case .count(let r): return ConfigMapping.bounds(r)
    case .seconds(let r): return ConfigMapping.bounds(r, unit: "seconds")
    case .number(let r, let unit): return ConfigMapping.bounds(r, unit: unit)
    case .bytes(let r): return ConfigMapping.byteBounds(r)
    }
}

/// Keys that must be set beside a key for an end of its range to pass the cross-key rules.
private let companions: [String: [String: String]] = [
    "packer.pod_index": ["pod_count": "65536"],
    "packer.heartbeat_seconds": ["lease_ttl_seconds": "3600"],
    "packer.lease_ttl_seconds": ["heartbeat_seconds": "0.05"],
]

// MARK: Named cases

/// One out-of-range value and the error it must give.
struct OutOfRangeCase: Sendable, CustomTestStringConvertible {
    var yaml: String
    var keyPath: String
    var line: Int
    var column: Int
    var message: String
    var env: [String: String] = [:]
    var testDescription: String { "\(keyPath): \(message)" }
}

private let outOfRangeCases: [OutOfRangeCase] = [
    OutOfRangeCase(
        yaml: "packer:\n  lease_ttl_seconds: 1e21\n", keyPath: "packer.lease_ttl_seconds", line: 2, column: 22,
        message: "must be between 0.1 and 3600 seconds, got 1e+21"),
    OutOfRangeCase(
        yaml: "packer:\n  idle_sleep_seconds: 1e300\n", keyPath: "packer.idle_sleep_seconds", line: 2, column: 23,
        message: "must be between 0 and 3600 seconds, got 1e+300"),
    OutOfRangeCase(
        yaml: sourceYAML(extra: "batch_size: 10000000000"), keyPath: "sources[0].batch_size", line: 8, column: 17,
        message: "must be between 1 and 100000, got 10000000000"),
    OutOfRangeCase(
        yaml: "packer:\n  batch_size: 99999999999999999999\n", keyPath: "packer.batch_size", line: 2, column: 15,
        message: "must be between 1 and 100000, got 99999999999999999999"),
    OutOfRangeCase(
        yaml: "packer:\n  max_container_bytes: 100TiB\n", keyPath: "packer.max_container_bytes", line: 2, column: 24,
        message: "must be between 1KiB and 5TiB (1024 and 5497558138880 bytes), got 100TiB (109951162777600 bytes)"),
    OutOfRangeCase(
        yaml: "packer:\n  max_container_bytes: 999999999999TiB\n", keyPath: "packer.max_container_bytes", line: 2,
        column: 24, message: "must be between 1KiB and 5TiB (1024 and 5497558138880 bytes), got '999999999999TiB'"),
    OutOfRangeCase(
        yaml: "packer:\n  max_container_bytes: 1000\n", keyPath: "packer.max_container_bytes", line: 2, column: 24,
        message: "must be between 1KiB and 5TiB (1024 and 5497558138880 bytes), got 1000 bytes"),
    OutOfRangeCase(
        yaml: "packer:\n  heartbeat_seconds: -1\n", keyPath: "packer.heartbeat_seconds", line: 2, column: 22,
        message: "must be between 0.05 and 1800 seconds, got -1"),
    OutOfRangeCase(
        yaml: "marker:\n  rate_limit_per_second: .inf\n", keyPath: "marker.rate_limit_per_second", line: 2, column: 26,
        message: "must be between 0 and 10000000 rows per second, got .inf"),
    OutOfRangeCase(
        yaml: "marker:\n  rate_limit_per_second: nan\n", keyPath: "marker.rate_limit_per_second", line: 2, column: 26,
        message: "must be between 0 and 10000000 rows per second, got nan"),
    OutOfRangeCase(
        yaml: "marker:\n  rate_limit_per_second: .NaN\n", keyPath: "marker.rate_limit_per_second", line: 2, column: 26,
        message: "must be between 0 and 10000000 rows per second, got .NaN"),
    OutOfRangeCase(
        yaml: "marker:\n  rate_limit_per_second: 1e-6\n", keyPath: "marker.rate_limit_per_second", line: 2, column: 26,
        message: "must be 0 (unlimited) or between 0.001 and 10000000 rows per second, got 1e-06"),
    OutOfRangeCase(
        yaml: "packer:\n  checkpoint_every_seconds: -.inf\n", keyPath: "packer.checkpoint_every_seconds", line: 2,
        column: 29, message: "must be between 0.001 and 86400 seconds, got -.inf"),
    OutOfRangeCase(
        yaml: "packer:\n  claim_timeout_seconds: 1e400\n", keyPath: "packer.claim_timeout_seconds", line: 2, column: 26,
        message: "must be between 1 and 604800 seconds, got 1e400"),
    OutOfRangeCase(
        yaml: "packer:\n  pod_count: 100000\n", keyPath: "packer.pod_count", line: 2, column: 14,
        message: "must be between 1 and 65536, got 100000"),
    OutOfRangeCase(
        yaml: "marker:\n  retry_backoff_base: 61\n", keyPath: "marker.retry_backoff_base", line: 2, column: 23,
        message: "must be between 0.001 and 60, got 61"),
    OutOfRangeCase(
        yaml: sourceYAML(connectionExtra: "pool_size: 1001"), keyPath: "sources[0].connection.pool_size", line: 6,
        column: 18, message: "must be between 1 and 1000, got 1001"),
    OutOfRangeCase(
        yaml: "packer:\n  lease_ttl_seconds: ${TTL}\n", keyPath: "packer.lease_ttl_seconds", line: 2, column: 22,
        message: "must be between 0.1 and 3600 seconds, got 1e+21", env: ["TTL": "1e21"]),
]

@Suite struct ConfigLimitsTests {
    @Test(arguments: outOfRangeCases)
    func outOfRangeIsAnInvalidValueWithFileLineKeyAndRange(_ c: OutOfRangeCase) throws {
        let error = try #require(configError(c.yaml, env: c.env))
        #expect(error.code == .invalidValue)
        #expect(error.file == "test.yaml")
        #expect(error.keyPath == c.keyPath)
        #expect(error.line == c.line)
        #expect(error.column == c.column)
        #expect(error.message == c.message)
        #expect(error.description == "test.yaml:\(c.line):\(c.column): \(c.keyPath): \(c.message)")
    }

    /// Every key of the table refuses a value just past either end, stating the range.
    @Test(arguments: ConfigLimits.entries)
    func everyKeyRefusesValuesOutsideItsRange(_ entry: ConfigLimits.Entry) throws {
        let (below, above) = outside(entry.bounds)
        let expectedPath = entry.keyPath.replacingOccurrences(of: "sources[]", with: "sources[0]")
        let key = entry.keyPath.split(separator: ".").last.map(String.init) ?? entry.keyPath
        for value in [below, above].compactMap({ $0.flatMap { written($0, for: entry.keyPath) } }) {
            let text = yaml(setting: entry.keyPath, to: value)
            let error = try #require(configError(text), "\(entry.keyPath): \(value)")
            #expect(error.code == .invalidValue, "\(entry.keyPath): \(value)")
            #expect(error.keyPath == expectedPath)
            #expect(error.line == lineNumber(of: "\(key): \(value)", in: text))
            #expect(error.message.hasPrefix("must be \(stated(entry.bounds)), got "), "\(error.message)")
        }
    }

    /// Both ends of every range are accepted (with the companion keys a cross-key rule needs).
    @Test(arguments: ConfigLimits.entries)
    func everyKeyAcceptsBothEndsOfItsRange(_ entry: ConfigLimits.Entry) throws {
        for value in ends(entry.bounds).compactMap({ written($0, for: entry.keyPath) }) {
            let text = yaml(setting: entry.keyPath, to: value, siblings: companions[entry.keyPath] ?? [:])
            #expect(throws: Never.self, "\(entry.keyPath): \(value)") { try parse(text) }
        }
    }

    @Test func tableIsFiniteUniqueAndSafeToSleepOn() {
        let paths = ConfigLimits.entries.map(\.keyPath)
        #expect(Set(paths).count == paths.count)
        for entry in ConfigLimits.entries {
            switch entry.bounds {
            case .count(let r):
                #expect(r.upperBound <= 100_000_000, "\(entry.keyPath)")
                #expect(r.lowerBound >= 0, "\(entry.keyPath)")
            case .seconds(let r), .number(let r, _):
                // No negative durations, except pool_recycle's -1, which means "never".
                let lowest = entry.keyPath.hasSuffix(".pool_recycle") ? ConfigLimits.poolRecycleNever : 0
                #expect(r.lowerBound.isFinite && r.upperBound.isFinite && r.lowerBound >= lowest, "\(entry.keyPath)")
                // A sleep of the longest duration still fits UInt64 nanoseconds.
                #expect(r.upperBound * 1e9 < Double(UInt64.max), "\(entry.keyPath)")
            case .bytes(let r):
                #expect(r.upperBound <= 5 << 40, "\(entry.keyPath)")
            }
        }
        // The slowest rate the marker accepts still gives a wait that fits UInt64 nanoseconds.
        let longestWait = Double(ConfigLimits.markerBatchSize.upperBound) / ConfigLimits.rateLimitSmallestNonZero
        #expect(longestWait * 1e9 < Double(UInt64.max))
    }

    /// Every default of the model structs lies inside its key's range.
    @Test func everyDefaultLiesInsideItsRange() throws {
        enum Value {
            case int(Int)
            case double(Double)
            case bytes(UInt64)
        }
        let config = DESConfig()
        let source = SourceConfig(name: "a", connection: ConnectionConfig(type: "sqlite"), table: TableConfig(name: "t"))
        let p = config.packer
        let k = config.marker
        let defaults: [String: Value] = [
            "sources[].connection.pool_size": .int(source.connection.poolSize),
            "sources[].connection.pool_recycle": .double(source.connection.poolRecycleSeconds),
            "sources[].batch_size": .int(source.batchSize ?? p.batchSize),
            "sources[].claim_timeout_seconds": .double(source.effectiveClaimTimeoutSeconds(packer: p)),
            "sources[].shard_bits": .int(source.shardBits ?? p.shardBits),
            "metadata.connection.pool_size": .int(config.metadata.connection.poolSize),
            "metadata.connection.pool_recycle": .double(config.metadata.connection.poolRecycleSeconds),
            "packer.shard_bits": .int(p.shardBits),
            "packer.pod_index": .int(p.podIndex),
            "packer.pod_count": .int(p.podCount),
            "packer.batch_size": .int(p.batchSize),
            "packer.fetch_concurrency": .int(p.fetchConcurrency),
            "packer.max_container_bytes": .bytes(p.maxContainerBytes),
            "packer.big_file_threshold": .bytes(p.bigFileThreshold),
            "packer.max_container_files": .int(p.maxContainerFiles),
            "packer.max_container_age_seconds": .double(p.maxContainerAgeSeconds),
            "packer.checkpoint_every_files": .int(p.checkpointEveryFiles),
            "packer.checkpoint_every_seconds": .double(p.checkpointEverySeconds),
            "packer.lease_ttl_seconds": .double(p.leaseTTLSeconds),
            "packer.heartbeat_seconds": .double(p.heartbeatSeconds),
            "packer.drain_seconds": .double(p.drainSeconds),
            "packer.claim_timeout_seconds": .double(p.claimTimeoutSeconds),
            "packer.idle_sleep_seconds": .double(p.idleSleepSeconds),
            "marker.batch_size": .int(k.batchSize),
            "marker.concurrency": .int(k.concurrency),
            "marker.rate_limit_per_second": .double(k.rateLimitPerSecond),
            "marker.max_retries": .int(k.maxRetries),
            "marker.retry_backoff_base": .double(k.retryBackoffBase),
            "marker.interval_seconds": .double(k.intervalSeconds),
            "marker.node_id": .int(k.nodeID),
            "server.port": .int(config.server.port),
            "server.node_id": .int(config.server.nodeID),
            "server.max_request_bytes": .int(config.server.maxRequestBytes),
            "server.max_assign_count": .int(config.server.maxAssignCount),
            "server.drain_seconds": .double(config.server.drainSeconds),
            "server.ready_timeout_seconds": .double(config.server.readyTimeoutSeconds),
            "server.container_refresh_seconds": .double(config.server.containerRefreshSeconds),
            "server.tombstone_poll_seconds": .double(config.server.tombstonePollSeconds),
            "server.verify_max_bytes": .bytes(config.server.verifyMaxBytes),
            "server.body_cache_bytes": .bytes(config.server.bodyCacheBytes),
            "server.header_timeout": .double(config.server.headerTimeoutSeconds),
            "server.idle_timeout": .double(config.server.idleTimeoutSeconds),
            "server.max_connections": .int(config.server.maxConnections),
            "compaction.garbage_ratio": .double(config.compaction.garbageRatio),
            "compaction.small_container_bytes": .bytes(config.compaction.smallContainerBytes),
            "compaction.grace": .double(config.compaction.graceSeconds),
            "compaction.lease_ttl_seconds": .double(config.compaction.leaseTTLSeconds),
            "compaction.concurrency": .int(config.compaction.concurrency),
            "events.poll_seconds": .double(config.events.pollSeconds),
            "events.gap_seconds": .double(config.events.gapSeconds),
            "events.retain": .int(config.events.retain),
            "events.fallback_refresh_seconds": .double(config.events.fallbackRefreshSeconds),
        ]
        // Connection ports have no default of their own (each driver has its usual port).
        // Retiring bodies and retention are off unless set.
        let withoutDefault: Set = [
            "sources[].connection.port", "metadata.connection.port", "sources[].bodies.delete_after_pack", "sources[].retention",
        ]
        #expect(source.connection.port == nil && config.metadata.connection.port == nil)
        #expect(source.bodies.deleteAfterPack == nil && source.retentionSeconds == nil)
        #expect(Set(defaults.keys).union(withoutDefault) == Set(ConfigLimits.entries.map(\.keyPath)))

        for entry in ConfigLimits.entries where !withoutDefault.contains(entry.keyPath) {
            let value = try #require(defaults[entry.keyPath], "no default for \(entry.keyPath)")
            switch (entry.bounds, value) {
            case (.count(let r), .int(let v)): #expect(r.contains(v), "\(entry.keyPath) = \(v)")
            case (.seconds(let r), .double(let v)), (.number(let r, _), .double(let v)):
                #expect(r.contains(v), "\(entry.keyPath) = \(v)")
            case (.bytes(let r), .bytes(let v)): #expect(r.contains(v), "\(entry.keyPath) = \(v)")
            default: Issue.record("\(entry.keyPath): the default's type does not match the range's")
            }
        }
        // The cross-key rules hold for the defaults too.
        #expect(p.heartbeatSeconds < p.leaseTTLSeconds)
        #expect(p.podIndex < p.podCount)
        #expect(k.rateLimitPerSecond == 0 || k.rateLimitPerSecond >= ConfigLimits.rateLimitSmallestNonZero)
        // And an empty file loads them.
        #expect(try parse("# nothing\n") == config.withPath("test.yaml"))
    }

    @Test("A plugin's declared bounds are checked like DES's own: cache.ttl_seconds of the memory cache")
    func pluginBoundsAreChecked() throws {
        let e = try #require(stockError("cache:\n  ttl_seconds: 2592001\n"))
        #expect(e.code == .invalidValue && e.keyPath == "cache.ttl_seconds" && e.line == 2 && e.column == 16)
        #expect(e.message == "must be between 0 and 2592000 seconds, got 2592001")
    }

    @Test func zeroKeepsItsMeaning() throws {
        #expect(try parse("marker:\n  rate_limit_per_second: 0\n").marker.rateLimitPerSecond == 0)
        #expect(try parseStock("cache:\n  ttl_seconds: 0\n").cache.settings?.value(as: MemoryCacheConfig.self)?.ttlSeconds == nil)
        #expect(try parseStock("cache:\n  ttl_seconds:\n").cache.settings?.value(as: MemoryCacheConfig.self)?.ttlSeconds == nil)
        #expect(try parseStock("cache:\n  ttl_seconds: 60\n").cache.settings?.value(as: MemoryCacheConfig.self)?.ttlSeconds == 60)
        #expect(try parse("packer:\n  idle_sleep_seconds: 0\n").packer.idleSleepSeconds == 0)
        #expect(try parse("marker:\n  rate_limit_per_second: 0.001\n").marker.rateLimitPerSecond == 0.001)
    }

    @Test func wordsAreStillWrongTypes() throws {
        #expect(configError("packer:\n  lease_ttl_seconds: soon\n")?.code == .wrongType)
        #expect(configError("packer:\n  lease_ttl_seconds: 0x10\n")?.code == .wrongType)
        #expect(configError("packer:\n  batch_size: 1e3\n")?.code == .wrongType)
        #expect(configError("packer:\n  max_container_bytes: 1 parsec\n")?.code == .wrongType)
        #expect(configError("packer:\n  max_container_bytes: -1\n")?.code == .wrongType)
    }

    @Test func heartbeatMustStayBelowTheLease() throws {
        let error = try #require(configError("packer:\n  lease_ttl_seconds: 3600\n  heartbeat_seconds: 1800.5\n"))
        #expect(error.keyPath == "packer.heartbeat_seconds")
        #expect(error.message == "must be between 0.05 and 1800 seconds, got 1800.5")
        let cross = try #require(configError("packer:\n  lease_ttl_seconds: 5\n  heartbeat_seconds: 5\n"))
        #expect(cross.keyPath == "packer.heartbeat_seconds")
        #expect(cross.message.contains("must be less than lease_ttl_seconds"))
    }

    @Test func byteUnitsWithinTheRange() throws {
        #expect(try parse("packer:\n  max_container_bytes: 5TiB\n").packer.maxContainerBytes == 5 << 40)
        #expect(try parse("packer:\n  max_container_bytes: 1KiB\n").packer.maxContainerBytes == 1024)
        #expect(try parse("packer:\n  max_container_bytes: 5TB\n").packer.maxContainerBytes == 5_000_000_000_000)
        #expect(configError("packer:\n  max_container_bytes: 6TB\n")?.message.hasSuffix("got 6000000000000 bytes") == true)
    }
}

// MARK: bodies.allow_absolute

@Suite struct BodiesAllowAbsoluteTests {
    func local(_ config: DESConfig) -> LocalBodiesConfig? { config.sources[0].bodies.settings?.value(as: LocalBodiesConfig.self) }

    @Test func defaultsToFalse() throws {
        let config = try parseStock(sourceYAML(extra: "bodies:\n  type: local\n  root: /data/bodies"))
        #expect(local(config)?.allowAbsolute == false)
        #expect(local(config)?.root == "/data/bodies")
        #expect(LocalBodiesConfig().allowAbsolute == false)
    }

    @Test func parsesTrueAndFalse() throws {
        let yes = try parseStock(sourceYAML(extra: "bodies:\n  type: local\n  root: /data\n  allow_absolute: true"))
        #expect(local(yes) == LocalBodiesConfig(root: "/data", allowAbsolute: true))
        #expect(yes.sources[0].bodies.directory == "/data")
        let no = try parseStock(sourceYAML(extra: "bodies: {type: local, allow_absolute: no}"))
        #expect(local(no)?.allowAbsolute == false)
        let fromEnv = try parseStock(
            sourceYAML(extra: "bodies: {allow_absolute: \"${ALLOW_ABS:-false}\"}"), env: ["ALLOW_ABS": "true"])
        #expect(local(fromEnv)?.allowAbsolute == true)
    }

    @Test func wrongTypeAndTypos() throws {
        let bad = try #require(stockError(sourceYAML(extra: "bodies:\n  allow_absolute: maybe")))
        #expect(bad.code == .wrongType)
        #expect(bad.keyPath == "sources[0].bodies.allow_absolute")
        #expect(bad.line == 9)
        let typo = try #require(stockError(sourceYAML(extra: "bodies:\n  allow_absolut: true")))
        #expect(typo.code == .unknownKey)
        #expect(typo.suggestion == "allow_absolute")
    }
}

extension DESConfig {
    /// This config with `path` set (as the loader records it).
    fileprivate func withPath(_ path: String) -> DESConfig {
        var copy = self
        copy.path = path
        return copy
    }
}
