@testable import DESPluginS3
import DESKit
import DESServer
import Foundation
import Testing

@Suite("The API contract") struct OpenAPITests {
    @Test("GET /openapi.json is docs/openapi.json byte for byte, open without a token, and names every route the server serves")
    func served() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let document = try Data(contentsOf: root.appendingPathComponent("docs/openapi.json"))
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        _ = try await shelf.pack(1)
        try await withServer(shelf, edit: { $0.tokens = [Secret("openapi-token-0123456789")] }) { server, client in
            let r = try await client.send("GET", server.base + "/openapi.json")
            #expect(r.status == 200 && r.headers["content-type"] == "application/json")
            #expect(Data(r.body) == document, "docs/openapi.json changed: run scripts/embed-openapi.py")
            let spec = try #require(try JSONSerialization.jsonObject(with: document) as? [String: Any])
            #expect(spec["openapi"] as? String == "3.1.0")
            let paths = Set(((spec["paths"] as? [String: Any]) ?? [:]).keys)
            #expect(
                paths == ["/health", "/health/live", "/health/ready", "/metrics", "/openapi.json", "/assign", "/files/{name}", "/files/by-path/{path}"],
                "\(paths.sorted())")
        }
    }

    @Test("What the router refuses is a JSON error with the request id (an unknown path, a method a path does not take); a name badly percent-encoded is said so")
    func routerErrors() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        _ = try await shelf.pack(1)
        try await withServer(shelf) { server, client in
            let unknown = try await client.send("GET", server.base + "/nope", headers: ["X-Request-ID": "router-1"])
            #expect(unknown.status == 404 && unknown.headers["content-type"] == "application/json")
            #expect(client.errorCode(unknown) == "not_found" && String(decoding: unknown.body, as: UTF8.self).contains("router-1"))
            #expect(unknown.headers["x-content-type-options"] == "nosniff", "an error quoting the request is never sniffed")
            // A path that exists, with a method it does not take: 405 and what it takes (RFC 9110 §15.5.6).
            let wrong = try await client.send("POST", server.base + "/health")
            #expect(wrong.status == 405 && wrong.headers["content-type"] == "application/json", "\(wrong.status)")
            #expect(client.errorCode(wrong) == "method_not_allowed" && wrong.headers["allow"] == "GET, HEAD")
            let name = try await shelf.pack(1)[0]
            let put = try await client.send("PUT", server.base + "/files/" + path(name))
            #expect(put.status == 405 && put.headers["allow"] == "DELETE, GET, HEAD", "\(put.headers)")
            let byPath = try await client.send("POST", server.base + "/files/by-path/a/b/c.txt")
            #expect(byPath.status == 405 && byPath.headers["allow"] == "GET, HEAD")
            let assign = try await client.send("GET", server.base + "/assign")
            #expect(assign.status == 405 && assign.headers["allow"] == "POST")
            // Past what any route takes, still unknown.
            #expect(try await client.send("PUT", server.base + "/files/a/b").status == 404)
            #expect(try await client.send("PUT", server.base + "/health/live/more").status == 404)
            let bad = try await client.send("GET", server.base + "/files/%FF")
            #expect(bad.status == 400 && client.errorCode(bad) == "bad_name")
            #expect(String(decoding: bad.body, as: UTF8.self).contains("percent-encoded"), "\(String(decoding: bad.body, as: UTF8.self))")
        }
    }
}
