@testable import DESPluginS3
import DESKit
import DESTestSupport
import Foundation
import Synchronization
import Testing

/// The `des` binary built beside the tests (or `DES_BIN`).
func desBinary() throws -> String { try desExecutable() }

/// A free loopback port (bound, read and released).
func freePort() throws -> Int {
    let proxy = try TCPPortProbe()
    return proxy.port
}

/// Runs `des` with `args` and waits for it, off the cooperative pool; returns (exit status, stdout).
func runDES(_ args: [String]) async throws -> (Int32, String) {
    let bin = try desBinary()
    return try await withCheckedThrowingContinuation { (c: CheckedContinuation<(Int32, String), any Error>) in
        DispatchQueue.global().async {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            do { try p.run() } catch {
                c.resume(throwing: error)
                return
            }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            c.resume(returning: (p.terminationStatus, String(decoding: data, as: UTF8.self)))
        }
    }
}

/// The first line a pipe carries (read off the cooperative pool).
func firstLine(_ handle: FileHandle) async -> String {
    await withCheckedContinuation { (c: CheckedContinuation<String, Never>) in
        DispatchQueue.global().async {
            var line = ""
            while !line.contains("\n") {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                line += String(decoding: chunk, as: UTF8.self)
            }
            c.resume(returning: line)
        }
    }
}

/// Starts `des serve -c CONFIG --port 0` (with `log`, at level info with its stderr in that
/// file); returns the process and its base URL (read from the first line it prints, which
/// names the port it bound).
func startServe(config: String, extra: [String] = [], log: String? = nil) async throws -> (Process, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try desBinary())
    p.arguments = ["serve", "-c", config, "--port", "0", "--log-level", log == nil ? "critical" : "info"] + extra
    let out = Pipe()
    p.standardOutput = out
    if let log {
        FileManager.default.createFile(atPath: log, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    } else {
        p.standardError = FileHandle.nullDevice
    }
    try p.run()
    let line = await firstLine(out.fileHandleForReading)
    guard let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
        p.terminate()
        throw TestFailure("des serve did not print its port: '\(line)'")
    }
    return (p, "http://127.0.0.1:\(port)")
}

/// What the load of the SIGTERM test shares between its tasks.
final class LoadState: Sendable {
    struct Counts: Sendable {
        var ok = 0
        var failed = 0
        /// Requests begun after readiness answered 503 that succeeded: served while draining.
        var okWhileDraining = 0
        var failures: [String] = []
    }
    let stop = Atomic<Bool>(false)
    /// Readiness has answered 503.
    let draining = Atomic<Bool>(false)
    let counts = Locked(Counts())
}

