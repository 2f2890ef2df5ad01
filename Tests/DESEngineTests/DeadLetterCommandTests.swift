import DESEngine
import DESKit
import DESTestSupport
import Foundation
import Testing

/// `des dlq list|retry|resolve`, run as a user would: the real binary over a deployment.
@Suite("des dlq") struct DeadLetterCommandTests {
    /// Runs `des dlq ARGS -c CONFIG`; its exit status, stdout and stderr.
    static func dlq(_ args: [String], config: String, dir: String) async throws -> (status: Int32, out: String, err: String) {
        try await runDES(["dlq"] + args, config: config, in: dir)
    }

    @Test("Rows failed for missing bodies are listed, refused without a filter, sent back by retry once their bodies return, packed, and their letters closed")
    func retryPackerLetters() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(30, size: 100)
        _ = try await d.mark(shardBits: 2)
        let config = try d.writeConfig(packer: "{work_dir: work, shard_bits: 2}")
        // Three bodies moved away: the packer dead-letters their rows.
        let victims = try await d.sql("SELECT body_path FROM files WHERE id IN (3, 14, 25) ORDER BY id").compactMap { $0[0].text }
        try #require(victims.count == 3)
        for v in victims { try FileManager.default.moveItem(atPath: d.bodiesRoot + "/" + v, toPath: d.dir + "/aside-" + v.replacingOccurrences(of: "/", with: "_")) }
        let first = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(first.filesPacked == 27 && first.filesFailed == 3)

        let listed = try await Self.dlq(["list", "--json"], config: config, dir: d.dir)
        #expect(listed.status == 0, "\(listed.err)")
        let letters = try #require(try jsonObject(listed.out)["letters"] as? [[String: Any]])
        #expect(Set(letters.compactMap { $0["row_id"] as? String }) == ["3", "14", "25"])
        #expect(letters.allSatisfy { ($0["stage"] as? String) == "packer" && ($0["reason"] as? String)?.contains("no such file") == true && $0["resolved_at"] is NSNull })

        let unnamed = try await Self.dlq(["retry"], config: config, dir: d.dir)
        #expect(unnamed.status == 64 && unnamed.err.contains("--all"), "\(unnamed)")
        let badStage = try await Self.dlq(["retry", "--stage", "packing"], config: config, dir: d.dir)
        #expect(badStage.status == 64 && badStage.err.contains("marker, packer or retire"), "\(badStage)")

        for v in victims { try FileManager.default.moveItem(atPath: d.dir + "/aside-" + v.replacingOccurrences(of: "/", with: "_"), toPath: d.bodiesRoot + "/" + v) }
        let retried = try await Self.dlq(["retry", "--stage", "packer", "--json"], config: config, dir: d.dir)
        #expect(retried.status == 0, "\(retried.err)")
        let outcome = try jsonObject(retried.out)
        #expect(outcome["letters_closed"] as? Int == 3 && outcome["rows_to_packing"] as? Int == 3, "\(outcome)")
        let pending = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_TODO' AND des_error IS NULL AND des_claimed_by IS NULL").first?[0].int
        #expect(pending == 3)

