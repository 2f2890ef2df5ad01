import DESFormat
import DESKit
import Foundation
import Synchronization

/// Opens an archive for a command: a local path, or `s3://bucket/key`, read in place with
/// ranged requests through the registry's `s3` storage (endpoint, region and credentials from
/// the standard AWS variables) — never copied whole.
/// `wholeArchive` (verify, unpack: every byte is read anyway) also checks a remote object's header.
func openArchive(_ path: String, wholeArchive: Bool = false) throws -> DESArchiveReader {
    guard path.hasPrefix("s3://") else { return try DESArchiveReader(path: path) }
    return try DESArchiveReader(source: try RemoteArchive.open(path), path: path, checkHeader: wholeArchive)
}

/// `s3://` archives for the archive commands.
enum RemoteArchive {
    /// The storage (the registry's `s3`, for the URL's bucket) and the key of an `s3://` URL.
    static func storage(for url: String) throws -> (storage: any StorageBackend, key: String) {
        let rest = url.dropFirst("s3://".count)
        guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex, rest.index(after: slash) != rest.endIndex else {
            throw CLIFailure(message: "\(url): expected s3://bucket/key", exitCode: DESExit.usage)
        }
        let bucket = String(rest[..<slash]), key = String(rest[rest.index(after: slash)...])
        let registry = try DESCommandLine.requireRegistry()
        var config = StorageConfig()
        config.type = "s3"
        config.settings = try registry.settings(.storage, type: "s3", values: ["bucket": bucket], what: url)
        let storageConfig = config
        let storage = try blocking { try await registry.makeStorage(storageConfig, baseDirectory: FileManager.default.currentDirectoryPath) }
        return (storage, key)
    }

    /// One checked file of the object at `url`, found as servers find it: through its two-level
    /// index when it has one and its index does not come with the first read (the suffix read,
    /// one leaf, the body), else through its flat index. Nil when the container lacks the name.
    static func file(named name: String, in url: String) throws -> [UInt8]? {
        try withStorage(url, keepOpen: false) { storage, key in try await StorageArchiveReader(storage: storage).file(named: name, key: key) }
    }

    /// The object at `url`, its tail read (one request, which also gives its size and version).
    static func open(_ url: String) throws -> StorageByteSource {
        try withStorage(url, keepOpen: true) { storage, key in try await StorageByteSource.open(storage: storage, key: key, name: url) }
    }

    /// Runs `body` with the storage and key of `url`; the storage is closed after it (or, with
    /// `keepOpen`, only when it fails: the result then owns it). A missing object is exit 66.
    private static func withStorage<T: Sendable>(
        _ url: String, keepOpen: Bool, _ body: @escaping @Sendable (any StorageBackend, String) async throws -> T
    ) throws -> T {
        let (storage, key) = try storage(for: url)
        return try blocking {
            do {
                let result = try await body(storage, key)
                if !keepOpen { await storage.close() }
                return result
            } catch let error as DESKitError where error.code == .notFound {
                await storage.close()
                throw CLIFailure(message: "\(url): no such object", exitCode: DESExit.noInput)
            } catch {
                await storage.close()
                throw error
            }
        }
    }

    /// Runs async work from a synchronous command (on the main thread, never on the
    /// concurrency pool) and waits for its result.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<Result<T, Error>?>(nil)
        Task {
            let result: Result<T, Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            outcome.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        guard let result = outcome.withLock({ $0 }) else { throw CLIFailure(message: "internal: no result", exitCode: DESExit.software) }
        return try result.get()
    }
}

/// An object in storage as a ``DESByteSource`` for ``DESArchiveReader``: its tail is read once
/// (the suffix read that opens it, extended to the whole index region when the reader asks
/// for it), reads elsewhere are ranged requests pinned to the version first seen (`If-Match`),
/// and a read that continues where an earlier one ended reads ahead (8 MiB), so `verify` and
/// `unpack` stream the object in a few large requests with memory bounded by two windows and
/// the tail. For the synchronous archive commands only: each read blocks its thread.
final class StorageByteSource: DESByteSource, @unchecked Sendable {
    let storage: any StorageBackend
    let key: String
    let name: String
    let size: UInt64
    let version: String?
    /// How far a sequential read reads ahead.
    let readAhead: UInt64
    private let state: Mutex<State>

    private struct Window {
        var offset: UInt64
        var bytes: [UInt8]
        var end: UInt64 { offset + UInt64(bytes.count) }
    }

