import DESEngine
import DESFormat
import DESKit
import DESTestSupport
import Foundation
import Testing

/// `des check` reads each packed file as readers read it: an entry `des get` and `/files` refuse
/// is a problem, even when its bytes equal the body.
@Suite("The audit reads as readers do")
struct AuditReadsTests {
    @Test("An unsealed container whose META digest no longer matches fails the audit, though its bytes equal the bodies")
    func alteredDigest() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(10, size: 100)
        _ = try await d.mark(shardBits: 1)
        _ = try await d.packer(shardBits: 1).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(try await d.audit().problems.isEmpty)
        let record = try #require(try await d.metadata().containers(state: .uploaded, shard: nil, day: nil).first)
        let path = d.dir + "/archive/" + record.key
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // The first entry's recorded sha256 replaced by zeros (META, not the data), and the seal
        // cleared, as an unsealed archive carries none: the index still reads, the bytes are intact.
        let reader = try DESArchiveReader(path: path)
        let victim = try #require(reader.entries.first)
        let meta = Array(bytes[Int(victim.metaOffset)..<Int(victim.metaOffset + victim.metaLength)])
        let key = Array(#""sha256":""#.utf8)
        let at = try #require((0...(meta.count - key.count)).first { meta[$0..<($0 + key.count)].elementsEqual(key) })
        for i in 0..<64 { bytes[Int(victim.metaOffset) + at + key.count + i] = UInt8(ascii: "0") }
        for i in (bytes.count - 72 + 9)..<(bytes.count - 72 + 14) { bytes[i] = 0 }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let audit = try await d.audit()
        #expect(audit.problems.count == 1, "\(audit.problems)")
        #expect(audit.problems.first?.contains(victim.name) == true && audit.problems.first?.contains("does not read back") == true, "\(audit.problems)")
    }

    @Test("A recorded container lost from storage, and one that is garbage: each is a problem, with its rows, and the audit goes on to the others")
    func lostContainers() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(40, size: 100)
        _ = try await d.mark(shardBits: 1)
        _ = try await d.packer(shardBits: 1).run(shutdown: ShutdownSignal(), untilIdle: true)
        let records = try await d.metadata().containers(state: .uploaded, shard: nil, day: nil).sorted { $0.id < $1.id }
        try #require(records.count >= 2, "two shards, a container each")
        let (lost, garbage) = (records[0], records[1])
        try FileManager.default.removeItem(atPath: d.dir + "/archive/" + lost.key)
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: d.dir + "/archive/" + garbage.key))
        let audit = try await d.audit()
        #expect(audit.containers == records.count, "every container counted")
        #expect(audit.problems.contains { $0.contains(lost.key) && $0.contains("not in storage") }, "\(audit.problems)")
        #expect(audit.problems.contains { $0.contains(garbage.key) && $0.contains("cannot be read") }, "\(audit.problems)")
        // Each row of the two is named; the rows of any other container check out.
        let rowProblems = audit.problems.filter { $0.contains("which cannot be read") }
        #expect(rowProblems.count == lost.fileCount + garbage.fileCount, "\(audit.problems)")
        #expect(audit.rowsChecked == 40)
    }
}
