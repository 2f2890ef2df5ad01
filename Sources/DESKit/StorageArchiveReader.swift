import DESFormat


/// Reads single files from a container in any ``StorageBackend`` with ranged reads:
/// one suffix read for the footer and (usually) the whole index — which also tells the object's
/// size and version, so no `HEAD` is needed — one more when the index is larger, then one ranged
/// read per file, pinned to that version (`If-Match`). With an index cache a warm read is one
/// request; when the object changed under a cached index (`changed`), the entry is dropped and
/// the index loaded again, once.
///
/// Every body it returns is checked against the SHA-256 its META records (kept in the index:
/// a sealed container's tail holds META) and a mismatch is a ``DESFormatError/Code/checksumMismatch``
/// naming the container and the entry. A cached index is used only for the object it was read
/// from (``DESIndex/origin``). An unsealed container's index holds no META: its entries' META is
/// read (merged ranges, one more request) and a sha256 it records is checked all the same, so
/// clearing a container's seal does not turn the check off; the original's archives record
/// none, and their bodies are returned unchecked, as before.
public struct StorageArchiveReader: Sendable {
    /// The storage.
    public let storage: any StorageBackend
    /// Bytes fetched by the first, suffix read (default 64 KiB).
    public var suffixLength: UInt64 = 64 * 1024
    /// An optional index cache.
    public var cache: (any IndexCache)?
    /// Neighbouring files of a batch whose gap is at most this many bytes are read in one request.
    public var maxGap: UInt64 = 64 * 1024

    /// Creates a reader.
    public init(storage: any StorageBackend, cache: (any IndexCache)? = nil) {
        self.storage = storage
        self.cache = cache
    }

    /// A container's index and the version it was read from (nil when the backend has no versions).
    public struct VersionedIndex: Sendable {
        public var index: DESIndex
        public var version: String?
    }

    /// Loads and validates the index of the container at `key`.
    ///
    /// One suffix read fetches the footer and usually everything the index needs (INDEX, and
    /// META before it when the container is sealed, so the seal is checked); when that tail
    /// is longer than the suffix, one more ranged read fetches the rest.
    public func index(key: String, etag: String? = nil) async throws -> DESIndex {
        if let etag, let hit = await cached(key: key, version: etag) { return hit }
        return try await load(key: key).index
    }

    /// The index, from the cache when it holds one for the newest version seen, else loaded.
    public func versionedIndex(key: String) async throws -> VersionedIndex {
        if let cache, let (version, index) = await cache.latest(location: storage.location, key: key) {
            if index.origin == identity(key: key, version: version).description {
                return VersionedIndex(index: index, version: version)
            }
            await cache.delete(identity(key: key, version: version))
        }
        return try await load(key: key)
    }

    /// The identity of one version of the container at `key` in this storage.
    func identity(key: String, version: String) -> ArchiveIdentity {
        ArchiveIdentity(location: storage.location, key: key, version: version)
    }

    /// The cached index of one version of a container — only when it was read from that very
    /// object (an entry holding another container's index is dropped, never used).
    private func cached(key: String, version: String) async -> DESIndex? {
        guard let cache else { return nil }
        let id = identity(key: key, version: version)
        guard let hit = await cache.get(id) else { return nil }
        guard hit.origin == id.description else {
            await cache.delete(id)
            return nil
        }
        return hit
    }

    /// Reads the index from storage (and caches it under its version).
    func load(key: String) async throws -> VersionedIndex {
        let (tail, size, version) = try await storage.getSuffixVersioned(key: key, length: suffixLength)
        return try await load(key: key, tail: tail, size: size, version: version, footer: try Self.footer(tail: tail, size: size, key: key))
    }

    /// Loads the index given the object's last bytes (`tail`), its size, version and footer:
    /// one more ranged read when the index region starts before `tail`.
    func load(key: String, tail: [UInt8], size: UInt64, version: String?, footer: DESFooter) async throws -> VersionedIndex {
        let whole = try await wholeTail(key: key, tail: tail, size: size, version: version, footer: footer)
        var result = try Self.index(ofTail: whole, size: size, footer: footer, key: key)
        if let version {
            result.origin = identity(key: key, version: version).description
            await cache?.set(identity(key: key, version: version), index: result, ttlSeconds: nil)
        }
        return VersionedIndex(index: result, version: version)
    }

    /// The container's index, read from storage (never from the cache), and what is wrong with
    /// its two-level index against it, checked from the same bytes: the tail holds the LEVELS
    /// region. For `des check`.
    public func checkedIndex(key: String) async throws -> (index: VersionedIndex, levelsProblems: [String]) {
        let (tail, size, version) = try await storage.getSuffixVersioned(key: key, length: suffixLength)
        let footer = try Self.footer(tail: tail, size: size, key: key)
        let whole = try await wholeTail(key: key, tail: tail, size: size, version: version, footer: footer)
        let index = try Self.index(ofTail: whole, size: size, footer: footer, key: key)
        var problems: [String] = []
        whole.withUnsafeBytes { raw in
            DESLevels.check(suffix: raw, index: index, meta: { _ in nil }) { name, message in problems.append("\(name): \(message)") }
        }
        return (VersionedIndex(index: index, version: version), problems)
    }

