import DESKit
import DESNaming
import Foundation
import HTTPTypes
import Hummingbird
import Logging

extension DESHTTPServer {
    /// The longest name looked at (a Snowflake name is about 40 characters).
    static let maxNameLength = 128

    /// `GET /files/{name}` (bytes; `Range` gives 206) and `HEAD /files/{name}` (size, existence).
    func addFileRoutes(to group: RouterGroup<BasicRequestContext>) {
        group.get("/files/{name}") { request, context -> Response in
            await serveFile(request, context, head: false)
        }
        group.head("/files/{name}") { request, context -> Response in
            let response = await serveFile(request, context, head: true)
            // A HEAD answer carries no body, errors included (their status says enough).
            return Response(status: response.status, headers: response.headers)
        }
    }

    private func serveFile(_ request: Request, _ context: BasicRequestContext, head: Bool) async -> Response {
        // The name is checked before any I/O: no lookup for what cannot be a DES name.
        let raw = context.parameters.get("name") ?? ""
        guard raw.utf8.count <= Self.maxNameLength * 3, let name = raw.removingPercentEncoding, name.utf8.count <= Self.maxNameLength else {
            return APIResponse.error(.badRequest, "bad_name", "not a DES name: too long")
        }
        let parsed: SnowflakeName
        do {
            parsed = try SnowflakeName(parsing: name)
        } catch {
            return APIResponse.error(.badRequest, "bad_name", "not a DES name: \(error.message)")
        }
        let shard = locator.shard(of: name)
        var logger = context.logger
        logger[metadataKey: "name"] = .string(name)
        var attempt = 0
        while true {
            do {
                guard let located = try await locator.locate(name, parsed: parsed, shard: shard) else {
                    return APIResponse.error(
                        .notFound, "not_found", "\(name) is in no uploaded container of day \(parsed.isoDay), shard \(shard)")
                }
                return try await respond(request, located, shard: shard, head: head)
            } catch let error as DESKitError where error.code == .changed && attempt == 0 {
                // The container was replaced under what we knew of it: forget and look again, once.
                attempt += 1
                await locator.forget(name: name)
            } catch {
                return APIResponse.failure(error, while: "\(request.method) /files", logger: logger)
            }
        }
    }

    private func respond(_ request: Request, _ located: LocatedEntry, shard: Int, head: Bool) async throws -> Response {
        var headers: HTTPFields = [
            .contentType: located.contentType ?? "application/octet-stream",
            .acceptRanges: "bytes",
            .cacheControl: "public, max-age=31536000, immutable",
            // The content type comes from catalog rows: never let a browser run what it serves.
            .xContentTypeOptions: "nosniff",
            .contentSecurityPolicy: "sandbox",
        ]
        headers[.xDESContainer] = located.key
        headers[.xDESShardID] = String(shard)
        if let sha = located.sha256 {
            let etag = "\"" + sha + "\""
            headers[.eTag] = etag
            if let match = request.headers[.ifNoneMatch], match == etag || match == "*" {
                return Response(status: .notModified, headers: headers)
            }
        }
        let size = located.size
        var status = HTTPResponse.Status.ok
        var range: ClosedRange<UInt64>? = nil
        if let header = request.headers[.range] {
            switch ByteRange.parse(header, size: size) {
            case .whole: break
            case .slice(let r):
                range = r
                status = .partialContent
                headers[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound)/\(size)"
            case .unsatisfiable:
                // An error, not the file: none of the file's caching headers.
                return APIResponse.error(
                    .rangeNotSatisfiable, "bad_range", "the range \(header) is outside the file's \(size) bytes",
                    headers: [.contentRange: "bytes */\(size)", .cacheControl: "no-store"])
            case .malformed:
                return APIResponse.error(.badRequest, "bad_range", "the Range header must be bytes=START-END, bytes=START- or bytes=-LENGTH")
            }
        }
        let offset = range?.lowerBound ?? 0
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? size
        headers[.contentLength] = String(length)
        if head { return Response(status: status, headers: headers) }
        if length <= Self.streamChunk {
            let bytes = try await locator.reader.read(located, offset: offset, length: length)
            return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        // A large body (an external big file, or a large slice) goes out chunk by chunk:
        // memory stays at one chunk a request, whatever the file's size. The first chunk is
        // read before the answer starts, so a storage failure is still a clean 503.
        let (reader, logger) = (locator.reader, logger)
        let first = try await reader.read(located, offset: offset, length: Self.streamChunk)
        return Response(
            status: status, headers: headers,
            body: ResponseBody(contentLength: Int(length)) { writer in
                try await writer.write(ByteBuffer(bytes: first))
                var at = offset + Self.streamChunk
                let end = offset + length
                while at < end {
                    let n = min(Self.streamChunk, end - at)
                    do {
                        try await writer.write(ByteBuffer(bytes: try await reader.read(located, offset: at, length: n)))
                    } catch {
                        // The status is sent: the client sees the connection close short of Content-Length.
                        logger.warning(
                            "GET /files failed mid-stream", metadata: ["name": "\(located.entry.name)", "at": "\(at)", "error": "\(error)"])
                        throw error
                    }
                    at += n
                }
                try await writer.finish(nil)
            })
    }

    /// Bodies larger than this are streamed in chunks of this size.
    static let streamChunk: UInt64 = 1 << 20
}

/// A single-range `Range` header against a file of `size` bytes (RFC 9110 §14).
enum ByteRange: Equatable {
    /// No range applies (another unit, or several ranges): the whole file, 200.
    case whole
    /// The inclusive byte range to send, 206.
    case slice(ClosedRange<UInt64>)
    /// A range starting past the end, or an empty suffix: 416.
    case unsatisfiable
    /// Not a byte range: 400.
    case malformed

    static func parse(_ header: String, size: UInt64) -> ByteRange {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = text.dropFirst(6).trimmingCharacters(in: .whitespaces)
        if spec.contains(",") { return .whole }  // several ranges: the whole file is a valid answer
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .malformed }
        let (first, last) = (parts[0].trimmingCharacters(in: .whitespaces), parts[1].trimmingCharacters(in: .whitespaces))
        // Digits only (no sign, no spaces); a position past UInt64 is simply very large.
        func number(_ s: String) -> UInt64? {
            guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return UInt64(s) ?? UInt64.max
        }
        if first.isEmpty {
            guard let n = number(last) else { return .malformed }
            guard n > 0, size > 0 else { return .unsatisfiable }
            return .slice((size - min(n, size))...(size - 1))
        }
        guard let start = number(first) else { return .malformed }
        let end: UInt64
        if last.isEmpty {
            end = size &- 1
        } else {
            guard let e = number(last) else { return .malformed }
            guard e >= start else { return .malformed }
            end = min(e, size &- 1)
        }
        guard size > 0, start < size else { return .unsatisfiable }
        return .slice(start...end)
    }
}
