import DESKit
import DESNaming
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// An answer that is an error, before it is a response.
struct APIError: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
}

extension DESHTTPServer {
    /// The longest name looked at: the longest name the marker can make (``SnowflakeName/maxLength``).
    static let maxNameLength = SnowflakeName.maxLength

    /// `GET /files/{name}` (bytes, checked against META's sha256; `Range` gives 206) and
    /// `HEAD /files/{name}` (size, existence).
    func addFileRoutes(to group: RouterGroup<BasicRequestContext>) {
        group.get("/files/{name}") { request, context -> Response in
            await serveFile(request, context, head: false)
        }
        group.head("/files/{name}") { request, context -> Response in
            let response = await serveFile(request, context, head: true)
            // A HEAD answer carries no body, errors included (their status says enough).
            return Response(status: response.status, headers: response.headers)
        }
        group.delete("/files/{name}") { request, context -> Response in
            await deleteFile(request, context)
        }
    }

    /// The name of a `/files/{name}` request, or the 400 answer for what cannot be a DES name.
    private func requestedName(_ context: BasicRequestContext) -> Result<(String, SnowflakeName), APIError> {
        let raw = context.parameters.get("name") ?? ""
        guard raw.utf8.count <= Self.maxNameLength * 3, let name = raw.removingPercentEncoding, name.utf8.count <= Self.maxNameLength else {
            return .failure(APIError(status: .badRequest, code: "bad_name", message: "not a DES name: too long"))
        }
        do {
            return .success((name, try SnowflakeName(parsing: name)))
        } catch {
            return .failure(APIError(status: .badRequest, code: "bad_name", message: "not a DES name: \(error.message)"))
        }
    }

    /// `DELETE /files/{name}?reason=…`: a tombstone, always behind bearer tokens (a server without
    /// tokens refuses deletes: 403). 200 when deleted (or deleted before), 404 when no uploaded
    /// container holds the name.
    private func deleteFile(_ request: Request, _ context: BasicRequestContext) async -> Response {
        guard !settings.tokens.isEmpty else {
            return APIResponse.error(
                .forbidden, "deletes_need_auth", "this server has no bearer tokens (server.auth_tokens, DES_SERVER_TOKENS): it accepts no deletes")
        }
        let name: String
        switch requestedName(context) {
        case .failure(let e): return APIResponse.error(e.status, e.code, e.message)
        case .success(let (n, _)): name = n
        }
        let reason = (request.uri.queryParameters.get("reason") ?? request.headers[.xDESReason] ?? "").trimmingCharacters(in: .whitespaces)
        guard !reason.isEmpty, reason.utf8.count <= 2_000 else {
            return APIResponse.error(.badRequest, "reason_required", "say why: ?reason=… or an X-DES-Reason header (at most 2,000 bytes)")
        }
        do {
            let outcome = try await deleter.delete(names: [name], reason: reason)
            if !outcome.notFound.isEmpty {
                return APIResponse.error(.notFound, "not_found", "\(name) is in no uploaded container: nothing to delete")
            }
            tombstones.insert(name)
            context.logger.notice("file deleted", metadata: ["name": "\(name)", "reason": "\(reason)"])
            return APIResponse.json(.ok, ["name": name, "deleted": true, "already_deleted": outcome.deleted.isEmpty])
        } catch {
            return APIResponse.failure(error, while: "DELETE /files", logger: context.logger)
        }
    }

    private func serveFile(_ request: Request, _ context: BasicRequestContext, head: Bool) async -> Response {
        // The name is checked before any I/O: no lookup for what cannot be a DES name.
        let (name, parsed): (String, SnowflakeName)
        switch requestedName(context) {
        case .failure(let e): return APIResponse.error(e.status, e.code, e.message)
        case .success(let found): (name, parsed) = found
        }
        let shard = locator.shard(of: name)
        var logger = context.logger
        logger[metadataKey: "name"] = .string(name)
        do {
            if try await tombstones.deleted(name) {
                return APIResponse.error(.gone, "deleted", "\(name) was deleted", headers: [.cacheControl: "no-store"])
            }
        } catch {
            return APIResponse.failure(error, while: "\(request.method) /files", logger: logger)
        }
        var attempt = 0
        while true {
            do {
                guard let located = try await locator.locate(name, parsed: parsed, shard: shard) else {
                    return APIResponse.error(
                        .notFound, "not_found", "\(name) is in no uploaded container of day \(parsed.isoDay), shard \(shard)")
                }
                return try await respond(request, located, shard: shard, head: head, logger: logger)
            } catch let error as DESKitError where (error.code == .changed || error.code == .notFound) && attempt == 0 {
                // The container was replaced under what we knew of it, or is gone (compacted, its
                // grace over): forget it, and the (day, shard)'s list, and look again, once.
                attempt += 1
                await locator.forget(name: name, containers: error.code == .notFound)
            } catch {
                return APIResponse.failure(error, while: "\(request.method) /files", logger: logger)
            }
        }
    }

    private func respond(_ request: Request, _ located: LocatedEntry, shard: Int, head: Bool, logger: Logger) async throws -> Response {
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
        let etag = located.sha256.map { EntityTag(strong: $0) }
        if let etag { headers[.eTag] = etag.header }
        // If-None-Match comes first (RFC 9110 §13.2.2): any listed tag matching weakly, or `*`, is 304.
        let noneMatch = request.headers[values: .ifNoneMatch]
        if !noneMatch.isEmpty, let condition = EntityTagList.parse(noneMatch), condition.matches(etag) {
            return Response(status: .notModified, headers: headers)
        }
        let size = located.size
        var status = HTTPResponse.Status.ok
        var range: ClosedRange<UInt64>? = nil
        // A Range counts only when If-Range (if any) names this very file strongly; else the whole file.
        if let header = request.headers[.range], IfRange.allowsRange(request.headers[.ifRange], etag: etag) {
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
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? size
        headers[.contentLength] = String(length)
        if head { return Response(status: status, headers: headers) }
        let body = try await fileBody.body(located, range: range, logger: logger)
        return Response(status: status, headers: headers, body: body)
    }
}
