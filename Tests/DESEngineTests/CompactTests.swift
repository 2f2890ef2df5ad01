import DESEngine
import DESKit
import DESTestSupport
import Foundation
import Testing

/// `des compact`: garbage out, small containers merged, old objects removed after grace.
@Suite("Compaction") struct CompactTests {
    /// A config with a `compaction:` section.
    static func config(_ d: Deployment, _ compaction: String, name: String = "compact.yaml") throws -> String {
        try d.writeConfig(packer: "{work_dir: work, shard_bits: 2}", name: name, extra: "compaction: \(compaction)")
    }

    /// Every regular file under `root`, read whole.
    static func everyObject(_ root: String) -> [Data] {
        (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).compactMap {
            var dir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root + "/" + $0, isDirectory: &dir), !dir.boolValue else { return nil }
            return FileManager.default.contents(atPath: root + "/" + $0)
        }
    }

    @Test("Half a container's files deleted: it is rewritten with the live half (META and checksums kept), the catalog untouched (its rows resolve through the old record's link), the old object deleted after a grace of 0s; no deleted file's bytes remain anywhere in storage; des check passes and des retire retires the live bodies from the new container")
    func garbage() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(120, size: 300)
        // Bodies of independent random bytes: the sample's share one random stream, so one body can
        // be found inside another, and the search for deleted bytes below would find a live file.
        var rng = SystemRandomNumberGenerator()
        for path in try await d.sql("SELECT body_path FROM files").compactMap({ $0[0].text }) {
            try Data((0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }).write(to: URL(fileURLWithPath: d.bodiesRoot + "/" + path))
        }
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2, maxFiles: 20).run(shutdown: ShutdownSignal(), untilIdle: true)
        let config = try d.writeConfig(
            packer: "{work_dir: work, shard_bits: 2}", name: "compact.yaml", bodies: "delete_after_pack: 0s",
            extra: "compaction: {grace: 0s, small_container_bytes: 0}")
        let store = try await d.metadata()
        let before = try await store.containers(state: .uploaded, shard: nil, day: nil)
        let victim = try #require(before.max { $0.fileCount < $1.fileCount })
        let rows = try await d.sql("SELECT id, des_name, body_path FROM files WHERE des_container = '\(victim.key)' ORDER BY id")
        let doomed = rows.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        let kept = rows.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        let doomedBodies = try doomed.map { try Data(contentsOf: URL(fileURLWithPath: d.bodiesRoot + "/" + ($0[2].text ?? ""))) }
        let deleted = try await runDES(["delete", "--reason", "test"] + doomed.compactMap { $0[1].text }, config: config, in: d.dir)
        #expect(deleted.status == 0, "\(deleted)")

        let plan = try await runDES(["compact", "--dry-run", "--json"], config: config, in: d.dir)
        #expect(try jsonObject(plan.out)["containers_retired"] as? Int == 1, "\(plan)")
        let run = try await runDES(["compact", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(run.status == 0, "\(run.err)")
        let totals = try jsonObject(run.out)
        #expect(totals["containers_retired"] as? Int == 1 && totals["containers_written"] as? Int == 1, "\(totals)")
        #expect(totals["dropped_files"] as? Int == doomed.count && totals["live_files"] as? Int == kept.count, "\(totals)")
        #expect(totals["objects_deleted"] as? Int == 1, "\(totals)")
        // The new container holds the live half; the old one's record links to it; the catalog's rows
        // still name the old one (compaction writes nothing to the users' tables); its object and
        // its .compacted record are gone.
        let now = try await store.containers(state: nil, shard: victim.shard, day: victim.day)
        let replacement = try #require(now.first { c in c.state == .uploaded && !before.contains { $0.id == c.id } })
        let old = try #require(now.first { $0.id == victim.id })
        #expect(old.state == .deleted && old.replacedBy == replacement.id, "\(old)")
        #expect(replacement.fileCount == kept.count)
        let range = try #require(replacement.nameRange, "the compacted container's names were not recorded")
        #expect(kept.allSatisfy { range.mayHold($0[1].text ?? "") })
        let keptIDs = kept.compactMap { $0[0].int }.map(String.init).joined(separator: ",")
        let keys = try await d.sql("SELECT DISTINCT des_container FROM files WHERE id IN (\(keptIDs))")
        #expect(keys.map { $0[0].text } == [victim.key])
        #expect(!FileManager.default.fileExists(atPath: d.dir + "/archive/" + victim.key))
        #expect(!FileManager.default.fileExists(atPath: d.dir + "/archive/" + victim.key + ".compacted"))
        let objects = Self.everyObject(d.dir + "/archive")
        for body in doomedBodies { #expect(!objects.contains { $0.range(of: body) != nil }, "a deleted file's bytes are still in storage") }
        let audit = try await d.audit()
        #expect(audit.isOK && audit.filesDeleted == doomed.count && audit.rowsChecked == 120 - doomed.count, "\(audit.problems)")
        let name = try #require(kept.first?[1].text)
        let got = try await runDES(["get", name, "-o", d.dir + "/got"], config: config, in: d.dir)
        #expect(got.status == 0 && (try? Data(contentsOf: URL(fileURLWithPath: d.dir + "/got")))?.count == 300, "\(got)")
        // Nothing left to do.
        let again = try await runDES(["compact", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(try jsonObject(again.out)["containers_retired"] as? Int == 0)
        // The live rows' bodies retire against their bytes in the new container, through the link.
        let retire = try await runDES(["retire", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(retire.status == 0, "\(retire)")
        for row in kept { #expect(!FileManager.default.fileExists(atPath: d.bodiesRoot + "/" + (row[2].text ?? "")), "\(row) kept its body") }
        let afterRetire = try await d.audit()
        #expect(afterRetire.isOK && afterRetire.rowsRetired == 120 - doomed.count, "\(afterRetire.problems)")
    }

    @Test("Small containers of each (day, shard) are merged; while the grace lasts the old objects stay readable, des rebuild records them retired (not uploaded), and des check passes")
    func mergeSmall() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(200, size: 50)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2, maxFiles: 8).run(shutdown: ShutdownSignal(), untilIdle: true)
        let store = try await d.metadata()
        let before = try await store.containers(state: .uploaded, shard: nil, day: nil)
        let shards = Set(before.map(\.shard)).count
        try #require(before.count > 2 * shards)
        let config = try Self.config(d, "{grace: 1h}")
        let run = try await runDES(["compact", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(run.status == 0, "\(run.err)")
        let totals = try jsonObject(run.out)
        #expect(totals["containers_retired"] as? Int == before.count && totals["live_files"] as? Int == 200, "\(totals)")
        let after = try await store.containers(state: .uploaded, shard: nil, day: nil)
        #expect(after.count == shards, "one container per (day, shard): \(after.map(\.key))")
        #expect(try await d.audit().isOK)
        // The grace: old objects still there and readable.
        for old in before { #expect(FileManager.default.fileExists(atPath: d.dir + "/archive/" + old.key)) }
        // Lose the metadata store: rebuild records the merged containers uploaded and the old ones retired.
        d.dropMetadata()
        let rebuilt = try await runDES(["rebuild", "--json"], config: config, in: d.dir)
        #expect(rebuilt.status == 0, "\(rebuilt)")
        let report = try jsonObject(rebuilt.out)
        #expect(report["recorded"] as? Int == before.count + after.count && report["retired"] as? Int == before.count, "\(report)")
        // The replaced containers hold the merged one's names again: not duplicates.
        #expect(report["duplicate_count"] as? Int == 0, "\(report)")
        let check = try await runDES(["check"], config: config, in: d.dir)
        #expect(check.status == 0, "\(check.out) \(check.err)")
    }

    @Test("kill -9 the compactor again and again while it merges and removes: in the end every live name is in exactly one uploaded container and des check passes")
    func killNine() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let config = try Self.config(d, "{grace: 0s, lease_ttl_seconds: 1}")
        var kills = 0, rows = 0, doomed: [String] = []
        // Up to 80 rounds for 20 kills: on a loaded machine a sleep can outlast a whole run.
        for round in 0..<80 where kills < 20 {
            // New work every round: small containers to merge, and deletes so that garbage is dropped too.
            try await d.addRows(150, size: 40, seed: UInt64(round + 1))
            rows += 150
            _ = try await d.mark(shardBits: 2)
            _ = try await d.packer(shardBits: 2, maxFiles: 10).run(shutdown: ShutdownSignal(), untilIdle: true)
            let fresh = try await d.sql("SELECT des_name FROM files WHERE id % 7 = 0 AND des_status = 'DES_PACKED'").compactMap { $0[0].text }
            doomed += fresh
            let deleted = try await runDES(["delete", "--reason", "crash test"] + fresh, config: config, in: d.dir)
            #expect(deleted.status == 0, "\(deleted.err)")
            let p = try startDES(["compact", "--until-idle"], config: config)
            try await Task.sleep(nanoseconds: UInt64(60_000_000 + (round % 9) * 30_000_000))
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                kills += 1
            }
            await d.wait(p)
            // A killed compactor's lease lapses after its TTL; the next run waits for it rather than skipping the shard.
            try await Task.sleep(nanoseconds: 1_100_000_000)
        }
        let last = try startDES(["compact", "--until-idle"], config: config)
        await d.wait(last)
        #expect(last.terminationStatus == 0)
        print("compaction crash test: \(kills) kills")
        #expect(kills >= 20, "the compactor finished before it could be killed 20 times")
        let store = try await d.metadata()
        let uploaded = try await store.containers(state: .uploaded, shard: nil, day: nil)
        var holder: [String: String] = [:]
        let reader = StorageArchiveReader(storage: try d.storage())
        for c in uploaded {
            for entry in try await reader.index(key: c.key).entries {
                #expect(holder.updateValue(c.key, forKey: entry.name) == nil, "\(entry.name) is in two uploaded containers")
            }
        }
        let live = try await d.sql("SELECT des_name FROM files WHERE des_status = 'DES_PACKED'").compactMap { $0[0].text }
        #expect(live.count == rows - doomed.count)
        #expect(live.allSatisfy { holder[$0] != nil })
        // Compaction did its work: every deleted file dropped, containers merged and replaced.
        #expect(doomed.allSatisfy { holder[$0] == nil }, "a deleted file is still in an uploaded container")
        #expect(try await store.containers(state: .deleted, shard: nil, day: nil).count > 0, "nothing was compacted")
        #expect(try await store.containers(state: .compacting, shard: nil, day: nil).isEmpty)
        let audit = try await d.audit()
        #expect(audit.isOK, "\(audit.problems)")
    }

    @Test("An entry whose bytes no longer match its sha256 stops its group: the old container stays uploaded, the new one is discarded and removed, des compact exits 1")
    func corruptEntryStopsGroup() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(30, size: 100)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2, maxFiles: 100).run(shutdown: ShutdownSignal(), untilIdle: true)
        let config = try Self.config(d, "{grace: 0s, small_container_bytes: 0}")
        let store = try await d.metadata()
        let victim = try #require(try await store.containers(state: .uploaded, shard: nil, day: nil).max { $0.fileCount < $1.fileCount })
        let names = try await d.sql("SELECT des_name FROM files WHERE des_container = '\(victim.key)' ORDER BY id").compactMap { $0[0].text }
        try #require(names.count >= 4)
        let deleted = try await runDES(["delete", "--reason", "t"] + names.prefix(names.count / 2), config: config, in: d.dir)
        #expect(deleted.status == 0)
        // Flip a byte inside a live entry's data.
        let index = try await StorageArchiveReader(storage: try d.storage()).index(key: victim.key)
        let live = try #require(index.entry(named: names[names.count - 1]))
        let path = d.dir + "/archive/" + victim.key
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: live.dataOffset + 3)
        let old = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: live.dataOffset + 3)
        try handle.write(contentsOf: [old ^ 0xFF])
        try handle.close()
        let run = try await runDES(["compact", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(run.status == 1, "\(run)")
        #expect(try jsonObject(run.out)["groups_abandoned"] as? Int == 1)
        let after = try await store.containers(state: nil, shard: victim.shard, day: victim.day)
        #expect(after.first { $0.id == victim.id }?.state == .uploaded)
        #expect(after.filter { $0.state == .uploaded || $0.state == .compacting }.count == 1, "\(after)")
        let discarded = after.filter { $0.state == .discarded }
        #expect(discarded.count == 1 && discarded.allSatisfy { !FileManager.default.fileExists(atPath: d.dir + "/archive/" + $0.key) })
        #expect(!FileManager.default.fileExists(atPath: path + ".compacted"))
    }
}

/// `ContainerChain`: a row's recorded container resolved through compaction's links.
@Suite("Container chain") struct ContainerChainTests {
    static func record(_ id: Int64, _ state: ContainerState, replacedBy: Int64? = nil) -> ContainerRecord {
        var r = ContainerRecord(
            id: id, day: "2026-12-05", shard: 0, key: "c\(id)", state: state, holder: "h", token: 1, fileCount: 1, bytes: 1, size: 1, etag: "e")
        r.replacedBy = replacedBy
        return r
    }

    @Test("Links are followed through retired and deleted records to the uploaded one; a dead end, a container whose files were all deleted, an unknown key and a cycle resolve to nothing")
    func links() {
        let chain = ContainerChain(records: [
            Self.record(1, .deleted, replacedBy: 2), Self.record(2, .retired, replacedBy: 3), Self.record(3, .uploaded),
            Self.record(4, .deleted),  // every file deleted: no replacement
            Self.record(5, .retired, replacedBy: 6), Self.record(6, .discarded),
            Self.record(7, .retired, replacedBy: 8), Self.record(8, .retired, replacedBy: 7),
            Self.record(9, .writing, replacedBy: 3),  // only retired and deleted records are followed
        ])
        #expect(chain.current(of: "c1")?.id == 3)
        #expect(chain.current(of: "c2")?.id == 3)
        #expect(chain.current(of: "c3")?.id == 3)
        #expect(chain.current(of: "c4") == nil)
        #expect(chain.current(of: "c5") == nil)
        #expect(chain.current(of: "c7") == nil)
        #expect(chain.current(of: "c9") == nil)
        #expect(chain.current(of: "nope") == nil && !chain.isRecorded("nope") && chain.isRecorded("c4"))
        #expect(Set(chain.uploaded.keys) == ["c3"])
    }
}

/// What a crash, a restored backup or a tampered link leaves, and how rebuild, check and retire meet it.
@Suite("Compaction: crashes, backups and broken links") struct CompactionRecoveryTests {
    /// A packed deployment of 120 files in small containers, with a compaction config (grace 0s).
    static func packed() async throws -> (Deployment, String) {
        let d = try Deployment()
        try await d.addRows(120, size: 200)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2, maxFiles: 20).run(shutdown: ShutdownSignal(), untilIdle: true)
        let config = try d.writeConfig(
            packer: "{work_dir: work, shard_bits: 2}", name: "c.yaml", bodies: "delete_after_pack: 0s",
            extra: "compaction: {grace: 0s, small_container_bytes: 0}")
        return (d, config)
    }

    @Test("A compaction that died after writing its notes but before its new container was uploaded: des rebuild ignores notes naming a container not in storage (the sources stay uploaded, not retired), says so, and des check passes")
    func notesWithoutTheirContainer() async throws {
        let (d, config) = try await Self.packed()
        defer { d.cleanup() }
        let victim = try #require(try await d.metadata().containers(state: .uploaded, shard: nil, day: nil).first)
        let ghost = containerKey(prefix: "des", day: victim.day, shard: victim.shard, id: 9_999)
        try Data(#"{"replaced_by":"\#(ghost)","drop_external":[]}"#.utf8).write(to: URL(fileURLWithPath: d.dir + "/archive/" + victim.key + ".compacted"))
        d.dropMetadata()
        let run = try await runDES(["rebuild", "--json"], config: config, in: d.dir)
        #expect(run.status == 0, "\(run)")
        let report = try jsonObject(run.out)
        #expect(report["retired"] as? Int == 0, "\(report)")
        #expect((report["ignored_notes"] as? [String])?.contains { $0.contains(victim.key) && $0.contains(ghost) } == true, "\(report)")
        let after = try await d.metadata().containers(state: nil, shard: nil, day: nil)
        #expect(after.first { $0.key == victim.key }?.state == .uploaded)
        let check = try await runDES(["check"], config: config, in: d.dir)
        #expect(check.status == 0, "\(check.out) \(check.err)")
    }

    @Test("A metadata store restored from a backup older than a compaction (grace 0s): des rebuild records the new container and the missing old ones deleted; des check, des get and des retire then find every file by its links or its name")
    func restoredBackup() async throws {
        let (d, config) = try await Self.packed()
        defer { d.cleanup() }
        let names = try await d.sql("SELECT des_name FROM files ORDER BY id").compactMap { $0[0].text }
        let doomed = stride(from: 0, to: names.count, by: 2).map { names[$0] }
        #expect(try await runDES(["delete", "--reason", "t"] + doomed, config: config, in: d.dir).status == 0)
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: d.dir + "/metadata.sqlite" + suffix) {
            try FileManager.default.copyItem(atPath: d.dir + "/metadata.sqlite" + suffix, toPath: d.dir + "/backup.sqlite" + suffix)
        }
        let compacted = try await runDES(["compact", "--until-idle", "--json"], config: config, in: d.dir)
        let objectsDeleted = try jsonObject(compacted.out)["objects_deleted"] as? Int ?? 0
        #expect(compacted.status == 0 && objectsDeleted > 0, "\(compacted)")
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: d.dir + "/metadata.sqlite" + suffix)
            if FileManager.default.fileExists(atPath: d.dir + "/backup.sqlite" + suffix) {
                try FileManager.default.moveItem(atPath: d.dir + "/backup.sqlite" + suffix, toPath: d.dir + "/metadata.sqlite" + suffix)
            }
        }
        let run = try await runDES(["rebuild", "--json"], config: config, in: d.dir)
        #expect(run.status == 0, "\(run)")
        let report = try jsonObject(run.out)
        #expect(((report["missing"] as? [String]) ?? []).count > 0 && (report["recorded"] as? Int ?? 0) > 0, "\(report)")
        let check = try await runDES(["check"], config: config, in: d.dir)
        #expect(check.status == 0, "\(check.out) \(check.err)")
        let live = stride(from: 1, to: names.count, by: 2).map { names[$0] }
        let got = try await runDES(["get", live[3], "-o", d.dir + "/got"], config: config, in: d.dir)
        #expect(got.status == 0, "\(got)")
        let retire = try await runDES(["retire", "--until-idle", "--json"], config: config, in: d.dir)
        let retiredCount = try jsonObject(retire.out)["deleted"] as? Int
        #expect(retire.status == 0 && retiredCount == live.count, "\(retire)")
    }

    @Test("Tampered links and records: a loop of replacements and a container recorded under another shard are problems for des check, and des retire keeps the bodies it cannot find by name")
    func brokenLinks() async throws {
        let (d, config) = try await Self.packed()
        defer { d.cleanup() }
        let names = try await d.sql("SELECT des_name FROM files ORDER BY id").compactMap { $0[0].text }
        #expect(try await runDES(["delete", "--reason", "t"] + stride(from: 0, to: names.count, by: 2).map { names[$0] }, config: config, in: d.dir).status == 0)
        #expect(try await runDES(["compact", "--until-idle"], config: config, in: d.dir).status == 0)
        let retired = try await d.metadata().containers(state: .deleted, shard: nil, day: nil)
        let (a, b) = (try #require(retired.first), try #require(retired.dropFirst().first))
        try await d.metadataSQL("UPDATE des_containers SET replaced_by = \(b.id) WHERE id = \(a.id)")
        try await d.metadataSQL("UPDATE des_containers SET replaced_by = \(a.id) WHERE id = \(b.id)")
        let loop = try await runDES(["check"], config: config, in: d.dir)
        #expect(loop.status == 65 && (loop.out + loop.err).contains("loop"), "\(loop.out) \(loop.err)")
        // Put the links back; then record one uploaded container under another shard.
        for old in [a, b] { try await d.metadataSQL("UPDATE des_containers SET replaced_by = \(old.replacedBy.map(String.init) ?? "NULL") WHERE id = \(old.id)") }
        let moved = try #require(try await d.metadata().containers(state: .uploaded, shard: nil, day: nil).first)
        try await d.metadataSQL("UPDATE des_containers SET shard = \((moved.shard + 1) % 4) WHERE id = \(moved.id)")
        let shard = try await runDES(["check"], config: config, in: d.dir)
        #expect(shard.status == 65 && (shard.out + shard.err).contains("another day or shard"), "\(shard.out) \(shard.err)")
        // And another one's recorded names narrowed to its first: lookups would miss the rest.
        let narrowed = try #require(try await d.metadata().containers(state: .uploaded, shard: nil, day: nil).first { $0.id != moved.id && $0.fileCount > 1 })
        try await d.metadataSQL("UPDATE des_containers SET name_last = name_first, name_filter = NULL WHERE id = \(narrowed.id)")
        let narrow = try await runDES(["check"], config: config, in: d.dir)
        #expect(narrow.status == 65 && (narrow.out + narrow.err).contains("recorded names"), "\(narrow.out) \(narrow.err)")
        let retire = try await runDES(["retire", "--until-idle", "--json"], config: config, in: d.dir)
        let skipped = try jsonObject(retire.out)["skipped"] as? [String: Int] ?? [:]
        #expect((skipped["container_mismatch"] ?? 0) + (skipped["container_not_uploaded"] ?? 0) >= moved.fileCount / 2 + 1, "\(retire.out)")
        #expect((skipped["container_mismatch"] ?? 0) >= 1, "\(retire.out)")
    }
}
