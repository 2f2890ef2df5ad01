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
    ///
    /// One suffix read fetches the footer and usually everything the index needs (INDEX, and
    /// META before it when the container is sealed, so the seal is checked); when that tail
    /// is longer than the suffix, one more ranged read fetches the rest.
    public func index(key: String, etag: String? = nil) async throws -> DESIndex {
        let identity = etag.map { ArchiveIdentity(location: storage.location, key: key, version: $0) }
        if let identity, let cache, let hit = await cache.get(identity) { return hit }
        var (tail, size) = try await storage.getSuffix(key: key, length: suffixLength)
        let footer = try Self.footer(tail: tail, size: size, key: key)
        let tailOffset = size - UInt64(tail.count)
        if footer.tailStart < tailOffset {
            let rest = try await storage.get(key: key, offset: footer.tailStart, length: tailOffset - footer.tailStart)
            guard UInt64(rest.count) == tailOffset - footer.tailStart else {
                throw DESFormatError(.truncated, "short read of the index region (\(rest.count) bytes)", path: key)
            }
            tail = rest + tail
        }
        let result: DESIndex
        do {
            result = try tail.withUnsafeBytes { raw in
                let start = Int(footer.tailStart - (size - UInt64(raw.count)))
                return try DESIndex(tail: UnsafeRawBufferPointer(rebasing: raw[start...]), footer: footer, archiveSize: size)
            }
        } catch let error as DESFormatError {
            throw error.path == nil ? DESFormatError(error.code, error.message, path: key) : error
        }
        if let identity, let cache { await cache.set(identity, index: result, ttlSeconds: nil) }
        return result
    }

    /// Decodes and validates the footer at the end of a suffix read (and the header, when the suffix is the whole object).
    private static func footer(tail: [UInt8], size: UInt64, key: String) throws -> DESFooter {
        guard size >= UInt64(DESFormat.minimumArchiveSize), tail.count >= DESFormat.footerSize else {
            throw DESFormatError(.tooSmall, "archive is \(size) bytes; a DES archive is at least \(DESFormat.minimumArchiveSize)", path: key)
        }
        do {
            return try tail.withUnsafeBytes { raw in
                if UInt64(raw.count) == size {
                    try DESIndex.validateHeader(UnsafeRawBufferPointer(rebasing: raw.prefix(DESFormat.headerSize)), archiveSize: size)
                }
                let footer = try DESFooter.decode(UnsafeRawBufferPointer(rebasing: raw.suffix(DESFormat.footerSize)))
                try footer.validate(archiveSize: size)
                return footer
            }
        } catch let error as DESFormatError {
            throw DESFormatError(error.code, error.message, path: key)
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
