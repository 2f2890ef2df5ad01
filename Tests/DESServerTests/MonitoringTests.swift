@testable import DESPluginS3
import DESTestSupport
import DESKit
import Foundation
import Testing

/// The alerts and dashboards under deploy/ checked against the real binary: every metric they
/// name must be on the `/metrics` of a running worker or server after a little work.
@Suite("Monitoring artefacts against the running binary")
struct MonitoringTests {
    /// The repository's root (this file is Tests/DESServerTests/MonitoringTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("Every metric the alerts and dashboards name is exposed by a running marker, packer, server or lifecycle worker")
    func exposed() async throws {
        guard let redis = ProcessInfo.processInfo.environment["DES_TEST_REDIS_URL"] else {
            throw TestFailure("DES_TEST_REDIS_URL is not set: start the test servers (scripts/test-servers.sh up; make test does)")
        }
        let d = try SQLiteDeployment(
            "monitoring", columns: "s3_key: body_path, created_at: created_at", bodies: "delete_after_pack: 0s",
            sources: "  - name: tree\n    connection: {type: filesystem, roots: [./tree], min_age: 0}",
            extra: """
                packer: {shard_bits: 2, max_container_age_seconds: 1, idle_sleep_seconds: 0.05}
                marker: {interval_seconds: 0.05}
                events: {publish: {type: redis, url: "\(redis)", stream: "des:monitoring-\(UUID().uuidString.prefix(8))"}}
                """)
        defer { d.cleanup() }
        let (dir, config) = (d.dir, d.config)
        try FileManager.default.createDirectory(atPath: dir + "/tree/a", withIntermediateDirectories: true)
        for i in 0..<20 { try "tree file \(i)\n".write(toFile: dir + "/tree/a/f\(i).txt", atomically: true, encoding: .utf8) }
        let (sampled, sampleOut) = try await runDES(["sample", "-c", config, "--files", "60"])
        try #require(sampled == 0, "des sample: \(sampleOut)")
        let client = Client()
        var scrapes: [String] = []
        // Each worker runs until its metrics show it did its work (or 30 s), then is scraped and stopped.
        let workers: [(args: [String], done: (String) -> Bool)] = [
            (["scan"], { $0.contains("des_scan_rows_inserted_total") }),
            (["marker", "run"], { metricSum($0, "des_marker_entries_marked_total", labels: #"status="success""#) >= 60 }),
            (["packer", "run"], { metricSum($0, "des_packer_containers_uploaded_total") >= 1 && $0.contains("des_catalog_oldest_pending_seconds") }),
            (["retire"], { $0.contains("des_retire_") }),
            (["expire"], { $0.contains("des_expire_") }),
            (["compact"], { $0.contains("des_compact_") }),
            (["relay"], { $0.contains("des_events_lag_seconds") }),
        ]
        for worker in workers {
            let backlog = ["scan", "marker", "packer"].contains(worker.args[0]) ? ["--backlog-interval", "1"] : []
            let (p, port) = try await startWorker(worker.args + ["-c", config, "--log-level", "critical"] + backlog, in: dir)
            var text = ""
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let r = try? await client.send("GET", "http://127.0.0.1:\(port)/metrics"), r.status == 200 {
                    text = String(decoding: r.body, as: UTF8.self)
                    if worker.done(text) { break }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(worker.done(text), "\(worker.args.joined(separator: " ")) did not show its work on /metrics within 30 s")
            scrapes.append(text)
            kill(p.processIdentifier, SIGTERM)
            await waitForExit(p)
            #expect(p.terminationReason == .exit && p.terminationStatus == 0, "\(worker.args)")
        }
        // The server: a file read, a HEAD, misses by name and by path, readiness, then its metrics.
        let (server, base) = try await startServe(config: config)
        defer { server.terminate() }
        let name = try d.packedName()
        _ = try await client.send("GET", base + "/files/" + path(name))
        _ = try await client.send("HEAD", base + "/files/" + path(name))
        _ = try await client.send("GET", base + "/files/no-such-name")
        _ = try await client.send("GET", base + "/files/by-path/no/such/file.txt")
        _ = try await client.send("GET", base + "/health/ready")
        let served = try await client.send("GET", base + "/metrics")
        scrapes.append(String(decoding: served.body, as: UTF8.self))
        await client.close()
        // The checker reads every alert and panel expression and names what no scrape holds.
        var arguments = [Self.root + "/scripts/check-monitoring.py", "metrics"]
        for (i, text) in scrapes.enumerated() {
            let file = dir + "/scrape-\(i).txt"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            arguments += ["--scrape", file]
        }
        let (status, report) = try runTool("/usr/bin/env", ["python3"] + arguments)
        #expect(status == 0, "\(report)")
        // And every scrape passes promtool's lint: each metric has its # HELP line, names and
        // types as Prometheus expects (make test installs promtool: scripts/test-monitoring.sh).
        for i in scrapes.indices {
            let (lintStatus, lint) = try runTool("/bin/sh", ["-c", "promtool check metrics < '\(dir)/scrape-\(i).txt'"])
            #expect(lintStatus == 0 && lint.isEmpty, "scrape \(i): \(lint)")
        }
    }

    @Test("des serve --marker: the backlog gauges join /metrics; without a worker the backlog options are refused (exit 64), not ignored")
    func serveBacklog() async throws {
        let d = try SQLiteDeployment("serve-backlog", columns: "s3_key: body_path, created_at: created_at")
        defer { d.cleanup() }
        #expect(try await runDES(["sample", "-c", d.config, "--files", "7"]).0 == 0)
        let refused = try runTool("/usr/bin/timeout", ["20", try desBinary(), "serve", "-c", d.config, "--port", "0", "--backlog-interval", "1"])
        #expect(refused.0 == 64 && refused.1.contains("need --marker or --packer"), "\(refused)")
        // The marker names the 7 rows; nothing packs them, so 7 stay pending and the gauge says so.
        let (server, base) = try await startServe(config: d.config, extra: ["--marker", "--backlog-interval", "1"])
        defer { server.terminate() }
        let client = Client()
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let r = try? await client.send("GET", base + "/metrics"), r.status == 200 {
                text = String(decoding: r.body, as: UTF8.self)
                if metricSum(text, "des_catalog_rows", labels: #"status="pending""#) == 7 { break }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        await client.close()
        #expect(metricSum(text, "des_catalog_rows", labels: #"status="pending""#) == 7, "\(text.split(separator: "\n").filter { $0.contains("des_catalog") })")
        #expect(text.contains("des_catalog_oldest_pending_seconds"))
    }

    @Test("A relay whose stream is down shows its lag growing (the age of the oldest event not published), not its last good value")
    func stuckRelayLag() async throws {
        // A private redis-server, so that it can be killed under the relay.
        let port = try freePort()
        let d = try SQLiteDeployment(
            "stuck-relay",
            extra: #"events: {poll_seconds: 0.05, publish: {type: redis, url: "redis://127.0.0.1:\#(port)", stream: "des:stuck"}}"#)
        defer { d.cleanup() }
        let redis = Process()
        redis.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        redis.arguments = ["redis-server", "--bind", "127.0.0.1", "--port", String(port), "--dir", d.dir, "--save", "", "--appendonly", "no"]
        redis.standardOutput = FileHandle.nullDevice
        redis.standardError = FileHandle.nullDevice
        try redis.run()
        defer { if redis.isRunning { kill(redis.processIdentifier, SIGKILL) } }
        var up = false
        for _ in 0..<250 where !up {
            up = (try? runTool("/usr/bin/env", ["redis-cli", "-p", String(port), "PING"]))?.1.contains("PONG") ?? false
            if !up { try await Task.sleep(for: .milliseconds(20)) }
        }
        try #require(up, "the private redis-server did not start")
        for args in [["sample", "--files", "3"], ["marker", "run", "--until-idle"], ["packer", "run", "--until-idle"]] {
            #expect(try await runDES(args + ["-c", d.config]).0 == 0, "\(args)")
        }
        let (relay, metricsPort) = try await startWorker(["relay", "-c", d.config, "--log-level", "critical"])
        defer { kill(relay.processIdentifier, SIGTERM) }
        let client = Client()
        func lag() async -> Double? {
            guard let r = try? await client.send("GET", "http://127.0.0.1:\(metricsPort)/metrics"), r.status == 200 else { return nil }
            let line = String(decoding: r.body, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("des_events_lag_seconds ") }
            return line?.split(separator: " ").last.flatMap { Double($0) }
        }
        // Caught up: the container's event published, the lag 0.
        var caughtUp = false
        for _ in 0..<300 where !caughtUp {
            caughtUp = await lag() == 0
            if !caughtUp { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(caughtUp, "the relay never showed a lag of 0")
        // The stream goes down, then an event comes: the lag grows past 2 s.
        kill(redis.processIdentifier, SIGKILL)
        redis.waitUntilExit()
        #expect(try await runDES(["delete", try d.packedName(), "--reason", "stuck relay test", "-c", d.config]).0 == 0)
        var seen = 0.0
        for _ in 0..<300 where seen < 2 {
            seen = await lag() ?? 0
            if seen < 2 { try await Task.sleep(for: .milliseconds(100)) }
        }
        await client.close()
        #expect(seen >= 2, "des_events_lag_seconds stayed at \(seen) while the stream was down")
    }

    @Test("The oldest pending row's age: NaN while rows are pending without a creation time or with one that is not a time, else the age by the database's clock")
    func oldestPending() async throws {
        let d = try SQLiteDeployment("oldest", columns: "s3_key: body_path, created_at: created_at")
        defer { d.cleanup() }
        #expect(try await runDES(["sample", "-c", d.config, "--files", "5"]).0 == 0)
        // The backlog options do something only with --metrics-port: without it they are refused, not ignored.
        #expect(try await runDES(["marker", "run", "-c", d.config, "--until-idle", "--backlog-interval", "5"]).0 == 64)
        #expect(try await runDES(["marker", "run", "-c", d.config, "--until-idle"]).0 == 0)
        let catalog = d.dir + "/des-data/catalog.sqlite"
        func setCreated(_ sql: String) throws {
            _ = try python("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()", catalog, sql)
        }
        try setCreated("UPDATE files SET created_at = NULL")
        // The marker has named every row; with no packer they stay pending. Its gauges are read until they say `want`.
        let (p, port) = try await startWorker(["marker", "run", "-c", d.config, "--log-level", "critical", "--backlog-interval", "1"])
        defer { kill(p.processIdentifier, SIGTERM) }
        let client = Client()
        func gauge(until want: (Double) -> Bool) async throws -> Double {
            var value = -1.0
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                let text = String(decoding: try await client.send("GET", "http://127.0.0.1:\(port)/metrics").body, as: UTF8.self)
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(#"des_catalog_oldest_pending_seconds{source="catalog"}"#) }),
                    let v = line.split(separator: " ").last.flatMap({ Double($0) })
                {
                    value = v
                    if want(v) { return v }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            return value
        }
        #expect(try await gauge { $0.isNaN }.isNaN, "rows pending with no created_at: not known, so NaN (not 0)")
        try setCreated("UPDATE files SET created_at = strftime('%s','now') - 7200")
        let age = try await gauge { $0 >= 7_000 && $0 < 8_000 }
        #expect(age >= 7_000 && age < 8_000, "two hours old: \(age)")
        try setCreated("UPDATE files SET created_at = 'yesterday'")
        #expect(try await gauge { $0.isNaN }.isNaN, "a created_at that is not a time: NaN, not the last value")
        await client.close()
    }
}
