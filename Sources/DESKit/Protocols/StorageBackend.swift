/// What storage knows about an object.
public struct ObjectInfo: Sendable, Equatable {
    /// The object's key.
    public var key: String
    /// Its size in bytes.
    public var size: UInt64
    /// An identity that changes when the object changes (S3 ETag, or size+mtime on disk).
    public var etag: String
    /// Creates an object description.
    public init(key: String, size: UInt64, etag: String) {
        self.key = key
        self.size = size
        self.etag = etag
    }
}

/// Where containers are kept: local disk or S3.
///
/// Keys are `/`-separated relative paths such as `des/2025-01-01/shard_07_c12.des`.
/// Implementations must make `put` atomic: a reader sees the whole object or none.
public protocol StorageBackend: Sendable {
    /// A human-readable description (`file:///data/archive`, `s3://bucket/prefix`) with no secrets.
    var location: String { get }

    /// Stores the file at `path` under `key` (multipart when large), replacing any object there.
    func put(key: String, fromFile path: String) async throws -> ObjectInfo

    /// The whole object.
    func get(key: String) async throws -> [UInt8]

    /// `length` bytes from `offset`.
    func get(key: String, offset: UInt64, length: UInt64) async throws -> [UInt8]

    /// The last `length` bytes (or the whole object if shorter) and the object's total size.
    func getSuffix(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64)

    /// The object's size and identity, or nil when there is none.
    func head(key: String) async throws -> ObjectInfo?

    /// Removes the object (no error when it does not exist).
    func delete(key: String) async throws

    /// Objects whose keys start with `prefix`, sorted by key.
    func list(prefix: String) async throws -> [ObjectInfo]

    /// The last `length` bytes, the object's size and its version (ETag), in one request where the
    /// backend can (S3: `bytes=-N`). Default: ``getSuffix(key:length:)`` and ``head(key:)``.
    func getSuffixVersioned(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64, version: String?)

    /// `length` bytes from `offset` of the object's version `ifMatch` (S3: `If-Match` on the ETag);
    /// a changed object is a ``DESKitError`` with code `changed`. Default: the version is checked
    /// with ``head(key:)`` first.
    func get(key: String, offset: UInt64, length: UInt64, ifMatch: String?) async throws -> [UInt8]

    /// Releases connections and threads (the backend is not used after).
    func close() async

    /// The object's file on this machine, when the backend keeps objects as files (local
    /// disk): `des compact` then reads a container in place instead of downloading it. Nil
    /// (the default) for anything else. The file must only be read.
    func localPath(of key: String) -> String?

    /// Removes what interrupted `put`s left under `prefix` (temporary files, unfinished
    /// multipart uploads) whose writer is certainly dead or which are older than
    /// `olderThanSeconds`; never a finished object. Returns how many were removed.
    /// Recovery calls it on packer start and in `des recover`.
    func removeStaleTemporaries(prefix: String, olderThanSeconds: Double) async throws -> Int
}

extension StorageBackend {
    /// A backend whose puts leave nothing behind has nothing to remove.
    public func removeStaleTemporaries(prefix: String, olderThanSeconds: Double) async throws -> Int { 0 }

    public func getSuffixVersioned(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64, version: String?) {
        let (bytes, total) = try await getSuffix(key: key, length: length)
        return (bytes, total, try await head(key: key)?.etag)
    }

    public func get(key: String, offset: UInt64, length: UInt64, ifMatch: String?) async throws -> [UInt8] {
        if let ifMatch, let now = try await head(key: key)?.etag, now != ifMatch {
            throw DESKitError(.changed, "'\(key)' changed (version \(now), not \(ifMatch))")
        }
        return try await get(key: key, offset: offset, length: length)
    }

    public func close() async {}

    public func localPath(of key: String) -> String? { nil }
}
