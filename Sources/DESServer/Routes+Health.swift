import DESEngine
import Foundation
import Hummingbird

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
        router.get("/health/ready") { _, _ -> Response in
            let report = await readiness.report()
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
}
