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