        let second = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(second.filesPacked == 3 && second.filesFailed == 0)
        let audit = try await d.audit()
        #expect(audit.isOK && audit.rowsChecked == 30, "\(audit.problems)")
        let open = try await Self.dlq(["list", "--json"], config: config, dir: d.dir)
        #expect(try jsonObject(open.out)["count"] as? Int == 0)
        let all = try await Self.dlq(["list", "--all", "--json"], config: config, dir: d.dir)
        let closed = try #require(try jsonObject(all.out)["letters"] as? [[String: Any]])
        #expect(closed.count == 3 && closed.allSatisfy { $0["resolved_at"] is Double })
    }

    @Test("A hostile body path (escape sequences, a line break) is listed escaped by des dlq list and des status: one line a letter, no terminal control")
    func hostileReasonsEscaped() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(3, size: 100)
        let hostile = "evil\u{1b}[2J\u{1b}[31mFAKE\nOK: all good"
        _ = try await d.sql("UPDATE files SET body_path = '\(hostile)' WHERE id = 2")
        _ = try await d.mark(shardBits: 1)
        let config = try d.writeConfig(packer: "{work_dir: work, shard_bits: 1}")
        let run = try await d.packer(shardBits: 1).run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(run.filesPacked == 2 && run.filesFailed == 1)
        let listed = try await Self.dlq(["list"], config: config, dir: d.dir)
        #expect(listed.status == 0, "\(listed.err)")
        let status = try await runDES(["status"], config: config, in: d.dir)
        #expect(status.status == 0, "\(status.err)")
        for (what, text) in [("dlq list", listed.out), ("status", status.out)] {
            #expect(!text.unicodeScalars.contains("\u{1b}"), "\(what): \(text)")
            #expect(text.contains("evil\\x1b[2J") && text.contains("FAKE\\nOK: all good"), "\(what): \(text)")
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("OK: all good") }, "\(what): a line forged")
        }
        // --json keeps the text as it is (JSON escapes it).
        let json = try await Self.dlq(["list", "--json"], config: config, dir: d.dir)
        let letters = try #require(try jsonObject(json.out)["letters"] as? [[String: Any]])
        #expect((letters.first?["reason"] as? String)?.contains(hostile) == true)
    }

    @Test("A letter of a source the config lacks is left open by retry (exit 1, saying why) and closed by resolve; retire letters are closed by retry without touching the row")
    func unknownSourceAndRetire() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(5, size: 10)
        _ = try await d.mark(shardBits: 1)
        _ = try await d.packer(shardBits: 1).run(shutdown: ShutdownSignal(), untilIdle: true)
        let config = try d.writeConfig(packer: "{work_dir: work, shard_bits: 1}")
        try await d.metadata().addDeadLetters([
            DeadLetter(source: "gone", rowID: "1", desName: nil, stage: "packer", reason: "a source since removed"),
            DeadLetter(source: "catalog", rowID: "2", desName: nil, stage: "retire", reason: "body changed since it was packed"),
        ])
        let retried = try await Self.dlq(["retry", "--all"], config: config, dir: d.dir)
        #expect(retried.status == 1, "\(retried)")
        #expect(retried.err.contains("'gone'") && retried.err.contains("not an enabled source"), "\(retried.err)")
        #expect(retried.out.contains("closed 1 letter"), "\(retried.out)")
        #expect(try await d.sql("SELECT des_status FROM files WHERE id = 2").first?[0].text == "DES_PACKED")
        let left = try await Self.dlq(["list"], config: config, dir: d.dir)
        #expect(left.out.contains("gone row 1 [packer]: a source since removed") && left.out.contains("1 letter(s)"), "\(left.out)")
        let resolved = try await Self.dlq(["resolve", "--source", "gone"], config: config, dir: d.dir)
        #expect(resolved.status == 0 && resolved.out.contains("closed 1 letter"), "\(resolved)")
        #expect(try await Self.dlq(["list"], config: config, dir: d.dir).out == "no open dead letters\n")
    }

    @Test("A row has one open letter per stage, found by an index: adding a letter reads no other letter")
    func openLetterIndex() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let store = try await d.metadata()
        try await store.addDeadLetters((1...300).map { DeadLetter(source: "catalog", rowID: "\($0)", desName: nil, stage: "packer", reason: "r") })
        try await store.addDeadLetters([
            DeadLetter(source: "catalog", rowID: "7", desName: nil, stage: "packer", reason: "again"),
            DeadLetter(source: "catalog", rowID: "7", desName: nil, stage: "marker", reason: "another stage"),
        ])
        #expect(try await store.deadLetters(limit: 1000).count == 301, "a second open letter of row 7's packer stage was added")
        let plan = try await d.metadataSQL(
            "EXPLAIN QUERY PLAN SELECT 1 FROM des_dead_letters WHERE source = 'catalog' AND catalog_entry_id = '7' AND stage = 'packer' AND resolved = 0")
        let steps = plan.compactMap { $0.values.last?.text }
        #expect(steps.contains { $0.contains("des_dead_letters_open") } && !steps.contains { $0.hasPrefix("SCAN") }, "\(steps)")
    }
}
