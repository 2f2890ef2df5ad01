import DESFormat

/// The identity of one version of an archive: bucket/key/ETag, or path/size/mtime.
public struct ArchiveIdentity: Sendable, Hashable, CustomStringConvertible {
    /// Where the archive is (bucket or storage location).
    public var location: String
    /// The archive's key or path.
    public var key: String
    /// The version (ETag, or size+mtime).
    public var version: String
    /// Creates an identity.
    public init(location: String, key: String, version: String) {
        self.location = location
        self.key = key
        self.version = version
    }
    public var description: String { "\(location)/\(key)@\(version)" }
}

/// Figures about a cache.
public struct IndexCacheStats: Sendable, Equatable {
    /// Lookups that found an entry.
    public var hits: Int = 0
    /// Lookups that did not.
    public var misses: Int = 0
    /// Entries held.
    public var entries: Int = 0
    /// Entries dropped for space or age.
    public var evictions: Int = 0
    /// Creates zero figures.
    public init() {}
}

/// A cache of parsed archive indexes, so a warm read costs one ranged read.
public protocol IndexCache: Sendable {
    /// The cached index for this identity, if present and not expired.
    func get(_ identity: ArchiveIdentity) async -> DESIndex?
    /// Stores an index, optionally expiring after `ttlSeconds`.
    func set(_ identity: ArchiveIdentity, index: DESIndex, ttlSeconds: Double?) async
    /// Drops one entry.
    func delete(_ identity: ArchiveIdentity) async
    /// Drops everything.
    func clear() async
    /// Hit, miss and size figures.
    func stats() async -> IndexCacheStats

    /// The newest version stored for an archive and its index, so that a warm read needs no
    /// request to learn the version (it then pins its read to it). Default: none.
    func latest(location: String, key: String) async -> (version: String, index: DESIndex)?

    /// Releases the cache's connections and threads (it is not used after). Default: nothing.
    func close() async

    /// A part of one version of a container's two-level index (its root, or one of its leaves).
    /// Default: none kept.
    func part(_ identity: ArchiveIdentity, name: String) async -> IndexCachePart?
    /// Stores a part, within the cache's bounds, optionally expiring after `ttlSeconds`; with
    /// `newest`, it is also found by ``latestPart(location:key:name:)`` (a root, not a leaf).
    func setPart(_ identity: ArchiveIdentity, name: String, part: IndexCachePart, newest: Bool, ttlSeconds: Double?) async
    /// The newest version for which a part of that name was stored with `newest`, with the part.
    func latestPart(location: String, key: String, name: String) async -> (version: String, part: IndexCachePart)?
    /// Drops one part.
    func deletePart(_ identity: ArchiveIdentity, name: String) async
}

extension IndexCache {
    public func latest(location: String, key: String) async -> (version: String, index: DESIndex)? { nil }
    public func close() async {}
    public func part(_ identity: ArchiveIdentity, name: String) async -> IndexCachePart? { nil }
    public func setPart(_ identity: ArchiveIdentity, name: String, part: IndexCachePart, newest: Bool, ttlSeconds: Double?) async {}
    public func latestPart(location: String, key: String, name: String) async -> (version: String, part: IndexCachePart)? { nil }
    public func deletePart(_ identity: ArchiveIdentity, name: String) async {}
}

/// A part of a container's two-level index as a cache holds it: its bytes, which a reader
/// checks before use, and — in a cache within this process — the value already parsed from
/// them, so a warm read does not parse the same bytes again. A cache that keeps only bytes
/// (Redis) returns none.
public struct IndexCachePart: Sendable {
    /// The part's bytes.
    public var bytes: [UInt8]
    /// What the reader parsed and checked from `bytes`, when the cache kept it.
    public var parsed: (any Sendable)?

    /// A part of these bytes, and what was parsed from them.
    public init(bytes: [UInt8], parsed: (any Sendable)? = nil) {
        self.bytes = bytes
        self.parsed = parsed
    }
}
