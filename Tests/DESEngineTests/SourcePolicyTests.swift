import DESKit
import DESNaming
import DESPluginSQLite
import DESTestSupport
import Foundation
import Testing

@testable import DESEngine

/// `sources[].batch_size` and `sources[].claim_timeout_seconds`: what the packer does with them.
@Suite struct SourcePolicyTests {
    /// The claims on `files` held by `holder` (all holders when nil).
    func claims(_ d: Deployment, by holder: String? = nil) async throws -> Int64 {
        let filter = holder.map { " AND des_claimed_by = '\($0)'" } ?? ""
        return try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_CLAIMED'\(filter)").first?[0].int ?? -1
    }

    @Test("a claim made on a held shard by a worker that lost its lease returns after the source's claim timeout, not the packer's")
    func staleClaimsReturnAfterTheSourcesTimeout() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(30)
        #expect(try await d.mark(shardBits: 1) == 30)
        // The packer's own timeout is 1 s; the source's is 300 s.
        let packer = try await d.packer(shardBits: 1, claimTimeout: 1, policies: ["catalog": .init(claimTimeoutSeconds: 300)])
        try await packer.acquireLeases(force: true)
        let held = packer.book.held.keys.sorted()
        #expect(held == [0, 1])

        // After the grant (whose recovery saw nothing), a paused worker resumes and claims rows of
        // those shards. It can never record a container (its lease is gone), so only the sweep returns them.
        let zombie = try d.connector()
        #expect(try await zombie.claim(shards: held, limit: 10, holder: "zombie/1").count == 10)
        // Rows this packer claimed itself are its work in hand, however old: never returned.
        #expect(try await zombie.claim(shards: held, limit: 5, holder: packer.holder.description).count == 5)

        _ = try await d.sql("UPDATE files SET des_claimed_at = des_claimed_at - 120 WHERE des_claimed_by IS NOT NULL")
        // 120 s old: past the packer's timeout but not the source's, which wins.
        #expect(try await packer.returnStaleClaims().rowsReleased == 0)
        #expect(try await claims(d, by: "zombie/1") == 10)

        _ = try await d.sql("UPDATE files SET des_claimed_at = des_claimed_at - 240 WHERE des_claimed_by IS NOT NULL")
        // 360 s old: past the source's 300 s.
        let report = try await packer.returnStaleClaims()
        #expect(report.rowsReleased == 10 && report.rowsPacked == 0)
        #expect(try await claims(d, by: "zombie/1") == 0)
        #expect(try await claims(d, by: packer.holder.description) == 5)

        // The run then packs every row exactly once (its own leftover claims recovered at idle).
        let totals = try await packer.run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == 30)
        #expect(try await claims(d) == 0)
        let audit = try await d.audit()
        #expect(audit.problems.isEmpty, "\(audit.problems)")
        #expect(audit.rowsChecked == 30 && audit.entries == 30)
    }

    @Test("a source's batch_size is its claim batch; a source without one claims packer.batch_size")
    func sourceBatchSizeIsTheClaimBatch() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(50)
        #expect(try await d.mark(shardBits: 1) == 50)
        let packer = try await d.packer(shardBits: 1, batchSize: 40, policies: ["catalog": .init(claimBatchSize: 7)])
        #expect(packer.claimLimits == ["catalog": 7])
        let plain = try await d.packer(shardBits: 1, pod: "other", batchSize: 40)
        #expect(plain.claimLimits == ["catalog": 40])

        try await packer.acquireLeases(force: true)
        let batch = try await Packer.claimBatch(
            sources: packer.context.sources, shards: packer.book.held.keys.sorted(),
            limits: packer.claimLimits, holder: packer.holder.description, fetchConcurrency: 1, epoch: 0, retry: .metadata)
        #expect(batch.files.count == 7 && batch.saturated)
        #expect(try await claims(d) == 7)
        await packer.release(batch.files, reason: "test")
        let totals = try await packer.run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == 50)
    }

    @Test("a lease-mode packer that finds rows of its shards claimed (a row-mode packer beside it) says so; a row-mode one does not look")
    func mixedClaimModeIsReported() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(20)
        #expect(try await d.mark(shardBits: 1) == 20)
        let lease = try await d.packer(shardBits: 1, pod: "lease", claimMode: .lease)
        try await lease.acquireLeases(force: true)
        #expect(try await lease.warnOfRowClaims() == 0)
        // A row-mode packer that lost the lease claims anyway (its claim does not ask the lease).
        let claimed = try await d.connector().claim(shards: [0, 1], limit: 3, holder: "rowmode#1")
        #expect(claimed.count == 3)
        #expect(try await lease.warnOfRowClaims() == 3)
        let row = try await d.packer(shardBits: 1, pod: "row")
        #expect(try await row.warnOfRowClaims() == 0)
    }

    @Test("the loaded config's batch_size and claim_timeout_seconds become the packer's source policies")
    func policiesFromConfig() throws {
        var a = SourceConfig(name: "a", connection: ConnectionConfig(type: "sqlite"), table: TableConfig(name: "t"))
        a.batchSize = 250
        a.claimTimeoutSeconds = 90
        let b = SourceConfig(name: "b", connection: ConnectionConfig(type: "sqlite"), table: TableConfig(name: "t"))
        let policies = Packer.SourcePolicy.policies(for: [a, b])
        #expect(policies["a"] == .init(claimBatchSize: 250, claimTimeoutSeconds: 90))
        #expect(policies["b"] == .init(claimBatchSize: nil, claimTimeoutSeconds: nil))
    }
}

