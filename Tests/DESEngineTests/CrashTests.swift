import DESEngine
import DESKit
import DESTestSupport
import Foundation
import Testing

/// The `des` binary next to the test bundle (or $DES_BIN).
func desBinary() throws -> String { try desExecutable() }

@Suite("Crash") struct CrashTests {
    @Test("kill -9 the packer 20 times: every row packed exactly once, bytes intact (claim_mode row and lease)", arguments: ["row", "lease"])
    func killNine(mode: String) async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(8000, size: nil)
        _ = try await d.mark(shardBits: 3)
        let config = try d.writeConfig(
            packer: "{work_dir: work, shard_bits: 3, pod_name: crashy, batch_size: 20, max_container_files: 60, "
                + "checkpoint_every_files: 10, lease_ttl_seconds: 30, heartbeat_seconds: 1, claim_mode: \(mode)}")
        func start() throws -> Process { try d.startPacker(config: config, untilIdle: true) }
        var rng = SystemRandomNumberGenerator()
        var kills = 0, attempts = 0
        while kills < 20 && attempts < 200 {
            attempts += 1
            let p = try start()
            try await Task.sleep(nanoseconds: UInt64.random(in: 20_000_000...200_000_000, using: &rng))
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                kills += 1
            }
            await d.wait(p)
            // Keep work in hand until the 20th kill: top the catalog up when it is all packed.
            let open = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status <> 'DES_PACKED'").first?[0].int ?? 0
            if open == 0 && kills < 20 {
                try await d.addRows(500, size: nil, seed: UInt64(attempts) + 100)
                _ = try await d.mark(shardBits: 3)
            }
        }
        let total = try await d.sql("SELECT COUNT(*) FROM files").first?[0].int ?? 0
        #expect(total >= 8000)
        let final = try start()
        await d.wait(final)
        #expect(final.terminationStatus == 0)
        #expect(kills >= 20)
        let statuses = try await d.sql("SELECT des_status, COUNT(*) FROM files GROUP BY des_status")
        #expect(statuses.count == 1 && statuses.first?[0].text == "DES_PACKED" && statuses.first?[1].int == total, "\(statuses)")
        let audit = try await d.audit()
        #expect(audit.isOK, "\(audit.problems)")
        #expect(Int64(audit.rowsChecked) == total && Int64(audit.entries) == total)
        try await expectNothingStranded(d, "after the final run")
        if mode == "lease" {
            // The lease is the claim: no row was ever claimed.
            let claimedEver = try await d.sql("SELECT COUNT(*) FROM files WHERE des_claimed_by IS NOT NULL").first?[0].int ?? -1
            #expect(claimedEver == 0)
        }
        print("crash test (\(mode)): \(kills) kills; \(audit.containers) uploaded containers")
    }

    @Test("SIGTERM finishes the batch in hand: no claimed rows, no writing containers, exit 0 (claim_mode row and lease)", arguments: ["row", "lease"])
    func gracefulShutdown(mode: String) async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(6000, size: 256)
        _ = try await d.mark(shardBits: 2)
        let config = try d.writeConfig(
            packer: "{work_dir: work, shard_bits: 2, pod_name: polite, batch_size: 10, max_container_files: 100000, "
                + "max_container_age_seconds: 3600, claim_mode: \(mode)}")
        let p = try d.startPacker(config: config, untilIdle: false)
        // Once it has rows in hand (a container file in its work directory), ask it to stop.
        let watcher = ProcessWatcher(process: p, workDir: d.dir + "/work", since: Date()) {
            kill(p.processIdentifier, SIGTERM) == 0
        }
        guard await watcher.finished() else {
            kill(p.processIdentifier, SIGKILL)  // never SIGTERMed: it would run on
            Issue.record("the packer finished before it had rows in hand, or could not be signalled")
            return
        }
        await d.wait(p)
        #expect(p.terminationReason == .exit && p.terminationStatus == 0)
        #expect(try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_CLAIMED'").first?[0].int == 0)
        #expect(try await d.metadata().containers(state: .writing, shard: nil, day: nil).isEmpty)
        let packed = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_PACKED'").first?[0].int ?? 0
        #expect(packed > 0)
        let audit = try await d.audit()
        #expect(audit.isOK, "\(audit.problems)")
        #expect(Int64(audit.rowsChecked) == packed)
    }
}
