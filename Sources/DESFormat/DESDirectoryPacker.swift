#if canImport(Glibc)
import Glibc
#endif

/// Packs directory trees into an archive: each regular file becomes an entry
/// named by its path relative to the tree's root, segments joined with `/`.
///
/// Directories are walked depth-first with each directory's entries sorted by
/// name, so the same tree always gives the same archive. Symbolic links inside
/// a tree and special files (devices, FIFOs, sockets) are skipped and reported
/// (a root that is a link is followed); a file whose path breaks the name rules,
/// or is not UTF-8, is an error unless `skipInvalidNames` is set.
public struct DESDirectoryPacker {
    /// Something left out of the archive, and why.
    public struct Skipped: Sendable, CustomStringConvertible {
        /// The path on disk.
        public var path: String
        /// Why it was left out.
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// Totals of a packing run.
    public struct Totals: Sendable {
        /// Files added.
        public var files = 0
        /// Bytes of file bodies added.
        public var bytes: UInt64 = 0
        /// Items left out.
        public var skipped = 0
    }

    /// Report invalid names as skipped instead of failing.
    public var skipInvalidNames = false
    /// Read files on the calling thread while a second thread hashes and writes them (default on);
    /// see ``DESArchiveWriter/addFiles(concurrently:_:)``. The archive is the same either way.
    public var concurrentReads = true
    /// Called for each item left out.
    public var onSkip: (Skipped) -> Void = { _ in }
    /// Called after each file with the running totals.
    public var onProgress: (Totals) -> Void = { _ in }

    /// Creates a packer.
    public init() {}

    /// Adds every regular file under each root (a root may also be a single file,
    /// named by its last path component) to `writer`.
    public func pack(roots: [String], into writer: DESArchiveWriter) throws -> Totals {
        var totals = Totals()
        try writer.addFiles(concurrently: concurrentReads) { feed in
            try pack(roots: roots, into: feed, totals: &totals)
        }
        return totals
    }

    private func pack(roots: [String], into writer: DESFileFeed, totals: inout Totals) throws {
        for root in roots {
            var st = stat()
            if stat(root, &st) != 0 {
                let code = errno
                if code == ENOENT { throw DESFormatError(.io, "no such file or directory", path: root, errno: code) }
                throw ioError("stat", path: root, errno: code)
            }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                if fd < 0 { throw ioError("open directory", path: root) }
                try walk(dirFD: fd, diskPath: root, prefix: "", writer: writer, totals: &totals)
            } else if (st.st_mode & S_IFMT) == S_IFREG {
                var base = root
                while base.hasSuffix("/") { base.removeLast() }
                if let slash = base.lastIndex(of: "/") { base = String(base[base.index(after: slash)...]) }
                try root.withCString { path in
                    try addFile(
                        dirFD: AT_FDCWD, entryName: path, followLink: true, diskPath: root, name: base, writer: writer,
                        totals: &totals)
                }
            } else {
                skip(root, "not a regular file or directory", &totals)
            }
        }
    }

    private func skip(_ path: String, _ reason: String, _ totals: inout Totals) {
        totals.skipped += 1
        onSkip(Skipped(path: path, reason: reason))
    }

    /// Walks one directory (takes ownership of `dirFD`).
    private func walk(dirFD: Int32, diskPath: String, prefix: String, writer: DESFileFeed, totals: inout Totals)
        throws
    {
        guard let dir = fdopendir(dirFD) else {
            let error = ioError("read directory", path: diskPath)
            _ = Glibc.close(dirFD)
            throw error
        }
        defer { closedir(dir) }
        let listing = try DirectoryListing(dir, path: diskPath)
        let fd = dirfd(dir)
        try listing.forEach { entryName, raw, listedType in
            // Opened by its bytes as listed; named in the archive only if they are UTF-8.
            let component = String(validating: raw, as: UTF8.self)
            let shown = component ?? String(decoding: raw, as: UTF8.self)
            let childDisk = diskPath.hasSuffix("/") ? diskPath + shown : diskPath + "/" + shown
            var type = listedType
            if type == UInt8(DT_UNKNOWN) {
                var st = stat()
                if fstatat(fd, entryName, &st, AT_SYMLINK_NOFOLLOW) != 0 { throw ioError("stat", path: childDisk) }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: type = UInt8(DT_DIR)
                case S_IFREG: type = UInt8(DT_REG)
                case S_IFLNK: type = UInt8(DT_LNK)
                default: type = UInt8(DT_UNKNOWN)
                }
            }
            if type == UInt8(DT_LNK) {
                skip(childDisk, "symbolic link skipped", &totals)
                return
            }
            if type != UInt8(DT_REG) && type != UInt8(DT_DIR) {
                skip(childDisk, "special file skipped", &totals)
                return
            }
            guard let component else {
                if skipInvalidNames {
                    skip(childDisk, "name is not valid UTF-8", &totals)
                    return
                }
                throw DESFormatError(
                    .invalidName,
                    "invalid name: \(DESNameRules.quoted(shown)) is not valid UTF-8 (pass skipInvalidNames to leave such files out)",
                    path: childDisk)
            }
            let childName = prefix.isEmpty ? component : prefix + "/" + component
            if type == UInt8(DT_REG) {
                try addFile(dirFD: fd, entryName: entryName, diskPath: childDisk, name: childName, writer: writer, totals: &totals)
            } else {
                let sub = openat(fd, entryName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if sub < 0 { throw ioError("open directory", path: childDisk) }
                try walk(dirFD: sub, diskPath: childDisk, prefix: childName, writer: writer, totals: &totals)
            }
        }
    }

    private func addFile(
        dirFD: Int32, entryName: UnsafePointer<CChar>, followLink: Bool = false, diskPath: String, name: String,
        writer: DESFileFeed, totals: inout Totals
    ) throws {
        if skipInvalidNames && !DESNameRules.isValid(name) {
            skip(diskPath, "name breaks the DES name rules", &totals)
            return
        }
        // A root named on the command line is followed like a root directory is; links inside a tree are not.
        let fd = openat(dirFD, entryName, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (followLink ? 0 : O_NOFOLLOW))
        if fd < 0 {
            if errno == ELOOP {
                skip(diskPath, "symbolic link skipped", &totals)
                return
            }
            throw ioError("open", path: diskPath)
        }
        do {
            let size = try writer.add(name: name, ownedFileDescriptor: fd, path: diskPath)
            totals.files += 1
            totals.bytes += size
            onProgress(totals)
        } catch let error as DESFormatError where error.code == .invalidName {
            throw DESFormatError(.invalidName, "\(error.message) (pass skipInvalidNames to leave such files out)", path: diskPath)
        }
    }
}
