import DESFormat

/// One file found in a container: where its bytes are and what its META says, so that
/// a server can answer `HEAD`, `ETag` and `Range` before (or without) reading the body.
public struct LocatedEntry: Sendable {
    /// The container's key.
    public let key: String
    /// The container's version when the entry was found (`If-Match` of later reads).
    public let version: String?
    /// The index entry.
    public let entry: DESIndexEntry
    /// The entry's META object.
    public let metadata: DESMetadata
    /// The SHA-256 of the body that META records, in lowercase hex, when present (read from
    /// META once, when the entry is found: a server asks for it on every request).
    public let sha256: String?
    /// The content type META records (`content_type`, `mime_type` or `mime`), when present.
    public let contentType: String?

    /// The file's size in bytes.
    public var size: UInt64 { entry.dataLength }

    /// An entry found at `key` (version `version`), with its META.
    public init(key: String, version: String?, entry: DESIndexEntry, metadata: DESMetadata) {
        self.key = key
        self.version = version
        self.entry = entry
        self.metadata = metadata
        self.sha256 = metadata["sha256"]?.stringValue.flatMap { $0.isEmpty ? nil : $0.lowercased() }
        self.contentType = metadata.contentType
    }
}

extension StorageArchiveReader {
    /// Finds `name` in the container at `key`. Nil when the container does not hold the name.
    /// Through a two-level index: its leaf entry (the root and the leaf from the cache when
    /// warm), which carries the size, sha256 and content type, so no META is read (but for an
    /// external entry, whose META names its object). Through the flat index: its index entry
    /// (from the cache when warm) and its META (one ranged read).
    public func locate(_ name: String, key: String) async throws -> LocatedEntry? {
        try await withCurrentRoute(key: key) { route in
            switch route {
            case .flat(let versioned):
                guard let position = versioned.index.position(of: name) else { return nil }
                _ = try expectedDigest(of: name, at: position, in: versioned.index, key: key)  // a sealed entry has one
                let entry = versioned.index.entries[position]
                let metadata = try await metadata(of: entry, key: key, version: versioned.version)
                return LocatedEntry(key: key, version: versioned.version, entry: entry, metadata: metadata)
            case .levels(let root):
                guard let found = try await levelsEntry(name, key: key, root: root) else { return nil }
                _ = try Self.requireDigest(found, key: key)
                let metadata =
                    found.flags.contains(.external)
                    ? try await metadata(of: found.indexEntry, key: key, version: root.version) : Self.metadata(of: found)
                return LocatedEntry(key: key, version: root.version, entry: found.indexEntry, metadata: metadata)
            }
        }
    }

    /// `length` bytes of a located file from `offset` (within the file), pinned to the version
    /// it was found in: a replaced container throws ``DESKitError/Code/changed``. An external
    /// body is read from the object its META names.
    public func read(_ located: LocatedEntry, offset: UInt64, length: UInt64) async throws -> [UInt8] {
        guard length > 0 else { return [] }
        guard offset <= located.size, length <= located.size - offset else {
            throw DESKitError(.invalidData, "bytes \(offset)+\(length) are outside \"\(located.entry.name)\" (\(located.size) bytes)")
        }
        let bytes: [UInt8]
        if located.entry.isExternal {
            guard let externalKey = located.metadata["external_key"]?.stringValue else {
                throw DESFormatError(.badIndexEntry, "\"\(located.entry.name)\" is external but its META names no external_key", path: located.key)
            }
            bytes = try await storage.get(key: externalKey, offset: offset, length: length)
        } else {
            bytes = try await storage.get(
                key: located.key, offset: located.entry.dataOffset + offset, length: length, ifMatch: located.version)
        }
        guard UInt64(bytes.count) == length else {
            throw DESFormatError(.truncated, "short read of \"\(located.entry.name)\" (\(bytes.count) of \(length) bytes)", path: located.key)
        }
        return bytes
    }

    /// Drops the cached index, or two-level root, of one version of a container (its leaves age out).
    public func forget(key: String, version: String?) async {
        guard let cache, let version else { return }
        await cache.delete(identity(key: key, version: version))
        await cache.deletePart(identity(key: key, version: version), name: Self.rootPart)
    }
}
