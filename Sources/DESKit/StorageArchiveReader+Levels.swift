import DESFormat

/// Single names through a container's two-level index (`docs/format.md`, LEVELS): the first
/// suffix read brings the footer and the root, one ranged read the leaf, one more the body —
/// 3 requests cold at 10^6 entries, 2 with the root cached, 1 with the leaf cached. A container
/// whose whole tail comes with the first read, or that has no two-level index, is read through
/// its flat index as before (the seal then checked too).
extension StorageArchiveReader {
    /// A container's root, with what it was read with.
    struct LevelsRoot: Sendable {
        var footer: DESFooter
        var levels: DESLevels
        var archiveSize: UInt64
        var version: String?
    }

    /// How names of a container are looked up.
    enum Route: Sendable {
        case flat(VersionedIndex)
        case levels(LevelsRoot)
    }

    /// The cache part of a container's root: its archive size, then its bytes from the root to the end.
    static let rootPart = "root"

    /// How to look names up in `key`: its whole index when the cache holds it or when its tail
    /// comes whole with the first read (or it has no usable two-level index); else its root,
    /// from the cache or from that first read (one more read when the root starts before it).
    func route(key: String) async throws -> Route {
        if let cache {
            if let (version, index) = await cache.latest(location: storage.location, key: key) {
                if index.origin == identity(key: key, version: version).description { return .flat(VersionedIndex(index: index, version: version)) }
                await cache.delete(identity(key: key, version: version))
            }
            if let (version, part) = await cache.latestPart(location: storage.location, key: key, name: Self.rootPart) {
                if let root = part.parsed as? LevelsRoot, root.version == version { return .levels(root) }
                if let root = try? Self.root(fromPart: part.bytes, version: version) { return .levels(root) }
                await cache.deletePart(identity(key: key, version: version), name: Self.rootPart)
            }
        }
        let (tail, size, version) = try await storage.getSuffixVersioned(key: key, length: suffixLength)
        let footer = try Self.footer(tail: tail, size: size, key: key)
        let tailOffset = size - UInt64(tail.count)
        // (A trailer that fails its checks is passed over: the flat index, and its seal, still serve.)
        if footer.tailStart < tailOffset,
            let trailer = try? tail.withUnsafeBytes({ try DESLevels.trailer(suffix: $0, footer: footer, archiveSize: size) })
        {
            let rootStart = trailer.rootOffset
            var suffix = tail
            if rootStart < tailOffset {
                let head = try await storage.get(key: key, offset: rootStart, length: tailOffset - rootStart, ifMatch: version)
                guard UInt64(head.count) == tailOffset - rootStart else {
                    throw DESFormatError(.truncated, "short read of the two-level index's root (\(head.count) bytes)", path: key)
                }
                suffix = head + tail
            }
            // A damaged two-level index is passed over: the flat index (and its seal) still serve.
            if let levels = try? suffix.withUnsafeBytes({ try DESLevels.parse(suffix: $0, footer: footer, archiveSize: size) }) {
                let root = LevelsRoot(footer: footer, levels: levels, archiveSize: size, version: version)
                if let cache, let version {
                    var part: [UInt8] = []
                    part.reserveCapacity(8 + Int(size - levels.rootOffset))
                    withUnsafeBytes(of: size.littleEndian) { part.append(contentsOf: $0) }
                    part += suffix.suffix(Int(size - levels.rootOffset))
                    await cache.setPart(
                        identity(key: key, version: version), name: Self.rootPart, part: IndexCachePart(bytes: part, parsed: root), newest: true,
                        ttlSeconds: nil)
                }
                return .levels(root)
            }
        }
        return .flat(try await load(key: key, tail: tail, size: size, version: version, footer: footer))
    }

    /// A root from its cache part (archive size, then the bytes from the root to the end).
    static func root(fromPart part: [UInt8], version: String) throws -> LevelsRoot {
        guard part.count >= 8 + DESFormat.footerSize + DESLevels.trailerSize else {
            throw DESFormatError(.badLevels, "a cached root is too short")
        }
        return try part.withUnsafeBytes { raw in
            let size = raw.loadUnaligned(as: UInt64.self).littleEndian
            let rest = UnsafeRawBufferPointer(rebasing: raw[8...])
            let footer = try DESFooter.decode(UnsafeRawBufferPointer(rebasing: rest.suffix(DESFormat.footerSize)))
            try footer.validate(archiveSize: size)
            guard let levels = try DESLevels.parse(suffix: rest, footer: footer, archiveSize: size) else {
                throw DESFormatError(.badLevels, "a cached root has no trailer")
            }
            return LevelsRoot(footer: footer, levels: levels, archiveSize: size, version: version)
        }
    }

