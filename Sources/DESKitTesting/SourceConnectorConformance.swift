import DESKit
import Foundation
import Synchronization

/// A catalog row a ``SourceFixture`` puts in its database for the conformance suite.
public struct FixtureRow: Sendable {
    /// Primary key.
    public var id: Int
    /// Body key.
    public var key: String
    /// The DES name; nil for a row that still needs one (then `shard` is nil too).
    public var desName: String?
    /// The shard.
    public var shard: Int?
    /// The size column.
    public var size: Int64?
    /// The text metadata column (`note`): may be NULL, unicode, or long.
    public var note: String?
    /// The integer metadata column (`rank`).
    public var rank: Int64?

    /// Creates a row.
    public init(id: Int, key: String, desName: String?, shard: Int?, size: Int64? = nil, note: String? = nil, rank: Int64? = nil) {
        self.id = id
        self.key = key
        self.desName = desName
        self.shard = shard
        self.size = size
        self.note = note
        self.rank = rank
    }
}

extension FixtureRow {
    /// The `INSERT`s that put `rows` into a SQL fixture table with columns `id, body_path,
    /// size_bytes, note, <rank>, des_status, des_name, des_shard` (named rows pending as
    /// `DES_TODO`), `batch` rows a statement, in the driver's placeholders.
    public static func inserts(
        _ rows: [FixtureRow], into table: String, rankColumn: String = "rank", batch: Int = 1000,
        placeholder: (Int) -> String
    ) -> [(sql: String, binds: [SQLValue])] {
        stride(from: 0, to: rows.count, by: batch).map { start in
            var binds: [SQLValue] = []
            var tuples: [String] = []
            for r in rows[start..<min(rows.count, start + batch)] {
                let n = binds.count
                tuples.append("(" + (1...8).map { placeholder(n + $0) }.joined(separator: ", ") + ")")
                binds += [
                    .int(Int64(r.id)), .text(r.key), r.size.map { .int($0) } ?? .null, r.note.map { .text($0) } ?? .null,
                    r.rank.map { .int($0) } ?? .null, r.desName == nil ? .null : .text("DES_TODO"),
                    r.desName.map { .text($0) } ?? .null, r.shard.map { .int(Int64($0)) } ?? .null,
                ]
            }
            let sql = "INSERT INTO \(table) (id, body_path, size_bytes, note, \(rankColumn), des_status, des_name, des_shard) VALUES "
                + tuples.joined(separator: ", ")
            return (sql, binds)
        }
    }
}

/// What a source plugin provides to run ``SourceConnectorConformance``: a fresh catalog table
/// holding exactly `rows` (named rows pending, unnamed rows waiting for a name), with metadata
/// columns `note` (text) and `rank` (integer) configured in that order, and a connector over it.
public protocol SourceFixture: Sendable {
    /// A new, empty catalog filled with `rows`, and a connector (pool of `poolSize`) over it.
    func makeConnector(rows: [FixtureRow], poolSize: Int) async throws -> any SourceConnector
}

