import DESKit
import Synchronization

/// Storage that counts the requests made through it, by kind (`get_range`, `put`, `head`, …):
/// `des compact` reports them per compacted container, and the HTTP service hands each to its
/// `des_storage_requests_total{operation}` metric.
public final class RequestCountingStorage: StorageBackend {
    let base: any StorageBackend
    private let counts = Mutex<[String: Int]>([:])
    private let observe: @Sendable (String) -> Void

    /// Counts the requests made to `base`, and tells `observe` of each.
    public init(base: any StorageBackend, observe: @escaping @Sendable (String) -> Void = { _ in }) {
        self.base = base
        self.observe = observe
    }

    /// Requests so far, by kind (`get_range`, `put`, `head`, `delete`, …).
    public var requests: [String: Int] { counts.withLock { $0 } }
    /// All requests so far.
    public var total: Int { counts.withLock { $0.values.reduce(0, +) } }

    private func count(_ kind: String) {
        counts.withLock { $0[kind, default: 0] += 1 }
        observe(kind)
    }

    public var location: String { base.location }
    public func put(key: String, fromFile path: String) async throws -> ObjectInfo {
        count("put")
        return try await base.put(key: key, fromFile: path)
    }
    public func get(key: String) async throws -> [UInt8] {
        count("get")
        return try await base.get(key: key)
    }
    public func get(key: String, offset: UInt64, length: UInt64) async throws -> [UInt8] {
        count("get_range")
        return try await base.get(key: key, offset: offset, length: length)
    }
    public func get(key: String, offset: UInt64, length: UInt64, ifMatch: String?) async throws -> [UInt8] {
        count("get_range")
        return try await base.get(key: key, offset: offset, length: length, ifMatch: ifMatch)
    }
    public func getSuffix(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64) {
        count("get_suffix")
        return try await base.getSuffix(key: key, length: length)
    }
    public func getSuffixVersioned(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64, version: String?) {
        count("get_suffix")
        return try await base.getSuffixVersioned(key: key, length: length)
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
