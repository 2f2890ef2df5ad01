import DESCLI
import DESEngine
import DESKit
import DESNaming
import DESSQLDialects
import DESPluginSQLite
import DESStorage
import Foundation
import Testing

/// What the catalog and metadata say once a run is over: nothing stranded, everything packed once.
func expectNothingStranded(_ d: Deployment, _ label: String = "") async throws {
    let claimed = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_CLAIMED'").first?[0].int ?? -1
    #expect(claimed == 0, "\(label): \(claimed) rows left claimed")
    let writing = try await d.metadata().containers(state: .writing, shard: nil, day: nil)
    #expect(writing.isEmpty, "\(label): \(writing.count) containers left writing")
    let total = try await d.sql("SELECT COUNT(*) FROM files").first?[0].int ?? 0
    let packed = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_PACKED'").first?[0].int ?? 0
    #expect(packed == total, "\(label): \(packed) of \(total) packed")
    let audit = try await d.audit()
    #expect(audit.isOK, "\(label): \(audit.problems)")
    #expect(Int64(audit.entries) == total, "\(label): \(audit.entries) entries for \(total) rows")
}

@Suite("Packer liveness") struct PackerLivenessTests {
    @Test("A packer paused past its lease TTL (SIGSTOP, SIGCONT) recovers its own claims and finishes", arguments: 1...2)
    func pausedPacker(round: Int) async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(8000, size: 256, seed: UInt64(round))
        _ = try await d.mark(shardBits: 2)
        let config = try d.writeConfig(
            packer: "{work_dir: work, shard_bits: 2, pod_name: sleepy, batch_size: 5, max_container_files: 400, "
                + "checkpoint_every_files: 20, lease_ttl_seconds: 1, heartbeat_seconds: 0.3}")
        let p = try d.startPacker(config: config, untilIdle: true)
        defer { kill(p.processIdentifier, SIGKILL) }  // never left stopped, should the test stop early
        // Paused from a watching thread the moment it has rows in hand: not a race against a fast machine.
        let paused = await pauseWithRowsInHand(p, workDir: d.dir + "/work", databases: [d.dir + "/catalog.sqlite", d.dir + "/metadata.sqlite"])
        try #require(paused, "the packer finished before it could be paused; give it more work")
        try await Task.sleep(nanoseconds: 2_500_000_000)  // well past the 1 s lease TTL
        let stranded = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_CLAIMED'").first?[0].int ?? 0
        kill(p.processIdentifier, SIGCONT)
        await d.wait(p)
        #expect(p.terminationReason == .exit && p.terminationStatus == 0)
        #expect(stranded > 0, "the pause should have caught rows in hand")
        try await expectNothingStranded(d, "round \(round)")
    }

    @Test(
        "A packer paused past its lease TTL while a competitor takes its shards over: its writes are refused, nothing lost or packed twice",
        arguments: ["row", "lease"])
    func pausedHolderWithCompetitor(mode: String) async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(6000, size: 256)
        _ = try await d.mark(shardBits: 2)
        func config(_ pod: String) throws -> String {
            try d.writeConfig(
                packer: "{work_dir: work, shard_bits: 2, pod_name: \(pod), batch_size: 5, max_container_files: 300, "
                    + "checkpoint_every_files: 20, lease_ttl_seconds: 1, heartbeat_seconds: 0.3, claim_mode: \(mode)}",
                name: "\(pod).yaml")
        }
        let a = try d.startPacker(config: try config("paused"), untilIdle: true)
        defer { kill(a.processIdentifier, SIGKILL) }  // never left stopped, should the test stop early
        let paused = await pauseWithRowsInHand(a, workDir: d.dir + "/work/paused", databases: [d.dir + "/catalog.sqlite", d.dir + "/metadata.sqlite"])
        try #require(paused, "the packer finished before it could be paused; give it more work")
        try await Task.sleep(nanoseconds: 1_500_000_000)  // past the 1 s lease TTL
        let b = try d.startPacker(config: try config("competitor"), untilIdle: true, stderr: d.dir + "/competitor.stderr")
        await d.wait(b)
        let said = (try? String(contentsOfFile: d.dir + "/competitor.stderr", encoding: .utf8)) ?? ""
        #expect(b.terminationReason == .exit && b.terminationStatus == 0, "exit \(b.terminationStatus): \(said)")
        // The competitor took the paused packer's shards over: it packed every row, those in the paused one's hands too.
        let packedByCompetitor = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_PACKED'").first?[0].int
        #expect(packedByCompetitor == 6000, "the competitor packed \(packedByCompetitor ?? -1) of 6000 rows")
        kill(a.processIdentifier, SIGCONT)
        await d.wait(a)
        // The resumed packer finds its leases gone: whatever it writes is refused, and it ends.
        #expect(a.terminationReason == .exit)
        let last = try d.startPacker(config: try config("competitor"), untilIdle: true)
        await d.wait(last)
        #expect(last.terminationStatus == 0)
        try await expectNothingStranded(d, "\(mode)")
    }

    @Test("Two packers of the same pod: the second never steals the live lease, both exit 0, nothing stranded")
    func samePodPair() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(3000, size: 128)
        _ = try await d.mark(shardBits: 2)
        let config = try d.writeConfig(
            packer: "{work_dir: work, shard_bits: 2, pod_name: twin, batch_size: 20, max_container_files: 300, "
                + "lease_ttl_seconds: 30, heartbeat_seconds: 0.5, idle_sleep_seconds: 0.05}")
        let a = try d.startPacker(config: config, untilIdle: true)
        let b = try d.startPacker(config: config, untilIdle: true)
        await d.wait(a)
        await d.wait(b)
        #expect(a.terminationStatus == 0 && b.terminationStatus == 0, "exit \(a.terminationStatus) and \(b.terminationStatus)")
        try await expectNothingStranded(d)
        // Every grant went to one instance at a time: the tokens count the grants, never a steal of a live lease.
        let containers = try await d.metadata().containers(state: .uploaded, shard: nil, day: nil)
        #expect(!containers.isEmpty)
    }

    @Test("Packers with different pod indexes starting at once on a fresh metadata database all start", arguments: 1...3)
    func freshDatabaseRace(round: Int) async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(400, size: 64, seed: UInt64(round))
        _ = try await d.mark(shardBits: 2)
        try? FileManager.default.removeItem(atPath: d.dir + "/metadata.sqlite")  // fresh: the packers create it
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: d.dir + "/metadata.sqlite" + suffix) }
        var processes: [Process] = []
        for index in 0..<3 {
            let config = try d.writeConfig(
                packer: "{work_dir: work, shard_bits: 2, pod_count: 3, pod_index: \(index), pod_name: p\(index), batch_size: 50}",
                name: "pod\(index).yaml")
            processes.append(try d.startPacker(config: config, untilIdle: true))
        }
        for p in processes { await d.wait(p) }
        #expect(processes.allSatisfy { $0.terminationStatus == 0 }, "\(processes.map(\.terminationStatus))")
        try await expectNothingStranded(d, "round \(round)")
    }

    @Test("A metadata-store lock held past the busy timeout is ridden out: the packer retries and finishes")
    func metadataLockHeld() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(8000, size: 128)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.metadata()  // create the schema first
        let config = try d.writeConfig(
            packer: "{work_dir: work, shard_bits: 2, pod_name: patient, batch_size: 5, max_container_files: 100, "
                + "checkpoint_every_files: 10, lease_ttl_seconds: 60, heartbeat_seconds: 1}")
        let lock = try await SQLiteConnection.open(path: d.dir + "/metadata.sqlite")
        let p = try d.startPacker(config: config, untilIdle: true)
        defer { kill(p.processIdentifier, SIGKILL) }  // never left stopped, should the test stop early
        // Stopped the moment it has rows in hand, so that it is mid-run (however fast the machine)
        // when the lock is taken; it resumes while the lock is held.
        let paused = await pauseWithRowsInHand(p, workDir: d.dir + "/work", databases: [d.dir + "/metadata.sqlite"])
        try #require(paused, "the packer finished before it could be paused; give it more work")
        // Hold the write lock for 12 s: longer than the store's 10 s busy timeout.
        try await lock.withTransaction { s in
            _ = try s.execute("UPDATE des_dead_letters SET resolved = resolved")
            kill(p.processIdentifier, SIGCONT)
            sleep(12)
        }
        await lock.close()
        await d.wait(p)
        #expect(p.terminationStatus == 0)
        try await expectNothingStranded(d)
    }

    @Test("A lease thief taking shards from a running packer never ends it, strands nothing and packs nothing twice")
    func leaseThief() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(2000, size: 64)
        _ = try await d.mark(shardBits: 2)
        let packer = try await d.packer(shardBits: 2, maxFiles: 150, pod: "victim", batchSize: 5)
        let store = try await d.metadata()
        let victim = packer.holder
        let thief = Task {
            var steals = 0
            let holder = LeaseHolder(pod: "thief", instance: "1")
            // A bounded number of thefts, while the packer works: then it must finish the job.
            while !Task.isCancelled && steals < 12 {
                try? await Task.sleep(nanoseconds: 60_000_000)
                let shard = Int.random(in: 0..<4)
                if (try? await store.expireLease(shard: shard, holder: victim)) == true,
                    let stolen = try? await store.acquireLease(shard: shard, holder: holder, ttlSeconds: 5)
                {
                    steals += 1
                    try? await Task.sleep(nanoseconds: 20_000_000)
                    try? await store.releaseLease(stolen)
                }
            }
            return steals
        }
        let totals = try await packer.run(shutdown: ShutdownSignal(), untilIdle: true)
        thief.cancel()
        let steals = await thief.value
        #expect(steals > 0)
        #expect(totals.filesPacked == 2000)
        try await expectNothingStranded(d)
    }
}

