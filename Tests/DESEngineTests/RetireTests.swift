import DESEngine
import DESKit
import DESTestSupport
import Foundation
import Testing

/// `des retire`, as a user runs it: the real binary over a packed deployment.
@Suite("Retiring source bodies") struct RetireTests {
    /// A config over the deployment whose bodies are retired `delay` after packing.
    static func config(_ d: Deployment, delay: String, name: String = "retire.yaml") throws -> String {
        try d.writeConfig(packer: "{work_dir: work, shard_bits: 2}", name: name, bodies: "delete_after_pack: \(delay)")
    }

    static func bodies(_ d: Deployment) -> Set<String> { bodies(under: d.bodiesRoot) }

    /// The files (not directories) under `root`, as paths relative to it.
    static func bodies(under root: String) -> Set<String> {
        Set((FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).filter {
            var dir: ObjCBool = false
            return FileManager.default.fileExists(atPath: root + "/" + $0, isDirectory: &dir) && !dir.boolValue
        })
    }

    @Test("A dry run lists and deletes nothing; the run deletes every proven body, keeps and dead-letters the two rewritten since packing, marks the rows; des check reads the retired files back from their containers and reports only the two rewritten bodies")
    func retireLocal() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(60, size: 200)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2, maxFiles: 25).run(shutdown: ShutdownSignal(), untilIdle: true)
        let config = try Self.config(d, delay: "0s")
        // Two bodies rewritten after packing: one with other bytes of the same size, one longer.
        let paths = try await d.sql("SELECT body_path FROM files WHERE id IN (7, 41) ORDER BY id").compactMap { $0[0].text }
        try Data(repeating: 0x5A, count: 200).write(to: URL(fileURLWithPath: d.bodiesRoot + "/" + paths[0]))
        try Data(repeating: 0x5B, count: 333).write(to: URL(fileURLWithPath: d.bodiesRoot + "/" + paths[1]))
        let before = Self.bodies(d)
        #expect(before.count == 60)

        let dry = try await runDES(["retire", "--dry-run", "--json"], config: config, in: d.dir)
        #expect(dry.status == 0, "\(dry.err)")
        let plan = try jsonObject(dry.out)
        #expect(plan["would_delete_count"] as? Int == 58 && (plan["would_delete"] as? [String])?.count == 58 && plan["deleted"] == nil, "\(plan)")
        #expect(Self.bodies(d) == before)
        #expect(try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_PACKED'").first?[0].int == 60)
        #expect(try await d.metadata().deadLetters(limit: 10).isEmpty, "a dry run wrote letters")

        let run = try await runDES(["retire", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(run.status == 0, "\(run.err)")
        let done = try jsonObject(run.out)
        #expect(done["deleted"] as? Int == 58 && done["bytes"] as? Int == 58 * 200, "\(done)")
        #expect((done["skipped"] as? [String: Int])?["body_changed"] == 2, "\(done)")
        #expect(Self.bodies(d) == Set(paths))
        let statuses = try await d.sql("SELECT des_status, COUNT(*) FROM files GROUP BY des_status ORDER BY des_status")
        #expect(statuses.map { "\($0[0].text ?? "") \($0[1].int ?? 0)" } == ["DES_PACKED 2", "DES_SOURCE_DELETED 58"])
        let letters = try await d.metadata().deadLetters(matching: DeadLetterQuery(stage: "retire"))
        #expect(Set(letters.map(\.letter.rowID)) == ["7", "41"] && letters.allSatisfy { $0.letter.reason.contains("changed since it was packed") })

        // A second run finds nothing to do and keeps the lettered rows' bodies.
        let again = try await runDES(["retire", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(try jsonObject(again.out)["deleted"] as? Int == 0)
        #expect((try jsonObject(again.out)["skipped"] as? [String: Int])?["dead_lettered"] == 2)
        // The audit reads every retired file back against its sha256; only the two rewritten bodies differ.
        let audit = try await d.audit()
        #expect(audit.rowsChecked == 60 && audit.rowsRetired == 58, "\(audit)")
        #expect(audit.problems.count == 2 && audit.problems.allSatisfy { $0.contains("differ from the body") }, "\(audit.problems)")
        let check = try await runDES(["check"], config: config, in: d.dir)
        #expect(check.status == 65, "\(check.out) \(check.err)")
        // The retired files read back from their containers.
        let name = try #require(try await d.sql("SELECT des_name FROM files WHERE id = 3").first?[0].text)
        let got = try await runDES(["get", name, "-o", d.dir + "/got.bin"], config: config, in: d.dir)
        #expect(got.status == 0, "\(got.err)")
        #expect((try? Data(contentsOf: URL(fileURLWithPath: d.dir + "/got.bin")))?.count == 200)
    }

    @Test("A body two rows list: kept while one is not yet packed; once both are, deleted once and both rows marked retired, with no letter; des check passes")
    func sharedBodies() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(20, size: 200)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        // Row 1001 lists row 6's body and is packed too; row 1000 lists row 5's and is new.
        _ = try await d.sql("INSERT INTO files (id, body_path, size_bytes) SELECT 1001, body_path, size_bytes FROM files WHERE id = 6")
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        _ = try await d.sql("INSERT INTO files (id, body_path, size_bytes) SELECT 1000, body_path, size_bytes FROM files WHERE id = 5")
        let shared = try #require(try await d.sql("SELECT body_path FROM files WHERE id = 5").first?[0].text)
        let config = try Self.config(d, delay: "0s")

        let run = try await runDES(["retire", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(run.status == 0, "\(run.err)")
        let done = try jsonObject(run.out)
        #expect(done["deleted"] as? Int == 20 && (done["skipped"] as? [String: Int])?["body_needed_by_unpacked_row"] == 1, "\(done)")
        #expect(Self.bodies(d) == [shared], "only the body the new row needs is left")
        let statuses = try await d.sql("SELECT id, des_status FROM files WHERE id IN (5, 6, 1000, 1001) ORDER BY id").map { "\($0[0].int ?? 0) \($0[1].text ?? "-")" }
        #expect(statuses == ["5 DES_PACKED", "6 DES_SOURCE_DELETED", "1000 -", "1001 DES_SOURCE_DELETED"], "\(statuses)")
        #expect(try await d.metadata().deadLetters(limit: 10).isEmpty)

        // The new row packed, then retired with row 5 (in one batch or two): the body goes once, no letter.
        _ = try await d.mark(shardBits: 2)
        let packed = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(packed.filesPacked == 1)
        let again = try await runDES(["retire", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(again.status == 0, "\(again.err)")
        #expect(Self.bodies(d).isEmpty)
        #expect(try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_SOURCE_DELETED'").first?[0].int == 22)
        #expect(try await d.metadata().deadLetters(limit: 10).isEmpty, "no row taken for a missing body")
        let audit = try await d.audit()
        #expect(audit.isOK && audit.rowsRetired == 22, "\(audit.problems)")
    }

    @Test("A body a row not yet packed reaches under another spelling (./, //, a linked directory, a linked file) is kept; so is one a kept row of the batch lists")
    func aliasedBodies() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(20, size: 200)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        let paths = Dictionary(uniqueKeysWithValues: try await d.sql("SELECT id, body_path FROM files").compactMap { r in r[1].text.map { (r[0].int ?? 0, $0) } })
        let (p5, p6, p7, p8) = (try #require(paths[5]), try #require(paths[6]), try #require(paths[7]), try #require(paths[8]))
        // Row 1001 lists row 6's body, is packed, and has a retire letter: its body is kept, so row 6's is too.
        _ = try await d.sql("INSERT INTO files (id, body_path, size_bytes) SELECT 1001, body_path, size_bytes FROM files WHERE id = 6")
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        try await d.metadata().addDeadLetters([DeadLetter(source: "catalog", rowID: "1001", desName: nil, stage: "retire", reason: "kept by hand")])
        // New rows reaching rows 5, 7 and 8's bodies under other spellings.
        let dir7 = (p7 as NSString).deletingLastPathComponent
        try FileManager.default.createSymbolicLink(atPath: d.bodiesRoot + "/linked", withDestinationPath: d.bodiesRoot + "/" + dir7)
        try FileManager.default.createSymbolicLink(atPath: d.bodiesRoot + "/alias8", withDestinationPath: d.bodiesRoot + "/" + p8)
        let spellings = [(2001, "./" + p5), (2002, p5.replacingOccurrences(of: "/", with: "//")), (2003, "linked/" + (p7 as NSString).lastPathComponent), (2004, "alias8")]
        for (id, key) in spellings { _ = try await d.sql("INSERT INTO files (id, body_path, size_bytes) VALUES (\(id), '\(key)', 200)") }
        let config = try Self.config(d, delay: "0s")

        let run = try await runDES(["retire", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(run.status == 0, "\(run.err)")
        let done = try jsonObject(run.out)
        let skipped = done["skipped"] as? [String: Int] ?? [:]
        #expect(skipped["body_needed_by_unpacked_row"] == 3 && skipped["body_needed_by_kept_row"] == 1 && skipped["dead_lettered"] == 1, "\(done)")
        #expect(done["deleted"] as? Int == 16, "\(done)")
        #expect(Self.bodies(d) == [p5, p6, p7, p8, "alias8"], "\(Self.bodies(d))")
        // The new rows are packed from the bodies kept for them.
        _ = try await d.mark(shardBits: 2)
        let packed = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(packed.filesPacked == 4 && packed.filesFailed == 0)
    }

    @Test("Bodies younger than delete_after_pack are kept (too_young); without any opted-in source, des retire refuses with exit 65")
    func delayAndOptIn() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(10, size: 50)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        let later = try await runDES(["retire", "--until-idle", "--json"], config: try Self.config(d, delay: "1h"), in: d.dir)
        #expect(later.status == 0, "\(later.err)")
        let totals = try jsonObject(later.out)
        #expect(totals["deleted"] as? Int == 0 && (totals["skipped"] as? [String: Int])?["too_young"] == 10, "\(totals)")
        #expect(Self.bodies(d).count == 10)
        let plain = try d.writeConfig(packer: "{work_dir: work, shard_bits: 2}")
        let refused = try await runDES(["retire", "--until-idle"], config: plain, in: d.dir)
        #expect(refused.status == 65 && refused.err.contains("delete_after_pack"), "\(refused)")
        let badConfig = try Self.config(d, delay: "soon", name: "bad.yaml")
        let bad = try await runDES(["config", "check", badConfig], config: "", in: d.dir)
        #expect(bad.status != 0 && bad.err.contains("delete_after_pack") && bad.err.contains("expected a duration"), "\(bad)")
    }

    @Test("A body replaced after packing by a link leading outside the root (same bytes) is kept, and what it points at is untouched")
    func linkOutsideRoot() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(5, size: 64)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        let path = try #require(try await d.sql("SELECT body_path FROM files WHERE id = 2").first?[0].text)
        let outside = d.dir + "/outside.bin"
        try FileManager.default.moveItem(atPath: d.bodiesRoot + "/" + path, toPath: outside)
        try FileManager.default.createSymbolicLink(atPath: d.bodiesRoot + "/" + path, withDestinationPath: outside)
        let run = try await runDES(["retire", "--until-idle", "--json"], config: try Self.config(d, delay: "0s"), in: d.dir)
        #expect(run.status == 0, "\(run.err)")
        #expect(try jsonObject(run.out)["deleted"] as? Int == 4)
        #expect(FileManager.default.fileExists(atPath: outside))
        #expect(try await d.sql("SELECT des_status FROM files WHERE id = 2").first?[0].text == "DES_PACKED")
    }

    @Test("kill -9 the retire worker again and again: in the end every body is gone once, every row marked, nothing else touched, des check passes")
    func killNine() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(3000, size: 32)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        let config = try Self.config(d, delay: "0s")
        var kills = 0
        for round in 0..<40 {
            // Killed from a thread of its own once it has deleted a body this round (then a
            // moment later, varied by round), so the kill lands mid-run however busy the
            // cooperative pool is with the tests running beside this one.
            let before = Self.bodies(d).count
            let p = try startDES(["retire", "--until-idle", "--batch-size", "50"], config: config)
            let pid = p.processIdentifier
            let linger = useconds_t((round % 5) * 3_000)
            let root = d.bodiesRoot
            let watcher = ProcessWatcher(process: p, when: { Self.bodies(under: root).count < before }) {
                usleep(linger)
                return kill(pid, SIGKILL) == 0
            }
            if await watcher.finished() { kills += 1 }
            await d.wait(p)
            let left = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_PACKED'").first?[0].int ?? -1
            if left == 0 { break }
        }
        let last = try startDES(["retire", "--until-idle"], config: config)
        await d.wait(last)
        #expect(last.terminationStatus == 0)
        print("retire crash test: \(kills) kills")
        #expect(kills >= 5, "the worker finished before it could be killed often enough; give it more rows")
        #expect(Self.bodies(d).isEmpty)
        #expect(try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_SOURCE_DELETED'").first?[0].int == 3000)
        #expect(try await d.metadata().deadLetters(limit: 5).isEmpty)
        let audit = try await d.audit()
        #expect(audit.isOK && audit.rowsRetired == 3000, "\(audit.problems)")
    }

    @Test("Bodies missing that retire did not delete (an empty volume at the root) leave their rows packed and dead-lettered; once the bodies are back and the letters retried, retire deletes them")
    func missingWithoutIntent() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(20, size: 30)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        let config = try Self.config(d, delay: "0s")
        try FileManager.default.moveItem(atPath: d.bodiesRoot, toPath: d.dir + "/bodies.real")
        try FileManager.default.createDirectory(atPath: d.bodiesRoot, withIntermediateDirectories: true)
        let run = try await runDES(["retire", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(run.status == 0, "\(run.err)")
        let totals = try jsonObject(run.out)
        #expect(totals["deleted"] as? Int == 0 && (totals["skipped"] as? [String: Int])?["body_missing"] == 20, "\(totals)")
        #expect(try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_PACKED'").first?[0].int == 20)
        try FileManager.default.removeItem(atPath: d.bodiesRoot)
        try FileManager.default.moveItem(atPath: d.dir + "/bodies.real", toPath: d.bodiesRoot)
        let retried = try await runDES(["dlq", "retry", "--stage", "retire"], config: config, in: d.dir)
        #expect(retried.status == 0 && retried.out.contains("closed 20"), "\(retried)")
        let again = try await runDES(["retire", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(try jsonObject(again.out)["deleted"] as? Int == 20, "\(again)")
        #expect(Self.bodies(d).isEmpty)
    }

    @Test("A catalog that refuses the retired status (a trigger) stops des retire before any body is deleted")
    func statusRefused() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(10, size: 30)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        _ = try await d.sql(
            "CREATE TRIGGER no_retire BEFORE UPDATE OF des_status ON files WHEN NEW.des_status = 'DES_SOURCE_DELETED' "
                + "BEGIN SELECT RAISE(ABORT, 'retiring is not allowed here'); END")
        let run = try await runDES(["retire", "--until-idle"], config: try Self.config(d, delay: "0s"), in: d.dir)
        #expect(run.status == 78 && run.err.contains("refuses status_source_deleted_value") && run.err.contains("rolled back"), "\(run)")
        #expect(Self.bodies(d).count == 10)
        #expect(try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_PACKED'").first?[0].int == 10)
    }
}
