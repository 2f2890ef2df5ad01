import DESEngine
import Foundation
import Hummingbird
import Logging

extension DESHTTPServer {
    /// `/health` (alive, with uptime), `/health/live` (the process answers), `/health/ready`
    /// (every dependency within its timeout, and not draining: else 503 naming what failed),
    /// `/metrics` (Prometheus text).
    func addHealthRoutes(to router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ -> Response in
            let uptime = Int(monotonicSeconds() - started)
            let status = readiness.isDraining ? "draining" : "ok"
            return APIResponse.json(#"{"status":""# + status + #"","uptime_seconds":"# + String(uptime) + "}")
        }
        router.get("/health/live") { _, _ -> Response in
            APIResponse.json(#"{"status":"ok"}"#)
        }
        router.get("/health/ready") { _, context -> Response in
            let report = Self.publicReport(await readiness.report(), logger: context.logger)
            return APIResponse.json(report.jsonText, status: report.healthy ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            buffer.reserveCapacity(16 << 10)
            metrics.registry.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: buffer)))
        }
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
