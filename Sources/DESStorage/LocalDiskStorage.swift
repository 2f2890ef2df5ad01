import CDESFileSystem
import DESFormat
import DESKit
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Containers on local disk under a root directory.
///
/// `put` is atomic: the object is linked (or copied and `fsync`ed) to a
/// temporary name beside its final one and renamed into place, then the
/// directory is synced. File I/O runs on the storage's own thread, except a warm ranged read
/// of a container (the server's read of one file): when all of its bytes are in the page cache
/// it is served on the caller's thread, with no hop (`preadv2` with `RWF_NOWAIT`).
public final class LocalDiskStorage: StorageBackend {
    /// The directory holding the objects.
    public let root: String
    private let thread = DedicatedThread(name: "des-local-storage")
    /// Container files kept open for versioned range reads (see ``OpenObjectCache``).
    let openObjects = OpenObjectCache(capacity: LocalDiskStorage.openFileLimit)
    /// How many container files versioned range reads keep open at most (64, less under a low
    /// descriptor limit: ``DescriptorBudget/containerFiles``, which the HTTP server leaves room for).
    static let openFileLimit = DescriptorBudget.containerFiles
    /// How many versioned range reads were served from the page cache on the caller's thread,
    /// and how many went to the storage thread (for tests and profiles).
    let rangeReads = Mutex((cached: 0, onThread: 0))
    /// Set once the file system has said it cannot read "only if cached" (`RWF_NOWAIT` refused:
    /// overlayfs, tmpfs and network file systems on some kernels); from then on every range
    /// goes to the storage thread without the wasted attempt.
    let inlineUnsupported = Mutex(false)

    /// Uses (creating if needed) `root`.
    public init(root: String) throws {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
        do {
            try FileManager.default.createDirectory(atPath: r, withIntermediateDirectories: true)
        } catch {
            throw DESKitError(.storage, "cannot create storage directory '\(r)': \(error.localizedDescription)")
        }
    }

    deinit { thread.stop() }

    public var location: String { "file://\(root)" }

    /// The path of an object (keys are checked: no absolute paths, no `..`).
    public func path(for key: String) throws -> String {
        guard Self.isPlainKey(key) else { throw DESKitError(.storage, "invalid storage key '\(key)'") }
        return root + "/" + key
    }

    /// Whether `key` is a relative path of non-empty components, none of them `.` or `..`
    /// (one pass over its bytes: every read of a file checks its container's key).
    static func isPlainKey(_ key: String) -> Bool {
        var key = key
        return key.withUTF8 { bytes in
            guard !bytes.isEmpty else { return false }
            var start = 0
            for i in 0...bytes.count {
                guard i == bytes.count || bytes[i] == UInt8(ascii: "/") else { continue }
                let n = i - start
                if n == 0 { return false }  // empty: a leading, doubled or trailing slash
                if n <= 2 && bytes[start] == UInt8(ascii: ".") && (n == 1 || bytes[start + 1] == UInt8(ascii: ".")) { return false }
                start = i + 1
            }
            return true
        }
    }

    private static func failure(_ what: String, _ path: String, _ code: Int32 = errno) -> DESKitError {
        DESKitError(.storage, "\(what) '\(path)' failed: \(String(cString: strerror(code)))", transient: code == EINTR || code == EAGAIN)
    }

    private static func info(key: String, path: String) throws -> ObjectInfo? {
        var st = stat()
        if stat(path, &st) != 0 {
            if errno == ENOENT { return nil }
            throw failure("stat", path)
        }
        try requireRegular(st, key: key)
        return ObjectInfo(key: key, size: UInt64(st.st_size), etag: etag(of: st))
    }

    /// Objects are regular files: a FIFO, a device, a directory or a socket where one should be
    /// is refused (never opened for reading, which could block or never end).
    private static func requireRegular(_ st: stat, key: String) throws {
        let kind = st.st_mode & S_IFMT
        guard kind != S_IFREG else { return }
        let what = kind == S_IFIFO ? "a FIFO" : kind == S_IFDIR ? "a directory" : kind == S_IFSOCK ? "a socket" : "a device"
        throw DESKitError(.storage, "object '\(key)' is \(what), not a regular file: not an object DES wrote")
    }

