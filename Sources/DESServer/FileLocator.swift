import DESEngine
import DESKit
import DESNaming
import Foundation

/// Finds a file from its name alone: the name's day and shard select the uploaded
/// containers of (day, shard) in the metadata store, and the names each holds (its recorded
/// first and last, and a filter where ranges overlap) narrow them, usually to one; its index
/// (through the index cache) finds the entry. No database holds a row per file.
///
/// Two small caches keep a warm read at one ranged read: the container list of each
/// (day, shard), asked again when a name is in none of them and the list is older than
/// `refreshSeconds`; and the location of recently served names. A name missing from a cached
/// index is believed only until that container's version has been checked again (at most every
/// `refreshSeconds`).
final class FileLocator: Sendable {
    struct DayShard: Hashable, Sendable {
        var day: String
        var shard: Int
    }
    struct ContainerList: Sendable {
        var records: [ContainerRecord]  // oldest first, as the store lists them
        var fetchedAt: Double
        var keys: [String] { records.map(\.key) }
    }

    let metadata: any MetadataStore
    let reader: StorageArchiveReader
    let shardBits: Int
    let refreshSeconds: Double
    /// How stale a list may be while the server follows the store's events (which drop a list
    /// as soon as its (day, shard) changes): a fallback only.
    let fallbackRefreshSeconds: Double
    /// Whether the server follows the store's events now (its follower read them recently).
    let following: @Sendable () -> Bool
    private let lists = BoundedCache<DayShard, ContainerList>(capacity: 16_384)
    private let located: BoundedCache<String, ServedFile>
    /// Each container version's check, shared by the files found in it (key, a line feed, version).
    private let checks = BoundedCache<String, ContainerCheck>(capacity: 16_384)
    /// When each container's version was last checked after a negative answer (monotonic seconds).
    private let verified = BoundedCache<String, Double>(capacity: 16_384)

    init(
        metadata: any MetadataStore, reader: StorageArchiveReader, shardBits: Int, refreshSeconds: Double, locatedCapacity: Int,
        fallbackRefreshSeconds: Double? = nil, following: @escaping @Sendable () -> Bool = { false }
    ) {
        self.metadata = metadata
        self.reader = reader
        self.shardBits = shardBits
        self.refreshSeconds = refreshSeconds
        self.fallbackRefreshSeconds = max(refreshSeconds, fallbackRefreshSeconds ?? refreshSeconds)
        self.following = following
        self.located = BoundedCache(capacity: locatedCapacity)
    }

    /// How stale a container list may be now.
    var currentRefreshSeconds: Double { following() ? fallbackRefreshSeconds : refreshSeconds }

    /// The shard of a name.
    func shard(of name: String) -> Int { Int(consistentHash(name, bits: shardBits)) }

    /// Where `name` is, or nil when no uploaded container of its (day, shard) holds it.
    func locate(_ name: String, parsed: SnowflakeName) async throws -> ServedFile? {
        if let hit = located[name] { return hit }
        let shard = shard(of: name)
        let where_ = DayShard(day: parsed.isoDay, shard: shard)
        var searched: Set<String> = []
        var list = try await containers(where_, refresh: false)
        while true {
            // Only containers whose recorded names may include it, newest first: a name is in one
            // container, and recent names are asked for most.
            for key in NameRanges.candidates(for: name, among: list.records).map(\.key) where !searched.contains(key) {
                searched.insert(key)
                if let found = try await find(name, key: key) {
                    let served = ServedFile(found, shard: shard, check: check(of: found))
                    located.set(name, served)
                    return served
                }
            }
            guard monotonicSeconds() - list.fetchedAt >= currentRefreshSeconds else { return nil }
            let fresh = try await containers(where_, refresh: true)
            guard NameRanges.candidates(for: name, among: fresh.records).contains(where: { !searched.contains($0.key) }) else { return nil }
            list = fresh
        }
    }

    /// The shared check of the container version `found` is in.
    private func check(of found: LocatedEntry) -> ContainerCheck {
        let id = found.key + "\n" + (found.version ?? "")
        if let known = checks[id] { return known }
        let made = ContainerCheck()
        checks.set(id, made)
        return made
    }

    /// `name` in the container at `key`. A negative answer from a cached index is trusted only
    /// until the object's version has been checked again (a `HEAD`, at most once per
    /// `refreshSeconds` for each container): a container replaced, or replaced and then restored,
    /// is read anew within that long. The warm positive path (a name found) asks nothing more.
    private func find(_ name: String, key: String) async throws -> LocatedEntry? {
        if let found = try await reader.locate(name, key: key) { return found }
        let now = monotonicSeconds()
        // Storage changed behind the metadata store's back announces no event: this check keeps
        // container_refresh_seconds whether or not the server follows the events.
        if let checked = verified[key], now - checked < refreshSeconds { return nil }
        verified.set(key, now)
        guard try await reader.revalidate(key: key) else { return nil }
        return try await reader.locate(name, key: key)
    }

    /// Forgets where `name` was, and the index it was found in (its container changed under it);
    /// with `containers`, also the list of its (day, shard)'s containers (its container is gone:
    /// compacted, and deleted after the grace period).
    func forget(name: String, containers: Bool = false) async {
        if containers, let parsed = try? SnowflakeName(parsing: name) {
            lists.remove(DayShard(day: parsed.isoDay, shard: shard(of: name)))
        }
        guard let known = located[name] else { return }
        located.remove(name)
        await reader.forget(key: known.located.key, version: known.located.version)
    }

    /// Applies the store's events: a (day, shard) whose containers changed is asked again at
    /// its next lookup; a deleted container's located names and cached index are forgotten;
    /// a tombstoned name's location too.
    func apply(_ events: [StoreEvent]) async {
        for event in events {
            switch event.kind {
            case .containerUploaded, .containerRetired, .containerDeleted:
                if let day = event.day, let shard = event.shard { lists.remove(DayShard(day: day, shard: shard)) }
                if event.kind == .containerDeleted, let key = event.containerKey {
                    let gone = located.removeAll { _, served in served.located.key == key }
                    verified.remove(key)
                    for version in Set(gone.map(\.located.version)) { await reader.forget(key: key, version: version) }
                }
            case .tombstone:
                // Only the name's location: its container's index stays cached for its other files.
                if let name = event.name { located.remove(name) }
            case .sourceRetired:
                break
            }
        }
    }

    /// Forgets every list and location (the events that would have kept them current were missed).
    func forgetAll() {
        lists.removeAll()
        located.removeAll()
        verified.removeAll()
    }

    private func containers(_ ds: DayShard, refresh: Bool) async throws -> ContainerList {
        if !refresh, let cached = lists[ds] { return cached }
        let records = try await metadata.containers(state: .uploaded, shard: ds.shard, day: ds.day)
        let list = ContainerList(records: records, fetchedAt: monotonicSeconds())
        lists.set(ds, list)
        return list
    }
}