@Suite("Hostile catalog rows and storage leftovers") struct HostileInputTests {
    @Test("Body paths that escape the body root go to the dead-letter table; absolute paths only when allowed")
    func bodyPathEscapes() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(20, size: 32)
        _ = try await d.mark(shardBits: 1)
        let outside = d.dir + "/secret.txt"
        try "secret".write(toFile: outside, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: d.bodiesRoot + "/link.txt", withDestinationPath: outside)
        _ = try await d.sql("UPDATE files SET body_path = '../secret.txt' WHERE id = 2")
        _ = try await d.sql("UPDATE files SET body_path = 'link.txt' WHERE id = 3")
        _ = try await d.sql("UPDATE files SET body_path = '\(outside)' WHERE id = 4")
        _ = try await d.sql("UPDATE files SET body_path = 'a/../../../../../etc/hostname' WHERE id = 5")
        let totals = try await d.packer(shardBits: 1).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == 16 && totals.filesFailed == 4)
        let failed = try await d.sql("SELECT id, des_error FROM files WHERE des_status = 'DES_FAILED' ORDER BY id")
        #expect(failed.map { $0[0].int ?? 0 } == [2, 3, 4, 5])
        #expect(failed[0][1].text?.contains("escapes the body root") == true)
        #expect(failed[1][1].text?.contains("escapes the body root") == true)
        // Where the link leads is not said: whoever writes the catalog reads the error back.
        #expect(failed[1][1].text?.contains("secret") == false, "\(failed[1][1].text ?? "")")
        #expect(failed[2][1].text?.contains("allow_absolute") == true)
        #expect(failed[3][1].text?.contains("escapes the body root") == true)
        let letters = try await d.metadata().deadLetters(limit: 10)
        #expect(Set(letters.map(\.rowID)) == ["2", "3", "4", "5"])
        // No container holds the secret.
        for container in try await d.metadata().containers(state: .uploaded, shard: nil, day: nil) {
            let bytes = try readAll(d.dir + "/archive/" + container.key)
            #expect(!String(decoding: bytes, as: UTF8.self).contains("secret"))
        }
        // With allow_absolute the absolute path is read as it is; a relative escape still is not.
        let fetcher = LocalBodyFetcher(root: d.bodiesRoot, allowAbsolute: true)
        #expect(try fetcher.resolve(outside) == outside)
        #expect(throws: DESKitError.self) { try fetcher.resolve("../secret.txt") }
    }

    @Test("A SQLite source database that does not exist is an error naming the file, and is not created")
    func missingSourceDatabase() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let config = try d.writeConfig(packer: "{work_dir: work, shard_bits: 1}")
        let run = Process()
        run.executableURL = URL(fileURLWithPath: try desBinary())
        run.arguments = ["status", "-c", config]
        let err = Pipe()
        run.standardError = err
        run.standardOutput = FileHandle.nullDevice
        try run.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        await d.wait(run)
        #expect(run.terminationStatus != 0)
        #expect(message.contains("catalog.sqlite") && message.contains("does not exist"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: d.catalogPath))
    }

    @Test("Recovery removes temporary objects of dead writers and old ones, never finished containers or live ones")
    func storageTemporaries() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let storage = try d.storage()
        let dir = d.dir + "/archive/des/2025-01-01"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A writer that has exited: a real child process, reaped.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        await d.wait(child)
        let me = ProcessIdentity.current
        let dead = ProcessIdentity(pid: child.processIdentifier, startTime: me.startTime + 1, boot: me.boot, namespace: me.namespace)
        let files = [
            "shard_01_c000001.des": true,  // finished: kept
            "shard_01_c000002.des.tmp-\(dead.token).r1": false,  // dead writer: removed
            "shard_01_c000003.des.tmp-\(me.token).r2": true,  // this live process: kept
            "shard_01_c000004.des.tmp-1234-5678": true,  // old name, new file: kept
            "shard_01_c000005.des.tmp-4321-8765": false,  // old name, two hours old: removed
        ]
        for name in files.keys { try "x".write(toFile: dir + "/" + name, atomically: false, encoding: .utf8) }
        let old = Date(timeIntervalSinceNow: -7200)
        try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: dir + "/shard_01_c000005.des.tmp-4321-8765")
        let recovery = Recovery(sources: [], metadata: try await d.metadata(), storage: storage, logger: d.logger)
        let report = try await recovery.recoverAll(shards: [0, 1], holder: LeaseHolder(pod: "r", instance: me.token), ttlSeconds: 30, keyPrefix: "des")
        #expect(report.temporariesRemoved == 2)
        for (name, kept) in files {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + name) == kept, "\(name)")
        }
        #expect(try await storage.list(prefix: "des").map(\.key) == ["des/2025-01-01/shard_01_c000001.des"])
    }

    @Test("des check reports rows claimed and containers writing for longer than the lease TTL")
    func checkReportsStrandedWork() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(10, size: 16)
        _ = try await d.mark(shardBits: 1)
        _ = try await d.sql("UPDATE files SET des_status = 'DES_CLAIMED', des_claimed_by = 'gone#1', des_claimed_at = 1000 WHERE id = 1")
        let store = try await d.metadata()
        let lease = try #require(try await store.acquireLease(shard: 0, holder: LeaseHolder(pod: "gone", instance: "1"), ttlSeconds: 60))
        _ = try await store.createContainer(day: "2025-01-01", shard: 0, lease: lease, keyPrefix: "des")
        let meta = try await SQLiteConnection.open(path: d.dir + "/metadata.sqlite")
        _ = try await meta.withSession { try $0.execute("UPDATE des_containers SET updated_at = updated_at - 100") }
        await meta.close()
        let report = try await d.audit()
        #expect(!report.isOK)
        #expect(report.problems.contains { $0.contains("claimed for more than the lease TTL") }, "\(report.problems)")
        #expect(report.problems.contains { $0.contains("has been writing") }, "\(report.problems)")
    }
}