/// The generic SQL layer splits every statement to the dialect's bind limit.
@Suite struct LargeBatchTests {
    @Test("marker.batch_size: 100000 on the embedded default: 12,000 rows (48,000 bound values) named in one batch past SQLite's 32,766 binds, each once")
    func markerBatchPastTheBindLimit() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(12_000, size: 8)
        var config = MarkerConfig()
        config.batchSize = 100_000
        let generator = try SnowflakeGenerator(configuration: .init(prefix: "T", node: 1))
        let marker = try await d.marker(naming: SnowflakeNaming(generator: generator), shardBits: 4, config: config)
        let result = try await marker.run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(result.marked == 12_000)
        let named = try await d.sql("SELECT COUNT(DISTINCT des_name), COUNT(*) FROM files WHERE des_name IS NOT NULL AND des_status = 'DES_TODO'")
        #expect(named.first?[0].int == 12_000 && named.first?[1].int == 12_000)
    }
}

/// Recovery refuses a manifest it cannot trust rather than marking rows it names.
@Suite struct ManifestRecoveryTests {
    func uploadedContainer(_ d: Deployment, manifest: String, files: Int) async throws -> (SQLMetadataStore, ContainerRecord) {
        let store = try await d.metadata()
        let lease = try #require(try await store.acquireLease(shard: 0, holder: LeaseHolder(pod: "p", instance: "1"), ttlSeconds: 30))
        let c = try await store.createContainer(day: "2025-01-01", shard: 0, lease: lease, keyPrefix: "des")
        #expect(try await store.markUploaded(containerID: c.id, fileCount: files, bytes: 1, size: 1, etag: "e", lease: lease))
        let conn = try await SQLiteConnection.open(path: d.dir + "/metadata.sqlite")
        let set = try await conn.withSession { try $0.execute("UPDATE des_containers SET manifest = ?1 WHERE id = ?2", [.text(manifest), .int(c.id)]) }
        #expect(set == 1)
        await conn.close()
        try await store.releaseLease(lease)
        return (store, c)
    }

    @Test("A manifest naming more rows than its container holds, a huge range, or a source the config lacks stops recovery of its shard with the container named; no row is marked")
    func untrustedManifests() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(10)
        _ = try await d.mark(shardBits: 1)
        let cases: [(String, Int, String)] = [
            ("{\"catalog\":\"1-2\"}", 3, "names 2 rows but the container holds 3 files"),
            ("{\"catalog\":\"1-99999999\"}", 3, "more than 3 rows"),
            ("{\"renamed\":\"1-3\"}", 3, "source 'renamed', which this config does not have"),
        ]
        for (manifest, files, words) in cases {
            let (store, c) = try await uploadedContainer(d, manifest: manifest, files: files)
            let recovery = Recovery(sources: [try d.connector()], metadata: store, storage: try d.storage(), logger: d.logger)
            await #expect {
                _ = try await recovery.recoverShard(0)
            } throws: { error in
                let message = (error as? DESKitError)?.message ?? ""
                return message.contains(words) && message.contains(c.key)
            }
            let packed = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_PACKED'").first?[0].int
            #expect(packed == 0, "\(manifest)")
            try await store.manifestMarked(containerID: c.id)  // out of the way of the next case
        }
    }
}

/// Recording a container uploaded is safe to retry: the answer of a write that committed can be
/// lost with the connection, and the retry must not read as fencing.
@Suite struct UploadRecordRetryTests {
    @Test("markUploaded again with the same holder, token and values answers true; other values, another lease, or a container not uploaded answer false")
    func idempotent() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let store = try await d.metadata()
        let holder = LeaseHolder(pod: "p", instance: "1")
        let lease = try #require(try await store.acquireLease(shard: 0, holder: holder, ttlSeconds: 30))
        let c = try await store.createContainer(day: "2025-01-01", shard: 0, lease: lease, keyPrefix: "des")
        let other = try await store.createContainer(day: "2025-01-01", shard: 0, lease: lease, keyPrefix: "des")
        #expect(try await store.markUploaded(containerID: c.id, fileCount: 3, bytes: 30, size: 100, etag: "e", lease: lease))
        #expect(try await store.markUploaded(containerID: c.id, fileCount: 3, bytes: 30, size: 100, etag: "e", lease: lease), "the retry of a committed write")
        #expect(try await !store.markUploaded(containerID: c.id, fileCount: 3, bytes: 30, size: 101, etag: "e", lease: lease), "other values")
        #expect(try await !store.markUploaded(containerID: c.id, fileCount: 4, bytes: 30, size: 100, etag: "e", lease: lease), "other values")
        var stranger = lease
        stranger.token += 1
        #expect(try await !store.markUploaded(containerID: c.id, fileCount: 3, bytes: 30, size: 100, etag: "e", lease: stranger), "another token")
        // A container still writing under a lease lost meanwhile is fenced, as before.
        try await store.releaseLease(lease)
        #expect(try await !store.markUploaded(containerID: other.id, fileCount: 3, bytes: 30, size: 100, etag: "e", lease: lease))
        let events = try await store.events(afterSeq: 0, limit: 100)
        #expect(events.filter { $0.kind == .containerUploaded }.count == 1, "one upload event, not one per retry: \(events)")
    }
}
