import DESEngine
import DESKit
import DESPluginSQLite
import DESTestSupport
import Foundation
import Testing

/// `claim_mode: lease` against catalogs that change under the packer.
@Suite("Lease mode: ids that change in flight") struct LeaseModeTests {
    /// `rows` packed in lease mode, then one container left as a crash between its upload and
    /// its mark leaves it: its rows pending, its manifest unmarked.
    static func unmarkedManifest(_ d: Deployment, rows: Int) async throws -> (SQLMetadataStore, ContainerRecord) {
        try await d.addRows(rows, size: 32)
        _ = try await d.mark(shardBits: 1)
        let totals = try await d.packer(shardBits: 1, maxFiles: 40, claimMode: .lease).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == rows)
        let store = try await d.metadata()
        let container = try #require(try await store.containers(state: .uploaded, shard: nil, day: nil).first)
        _ = try await d.sql("UPDATE files SET des_status = 'DES_TODO', des_container = NULL WHERE des_container = '\(container.key)'")
        let meta = try await SQLiteConnection.open(path: d.dir + "/metadata.sqlite")
        _ = try await meta.withSession { try $0.execute("UPDATE des_containers SET marked_at = NULL WHERE id = ?1", [.int(container.id)]) }
        await meta.close()
        return (store, container)
    }

    @Test(
        "Every pending row's id changes while a lease-mode packer has rows in hand — renumbered, or swapped with another pending row's: each row is still packed once, found by its name",
        arguments: ["renumber", "swap"])
    func idsChangeInFlight(change: String) async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(3000, size: 64)
        _ = try await d.mark(shardBits: 2)
        let config = try d.writeConfig(
            packer: "{claim_mode: lease, work_dir: work, shard_bits: 2, pod_name: moved, batch_size: 20, max_container_files: 200, "
                + "checkpoint_every_files: 50, lease_ttl_seconds: 60, heartbeat_seconds: 1}")
        let p = try d.startPacker(config: config, untilIdle: true)
        defer { kill(p.processIdentifier, SIGKILL) }  // never left stopped, should the test stop early
        let paused = await pauseWithRowsInHand(p, workDir: d.dir + "/work", databases: [d.dir + "/catalog.sqlite", d.dir + "/metadata.sqlite"])
        try #require(paused, "the packer finished before it could be paused; give it more work")
        // Rows in open containers are pending and in flight: the application renumbers them all now.
        let pending = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_TODO'").first?[0].int ?? 0
        try #require(pending > 1, "no pending rows left to renumber")
        if change == "renumber" {
            _ = try await d.sql("UPDATE files SET id = id + 1000000 WHERE des_status = 'DES_TODO'")
        } else {
            // The pending ids reversed among the pending rows: a row in flight takes the id of
            // another, most often one not in flight, which a mark by id alone would mark packed.
            _ = try await d.sql("CREATE TABLE ids AS SELECT id AS old, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM files WHERE des_status = 'DES_TODO'")
            _ = try await d.sql("UPDATE files SET id = -id WHERE des_status = 'DES_TODO'")
            _ = try await d.sql(
                "UPDATE files SET id = (SELECT b.old FROM ids a JOIN ids b ON b.rn = (SELECT COUNT(*) FROM ids) + 1 - a.rn "
                    + "WHERE a.old = -files.id) WHERE id < 0")
        }
        kill(p.processIdentifier, SIGCONT)
        await d.wait(p)
        #expect(p.terminationReason == .exit && p.terminationStatus == 0)
        try await expectNothingStranded(d, "ids changed in flight (\(change))")
    }

    @Test("Recovery of an unmarked manifest finds a row whose id changed by its name in the container, and marks it")
    func recoveryMarksByName() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let (store, container) = try await Self.unmarkedManifest(d, rows: 200)
        let first = try #require(try await d.sql("SELECT MIN(id) FROM files WHERE des_status = 'DES_TODO'").first?[0].int)
        _ = try await d.sql("UPDATE files SET id = 900000 WHERE id = \(first)")
        let recovery = Recovery(sources: [try d.connector()], metadata: store, storage: try d.storage(), logger: d.logger)
        let report = try await recovery.recoverShard(container.shard)
        #expect(report.rowsPacked == container.fileCount, "\(report)")
        let pending = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status <> 'DES_PACKED'").first?[0].int
        #expect(pending == 0)
        #expect(try await d.sql("SELECT des_container FROM files WHERE id = 900000").first?[0].text == container.key)
        try await expectNothingStranded(d, "recovered by name")
    }

    @Test("Recovery of an unmarked manifest marks a row whose id changed and which was failed meanwhile, as it marks one failed under its own id")
    func recoveryMarksFailedByName() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let (store, container) = try await Self.unmarkedManifest(d, rows: 200)
        let ids = try await d.sql("SELECT id FROM files WHERE des_status = 'DES_TODO' ORDER BY id LIMIT 2").compactMap { $0[0].int }
        try #require(ids.count == 2)
        // One renumbered and failed (found by its name), one failed under its own id (marked by id).
        _ = try await d.sql("UPDATE files SET id = 900000, des_status = 'DES_FAILED', des_error = 'app' WHERE id = \(ids[0])")
        _ = try await d.sql("UPDATE files SET des_status = 'DES_FAILED', des_error = 'app' WHERE id = \(ids[1])")
        let recovery = Recovery(sources: [try d.connector()], metadata: store, storage: try d.storage(), logger: d.logger)
        let report = try await recovery.recoverShard(container.shard)
        #expect(report.rowsPacked == container.fileCount, "\(report)")
        for id in [900000, ids[1]] {
            let row = try await d.sql("SELECT des_status, des_container, des_error FROM files WHERE id = \(id)").first
            #expect(row?[0].text == "DES_PACKED" && row?[1].text == container.key && row?[2].text == nil, "row \(id): \(String(describing: row))")
        }
        try await expectNothingStranded(d, "failed rows recovered")
    }

    @Test(
        "Recovery of an unmarked manifest whose row's id changed, when an application gave that row's DES name to another row too: both are dead-lettered with the reason, neither marked with bytes that may be the other's"
    )
    func recoverySharedNameDeadLetters() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let (store, container) = try await Self.unmarkedManifest(d, rows: 120)
        // The row's id changes, and the application writes its DES name on a second row.
        let first = try #require(try await d.sql("SELECT MIN(id) FROM files WHERE des_status = 'DES_TODO'").first?[0].int)
        let name = try #require(try await d.sql("SELECT des_name FROM files WHERE id = \(first)").first?[0].text)
        _ = try await d.sql("UPDATE files SET id = 900000 WHERE id = \(first)")
        _ = try await d.sql("CREATE TABLE dup AS SELECT * FROM files WHERE id = 900000")
        _ = try await d.sql("UPDATE dup SET id = 900001")
        _ = try await d.sql("INSERT INTO files SELECT * FROM dup")
        let recovery = Recovery(sources: [try d.connector()], metadata: store, storage: try d.storage(), logger: d.logger)
        let report = try await recovery.recoverShard(container.shard)
        #expect(report.rowsPacked == container.fileCount - 1, "\(report)")
        let failed = try await d.sql("SELECT id, des_status FROM files WHERE des_name = '\(name)' ORDER BY id")
        #expect(failed.map { $0[0].int } == [900000, 900001] && failed.allSatisfy { $0[1].text == "DES_FAILED" }, "\(failed)")
        let letters = try await store.deadLetters(limit: 10).filter { $0.desName == name }
        #expect(Set(letters.map(\.rowID)) == ["900000", "900001"])
        #expect(letters.allSatisfy { $0.reason.contains("held by 2 rows") && $0.reason.contains(container.key) }, "\(letters)")
        let left = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_TODO'").first?[0].int
        #expect(left == 0)
    }
}
