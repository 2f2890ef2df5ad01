import DESEngine
import DESFormat
import DESKit
import Hummingbird
import Logging
import NIOCore

/// The bytes of a located file for an answer, checked against the sha256 its META records.
///
/// - A body of at most ``verifyMaxBytes`` is read whole and checked before the answer starts
///   (a `Range` of it is sliced after the check): a mismatch is a thrown error, so the client
///   gets 502 `checksum_mismatch`, never 200.
/// - A larger body, asked for whole, streams in chunks through an incremental SHA-256; its last
///   chunk is written only after the digest matched, so on a mismatch the stream throws and the
///   connection closes short of `Content-Length`: no client can take it as complete.
/// - A `Range` of at least half of a larger body is checked: the whole body is read and hashed,
///   and the range's last piece is written only after the digest matched. A smaller range of a
///   larger body (a player seeking) is served unchecked: checking it would mean reading the rest.
/// - An entry with no sha256 (archives written by the original DES) is served unchecked; in a
///   sealed container (DES's own) the reader refuses it as damage, 500 `corrupt_container`.
///
/// A body read whole and checked is kept in the ``BodyCache`` (`server.body_cache_bytes`) and
/// answered from memory while the server still knows the file where it read it.
///
/// Every mismatch is logged (container, entry, request id), counted in
/// `des_read_checksum_failures_total`, and makes the server forget where the name was (and the
/// index it was found in), so the next request reads them again.
struct FileBody: Sendable {
    let locator: FileLocator
    let metrics: ServerMetrics
    /// Bodies up to this size are read whole and checked before the answer starts.
    let verifyMaxBytes: UInt64
    /// Bodies read whole and checked, kept for the next request of the same file.
    let bodies: BodyCache
    /// How long a container's version, once read or asked, is believed for the bodies kept from
    /// it (`server.container_refresh_seconds`): after that, one `HEAD` of it before the next is served.
    let confirmSeconds: Double

    /// Bodies larger than this are streamed in chunks of this size.
    static let streamChunk: UInt64 = 1 << 20

    /// The body of `served`, or of its `range` (inclusive; nil: all of it).
    /// `logger` is the request's: every line written here names the entry and its container.
    func body(_ served: ServedFile, range: ClosedRange<UInt64>?, logger: Logger) async throws -> ResponseBody {
        let located = served.located
        let size = located.size
        if let expected = located.sha256 {
            if size <= verifyMaxBytes {
                let whole: ByteBuffer
                if let cached = bodies.body(of: located.entry.name, served: served), try await stillStored(served) {
                    metrics.bodyCacheHits.increment()
                    whole = cached
                } else {
                    let bytes = try await locator.reader.read(located, offset: 0, length: size)
                    try await check(BodyDigest.hex(of: bytes), expected: expected, located, logger: logger)
                    whole = ByteBuffer(bytes: bytes)
                    if bodies.admits(size: size), located.version != nil {
                        // The read was of this version (pinned): it is confirmed as of now.
                        served.check.confirmedAt.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
                        metrics.bodyCacheMisses.increment()
                        bodies.insert(located.entry.name, served: served, body: whole)
                        metrics.bodyCacheBytes.set(Int64(bodies.bytes))
                    }
                }
                guard let range else { return ResponseBody(byteBuffer: whole) }
                let slice = whole.getSlice(at: whole.readerIndex + Int(range.lowerBound), length: Int(range.upperBound - range.lowerBound + 1))
                return ResponseBody(byteBuffer: slice ?? ByteBuffer())
            }
            // A range that covers the whole body (`bytes=0-`, as players and download managers send)
            // reads all of it anyway: it is checked as the whole body is.
            if range == nil || range == 0...(size - 1) { return try await checkedStream(located, expected: expected, logger: logger) }
            // A range of at least half the body (`bytes=1-`: all but a byte) is checked too: the
            // whole body is read and hashed, and the range's last piece goes out only once it matched.
            if let range, (range.upperBound - range.lowerBound + 1) * 2 >= size {
                return try await checkedStream(located, expected: expected, range: range, logger: logger)
            }
        }
        return try await uncheckedStream(located, range: range, logger: logger)
    }

    /// Whether the container `served` was found in still holds the version it was found in:
    /// believed for ``confirmSeconds`` after it was last read or asked, then asked again (one
    /// `HEAD`). A container replaced, restored or removed behind the server's back is so noticed
    /// within `container_refresh_seconds`, as a name missing from a cached index is; when it is,
    /// the kept body is dropped and the file read (and found again) as without the cache.
    private func stillStored(_ served: ServedFile) async throws -> Bool {
        let located = served.located
        guard let version = located.version else { return false }
        let now = NIODeadline.now().uptimeNanoseconds
        let last = served.check.confirmedAt.load(ordering: .relaxed)
        if last != 0, Double(now &- last) < confirmSeconds * 1e9 { return true }
        guard try await locator.reader.storage.head(key: located.key)?.etag == version else {
            bodies.remove(located.entry.name)
            return false
        }
        served.check.confirmedAt.store(now, ordering: .relaxed)
        return true
    }

