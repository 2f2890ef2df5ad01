import DESEngine
import DESFormat
import DESKit
import DESNaming
import DESPluginSQLite
import Foundation
import Testing

// Claims (8 concurrent claimers, the shard filter) and leases (grants, takeover, fencing) are checked
// once for every plugin by the conformance kit (DESKitTesting); ConformanceTests.swift runs it on SQLite.

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

    @Test("a backlog named on closed days fills one container per (day, shard), not one per batch")
    func closedDayBacklog() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let days = [now - 2 * 86_400_000, now - 86_400_000]
        try await d.addRows(240, size: 10)
        _ = try await d.mark(shardBits: 3, clock: { days[0] })
        try await d.addRows(240, size: 10, seed: 2)
        _ = try await d.mark(shardBits: 3, clock: { days[1] })
        try await d.addRows(100, size: 10, seed: 3)
        _ = try await d.mark(shardBits: 3)
        // (At most 256 names a millisecond: the fixed clocks allow 240 a day.) Batches of 20 over
        // 8 shards: each brings a shard some 2 or 3 files of the day being read, and none often.
        let totals = try await d.packer(shardBits: 3, batchSize: 20).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == 580)
        let containers = try await d.metadata().containers(state: .uploaded, shard: nil, day: nil)
        for (i, ms) in days.enumerated() {
            let day = utcDay(milliseconds: ms)
            let iso = "\(day.prefix(4))-\(day.dropFirst(4).prefix(2))-\(day.suffix(2))"
            let first = i * 240
            let shards = try await d.sql("SELECT COUNT(DISTINCT des_shard) AS n FROM files WHERE id > \(first) AND id <= \(first + 240)")[0]["n"].int
            let ofDay = containers.filter { $0.day == iso }
            #expect(ofDay.reduce(0) { $0 + $1.fileCount } == 240)
            #expect(Int64(ofDay.count) == shards, "\(iso): \(ofDay.count) containers for \(shards ?? 0) shards")
        }
        #expect(try await d.audit().isOK)
    }

    @Test("a row whose shard is not its name's is dead-lettered, not packed where no reader looks")
    func staleShard() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(20, size: 10)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.sql("UPDATE files SET des_shard = (des_shard + 1) % 4 WHERE id <= 3")
        let totals = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == 17 && totals.filesFailed == 3)
        let failed = try await d.sql("SELECT id, des_error FROM files WHERE des_status = 'DES_FAILED' ORDER BY id")
        #expect(failed.map { $0[0].int } == [1, 2, 3])
        #expect(failed.allSatisfy { $0[1].text?.contains("is not its name's shard") == true }, "\(failed)")
        #expect(try await d.audit().isOK)
    }

    @Test("des check, with snowflake naming, names a row packed under a name that is not a DES name (des get refuses it)")
    func undesNamedRow() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(10, size: 10)
        _ = try await d.mark(shardBits: 2)
        // A hand-written name with a day that is no calendar day, given its own shard (so the packer packs it).
        let odd = "T_20250230_(000000000001_01)"
        _ = try await d.sql("UPDATE files SET des_name = '\(odd)', des_shard = \(consistentHash(odd, bits: 2)) WHERE id = 4")
        let totals = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == 10)
        #expect(try await d.audit().isOK, "without the naming rule: the bytes are there")
        let strict = try await d.audit(desNamesOnly: true)
        #expect(strict.problems.count == 1 && strict.problems.first?.contains("row 4: packed under \(odd), which is not a DES name") == true, "\(strict.problems)")
    }

    @Test("a container closes at max_container_files and a new one opens")
    func sizeRollover() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(35, size: 10)
        _ = try await d.mark(shardBits: 1)
        let totals = try await d.packer(shardBits: 1, maxFiles: 10).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == 35)
        let counts = try await d.metadata().containers(state: .uploaded, shard: nil, day: nil).map(\.fileCount)
        #expect(counts.count >= 4 && counts.allSatisfy { $0 <= 10 } && counts.reduce(0, +) == 35)
        #expect(try await d.audit().isOK)
    }
}