    /// A file's version: size, mtime in ns and inode (a rename over it, or a rewrite, changes it).
    private static func etag(of st: stat) -> String { etag(of: FileStamp(st)) }

    /// The version string of a stamp (see ``etag(of:)-stat``).
    static func etag(of stamp: FileStamp) -> String {
        return "\(stamp.size)-\(stamp.mtimeNanos)-\(stamp.inode)"
    }

    public func put(key: String, fromFile source: String) async throws -> ObjectInfo {
        let target = try path(for: key)
        return try await thread.run {
            let dir = (target as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let temp = target + Self.temporaryMarker + ProcessIdentity.current.token + ".r\(UInt32.random(in: 0...UInt32.max))"
            if link(source, temp) != 0 {
                // Different filesystem (or no hard links): copy and sync.
                try Self.copy(from: source, to: temp)
            } else {
                // The bytes to disk (a synced source costs nothing here); the new name is made
                // durable by the directory's sync after the rename.
                let fd = open(temp, O_RDONLY | O_CLOEXEC)
                if fd >= 0 {
                    let synced = fdatasync(fd) == 0
                    let code = errno
                    Glibc.close(fd)
                    if !synced {
                        unlink(temp)
                        throw Self.failure("sync", target, code)
                    }
                }
            }
            if rename(temp, target) != 0 {
                let code = errno
                unlink(temp)
                throw Self.failure("rename into place", target, code)
            }
            self.openObjects.remove(target)
            let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 {
                _ = fsync(dfd)
                Glibc.close(dfd)
            }
            guard let info = try Self.info(key: key, path: target) else {
                throw DESKitError(.storage, "object '\(key)' vanished right after it was stored")
            }
            return info
        }
    }

    private static func copy(from source: String, to target: String) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        if input < 0 { throw failure("open", source) }
        defer { Glibc.close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if output < 0 { throw failure("create", target) }
        var ok = false
        defer {
            Glibc.close(output)
            if !ok { unlink(target) }
        }
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(input, buffer, size)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("read", source)
            }
            if n == 0 { break }
            var done = 0
            while done < n {
                let w = write(output, buffer + done, n - done)
                if w < 0 {
                    if errno == EINTR { continue }
                    throw failure("write", target)
                }
                done += w
            }
        }
        if fsync(output) != 0 { throw failure("fsync", target) }
        ok = true
    }

    public func localPath(of key: String) -> String? {
        guard let p = try? path(for: key), FileManager.default.fileExists(atPath: p) else { return nil }
        return p
    }

    public func get(key: String) async throws -> [UInt8] {
        let p = try path(for: key)
        return try await thread.run {
            guard let info = try Self.info(key: key, path: p) else { throw DESKitError(.notFound, "no object '\(key)' in \(self.location)") }
            return try Self.readRange(p, key: key, offset: 0, length: info.size, location: self.location) ?? []
        }
    }

    public func get(key: String, offset: UInt64, length: UInt64) async throws -> [UInt8] {
        let p = try path(for: key)
        return try await thread.run { try Self.readRange(p, key: key, offset: offset, length: length, location: self.location) ?? [] }
    }

    /// The check and the read on one open file: the version compared is that of the very file
    /// read (a rename over it in between changes neither). A range of at most
    /// ``inlineReadLimit`` whose bytes are all in the page cache is read on the caller's thread
    /// (a warm read of one file, the server's common case, then costs no hop); anything else
    /// is read on the storage thread, which may block. With a version, the file is kept open
    /// for the next read of the same container (``OpenObjectCache``).
    public func get(key: String, offset: UInt64, length: UInt64, ifMatch: String?) async throws -> [UInt8] {
        let p = try path(for: key)
        if length <= Self.inlineReadLimit, !inlineUnsupported.withLock({ $0 }) {
            var unsupported = false
            if let cached = try versionedRead(p, key: key, offset: offset, length: length, ifMatch: ifMatch, cachedOnly: true, unsupported: &unsupported) {
                rangeReads.withLock { $0.cached += 1 }
                return cached
            }
            if unsupported { inlineUnsupported.withLock { $0 = true } }
        }
        rangeReads.withLock { $0.onThread += 1 }
        return try await thread.run {
            var unsupported = false
            return try self.versionedRead(p, key: key, offset: offset, length: length, ifMatch: ifMatch, cachedOnly: false, unsupported: &unsupported) ?? []
        }
    }

    /// A range of version `ifMatch` of the object at `p`, through its cached open file when that
    /// is still the version asked for and still linked; else the path is opened again (and the
    /// file kept open for the next read). Without a version, the path is opened and closed.
    private func versionedRead(
        _ p: String, key: String, offset: UInt64, length: UInt64, ifMatch: String?, cachedOnly: Bool, unsupported: inout Bool
    ) throws -> [UInt8]? {
        guard let ifMatch else {
            return try Self.readRange(p, key: key, offset: offset, length: length, location: location, cachedOnly: cachedOnly, unsupported: &unsupported)
        }
        let clock = monotonicNanos()
        if let open = openObjects.lookup(p, now: clock) {
            if open.version == ifMatch, open.unchanged {
                return try Self.readOpen(fd: open.fd, p, key: key, offset: offset, length: length, cachedOnly: cachedOnly, unsupported: &unsupported)
            }
            // Replaced, deleted, rewritten, or another version than the one asked for: the path decides.
            openObjects.remove(p, ifSame: open)
        }
        let (fd, st) = try Self.openObject(p, key: key, location: location)
        let stamp = FileStamp(st)
        let now = Self.etag(of: stamp)
        let object = OpenObject(fd: fd, stamp: stamp, version: now, now: clock)  // closes fd when let go
        guard now == ifMatch else { throw DESKitError(.changed, "'\(key)' changed (version \(now), not \(ifMatch))") }
        openObjects.insert(p, object)
        return try Self.readOpen(fd: object.fd, p, key: key, offset: offset, length: length, cachedOnly: cachedOnly, unsupported: &unsupported)
    }

    /// The largest range tried on the caller's thread (see ``get(key:offset:length:ifMatch:)``).
    static let inlineReadLimit: UInt64 = 256 << 10

    /// `length` bytes of the file at `p` from `offset`, opened and closed for this read. With
    /// `cachedOnly`, the bytes are read only if all of them are in the page cache (`preadv2` with
    /// `RWF_NOWAIT`, safe on a thread that must not block): nil when any would wait for the
    /// device, or the kernel or file system cannot tell (then `unsupported` is set). A version
    /// is checked by ``versionedRead(_:key:offset:length:ifMatch:cachedOnly:unsupported:)``.
    private static func readRange(_ p: String, key: String, offset: UInt64, length: UInt64, location: String) throws -> [UInt8]? {
        var unsupported = false
        return try readRange(p, key: key, offset: offset, length: length, location: location, cachedOnly: false, unsupported: &unsupported)
    }

    private static func readRange(
        _ p: String, key: String, offset: UInt64, length: UInt64, location: String, cachedOnly: Bool, unsupported: inout Bool
    ) throws -> [UInt8]? {
        let (fd, _) = try openObject(p, key: key, location: location)
        defer { Glibc.close(fd) }
        return try readOpen(fd: fd, p, key: key, offset: offset, length: length, cachedOnly: cachedOnly, unsupported: &unsupported)
    }

    /// The object at `p` opened for reading, and its `fstat`: a regular file, or a thrown error
    /// (`notFound` when there is none).
    private static func openObject(_ p: String, key: String, location: String) throws -> (fd: Int32, stat: stat) {
        // O_NONBLOCK: a FIFO put where an object should be must not block the open (it is refused below).
        let fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        if fd < 0 {
            if errno == ENOENT { throw DESKitError(.notFound, "no object '\(key)' in \(location)") }
            throw failure("open", p)
        }
        var st = stat()
        do {
            guard fstat(fd, &st) == 0 else { throw failure("stat", p) }
            try requireRegular(st, key: key)
        } catch {
            Glibc.close(fd)
            throw error
        }
        return (fd, st)
    }

    /// `length` bytes at `offset` of the open object `fd` (at `p`). With `cachedOnly`, nil when
    /// any of them would wait for the device, or the file system cannot tell (`unsupported` set).
    private static func readOpen(
        fd: Int32, _ p: String, key: String, offset: UInt64, length: UInt64, cachedOnly: Bool, unsupported: inout Bool
    ) throws -> [UInt8]? {
        let count = Int(length)
        var wouldBlock = false
        var notSupported = false
        let bytes = try [UInt8](unsafeUninitializedCapacity: count) { buf, initialized in
            var done = 0
            while done < count {
                let at = buf.baseAddress.unsafelyUnwrapped + done
                let n =
                    cachedOnly
                    ? cdes_pread_cached(fd, at, UInt(count - done), Int64(offset) + Int64(done))
                    : pread(fd, at, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    let code = errno
                    if cachedOnly && [EAGAIN, EOPNOTSUPP, ENOSYS, EINVAL].contains(code) {
                        notSupported = code != EAGAIN
                        wouldBlock = true
                        break
                    }
                    throw failure("read", p)
                }
                if n == 0 { break }
                done += n
            }
            initialized = done
            if !wouldBlock && done < count {
                throw DESKitError(.storage, "object '\(key)' ends before byte \(offset + length)")
            }
        }
        if notSupported { unsupported = true }
        return wouldBlock ? nil : bytes
    }

    public func getSuffix(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64) {
        let p = try path(for: key)
        return try await thread.run {
            guard let info = try Self.info(key: key, path: p) else {
                throw DESKitError(.notFound, "no object '\(key)' in \(self.location)")
            }
            let n = min(length, info.size)
            let bytes = try Self.readRange(p, key: key, offset: info.size - n, length: n, location: self.location) ?? []
            return (bytes, info.size)
        }
    }

    public func head(key: String) async throws -> ObjectInfo? {
        let p = try path(for: key)
        return try await thread.run { try Self.info(key: key, path: p) }
    }

    public func delete(key: String) async throws {
        let p = try path(for: key)
        try await thread.run {
            if unlink(p) != 0 && errno != ENOENT { throw Self.failure("delete", p) }
            self.openObjects.remove(p)
        }
    }

    /// What a temporary object's name holds between its final key and the writer's identity.
    static let temporaryMarker = ".tmp-"

    public func removeStaleTemporaries(prefix: String, olderThanSeconds: Double) async throws -> Int {
        let root = self.root
        return try await thread.run {
            // Walk only the folder the prefix names (keys are `{prefix}/{day}/…`), not the whole root.
            var isDirectory: ObjCBool = false
            let base: String
            if !prefix.isEmpty, FileManager.default.fileExists(atPath: root + "/" + prefix, isDirectory: &isDirectory), isDirectory.boolValue {
                base = prefix + "/"
            } else {
                base = prefix.range(of: "/", options: .backwards).map { String(prefix[..<$0.upperBound]) } ?? ""
            }
            guard let walker = FileManager.default.enumerator(atPath: root + "/" + base) else { return 0 }
            var removed = 0
            let now = Date().timeIntervalSince1970
            while let inner = walker.nextObject() as? String {
                let rel = base + inner
                let leaf = rel.split(separator: "/").last.map(String.init) ?? rel
                guard rel.hasPrefix(prefix), let marker = leaf.range(of: ".des" + Self.temporaryMarker, options: .backwards),
                    walker.fileAttributes?[.type] as? FileAttributeType == .typeRegular
                else { continue }
                let token = String(leaf[marker.upperBound...])
                // Only names put() makes: the writer's identity token, or the older `PID-N`.
                let oldForm = token.split(separator: "-").count == 2 && token.allSatisfy { $0.isNumber || $0 == "-" }
                guard ProcessIdentity(token: token) != nil || oldForm else { continue }
                let modified = (walker.fileAttributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? now
                // Today's names carry the writer's identity; older ones (`.tmp-PID-N`) only their age.
                guard ProcessIdentity.isProvablyDead(token: token) || now - modified >= olderThanSeconds else { continue }
                if unlink(root + "/" + rel) == 0 { removed += 1 }
            }
            return removed
        }
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        let root = self.root
        return try await thread.run {
            var out: [ObjectInfo] = []
            guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
            while let rel = walker.nextObject() as? String {
                guard rel.hasPrefix(prefix), !rel.contains(".tmp-"),
                    walker.fileAttributes?[.type] as? FileAttributeType == .typeRegular,
                    let info = try Self.info(key: rel, path: root + "/" + rel)
                else { continue }
                out.append(info)
            }
            return out.sorted { $0.key < $1.key }
        }
    }
}

