import CDESFileSystem
import DESFormat
import DESKit
import Foundation
import Testing

@testable import DESStorage

#if canImport(Glibc)
import Glibc
#endif

/// The warm read path of local storage: a versioned range whose bytes are in the page cache is
/// read on the caller's thread; one the kernel would have to fetch from the device goes to the
/// storage thread. Both give the same bytes and the same errors.
@Suite("Local disk: warm ranged reads on the caller's thread, cold ones on the storage thread")
struct LocalReadPathTests {
    /// An object of `count` distinct bytes under `key`, durable (so its pages can be dropped).
    static func object(_ storage: LocalDiskStorage, key: String, count: Int, dir: String) async throws -> (bytes: [UInt8], info: ObjectInfo) {
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 / 251) }
        let source = dir + "/source-\(key.replacingOccurrences(of: "/", with: "_"))"
        try Data(bytes).write(to: URL(fileURLWithPath: source))
        let info = try await storage.put(key: key, fromFile: source)
        return (bytes, info)
    }

    /// Drops the object's pages from the page cache (it is synced first: clean pages go).
    static func evict(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(fsync(fd) == 0)
        #expect(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
    }

    /// What the file system answers to a read-only-if-cached of a range just read normally
    /// (so its pages are in the cache): the bytes, "not cached", or "cannot tell".
    enum NoWait: Equatable { case read, notCached, unsupported }
    static func probe(_ path: String, offset: Int, count: Int) throws -> NoWait {
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: count)
        #expect(pread(fd, &buffer, count, off_t(offset)) == count)
        let n = cdes_pread_cached(fd, &buffer, UInt(count), Int64(offset))
        if n == count { return .read }
        return n < 0 && errno != EAGAIN ? .unsupported : .notCached
    }

    @Test("A warm range is read inline, an evicted one on the storage thread, with the same bytes; a file system that cannot tell is asked once")
    func warmAndCold() async throws {
        let dir = NSTemporaryDirectory() + "des-readpath-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage = try LocalDiskStorage(root: dir + "/store")
        let (bytes, info) = try await Self.object(storage, key: "a/c.des", count: 3 << 20, dir: dir)
        let path = try storage.path(for: "a/c.des")

        // The kernel decides what is cached: each attempt first reads the range normally, and the
        // file system's own answer for it says what the storage must have done.
        var answer = NoWait.notCached
        for _ in 0..<3 where storage.rangeReads.withLock({ $0.cached }) == 0 {
            answer = try Self.probe(path, offset: 4096, count: 4096)
            let warm = try await storage.get(key: "a/c.des", offset: 4096, length: 4096, ifMatch: info.etag)
            #expect(warm == Array(bytes[4096..<8192]))
            if answer == .unsupported { break }
        }
        switch answer {
        case .unsupported:
            // overlayfs, tmpfs and some network file systems: every range on the storage thread,
            // and the cached-only read is not tried again.
            #expect(storage.inlineUnsupported.withLock { $0 })
            #expect(storage.rangeReads.withLock { $0 } == (cached: 0, onThread: 1))
        case .read, .notCached:
            #expect(answer == .read, "three ranges just read were never in the page cache")
            #expect(storage.rangeReads.withLock { $0.cached } == 1)
            #expect(!storage.inlineUnsupported.withLock { $0 })
        }
        let before = storage.rangeReads.withLock { $0 }

        try Self.evict(path)
        let cold = try await storage.get(key: "a/c.des", offset: 2 << 20, length: 8192, ifMatch: info.etag)
        #expect(cold == Array(bytes[(2 << 20)..<((2 << 20) + 8192)]))
        #expect(storage.rangeReads.withLock { $0.onThread } == before.onThread + 1, "an evicted range waits for the device: not on the caller's thread")

        // Larger than the inline limit: always the storage thread, whatever the cache holds.
        let big = try await storage.get(key: "a/c.des", offset: 0, length: LocalDiskStorage.inlineReadLimit + 1, ifMatch: info.etag)
        #expect(big == Array(bytes[0..<Int(LocalDiskStorage.inlineReadLimit + 1)]))
        #expect(storage.rangeReads.withLock { $0.onThread } == before.onThread + 2)
        #expect(storage.rangeReads.withLock { $0.cached } == before.cached)
    }

    @Test("A FIFO, a directory or a socket where an object should be is refused at once, never opened to block a thread")
    func notRegular() async throws {
        let dir = NSTemporaryDirectory() + "des-readpath-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage = try LocalDiskStorage(root: dir + "/store")
        #expect(mkfifo(dir + "/store/fifo.des", 0o600) == 0)
        try FileManager.default.createDirectory(atPath: dir + "/store/dir.des", withIntermediateDirectories: true)
        for key in ["fifo.des", "dir.des"] {
            let ranged = await #expect(throws: DESKitError.self) { try await storage.get(key: key, offset: 0, length: 10, ifMatch: nil) }
            #expect(ranged?.code == .storage && ranged?.message.contains("not a regular file") == true, "\(String(describing: ranged))")
            let versioned = await #expect(throws: DESKitError.self) { try await storage.get(key: key, offset: 0, length: 10, ifMatch: "1-1-1") }
            #expect(versioned?.message.contains("not a regular file") == true)
            let whole = await #expect(throws: DESKitError.self) { try await storage.get(key: key) }
            #expect(whole?.message.contains("not a regular file") == true)
            let suffix = await #expect(throws: DESKitError.self) { try await storage.getSuffix(key: key, length: 10) }
            #expect(suffix?.message.contains("not a regular file") == true)
        }
    }

    @Test("An absolute body path (allow_absolute) through a symbolic link opens: only resolved relative keys refuse links")
    func absoluteThroughLink() async throws {
        let dir = NSTemporaryDirectory() + "des-abs-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: true)
        try Data("body".utf8).write(to: URL(fileURLWithPath: dir + "/real/x"))
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/real")
        let fetcher = LocalBodyFetcher(root: dir + "/real", allowAbsolute: true)
        let fd = try fetcher.open(dir + "/link/x")
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(read(fd, &buffer, 8) == 4 && Array(buffer[0..<4]) == Array("body".utf8))
    }

    @Test("The inline path refuses as the thread does: another version, a missing object, a range past the end")
    func inlineErrors() async throws {
        let dir = NSTemporaryDirectory() + "des-readpath-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage = try LocalDiskStorage(root: dir + "/store")
        let (_, info) = try await Self.object(storage, key: "c.des", count: 10_000, dir: dir)
        let answer = try Self.probe(try storage.path(for: "c.des"), offset: 0, count: 4096)  // in the page cache now
        #expect(answer != .notCached, "a range just read is in the page cache")
        let path = try storage.path(for: "c.des")
        // Each call right after its range is warmed; whether it was answered inline. On a busy
        // machine a page can go between the warm-up and the call (or RWF_NOWAIT say EAGAIN for
        // a moment), so a call that went to the thread is tried once more: a broken inline path
        // goes there both times.
        func answeredInline(offset: Int, count: Int, _ call: () async -> Void) async throws -> Bool {
            for _ in 0..<2 {
                _ = try Self.probe(path, offset: offset, count: count)
                let before = storage.rangeReads.withLock { $0.onThread }
                await call()
                if storage.rangeReads.withLock({ $0.onThread }) == before { return true }
            }
            return false
        }
        var inline: [Bool] = []
        inline.append(try await answeredInline(offset: 0, count: 10) { _ = try? await storage.get(key: "c.des", offset: 0, length: 10, ifMatch: info.etag) })
        inline.append(
            try await answeredInline(offset: 0, count: 10) {
                await #expect(throws: DESKitError.self) { try await storage.get(key: "c.des", offset: 0, length: 10, ifMatch: "10000-1-1") }
            })
        inline.append(
            try await answeredInline(offset: 0, count: 10) {
                let changed = await #expect(throws: DESKitError.self) { try await storage.get(key: "c.des", offset: 0, length: 10, ifMatch: "x") }
                #expect(changed?.code == .changed)
            })
        inline.append(
            try await answeredInline(offset: 0, count: 10) {
                let missing = await #expect(throws: DESKitError.self) { try await storage.get(key: "gone.des", offset: 0, length: 10, ifMatch: nil) }
                #expect(missing?.code == .notFound)
            })
        inline.append(
            try await answeredInline(offset: 9_990, count: 10) {
                let short = await #expect(throws: DESKitError.self) { try await storage.get(key: "c.des", offset: 9_990, length: 20, ifMatch: info.etag) }
                #expect(short?.code == .storage)
                #expect(short?.message.contains("ends before byte 10010") == true)
            })
        if answer == .unsupported {
            // A file system that cannot read only-if-cached: the storage thread gives the same errors.
            #expect(inline == [false, false, false, false, false])
        } else {
            #expect(inline == [true, true, true, true, true], "every one of these was answered inline")
        }
    }
}

