import DESKit
import Synchronization

/// Storage that counts the requests made through it, by kind (`get_range`, `put`, `head`, …),
/// and the bytes its reads returned: `des compact` reports them per compacted container, the
/// HTTP service hands each to its `des_storage_requests_total{operation}` metric, and the index
/// benchmark reports index bytes per read.
public final class RequestCountingStorage: StorageBackend {
    let base: any StorageBackend
    private let counts = Mutex<(requests: [String: Int], bytesRead: UInt64)>(([:], 0))
    private let observe: @Sendable (String) -> Void

    /// Counts the requests made to `base`, and tells `observe` of each.
    public init(base: any StorageBackend, observe: @escaping @Sendable (String) -> Void = { _ in }) {
        self.base = base
        self.observe = observe
    }

    /// Requests so far, by kind (`get_range`, `put`, `head`, `delete`, …).
    public var requests: [String: Int] { counts.withLock { $0.requests } }
    /// All requests so far.
    public var total: Int { counts.withLock { $0.requests.values.reduce(0, +) } }
    /// Bytes the reads so far returned.
    public var bytesRead: UInt64 { counts.withLock { $0.bytesRead } }

    /// Starts counting again from zero.
    public func reset() { counts.withLock { $0 = ([:], 0) } }

    private func count(_ kind: String, read bytes: Int = 0) {
        counts.withLock {
            $0.requests[kind, default: 0] += 1
            $0.bytesRead += UInt64(bytes)
        }
        observe(kind)
    }

    /// Counts a read of `kind` and the bytes it returned.
    private func read<T>(_ kind: String, _ body: () async throws -> T, bytes: (T) -> Int) async throws -> T {
        let result = try await body()
        count(kind, read: bytes(result))
        return result
    }

    public var location: String { base.location }
    public func put(key: String, fromFile path: String) async throws -> ObjectInfo {
        count("put")
        return try await base.put(key: key, fromFile: path)
    }
    public func get(key: String) async throws -> [UInt8] {
        try await read("get", { try await base.get(key: key) }, bytes: \.count)
    }
    public func get(key: String, offset: UInt64, length: UInt64) async throws -> [UInt8] {
        try await read("get_range", { try await base.get(key: key, offset: offset, length: length) }, bytes: \.count)
    }
    public func get(key: String, offset: UInt64, length: UInt64, ifMatch: String?) async throws -> [UInt8] {
        // Written out, not through read(_:_:bytes:): the server's warm read of every file comes here.
        let bytes = try await base.get(key: key, offset: offset, length: length, ifMatch: ifMatch)
        count("get_range", read: bytes.count)
        return bytes
    }
    public func getSuffix(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64) {
        try await read("get_suffix", { try await base.getSuffix(key: key, length: length) }, bytes: { $0.bytes.count })
    }
    public func getSuffixVersioned(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64, version: String?) {
        try await read("get_suffix", { try await base.getSuffixVersioned(key: key, length: length) }, bytes: { $0.bytes.count })
    }
    public func head(key: String) async throws -> ObjectInfo? {
        count("head")
        return try await base.head(key: key)
    }
    public func delete(key: String) async throws {
        count("delete")
        try await base.delete(key: key)
    }
    public func list(prefix: String) async throws -> [ObjectInfo] {
        count("list")
        return try await base.list(prefix: prefix)
    }
    public func removeStaleTemporaries(prefix: String, olderThanSeconds: Double) async throws -> Int {
        try await base.removeStaleTemporaries(prefix: prefix, olderThanSeconds: olderThanSeconds)
    }
    public func close() async { await base.close() }
    public func localPath(of key: String) -> String? { base.localPath(of: key) }
}
