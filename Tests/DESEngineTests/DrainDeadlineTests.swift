import DESEngine
import DESKit
import DESTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Drain deadline") struct DrainDeadlineTests {
    @Test("SIGTERM while every fetch hangs: past packer.drain_seconds the rows go back to pending, the leases are free, exit 75")
    func hungFetchDrains() async throws {
        let hole = try TCPBlackHole()
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(20)
        _ = try await d.mark(shardBits: 2)
        var config = try String(contentsOfFile: try d.writeConfig(packer: "{work_dir: work, shard_bits: 2, drain_seconds: 1}"), encoding: .utf8)
        // Bodies on a server that never answers, with a deadline far longer than the test.
        config = config.replacingOccurrences(
            of: "bodies: {type: local, root: bodies}",
            with: "bodies: {type: s3, bucket: b, endpoint: 'http://127.0.0.1:\(hole.port)', access_key: k, secret_key: s, request_timeout: 3600}")
        try config.write(toFile: d.dir + "/hung.yaml", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try desBinary())
        p.arguments = ["packer", "run", "-c", d.dir + "/hung.yaml", "--log-level", "critical"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let claimed = try await d.waitForClaims()
        try #require(claimed > 0, "the packer never claimed a row")
        kill(p.processIdentifier, SIGTERM)
        // Without the deadline it never exits: give it a minute, then kill it (and fail).
        let killer = Task {
            try await Task.sleep(nanoseconds: 60_000_000_000)
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
        await waitForExit(p)
        killer.cancel()
        #expect(p.terminationReason == .exit && p.terminationStatus == 75, "exit \(p.terminationStatus)")
        let stats = try await d.connector().stats()
        #expect(stats.claimed == 0 && stats.pending == 20 && stats.packed == 0, "\(stats)")
        // Every shard can be leased at once by another packer: nothing is left held.
        let store = try await d.metadata()
        for shard in 0..<4 {
            let lease = try await store.acquireLease(shard: shard, holder: LeaseHolder(pod: "next", instance: "i"), ttlSeconds: 30)
            #expect(lease != nil, "shard \(shard) is still leased")
        }
        #expect(try await d.metadata().containers(state: .writing, shard: nil, day: nil).isEmpty)
    }
}
