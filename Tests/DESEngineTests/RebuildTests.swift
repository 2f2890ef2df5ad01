import DESEngine
import DESKit
import DESTestSupport
import Foundation
import Testing

/// `des rebuild` after the metadata store is lost, on SQLite and on PostgreSQL.
@Suite("Rebuilding the metadata store from storage") struct RebuildTests {
    @Test("SQLite: after a full run the metadata database is deleted; des rebuild records every container again, reports junk and a corrupted container (exit 65) without recording them, is idempotent, and des check passes; later containers get later ids")
    func rebuildSQLite() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(300, size: 120)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2, maxFiles: 40).run(shutdown: ShutdownSignal(), untilIdle: true)
        let config = try d.writeConfig(packer: "{work_dir: work, shard_bits: 2}")
        let before = try await d.metadata().containers(state: .uploaded, shard: nil, day: nil)
        try #require(before.count >= 8)
        // The packer recorded the names each container holds; rebuild restores them (and the audit checks them).
        #expect(before.allSatisfy { $0.nameRange != nil }, "\(before.filter { $0.nameRange == nil }.map(\.key)) without names")
        d.dropMetadata()
        let lost = try await runDES(["check"], config: config, in: d.dir)
        #expect(lost.status == 65, "des check passed with no container records: \(lost.out)")

        // Junk beside the containers: a stray object, and a copy of a container with its last byte flipped.
        let archive = d.dir + "/archive/"
        try Data("not a container".utf8).write(to: URL(fileURLWithPath: archive + "des/notes.txt"))
        let victim = before[0]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: archive + victim.key))
        bytes[bytes.count - 1] ^= 0xFF
        let corruptKey = containerKey(prefix: "des", day: victim.day, shard: victim.shard, id: 999_999)
        try bytes.write(to: URL(fileURLWithPath: archive + corruptKey))
        // And an intact copy of it under another shard's key.
        let strayKey = containerKey(prefix: "des", day: victim.day, shard: (victim.shard + 1) % 4, id: 999_998)
        try FileManager.default.createDirectory(
            atPath: ((archive + strayKey) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: archive + victim.key, toPath: archive + strayKey)

        let dry = try await runDES(["rebuild", "--dry-run", "--json"], config: config, in: d.dir)
        #expect(try jsonObject(dry.out)["recorded"] as? Int == before.count, "\(dry)")
        #expect(try await d.metadata().containers(state: nil, shard: nil, day: nil).isEmpty, "a dry run recorded containers")
        let run = try await runDES(["rebuild", "--json"], config: config, in: d.dir)
        #expect(run.status == 65, "\(run)")
        let report = try jsonObject(run.out)
        #expect(report["recorded"] as? Int == before.count && report["files"] as? Int == 300, "\(report)")
        #expect(report["duplicate_count"] as? Int == 0 && (report["duplicates"] as? [String])?.isEmpty == true, "\(report)")
        let unusable = try #require(report["unusable"] as? [String])
        #expect(unusable.count == 3 && unusable.contains { $0.hasPrefix("des/notes.txt") } && unusable.contains { $0.hasPrefix(corruptKey) }, "\(unusable)")
        #expect(unusable.contains { $0.hasPrefix(strayKey) && $0.contains("another day or shard") }, "\(unusable)")
        let after = try await d.metadata().containers(state: .uploaded, shard: nil, day: nil)
        #expect(Set(after.map(\.id)) == Set(before.map(\.id)) && Set(after.map(\.key)) == Set(before.map(\.key)))
        #expect(after.allSatisfy { rebuilt in before.contains { $0.id == rebuilt.id && $0.fileCount == rebuilt.fileCount && $0.etag == rebuilt.etag } })
        #expect(after.allSatisfy { rebuilt in before.contains { $0.id == rebuilt.id && $0.nameRange?.first == rebuilt.nameRange?.first && $0.nameRange?.last == rebuilt.nameRange?.last } })
        #expect(after.allSatisfy { $0.nameRange != nil })
        try FileManager.default.removeItem(atPath: archive + corruptKey)
        try FileManager.default.removeItem(atPath: archive + strayKey)
        try FileManager.default.removeItem(atPath: archive + "des/notes.txt")
        let again = try await runDES(["rebuild", "--json"], config: config, in: d.dir)
        let againReport = try jsonObject(again.out)
        #expect(again.status == 0 && againReport["already_recorded"] as? Int == before.count, "\(again)")
        let check = try await runDES(["check"], config: config, in: d.dir)
        #expect(check.status == 0, "\(check.out) \(check.err)")
        // Packing goes on above the rebuilt ids.
        try await d.addRows(30, size: 10, seed: 9)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        let newer = try await d.metadata().containers(state: .uploaded, shard: nil, day: nil).filter { id in !before.contains { $0.id == id.id } }
        #expect(!newer.isEmpty && newer.allSatisfy { $0.id > before.map(\.id).max() ?? 0 })
        #expect(try await d.audit().isOK)
    }

    @Test("A copy of a container under another id of its (day, shard): rebuild records both and names each file held twice; des check then fails on them")
    func rebuildDuplicateCopy() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(60, size: 50)
        _ = try await d.mark(shardBits: 1)
        _ = try await d.packer(shardBits: 1, maxFiles: 20).run(shutdown: ShutdownSignal(), untilIdle: true)
        let config = try d.writeConfig(packer: "{work_dir: work, shard_bits: 1}")
        let before = try await d.metadata().containers(state: .uploaded, shard: nil, day: nil)
        try #require(before.count >= 3)
        d.dropMetadata()
        // Another deployment's copy, or a restored object, under a later id of the same (day, shard).
        let archive = d.dir + "/archive/"
        let victim = before[0]
        let copyKey = containerKey(prefix: "des", day: victim.day, shard: victim.shard, id: 999_999)
        try FileManager.default.copyItem(atPath: archive + victim.key, toPath: archive + copyKey)

        let dry = try await runDES(["rebuild", "--dry-run", "--json"], config: config, in: d.dir)
        #expect(try jsonObject(dry.out)["duplicate_count"] as? Int == victim.fileCount, "\(dry)")
        let run = try await runDES(["rebuild", "--json"], config: config, in: d.dir)
        #expect(run.status == 0, "\(run)")
        let report = try jsonObject(run.out)
        #expect(report["recorded"] as? Int == before.count + 1, "\(report)")
        #expect(report["duplicate_count"] as? Int == victim.fileCount, "\(report)")
        let lines = try #require(report["duplicates"] as? [String])
        #expect(lines.count == victim.fileCount && lines.allSatisfy { $0.hasSuffix("is in \(victim.key) and \(copyKey)") }, "\(lines)")
        // In text, each is a warning on stderr.
        let text = try await runDES(["rebuild"], config: config, in: d.dir)
        #expect(text.status == 0 && text.err.contains("duplicate: ") && text.err.contains(copyKey), "\(text)")
        let check = try await runDES(["check"], config: config, in: d.dir)
        #expect(check.status != 0 && (check.out + check.err).contains("is in two uploaded containers"), "\(check)")
    }

    @Test("PostgreSQL: the metadata tables are dropped after a full run; des rebuild records every container again and des check passes; the sequence continues above them")
    func rebuildPostgres() async throws {
        let pg = try await PostgresDeployment(rows: 1500, applicationName: "des-rebuild")
        defer { pg.cleanup() }
        for step in [["marker", "run", "--until-idle"], ["packer", "run", "--until-idle"]] {
            let p = try pg.des(step)
            await pg.d.wait(p)
            try #require(p.terminationStatus == 0, "\(step)")
        }
        let schema = pg.schema
        let count = try await pg.admin.withSession { try $0.query("SELECT COUNT(*), MAX(id) FROM \(schema).des_containers WHERE state = 'uploaded'") }
        let (containers, maxID) = (count.first?[0].int ?? 0, count.first?[1].int ?? 0)
        try #require(containers >= 10)
        _ = try await pg.admin.withSession { s in
            for table in ["des_dead_letters", "des_containers", "des_shard_locks", "des_schema_version"] {
                try s.execute("DROP TABLE \(schema).\(table) CASCADE")
            }
        }
        let run = try await runDES(["rebuild", "--json"], config: pg.config, in: pg.d.dir)
        #expect(run.status == 0, "\(run.err)")
        let report = try jsonObject(run.out)
        #expect(report["recorded"] as? Int == Int(containers) && report["files"] as? Int == 1500, "\(report)")
        let check = try await runDES(["check"], config: pg.config, in: pg.d.dir)
        #expect(check.status == 0, "\(check.out) \(check.err)")
        let next = try await pg.admin.withSession { try $0.query("SELECT nextval(pg_get_serial_sequence('\(schema).des_containers', 'id'))") }
        #expect((next.first?[0].int ?? 0) > maxID)
        try await pg.drop()
    }
}