/// Versioned range reads keep their containers open (``OpenObjectCache``): the descriptor is
/// used only while it is still the version asked for and still linked.
@Suite("Local disk: open containers kept for versioned reads")
struct LocalOpenFileTests {
    static func store(_ storage: LocalDiskStorage, key: String, _ text: String, dir: String) async throws -> ObjectInfo {
        let source = dir + "/src-\(UUID().uuidString)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: source))
        return try await storage.put(key: key, fromFile: source)
    }

    static func read(_ storage: LocalDiskStorage, _ key: String, _ version: String?) async throws -> String {
        String(decoding: try await storage.get(key: key, offset: 0, length: 5, ifMatch: version), as: UTF8.self)
    }

    @Test("A container replaced by a rename, rewritten in place, or deleted is never read through its old descriptor")
    func replacedAndDeleted() async throws {
        let dir = NSTemporaryDirectory() + "des-openfiles-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage = try LocalDiskStorage(root: dir + "/store")
        let first = try await Self.store(storage, key: "a/c.des", "first", dir: dir)
        #expect(try await Self.read(storage, "a/c.des", first.etag) == "first")
        #expect(storage.openObjects.count == 1, "a versioned read keeps its container open")

        // Replaced by another process's rename (not through this storage: the cache is not told).
        let path = try storage.path(for: "a/c.des")
        try Data("other".utf8).write(to: URL(fileURLWithPath: path + ".new"))
        #expect(rename(path + ".new", path) == 0)
        let changed = await #expect(throws: DESKitError.self) { try await Self.read(storage, "a/c.des", first.etag) }
        #expect(changed?.code == .changed, "the old descriptor's file is unlinked: the path decides, and it holds another version")
        let now = try #require(try await storage.head(key: "a/c.des"))
        #expect(try await Self.read(storage, "a/c.des", now.etag) == "other")

        // Rewritten in place (same inode): its stamp changed, so the version asked for is not it.
        let fd = open(path, O_WRONLY)
        #expect(fd >= 0 && pwrite(fd, "OTHER", 5, 0) == 5)
        close(fd)
        let rewritten = await #expect(throws: DESKitError.self) { try await Self.read(storage, "a/c.des", now.etag) }
        #expect(rewritten?.code == .changed)

        // Deleted by another process: not found, not served from the descriptor.
        let current = try #require(try await storage.head(key: "a/c.des"))
        #expect(try await Self.read(storage, "a/c.des", current.etag) == "OTHER")
        #expect(unlink(path) == 0)
        let gone = await #expect(throws: DESKitError.self) { try await Self.read(storage, "a/c.des", current.etag) }
        #expect(gone?.code == .notFound)
        #expect(storage.openObjects.count == 0, "an unlinked container's descriptor is let go")

        // This storage's own put and delete let go at once.
        let again = try await Self.store(storage, key: "a/c.des", "again", dir: dir)
        #expect(try await Self.read(storage, "a/c.des", again.etag) == "again")
        #expect(storage.openObjects.count == 1)
        try await storage.delete(key: "a/c.des")
        #expect(storage.openObjects.count == 0)
    }

