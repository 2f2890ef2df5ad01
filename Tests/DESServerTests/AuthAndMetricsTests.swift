@testable import DESPluginS3
import DESKit
import DESServer
import Foundation
import Testing

@Suite("Auth and /metrics") struct AuthAndMetricsTests {
    @Test("bearer tokens guard /assign and /files (401 without, with a wrong one); /health* and /metrics stay open")
    func bearer() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(2)
        let token = "t0k3n-0123456789abcdef"
        try await withServer(shelf, edit: { $0.tokens = [Secret("another-token-0123456789"), Secret(token)] }) { server, client in
            let file = server.base + "/files/" + path(names[0])
            for headers in [[:], ["Authorization": "Bearer wrong-token-0123456789"], ["Authorization": "Basic dXNlcjpwYXNz"], ["Authorization": "Bearer"]] {
                let a = try await client.send("POST", server.base + "/assign", headers: headers)
                #expect(a.status == 401 && client.errorCode(a) == "unauthorized" && a.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
                let f = try await client.send("GET", file, headers: headers)
                #expect(f.status == 401 && f.body != shelf.files[names[0]]?.bytes)
            }
            let ok = ["Authorization": "Bearer " + token]
            #expect(try await client.send("POST", server.base + "/assign", headers: ok).status == 200)
            let f = try await client.send("GET", file, headers: ok)
            #expect(f.status == 200 && f.body == shelf.files[names[0]]?.bytes)
            for open in ["/health", "/health/live", "/health/ready", "/metrics"] {
                #expect(try await client.send("GET", server.base + open).status == 200, "\(open)")
            }
        }
    }

    @Test("/metrics counts the requests made, by route, method and status, with latency histograms and cache lookups")
    func countsRequests() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(3)
        try await withServer(shelf) { server, client in
            for name in names { #expect(try await client.send("GET", server.base + "/files/" + path(name)).status == 200) }
            #expect(try await client.send("GET", server.base + "/files/" + path(names[0])).status == 200)
            #expect(try await client.send("HEAD", server.base + "/files/" + path(names[1])).status == 200)
            for _ in 0..<5 { #expect(try await client.send("POST", server.base + "/assign", body: #"{"count": 2}"#).status == 200) }
            #expect(try await client.send("POST", server.base + "/assign", body: "{").status == 400)
            #expect(try await client.send("GET", server.base + "/files/bad").status == 400)
            #expect(try await client.send("GET", server.base + "/nowhere").status == 404)
            let metrics = try await client.send("GET", server.base + "/metrics")
            #expect(metrics.status == 200 && metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
            let text = String(decoding: metrics.body, as: UTF8.self)
            func count(_ labels: String) -> Int { metricSum(text, "des_http_requests_total", labels: labels) }
            #expect(count(#"route="/files/{name}",method="GET",status="200""#) == 4)
            #expect(count(#"route="/files/{name}",method="HEAD",status="200""#) == 1)
            #expect(count(#"route="/files/{name}",method="GET",status="400""#) == 1)
            #expect(count(#"route="/assign",method="POST",status="200""#) == 5)
            #expect(count(#"route="/assign",method="POST",status="400""#) == 1)
            #expect(count(#"status="404""#) == 1)
            #expect(metricSum(text, "des_http_request_duration_seconds_count", labels: #"route="/assign",method="POST""#) == 6)
            #expect(metricSum(text, "des_http_request_duration_seconds_count", labels: #"route="/assign",method="POST",status="400""#) == 1)
            #expect(metricSum(text, "des_assign_names_total") == 10)
            // Each container's index was loaded once (two misses: no whole index, no two-level root);
            // a second name of the same container found it cached (a hit); the repeated GET and the
            // HEAD found the name itself remembered.
            let containers = Set(names.compactMap { shelf.files[$0]?.container }).count
            #expect(metricSum(text, "des_index_cache_requests_total", labels: #"result="miss""#) == 2 * containers)
            #expect(metricSum(text, "des_index_cache_requests_total", labels: #"result="hit""#) == names.count - containers)
            #expect(metricSum(text, "des_storage_requests_total") > 0)
        }
    }
}
