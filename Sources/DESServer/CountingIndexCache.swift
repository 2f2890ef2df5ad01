import DESFormat
import DESKit

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
    func part(_ identity: ArchiveIdentity, name: String) async -> IndexCachePart? {
        let hit = await base.part(identity, name: name)
        (hit == nil ? metrics.cacheMisses : metrics.cacheHits).increment()
        return hit
    }
    func setPart(_ identity: ArchiveIdentity, name: String, part: IndexCachePart, newest: Bool, ttlSeconds: Double?) async {
        await base.setPart(identity, name: name, part: part, newest: newest, ttlSeconds: ttlSeconds)
    }
    func latestPart(location: String, key: String, name: String) async -> (version: String, part: IndexCachePart)? {
        let hit = await base.latestPart(location: location, key: key, name: name)
        (hit == nil ? metrics.cacheMisses : metrics.cacheHits).increment()
        return hit
    }
    func deletePart(_ identity: ArchiveIdentity, name: String) async { await base.deletePart(identity, name: name) }
}