    /// The leaf entry of `name` (nil when the container does not hold it): the leaf from the cache
    /// or one ranged read pinned to the root's version.
    func levelsEntry(_ name: String, key: String, root: LevelsRoot) async throws -> DESLevelEntry? {
        guard let leaf = root.levels.leaf(for: name) else { return nil }
        let partName = "leaf@\(leaf.offset)"
        let id = root.version.map { identity(key: key, version: $0) }
        if let cache, let id, let cached = await cache.part(id, name: partName) {
            if let entries = cached.parsed as? [DESLevelEntry] { return Self.search(name, in: entries) }
            if let entries = try? cached.bytes.withUnsafeBytes({ try root.levels.entries(of: leaf, bytes: $0, footer: root.footer) }) {
                return Self.search(name, in: entries)
            }
            await cache.deletePart(id, name: partName)
        }
        let bytes = try await storage.get(key: key, offset: leaf.offset, length: leaf.length, ifMatch: root.version)
        let entries: [DESLevelEntry]
        do {
            entries = try bytes.withUnsafeBytes { try root.levels.entries(of: leaf, bytes: $0, footer: root.footer) }
        } catch let error as DESFormatError {
            throw error.path == nil ? DESFormatError(error.code, error.message, path: key) : error
        }
        if let cache, let id {
            await cache.setPart(id, name: partName, part: IndexCachePart(bytes: bytes, parsed: entries), newest: false, ttlSeconds: nil)
        }
        return Self.search(name, in: entries)
    }

    /// The sha256 of a leaf entry: only sealed archives carry a two-level index, and every entry
    /// of one records a sha256 — one without is damage, never a file to serve unchecked.
    static func requireDigest(_ entry: DESLevelEntry, key: String) throws -> String {
        guard let hex = entry.sha256Hex else {
            throw DESFormatError(.missingChecksum, "\"\(entry.name)\" has no sha256 in the two-level index of a sealed container", path: key)
        }
        return hex
    }

    /// Binary search of a leaf's entries (in name order).
    static func search(_ name: String, in entries: [DESLevelEntry]) -> DESLevelEntry? {
        var (low, high) = (0, entries.count)
        while low < high {
            let mid = (low + high) / 2
            if DESNameRules.precedes(entries[mid].name, name) { low = mid + 1 } else { high = mid }
        }
        return low < entries.count && entries[low].name == name ? entries[low] : nil
    }

    /// Runs `body` on the container's route; when the container was replaced under a cached
    /// index or root (``DESKitError/Code/changed``), they are forgotten and `body` runs once more.
    /// A damaged two-level index (a leaf that fails its checks) is read around: `body` runs on the
    /// flat index instead, whose seal is checked, so one damaged leaf costs a slower read, not the
    /// files it lists.
    func withCurrentRoute<T>(key: String, _ body: (Route) async throws -> T) async throws -> T {
        func run(_ route: Route) async throws -> T {
            guard case .levels = route else { return try await body(route) }
            do {
                return try await body(route)
            } catch let error as DESFormatError where [.badLevels, .regionOutOfBounds, .unsupportedEntry].contains(error.code) {
                return try await body(.flat(try await load(key: key)))
            }
        }
        let route = try await route(key: key)
        do {
            return try await run(route)
        } catch let error as DESKitError where error.code == .changed && cache != nil {
            switch route {
            case .flat(let v): await forget(key: key, version: v.version)
            case .levels(let root): await forget(key: key, version: root.version)
            }
            return try await run(try await self.route(key: key))
        }
    }

    /// What META would say of a leaf entry that the server needs: its size, sha256 and content type.
    static func metadata(of entry: DESLevelEntry) -> DESMetadata {
        var meta: DESMetadata = ["size": .int(Int64(clamping: entry.dataLength))]
        if let hex = entry.sha256Hex { meta["sha256"] = .string(hex) }
        if let type = entry.contentType { meta["content_type"] = .string(type) }
        return meta
    }
}