    /// The object's bytes from the footer's `tailStart` to its end: `tail` (its last bytes),
    /// with one more ranged read when the tail starts before them.
    private func wholeTail(key: String, tail: [UInt8], size: UInt64, version: String?, footer: DESFooter) async throws -> [UInt8] {
        let tailOffset = size - UInt64(tail.count)
        guard footer.tailStart < tailOffset else { return tail }
        let rest = try await storage.get(key: key, offset: footer.tailStart, length: tailOffset - footer.tailStart, ifMatch: version)
        guard UInt64(rest.count) == tailOffset - footer.tailStart else {
            throw DESFormatError(.truncated, "short read of the index region (\(rest.count) bytes)", path: key)
        }
        return rest + tail
    }

    /// The index parsed from the object's last bytes (reaching back at least to `tailStart`).
    private static func index(ofTail tail: [UInt8], size: UInt64, footer: DESFooter, key: String) throws -> DESIndex {
        do {
            return try tail.withUnsafeBytes { raw in
                let start = Int(footer.tailStart - (size - UInt64(raw.count)))
                return try DESIndex(tail: UnsafeRawBufferPointer(rebasing: raw[start...]), footer: footer, archiveSize: size)
            }
        } catch let error as DESFormatError {
            throw error.path == nil ? DESFormatError(error.code, error.message, path: key) : error
        }
    }

