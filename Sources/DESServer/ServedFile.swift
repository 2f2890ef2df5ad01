import DESKit
import HTTPTypes
import Synchronization

/// One version of one container, shared by every file the server found in it: when storage
/// last confirmed that the container is still that version (``FileBody``'s kept bodies are
/// believed for `container_refresh_seconds` after it, then one `HEAD` asks again).
final class ContainerCheck: Sendable {
    /// Monotonic nanoseconds of the last confirmation (0: none yet).
    let confirmedAt = Atomic<UInt64>(0)
}

/// A located file as the server answers for it: where it is, the shard of its name, and the
/// header values that every answer for it repeats, made once when it is located and kept in the
/// locator's cache (a warm read then copies one reference, and hashes nor formats nothing twice).
final class ServedFile: Sendable {
    /// Where the file is, and what its META says.
    let located: LocatedEntry
    /// The shard of its name.
    let shard: Int
    /// Its container's version, as last confirmed (shared with the container's other files).
    let check: ContainerCheck
    /// Its ETag (the sha256 META records), nil when META records none.
    let etag: EntityTag?
    /// The headers of every answer with the file (200, 206, 304, HEAD): content type, caching,
    /// container, shard and ETag; `Content-Length` and `Content-Range` are the answer's own.
    let headers: HTTPFields

    /// The file `located`, whose name is in shard `shard`; `check` is its container version's
    /// (one of its own when not given).
    init(_ located: LocatedEntry, shard: Int, check: ContainerCheck? = nil) {
        self.located = located
        self.shard = shard
        self.check = check ?? ContainerCheck()
        let etag = located.sha256.map { EntityTag(strong: $0) }
        self.etag = etag
        var headers: HTTPFields = [
            .contentType: located.contentType ?? "application/octet-stream",
            .acceptRanges: "bytes",
            .cacheControl: "public, max-age=31536000, immutable",
            // The content type comes from catalog rows: never let a browser run what it serves.
            .xContentTypeOptions: "nosniff",
            .contentSecurityPolicy: "sandbox",
            .xDESContainer: located.key,
            .xDESShardID: String(shard),
        ]
        if let etag { headers.append(HTTPField(name: .eTag, value: etag.header)) }
        self.headers = headers
    }
}
