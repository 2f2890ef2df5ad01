@testable import DESPluginS3
import DESKit
import DESPluginPostgreSQL
import DESEngine
import DESServer
import DESTestSupport
import Foundation
import Synchronization
import Testing

@Suite("Servers down") struct UnavailableTests {
    /// Polls `url` until it answers `status`, for at most `seconds` (a deadline, not a guess).
    static func eventually(_ client: Client, _ url: String, status: Int, seconds: Double = 20) async throws -> HTTPResponse {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let r = try await client.send("GET", url)
            if r.status == status || Date() > deadline { return r }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test("storage hangs (a server that never answers): /files answers 503 unavailable within storage.request_timeout")
    func storageHangs() async throws {
        let direct = try await Shelf.s3Storage()
        var shelf = try await Shelf.make(storage: direct)
        defer { shelf.cleanup() }
        let names = try await shelf.pack(2)
        let hole = try TCPBlackHole()
        var settings = direct.client.settings
        settings.endpoint = "http://127.0.0.1:\(hole.port)"
        settings.requestTimeoutSeconds = 1
        shelf.storage = S3Storage(client: S3Client(settings: settings))
        try await withServer(shelf) { server, client in
            // The test client gives up after 10 s without a byte: a server stuck for ~150 s fails here.
            let r = try await client.send("GET", server.base + "/files/" + path(names[0]))
            #expect(r.status == 503 && client.errorCode(r) == "unavailable", "\(String(decoding: r.body, as: UTF8.self))")
            #expect(r.headers["retry-after"] != nil)
            #expect(try await client.send("GET", server.base + "/health/live").status == 200)
        }
    }

    @Test("storage unreachable: /files answers 503 with a JSON error, readiness names storage; both recover")
    func storageDown() async throws {
        let direct = try await Shelf.s3Storage()
        let s3Port = try #require(URLComponents(string: try testServerSetting("DES_TEST_S3_ENDPOINT"))?.port)
        let proxy = try TCPProxy(targetPort: s3Port)
        defer { proxy.stop() }
        let settings = direct.client.settings
        var viaProxy = settings
        viaProxy.endpoint = "http://127.0.0.1:\(proxy.port)"
        viaProxy.maxRetries = 1
        let storage = S3Storage(client: S3Client(settings: viaProxy))
        var shelf = try await Shelf.make(storage: storage)
        defer { shelf.cleanup() }
        let names = try await shelf.pack(4)
        // container_refresh_seconds 0: a body kept in memory is served only after its container
        // answered a HEAD, so the outage is seen at once by a name already read, too.
        try await withServer(shelf, edit: { $0.containerRefreshSeconds = 0 }) { server, client in
            #expect(try await client.send("GET", server.base + "/files/" + path(names[0])).status == 200)
            proxy.cut()
            for name in names.prefix(2) {  // one already located, one not: both need storage
                let r = try await client.send("GET", server.base + "/files/" + path(name))
                #expect(r.status == 503 && client.errorCode(r) == "unavailable", "\(String(decoding: r.body, as: UTF8.self))")
                #expect(r.headers["retry-after"] == "1")
            }
            let ready = try await client.send("GET", server.base + "/health/ready")
            #expect(ready.status == 503)
            let report = try #require(try client.json(ready) as? [String: Any])
            #expect(report["failed"] as? [String] == ["storage"])
            proxy.restore()
            #expect(try await Self.eventually(client, server.base + "/health/ready", status: 200).status == 200)
            for name in names {
                let r = try await client.send("GET", server.base + "/files/" + path(name))
                #expect(r.status == 200 && r.body == shelf.files[name]?.bytes)
            }
        }
    }

    @Test("readiness turns 503 while the PostgreSQL metadata store is unreachable, and back to 200 after")
    func metadataDown() async throws {
        let pgPort = try #require(Int(try testServerSetting("DES_TEST_PG_PORT")))
        let proxy = try TCPProxy(targetPort: pgPort)
        defer { proxy.stop() }
        let metadata = try await postgresMetadata(port: proxy.port)  // migrated: readiness reads the tables
        let shelf = try await Shelf.make(metadata: metadata)
        defer { shelf.cleanup() }
        try await withServer(shelf) { server, client in
            let url = server.base + "/health/ready"
            let up = try await client.send("GET", url)
            #expect(up.status == 200, "\(String(decoding: up.body, as: UTF8.self))")
            proxy.cut()
            let down = try await Self.eventually(client, url, status: 503)
            #expect(down.status == 503)
            let report = try #require(try client.json(down) as? [String: Any])
            #expect(report["status"] as? String == "unhealthy" && report["failed"] as? [String] == ["metadata"])
            let checks = try #require(report["checks"] as? [String: [String: Any]])
            #expect(checks["metadata"]?["status"] as? String == "failed" && checks["storage"]?["status"] as? String == "ok")
            #expect((checks["metadata"]?["error"] as? String)?.isEmpty == false)
            #expect(try await client.send("GET", server.base + "/health/live").status == 200)  // alive, though not ready
            proxy.restore()
            #expect(try await Self.eventually(client, url, status: 200).status == 200)
        }
        await metadata.close()
    }

    @Test("a dependency that hangs is reported failed at its timeout, and is not probed again while its probe is stuck")
    func hangingProbe() async throws {
        // A probe that ends only when the test lets it (cancellation does not stop it, as a call
        // blocked in a C client would not stop): check() returning at all shows it did not wait.
        let gate = Gate()
        let started = Locked(0)
        let checker = HealthChecker(
            probes: [
                (
                    "stuck",
                    {
                        started.withLock { $0 += 1 }
                        await gate.wait()
                    }
                ), ("fine", {}),
            ], timeoutSeconds: 0.2)
        let first = await checker.check()
        #expect(first.failed == ["stuck"] && !first.healthy)
        #expect(first.checks[0].error?.contains("no answer within") == true)
        let second = await checker.check()
        #expect(second.failed == ["stuck"] && second.checks[0].error?.contains("has not answered yet") == true)
        #expect(started.value == 1)  // not started twice
        gate.open()
    }
}

/// A wait that cancellation does not end: only ``open()`` does.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if resumeNow { c.resume() }
        }
    }
    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }
}