/// Bodies on local disk: keys are paths relative to a root.
///
/// A catalog row must not reach outside the root: a key whose resolved path
/// (after `..` and symbolic links) leaves the root is refused, and so is an
/// absolute key unless `allowAbsolute` is set. Such a refusal is permanent (the
/// packer sends the row to the dead-letter table with the reason).
///
/// On Linux the kernel does the check in one call (`openat2` with `RESOLVE_BENEATH`
/// against the root's directory, kept open); elsewhere, or where a sandbox refuses
/// `openat2`, the key's path is resolved component by component (`realpath`) and
/// compared with the root's.
public struct LocalBodyFetcher: BodyFetcher {
    /// The directory relative keys resolve against.
    public let root: String
    /// Whether absolute paths in the catalog are used as they are (`bodies.allow_absolute`).
    public let allowAbsolute: Bool

    /// The root with its links resolved, and its directory open, when it existed at creation
    /// (every fetch would otherwise resolve it again).
    private let directory: RootDirectory?
    private let kernelConfinement: Bool
    /// The root's open directory when the kernel may confine paths to it (retire's unlinks).
    var rootDirectory: RootDirectory? { kernelConfinement ? directory : nil }

    /// Creates a fetcher.
    public init(root: String, allowAbsolute: Bool = false) {
        self.init(root: root, allowAbsolute: allowAbsolute, kernelConfinement: true)
    }

