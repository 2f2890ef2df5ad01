import DESKit
import HTTPTypes

/// A located file as the server answers for it: where it is, the shard of its name, and the
/// header values that every answer for it repeats, made once when it is located and kept in the
/// locator's cache (a warm read then copies one reference, and hashes nor formats nothing twice).
final class ServedFile: Sendable {
    /// Where the file is, and what its META says.
    let located: LocatedEntry
    /// The shard of its name.
    let shard: Int
    /// Its ETag (the sha256 META records), nil when META records none.
    let etag: EntityTag?
    /// The headers of every answer with the file (200, 206, 304, HEAD): content type, caching,
    /// container, shard and ETag; `Content-Length` and `Content-Range` are the answer's own.
    let headers: HTTPFields

    /// The file `located`, whose name is in shard `shard`.
    init(_ located: LocatedEntry, shard: Int) {
        self.located = located
        self.shard = shard
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
