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
