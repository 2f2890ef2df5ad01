@testable import DESPluginS3
import DESTestSupport
import Foundation
import Testing

@Suite("des serve readiness and HEAD")
struct ServeReadinessTests {
    @Test("des serve with a filesystem source is ready (its source is probed once, not twice); HEAD answers the open routes like GET, without a body")
    func readyWithFilesystemSource() async throws {
        let d = try SQLiteDeployment(
            "ready", sources: "  - name: tree\n    connection: {type: filesystem, roots: [./tree], min_age: 0}")
        defer { d.cleanup() }
        try FileManager.default.createDirectory(atPath: d.dir + "/tree", withIntermediateDirectories: true)
        try "x\n".write(toFile: d.dir + "/tree/a.txt", atomically: true, encoding: .utf8)
        let config = d.config
        #expect(try await runDES(["sample", "-c", config, "--files", "2"]).0 == 0)
        let (server, base) = try await startServe(config: config)
        defer { server.terminate() }
        let client = Client()
        for _ in 0..<3 {  // every report, not only the first: a duplicate probe failed each one after
            let ready = try await client.send("GET", base + "/health/ready")
            let text = String(decoding: ready.body, as: UTF8.self)
            #expect(ready.status == 200, "\(text)")
            #expect(text.contains("source:tree") && text.contains("source:catalog"), "\(text)")
        }
        for route in ["/health", "/health/live", "/health/ready", "/metrics", "/openapi.json"] {
            let get = try await client.send("GET", base + route)
            let head = try await client.send("HEAD", base + route)
            #expect(head.status == get.status && head.body.isEmpty, "HEAD \(route): \(head.status)")
            #expect(head.headers["content-type"] == get.headers["content-type"], "HEAD \(route)")
            #expect(head.headers["x-request-id"] != nil, "HEAD \(route)")
        }
        await client.close()
    }
}
