import DESFormat
import DESKit
import Foundation
import Synchronization

/// Parsed indexes kept in this process (`cache.type: memory`): least recently used first out,
/// bounded by entries and by (estimated) bytes, each entry expiring after the TTL. Thread-safe.
public final class MemoryIndexCache: IndexCache {
    /// The bounds.
    public struct Limits: Sendable, Equatable {
        /// Most whole indexes kept (parts of two-level indexes count against the bytes only).
        public var maxEntries: Int
        /// Most bytes of indexes kept (estimated: see ``MemoryIndexCache/estimatedBytes(_:)``).
        public var maxBytes: UInt64
        /// Seconds an entry lives when `set` names no TTL (nil: until evicted).
        public var ttlSeconds: Double?
        /// Creates bounds.
        public init(maxEntries: Int = 1024, maxBytes: UInt64 = 256 << 20, ttlSeconds: Double? = 3600) {
            self.maxEntries = max(1, maxEntries)
            self.maxBytes = max(1, maxBytes)
            self.ttlSeconds = ttlSeconds
        }
    }

    /// What a slot holds: a whole index, or a part of a two-level index (raw bytes).
    private enum Payload {
        case index(DESIndex)
        case part(IndexCachePart)
    }

    /// One cached index or part in the recency list (slots of arrays, linked by position).
    private struct Slot {
        var identity: ArchiveIdentity
        var payload: Payload
        var bytes: UInt64
        var expires: Double
        var newer = -1
        var older = -1
    }

    private struct State {
        var slots: [Slot?] = []
        var free: [Int] = []
        var positions: [ArchiveIdentity: Int] = [:]
        /// The newest version stored per location and key.
        var latest: [String: String] = [:]
        var newest = -1
        var oldest = -1
        var bytes: UInt64 = 0
        /// Whole indexes held (parts are bounded by bytes only).
        var indexes = 0
        var stats = IndexCacheStats()

        mutating func unlink(_ i: Int) {
            guard let slot = slots[i] else { return }
            if slot.newer >= 0 { slots[slot.newer]?.older = slot.older } else { newest = slot.older }
            if slot.older >= 0 { slots[slot.older]?.newer = slot.newer } else { oldest = slot.newer }
            slots[i]?.newer = -1
            slots[i]?.older = -1
        }

        mutating func pushNewest(_ i: Int) {
            slots[i]?.older = newest
            slots[i]?.newer = -1
            if newest >= 0 { slots[newest]?.newer = i }
            newest = i
            if oldest < 0 { oldest = i }
        }

        mutating func remove(_ i: Int) {
            guard let slot = slots[i] else { return }
            unlink(i)
            positions[slot.identity] = nil
            let name = slot.identity.location + "/" + slot.identity.key
            if latest[name] == slot.identity.version { latest[name] = nil }
            bytes -= slot.bytes
            if case .index = slot.payload { indexes -= 1 }
            slots[i] = nil
            free.append(i)
        }
    }

    /// The bounds in force.
    public let limits: Limits
    private let state = Mutex(State())
    private let clock: @Sendable () -> Double

    /// Creates an empty cache; `clock` (seconds, monotonic) is for tests.
    public init(limits: Limits = Limits(), clock: @escaping @Sendable () -> Double = { ProcessInfo.processInfo.systemUptime }) {
        self.limits = limits
        self.clock = clock
    }

    /// Bytes an index is counted as: its entries and their names, plus its INDEX bytes on disk and
    /// the 32-byte checksum it keeps per entry when it knows them.
    public static func estimatedBytes(_ index: DESIndex) -> UInt64 {
        let digests: UInt64 = index.knowsDigests ? 32 : 0
        return UInt64(index.entries.count) * (UInt64(MemoryLayout<DESIndexEntry>.stride + 16) + digests) + index.footer.indexLength + 256
    }

    public func get(_ identity: ArchiveIdentity) async -> DESIndex? {
        guard case .index(let index)? = lookup(identity) else { return nil }
        return index
    }

    /// The payload under `identity`, counted as a hit or a miss, made the most recent.
    private func lookup(_ identity: ArchiveIdentity) -> Payload? {
        let now = clock()
        return state.withLock { s in
            guard let i = s.positions[identity], let slot = s.slots[i] else {
                s.stats.misses += 1
                return nil
            }
            if slot.expires <= now {
                s.remove(i)
                s.stats.evictions += 1
                s.stats.misses += 1
                return nil
            }
            s.unlink(i)
            s.pushNewest(i)
            s.stats.hits += 1
            return slot.payload
        }
    }

    public func set(_ identity: ArchiveIdentity, index: DESIndex, ttlSeconds: Double?) async {
        store(identity, .index(index), bytes: Self.estimatedBytes(index), newest: true, ttlSeconds: ttlSeconds)
    }

    /// A part's identity: its container's, with the part's name beside the key.
    private static func partIdentity(_ identity: ArchiveIdentity, _ name: String) -> ArchiveIdentity {
        ArchiveIdentity(location: identity.location, key: identity.key + "\u{0}" + name, version: identity.version)
    }

    public func part(_ identity: ArchiveIdentity, name: String) async -> IndexCachePart? {
        guard case .part(let part)? = lookup(Self.partIdentity(identity, name)) else { return nil }
        return part
    }

