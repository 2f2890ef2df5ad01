import DESKit
import DESKitTesting
import DESStorage
import Foundation
import Testing

@testable import DESEngine

/// `claim_mode: lease`, the read that starts over while rows are in flight: ids and names first,
/// whole rows only of rows not in flight, with the same outcome as reading whole rows.
@Suite("Lease mode: reads that start over") struct LeaseReadTests {
    static let limits = PackerStateMachine.Limits(
        maxFiles: 100, maxBytes: 1 << 30, maxAgeSeconds: 60, checkpointEveryFiles: 100, checkpointEverySeconds: 60)

    @Test("rows in flight are skipped, a twin is noticed, the cursor is where the whole-row read leaves it")
    func startsOver() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let rows = (1...20).map { FixtureRow(id: $0, key: "k\($0)", desName: "N\($0)", shard: $0 % 2) }
        let source = try await SQLiteSourceFixture(dir: d.dir).makeConnector(rows: rows, poolSize: 1)
        defer { Task { await source.close() } }
        #expect(try await source.readPendingNames(shards: [0, 1], afterRowID: nil, limit: 1) != nil, "the SQL source reads names alone")
        // In flight: rows 1 to 15 but 4 (named late, below the cursor), and row 7 under a name
        // it no longer has (a twin: it is not read as fresh, and the read says it met one).
        var machine = PackerStateMachine(mode: .lease, limits: Self.limits)
        let held = (1...15).filter { $0 != 4 }.map { (source: source.name, rowID: "\($0)", name: $0 == 7 ? "OLD7" : "N\($0)") }
        machine.taken(rows: held, shards: [0, 1], cursors: [:])
        let plan = machine.readPlan(shards: [0, 1])
        #expect(plan.cursors.isEmpty, "the read starts over")
        let fetcher = LocalBodyFetcher(root: d.dir)
        for (limit, files, cursor) in [(3, ["4", "16", "17"], "17"), (100, ["4", "16", "17", "18", "19", "20"], nil)] as [(Int, [String], String?)] {
            var seen: [[String]] = []
            // The SQL source (ids and names first), then the same rows through a connector with whole-row reads only.
            for connector in [source, CarelessConnector(base: source)] as [any SourceConnector] {
                let batch = try await Packer.readBatch(
                    sources: [PackerSource(connector: connector, fetcher: fetcher)], shards: [0, 1], limits: [source.name: limit], plan: plan,
                    fetchConcurrency: 1, epoch: 0, retry: RetryPolicy(maxRetries: 0))
                #expect(batch.files.map(\.rowID) == files, "limit \(limit)")
                #expect(batch.files.map(\.desName) == files.map { "N\($0)" } && batch.files.allSatisfy { $0.body.key == "k\($0.rowID)" })
                #expect(batch.twins, "row 7 is a twin of a row in flight")
                #expect(batch.cursors[source.name] == cursor, "limit \(limit): cursor \(String(describing: batch.cursors[source.name]))")
                seen.append(batch.files.map(\.rowID))
            }
            #expect(seen[0] == seen[1])
        }
    }
}
