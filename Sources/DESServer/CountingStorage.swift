import DESFormat
import DESKit

/// Storage that counts each request the service makes (`des_storage_requests_total{operation}`).
struct CountingStorage: StorageBackend {
    let base: any StorageBackend
    let metrics: ServerMetrics

    var location: String { base.location }

    func put(key: String, fromFile path: String) async throws -> ObjectInfo {
        metrics.storageRequest("put")
        return try await base.put(key: key, fromFile: path)
    }
    func get(key: String) async throws -> [UInt8] {
        metrics.storageRequest("get")
        return try await base.get(key: key)
    }
    func get(key: String, offset: UInt64, length: UInt64) async throws -> [UInt8] {
        metrics.storageRequest("get_range")
        return try await base.get(key: key, offset: offset, length: length)
    }
    func get(key: String, offset: UInt64, length: UInt64, ifMatch: String?) async throws -> [UInt8] {
        metrics.storageRequest("get_range")
        return try await base.get(key: key, offset: offset, length: length, ifMatch: ifMatch)
    }
    func getSuffix(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64) {
        metrics.storageRequest("get_suffix")
        return try await base.getSuffix(key: key, length: length)
    }
    func getSuffixVersioned(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64, version: String?) {
        metrics.storageRequest("get_suffix")
        return try await base.getSuffixVersioned(key: key, length: length)
    }
    func head(key: String) async throws -> ObjectInfo? {
        metrics.storageRequest("head")
        return try await base.head(key: key)
    }
    func delete(key: String) async throws {
        metrics.storageRequest("delete")
        try await base.delete(key: key)
    }
    func list(prefix: String) async throws -> [ObjectInfo] {
        metrics.storageRequest("list")
        return try await base.list(prefix: prefix)
    }
    func removeStaleTemporaries(prefix: String, olderThanSeconds: Double) async throws -> Int {
        try await base.removeStaleTemporaries(prefix: prefix, olderThanSeconds: olderThanSeconds)
    }
    func close() async { await base.close() }
}

/// An index cache that counts its lookups (`des_index_cache_requests_total{result}`).
struct CountingIndexCache: IndexCache {
    let base: any IndexCache
    let metrics: ServerMetrics

    func get(_ identity: ArchiveIdentity) async -> DESIndex? {
        let hit = await base.get(identity)
        (hit == nil ? metrics.cacheMisses : metrics.cacheHits).increment()
        return hit
    }
    func latest(location: String, key: String) async -> (version: String, index: DESIndex)? {
        let hit = await base.latest(location: location, key: key)
        (hit == nil ? metrics.cacheMisses : metrics.cacheHits).increment()
        return hit
    }
    func set(_ identity: ArchiveIdentity, index: DESIndex, ttlSeconds: Double?) async {
        await base.set(identity, index: index, ttlSeconds: ttlSeconds)
    }
    func delete(_ identity: ArchiveIdentity) async { await base.delete(identity) }
    func clear() async { await base.clear() }
    func stats() async -> IndexCacheStats { await base.stats() }
    func close() async { await base.close() }
}
