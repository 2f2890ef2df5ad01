import DESEngine
import DESFormat
import DESKit
import DESNaming
import DESPluginSQLite
import Foundation
import Testing

@Suite("Claims") struct ClaimTests {
    @Test("8 concurrent claimers over 20,000 rows: every row exactly once")
    func concurrentClaims() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(20_000, size: 8)
        #expect(try await d.mark(shardBits: 4) == 20_000)
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for i in 0..<8 {
                let connector = try d.connector()
                group.addTask {
                    var mine: [String] = []
                    while true {
                        let batch = try await connector.claim(shards: Array(0..<16), limit: 97, holder: "claimer-\(i)")
                        if batch.isEmpty { return mine }
                        mine += batch.map(\.rowID)
                    }
                }
            }
            var all: [[String]] = []
            for try await ids in group { all.append(ids) }
            return all
        }
        let flat = claimed.flatMap { $0 }
        #expect(flat.count == 20_000)
        #expect(Set(flat).count == 20_000)
        #expect(claimed.filter { !$0.isEmpty }.count > 1)  // the work really was shared
    }

    @Test("the shard filter is applied before the limit")
    func shardFilter() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(3000, size: 8)
        _ = try await d.mark(shardBits: 4)
        _ = try await d.sql("UPDATE files SET des_shard = 1")
        _ = try await d.sql("UPDATE files SET des_shard = 7 WHERE id IN (2990, 2995, 2999)")
        let c = try d.connector()
        let first = try await c.claim(shards: [7], limit: 2, holder: "h")
        #expect(first.count == 2 && first.allSatisfy { $0.shard == 7 })
        let second = try await c.claim(shards: [7], limit: 2, holder: "h")
        #expect(second.map(\.rowID) == ["2999"])
        #expect(try await c.claim(shards: [7], limit: 2, holder: "h").isEmpty)
    }
}

@Suite("Leases") struct LeaseTests {
    @Test("takeover after expiry bumps the token; the stale holder's writes are fenced")
    func takeoverAndFencing() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let store = try await d.metadata()
        let a = LeaseHolder(pod: "a", instance: "1"), b = LeaseHolder(pod: "b", instance: "1")
        let leaseA = try #require(try await store.acquireLease(shard: 3, holder: a, ttlSeconds: 0.3))
        let container = try await store.createContainer(day: "2025-01-01", shard: 3, lease: leaseA, keyPrefix: "des")
        #expect(container.key == "des/2025-01-01/shard_03_c000001.des")
        #expect(try await store.acquireLease(shard: 3, holder: b, ttlSeconds: 10) == nil)
        try await Task.sleep(nanoseconds: 500_000_000)  // past the 0.3 s TTL, in database time
        let leaseB = try #require(try await store.acquireLease(shard: 3, holder: b, ttlSeconds: 10))
        #expect(leaseB.token == leaseA.token + 1)
        #expect(leaseB.isNewGrant)
        #expect(try await store.renewLease(leaseA, ttlSeconds: 10) == nil)
        #expect(try await store.markUploaded(containerID: container.id, fileCount: 1, bytes: 1, size: 1, etag: "x", lease: leaseA) == false)
        await #expect(throws: DESKitError.self) {
            try await store.checkpoint(containerID: container.id, fileCount: 1, bytes: 1, lease: leaseA)
        }
        await #expect(throws: DESKitError.self) {
            _ = try await store.createContainer(day: "2025-01-01", shard: 3, lease: leaseA, keyPrefix: "des")
        }
        // Another live instance of the same pod never takes the live lease; once the holder is
        // known dead its lease can be ended at once, and the new instance takes it with a new token.
        let b2holder = LeaseHolder(pod: "b", instance: "2")
        #expect(try await store.acquireLease(shard: 3, holder: b2holder, ttlSeconds: 10) == nil)
        #expect(try await store.expireLease(shard: 3, holder: b2holder) == false)  // not the holder: nothing ended
        #expect(try await store.expireLease(shard: 3, holder: b))
        let b2 = try #require(try await store.acquireLease(shard: 3, holder: b2holder, ttlSeconds: 10))
        #expect(b2.token == leaseB.token + 1)
        #expect(b2.isNewGrant)
        // The same instance renewing its own live lease keeps the token.
        let again = try #require(try await store.acquireLease(shard: 3, holder: b2holder, ttlSeconds: 10))
        #expect(again.token == b2.token && !again.isNewGrant)
        #expect(try await store.markUploaded(containerID: container.id, fileCount: 1, bytes: 1, size: 1, etag: "x", lease: leaseB) == false)
    }
}

@Suite("Packer") struct PackerTests {
    @Test("a missing body goes to the dead-letter table; the rest are packed and read back")
    func deadLetter() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(50, size: 100)
        _ = try await d.mark(shardBits: 2)
        let victim = try #require(try await d.sql("SELECT body_path FROM files WHERE id = 7").first?[0].text)
        try FileManager.default.removeItem(atPath: d.bodiesRoot + "/" + victim)
        let totals = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == 49 && totals.filesFailed == 1)
        let row = try #require(try await d.sql("SELECT des_status, des_error FROM files WHERE id = 7").first)
        #expect(row[0].text == "DES_FAILED")
        #expect(row[1].text?.contains("no such file") == true)
        let letters = try await d.metadata().deadLetters(limit: 10)
        #expect(letters.count == 1 && letters[0].rowID == "7" && letters[0].stage == "packer")
        let audit = try await d.audit()
        #expect(audit.isOK, "\(audit.problems)")
        #expect(audit.rowsChecked == 49)
    }

    @Test("a name from yesterday goes into yesterday's container")
    func dayRollover() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(20, size: 10)
        let yesterday = UInt64(Date().timeIntervalSince1970 * 1000) - 86_400_000
        _ = try await d.mark(shardBits: 1, clock: { yesterday })
        try await d.addRows(20, size: 10, seed: 2)
        _ = try await d.mark(shardBits: 1)
        _ = try await d.packer(shardBits: 1).run(shutdown: ShutdownSignal(), untilIdle: true)
        let day = utcDay(milliseconds: yesterday)
        let isoYesterday = "\(day.prefix(4))-\(day.dropFirst(4).prefix(2))-\(day.suffix(2))"
        let containers = try await d.metadata().containers(state: .uploaded, shard: nil, day: nil)
        let old = containers.filter { $0.day == isoYesterday }
        #expect(old.reduce(0) { $0 + $1.fileCount } == 20)
        #expect(old.allSatisfy { $0.key.hasPrefix("des/\(isoYesterday)/") })
        let reader = StorageArchiveReader(storage: try d.storage())
        for row in try await d.sql("SELECT des_name, des_container FROM files WHERE id <= 20") {
            #expect(row[1].text?.contains(isoYesterday) == true)
            let name = try #require(row[0].text), key = try #require(row[1].text)
            #expect(try await reader.file(named: name, key: key)?.count == 10)
        }
        #expect(try await d.audit().isOK)
    }

    @Test("a container closes at max_container_files and a new one opens")
    func sizeRollover() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(35, size: 10)
        _ = try await d.mark(shardBits: 1)
        _ = try await d.sql("UPDATE files SET des_shard = 0")
        let totals = try await d.packer(shardBits: 1, maxFiles: 10).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == 35)
        let counts = try await d.metadata().containers(state: .uploaded, shard: 0, day: nil).map(\.fileCount)
        #expect(counts.count >= 4 && counts.allSatisfy { $0 <= 10 } && counts.reduce(0, +) == 35)
        #expect(try await d.audit().isOK)
    }
}
