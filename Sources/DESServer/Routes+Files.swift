import DESEngine
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
        group.get("/files/by-path/**") { request, context -> Response in
            await serveByPath(request, context, head: false)
        }
        group.head("/files/by-path/**") { request, context -> Response in
            let response = await serveByPath(request, context, head: true)
            return Response(status: response.status, headers: response.headers)
        }
    }

    /// `GET|HEAD /files/by-path/{path}?version=N&root=R&source=S`: the file a filesystem source
    /// recorded at that path (beneath one of its roots), its newest packed version unless
    /// `version` says which; then exactly as `/files/{name}` for its name (Range, ETag, 410 once
    /// deleted), with `X-DES-Name` and `X-DES-Version` saying which file it was.
    private func serveByPath(_ request: Request, _ context: BasicRequestContext, head: Bool) async -> Response {
        let raw = context.parameters.getCatchAll().joined(separator: "/")
        guard raw.utf8.count <= 3 * 4_096, let path = PercentDecoding.decode(raw), !path.isEmpty, path.utf8.count <= 4_096 else {
            return APIResponse.error(.badRequest, "bad_path", "not a file path: empty, too long (over 4,096 bytes) or badly percent-encoded")
        }
        let query = request.uri.queryParameters
        for key in ["version", "root", "source"] where query.getAll(key).count > 1 {
            return APIResponse.error(.badRequest, "repeated_parameter", "\(key) is given more than once: give it once")
        }
        var version: Int?
        if let text = query.get("version") {
            guard let v = Int(text), v >= 1 else {
                return APIResponse.error(.badRequest, "bad_version", "version must be a whole number from 1, got '\(text.prefix(40))'")
            }
            version = v
        }
        let found: PathVersion
        do {
            found = try await paths.resolve(path: path, version: version, source: query.get("source"), root: query.get("root"))
        } catch let error as PathLookupError {
            switch error.code {
            case .ambiguous: return APIResponse.error(.conflict, "ambiguous_path", error.message)
            case .notFound: return APIResponse.error(.notFound, "not_found", error.message)
            case .noSuchVersion: return APIResponse.error(.notFound, "no_such_version", error.message)
            case .notPacked: return APIResponse.error(.notFound, "not_packed", error.message)
            case .deleted: return APIResponse.error(.gone, "deleted", error.message, headers: [.cacheControl: "no-store"])
            }
        } catch {
            return APIResponse.failure(error, while: "\(request.method) /files/by-path", logger: context.logger)
        }
        guard let name = found.name, let parsed = try? SnowflakeName(parsing: name) else {
            return APIResponse.error(.notFound, "not_packed", "'\(path)' version \(found.version) has no DES name")
        }
        var response = await serveFile(request, context, name: name, parsed: parsed, head: head)
        response.headers[.xDESName] = name
        response.headers[.xDESVersion] = String(found.version)
        // A name's bytes never change, a path's do: without a version, caches revalidate (by ETag).
        // Only the file's own answers (200, 206, 304) say immutable; errors keep their no-store.
        if version == nil && response.headers[.cacheControl]?.contains("immutable") == true { response.headers[.cacheControl] = "no-cache" }
        return response
    }

    /// The name of a `/files/{name}` request, or the 400 answer for what cannot be a DES name.
    private func requestedName(_ context: BasicRequestContext) -> Result<(String, SnowflakeName), APIError> {
        let raw = context.parameters.get("name") ?? ""
        // Most names arrive as they are: decoding is skipped when there is nothing to decode.
        guard raw.utf8.count <= Self.maxNameLength * 3 else {
            return .failure(APIError(status: .badRequest, code: "bad_name", message: "not a DES name: too long"))
        }
        guard let name = PercentDecoding.decode(raw) else {
            return .failure(APIError(status: .badRequest, code: "bad_name", message: "not a DES name: badly percent-encoded (not UTF-8 once decoded)"))
        }
        guard name.utf8.count <= Self.maxNameLength else {
            return .failure(APIError(status: .badRequest, code: "bad_name", message: "not a DES name: too long"))
        }
        do {
            return .success((name, try SnowflakeName(parsing: name)))
        } catch {
            return .failure(APIError(status: .badRequest, code: "bad_name", message: "not a DES name: \(error.message)"))
        }
    }

    /// `DELETE /files/{name}?reason=…`: a tombstone, always behind bearer tokens that may write (a
    /// server without tokens or JWT keys refuses deletes: 403). 200 when deleted (or deleted
    /// before), 404 when no uploaded container holds the name.
    private func deleteFile(_ request: Request, _ context: BasicRequestContext) async -> Response {
        // Asked again here, not taken from the middleware: credentials reloaded in between (SIGHUP)
        // must not let through a delete that passed while the server was open.
        guard case .granted(canWrite: true) = authenticator.authenticate(request.headers[.authorization]) else {
            if !authenticator.isConfigured {
                return APIResponse.error(
                    .forbidden, "deletes_need_auth",
                    "this server has no bearer tokens (server.auth_tokens, DES_SERVER_TOKENS) nor JWT keys (server.jwt): it accepts no deletes")
            }
            return APIResponse.error(
                .unauthorized, "unauthorized", "the bearer token is not accepted", headers: [.wwwAuthenticate: #"Bearer error="invalid_token""#])
        }
        let (name, parsed): (String, SnowflakeName)
        switch requestedName(context) {
        case .failure(let e): return APIResponse.error(e.status, e.code, e.message)
        case .success(let named): (name, parsed) = named
        }
        let reason = (request.uri.queryParameters.get("reason") ?? request.headers[.xDESReason] ?? "").trimmingCharacters(in: .whitespaces)
        if let problem = FileDeleter.reasonProblem(reason) {
            return APIResponse.error(.badRequest, "reason_required", "the reason (?reason=… or an X-DES-Reason header) \(problem)")
        }
        guard request.uri.queryParameters.getAll("reason").count <= 1 else {
            return APIResponse.error(.badRequest, "reason_required", "give the reason once: ?reason= is given more than once")
        }
        do {
            // If-Match: only the file with that ETag is deleted (a file already deleted, or in
            // no container, has no current representation: nothing can match).
            let conditions = request.headers[values: .ifMatch]
            if !conditions.isEmpty {
                let served = try await tombstones.deleted(name) ? nil : try await locator.locate(name, parsed: parsed)
                guard let served else {
                    return APIResponse.error(
                        .preconditionFailed, "precondition_failed", "If-Match: \(name) has no current representation (deleted, or in no uploaded container)",
                        headers: [.cacheControl: "no-store"])
                }
                if !EntityTagList.ifMatchAllows(conditions, etag: served.etag) { return Self.preconditionFailed(served.etag) }
            }
            let outcome = try await deleter.delete(names: [name], reason: reason)
            if !outcome.notFound.isEmpty {
                return APIResponse.error(.notFound, "not_found", "\(name) is in no uploaded container: nothing to delete")
            }
            tombstones.insert(name)
            if !conditions.isEmpty && outcome.deleted.isEmpty {
                // Deleted by another request between the check and this delete: the file this
                // If-Match named was no longer there to delete.
                return APIResponse.error(
                    .preconditionFailed, "precondition_failed", "If-Match: \(name) was deleted by another request meanwhile",
                    headers: [.cacheControl: "no-store"])
            }
            if !outcome.deleted.isEmpty { context.logger.notice("file deleted", metadata: ["name": "\(name)", "reason": "\(reason)"]) }
            return APIResponse.json(.ok, ["name": name, "deleted": true, "already_deleted": outcome.deleted.isEmpty])
        } catch {
            return APIResponse.failure(error, while: "DELETE /files", logger: context.logger)
        }
    }

    /// 412 for an `If-Match` this file's ETag (`etag`; nil when it has none) does not satisfy.
    static func preconditionFailed(_ etag: EntityTag?) -> Response {
        var headers: HTTPFields = [.cacheControl: "no-store"]
        if let etag { headers[.eTag] = etag.header }
        let has = etag.map { "its ETag is \($0.header)" } ?? "it has no ETag (no sha256 recorded)"
        return APIResponse.error(
            .preconditionFailed, "precondition_failed", "If-Match names no entity tag of this file (\(has)); only * or that tag passes",
            headers: headers)
    }

    private func serveFile(_ request: Request, _ context: BasicRequestContext, head: Bool) async -> Response {
        // The name is checked before any I/O: no lookup for what cannot be a DES name.
        switch requestedName(context) {
        case .failure(let e): return APIResponse.error(e.status, e.code, e.message)
        case .success(let (name, parsed)): return await serveFile(request, context, name: name, parsed: parsed, head: head)
        }
    }

    private func serveFile(_ request: Request, _ context: BasicRequestContext, name: String, parsed: SnowflakeName, head: Bool) async -> Response {
        // The request's logger with the name, made only when a line is written (copying the
        // logger's metadata on every request showed in profiles of warm reads).
        var logger: Logger {
            var logger = context.logger
            logger[metadataKey: "name"] = .string(name)
            return logger
        }
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
                guard let served = try await locator.locate(name, parsed: parsed) else {
                    return APIResponse.error(
                        .notFound, "not_found", "\(name) is in no uploaded container of day \(parsed.isoDay), shard \(locator.shard(of: name))")
                }
                return try await respond(request, served, head: head, logger: context.logger)
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

    private func respond(_ request: Request, _ served: ServedFile, head: Bool, logger: Logger) async throws -> Response {
        let located = served.located
        let etag = served.etag
        var headers = served.headers
        // If-Match first (RFC 9110 §13.2.2): no listed tag matching strongly (and not `*`) is 412.
        if !EntityTagList.ifMatchAllows(request.headers[values: .ifMatch], etag: etag) {
            return Self.preconditionFailed(etag)
        }
        // Then If-None-Match: any listed tag matching weakly, or `*`, is 304.
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
        headers.append(HTTPField(name: .contentLength, value: String(length)))
        if head { return Response(status: status, headers: headers) }
        let body = try await fileBody.body(served, range: range, logger: logger)
        return Response(status: status, headers: headers, body: body)
    }
}
