@testable import DESPluginS3
import DESKit
@testable import DESServer
import DESTestSupport
import Foundation
import Testing

@Suite("The HTTP server sheds idle and slow clients") struct ConnectionTests {
    /// A metric's value on a server.
    static func metric(_ server: RunningServer, _ name: String, labels: String = "") -> Int {
        metricSum(server.metrics.registry.emitToString(), name, labels: labels)
    }

    /// Opens `count` sockets to `port`, each sending `prefix` (maybe nothing), off the cooperative pool.
    static func openSockets(_ count: Int, port: Int, sending prefix: String, receiveBuffer: Int? = nil) async throws -> [RawSocket] {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<[RawSocket], any Error>) in
            DispatchQueue.global().async {
                do {
                    var sockets: [RawSocket] = []
                    for _ in 0..<count {
                        let s = try RawSocket(port: port, receiveBuffer: receiveBuffer)
                        if !prefix.isEmpty { try s.send(prefix) }
                        sockets.append(s)
                    }
                    c.resume(returning: sockets)
                } catch {
                    c.resume(throwing: error)
                }
            }
        }
    }

    /// Whether each socket is closed by the server within `seconds` (read off the cooperative pool).
    static func closedByServer(_ sockets: [RawSocket], within seconds: Double) async -> [Bool] {
        await withCheckedContinuation { (c: CheckedContinuation<[Bool], Never>) in
            DispatchQueue.global().async { c.resume(returning: sockets.map { $0.closedByServer(within: seconds) }) }
        }
    }

    @Test("server.header_timeout, idle_timeout, max_connections, verify_max_bytes and body_cache_bytes: parsed into ServerSettings, bounded")
    func settings() throws {
        let yaml = "server:\n  header_timeout: 2.5\n  idle_timeout: 30\n  max_connections: 500\n  verify_max_bytes: 4MiB\n  body_cache_bytes: 1GiB\n"
        let config = try ConfigLoader.parse(yaml: yaml, file: "s.yaml", environment: [:])
        let s = try ServerSettings(config: config, environment: [:])
        #expect(s.headerTimeoutSeconds == 2.5 && s.idleTimeoutSeconds == 30 && s.maxConnections == 500 && s.verifyMaxBytes == 4 << 20)
        #expect(s.bodyCacheBytes == 1 << 30)
        let defaults = try ServerSettings(config: DESConfig(), environment: [:])
        #expect(defaults.headerTimeoutSeconds == 10 && defaults.idleTimeoutSeconds == 75 && defaults.maxConnections == 10_000)
        #expect(defaults.verifyMaxBytes == 1 << 20 && defaults.bodyCacheBytes == 64 << 20)
        for (key, value) in [("header_timeout", "0"), ("idle_timeout", "7200"), ("max_connections", "0"), ("verify_max_bytes", "1GiB"), ("body_cache_bytes", "65GiB")] {
            #expect {
                _ = try ConfigLoader.parse(yaml: "server:\n  \(key): \(value)\n", file: "s.yaml", environment: [:])
            } throws: { error in
                // FILE:LINE:COL: KEY: the range
                let text = "\(error)"
                return text.hasPrefix("s.yaml:2:") && text.contains("server.\(key): must be")
            }
        }
    }

    @Test("DES_SERVER_TOKENS is held to server.auth_tokens' rule: short tokens and a variable of bare commas are refused")
    func environmentTokens() throws {
        let long = "env-token-0123456789abcdef"
        let ok = try ServerSettings(config: DESConfig(), environment: ["DES_SERVER_TOKENS": " \(long) , "])
        #expect(ok.tokens.map(\.value) == [long])
        #expect(try ServerSettings(config: DESConfig(), environment: ["DES_SERVER_TOKENS": "  "]).tokens.isEmpty, "blank: not set")
        for (value, words) in [("abc", "a token of 3 characters is too easy to guess"), (",", "holds no token"), (" , ,", "holds no token"),
            ("\(long),short", "a token of 5 characters")] {
            let error = #expect(throws: DESKitError.self) { _ = try ServerSettings(config: DESConfig(), environment: ["DES_SERVER_TOKENS": value]) }
            #expect(error?.code == .configuration && error?.message.contains(words) == true, "\(value): \(String(describing: error))")
            #expect(error?.message.contains(long) == false, "no token in the message")
        }
    }

    @Test("events: follow, poll_seconds, gap_seconds and fallback_refresh_seconds reach the server's settings")
    func eventSettings() throws {
        let yaml = "events:\n  follow: false\n  poll_seconds: 0.1\n  gap_seconds: 3\n  fallback_refresh_seconds: 120\n  retain: 5000\n"
        let config = try ConfigLoader.parse(yaml: yaml, file: "e.yaml", environment: [:])
        let s = try ServerSettings(config: config, environment: [:])
        #expect(!s.followEvents && s.events.pollSeconds == 0.1 && s.events.gapSeconds == 3 && s.fallbackRefreshSeconds == 120)
        #expect(config.events.retain == 5_000 && config.events.publish == nil)
        let defaults = try ServerSettings(config: DESConfig(), environment: [:])
        #expect(defaults.followEvents && defaults.events.pollSeconds == 0.25 && defaults.fallbackRefreshSeconds == 60)
        #expect(throws: (any Error).self) { _ = try ConfigLoader.parse(yaml: "events:\n  follow: maybe\n", file: "e.yaml", environment: [:]) }
    }

    @Test("the connection limit is lowered to what the descriptor limit leaves room for")
    func limitFollowsDescriptors() {
        var limits = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0)
        let soft = Int(clamping: limits.rlim_cur)
        let files = DescriptorBudget.containerFiles
        #expect(files == min(64, soft / 16))
        #expect(ConnectionGuard.effectiveLimit(configured: 10) == min(10, soft - 64 - files))
        #expect(ConnectionGuard.effectiveLimit(configured: 10_000_000) == soft - (soft > 128 ? 64 : soft / 2) - files)
    }

    @Test("a silent socket and a half-sent request line are closed at the header timeout, a kept-alive one at the idle timeout")
    func timeouts() async throws {
        let shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        try await withServer(shelf, edit: { $0.headerTimeoutSeconds = 0.5; $0.idleTimeoutSeconds = 1 }) { server, client in
            let silent = try await Self.openSockets(1, port: server.port, sending: "")
            let slow = try await Self.openSockets(1, port: server.port, sending: "GET /health/li")
            let kept = try await Self.openSockets(1, port: server.port, sending: "GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(await Self.closedByServer(silent + slow, within: 20) == [true, true])
            let (bytes, closed) = await withCheckedContinuation { (c: CheckedContinuation<([UInt8], Bool), Never>) in
                DispatchQueue.global().async { c.resume(returning: kept[0].readToEnd(within: 20)) }
            }
            #expect(RawAnswer(bytes)?.status == 200, "the kept-alive connection was answered first")
            #expect(closed, "and closed once idle")
            #expect(Self.metric(server, "des_http_connections_closed_total", labels: "reason=\"header_timeout\"") == 2)
            #expect(Self.metric(server, "des_http_connections_closed_total", labels: "reason=\"idle_timeout\"") == 1)
            #expect(try await client.send("GET", server.base + "/health/live").status == 200)
        }
    }

    @Test("a request answered before its body was read (404 on a POST) is still closed at the idle timeout")
    func answeredBeforeItsBody() async throws {
        let shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        try await withServer(shelf, edit: { $0.headerTimeoutSeconds = 600; $0.idleTimeoutSeconds = 1 }) { server, _ in
            // The head, then (once the answer is out) the body: the request ends after its response.
            let sockets = try await Self.openSockets(
                1, port: server.port, sending: "POST /no-such-route HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
            try await Task.sleep(for: .milliseconds(200))
            try sockets[0].send("hello")
            let (bytes, closed) = await withCheckedContinuation { (c: CheckedContinuation<([UInt8], Bool), Never>) in
                DispatchQueue.global().async { c.resume(returning: sockets[0].readToEnd(within: 20)) }
            }
            #expect(RawAnswer(bytes)?.status == 404)
            #expect(closed, "the connection was left serving forever: never timed, never shed")
        }
    }

    @Test("at server.max_connections the longest-waiting connections are shed, and new clients are served")
    func limitSheds() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(1)
        try await withServer(shelf, edit: { $0.maxConnections = 16; $0.headerTimeoutSeconds = 600; $0.idleTimeoutSeconds = 600 }) { server, client in
            let idle = try await Self.openSockets(30, port: server.port, sending: "")
            let slow = try await Self.openSockets(10, port: server.port, sending: "GET /files/SRV_2025")
            #expect(try await client.send("GET", server.base + "/health/live").status == 200)
            let r = try await client.send("GET", server.base + "/files/" + path(names[0]))
            #expect(r.status == 200 && r.body == shelf.files[names[0]]?.bytes)
            // The first ones opened were the first shed: closed by the server, not by a timeout.
            #expect(await Self.closedByServer(Array(idle.prefix(10)), within: 20) == Array(repeating: true, count: 10))
            #expect(Self.metric(server, "des_http_connections_closed_total", labels: "reason=\"shed\"") >= 40 + 1 - 16)
            #expect(Self.metric(server, "des_http_connections_open") <= 16)
            #expect(Self.metric(server, "des_http_connections_closed_total", labels: "reason=\"header_timeout\"") == 0)
            _ = slow
        }
    }

    @Test("clients that ask and never read (their answers stalled) are shed at the limit, and one left alone is closed at the idle timeout (send_stalled)")
    func stalledReaders() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let big = try await shelf.pack(1, size: 8 << 20)[0]
        let asking = "GET /files/\(path(big)) HTTP/1.1\r\nHost: t\r\n\r\n"
        try await withServer(shelf, edit: { $0.maxConnections = 6; $0.headerTimeoutSeconds = 600; $0.idleTimeoutSeconds = 600 }) { server, client in
            // Every connection asks for 24 MiB and reads none of it: each is being served, forever
            // unless a stalled answer counts as waiting on its client.
            let stalled = try await Self.openSockets(6, port: server.port, sending: asking + asking + asking, receiveBuffer: 4_096)
            #expect((try? await poll(until: 200, client, server.base + "/health/live", within: 20))?.status == 200, "the stalled readers locked new clients out")
            #expect(Self.metric(server, "des_http_connections_closed_total", labels: "reason=\"shed\"") >= 1)
            _ = stalled
        }
        try await withServer(shelf, edit: { $0.headerTimeoutSeconds = 600; $0.idleTimeoutSeconds = 1 }) { server, _ in
            // A small receive buffer, fixed (no autotuning): 24 MiB asked for stalls after a few MiB
            // (the server's send buffer), whatever the machine's tcp_rmem allows.
            let stalled = try await Self.openSockets(1, port: server.port, sending: asking + asking + asking, receiveBuffer: 4_096)
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline && Self.metric(server, "des_http_connections_closed_total", labels: "reason=\"send_stalled\"") == 0 {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(Self.metric(server, "des_http_connections_closed_total", labels: "reason=\"send_stalled\"") == 1)
            _ = stalled
        }
    }

    @Test("clients trickling a request body are shed at the limit as those trickling a head are")
    func tricklingBodies() async throws {
        let shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        try await withServer(shelf, edit: { $0.maxConnections = 4; $0.headerTimeoutSeconds = 600; $0.idleTimeoutSeconds = 600 }) { server, client in
            let trickling = try await Self.openSockets(
                4, port: server.port, sending: "POST /assign HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            #expect((try? await poll(until: 200, client, server.base + "/health/live", within: 20))?.status == 200, "half-sent bodies locked new clients out")
            #expect(Self.metric(server, "des_http_connections_closed_total", labels: "reason=\"shed\"") >= 1)
            // Shed already (the metric says so): closed by the server, not by a timeout.
            #expect((await Self.closedByServer(trickling, within: 2)).contains(true), "a trickling one was shed")
        }
    }

    @Test("a CONNECT is answered and its connection closed, not left hanging until the idle timeout")
    func connect() async throws {
        let shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        try await withServer(shelf, edit: { $0.idleTimeoutSeconds = 600 }) { server, _ in
            let sockets = try await Self.openSockets(
                1, port: server.port, sending: "CONNECT /files/x HTTP/1.1\r\nHost: t\r\n\r\nGET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
            let (bytes, closed) = await withCheckedContinuation { (c: CheckedContinuation<([UInt8], Bool), Never>) in
                DispatchQueue.global().async { c.resume(returning: sockets[0].readToEnd(within: 20)) }
            }
            #expect(closed, "the connection hung after the CONNECT's answer")
            #expect([404, 405].contains(RawAnswer(bytes)?.status ?? 0), "\(String(decoding: bytes, as: UTF8.self))")
        }
    }

    /// `GET url` by curl(1): the status and curl's own total time (it gives up after 5 s: status 0).
    /// The status of a GET of `url` by curl, in a process of its own (0 when none came within 30 s).
    static func probe(_ url: String) async throws -> Int {
        let path = NSTemporaryDirectory() + "des-probe-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = ["-s", "-o", "/dev/null", "--max-time", "30", "-w", "%{http_code}", url]
        try #require(FileManager.default.createFile(atPath: path, contents: nil))
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        await waitForExit(p)
        try out.close()
        return Int(((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    @Test("des serve with ulimit -n 256: 300 idle and 300 slowly-sending sockets do not stop /health/live answering long before their 60 s header timeout")
    func descriptorLimit() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(3)
        let config = try shelf.writeServeConfig(server: "{header_timeout: 60, idle_timeout: 120}")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "ulimit -n 256 && exec \"$0\" serve -c \"$1\" --port 0 --log-level critical", try desBinary(), config]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer {
            if p.isRunning { p.terminate() }
        }
        let line = await firstLine(out.fileHandleForReading)
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }, "\(line)")
        let base = "http://127.0.0.1:\(port)"
        let client = Client()
        do {
            #expect(try await client.send("GET", base + "/health/live").status == 200)
            let idle = try await Self.openSockets(300, port: port, sending: "")
            let slow = try await Self.openSockets(300, port: port, sending: "GET /files/SRV_20250101_(21BCA")
            // A server the sockets held would answer no probe before their header_timeout (60 s);
            // curl gives up after 30 s. No speed is asserted: the machine may be busy with other suites.
            for i in 0..<10 {
                #expect(try await Self.probe(base + "/health/live") == 200, "probe \(i)")
            }
            for name in names {
                let r = try await client.send("GET", base + "/files/" + path(name))
                #expect(r.status == 200 && r.body == shelf.files[name]?.bytes)
            }
            #expect(p.isRunning)
            _ = (idle, slow)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
        p.terminate()
        await waitForExit(p)
    }
}