    private struct State {
        /// The object's last bytes, from `tail.offset` to its end.
        var tail: Window
        /// Ranges read ahead, most recently used last (at most two).
        var windows: [Window] = []
        /// Where recent reads ended: a read starting at one of them is sequential.
        var recentEnds: [UInt64] = []
    }

    private init(storage: any StorageBackend, key: String, name: String, size: UInt64, version: String?, tail: [UInt8], readAhead: UInt64) {
        self.storage = storage
        self.key = key
        self.name = name
        self.size = size
        self.version = version
        self.readAhead = readAhead
        self.state = Mutex(State(tail: Window(offset: size - UInt64(tail.count), bytes: tail)))
    }

    /// Opens `key` with one suffix read of `suffixLength` bytes (its size and version come with it).
    static func open(
        storage: any StorageBackend, key: String, name: String, suffixLength: UInt64 = 64 * 1024, readAhead: UInt64 = 8 << 20
    ) async throws -> StorageByteSource {
        let (bytes, total, version) = try await storage.getSuffixVersioned(key: key, length: suffixLength)
        guard UInt64(bytes.count) <= total else {
            throw DESFormatError(.truncated, "the storage returned \(bytes.count) bytes of a \(total)-byte object", path: name)
        }
        return StorageByteSource(storage: storage, key: key, name: name, size: total, version: version, tail: bytes, readAhead: readAhead)
    }

    deinit {
        let storage = self.storage
        Task { await storage.close() }
    }

    func isCheap(offset: UInt64, length: Int) -> Bool {
        state.withLock { offset >= $0.tail.offset && offset + UInt64(length) <= size }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard buffer.count > 0 else { return }
        let end = offset + UInt64(buffer.count)
        guard end <= size else { throw DESFormatError(.truncated, "a read past the object's end (\(end) of \(size) bytes)", path: name) }
        var done = 0
        while done < buffer.count {
            let at = offset + UInt64(done)
            if let copied = copyHeld(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: at) {
                done += copied
                continue
            }
            done += try fetch(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: at, readEnd: end)
        }
        state.withLock { s in
            s.recentEnds.append(end)
            if s.recentEnds.count > 4 { s.recentEnds.removeFirst() }
        }
    }

    /// Copies what the tail or a window holds from `at` on; nil when neither holds `at`.
    private func copyHeld(into buffer: UnsafeMutableRawBufferPointer, at: UInt64) -> Int? {
        state.withLock { s in
            func copy(_ w: Window) -> Int {
                let skip = Int(at - w.offset)
                let n = min(buffer.count, w.bytes.count - skip)
                w.bytes.withUnsafeBytes { buffer.baseAddress.unsafelyUnwrapped.copyMemory(from: $0.baseAddress.unsafelyUnwrapped + skip, byteCount: n) }
                return n
            }
            if at >= s.tail.offset, at < s.tail.end { return copy(s.tail) }
            if let i = s.windows.firstIndex(where: { at >= $0.offset && at < $0.end }) {
                let w = s.windows.remove(at: i)
                s.windows.append(w)
                return copy(w)
            }
            return nil
        }
    }

    /// Reads from `at` with one request (never into the held tail): ahead when sequential, else
    /// just what the caller asked for. A read that ends where the tail begins extends the tail
    /// (the reader's one read of the index region), so META held there costs nothing after.
    private func fetch(into buffer: UnsafeMutableRawBufferPointer, at: UInt64, readEnd: UInt64) throws -> Int {
        let (tailStart, sequential) = state.withLock { ($0.tail.offset, $0.recentEnds.contains(at)) }
        let wanted = readEnd - at
        let length = min(sequential ? max(wanted, readAhead) : wanted, tailStart - at)
        let (storage, key, version, name) = (self.storage, self.key, self.version, self.name)
        let bytes = try RemoteArchive.blocking { try await storage.get(key: key, offset: at, length: length, ifMatch: version) }
        guard UInt64(bytes.count) == length else {
            throw DESFormatError(.truncated, "short read at \(at) (\(bytes.count) of \(length) bytes)", path: name)
        }
        let n = min(buffer.count, bytes.count)
        bytes.withUnsafeBytes { buffer.baseAddress.unsafelyUnwrapped.copyMemory(from: $0.baseAddress.unsafelyUnwrapped, byteCount: n) }
        state.withLock { s in
            if at + length == s.tail.offset, readEnd > s.tail.offset {
                s.tail = Window(offset: at, bytes: bytes + s.tail.bytes)
            } else if length > wanted {
                s.windows.append(Window(offset: at, bytes: bytes))
                if s.windows.count > 2 { s.windows.removeFirst() }
            }
        }
        return n
    }
}
