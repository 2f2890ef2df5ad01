import DESEngine
import DESKit
import DESNaming
import DESStorage
import DESTestSupport
import Foundation
import Logging
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
        let run = try await runDES(["delete", "--reason", "request 4711", "--json"] + names + [never], config: config, in: d.dir)
        #expect(run.status == 66, "\(run)")
        let outcome = try jsonObject(run.out)
        #expect(Set(outcome["deleted"] as? [String] ?? []) == Set(names) && outcome["not_found"] as? [String] == [never], "\(outcome)")
        #expect(outcome["rows_marked"] as? Int == 2)
        let statuses = try await d.sql("SELECT id, des_status FROM files WHERE des_status <> 'DES_PACKED' ORDER BY id")
        #expect(statuses.map { "\($0[0].int ?? 0) \($0[1].text ?? "")" } == ["5 DES_DELETED", "6 DES_DELETED"])
        let got = try await runDES(["get", names[0], "-o", d.dir + "/x"], config: config, in: d.dir)
        #expect(got.status == 66 && got.err.contains("deleted") && got.err.contains("request 4711"), "\(got)")
        #expect(!FileManager.default.fileExists(atPath: d.dir + "/x"))
        let check = try await runDES(["check", "--json"], config: config, in: d.dir)
        #expect(check.status == 0, "\(check.out)")
        let report = try jsonObject(check.out)
        #expect(report["files_deleted"] as? Int == 2 && report["rows_checked"] as? Int == 38, "\(report)")
        let again = try await runDES(["delete", "--reason", "again", "--json", names[0]], config: config, in: d.dir)
        let againOutcome = try jsonObject(again.out)
        #expect(again.status == 0 && againOutcome["already_deleted"] as? [String] == [names[0]], "\(again)")
        #expect(try await d.metadata().tombstone(named: names[0])?.reason == "request 4711")
        let noReason = try await runDES(["delete", names[1]], config: config, in: d.dir)
        #expect(noReason.status == 64, "\(noReason)")
        let notAName = try await runDES(["delete", "--reason", "x", "garbage"], config: config, in: d.dir)
        #expect(notAName.status == 64 && notAName.err.contains("not a DES name"), "\(notAName)")
        let long = try await runDES(["delete", "--reason", String(repeating: "r", count: 2_001), names[1]], config: config, in: d.dir)
        #expect(long.status == 64 && long.err.contains("at most 2,000"), "\(long)")
        let kept = try #require(try await d.sql("SELECT des_name FROM files WHERE id = 7").first?[0].text)
        let forged = try await runDES(["delete", "--reason", "ticket\n2026-01-01 critical: forged", kept], config: config, in: d.dir)
        #expect(forged.status == 64 && forged.err.contains("control character"), "\(forged)")
        #expect(try await d.metadata().tombstone(named: kept) == nil, "a refused reason deleted the file")
    }

    @Test("A file whose container is lost from storage is deleted all the same when its row says it was packed; without such a row, the loss is the error")
    func deleteFromLostContainer() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(10, size: 64)
        _ = try await d.mark(shardBits: 1)
        _ = try await d.packer(shardBits: 1).run(shutdown: ShutdownSignal(), untilIdle: true)
        let config = try d.writeConfig(packer: "{work_dir: work, shard_bits: 1}")
        let row = try #require(try await d.sql("SELECT des_name, des_container FROM files WHERE id = 3").first)
        let (name, key) = (try #require(row[0].text), try #require(row[1].text))
        try FileManager.default.moveItem(atPath: d.dir + "/archive/" + key, toPath: d.dir + "/lost.des")
        let run = try await runDES(["delete", "--reason", "lost with its disk", "--json", name], config: config, in: d.dir)
        let outcome = try jsonObject(run.out)
        #expect(run.status == 0 && outcome["deleted"] as? [String] == [name], "\(run)")
        #expect(try await d.sql("SELECT des_status FROM files WHERE id = 3").first?[0].text == "DES_DELETED")
        // Restored from a backup, it stays deleted.
        try FileManager.default.moveItem(atPath: d.dir + "/lost.des", toPath: d.dir + "/archive/" + key)
        let got = try await runDES(["get", name, "-o", d.dir + "/x"], config: config, in: d.dir)
        #expect(got.status == 66 && got.err.contains("deleted"), "\(got)")
        // Another name of that container, its row no longer packed (failed by hand): the loss is the answer.
        let other = try #require(try await d.sql("SELECT des_name FROM files WHERE des_container = '\(key)' AND id <> 3").first?[0].text)
        _ = try await d.sql("UPDATE files SET des_status = 'DES_FAILED' WHERE des_name = '\(other)'")
        try FileManager.default.moveItem(atPath: d.dir + "/archive/" + key, toPath: d.dir + "/lost.des")
        let refused = try await runDES(["delete", "--reason", "x", other], config: config, in: d.dir)
        #expect(refused.status != 0 && refused.err.contains(key), "\(refused)")
        let stone = try await d.metadata().tombstone(named: other)
        #expect(stone == nil)
    }

    @Test("A reason is checked where every delete passes (des delete, DELETE /files, retention): something said, at most 2,000 bytes, printable")
    func reasonRules() async throws {
        for bad in ["", "   ", String(repeating: "r", count: 2_001), "a\nb", "a\rb", "tab\there", "nul\u{0}", "esc\u{1B}[31m", "nel\u{85}", "ls\u{2028}ps\u{2029}"] {
            #expect(FileDeleter.reasonProblem(bad) != nil, "\(bad.debugDescription)")
        }
        for good in ["GDPR request 4711", "ticket 7 ü", String(repeating: "r", count: 2_000), "bidi \u{202E} is kept (logs escape it)"] {
            #expect(FileDeleter.reasonProblem(good) == nil, "\(good.debugDescription)")
        }
        // The deleter itself refuses one, before any I/O.
        let d = try await Deployment.named(rows: 2)
        defer { d.cleanup() }
        let deleter = FileDeleter(
            sources: [], metadata: try await d.metadata(), storage: try LocalDiskStorage(root: d.dir + "/archive"), cache: nil, shardBits: 4,
            logger: Logger(label: "test"))
        await #expect(throws: DESKitError.self) { try await deleter.delete(names: ["DES_20250101_(21BCAA000100_88)"], reason: "a\nb") }
    }
}
