import DESKit
import Foundation

/// The behaviour the engine relies on from every ``MetadataStore``, checked once here for all of
/// them: leases with fencing tokens on database time, containers, dead letters, migrations.
///
/// ```swift
/// @Test func conformance() async throws {
///     let report = await MetadataStoreConformance.run { try await MyStore.fresh() }
///     #expect(report.isOK, "\(report)")
/// }
/// ```
public enum MetadataStoreConformance {
    /// Runs every check, each against a fresh, migrated store from `makeStore`.
    public static func run(makeStore: @escaping @Sendable () async throws -> any MetadataStore) async -> ConformanceReport {
        var runner = CheckRunner()
        let a = LeaseHolder(pod: "pod-a", instance: "1"), a2 = LeaseHolder(pod: "pod-a", instance: "2")
        let b = LeaseHolder(pod: "pod-b", instance: "1")

        await runner.run("migrate is idempotent") {
            let store = try await makeStore()
            defer { Task { await store.close() } }
            let v1 = try await store.migrate(), v2 = try await store.migrate()
            try require(v1 == v2 && v1 > 0, "migrate is idempotent", "versions \(v1) then \(v2)")
        }

        await runner.run("grant, renew, and refusal of a live lease") {
            let c = "grant, renew, and refusal of a live lease"
            let store = try await makeStore()
            defer { Task { await store.close() } }
            guard let first = try await store.acquireLease(shard: 1, holder: a, ttlSeconds: 30) else {
                throw ConformanceFailure(check: c, message: "a free shard was not granted")
            }
            try require(first.isNewGrant, c, "the first grant is not marked new")
            let again = try await store.acquireLease(shard: 1, holder: a, ttlSeconds: 30)
            try require(again?.token == first.token && again?.isNewGrant == false, c, "re-acquiring a live lease changed it: \(String(describing: again))")
            try require(try await store.renewLease(first, ttlSeconds: 30) != nil, c, "renewal of a live lease failed")
            try require(try await store.acquireLease(shard: 1, holder: b, ttlSeconds: 30) == nil, c, "another pod took a live lease")
            try require(try await store.acquireLease(shard: 1, holder: a2, ttlSeconds: 30) == nil, c, "another instance of the pod took a live lease")
            try require(try await store.leases().contains { $0.shard == 1 && $0.holder == a }, c, "leases() does not list the lease")
        }

        await runner.run("takeover after expiry bumps the token and fences the stale holder") {
            let c = "takeover after expiry bumps the token and fences the stale holder"
            let store = try await makeStore()
            defer { Task { await store.close() } }
            // The container is created under a long lease, which a renewal then shortens: no step
            // has to fit in a window, however loaded the machine (a 2 s lease once lapsed in CI
            // before the container was created).
            guard let stale = try await store.acquireLease(shard: 2, holder: a, ttlSeconds: 60) else {
                throw ConformanceFailure(check: c, message: "no grant")
            }
            let container = try await store.createContainer(day: "2025-01-01", shard: 2, lease: stale, keyPrefix: "des")
            guard let short = try await store.renewLease(stale, ttlSeconds: 0.3) else {
                throw ConformanceFailure(check: c, message: "a live lease could not be renewed")
            }
            try require(short.token == stale.token, c, "a renewal changed the token \(stale.token) → \(short.token)")
            try await Task.sleep(nanoseconds: 1_000_000_000)
            guard let fresh = try await store.acquireLease(shard: 2, holder: b, ttlSeconds: 30) else {
                throw ConformanceFailure(check: c, message: "an expired lease was not taken over")
            }
            try require(fresh.token > stale.token && fresh.isNewGrant, c, "token \(stale.token) → \(fresh.token), new \(fresh.isNewGrant)")
            try require(try await store.renewLease(stale, ttlSeconds: 30) == nil, c, "the stale holder renewed")
            let uploaded = try await store.markUploaded(
                containerID: container.id, fileCount: 1, bytes: 1, size: 100, etag: "e", lease: stale)
            try require(!uploaded, c, "the stale holder recorded a container uploaded")
            var fenced = 0
            do { try await store.checkpoint(containerID: container.id, fileCount: 1, bytes: 1, lease: stale) } catch { fenced += 1 }
            do { _ = try await store.createContainer(day: "2025-01-01", shard: 2, lease: stale, keyPrefix: "des") } catch { fenced += 1 }
            try require(fenced == 2, c, "the stale holder's checkpoint or createContainer went through")
        }

        await runner.run("expire and release") {
            let c = "expire and release"
            let store = try await makeStore()
            defer { Task { await store.close() } }
            guard let lease = try await store.acquireLease(shard: 3, holder: a, ttlSeconds: 30) else {
                throw ConformanceFailure(check: c, message: "no grant")
            }
            try require(try await store.expireLease(shard: 3, holder: b) == false, c, "expired a lease of another holder")
            try require(try await store.expireLease(shard: 3, holder: a), c, "did not expire the holder's lease")
            guard let taken = try await store.acquireLease(shard: 3, holder: a2, ttlSeconds: 30) else {
                throw ConformanceFailure(check: c, message: "an expired lease was not granted at once")
            }
            try require(taken.token > lease.token, c, "no new token after expiry")
            try await store.releaseLease(taken)
            try require(try await store.acquireLease(shard: 3, holder: b, ttlSeconds: 30) != nil, c, "a released lease was not free")
        }

        await runner.run("container lifecycle") {
            let c = "container lifecycle"
            let store = try await makeStore()
            defer { Task { await store.close() } }
            guard let lease = try await store.acquireLease(shard: 4, holder: a, ttlSeconds: 30) else {
                throw ConformanceFailure(check: c, message: "no grant")
            }
            let one = try await store.createContainer(day: "2025-02-03", shard: 4, lease: lease, keyPrefix: "p")
            try require(one.key == containerKey(prefix: "p", day: "2025-02-03", shard: 4, id: one.id), c, "key \(one.key)")
            try require(one.state == .writing && one.holder == lease.holder.description, c, "\(one)")
            try await store.checkpoint(containerID: one.id, fileCount: 3, bytes: 30, lease: lease)
            let writing = try await store.containers(state: .writing, shard: 4, day: "2025-02-03")
            try require(writing.map(\.id) == [one.id] && writing.first?.fileCount == 3, c, "writing containers \(writing)")
            try require((writing.first?.ageSeconds ?? -1) >= 0, c, "no age on a writing container")
            try require(
                try await store.markUploaded(containerID: one.id, fileCount: 3, bytes: 30, size: 500, etag: "x", lease: lease), c,
                "markUploaded under a live lease failed")
            try require(try await store.discardContainer(id: one.id) == false, c, "an uploaded container was discarded")
            let two = try await store.createContainer(day: "2025-02-03", shard: 4, lease: lease, keyPrefix: "p")
            try require(two.id != one.id && two.key != one.key, c, "container ids or keys repeat")
            try require(try await store.discardContainer(id: two.id), c, "a writing container was not discarded")
            try require(try await store.discardContainer(id: two.id) == false, c, "discard is not final")
            let three = try await store.createContainer(day: "2025-02-04", shard: 4, lease: lease, keyPrefix: "p")
            try await store.recoverUploaded(containerID: three.id, fileCount: 7, size: 900, etag: "y")
            let states = Dictionary(uniqueKeysWithValues: try await store.containers(state: nil, shard: 4, day: nil).map { ($0.id, $0) })
            try require(states[one.id]?.state == .uploaded && states[one.id]?.etag == "x" && states[one.id]?.size == 500, c, "\(String(describing: states[one.id]))")
            try require(states[two.id]?.state == .discarded, c, "\(String(describing: states[two.id]))")
            try require(states[three.id]?.state == .uploaded && states[three.id]?.fileCount == 7, c, "\(String(describing: states[three.id]))")
            // The names each holds: none recorded yet; then a range, and a range with a filter, read back as written.
            try require(states[one.id]?.nameRange == nil, c, "a name range before any was recorded")
            let plain = NameRange(first: "N_0001", last: "N_0500")
            let filtered = NameRange(first: "N_0100", last: "N_0900", filter: NameFilter(names: ["N_0100", "N_0555", "N_0900"]))
            try await store.recordNameRange(containerID: one.id, range: plain)
            try await store.recordNameRange(containerID: three.id, range: filtered)
            let ranged = Dictionary(uniqueKeysWithValues: try await store.containers(state: .uploaded, shard: 4, day: nil).map { ($0.id, $0) })
            try require(ranged[one.id]?.nameRange == plain, c, "range read back as \(String(describing: ranged[one.id]?.nameRange))")
            try require(ranged[three.id]?.nameRange == filtered, c, "filtered range read back as \(String(describing: ranged[three.id]?.nameRange))")
            try require(ranged[three.id]?.nameRange?.mayHold("N_0555") == true, c, "the filter lost a name")
            // An uploaded container found missing from storage is recorded deleted; nothing else is.
            try require(try await store.forgetMissingContainer(id: three.id), c, "an uploaded container was not forgotten")
            try require(try await store.forgetMissingContainer(id: two.id) == false, c, "a discarded container was forgotten")
            let forgotten = try await store.containers(state: .deleted, shard: 4, day: nil)
            try require(forgotten.map(\.id) == [three.id], c, "deleted containers \(forgotten.map(\.id))")
        }

        await runner.run("manifests: recorded under the fencing token, listed once uploaded until marked") {
            let c = "manifests: recorded under the fencing token, listed once uploaded until marked"
            let store = try await makeStore()
            defer { Task { await store.close() } }
            guard let lease = try await store.acquireLease(shard: 6, holder: a, ttlSeconds: 30) else {
                throw ConformanceFailure(check: c, message: "no grant")
            }
            let manifest = ContainerManifest(rows: ["orders": (1...500).map(String.init) + ["502"], "scans": ["07", "7", "a'b"]])
            let one = try await store.createContainer(day: "2025-03-01", shard: 6, lease: lease, keyPrefix: "p")
            try require(try await store.recordManifest(containerID: one.id, manifest: manifest, lease: lease), c, "recordManifest under a live lease")
            try require(try await store.unmarkedManifests(shard: 6).isEmpty, c, "a writing container's manifest was listed")
            try require(
                try await store.markUploaded(containerID: one.id, fileCount: 504, bytes: 1, size: 9, etag: "e", lease: lease), c, "markUploaded")
            let listed = try await store.unmarkedManifests(shard: 6)
            try require(listed.map(\.container.id) == [one.id], c, "unmarked \(listed.map(\.container.id))")
            let back = listed.first?.manifest.rows ?? [:]
            try require(
                Set(back["orders"] ?? []) == Set(manifest.rows["orders"] ?? []) && back["scans"] == ["07", "7", "a'b"], c, "manifest read back \(back)")
            try require(try await store.unmarkedManifests(shard: 5).isEmpty, c, "listed under another shard")
            try await store.manifestMarked(containerID: one.id)
            try require(try await store.unmarkedManifests(shard: nil).isEmpty, c, "a marked manifest is still listed")
            // A stale holder's manifest is refused by the token.
            let two = try await store.createContainer(day: "2025-03-01", shard: 6, lease: lease, keyPrefix: "p")
            try require(try await store.expireLease(shard: 6, holder: a), c, "expire")
            guard try await store.acquireLease(shard: 6, holder: b, ttlSeconds: 30) != nil else {
                throw ConformanceFailure(check: c, message: "no takeover")
            }
            try require(
                try await store.recordManifest(containerID: two.id, manifest: manifest, lease: lease) == false, c, "a fenced manifest was recorded")
        }

        await runner.run("import: a container found in storage keeps its id, once; later ids come after it") {
            let c = "import: a container found in storage keeps its id, once; later ids come after it"
            let store = try await makeStore()
            defer { Task { await store.close() } }
            let key = containerKey(prefix: "p", day: "2025-04-01", shard: 7, id: 500)
            let found = ContainerRecord(
                id: 500, day: "2025-04-01", shard: 7, key: key, state: .uploaded, holder: "rebuild", token: 0, fileCount: 12, bytes: 1_200,
                size: 4_096, etag: "e500")
            try require(try await store.importContainer(found), c, "the first import")
            try require(try await store.importContainer(found) == false, c, "the same container imported twice")
            var clash = found
            clash.id = 501
            try require(try await store.importContainer(clash) == false, c, "a second record of one key")
            let listed = try await store.containers(state: .uploaded, shard: 7, day: "2025-04-01")
            try require(
                listed.map(\.id) == [500] && listed.first?.etag == "e500" && listed.first?.size == 4_096 && listed.first?.fileCount == 12
                    && listed.first?.bytes == 1_200 && listed.first?.key == key, c, "imported \(listed)")
            guard let lease = try await store.acquireLease(shard: 7, holder: a, ttlSeconds: 30) else {
                throw ConformanceFailure(check: c, message: "no grant")
            }
            let next = try await store.createContainer(day: "2025-04-01", shard: 7, lease: lease, keyPrefix: "p")
            try require(next.id > 500, c, "a container created after the import has id \(next.id)")
        }

        await runner.run("tombstones: each name once, polled in order after a sequence number, found by name") {
            let c = "tombstones: each name once, polled in order after a sequence number, found by name"
            let store = try await makeStore()
            defer { Task { await store.close() } }
            try require(try await store.tombstones(afterSeq: 0, limit: 10).isEmpty, c, "a fresh store has tombstones")
            let added = try await store.addTombstones([
                Tombstone(name: "A_1", reason: "ticket 7 ü", origin: "delete", containerID: 3, bytes: 40),
                Tombstone(name: "A_2", reason: "retention 30d", origin: "retention", containerID: nil, bytes: 0),
            ])
            try require(added == 2, c, "added \(added)")
            try require(try await store.addTombstones([Tombstone(name: "A_1", reason: "again", origin: "delete", containerID: 4, bytes: 1)]) == 0, c, "a second tombstone of one name")
            // Deletes of one name at once (on the store's several connections, where it has them):
            // exactly one is told it added it, and none fails.
            let racers = try await withThrowingTaskGroup(of: [String].self) { group in
                for i in 0..<8 {
                    group.addTask { try await store.addTombstonesNamingAdded([Tombstone(name: "A_R", reason: "race \(i)", origin: "delete", containerID: nil, bytes: 0)]) }
                }
                return try await group.reduce(into: [String]()) { $0 += $1 }
            }
            try require(racers == ["A_R"], c, "eight deletes of one name at once told \(racers.count) they added it")
            let mixed = try await store.addTombstonesNamingAdded([
                Tombstone(name: "A_1", reason: "again", origin: "delete", containerID: nil, bytes: 0),
                Tombstone(name: "A_S", reason: "new", origin: "delete", containerID: nil, bytes: 0),
            ])
            try require(mixed == ["A_S"], c, "a batch of one old and one new name named \(mixed)")
            let all = try await store.tombstones(afterSeq: 0, limit: 10)
            try require(all.map(\.name) == ["A_1", "A_2", "A_R", "A_S"] && all[0].seq < all[1].seq && all[0].deletedAt > 0, c, "polled \(all)")
            try require(all[0].reason == "ticket 7 ü" && all[0].containerID == 3 && all[0].bytes == 40 && all[1].containerID == nil, c, "\(all[0])")
            try require(try await store.tombstones(afterSeq: all[0].seq, limit: 10).map(\.name) == ["A_2", "A_R", "A_S"], c, "after the first")
            try require(try await store.tombstones(afterSeq: 0, limit: 1).map(\.name) == ["A_1"], c, "limit 1")
            try require(try await store.tombstone(named: "A_2")?.origin == "retention", c, "by name")
            try require(try await store.tombstone(named: "A_3") == nil, c, "a name never deleted")
            // Reassigned to the container that holds the bytes now; and a tombstone naming a
            // container compacted since is recorded against its replacement.
            try await store.assignTombstones(names: ["A_1", "A_9"], toContainer: 8)
            try require(try await store.tombstone(named: "A_1")?.containerID == 8, c, "A_1 not reassigned")
            guard let lease = try await store.acquireLease(shard: 9, holder: LeaseHolder(pod: "t", instance: "i"), ttlSeconds: 60) else {
                throw ConformanceFailure(check: c, message: "no lease")
            }
            let old = try await store.createContainer(day: "2025-06-01", shard: 9, lease: lease, keyPrefix: "p")
            try require(try await store.markUploaded(containerID: old.id, fileCount: 1, bytes: 1, size: 90, etag: "o", lease: lease), c, "upload")
            let new = try await store.beginCompaction(day: "2025-06-01", shard: 9, lease: lease, keyPrefix: "p")
            try require(
                try await store.finishCompaction(containerID: new.id, fileCount: 1, bytes: 1, size: 90, etag: "n", replacing: [old.id], lease: lease), c,
                "compaction")
            _ = try await store.addTombstones([Tombstone(name: "A_5", reason: "late", origin: "delete", containerID: old.id, bytes: 1)])
            try require(try await store.tombstone(named: "A_5")?.containerID == new.id, c, "a tombstone of a compacted container kept its old id")
        }

        await runner.run("dead letters") {
            let c = "dead letters"
            let store = try await makeStore()
            defer { Task { await store.close() } }
            let letters = (1...3).map { DeadLetter(source: "s", rowID: "\($0)", desName: $0 == 1 ? nil : "N\($0)", stage: "packer", reason: "r\($0) ü") }
            try await store.addDeadLetters(letters)
            let newest = try await store.deadLetters(limit: 2)
            try require(newest.map(\.rowID) == ["3", "2"] && newest.first?.reason == "r3 ü", c, "newest two: \(newest)")
            // The same row failing again at the same stage keeps its one unresolved letter; another stage is another letter.
            try await store.addDeadLetters([
                DeadLetter(source: "s", rowID: "2", desName: "N2", stage: "packer", reason: "again"),
                DeadLetter(source: "s", rowID: "2", desName: "N2", stage: "marker", reason: "named badly"),
            ])
            let all = try await store.deadLetters(limit: 10)
            try require(all.filter { $0.rowID == "2" && $0.stage == "packer" }.map(\.reason) == ["r2 ü"], c, "a second letter for one failure: \(all)")
            try require(all.count == 4 && all.first?.stage == "marker", c, "letters: \(all)")
            // Listed oldest first by source and stage; closed once; a failure after closing is a new letter.
            try await store.addDeadLetters([DeadLetter(source: "t", rowID: "9", desName: nil, stage: "packer", reason: "other source")])
            let packer = try await store.deadLetters(matching: DeadLetterQuery(source: "s", stage: "packer"))
            try require(packer.map(\.letter.rowID) == ["1", "2", "3"] && packer.allSatisfy { $0.resolvedAt == nil && $0.createdAt > 0 }, c, "s/packer: \(packer)")
            let first = packer.map(\.id)
            try require(try await store.resolveDeadLetters(ids: [first[0], first[1]]) == 2, c, "closing two letters")
            try require(try await store.resolveDeadLetters(ids: [first[0]]) == 0, c, "a closed letter closed again")
            let open = try await store.deadLetters(matching: DeadLetterQuery(source: "s"))
            try require(open.map(\.letter.rowID) == ["3", "2"] && open.map(\.letter.stage) == ["packer", "marker"], c, "open letters of s: \(open)")
            let closed = try await store.deadLetters(matching: DeadLetterQuery(ids: [first[0], first[1]], includeResolved: true))
            try require(closed.count == 2 && closed.allSatisfy { $0.resolvedAt != nil }, c, "closed letters: \(closed)")
            try await store.addDeadLetters([DeadLetter(source: "s", rowID: "1", desName: nil, stage: "packer", reason: "failed again")])
            let again = try await store.deadLetters(matching: DeadLetterQuery(source: "s", stage: "packer"))
            try require(again.map(\.letter.reason) == ["r3 ü", "failed again"], c, "after closing, a new failure: \(again)")
            try require(try await store.deadLetters(matching: DeadLetterQuery(stage: "retire")).isEmpty, c, "letters of a stage with none")
            try await store.healthCheck()
        }
        await runner.run("events: every committed change announced once, in order; nothing for a change refused") {
            let c = "events: every committed change announced once, in order; nothing for a change refused"
            let store = try await makeStore()
            defer { Task { await store.close() } }
            let start = try await store.eventBounds()?.last ?? 0
            func since() async throws -> [StoreEvent] { try await store.events(afterSeq: start, limit: 1_000) }
            guard let lease = try await store.acquireLease(shard: 4, holder: a, ttlSeconds: 60) else {
                throw ConformanceFailure(check: c, message: "no lease")
            }
            let old = try await store.createContainer(day: "2025-07-01", shard: 4, lease: lease, keyPrefix: "ev")
            try require(try await since().isEmpty, c, "a container being written was announced")
            try require(try await store.markUploaded(containerID: old.id, fileCount: 1, bytes: 1, size: 90, etag: "o", lease: lease), c, "upload")
            // The same write again (a retry whose first answer was lost) succeeds and announces
            // nothing more; other values are refused.
            try require(try await store.markUploaded(containerID: old.id, fileCount: 1, bytes: 1, size: 90, etag: "o", lease: lease), c, "the upload retried")
            try require(!(try await store.markUploaded(containerID: old.id, fileCount: 1, bytes: 1, size: 91, etag: "o", lease: lease)), c, "a second upload")
            var seen = try await since()
            try require(
                seen.map(\.kind) == [.containerUploaded] && seen[0].containerID == old.id && seen[0].containerKey == old.key
                    && seen[0].day == "2025-07-01" && seen[0].shard == 4 && seen[0].createdAt > 0, c, "after the upload: \(seen)")
            _ = try await store.addTombstones([
                Tombstone(name: "E_1", reason: "r", origin: "delete", containerID: old.id, bytes: 1),
                Tombstone(name: "E_2", reason: "r", origin: "delete", containerID: nil, bytes: 0),
            ])
            _ = try await store.addTombstones([Tombstone(name: "E_1", reason: "again", origin: "delete", containerID: old.id, bytes: 1)])
            let new = try await store.beginCompaction(day: "2025-07-01", shard: 4, lease: lease, keyPrefix: "ev")
            let stranger = LeaseHolder(pod: "nobody", instance: "0")
            let stale = ShardLease(shard: lease.shard, holder: stranger, token: lease.token + 100, expiresAt: lease.expiresAt, isNewGrant: false)
            try require(
                !(try await store.finishCompaction(containerID: new.id, fileCount: 1, bytes: 1, size: 9, etag: "n", replacing: [old.id], lease: stale)), c,
                "a compaction under a lease not held finished")
            try require(
                try await store.finishCompaction(containerID: new.id, fileCount: 1, bytes: 1, size: 9, etag: "n", replacing: [old.id], lease: lease), c,
                "compaction")
            try await store.containerObjectDeleted(id: old.id)
            try await store.containerObjectDeleted(id: old.id)
            try await store.addRetireIntents(source: "src", rowIDs: ["r1", "r2"])
            try await store.clearRetireIntents(source: "src", rowIDs: ["r1", "r2", "r3"])
            seen = try await since()
            try require(
                seen.map(\.kind) == [
                    .containerUploaded, .tombstone, .tombstone, .containerUploaded, .containerRetired, .containerDeleted, .sourceRetired, .sourceRetired,
                ], c, "kinds: \(seen.map(\.kind.rawValue))")
            try require(seen.map(\.seq) == seen.map(\.seq).sorted() && Set(seen.map(\.seq)).count == seen.count, c, "ids not increasing")
            try require(seen[1].name == "E_1" && seen[2].name == "E_2" && seen[1].containerID == old.id, c, "tombstones: \(seen[1...2])")
            try require(seen[3].containerID == new.id && seen[4].containerID == old.id && seen[5].containerID == old.id, c, "containers: \(seen[3...5])")
            try require(Set(seen[6...].map { "\($0.source ?? "")/\($0.rowID ?? "")" }) == ["src/r1", "src/r2"], c, "retirements: \(seen[6...])")
            // Paged after an id, bounded by the limit; the bounds cover them.
            try require(try await store.events(afterSeq: seen[2].seq, limit: 2).map(\.seq) == [seen[3].seq, seen[4].seq], c, "a page")
            guard let bounds = try await store.eventBounds() else { throw ConformanceFailure(check: c, message: "no bounds") }
            try require(bounds.first <= seen[0].seq && bounds.last == seen.last?.seq, c, "bounds \(bounds)")
            // Nothing is written after the first wait starts listening: no wake-up.
            try require(!(try await store.waitForEvents(timeoutSeconds: 0.05)), c, "woken with nothing written")
        }
        return runner.report
    }
}
