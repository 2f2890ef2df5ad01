import DESFormat


/// Reads single files from a container in any ``StorageBackend`` with ranged reads:
/// one suffix read for the footer and (usually) the whole index, one more when
/// the index is larger, then one ranged read per file. Indexes can be cached.
public struct StorageArchiveReader: Sendable {
    /// The storage.
    public let storage: any StorageBackend
    /// Bytes fetched by the first, suffix read (default 64 KiB).
    public var suffixLength: UInt64 = 64 * 1024
    /// An optional index cache.
    public var cache: (any IndexCache)?

    /// Creates a reader.
    public init(storage: any StorageBackend, cache: (any IndexCache)? = nil) {
        self.storage = storage
        self.cache = cache
    }

    /// Loads and validates the index of the container at `key`.
    public func index(key: String, etag: String? = nil) async throws -> DESIndex {
        let identity = etag.map { ArchiveIdentity(location: storage.location, key: key, version: $0) }
        if let identity, let cache, let hit = await cache.get(identity) { return hit }
        let (tail, size) = try await storage.getSuffix(key: key, length: suffixLength)
        let index = try parseIndex(tail: tail, size: size, key: key)
        let result: DESIndex
        if let index {
            result = index
        } else {
            // The index is larger than the suffix: one more ranged read.
            let footer = try tail.withUnsafeBytes { raw in
                try DESFooter.decode(UnsafeRawBufferPointer(rebasing: raw.suffix(DESFormat.footerSize)))
            }
            try footer.validate(archiveSize: size)
            let bytes = try await storage.get(key: key, offset: footer.indexStart, length: footer.indexLength)
            result = try bytes.withUnsafeBytes { try DESIndex(indexBytes: $0, footer: footer, archiveSize: size) }
        }
        if let identity, let cache { await cache.set(identity, index: result, ttlSeconds: nil) }
        return result
    }

    /// Parses the footer and index from the tail of the object when the tail holds them; nil when it does not.
    private func parseIndex(tail: [UInt8], size: UInt64, key: String) throws -> DESIndex? {
        guard size >= UInt64(DESFormat.minimumArchiveSize), tail.count >= DESFormat.footerSize else {
            throw DESFormatError(.tooSmall, "archive is \(size) bytes; a DES archive is at least \(DESFormat.minimumArchiveSize)", path: key)
        }
        return try tail.withUnsafeBytes { raw -> DESIndex? in
            let footer = try DESFooter.decode(UnsafeRawBufferPointer(rebasing: raw.suffix(DESFormat.footerSize)))
            try footer.validate(archiveSize: size)
            let tailStart = size - UInt64(tail.count)
            if tailStart == 0 {
                try DESIndex.validateHeader(UnsafeRawBufferPointer(rebasing: raw.prefix(DESFormat.headerSize)), archiveSize: size)
            }
            guard footer.indexStart >= tailStart else { return nil }
            let start = Int(footer.indexStart - tailStart)
            let slice = UnsafeRawBufferPointer(rebasing: raw[start..<(start + Int(footer.indexLength))])
            return try DESIndex(indexBytes: slice, footer: footer, archiveSize: size)
        }
    }

    /// The bytes of `name` in the container at `key` (nil when the container has no such entry).
    public func file(named name: String, key: String, etag: String? = nil) async throws -> [UInt8]? {
        let index = try await self.index(key: key, etag: etag)
        guard let entry = index.entry(named: name) else { return nil }
        if entry.isExternal {
            throw DESFormatError(.externalEntry, "\"\(name)\" is stored outside the container", path: key)
        }
        if entry.dataLength == 0 { return [] }
        return try await storage.get(key: key, offset: entry.dataOffset, length: entry.dataLength)
    }
}
