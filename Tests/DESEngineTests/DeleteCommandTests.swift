import DESEngine
import DESKit
import DESNaming
import DESTestSupport
import Foundation
import Testing

/// `des delete`, and what a tombstone does to `des get` and `des check`.
@Suite("des delete") struct DeleteCommandTests {
    @Test("Two files deleted by name (and one unknown: exit 66): their rows DES_DELETED, des get exits 66 saying deleted, des check passes counting them as deleted; deleting again changes nothing")
    func deleteByName() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(40, size: 64)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2, maxFiles: 15).run(shutdown: ShutdownSignal(), untilIdle: true)
        let config = try d.writeConfig(packer: "{work_dir: work, shard_bits: 2}")
        let names = try await d.sql("SELECT des_name FROM files WHERE id IN (5, 6) ORDER BY id").compactMap { $0[0].text }
        let never = try SnowflakeGenerator(configuration: .init(prefix: "T", node: 99)).next(count: 1)[0].description
        let run = try await DeadLetterCommandTests.des(["delete", "--reason", "request 4711", "--json"] + names + [never], config: config, dir: d.dir)
        #expect(run.status == 66, "\(run)")
        let outcome = try DeadLetterCommandTests.json(run.out)
        #expect(Set(outcome["deleted"] as? [String] ?? []) == Set(names) && outcome["not_found"] as? [String] == [never], "\(outcome)")
        #expect(outcome["rows_marked"] as? Int == 2)
        let statuses = try await d.sql("SELECT id, des_status FROM files WHERE des_status <> 'DES_PACKED' ORDER BY id")
        #expect(statuses.map { "\($0[0].int ?? 0) \($0[1].text ?? "")" } == ["5 DES_DELETED", "6 DES_DELETED"])
        let got = try await DeadLetterCommandTests.des(["get", names[0], "-o", d.dir + "/x"], config: config, dir: d.dir)
        #expect(got.status == 66 && got.err.contains("deleted") && got.err.contains("request 4711"), "\(got)")
        #expect(!FileManager.default.fileExists(atPath: d.dir + "/x"))
        let check = try await DeadLetterCommandTests.des(["check", "--json"], config: config, dir: d.dir)
        #expect(check.status == 0, "\(check.out)")
        let report = try DeadLetterCommandTests.json(check.out)
        #expect(report["files_deleted"] as? Int == 2 && report["rows_checked"] as? Int == 38, "\(report)")
        let again = try await DeadLetterCommandTests.des(["delete", "--reason", "again", "--json", names[0]], config: config, dir: d.dir)
        let againOutcome = try DeadLetterCommandTests.json(again.out)
        #expect(again.status == 0 && againOutcome["already_deleted"] as? [String] == [names[0]], "\(again)")
        #expect(try await d.metadata().tombstone(named: names[0])?.reason == "request 4711")
        let noReason = try await DeadLetterCommandTests.des(["delete", names[1]], config: config, dir: d.dir)
        #expect(noReason.status == 64, "\(noReason)")
        let notAName = try await DeadLetterCommandTests.des(["delete", "--reason", "x", "garbage"], config: config, dir: d.dir)
        #expect(notAName.status == 64 && notAName.err.contains("not a DES name"), "\(notAName)")
        let long = try await DeadLetterCommandTests.des(["delete", "--reason", String(repeating: "r", count: 2_001), names[1]], config: config, dir: d.dir)
        #expect(long.status == 64 && long.err.contains("at most 2,000"), "\(long)")
    }
}