    /// Creates a fetcher; `kernelConfinement: false` always takes the portable path (tests).
    init(root: String, allowAbsolute: Bool, kernelConfinement: Bool) {
        self.root = root
        self.allowAbsolute = allowAbsolute
        self.directory = RootDirectory(path: root)
        self.kernelConfinement = kernelConfinement
    }

    /// A key is opened only when the packer appends it (``FetchedBody/opener``); a relative one
    /// beneath the root's open directory: one short path walk, and nothing can swap a link
    /// between the check and the read.
    public func fetch(_ location: BodyLocation) async throws -> FetchedBody {
        let key = location.key
        guard kernelConfinement, !key.isEmpty, !key.hasPrefix("/"), let directory else {
            let path = try resolve(key)
            let resolved = !key.hasPrefix("/")
            return FetchedBody(path: path, stampedOpener: {
                let opened = try Self.openResolved(path, linksResolved: resolved)
                return (opened.descriptor, opened.stamp)
            })
        }
        return FetchedBody(path: directory.resolvedPath + "/" + key, stampedOpener: { [self] in
            let opened = try openStamped(key)
            return (opened.descriptor, opened.stamp)
        })
    }

    /// Opens a key for reading under the same rules as ``resolve(_:)``; the caller closes the
    /// descriptor. It never blocks: the body is opened `O_NONBLOCK` and must be a regular file
    /// (a FIFO, a device, a socket or a directory is refused with `invalidData`, naming it).
    public func open(_ key: String) throws -> Int32 { try openStamped(key).descriptor }