    /// Decodes and validates the footer at the end of a suffix read (and the header, when the suffix is the whole object).
    static func footer(tail: [UInt8], size: UInt64, key: String) throws -> DESFooter {
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
    /// A zero-length file costs no read of its own.
    /// A container with a two-level index costs the root (in the first read), one leaf and the body.
    public func file(named name: String, key: String, etag: String? = nil) async throws -> [UInt8]? {
        try await withCurrentRoute(key: key) { route in
            switch route {
            case .flat(let versioned):
                return try await read([name], key: key, from: versioned)[0]
            case .levels(let root):
                guard let entry = try await levelsEntry(name, key: key, root: root) else { return nil }
                let want = try Self.requireDigest(entry, key: key)
                let bytes: [UInt8]
                if entry.flags.contains(.external) {
                    bytes = try await external(entry.indexEntry, key: key, version: root.version)
                } else if entry.dataLength == 0 {
                    bytes = []
                } else {
                    bytes = try await storage.get(key: key, offset: entry.dataOffset, length: entry.dataLength, ifMatch: root.version)
                    guard UInt64(bytes.count) == entry.dataLength else {
                        throw DESFormatError(.truncated, "short read of \"\(name)\" (\(bytes.count) of \(entry.dataLength) bytes)", path: key)
                    }
                }
                try Self.check(bytes, name: name, expected: want, key: key)
                return bytes
            }
        }
    }

    /// The bytes of each of `names` (nil for a name the container does not hold), neighbouring
    /// ones read together: files whose gap is at most ``maxGap`` cost one ranged read.
    public func files(named names: [String], key: String) async throws -> [[UInt8]?] {
        try await withCurrentIndex(key: key) { versioned in try await read(names, key: key, from: versioned) }
    }

    /// Runs `body` on the container's index; when the container turns out to have been replaced
    /// under a cached index (``DESKitError/Code/changed``), that index is forgotten and `body`
    /// runs once more on the new one. Without a cache the index was just read: the error stands.
    func withCurrentIndex<T>(key: String, _ body: (VersionedIndex) async throws -> T) async throws -> T {
        let versioned = try await versionedIndex(key: key)
        do {
            return try await body(versioned)
        } catch let error as DESKitError where error.code == .changed && cache != nil {
            await forget(key: key, version: versioned.version)
            return try await body(try await versionedIndex(key: key))
        }
    }

    /// The META object of `entry` (one ranged read, pinned to `version`).
    func metadata(of entry: DESIndexEntry, key: String, version: String?) async throws -> DESMetadata {
        let raw = try await storage.get(key: key, offset: entry.metaOffset, length: entry.metaLength, ifMatch: version)
        guard UInt64(raw.count) == entry.metaLength else {
            throw DESFormatError(.truncated, "short read of \"\(entry.name)\"'s META (\(raw.count) of \(entry.metaLength) bytes)", path: key)
        }
        do {
            return try DESMetadata.parse(raw)
        } catch {
            throw DESFormatError(.badMetadata, "\"\(entry.name)\"'s META is not a JSON object", path: key)
        }
    }

    /// The body of an entry stored outside the container: its META names the object
    /// (`external_key`), which is read whole and checked against the entry's size.
    func external(_ entry: DESIndexEntry, key: String, version: String?) async throws -> [UInt8] {
        guard let externalKey = try await metadata(of: entry, key: key, version: version)["external_key"]?.stringValue else {
            throw DESFormatError(.badIndexEntry, "\"\(entry.name)\" is external but its META names no external_key", path: key)
        }
        let bytes = try await storage.get(key: externalKey)
        guard UInt64(bytes.count) == entry.dataLength else {
            throw DESFormatError(
                .truncated, "\"\(entry.name)\": \(externalKey) is \(bytes.count) bytes, the index says \(entry.dataLength)", path: key)
        }
        return bytes
    }

    /// The SHA-256 `name`'s body must hash to, from the index; nil for an unsealed container
    /// (the original's, which records none). A sealed container's entry without one is corrupt.
    func expectedDigest(of name: String, at position: Int, in index: DESIndex, key: String) throws -> String? {
        guard index.isSealed else { return nil }
        guard let digest = index.sha256(at: position) else {
            throw DESFormatError(.missingChecksum, "\"\(name)\" has no sha256 in its META, which a sealed container requires", path: key)
        }
        return digest
    }

    /// Reads `ranges` of the container at `key`, neighbours merged (gaps of at most ``maxGap``)
    /// and pinned to `version`, and hands each range's bytes to `body` with its position.
    private func readRanges(
        _ ranges: [(offset: UInt64, length: UInt64)], key: String, version: String?, what: String,
        _ body: (Int, ArraySlice<UInt8>) throws -> Void
    ) async throws {
        for plan in DESRangePlanner.plan(ranges, maxGap: maxGap) {
            let bytes = try await storage.get(key: key, offset: plan.offset, length: plan.length, ifMatch: version)
            guard UInt64(bytes.count) == plan.length else {
                throw DESFormatError(.truncated, "short read of \(what) at \(plan.offset) (\(bytes.count) of \(plan.length) bytes)", path: key)
            }
            for member in plan.members {
                let start = Int(ranges[member].offset - plan.offset)
                try body(member, bytes[start..<(start + Int(ranges[member].length))])
            }
        }
    }

    /// The sha256 each name's META records in an unsealed container (nil where it records none,
    /// as in the original's archives), its META read in merged ranges.
    func recordedDigests(of names: [String], in v: VersionedIndex, key: String) async throws -> [String?] {
        var out = [String?](repeating: nil, count: names.count)
        var ranges: [(offset: UInt64, length: UInt64)] = []
        var owners: [Int] = []
        for (i, name) in names.enumerated() {
            guard let entry = v.index.entry(named: name), entry.metaLength > 0 else { continue }
            ranges.append((entry.metaOffset, entry.metaLength))
            owners.append(i)
        }
        try await readRanges(ranges, key: key, version: v.version, what: "META") { member, raw in
            let name = names[owners[member]]
            let meta: DESMetadata
            do {
                meta = try DESMetadata.parse(Array(raw))
            } catch {
                throw DESFormatError(.badMetadata, "\"\(name)\"'s META is not a JSON object", path: key)
            }
            out[owners[member]] = try meta.recordedSHA256(entry: name, path: key)
        }
        return out
    }

    /// Throws ``DESFormatError/Code/checksumMismatch`` (naming the container and the entry)
    /// unless `bytes` hash to `expected`.
    public static func check(_ bytes: [UInt8], name: String, expected: String?, key: String) throws {
        guard let expected else { return }
        let got = BodyDigest.hex(of: bytes)
        guard got == expected else {
            throw DESFormatError(
                .checksumMismatch, "entry \"\(name)\": the body hashes to \(got), META records \(expected)", path: key)
        }
    }

    /// The bytes of each of `names` in the container at `key` whose index the caller holds (nil
    /// for a name it does not hold), checked as ``files(named:key:)`` checks them, with no index read.
    public func files(named names: [String], key: String, in versioned: VersionedIndex) async throws -> [[UInt8]?] {
        try await read(names, key: key, from: versioned)
    }

    func read(_ names: [String], key: String, from v: VersionedIndex) async throws -> [[UInt8]?] {
        var out = [[UInt8]?](repeating: nil, count: names.count)
        var ranges: [(offset: UInt64, length: UInt64)] = []
        var owners: [Int] = []
        var expected = [String?](repeating: nil, count: names.count)
        if !v.index.isSealed {
            // No META in the index: read it (merged ranges) — a sha256 it records is checked too.
            expected = try await recordedDigests(of: names, in: v, key: key)
        }
        for (i, name) in names.enumerated() {
            guard let position = v.index.position(of: name) else { continue }
            let entry = v.index.entries[position]
            if v.index.isSealed { expected[i] = try expectedDigest(of: name, at: position, in: v.index, key: key) }
            if entry.isExternal {
                let bytes = try await external(entry, key: key, version: v.version)
                try Self.check(bytes, name: name, expected: expected[i], key: key)
                out[i] = bytes
                continue
            }
            if entry.dataLength == 0 {
                try Self.check([], name: name, expected: expected[i], key: key)
                out[i] = []
                continue
            }
            ranges.append((entry.dataOffset, entry.dataLength))
            owners.append(i)
        }
        try await readRanges(ranges, key: key, version: v.version, what: "bodies") { member, raw in
            let body = Array(raw)
            try Self.check(body, name: names[owners[member]], expected: expected[owners[member]], key: key)
            out[owners[member]] = body
        }
        return out
    }
}
