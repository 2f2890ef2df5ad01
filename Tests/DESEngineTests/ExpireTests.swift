import DESEngine
import DESKit
import DESTestSupport
import Foundation
import Testing

/// `des expire`: retention by the day in the name.
@Suite("Retention") struct ExpireTests {
    @Test("Files named 40 days ago are deleted under retention 30d, today's kept; a delete recorded without its row (as over HTTP) gets its row marked; a dry run writes nothing")
    func retention() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(12, size: 20)
        let old = UInt64(Date().timeIntervalSince1970 * 1000) - 40 * 86_400_000
        _ = try await d.mark(shardBits: 2, clock: { old })
        try await d.addRows(8, size: 20, seed: 2)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        let path = try d.writeConfig(packer: "{work_dir: work, shard_bits: 2}", name: "expire.yaml", source: "retention: 30d")
        // A recent file deleted through the HTTP service: a tombstone, its row not yet marked.
        let recent = try #require(try await d.sql("SELECT des_name FROM files WHERE id = 20").first?[0].text)
        _ = try await d.metadata().addTombstones([Tombstone(name: recent, reason: "over HTTP", origin: "delete", containerID: nil, bytes: 20)])

        let dry = try await runDES(["expire", "--dry-run", "--json"], config: path, in: d.dir)
        #expect(dry.status == 0, "\(dry.err)")
        let plan = try jsonObject(dry.out)
        #expect(plan["expired"] as? Int == 12 && (plan["would_expire"] as? [String])?.count == 12, "\(plan)")
        #expect(try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_PACKED'").first?[0].int == 20)
        #expect(try await d.metadata().tombstones(afterSeq: 0, limit: 100).count == 1, "the dry run recorded tombstones")

        let run = try await runDES(["expire", "--until-idle", "--json"], config: path, in: d.dir)
        #expect(run.status == 0, "\(run.err)")
        let totals = try jsonObject(run.out)
        #expect(totals["expired"] as? Int == 12 && totals["rows_marked"] as? Int == 1, "\(totals)")
        let statuses = try await d.sql("SELECT des_status, COUNT(*) FROM files GROUP BY des_status ORDER BY des_status")
        #expect(statuses.map { "\($0[0].text ?? "") \($0[1].int ?? 0)" } == ["DES_DELETED 13", "DES_PACKED 7"])
        let oldName = try #require(try await d.sql("SELECT des_name FROM files WHERE id = 1").first?[0].text)
        let stone = try await d.metadata().tombstone(named: oldName)
        #expect(stone?.origin == "retention" && stone?.reason == "retention 30d of source catalog", "\(String(describing: stone))")
        let got = try await runDES(["get", oldName, "-o", d.dir + "/x"], config: path, in: d.dir)
        #expect(got.status == 66 && got.err.contains("retention"), "\(got)")
        let audit = try await d.audit()
        #expect(audit.isOK && audit.filesDeleted == 13 && audit.rowsChecked == 7, "\(audit)")
        #expect(Expirer.isExpired(isoDay: "2025-01-01", retentionSeconds: 86_400, now: 1_735_862_400 - 1) == false)
        #expect(Expirer.isExpired(isoDay: "2025-01-01", retentionSeconds: 86_400, now: 1_735_862_400))
    }
}
