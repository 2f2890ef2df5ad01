import DESKit
import Foundation
import Hummingbird
import Logging

/// Counts every request by route, method and status, with its latency.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        metrics.inFlight.increment()
        defer { metrics.inFlight.decrement() }
        do {
            let response = try await next(request, context)
            record(request, context, status: response.status.code, since: start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            record(request, context, status: status, since: start)
            throw error
        }
    }

    private func record(_ request: Request, _ context: Context, status: Int, since start: ContinuousClock.Instant) {
        // The route's pattern (`/files/{name}`), never the raw path: one series per route.
        let route = context.endpointPath ?? "unmatched"
        metrics.record(route: route, method: request.method.rawValue, status: status, duration: ContinuousClock.now - start)
    }
}

/// Bearer-token authentication (``Authenticator``): `Authorization: Bearer <token>` must carry
/// a static token or a JWT that verifies; with no credentials configured every request passes.
/// Writes (`POST /assign`, `DELETE /files`) need a token that may write: a static token, or a
/// JWT with the write scope (403 `insufficient_scope` otherwise). A refused token gets a bare 401:
/// why is logged (never the token), not told.
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let authenticator: Authenticator
    /// Refusals are logged at most 5 a second after a burst of 20: a flood of bad tokens must not flood the log.
    let refusals = LogThrottle(perSecond: 5, burst: 20)

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch authenticator.authenticate(request.headers[.authorization]) {
        case .open:
            return try await next(request, context)
        case .missing:
            return APIResponse.error(
                .unauthorized, "unauthorized", "this endpoint needs 'Authorization: Bearer <token>'", headers: [.wwwAuthenticate: "Bearer"])
        case .malformed:
            return APIResponse.error(
                .unauthorized, "unauthorized", "the Authorization header must be 'Bearer <token>'", headers: [.wwwAuthenticate: "Bearer"])
        case .refused(let reason):
            if let held = refusals.admit() {
                var metadata: Logger.Metadata = ["reason": "\(reason)"]
                if held > 0 { metadata["suppressed"] = "\(held)" }  // refusals not logged since the last line
                context.logger.notice("bearer token refused", metadata: metadata)
            }
            return APIResponse.error(
                .unauthorized, "unauthorized", "the bearer token is not accepted", headers: [.wwwAuthenticate: #"Bearer error="invalid_token""#])
        case .granted(let canWrite):
            if !canWrite && request.method != .get && request.method != .head {
                let writeScope = authenticator.writeScope
                return APIResponse.error(
                    .forbidden, "insufficient_scope", "this token may read, not write: writing needs the scope '\(writeScope)'",
                    headers: [.wwwAuthenticate: "Bearer error=\"insufficient_scope\", scope=\"\(writeScope)\""])
            }
            return try await next(request, context)
        }
    }
}