    @Test("At most openFileLimit containers stay open, the least recently read closed first")
    func bounded() async throws {
        let dir = NSTemporaryDirectory() + "des-openfiles-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage = try LocalDiskStorage(root: dir + "/store")
        // The descriptors of this test's own store (other suites open files in this process too).
        func openHere() throws -> Set<String> {
            Set(
                try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap {
                    try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)
                }.filter { $0.hasPrefix(dir + "/store/") })
        }
        let limit = LocalDiskStorage.openFileLimit
        var infos: [ObjectInfo] = []
        for i in 0..<(limit + 20) { infos.append(try await Self.store(storage, key: "c\(i).des", "c\(i)    ", dir: dir)) }
        for (i, info) in infos.enumerated() { #expect(try await Self.read(storage, "c\(i).des", info.etag).hasPrefix("c\(i)")) }
        #expect(storage.openObjects.count == limit)
        let open = try openHere()
        #expect(open.count == limit, "no descriptor beyond the limit stays open")
        #expect(!open.contains(dir + "/store/c0.des") && open.contains(dir + "/store/c\(limit + 19).des"), "the least recently read went first")
        // The first ones were closed; read again, they open again and still read right.
        #expect(try await Self.read(storage, "c0.des", infos[0].etag).hasPrefix("c0"))
        #expect(storage.openObjects.count == limit)
    }

