import Hummingbird
import Logging

/// Gives every request an id: the client's `X-Request-Id` when it is a sane token (1 to 128
/// letters, digits, `-`, `_`, `.`, `:`), else one made here. The id is echoed in the answer's
/// `X-Request-Id`, put in every log line of the request (`request_id`) and in every JSON error
/// body, so a client's report and the server's log meet.
///
/// An error thrown past the routes (an unknown path, a method not allowed) is answered here,
/// with the id; anything else that escapes is logged and answered 500 `internal`, naming nothing.
struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The longest client id kept.
    static var maxLength: Int { 128 }
    /// The methods each path takes: a path asked with another is 405, not 404.
    let allowed: AllowedMethods

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = Self.accepted(request.headers[.xRequestID]) ?? context.id
        var context = context
        context.logger[metadataKey: "request_id"] = .string(id)
        var response: Response
        do {
            response = try await APIResponse.$requestID.withValue(id) { try await next(request, context) }
        } catch let error as HTTPError where error.body == nil {
            // The router's own answers (no route for the path, a method the path does not take)
            // are JSON errors like every other, with the request id.
            let methods = error.status == .notFound ? allowed.methods(for: request.uri.path) : []
            response = APIResponse.$requestID.withValue(id) {
                methods.isEmpty ? Self.routerError(error.status, request) : Self.methodNotAllowed(request, allow: methods)
            }
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            response = APIResponse.$requestID.withValue(id) {
                APIResponse.error(.internalServerError, "internal", "the server failed to answer; the log has the details under this request id")
            }
        }
        response.headers[.xRequestID] = id
        return response
    }

    /// 405 for a path that exists asked with a method none of its routes takes, with `Allow`.
    static func methodNotAllowed(_ request: Request, allow: [HTTPRequest.Method]) -> Response {
        let list = allow.map(\.rawValue).joined(separator: ", ")
        var response = routerError(.methodNotAllowed, request)
        response.headers[.allow] = list
        return response
    }

    /// A JSON error for what the router refused (`not_found`, `method_not_allowed`, `bad_request`).
    static func routerError(_ status: HTTPResponse.Status, _ request: Request) -> Response {
        switch status {
        case .notFound: return APIResponse.error(status, "not_found", "no route for \(request.method.rawValue) \(request.uri.path.prefix(256))")
        case .methodNotAllowed: return APIResponse.error(status, "method_not_allowed", "\(request.uri.path.prefix(256)) does not take \(request.method.rawValue)")
        default: return APIResponse.error(status, status.code >= 500 ? "internal" : "bad_request", status.reasonPhrase)
        }
    }

    /// The client's id, when it is one to keep.
    static func accepted(_ header: String?) -> String? {
        guard let header, !header.isEmpty, header.utf8.count <= maxLength else { return nil }
        let allowed = header.utf8.allSatisfy { b in
            (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) || b == 0x2D || b == 0x5F || b == 0x2E
                || b == 0x3A
        }
        return allowed ? header : nil
    }
}
