#if canImport(Glibc)
import Glibc
#endif

extension DESArchiveReader {
    /// Totals of an unpack.
    public struct UnpackTotals: Sendable {
        /// Files written.
        public var files = 0
        /// Bytes written.
        public var bytes: UInt64 = 0
        /// Entries not written (external bodies).
        public var skipped: [String] = []
    }

    /// Writes every entry under `directory`, recreating the `/`-separated tree.
    ///
    /// Never writes outside `directory`: every name is checked against the name
    /// rules before anything is written (no absolute paths, no `..`), and every
    /// path component is opened with `O_NOFOLLOW`, so a symbolic link planted
    /// inside the directory cannot redirect a write. Existing files are an error
    /// unless `overwrite` is set. External entries are skipped and listed.
    ///
    /// With `verify` (the default) each body is hashed as it is written and checked
    /// against the `sha256` in its META before it gets its name: a body that does
    /// not match stops the unpack with `checksumMismatch` and leaves no file behind
    /// for that entry. Each file is written under a temporary name and renamed into
    /// place, so no name ever holds a half-written body.
    public func unpack(
        to directory: String, overwrite: Bool = false, verify: Bool = true, onFile: (String) -> Void = { _ in }
    ) throws -> UnpackTotals {
        for entry in index.entries {
            do {
                try DESNameRules.validate(entry.name)
            } catch let error as DESFormatError {
                throw DESFormatError(.unsafePath, "refusing to unpack: \(error.message)", path: path)
            }
        }
        var prefix = directory.hasPrefix("/") ? "/" : ""
        for part in directory.split(separator: "/") {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw ioError("create directory", path: prefix) }
        }
        let root = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if root < 0 { throw ioError("open directory", path: directory) }
        defer { _ = Glibc.close(root) }

        var totals = UnpackTotals()
        var cachedDir = ""
        var cachedFD: Int32 = -1
        defer { if cachedFD >= 0 { _ = Glibc.close(cachedFD) } }

        for entry in index.entries where index.entry(named: entry.name) == entry {
            if entry.isExternal {
                totals.skipped.append(entry.name)
                continue
            }
            var parts = entry.name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            let leaf = parts.removeLast()
            let dirPath = parts.joined(separator: "/")
            var dirFD = root
            if !parts.isEmpty {
                if dirPath != cachedDir || cachedFD < 0 {
                    if cachedFD >= 0 { _ = Glibc.close(cachedFD) }
                    cachedFD = -1
                    cachedFD = try openDirectoryChain(root: root, parts: parts, base: directory)
                    cachedDir = dirPath
                }
                dirFD = cachedFD
            }
            let target = directory + "/" + entry.name
            let want = verify ? try checksumCheck(for: entry.name, size: entry.dataLength) : nil
            var st = stat()
            if fstatat(dirFD, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 {
                guard overwrite else {
                    throw DESFormatError(.outputExists, "already exists (set overwrite to replace it)", path: target)
                }
                if (st.st_mode & S_IFMT) == S_IFDIR {
                    throw DESFormatError(.unsafePath, "a directory is in the way", path: target)
                }
            }
            try writeEntry(entry, into: dirFD, leaf: leaf, target: target, checksum: want)
            totals.files += 1
            totals.bytes += entry.dataLength
            onFile(entry.name)
        }
        return totals
    }

    /// Writes one body to a temporary name beside `leaf`, checks its size and checksum, and renames it
    /// into place (replacing a file or link there, never following one). On any failure the temporary file is removed.
    private func writeEntry(_ entry: DESIndexEntry, into dirFD: Int32, leaf: String, target: String, checksum want: String?)
        throws
    {
        let temp = ".\(leaf.prefix(200)).des-unpack-\(getpid())"
        _ = unlinkat(dirFD, temp, 0)
        let fd = openat(dirFD, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if fd < 0 { throw ioError("create", path: target) }
        var done = false
        defer {
            _ = Glibc.close(fd)
            if !done { _ = unlinkat(dirFD, temp, 0) }
        }
        let hasher = want == nil ? nil : SHA256Stream()
        try forEachChunk(offset: entry.dataOffset, length: entry.dataLength) { chunk in
            if let base = chunk.baseAddress, chunk.count > 0 {
                hasher?.update(chunk)
                try writeFully(fd, base, count: chunk.count, path: target)
            }
        }
        var st = stat()
        if fstat(fd, &st) != 0 || UInt64(st.st_size) != entry.dataLength {
            throw DESFormatError(.io, "short write (disk full?)", path: target)
        }
        if let want, let hasher {
            try Self.compare(got: hasher.finalizeHex(), want: want, name: entry.name, path: path)
        }
        if renameat(dirFD, temp, dirFD, leaf) != 0 { throw ioError("rename into place", path: target) }
        done = true
    }

    /// Opens (creating as needed) `root/parts...`, refusing to follow symbolic links.
    private func openDirectoryChain(root: Int32, parts: [String], base: String) throws -> Int32 {
        var current = root
        var shown = base
        for part in parts {
            shown += "/" + part
            var next = openat(current, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT {
                if mkdirat(current, part, 0o755) != 0 && errno != EEXIST {
                    let error = ioError("create directory", path: shown)
                    if current != root { _ = Glibc.close(current) }
                    throw error
                }
                next = openat(current, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            if next < 0 {
                let code = errno
                if current != root { _ = Glibc.close(current) }
                if code == ELOOP || code == ENOTDIR {
                    throw DESFormatError(.unsafePath, "is a symbolic link or not a directory; refusing to write through it", path: shown, errno: code)
                }
                throw ioError("open directory", path: shown, errno: code)
            }
            if current != root { _ = Glibc.close(current) }
            current = next
        }
        return current
    }
}