    /// A part is counted as twice its bytes (the bytes, and what was parsed from them).
    public func setPart(_ identity: ArchiveIdentity, name: String, part: IndexCachePart, newest: Bool, ttlSeconds: Double?) async {
        let bytes = UInt64(part.bytes.count) * (part.parsed == nil ? 1 : 2) + 128
        store(Self.partIdentity(identity, name), .part(part), bytes: bytes, newest: newest, ttlSeconds: ttlSeconds)
    }

    public func latestPart(location: String, key: String, name: String) async -> (version: String, part: IndexCachePart)? {
        let partKey = key + "\u{0}" + name
        guard let version = state.withLock({ $0.latest[location + "/" + partKey] }) else {
            state.withLock { $0.stats.misses += 1 }
            return nil
        }
        guard let found = await part(ArchiveIdentity(location: location, key: key, version: version), name: name) else { return nil }
        return (version, found)
    }

    public func deletePart(_ identity: ArchiveIdentity, name: String) async { await delete(Self.partIdentity(identity, name)) }

    private func store(_ identity: ArchiveIdentity, _ payload: Payload, bytes: UInt64, newest: Bool, ttlSeconds: Double?) {
        guard bytes <= limits.maxBytes else { return }  // larger than the whole cache: not kept
        let ttl = ttlSeconds ?? limits.ttlSeconds
        let expires = ttl.map { clock() + $0 } ?? .infinity
        state.withLock { s in
            if let old = s.positions[identity] { s.remove(old) }
            let isIndex: Bool
            if case .index = payload { isIndex = true } else { isIndex = false }
            while (isIndex && s.indexes >= limits.maxEntries) || s.bytes + bytes > limits.maxBytes, s.oldest >= 0 {
                s.remove(s.oldest)
                s.stats.evictions += 1
            }
            let slot = Slot(identity: identity, payload: payload, bytes: bytes, expires: expires)
            let i: Int
            if let reused = s.free.popLast() {
                i = reused
                s.slots[i] = slot
            } else {
                i = s.slots.count
                s.slots.append(slot)
            }
            s.positions[identity] = i
            if newest { s.latest[identity.location + "/" + identity.key] = identity.version }
            s.bytes += bytes
            if isIndex { s.indexes += 1 }
            s.pushNewest(i)
        }
    }

    public func latest(location: String, key: String) async -> (version: String, index: DESIndex)? {
        guard let version = state.withLock({ $0.latest[location + "/" + key] }) else {
            state.withLock { $0.stats.misses += 1 }
            return nil
        }
        guard let index = await get(ArchiveIdentity(location: location, key: key, version: version)) else { return nil }
        return (version, index)
    }

    public func delete(_ identity: ArchiveIdentity) async {
        state.withLock { s in if let i = s.positions[identity] { s.remove(i) } }
    }

    public func clear() async {
        state.withLock { s in
            let stats = s.stats
            s = State()
            s.stats = stats
        }
    }

    public func stats() async -> IndexCacheStats {
        state.withLock { s in
            var stats = s.stats
            stats.entries = s.positions.count
            return stats
        }
    }

    /// Bytes held now (estimated).
    public var bytesHeld: UInt64 { state.withLock { $0.bytes } }
}

/// No cache (`cache.type: none`): every read loads the index.
public struct NoIndexCache: IndexCache {
    /// Creates the non-cache.
    public init() {}
    public func get(_ identity: ArchiveIdentity) async -> DESIndex? { nil }
    public func set(_ identity: ArchiveIdentity, index: DESIndex, ttlSeconds: Double?) async {}
    public func delete(_ identity: ArchiveIdentity) async {}
    public func clear() async {}
    public func stats() async -> IndexCacheStats { IndexCacheStats() }
}

/// Registers the in-process index caches: `memory` and `none`.
public enum StockIndexCaches {
    /// Adds `memory` and `none` to `registry`.
    public static func register(in registry: PluginRegistry) {
        registry.registerIndexCache(type: "memory", configuration: MemoryCacheConfig.self) { config in
            MemoryIndexCache(limits: .init(maxEntries: config.maxEntries, maxBytes: config.maxBytes, ttlSeconds: config.ttlSeconds))
        }
        registry.registerIndexCache(type: "none", configuration: NoConfiguration.self) { _ in NoIndexCache() }
    }
}

/// `cache.type: memory`: indexes kept in this process, bounded by count and bytes.
public struct MemoryCacheConfig: PluginConfiguration {
    public static let keys = [
        ConfigKey("max_entries", .integer(1...100_000_000), default: "1024", help: "Indexes kept."),
        ConfigKey("max_bytes", .bytes((1 << 20)...(1 << 40)), default: "256MiB", help: "Most bytes of indexes kept in memory."),
        ConfigKey(
            "ttl_seconds", .seconds(0...(30 * 86_400)), default: "3600",
            help: "Seconds an index is kept; 0 or null: no expiry."),
    ]
    /// Indexes kept.
    public var maxEntries = 1024
    /// Most bytes of indexes kept.
    public var maxBytes: UInt64 = 256 << 20
    /// Seconds an index is kept (nil: no expiry).
    public var ttlSeconds: Double? = 3600
    /// The defaults.
    public init() {}
    public init(from section: ConfigSection) throws {
        if let v = try section.int(Self.key("max_entries")) { maxEntries = v }
        if let v = try section.bytes(Self.key("max_bytes")) { maxBytes = v }
        if section.contains("ttl_seconds") {
            let ttl = try section.seconds(Self.key("ttl_seconds"))
            ttlSeconds = ttl == 0 ? nil : ttl
        }
    }
}
