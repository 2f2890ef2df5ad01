import DESKit
import Foundation
import Hummingbird

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

/// Bearer-token authentication: `Authorization: Bearer <token>` must carry one of the
/// configured tokens (compared in constant time); with none configured every request passes.
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: [[UInt8]]

    init(tokens: [Secret]) {
        self.tokens = tokens.map { Array($0.value.utf8) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !tokens.isEmpty else { return try await next(request, context) }
        guard let header = request.headers[.authorization] else {
            return APIResponse.error(
                .unauthorized, "unauthorized", "this endpoint needs 'Authorization: Bearer <token>'", headers: [.wwwAuthenticate: "Bearer"])
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return APIResponse.error(
                .unauthorized, "unauthorized", "the Authorization header must be 'Bearer <token>'", headers: [.wwwAuthenticate: "Bearer"])
        }
        let given = Array(parts[1].utf8)
        var accepted = false
        for token in tokens { accepted = constantTimeEqual(token, given) || accepted }  // every token compared: no early exit
        guard accepted else {
            return APIResponse.error(
                .unauthorized, "unauthorized", "the bearer token is not accepted", headers: [.wwwAuthenticate: #"Bearer error="invalid_token""#])
        }
        return try await next(request, context)
    }
}

/// Whether two byte strings are equal, in time that depends on their lengths only.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff = UInt8(a.count == b.count ? 0 : 1)
    let n = max(a.count, b.count)
    for i in 0..<n {
        let x = i < a.count ? a[i] : 0
        let y = i < b.count ? b[i] : 0
        diff |= x ^ y
    }
    return diff == 0
}
