import DESKit
import Metrics

/// Storage that counts its failed requests in `des_storage_errors_total{operation}`, whatever
/// the worker: a put, read, head, delete or list that threw. An answer that is an answer — a key
/// not found, an object changed under an `If-Match`, a fenced write, bytes that do not decode — is
/// not a storage error and is not counted, and neither is cancellation.
public final class ErrorCountingStorage: StorageBackend {
    let base: any StorageBackend

    /// Counts the failed requests made to `base`.
    public init(base: any StorageBackend) {
        self.base = base
        // Every operation's counter at zero from the start: a `rate()` alert then sees the first error.
        for operation in Self.operations { _ = Counter(label: "des_storage_errors_total", dimensions: [("operation", operation)]) }
    }

    /// The operations counted.
    public static let operations = ["put", "get", "get_range", "get_suffix", "head", "delete", "list"]

    /// Whether `error` is the storage failing (not an answer, not cancellation).
    static func isFailure(_ error: any Error) -> Bool {
        if error is CancellationError { return false }
        if let e = error as? DESKitError {
            return ![DESKitError.Code.notFound, .changed, .fenced, .invalidData, .configuration].contains(e.code)
        }
        return true
    }

    private func counted<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            if Self.isFailure(error) {
                Counter(label: "des_storage_errors_total", dimensions: [("operation", operation)]).increment()
            }
            throw error
        }
    }

    public var location: String { base.location }
    public func put(key: String, fromFile path: String) async throws -> ObjectInfo {
        try await counted("put") { try await base.put(key: key, fromFile: path) }
    }
    public func get(key: String) async throws -> [UInt8] {
        try await counted("get") { try await base.get(key: key) }
    }
    public func get(key: String, offset: UInt64, length: UInt64) async throws -> [UInt8] {
        try await counted("get_range") { try await base.get(key: key, offset: offset, length: length) }
    }
    public func get(key: String, offset: UInt64, length: UInt64, ifMatch: String?) async throws -> [UInt8] {
        try await counted("get_range") { try await base.get(key: key, offset: offset, length: length, ifMatch: ifMatch) }
    }
    public func getSuffix(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64) {
        try await counted("get_suffix") { try await base.getSuffix(key: key, length: length) }
    }
    public func getSuffixVersioned(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64, version: String?) {
        try await counted("get_suffix") { try await base.getSuffixVersioned(key: key, length: length) }
    }
    public func head(key: String) async throws -> ObjectInfo? {
        try await counted("head") { try await base.head(key: key) }
    }
    public func delete(key: String) async throws {
        try await counted("delete") { try await base.delete(key: key) }
    }
    public func list(prefix: String) async throws -> [ObjectInfo] {
        try await counted("list") { try await base.list(prefix: prefix) }
    }
    public func removeStaleTemporaries(prefix: String, olderThanSeconds: Double) async throws -> Int {
        try await counted("list") { try await base.removeStaleTemporaries(prefix: prefix, olderThanSeconds: olderThanSeconds) }
    }
    public func close() async { await base.close() }
    public func localPath(of key: String) -> String? { base.localPath(of: key) }
}