func readAll(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { throw DESKitError(.notFound, path) }
    return [UInt8](data)
}

@Suite("Marker on unnamable rows") struct MarkerDeadLetterTests {
    @Test("A row whose naming fails goes to the dead-letter table once, and --until-idle ends", .timeLimit(.minutes(3)))
    func unnamableRow() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(30, size: 16)
        _ = try await d.sql("UPDATE files SET body_path = '/' WHERE id = 3")  // no basename to name it by
        let first = try await d.marker(naming: KeyBasenameNaming(), shardBits: 1).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(first.marked == 29 && first.failed == 1)
        let second = try await d.marker(naming: KeyBasenameNaming(), shardBits: 1).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(second.marked == 0 && second.failed == 0)
        let letters = try await d.metadata().deadLetters(limit: 10)
        #expect(letters.count == 1 && letters.first?.rowID == "3" && letters.first?.stage == "marker")
        #expect(try await d.sql("SELECT des_status FROM files WHERE id = 3").first?[0].text == "DES_FAILED")
    }
}

@Suite("Metadata columns") struct MetadataColumnTests {
    @Test("A metadata column mapped to another META key (the original's mapping) is stored under that key")
    func renamedMetaKey() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(5, size: 8)
        _ = try await d.mark(shardBits: 1)
        var source = d.source
        source.table.columns.metadata = [MetadataColumn(key: "content_type", column: "mime")]
        let path = d.catalogPath
        let pool = SQLConnectionPool(size: 1) { try await SQLiteConnection.open(path: path) }
        let connector = try SQLSourceConnector(config: source, dialect: SQLiteDialect(), pool: pool)
        let claimed = try await connector.claim(shards: [0, 1], limit: 10, holder: "t#1")
        #expect(claimed.count == 5)
        #expect(claimed.allSatisfy { $0.metadata.keys == ["content_type"] && $0.metadata["content_type"]?.stringValue != nil })
        await connector.close()
    }
}