extension Shelf {
    /// A `des serve` config over this shelf's storage and metadata, with the given `server:`
    /// flow mapping and, before them, `sources` (YAML, if any).
    func writeServeConfig(server: String, sources: String = "") throws -> String {
        let path = dir + "/serve.yaml"
        try (sources + """
            storage: {type: local, root: \(dir)/archive, prefix: des}
            metadata: {connection: {type: sqlite, database: \(dir)/metadata.sqlite}}
            packer: {shard_bits: 2}
            server: \(server)
            """).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

@Suite("Lifecycle") struct LifecycleTests {
    @Test("SIGTERM during a load: readiness turns 503, requests begun after that still succeed, exit 0")
    func sigtermDrainsUnderLoad() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(40)
        let config = try shelf.writeServeConfig(server: "{drain_seconds: 5}")
        let (p, base) = try await startServe(config: config)
        let client = Client()
        let state = LoadState()
        let pid = p.processIdentifier
        let files = shelf.files.mapValues(\.bytes)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var i = worker
                    let deadline = Date().addingTimeInterval(60)
                    while !state.stop.load(ordering: .acquiring) {
                        guard Date() < deadline else { throw TestFailure("the load never saw readiness turn 503") }
                        let name = names[i % names.count]
                        i += 1
                        let draining = state.draining.load(ordering: .acquiring)
                        do {
                            let r = try await client.send("GET", base + "/files/" + path(name))
                            let good = r.status == 200 && r.body == files[name]
                            state.counts.withLock {
                                if good {
                                    $0.ok += 1
                                    if draining { $0.okWhileDraining += 1 }
                                } else {
                                    $0.failed += 1
                                    $0.failures.append("status \(r.status)")
                                }
                            }
                        } catch {
                            state.counts.withLock { $0.failed += 1; $0.failures.append("\(error)") }
                        }
                    }
                }
            }
            // Like a load balancer that notices readiness: once it says 503, the load goes on
            // until 20 requests begun after that have been served (or one failed), then stops.
            group.addTask {
                defer { state.stop.store(true, ordering: .releasing) }
                let deadline = Date().addingTimeInterval(60)
                while Date() < deadline {
                    let r = try await client.send("GET", base + "/health/ready")
                    if r.status == 503 { break }
                    #expect(r.status == 200)
                    try await Task.sleep(for: .milliseconds(10))
                }
                guard Date() < deadline else { throw TestFailure("readiness never turned 503 after SIGTERM") }
                state.draining.store(true, ordering: .releasing)
                while state.counts.withLock({ $0.okWhileDraining < 20 && $0.failed == 0 }) {
                    guard Date() < deadline else { throw TestFailure("no request was served while draining") }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            group.addTask {
                let deadline = Date().addingTimeInterval(60)
                while state.counts.withLock({ $0.ok }) < 300 {
                    guard Date() < deadline else { throw TestFailure("the server never answered 300 requests") }
                    try await Task.sleep(for: .milliseconds(5))
                }
                kill(pid, SIGTERM)
            }
            try await group.waitForAll()
        }
        await waitForExit(p)
        await client.close()
        let c = state.counts.value
        #expect(c.failed == 0, "\(c.failures.prefix(5))")
        #expect(c.ok >= 300)
        #expect(c.okWhileDraining >= 20, "requests begun after readiness turned 503 were not all served")
        #expect(p.terminationReason == .exit && p.terminationStatus == 0)
    }

