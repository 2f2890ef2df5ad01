import DESFormat

extension StorageArchiveReader {
    /// Checks that the index the cache holds as the newest of `key` is still the object's own:
    /// one `HEAD`. When the object's version is another (it was replaced, or replaced and then
    /// restored), that index is forgotten, so the next read of `key` loads the object's current
    /// one, and the answer is true. False when the cache holds no index for `key` (the next read
    /// loads it anyway), when the backend has no versions, or when the version is unchanged.
    ///
    /// A reader that trusts "this container does not hold the name" from a cached index calls
    /// this before believing it for long: a negative answer holds only for the version it came from.
    public func revalidate(key: String) async throws -> Bool {
        guard let cache else { return false }
        // A cached root of a two-level index is checked the same way.
        if let (version, _) = await cache.latestPart(location: storage.location, key: key, name: Self.rootPart) {
            let current = try await storage.head(key: key)?.etag
            if current != version {
                await forget(key: key, version: version)
                if let (indexVersion, _) = await cache.latest(location: storage.location, key: key) { await forget(key: key, version: indexVersion) }
                return current != nil
            }
        }
        guard let (version, _) = await cache.latest(location: storage.location, key: key) else { return false }
        // Gone: forget its index, and let the search go on to the other containers.
        guard let current = try await storage.head(key: key)?.etag else {
            await forget(key: key, version: version)
            return false
        }
        guard current != version else { return false }
        await forget(key: key, version: version)
        return true
    }
}