@Suite("Marker workers at once") struct MarkerConcurrencyTests {
    @Test("Eight marker workers name every row exactly once, and --until-idle ends when all are idle", .timeLimit(.minutes(3)))
    func eightWorkers() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(3000, size: 16)
        var config = MarkerConfig()
        config.concurrency = 8
        config.batchSize = 50
        let naming = SnowflakeNaming(generator: try SnowflakeGenerator(configuration: .init()))
        let marker = try await d.marker(naming: naming, shardBits: 2, config: config, poolSize: 4)
        let totals = try await marker.run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.marked == 3000 && totals.failed == 0)
        let rows = try await d.sql("SELECT COUNT(*), COUNT(DISTINCT des_name) FROM files WHERE des_name IS NOT NULL")
        #expect(rows.first?[0].int == 3000 && rows.first?[1].int == 3000)
    }
}

@Suite struct ClosedPoolTests {
    @Test("a pool closed on purpose fails at once with .closed, and the retry policy does not retry it (an outage it would)")
    func closedPoolIsNotRetried() async throws {
        let dir = NSTemporaryDirectory() + "des-closed-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/x.sqlite"
        let pool = SQLConnectionPool(size: 2) { try await SQLiteConnection.open(path: path) }
        _ = try await pool.withConnection { c in try await c.withSession { try $0.query("SELECT 1") } }
        await pool.close()
        let retries = Counter()
        do {
            _ = try await RetryPolicy.metadata.run(onRetry: { _, _ in retries.add() }) {
                try await pool.withConnection { c in try await c.withSession { try $0.query("SELECT 1") } }
            }
            Issue.record("a closed pool answered")
        } catch let error as DESKitError {
            #expect(error.code == .closed && !error.isTransient, "\(error)")
        }
        #expect(retries.value == 0)
        #expect(RetryPolicy.isTransient(DESKitError(.unavailable, "no answer from 10.0.0.1:5432")))
        #expect(!RetryPolicy.isTransient(DESKitError(.closed, "connection pool is closed")))
    }
}

/// A count that a non-escaping closure can bump.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