/// The behaviour the engine relies on from every ``SourceConnector``, checked once here for all.
public enum SourceConnectorConformance {
    /// Runs every check against fresh catalogs from `fixture`.
    public static func run(fixture: any SourceFixture) async -> ConformanceReport {
        var runner = CheckRunner()

        await runner.run("8 concurrent claimers over 20,000 rows: every row exactly once") {
            let c = "8 concurrent claimers over 20,000 rows: every row exactly once"
            let rows = (1...20_000).map { FixtureRow(id: $0, key: "k/\($0)", desName: "N\($0)", shard: $0 % 16) }
            let source = try await fixture.makeConnector(rows: rows, poolSize: 8)
            defer { Task { await source.close() } }
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for i in 0..<8 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let batch = try await source.claim(shards: Array(0..<16), limit: 97, holder: "claimer-\(i)")
                            if batch.isEmpty { return mine }
                            mine += batch.map(\.rowID)
                        }
                    }
                }
                var all: [[String]] = []
                for try await ids in group { all.append(ids) }
                return all
            }
            let flat = claimed.flatMap { $0 }
            try require(flat.count == 20_000 && Set(flat).count == 20_000, c, "\(flat.count) claims of \(Set(flat).count) distinct rows")
            let stats = try await source.stats()
            try require(stats.claimed == 20_000 && stats.pending == 0, c, "stats after claiming: \(stats)")
        }

        await runner.run("the shard filter applies before the limit") {
            let c = "the shard filter applies before the limit"
            var rows = (1...3000).map { FixtureRow(id: $0, key: "k\($0)", desName: "N\($0)", shard: 1) }
            for i in [2990, 2995, 2999] { rows[i - 1].shard = 7 }
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            let first = try await source.claim(shards: [7], limit: 2, holder: "h")
            let second = try await source.claim(shards: [7], limit: 2, holder: "h")
            let third = try await source.claim(shards: [7], limit: 2, holder: "h")
            try require(first.count == 2 && first.allSatisfy { $0.shard == 7 }, c, "first claim \(first.map(\.rowID))")
            try require(second.map(\.rowID) == ["2999"] || Set(first.map(\.rowID) + second.map(\.rowID)) == ["2990", "2995", "2999"], c, "second claim \(second.map(\.rowID))")
            try require(third.isEmpty, c, "a third claim found \(third.count) rows")
        }

        await runner.run("only the holder marks packed, failed or released") {
            let c = "only the holder marks packed, failed or released"
            let rows = (1...6).map { FixtureRow(id: $0, key: "k\($0)", desName: "N\($0)", shard: 0) }
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            let mine = try await source.claim(shards: [0], limit: 6, holder: "me").map(\.rowID)
            try require(mine.count == 6, c, "claimed \(mine.count)")
            try require(try await source.markPacked(rowIDs: [mine[0]], container: "x", holder: "other") == 0, c, "another holder marked packed")
            try require(try await source.markFailed([FailedRow(rowID: mine[1], reason: "r")], holder: "other") == 0, c, "another holder marked failed")
            try require(try await source.releaseClaims(rowIDs: [mine[2]], holder: "other") == 0, c, "another holder released")
            try require(try await source.markPacked(rowIDs: [mine[0]], container: "x", holder: "me") == 1, c, "the holder could not mark packed")
            try require(try await source.markFailed([FailedRow(rowID: mine[1], reason: "bad ü")], holder: "me") == 1, c, "the holder could not mark failed")
            try require(try await source.releaseClaims(rowIDs: [mine[2]], holder: "me") == 1, c, "the holder could not release")
            try require(try await source.markPacked(rowIDs: [mine[0]], container: "y", holder: "me") == 0, c, "a packed row was packed again")
            let held = try await source.staleClaims(shards: [0], excludingHolder: nil, olderThanSeconds: nil)
            try require(Set(held.map(\.rowID)) == Set(mine[3...]) && held.allSatisfy { $0.claimedBy == "me" }, c, "claims left \(held.map(\.rowID))")
            let stats = try await source.stats()
            try require(stats.packed == 1 && stats.failed == 1 && stats.pending == 1 && stats.claimed == 3, c, "stats \(stats)")
            let packed = try await source.packedRows(afterRowID: nil, limit: 10)
            try require(packed.map(\.container) == ["x"] && packed.first?.desName == "N" + mine[0], c, "packedRows \(packed)")
        }

        await runner.run("stale claims, with their claimer") {
            let c = "stale claims, with their claimer"
            let rows = (1...4).map { FixtureRow(id: $0, key: "k\($0)", desName: "N\($0)", shard: $0 % 2) }
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            _ = try await source.claim(shards: [0], limit: 10, holder: "a")
            _ = try await source.claim(shards: [1], limit: 10, holder: "b")
            let notA = try await source.staleClaims(shards: nil, excludingHolder: "a", olderThanSeconds: nil)
            try require(Set(notA.map(\.rowID)) == ["1", "3"] && notA.allSatisfy { $0.claimedBy == "b" }, c, "excluding a: \(notA.map { ($0.rowID, $0.claimedBy) })")
            let all = try await source.staleClaims(shards: [0, 1], excludingHolder: nil, olderThanSeconds: nil)
            try require(all.count == 4, c, "all claims: \(all.count)")
            let old = try await source.staleClaims(shards: nil, excludingHolder: nil, olderThanSeconds: 3600)
            try require(old.isEmpty, c, "fresh claims counted as older than an hour: \(old.count)")
        }

        await runner.run("shards with work: pending or claimed rows, not packed, failed or unnamed") {
            let c = "shards with work: pending or claimed rows, not packed, failed or unnamed"
            var rows = (1...8).map { FixtureRow(id: $0, key: "k\($0)", desName: "N\($0)", shard: $0) }
            rows.append(FixtureRow(id: 9, key: "k9", desName: nil, shard: nil))
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            guard let before = try await source.shardsWithWork() else { return }  // nil: the source cannot tell (every shard counts)
            try require(before == Set(1...8), c, "before any claim: \(before.sorted())")
            let claimed = try await source.claim(shards: [1, 2, 3, 4], limit: 10, holder: "h").map(\.rowID)
            try require(claimed.count == 4, c, "claimed \(claimed)")
            let packed = claimed.filter { $0 == "1" || $0 == "2" }
            try require(try await source.markPacked(rowIDs: packed, container: "x", holder: "h") == 2, c, "marked \(packed)")
            try require(try await source.markFailed([FailedRow(rowID: "3", reason: "r")], holder: "h") == 1, c, "failed row 3")
            let after = try await source.shardsWithWork()
            try require(after == Set(4...8), c, "after packing 1, 2 and failing 3 (4 still claimed): \(after.map { $0.sorted() } ?? [])")
        }

        await runner.run("lease mode: keyset reads of pending rows write nothing; a manifest's marks win over a stale claim, never over packed") {
            let c = "lease mode: keyset reads of pending rows write nothing; a manifest's marks win over a stale claim, never over packed"
            var rows = (1...10).map { FixtureRow(id: $0, key: "k\($0)", desName: "N\($0)", shard: $0 % 2) }
            rows.append(FixtureRow(id: 11, key: "k11", desName: nil, shard: nil))
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            let first = try await source.readPending(shards: [0, 1], afterRowID: nil, limit: 4).map(\.rowID)
            try require(first == ["1", "2", "3", "4"], c, "first page \(first)")
            let rest = try await source.readPending(shards: [0, 1], afterRowID: "4", limit: 100).map(\.rowID)
            try require(rest == ["5", "6", "7", "8", "9", "10"], c, "after 4: \(rest)")
            let even = try await source.readPending(shards: [0], afterRowID: nil, limit: 100).map(\.rowID)
            try require(even == ["2", "4", "6", "8", "10"], c, "shard 0: \(even)")
            let read = try await source.readPending(shards: [1], afterRowID: nil, limit: 1)
            try require(read.first?.desName == "N1" && read.first?.body.key == "k1" && read.first?.shard == 1, c, "a read row \(read)")
            let untouched = try await source.stats()
            try require(untouched.pending == 10 && untouched.claimed == 0, c, "reads wrote: \(untouched)")
            // A row claimed by someone else (a paused packer that lost the shard) is not read, and the
            // holder's manifest marks it packed all the same; a packed row is never marked again.
            try require(try await source.claim(shards: [1], limit: 1, holder: "h").map(\.rowID) == ["1"], c, "claim row 1")
            let pending = try await source.readPending(shards: [0, 1], afterRowID: nil, limit: 100).map(\.rowID)
            try require(!pending.contains("1") && pending.count == 9, c, "claimed row read: \(pending)")
            // Where the source reads ids and names alone, they are those of the same read, and the
            // rows of some ids are the rows that read returns (an id no longer pending, or of
            // another shard, is left out).
            if let keys = try await source.readPendingNames(shards: [0, 1], afterRowID: "2", limit: 4) {
                let full = try await source.readPending(shards: [0, 1], afterRowID: "2", limit: 4)
                let (ids, names) = (keys.map(\.rowID), keys.map(\.desName))
                try require(
                    ids == full.map(\.rowID) && ids == ["3", "4", "5", "6"] && names == full.map(\.desName) && keys.allSatisfy { $0.state == .pending },
                    c, "ids and names read \(keys), rows read \(full.map(\.rowID))")
                let some = try await source.readPending(rowIDs: ["6", "1", "3", "11", "99"], shards: [1])
                try require(
                    some.map { "\($0.rowID) \($0.desName) \($0.body.key) \($0.shard)" } == ["3 N3 k3 1"], c,
                    "rows 6 (shard 0), 1 (claimed), 3, 11 (unnamed), 99 (none) of shard 1: \(some.map(\.rowID))")
                try require(try await source.readPending(rowIDs: [], shards: [1]).isEmpty, c, "no ids")
            }
            // Only rows whose id and name both match: id 5 with another row's name marks nothing.
            try require(try await source.markPackedUnlessPacked(rowIDs: ["5"], names: ["N6"], container: "x") == 0, c, "id 5 marked under N6")
            try require(
                try await source.markPackedUnlessPacked(rowIDs: ["1", "2", "3"], names: ["N3", "N1", "N2"], container: "x") == 3, c,
                "mark 1 (claimed), 2, 3")
            try require(try await source.markPackedUnlessPacked(rowIDs: ["2", "3"], names: ["N2", "N3"], container: "y") == 0, c, "a second mark changed rows")
            try require(try await source.markFailedIfPending([FailedRow(rowID: "4", reason: "r"), FailedRow(rowID: "2", reason: "r")]) == 1, c, "fail 4 (and not packed 2)")
            // By name (a row whose id changed in flight is found by its name), whatever the status.
            let named = Set(try await source.rowsNamed(["N5", "N2", "N4", "nobody"]).map { "\($0.rowID) \($0.desName) \($0.state)" })
            try require(named == ["5 N5 pending", "2 N2 packed", "4 N4 failed"], c, "rows named N5, N2, N4: \(named)")
            try require(try await source.markPackedUnlessPacked(rowIDs: ["5"], names: ["N5"], container: "x") == 1, c, "mark 5 as N5")
            let after = try await source.stats()
            try require(after.packed == 4 && after.failed == 1 && after.claimed == 0 && after.pending == 5, c, "after marks: \(after)")
            let left = try await source.readPending(shards: [0, 1], afterRowID: nil, limit: 100).map(\.rowID)
            try require(left == ["6", "7", "8", "9", "10"], c, "pending left \(left)")
        }

        await runner.run("batched marks: each container's rows get its key, counted per container, as the single marks would") {
            let c = "batched marks: each container's rows get its key, counted per container, as the single marks would"
            let rows = (1...12).map { FixtureRow(id: $0, key: "k\($0)", desName: "N\($0)", shard: $0 % 2) }
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            // Row mode: only the holder's claims, and only claimed rows (7 to 12 go back to pending).
            let claimed = try await source.claim(shards: [0, 1], limit: 12, holder: "h").map(\.rowID)
            try require(claimed.count == 12, c, "claimed \(claimed)")
            let back = (7...12).map(String.init)
            try require(try await source.releaseClaims(rowIDs: back, holder: "h") == 6, c, "released \(back)")
            let counts = try await source.markPacked(
                [
                    ContainerMark(container: "a", rowIDs: ["1", "2"]), ContainerMark(container: "b", rowIDs: ["3", "7"]),
                    ContainerMark(container: "c", rowIDs: []), ContainerMark(container: "d", rowIDs: ["4"]),
                ], holder: "h")
            try require(counts == [2, 1, 0, 1], c, "row mode counts \(counts) (7 is pending, not claimed)")
            try require(try await source.markPacked([ContainerMark(container: "e", rowIDs: ["5"])], holder: "other") == [0], c, "another holder marked")
            // Lease mode: by id and name, unless packed already.
            let lease = try await source.markPackedUnlessPacked([
                ContainerMark(container: "f", rowIDs: ["5", "8"], names: ["N5", "N8"]), ContainerMark(container: "g", rowIDs: ["9"], names: ["N10"]),
                ContainerMark(container: "h", rowIDs: ["1", "10"], names: ["N1", "N10"]),
            ])
            try require(lease == [2, 0, 1], c, "lease mode counts \(lease) (9 is not N10; 1 is packed already)")
            let packed = try await source.packedRows(afterRowID: nil, limit: 100)
            let holders = Dictionary(uniqueKeysWithValues: packed.map { ($0.rowID, $0.container) })
            try require(
                holders == ["1": "a", "2": "a", "3": "b", "4": "d", "5": "f", "8": "f", "10": "h"], c, "containers \(holders.sorted { $0.key < $1.key })")
        }

        await runner.run("values: NULL, unicode, a 1 MiB text, integers") {
            let c = "values: NULL, unicode, a 1 MiB text, integers"
            let long = String(repeating: "ä€𝄞x", count: 1 << 18)  // well over 1 MiB of UTF-8
            let rows = [
                FixtureRow(id: 1, key: "k/ü/日本", desName: "N1", shard: 0, size: 42, note: nil, rank: nil),
                FixtureRow(id: 2, key: "k2", desName: "N2", shard: 0, size: nil, note: "héllo \u{1F600}", rank: -7),
                FixtureRow(id: 3, key: "k3", desName: "N3", shard: 0, size: Int64(1) << 40, note: long, rank: Int64.max),
            ]
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            let got = Dictionary(uniqueKeysWithValues: try await source.claim(shards: [0], limit: 10, holder: "h").map { ($0.rowID, $0) })
            try require(got.count == 3, c, "claimed \(got.count)")
            try require(got["1"]?.body.key == "k/ü/日本" && got["1"]?.size == 42, c, "row 1 \(String(describing: got["1"]))")
            try require(got["1"]?.metadata.keys == ["note", "rank"], c, "metadata keys \(String(describing: got["1"]?.metadata.keys))")
            try require(got["1"]?.metadata["note"] == .null && got["1"]?.metadata["rank"] == .null, c, "NULLs \(String(describing: got["1"]?.metadata))")
            try require(got["2"]?.metadata["note"] == .string("héllo \u{1F600}") && got["2"]?.metadata["rank"] == .int(-7), c, "row 2 \(String(describing: got["2"]?.metadata))")
            try require(got["2"]?.size == nil, c, "a NULL size read as \(String(describing: got["2"]?.size))")
            try require(got["3"]?.metadata["note"] == .string(long) && got["3"]?.metadata["rank"] == .int(.max), c, "row 3 (1 MiB text, Int64.max)")
            try require(got["3"]?.size == UInt64(1) << 40, c, "a large size")
        }

        await runner.run("nameRows names rows needing a name, in one statement per batch") {
            let c = "nameRows names rows needing a name, in one statement per batch"
            let rows = (1...50).map { FixtureRow(id: $0, key: "dir/f\($0).bin", desName: $0 <= 40 ? nil : "N\($0)", shard: $0 <= 40 ? nil : 0) }
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            let before = try await source.stats()
            try require(before.unnamed == 40 && before.pending == 10, c, "stats before \(before)")
            let seenBox = Mutex<[String]>([])
            let named = try await source.nameRows(limit: 30) { unnamed in
                seenBox.withLock { $0 += unnamed.map(\.rowID) }
                return unnamed.map { NameAssignment(rowID: $0.rowID, desName: "M" + $0.rowID, hash: "ab", shard: 3) }
            }
            let seen = seenBox.withLock { $0 }
            try require(named == 30 && seen.count == 30 && seen.allSatisfy { Int($0) ?? 99 <= 40 }, c, "named \(named) of \(seen)")
            let rest = try await source.nameRows(limit: 30) { unnamed in
                unnamed.map { NameAssignment(rowID: $0.rowID, desName: "M" + $0.rowID, hash: "cd", shard: 3) }
            }
            try require(rest == 10, c, "second batch named \(rest)")
            try require(try await source.nameRows(limit: 30) { _ in [] } == 0, c, "rows left to name")
            let claimed = try await source.claim(shards: [3], limit: 100, holder: "h")
            try require(claimed.count == 40 && claimed.allSatisfy { $0.desName == "M" + $0.rowID }, c, "named rows are pending in shard 3: \(claimed.count)")
            try await source.healthCheck()
        }

        await runner.run("retired and deleted rows: only packed rows become source-deleted (still listed as packed) or deleted (not listed)") {
            let c = "retired and deleted rows: only packed rows become source-deleted (still listed as packed) or deleted (not listed)"
            let rows = (1...4).map { FixtureRow(id: $0, key: "k\($0)", desName: "N\($0)", shard: 0) }
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            try require(try await source.markSourceDeleted(rowIDs: []) == 0, c, "the empty check wrote rows")
            try require(try await source.claim(shards: [0], limit: 3, holder: "h").count == 3, c, "claim 1, 2, 3")
            try require(try await source.markPacked(rowIDs: ["1", "2"], container: "x", holder: "h") == 2, c, "pack 1, 2")
            // Row 3 is claimed, row 4 pending: neither is retired.
            try require(try await source.markSourceDeleted(rowIDs: ["1", "3", "4"]) == 1, c, "only packed row 1 retires")
            try require(try await source.markSourceDeleted(rowIDs: ["1"]) == 0, c, "a retired row retired again")
            let packed = try await source.packedRows(afterRowID: nil, limit: 10)
            try require(
                packed.map(\.rowID) == ["1", "2"] && packed.map(\.bodyDeleted) == [true, false] && packed.allSatisfy { $0.container == "x" }, c,
                "packed rows \(packed)")
            let stats = try await source.stats()
            try require(stats.retired == 1 && stats.packed == 1 && stats.claimed == 1 && stats.pending == 1, c, "stats \(stats)")
            // Deletes: packed and retired rows become deleted by name; claimed and pending rows do not.
            try require(try await source.markDeleted(names: []) == 0, c, "the empty check wrote rows")
            try require(try await source.markDeleted(names: ["N1", "N2", "N3", "N4", "nobody"]) == 2, c, "delete N1 (retired) and N2 (packed)")
            try require(try await source.markDeleted(names: ["N1"]) == 0, c, "a deleted row deleted again")
            let after = try await source.stats()
            try require(after.deleted == 2 && after.retired == 0 && after.packed == 0, c, "after deletes \(after)")
            try require(try await source.packedRows(afterRowID: nil, limit: 10).isEmpty, c, "deleted rows listed as packed")
        }

        await runner.run("rows listing the same body: retire learns which still need it (not yet packed) and which had it retired") {
            let c = "rows listing the same body: retire learns which still need it (not yet packed) and which had it retired"
            // a: rows 1, 2 (packed); b: 3 (retired), 4 (packed); c: 5 (unnamed), 6 (packed); d: 7 alone; e: 8 (packed), 9 (failed).
            let keys = ["a", "a", "b", "b", "c", "c", "d", "e", "e"].map { "shared/" + $0 }
            let rows = (1...9).map { FixtureRow(id: $0, key: keys[$0 - 1], desName: $0 == 5 ? nil : "N\($0)", shard: $0 == 5 ? nil : 0) }
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            let packed = ["1", "2", "3", "4", "6", "7", "8"]
            try require(try await source.claim(shards: [0], limit: 20, holder: "h").count == 8, c, "claim the 8 named rows")
            try require(try await source.markPacked(rowIDs: packed, container: "x", holder: "h") == 7, c, "pack 7")
            try require(try await source.markFailed([FailedRow(rowID: "9", reason: "no body")], holder: "h") == 1, c, "fail 9")
            try require(try await source.markSourceDeleted(rowIDs: ["3"]) == 1, c, "retire 3")
            let shared = try await source.rowsSharingBodies(keys: ["a", "b", "c", "d", "e"].map { "shared/" + $0 }, excluding: ["1", "4", "6", "7", "8"])
            func state(_ key: String) -> (Bool, Bool) {
                let s = shared["shared/" + key]
                return (s?.neededByUnpacked ?? false, s?.retiredByAnother ?? false)
            }
            try require(state("a") == (false, false), c, "a: the other row is packed: \(shared)")
            try require(state("b") == (false, true), c, "b: the other row was retired: \(shared)")
            try require(state("c") == (true, false), c, "c: the other row is not named yet: \(shared)")
            try require(state("d") == (false, false), c, "d: no other row: \(shared)")
            try require(state("e") == (true, false), c, "e: the other row failed (a retry packs it): \(shared)")
            try require(try await source.rowsSharingBodies(keys: [], excluding: []).isEmpty, c, "no keys, no rows")
            // The rows not yet packed, in id order, in pages: the unnamed row 5 and the failed row 9.
            if let first = try await source.bodiesNotYetPacked(afterRowID: nil, limit: 1) {
                let rest = try await source.bodiesNotYetPacked(afterRowID: first.last?.rowID, limit: 10) ?? []
                let all = first + rest
                try require(all.map(\.rowID) == ["5", "9"] && all.map(\.body.key) == ["shared/c", "shared/e"], c, "rows not yet packed: \(all)")
            }
        }

        await runner.run("failed rows go back (des dlq retry): the marker's to naming, the packer's to pending") {
            let c = "failed rows go back (des dlq retry): the marker's to naming, the packer's to pending"
            let rows = (1...6).map { FixtureRow(id: $0, key: "k\($0)", desName: $0 <= 2 ? nil : "N\($0)", shard: $0 <= 2 ? nil : 0) }
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            // The marker fails row 1; the packer fails rows 3 and 4 (5 is packed, 6 stays pending).
            try require(try await source.markFailed([FailedRow(rowID: "1", reason: "naming failed")], holder: nil) == 1, c, "fail 1")
            try require(try await source.claim(shards: [0], limit: 3, holder: "h").count == 3, c, "claim 3, 4, 5")
            let fails = [FailedRow(rowID: "3", reason: "no body"), FailedRow(rowID: "4", reason: "no body")]
            try require(try await source.markFailed(fails, holder: "h") == 2, c, "fail 3, 4")
            try require(try await source.markPacked(rowIDs: ["5"], container: "x", holder: "h") == 1, c, "pack 5")
            // Only failed rows of the right kind move: 5 (packed), 6 (pending) and 1 (unnamed) are not packing's.
            try require(try await source.returnFailedRows(["1", "3", "5", "6"], to: .packing) == 1, c, "to packing: only 3")
            try require(try await source.returnFailedRows(["1", "4"], to: .naming) == 1, c, "to naming: only 1 (4 is named)")
            try require(try await source.returnFailedRows(["1", "3"], to: .packing) == 0, c, "a returned row returned again")
            let stats = try await source.stats()
            try require(stats.unnamed == 2 && stats.pending == 2 && stats.failed == 1 && stats.packed == 1, c, "after: \(stats)")
            let pending = try await source.claim(shards: [0], limit: 10, holder: "h2").map(\.rowID).sorted()
            try require(pending == ["3", "6"], c, "claimable again: \(pending)")
            let named = try await source.nameRows(limit: 10) { unnamed in
                unnamed.map { NameAssignment(rowID: $0.rowID, desName: "M" + $0.rowID, hash: "ab", shard: 1) }
            }
            try require(named == 2, c, "rows 1 and 2 are named again: \(named)")
        }
        await runner.run("the backlog counts agree with stats below the cap and stop at it") {
            let c = "the backlog counts agree with stats below the cap and stop at it"
            let rows = (1...7).map { FixtureRow(id: $0, key: "k\($0)", desName: $0 <= 2 ? nil : "N\($0)", shard: $0 <= 2 ? nil : 0) }
            let source = try await fixture.makeConnector(rows: rows, poolSize: 1)
            defer { Task { await source.close() } }
            // Row 1 fails naming (2 stays unnamed); 3 and 4 are claimed and 3 fails; 5, 6, 7 stay pending.
            try require(try await source.markFailed([FailedRow(rowID: "1", reason: "naming failed")], holder: nil) == 1, c, "fail 1")
            try require(try await source.claim(shards: [0], limit: 2, holder: "h").count == 2, c, "claim 2 rows")
            let held = try await source.staleClaims(shards: [0], excludingHolder: nil, olderThanSeconds: nil).map(\.rowID).sorted()
            try require(try await source.markFailed([FailedRow(rowID: held[0], reason: "no body")], holder: "h") == 1, c, "fail one claimed row")
            guard let wide = try await source.backlog(cap: 1000, statuses: Set(SourceBacklog.Status.allCases)) else { return }  // the source cannot tell: nothing to check
            let stats = try await source.stats()
            let expected: [SourceBacklog.Status: Int] = [.unnamed: stats.unnamed, .pending: stats.pending, .claimed: stats.claimed, .failed: stats.failed]
            try require(expected == [.unnamed: 1, .pending: 3, .claimed: 1, .failed: 2], c, "stats \(stats)")
            try require(wide.rows == expected, c, "backlog \(wide.rows) against stats \(expected)")
            let narrow = try await source.backlog(cap: 2, statuses: Set(SourceBacklog.Status.allCases))
            try require(narrow?.rows == expected.mapValues { min(2, $0) }, c, "with cap 2: \(narrow?.rows ?? [:])")
            let some = try await source.backlog(cap: 1000, statuses: [.pending, .failed])
            try require(some?.rows == [.pending: 3, .failed: 2], c, "only pending and failed asked: \(some?.rows ?? [:])")
        }
        return runner.report
    }
}