    /// ``open(_:)``, also giving the file as `fstat` saw it once opened.
    public func openStamped(_ key: String) throws -> (descriptor: Int32, stamp: FileStamp) {
        if kernelConfinement, !key.isEmpty, !key.hasPrefix("/"), !key.utf8.contains(0), let directory,
            let fd = directory.openBeneath(key), fd >= 0
        {
            return try Self.regularFile(fd, path: directory.resolvedPath + "/" + key)
        }
        return try Self.openResolved(try resolve(key), linksResolved: !key.hasPrefix("/"))
    }

    /// Opens a body path without blocking; it must be a regular file. With `linksResolved` (a
    /// relative key, resolved with every link followed and checked against the root a moment
    /// ago) no link is allowed on the way, so a component swapped for a link since (to lead out
    /// of the root) fails the open instead of being followed; plain open where the kernel cannot
    /// say. An absolute key (`allow_absolute`) is the catalog's own path, opened as it is.
    static func openResolved(_ path: String, linksResolved: Bool) throws -> (descriptor: Int32, stamp: FileStamp) {
        var fd: Int32 = -1
        var plain = !linksResolved
        if linksResolved {
            fd = cdes_open_no_symlinks(path)
            plain = fd < 0 && (errno == ENOSYS || errno == EPERM || errno == EINVAL)
        }
        if plain { fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw DESKitError(.notFound, "no such file '\(path)'") }
            if let kind = specialKind(at: path) { throw notRegular(path, kind: kind) }
            throw DESKitError(.storage, "cannot open body '\(path)': \(String(cString: strerror(code)))")
        }
        return try regularFile(fd, path: path)
    }

    /// The path a key names, checked against the root.
    public func resolve(_ key: String) throws -> String {
        guard !key.isEmpty else { throw DESKitError(.invalidData, "row has an empty body key") }
        guard !key.utf8.contains(0) else { throw DESKitError(.invalidData, "body key contains a NUL byte") }
        if key.hasPrefix("/") {
            guard allowAbsolute else {
                throw DESKitError(
                    .invalidData,
                    "absolute body path '\(key)' refused: bodies are read under the root '\(root)' (set bodies.allow_absolute: true to allow absolute paths)")
            }
            return key
        }
        let root = directory ?? RootDirectory(path: self.root)
        guard let root else {
            throw DESKitError(.unavailable, "body root '\(self.root)' does not exist (is its volume mounted?)")
        }
        let joined = root.resolvedPath + "/" + key
        if kernelConfinement, let fd = root.openBeneath(key) {
            guard fd >= 0 else {
                // Missing: the answer. Anything else — an escape (EXDEV; also an absolute link that
                // points back inside the root, which the kernel refuses too), unreadable — is
                // settled by resolving the path, and the reason named from there.
                if errno == ENOENT || errno == ENOTDIR, !Self.escapesLexically(key) {
                    throw DESKitError(.notFound, "no such file '\(joined)'")
                }
                return try resolvePortably(key, joined: joined, realRoot: root.resolvedPath)
            }
            closeDescriptor(fd)
            return joined
        }
        return try resolvePortably(key, joined: joined, realRoot: root.resolvedPath)
    }

    /// The error for a key that leads out of the root. Where it leads is not said: the message
    /// reaches dead letters, which whoever writes the catalog may read, and naming the target
    /// would tell them what exists outside the root.
    private func escape(_ key: String, to resolved: String? = nil) -> DESKitError {
        DESKitError(
            .invalidData, "body path '\(key)' escapes the body root '\(root)'" + (resolved == nil ? "" : " (a link on its way leads outside it)"))
    }

    /// Resolves every link of the path and checks that the result is under the root.
    private func resolvePortably(_ key: String, joined: String, realRoot: String) throws -> String {
        guard let resolved = RootDirectory.realPath(joined) else {
            let code = errno
            // Missing file: refuse a lexical escape all the same, so the reason is the right one.
            if Self.escapesLexically(key) { throw escape(key) }
            // A directory on the way this process may not search is not a missing file.
            if code == EACCES { throw DESKitError(.storage, "cannot open body '\(joined)': \(String(cString: strerror(code)))") }
            throw DESKitError(.notFound, "no such file '\(joined)'")
        }
        guard resolved.hasPrefix(realRoot == "/" ? "/" : realRoot + "/") else { throw escape(key, to: resolved) }
        return resolved
    }

    /// Whether `..` segments climb above the start of a relative key.
    static func escapesLexically(_ key: String) -> Bool {
        var depth = 0
        for part in key.split(separator: "/") {
            if part == ".." { depth -= 1 } else if part != "." { depth += 1 }
            if depth < 0 { return true }
        }
        return false
    }
}