    @Test("Keys are plain relative paths: no empty, . or .. component", arguments: [
        ("a/c.des", true), ("c.des", true), ("a/.b/c", true), ("a/..b", true), ("...", true),
        ("", false), ("/a", false), ("a/", false), ("a//b", false), (".", false), ("..", false), ("a/./b", false), ("a/../b", false), ("../a", false),
    ])
    func plainKeys(key: String, plain: Bool) throws {
        #expect(LocalDiskStorage.isPlainKey(key) == plain)
        let storage = try LocalDiskStorage(root: NSTemporaryDirectory() + "des-keys")
        #expect(((try? storage.path(for: key)) != nil) == plain)
    }
}

/// The open-file cache's own rules, on its own clock.
@Suite("Local disk: the open-file cache lets go of what is gone")
struct OpenObjectCacheTests {
    /// A file at `path` opened as the storage opens one, at time `now`.
    static func open(_ path: String, now: UInt64) throws -> OpenObject {
        let fd = Glibc.open(path, O_RDONLY)
        try #require(fd >= 0)
        var st = stat()
        #expect(fstat(fd, &st) == 0)
        return OpenObject(fd: fd, stamp: FileStamp(st), version: "v", now: now)
    }

    static func deletedDescriptors() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap {
            try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)
        }.filter { $0.hasSuffix("(deleted)") }
    }

    @Test("A container reached through a symbolic link that now points elsewhere is let go within pathCheckNanos")
    func symlinkRepointed() throws {
        let dir = NSTemporaryDirectory() + "des-openobj-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("one".utf8).write(to: URL(fileURLWithPath: dir + "/one"))
        try Data("two".utf8).write(to: URL(fileURLWithPath: dir + "/two"))
        #expect(symlink(dir + "/one", dir + "/c.des") == 0)
        let cache = OpenObjectCache(capacity: 4)
        let t0: UInt64 = 1_000_000_000_000
        cache.insert(dir + "/c.des", try Self.open(dir + "/c.des", now: t0))
        #expect(cache.lookup(dir + "/c.des", now: t0 + 1) != nil)
        #expect(unlink(dir + "/c.des") == 0 && symlink(dir + "/two", dir + "/c.des") == 0)
        #expect(cache.lookup(dir + "/c.des", now: t0 + 2) != nil, "within pathCheckNanos the path is believed")
        #expect(cache.lookup(dir + "/c.des", now: t0 + OpenObjectCache.pathCheckNanos + 10) == nil, "then looked at again: elsewhere")
        #expect(cache.count == 0)
    }

    @Test("The sweep closes a deleted container's descriptor, read or not, and one left idle; it ends when none is left")
    func sweep() throws {
        let dir = NSTemporaryDirectory() + "des-openobj-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["gone", "kept", "idle"] { try Data(name.utf8).write(to: URL(fileURLWithPath: dir + "/" + name)) }
        let cache = OpenObjectCache(capacity: 4)
        let t0 = monotonicNanos()
        for name in ["gone", "kept", "idle"] { cache.insert(dir + "/" + name, try Self.open(dir + "/" + name, now: t0)) }
        #expect(unlink(dir + "/gone") == 0)
        #expect(try Self.deletedDescriptors().contains { $0.hasPrefix(dir + "/gone") }, "held open after the delete")
        _ = cache.lookup(dir + "/kept", now: t0 + OpenObjectCache.idleNanos)
        #expect(cache.sweep(now: t0 + OpenObjectCache.idleNanos + 1))
        #expect(cache.count == 1, "the deleted one and the idle one are closed, the one in use stays")
        #expect(try !Self.deletedDescriptors().contains { $0.hasPrefix(dir + "/gone") }, "the deleted file's blocks are let go")
        #expect(!cache.sweep(now: t0 + 3 * OpenObjectCache.idleNanos), "all idle now: none left, the sweep ends")
        #expect(cache.count == 0)
    }
}
