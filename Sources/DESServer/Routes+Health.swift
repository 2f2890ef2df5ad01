import DESEngine
import DESKit
import Foundation
import Hummingbird
import Logging

extension DESHTTPServer {
    /// `/health` (alive, with uptime), `/health/live` (the process answers), `/health/ready`
    /// (every dependency within its timeout, and not draining: else 503 naming what failed),
    /// `/metrics` (Prometheus text).
    func addHealthRoutes(to router: Router<BasicRequestContext>) {
        let health: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            let uptime = Int(monotonicSeconds() - started)
            let status = readiness.isDraining ? "draining" : "ok"
            return APIResponse.json(#"{"status":""# + status + #"","uptime_seconds":"# + String(uptime) + "}")
        }
        let live: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            APIResponse.json(#"{"status":"ok"}"#)
        }
        let ready: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, context in
            let report = Self.publicReport(await readiness.report(), logger: context.logger)
            // What is ready now says nothing of a moment later: no cache keeps it.
            return APIResponse.json(report.jsonText, status: report.healthy ? .ok : .serviceUnavailable, headers: [.cacheControl: "no-store"])
        }
        let metricsText: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
            var buffer: [UInt8] = []
            buffer.reserveCapacity(16 << 10)
            metrics.registry.emit(into: &buffer)
            // swift-metrics' metrics carry no help text: DES's described ones get their # HELP line.
            buffer = MetricHelp.addingHelp(to: buffer)
            buffer.append(contentsOf: ProcessMetrics.text().utf8)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        for (path, handler) in [("/health", health), ("/health/live", live), ("/health/ready", ready), ("/metrics", metricsText)] {
            router.get(RouterPath(path), use: handler)
            router.head(RouterPath(path)) { request, context in Self.headersOnly(try await handler(request, context)) }
        }
    }

    /// A HEAD answer: the GET's status and headers, its length, and no body (RFC 9110, 9.3.2).
    static func headersOnly(_ response: Response) -> Response {
        var headers = response.headers
        if headers[.contentLength] == nil, let length = response.body.contentLength {
            headers[.contentLength] = String(length)
        }
        return Response(status: response.status, headers: headers)
    }

    /// The report as a client may see it: a dependency's own error text (which may name hosts,
    /// paths, SQL or the database's words) goes to the log, with the request id; the answer says
    /// only that the check failed. The checker's own verdicts (a timeout) are kept.
    static func publicReport(_ report: HealthReport, logger: Logger) -> HealthReport {
        var out = report
        for i in out.checks.indices where out.checks[i].errorIsFromDependency {
            let check = out.checks[i]
            logger.warning("readiness check failed", metadata: ["check": "\(check.name)", "error": "\(check.error ?? "")"])
            out.checks[i].error = "failed; the server log has the error under request id \(APIResponse.requestID ?? "-")"
            out.checks[i].errorIsFromDependency = false
        }
        return out
    }
}