/// The body root: its resolved path and an open descriptor of it (closed with the last fetcher).
final class RootDirectory: Sendable {
    let resolvedPath: String
    private let fd: Int32

    init?(path: String) {
        guard let resolved = Self.realPath(path) else { return nil }
        self.resolvedPath = resolved
        self.fd = open(resolved, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Opens `key` beneath the root: a descriptor, -1 with `errno` when refused or missing,
    /// or nil when this kernel cannot check (no `openat2`, or a sandbox refusing it).
    func openBeneath(_ key: String) -> Int32? {
        guard fd >= 0 else { return nil }
        let result = cdes_open_beneath(fd, key)
        if result < 0 && (errno == ENOSYS || errno == EPERM || errno == EINVAL) { return nil }
        return result
    }

    /// Unlinks `key` beneath the root (``cdes_unlink_beneath``): 0, or -1 with `errno`
    /// (ENOSYS when this kernel cannot check).
    func unlinkBeneath(_ key: String) -> Int32 {
        guard fd >= 0 else {
            errno = ENOSYS
            return -1
        }
        return cdes_unlink_beneath(fd, key)
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}

/// Registers local-disk storage (`storage.type: local`), local bodies (`bodies.type: local`) and
/// the in-process index caches (``StockIndexCaches``).
public enum LocalStoragePlugin {
    /// The type both answer to.
    public static let type = "local"

    /// Adds local storage and the local body fetcher to `registry`; relative paths resolve
    /// against the config file's directory.
    public static func register(in registry: PluginRegistry) {
        registry.registerStorage(type: type, configuration: LocalStorageConfig.self) { config, base in
            try LocalDiskStorage(root: resolve(config.root, base: base))
        }
        registry.registerBodyFetcher(type: type, configuration: LocalBodiesConfig.self) { config, _, base in
            LocalBodyFetcher(root: resolve(config.root, base: base), allowAbsolute: config.allowAbsolute)
        }
        StockIndexCaches.register(in: registry)
    }

    static func resolve(_ path: String, base: String) -> String {
        path.hasPrefix("/") ? path : ((base as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }
}

/// `storage.type: local`: containers are files under a directory.
public struct LocalStorageConfig: PluginConfiguration {
    public static let keys = [
        ConfigKey(
            "root", .text, default: "./des-data/archive",
            help: "The directory holding the containers (relative: to the config file's directory)."),
    ]
    /// The directory holding the containers.
    public var root = "./des-data/archive"
    /// The defaults.
    public init() {}
    public init(from section: ConfigSection) throws {
        if let root = try section.text(Self.key("root")) { self.root = root }
    }
}

/// `bodies.type: local`: each row's key is a path under a directory.
public struct LocalBodiesConfig: DirectoryBodiesConfiguration {
    public static let keys = [
        ConfigKey("root", .text, default: ".", help: "The directory body keys are relative to (relative: to the config file's directory)."),
        ConfigKey(
            "allow_absolute", .boolean, default: "false",
            help: "Whether the catalog may name bodies by absolute path (refused otherwise)."),
    ]
    /// The directory body keys are relative to.
    public var root = "."
    /// Whether absolute body paths are allowed.
    public var allowAbsolute = false
    public var directory: String { root }
    /// A configuration in code.
    public init(root: String = ".", allowAbsolute: Bool = false) {
        self.root = root
        self.allowAbsolute = allowAbsolute
    }
    public init(from section: ConfigSection) throws {
        if let root = try section.text(Self.key("root")) { self.root = root }
        if let allow = try section.bool(Self.key("allow_absolute")) { allowAbsolute = allow }
    }
}

/// `close(2)`, named so inside types that have a `close()` of their own.
private func closeDescriptor(_ fd: Int32) { _ = close(fd) }
