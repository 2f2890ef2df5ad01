import DESKit
import DESKitTesting
import Foundation
import Testing
import __NAME__Source

/// The conformance kit every DES source passes, run on this package's source.
struct CatalogFixture: SourceFixture {
    func makeConnector(rows: [FixtureRow], poolSize: Int) async throws -> any SourceConnector {
        let dir = NSTemporaryDirectory() + "__TYPE__-conformance-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var lines: [String] = []
        for row in rows {
            var object: [String: Any] = ["id": row.id, "path": row.key]
            if let size = row.size { object["size"] = size }
            if let note = row.note { object["note"] = note }
            if let rank = row.rank { object["rank"] = rank }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            lines.append(String(decoding: data, as: UTF8.self))
        }
        let path = dir + "/catalog.jsonl"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        var table = TableConfig(name: "catalog")
        table.columns.id = "id"
        table.columns.s3Key = "path"
        table.columns.sizeBytes = "size"
        table.columns.metadataColumns = ["note", "rank"]
        let source = try __NAME__Source(name: "fixture", catalogPath: path, table: table)
        // Rows the fixture gives a name are named and pending, as a marker would leave them.
        let named = rows.filter { $0.desName != nil }
        if !named.isEmpty {
            let byID = Dictionary(uniqueKeysWithValues: named.map { (String($0.id), $0) })
            _ = try await source.nameRows(limit: rows.count) { unnamed in
                unnamed.compactMap { u in
                    byID[u.rowID].map { NameAssignment(rowID: u.rowID, desName: $0.desName ?? "", hash: "", shard: $0.shard ?? 0) }
                }
            }
        }
        return source
    }
}

@Suite struct __NAME__ConformanceTests {
    @Test("The source passes the DES conformance kit")
    func conformance() async throws {
        let report = await SourceConnectorConformance.run(fixture: CatalogFixture())
        #expect(report.failures.isEmpty, "\(report)")
        #expect(report.passed.count >= 6)
    }

    @Test("Changes survive a reopen: the journal is replayed")
    func journalReplay() async throws {
        let dir = NSTemporaryDirectory() + "__TYPE__-journal-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/catalog.jsonl"
        try "{\"id\": 1, \"path\": \"a\"}\n{\"id\": 2, \"path\": \"b\"}\n".write(toFile: path, atomically: true, encoding: .utf8)
        var table = TableConfig(name: "catalog")
        table.columns.s3Key = "path"
        let first = try __NAME__Source(name: "s", catalogPath: path, table: table)
        _ = try await first.nameRows(limit: 10) { $0.map { NameAssignment(rowID: $0.rowID, desName: "N" + $0.rowID, hash: "", shard: 0) } }
        let claimed = try await first.claim(shards: [0], limit: 1, holder: "h")
        _ = try await first.markPacked(rowIDs: claimed.map(\.rowID), container: "c1", holder: "h")
        await first.close()
        let again = try __NAME__Source(name: "s", catalogPath: path, table: table)
        let stats = try await again.stats()
        #expect(stats.packed == 1 && stats.pending == 1)
        #expect(try await again.packedRows(afterRowID: nil, limit: 10).map(\.container) == ["c1"])
    }
}