    @Test("workers' --metrics-port: seed metric names on /metrics, /health/ready 200; SIGTERM finalises and exits 0")
    func workerMetricsPort() async throws {
        let dir = NSTemporaryDirectory() + "des-workers-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = dir + "/local.yaml"
        try """
            sources:
              - name: catalog
                connection: {type: sqlite, database: ./des-data/catalog.sqlite}
                table: {name: files, columns: {s3_key: body_path}}
                bodies: {type: local, root: ./des-data/bodies}
            storage: {type: local, root: ./des-data/archive}
            metadata: {connection: {type: sqlite, database: ./des-data/metadata.sqlite}}
            packer: {shard_bits: 2, max_container_age_seconds: 3600, idle_sleep_seconds: 0.05}
            marker: {interval_seconds: 0.05}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        #expect(try await runDES(["sample", "-c", config, "--files", "200"]).0 == 0)
        let client = Client()
        for (command, metric, ready) in [
            ("marker", "des_marker_entries_marked_total", #"status="success""#), ("packer", "des_packer_open_containers", ""),
        ] {
            let (p, port) = try await startWorker([command, "run", "-c", config, "--log-level", "critical"])
            let base = "http://127.0.0.1:\(port)"
            let deadline = Date().addingTimeInterval(30)
            var value = 0
            while Date() < deadline {
                if let r = try? await client.send("GET", base + "/metrics"), r.status == 200 {
                    value = metricSum(String(decoding: r.body, as: UTF8.self), metric, labels: ready)
                    if command == "marker" ? value == 200 : value >= 1 { break }
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(command == "marker" ? value == 200 : value >= 1, "\(command): \(metric) = \(value)")
            let health = try await client.send("GET", base + "/health/ready")
            #expect(health.status == 200, "\(String(decoding: health.body, as: UTF8.self))")
            let report = try #require(try client.json(health) as? [String: Any])
            #expect(Set((report["checks"] as? [String: Any])?.keys.map { $0 } ?? []) == ["metadata", "storage", "source:catalog"])
            if command == "marker" {
                let text = String(decoding: try await client.send("GET", base + "/metrics").body, as: UTF8.self)
                #expect(text.contains("des_marker_batch_duration_seconds_bucket"))
            }
            kill(p.processIdentifier, SIGTERM)
            await waitForExit(p)
            #expect(p.terminationReason == .exit && p.terminationStatus == 0, "\(command)")
        }
        await client.close()
        // The packer's SIGTERM uploaded its open containers: every row is packed, and reads back.
        let (status, out) = try await runDES(["status", "-c", config, "--json"])
        #expect(status == 0)
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let catalog = (stats["sources"] as? [String: [String: Any]])?["catalog"]
        #expect(catalog?["packed"] as? Int == 200)
        #expect(try await runDES(["check", "-c", config]).0 == 0)
        // des health: the same report on the command line.
        let (healthStatus, healthOut) = try await runDES(["health", "-c", config, "--json"])
        #expect(healthStatus == 0 && healthOut.contains(#""status":"ok""#))
    }

    @Test("A port already taken: des serve and a worker's --metrics-port name the address and exit 69 at once, no hang")
    func portTaken() async throws {
        let dir = NSTemporaryDirectory() + "des-port-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            sources:
              - name: catalog
                connection: {type: sqlite, database: catalog.sqlite}
                table: {name: files, columns: {id: id, s3_key: body_path}}
                bodies: {type: local, root: bodies}
            storage: {type: local, root: ./archive}
            """.write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        #expect(try await runDES(["sample", "-c", dir + "/c.yaml", "--files", "1"]).0 == 0)
        // Hold a port: a listening socket of our own.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(bound == 0 && listen(fd, 1) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        for args in [["serve", "-c", dir + "/c.yaml", "--port", "\(port)"], ["marker", "run", "-c", dir + "/c.yaml", "--metrics-port", "\(port)"]] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
            p.arguments = ["-k", "2", "20", try desBinary()] + args
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 69, "\(args[0]): exit \(p.terminationStatus) (124: it hung) \(text)")
            #expect(text.contains("cannot listen on 127.0.0.1:\(port): Address already in use"), "\(args[0]): \(text)")
        }
    }

    @Test("des health: a metadata store that refuses connections is named, with exit 69 and JSON")
    func healthUnhealthy() async throws {
        let dir = NSTemporaryDirectory() + "des-health-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try freePort()  // nothing listens there
        let config = dir + "/down.yaml"
        try """
            storage: {type: local, root: ./archive}
            metadata: {connection: {type: postgresql, host: 127.0.0.1, port: \(port), database: des, username: des, password: hunter2-secret}}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let (status, out) = try await runDES(["health", "-c", config, "--json", "--timeout", "5"])
        #expect(status == 69)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        #expect(report["status"] as? String == "unhealthy" && report["failed"] as? [String] == ["metadata"])
        #expect(!out.contains("hunter2-secret"))
        let (textStatus, text) = try await runDES(["health", "-c", config])
        #expect(textStatus == 69 && text.contains("FAILED metadata") && text.contains("ok     storage"))
    }

    @Test("des serve starts and serves files while an upstream catalog is down; readiness names the source")
    func serveWithSourceDown() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(3)
        let dead = try freePort()  // nothing listens there
        let config = try shelf.writeServeConfig(
            server: "{drain_seconds: 0}",
            sources: """
                sources:
                  - name: upstream
                    connection: {type: postgresql, host: 127.0.0.1, port: \(dead), database: des, username: des, driver_options: {connect_timeout: 2}}
                    table: {name: files, columns: {s3_key: body_path}}
                    bodies: {type: local, root: \(shelf.dir)/bodies}

                """)
        let (p, base) = try await startServe(config: config)
        let client = Client()
        for name in names {
            let r = try await client.send("GET", base + "/files/" + path(name))
            #expect(r.status == 200 && r.body == shelf.files[name]?.bytes)
        }
        let ready = try await client.send("GET", base + "/health/ready")
        #expect(ready.status == 503)
        let report = try #require(try client.json(ready) as? [String: Any])
        #expect(report["failed"] as? [String] == ["source:upstream"], "\(report)")
        await client.close()
        kill(p.processIdentifier, SIGTERM)
        await waitForExit(p)
        #expect(p.terminationReason == .exit && p.terminationStatus == 0)
    }
}
