import DESFormat
import DESKit
import Hummingbird
import Logging

/// The bytes of a located file for an answer, checked against the sha256 its META records.
///
/// - A body of at most ``verifyMaxBytes`` is read whole and checked before the answer starts
///   (a `Range` of it is sliced after the check): a mismatch is a thrown error, so the client
///   gets 502 `checksum_mismatch`, never 200.
/// - A larger body, asked for whole, streams in chunks through an incremental SHA-256; its last
///   chunk is written only after the digest matched, so on a mismatch the stream throws and the
///   connection closes short of `Content-Length`: no client can take it as complete.
/// - A `Range` of part of a larger body cannot be checked without reading it all: it is served
///   unchecked. A range that covers the whole body is checked as the whole body is.
/// - An entry with no sha256 (archives written by the original DES) is served unchecked; in a
///   sealed container (DES's own) the reader refuses it as damage, 500 `corrupt_container`.
///
/// Every mismatch is logged (container, entry, request id), counted in
/// `des_read_checksum_failures_total`, and makes the server forget where the name was (and the
/// index it was found in), so the next request reads them again.
struct FileBody: Sendable {
    let locator: FileLocator
    let metrics: ServerMetrics
    /// Bodies up to this size are read whole and checked before the answer starts.
    let verifyMaxBytes: UInt64

    /// Bodies larger than this are streamed in chunks of this size.
    static let streamChunk: UInt64 = 1 << 20

    /// The body of `located`, or of its `range` (inclusive; nil: all of it).
    func body(_ located: LocatedEntry, range: ClosedRange<UInt64>?, logger: Logger) async throws -> ResponseBody {
        let size = located.size
        if let expected = located.sha256 {
            if size <= verifyMaxBytes {
                let whole = try await locator.reader.read(located, offset: 0, length: size)
                try await check(BodyDigest.hex(of: whole), expected: expected, located, logger: logger)
                guard let range else { return ResponseBody(byteBuffer: ByteBuffer(bytes: whole)) }
                let slice = whole[Int(range.lowerBound)...Int(range.upperBound)]
                return ResponseBody(byteBuffer: ByteBuffer(bytes: slice))
            }
            // A range that covers the whole body (`bytes=0-`, as players and download managers send)
            // reads all of it anyway: it is checked as the whole body is.
            if range == nil || range == 0...(size - 1) { return try await checkedStream(located, expected: expected, logger: logger) }
        }
        return try await uncheckedStream(located, range: range, logger: logger)
    }

    /// The whole of a large body, chunk by chunk, each hashed before it is written; the last
    /// one only once the digest matched. The first chunk is read before the answer starts, so
    /// a storage failure is still a clean 503.
    private func checkedStream(_ located: LocatedEntry, expected: String, logger: Logger) async throws -> ResponseBody {
        let size = located.size
        let chunk = Self.streamChunk
        let first = try await locator.reader.read(located, offset: 0, length: min(chunk, size))
        let body = self
        return ResponseBody(contentLength: Int(size)) { writer in
            let digest = BodyDigest()
            var piece = first
            var at: UInt64 = 0
            while true {
                digest.update(piece)
                let end = at + UInt64(piece.count)
                if end >= size {
                    // The last piece: out only if everything hashed to META's sha256. Else the
                    // stream throws and the connection closes short of Content-Length.
                    try await body.check(digest.finalizeHex(), expected: expected, located, logger: logger)
                    try await writer.write(ByteBuffer(bytes: piece))
                    break
                }
                try await writer.write(ByteBuffer(bytes: piece))
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
        guard actual != expected.lowercased() else { return }
        metrics.checksumFailures.increment()
        logger.error(
            "checksum mismatch: the bytes read do not hash to the sha256 META records",
            metadata: [
                "container": "\(located.key)", "entry": "\(located.entry.name)", "expected": "\(expected)", "actual": "\(actual)",
                "size": "\(located.size)",
            ])
        await locator.forget(name: located.entry.name)
        throw DESFormatError(
            .checksumMismatch, "\"\(located.entry.name)\" hashes to \(actual), META records \(expected)", path: located.key)
    }
}