    /// A large body (or `range` of it), chunk by chunk: every chunk of the whole body is hashed,
    /// and what lies in the range is written one chunk behind, so the last of it goes out only
    /// once the digest matched META's sha256. Else the stream throws and the connection closes
    /// short of Content-Length. The first chunk is read before the answer starts, so a storage
    /// failure is still a clean 503.
    private func checkedStream(_ located: LocatedEntry, expected: String, range: ClosedRange<UInt64>? = nil, logger: Logger) async throws
        -> ResponseBody
    {
        let size = located.size
        let wanted = range ?? 0...(size - 1)
        let chunk = Self.streamChunk
        let first = try await locator.reader.read(located, offset: 0, length: min(chunk, size))
        let body = self
        return ResponseBody(contentLength: Int(wanted.upperBound - wanted.lowerBound + 1)) { writer in
            let digest = BodyDigest()
            var piece = first
            var at: UInt64 = 0
            var held: [UInt8]? = nil  // range bytes read and not yet written
            while true {
                digest.update(piece)
                let end = at + UInt64(piece.count)
                let (low, high) = (max(at, wanted.lowerBound), min(end - 1, wanted.upperBound))
                if low <= high {
                    if let out = held { try await writer.write(ByteBuffer(bytes: out)) }
                    held = Array(piece[Int(low - at)...Int(high - at)])
                }
                if end >= size {
                    // The whole body is read: its last range bytes go out only if it hashed to META's sha256.
                    try await body.check(digest.finalizeHex(), expected: expected, located, logger: logger)
                    if let out = held { try await writer.write(ByteBuffer(bytes: out)) }
                    break
                }
                at = end
                piece = try await body.read(located, at: at, length: min(chunk, size - at), logger: logger)
            }
            try await writer.finish(nil)
        }
    }

    /// A body with nothing to check it against (or a range of a large one): one read when it
    /// fits a chunk, else chunk by chunk, memory at one chunk a request whatever the size.
    private func uncheckedStream(_ located: LocatedEntry, range: ClosedRange<UInt64>?, logger: Logger) async throws -> ResponseBody {
        let offset = range?.lowerBound ?? 0
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? located.size
        let chunk = Self.streamChunk
        if length <= chunk {
            return ResponseBody(byteBuffer: ByteBuffer(bytes: try await locator.reader.read(located, offset: offset, length: length)))
        }
        let first = try await locator.reader.read(located, offset: offset, length: chunk)
        let body = self
        return ResponseBody(contentLength: Int(length)) { writer in
            try await writer.write(ByteBuffer(bytes: first))
            var at = offset + chunk
            let end = offset + length
            while at < end {
                let n = min(chunk, end - at)
                try await writer.write(ByteBuffer(bytes: try await body.read(located, at: at, length: n, logger: logger)))
                at += n
            }
            try await writer.finish(nil)
        }
    }

    /// A chunk read once the status is sent: a failure is logged here, as no answer can carry it
    /// (the client sees the connection close short of Content-Length).
    private func read(_ located: LocatedEntry, at: UInt64, length: UInt64, logger: Logger) async throws -> [UInt8] {
        do {
            return try await locator.reader.read(located, offset: at, length: length)
        } catch {
            logger.warning(
                "GET /files failed mid-stream",
                metadata: ["name": "\(located.entry.name)", "container": "\(located.key)", "at": "\(at)", "error": "\(error)"])
            throw error
        }
    }

    /// Throws ``DESFormatError/Code/checksumMismatch`` when `actual` is not `expected`; logs,
    /// counts, and forgets the name's location and index.
    func check(_ actual: String, expected: String, _ located: LocatedEntry, logger: Logger) async throws {
        guard actual != expected else { return }
        metrics.checksumFailures.increment()
        logger.error(
            "checksum mismatch: the bytes read do not hash to the sha256 META records",
            metadata: [
                "container": "\(located.key)", "entry": "\(located.entry.name)", "expected": "\(expected)", "actual": "\(actual)",
                "size": "\(located.size)",
            ])
        await locator.forget(name: located.entry.name)
        bodies.remove(located.entry.name)
        throw DESFormatError(
            .checksumMismatch, "\"\(located.entry.name)\" hashes to \(actual), META records \(expected)", path: located.key)
    }
}
