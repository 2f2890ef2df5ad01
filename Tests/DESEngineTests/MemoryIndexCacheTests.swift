import DESFormat
import DESKit
import DESStorage
import Foundation
import Synchronization
import Testing

@Suite("In-memory index cache") struct MemoryIndexCacheTests {
    /// The index of a small archive with `files` entries.
    static func index(files: Int) throws -> DESIndex {
        let path = NSTemporaryDirectory() + "des-cache-\(UUID().uuidString).des"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try DESArchiveWriter(path: path)
        for i in 0..<files { try writer.add(name: "f\(i)", bytes: Array("body \(i)".utf8)) }
        _ = try writer.close()
        return try DESArchiveReader(path: path).index
    }

    static func id(_ key: String, _ version: String = "v1") -> ArchiveIdentity {
        ArchiveIdentity(location: "local", key: key, version: version)
    }

    /// A clock the test moves by hand.
    final class Clock: Sendable {
        let now = Mutex(0.0)
        func advance(_ seconds: Double) { now.withLock { $0 += seconds } }
    }

    @Test("Least recently used goes first when the entry bound is reached; hits, misses and evictions are counted")
    func lruByEntries() async throws {
        let cache = MemoryIndexCache(limits: .init(maxEntries: 2, ttlSeconds: nil))
        let index = try Self.index(files: 3)
        await cache.set(Self.id("a"), index: index, ttlSeconds: nil)
        await cache.set(Self.id("b"), index: index, ttlSeconds: nil)
        #expect(await cache.get(Self.id("a")) != nil)  // a is now the most recent
        await cache.set(Self.id("c"), index: index, ttlSeconds: nil)  // evicts b
        #expect(await cache.get(Self.id("b")) == nil)
        #expect(await cache.get(Self.id("a"))?.entries.count == 3)
        #expect(await cache.get(Self.id("c")) != nil)
        // Another version of the same key is another entry: a replaced object is never served stale.
        #expect(await cache.get(Self.id("a", "v2")) == nil)
        let stats = await cache.stats()
        #expect(stats.hits == 3 && stats.misses == 2 && stats.evictions == 1 && stats.entries == 2)
    }

    @Test("The byte bound evicts the oldest until the new index fits; an index larger than the cache is not kept")
    func bytesBound() async throws {
        let small = try Self.index(files: 10)
        let big = try Self.index(files: 2000)
        let bound = MemoryIndexCache.estimatedBytes(small) * 3
        #expect(MemoryIndexCache.estimatedBytes(big) > bound)
        let cache = MemoryIndexCache(limits: .init(maxEntries: 100, maxBytes: bound, ttlSeconds: nil))
        for key in ["a", "b", "c", "d"] { await cache.set(Self.id(key), index: small, ttlSeconds: nil) }
        #expect(await cache.get(Self.id("a")) == nil)
        #expect(await cache.get(Self.id("d")) != nil)
        #expect(cache.bytesHeld <= bound)
        await cache.set(Self.id("big"), index: big, ttlSeconds: nil)
        #expect(await cache.get(Self.id("big")) == nil)
        #expect(await cache.stats().entries == 3)
    }

    @Test("An entry expires after its TTL (its own, or the cache's)")
    func ttl() async throws {
        let clock = Clock()
        let cache = MemoryIndexCache(limits: .init(maxEntries: 10, ttlSeconds: 60)) { clock.now.withLock { $0 } }
        let index = try Self.index(files: 1)
        await cache.set(Self.id("default"), index: index, ttlSeconds: nil)
        await cache.set(Self.id("short"), index: index, ttlSeconds: 5)
        clock.advance(6)
        #expect(await cache.get(Self.id("short")) == nil)
        #expect(await cache.get(Self.id("default")) != nil)
        clock.advance(60)
        #expect(await cache.get(Self.id("default")) == nil)
        #expect(await cache.stats().entries == 0)
    }

    @Test("Concurrent readers and writers keep the bounds and lose no count")
    func concurrentUse() async throws {
        let cache = MemoryIndexCache(limits: .init(maxEntries: 16, ttlSeconds: nil))
        let index = try Self.index(files: 2)
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for i in 0..<500 {
                        let key = Self.id("k\((worker * 7 + i) % 40)")
                        if await cache.get(key) == nil { await cache.set(key, index: index, ttlSeconds: nil) }
                    }
                }
            }
        }
        let stats = await cache.stats()
        #expect(stats.hits + stats.misses == 4000)
        #expect(stats.entries <= 16)
        await cache.clear()
        #expect(await cache.stats().entries == 0)
    }

    @Test("The registry builds the cache the config names")
    func fromConfig() async throws {
        let registry = PluginRegistry()
        LocalStoragePlugin.register(in: registry)
        #expect(registry.indexCacheTypes == ["memory", "none"])
        var config = CacheConfig()
        var memoryConfig = MemoryCacheConfig()
        memoryConfig.maxEntries = 3
        config.settings = PluginSettings(memoryConfig)
        let memory = try #require(try await registry.makeIndexCache(config) as? MemoryIndexCache)
        #expect(memory.limits.maxEntries == 3)
        config.type = "none"
        config.settings = nil
        let none = try await registry.makeIndexCache(config)
        await none.set(Self.id("a"), index: try Self.index(files: 1), ttlSeconds: nil)
        #expect(await none.get(Self.id("a")) == nil)
        #expect(try await registry.makeIndexCache(CacheConfig()) is MemoryIndexCache)  // read from an empty section: the defaults
        config.type = "redis"
        await #expect(throws: DESKitError.self) { _ = try await registry.makeIndexCache(config) }
    }
}
