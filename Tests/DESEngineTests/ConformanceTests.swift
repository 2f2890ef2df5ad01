import DESKit
import DESStorage
import DESSQLDialects
import DESKitTesting
import DESPluginSQLite
import Foundation
import Testing

/// The SQLite plugin against the conformance kit (every plugin, stock or custom, runs the same suites).
struct SQLiteSourceFixture: SourceFixture {
    let dir: String

    func makeConnector(rows: [FixtureRow], poolSize: Int) async throws -> any SourceConnector {
        let path = dir + "/catalog-\(UUID().uuidString).sqlite"
        var columns = ColumnMapping()
        columns.s3Key = "body_path"
        columns.sizeBytes = "size_bytes"
        columns.metadataColumns = ["note", "rank"]
        let table = TableConfig(name: "files", columns: columns)
        let setup = try await SQLiteConnection.open(path: path)
        try await setup.withTransaction { s in
            try s.execute(
                """
                CREATE TABLE files (id INTEGER PRIMARY KEY, body_path TEXT NOT NULL, size_bytes INTEGER, note TEXT, rank INTEGER,
                  des_status TEXT, des_name TEXT, des_shard INTEGER, des_container TEXT, des_claimed_by TEXT,
                  des_claimed_at REAL, des_error TEXT)
                """)
            for r in rows {
                try s.execute(
                    "INSERT INTO files (id, body_path, size_bytes, note, rank, des_status, des_name, des_shard) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    [
                        .int(Int64(r.id)), .text(r.key), r.size.map { .int($0) } ?? .null, r.note.map { .text($0) } ?? .null,
                        r.rank.map { .int($0) } ?? .null, r.desName == nil ? .null : .text(table.statusPendingValue),
                        r.desName.map { .text($0) } ?? .null, r.shard.map { .int(Int64($0)) } ?? .null,
                    ])
            }
        }
        await setup.close()
        let source = SourceConfig(
            name: "catalog", connection: ConnectionConfig(type: "sqlite", database: path, poolSize: poolSize), table: table,
            bodies: BodiesConfig(type: "local", settings: PluginSettings(LocalBodiesConfig(root: dir))))
        let pool = SQLConnectionPool(size: poolSize) { try await SQLiteConnection.open(path: path, create: false) }
        return try SQLSourceConnector(config: source, dialect: SQLiteDialect(), pool: pool)
    }
}

@Suite("Conformance kit: SQLite") struct SQLiteConformanceTests {
    @Test("The SQLite source passes the SourceConnector suite")
    func source() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let report = await SourceConnectorConformance.run(fixture: SQLiteSourceFixture(dir: d.dir))
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 13)
    }

    @Test("The SQLite metadata store passes the MetadataStore suite")
    func metadata() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let dir = d.dir
        let report = await MetadataStoreConformance.run {
            let store = try await SQLiteMetadataStore.open(path: dir + "/meta-\(UUID().uuidString).sqlite")
            try await store.migrate()
            return store
        }
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 10)
    }

    @Test("The SQLite outbox stays bounded through 100,000 events, keeping the newest")
    func outboxBounded() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let store = try await SQLiteMetadataStore.open(path: d.dir + "/outbox.sqlite")
        defer { Task { await store.close() } }
        try await store.migrate()
        store.eventRetention = 10_000
        for batch in 0..<100 {
            _ = try await store.addTombstones((0..<1_000).map { Tombstone(name: "S_\(batch)_\($0)", reason: "soak", origin: "delete", containerID: nil, bytes: 0) })
        }
        let bounds = try #require(try await store.eventBounds())
        let kept = bounds.last - bounds.first + 1
        #expect(bounds.last == 100_000 && kept >= 10_000 && kept <= 10_000 + 1_024, "\(bounds)")
        let newest = try await store.events(afterSeq: bounds.last - 1, limit: 5)
        #expect(newest.map(\.name) == ["S_99_999"])
        // SQLite waits by sleeping: no wake-ups, the follower polls.
        #expect(try await store.waitForEvents(timeoutSeconds: 0.01) == false)
    }
}

/// A connector that forgets who holds a claim: the kit must catch it.
struct CarelessConnector: SourceConnector {
    let base: any SourceConnector
    var name: String { base.name }
    func claim(shards: [Int], limit: Int, holder: String) async throws -> [PendingFile] {
        try await base.claim(shards: shards, limit: limit, holder: holder)
    }
    func markPacked(rowIDs: [String], container: String, holder: String?) async throws -> Int {
        try await base.markPacked(rowIDs: rowIDs, container: container, holder: nil)  // the bug
    }
    func markFailed(_ rows: [FailedRow], holder: String?) async throws -> Int { try await base.markFailed(rows, holder: holder) }
    func releaseClaims(rowIDs: [String], holder: String?) async throws -> Int { try await base.releaseClaims(rowIDs: rowIDs, holder: holder) }
    func staleClaims(shards: [Int]?, excludingHolder: String?, olderThanSeconds: Double?) async throws -> [PendingFile] {
        try await base.staleClaims(shards: shards, excludingHolder: excludingHolder, olderThanSeconds: olderThanSeconds)
    }
    func nameRows(limit: Int, assign: @escaping @Sendable ([UnnamedRow]) throws -> [NameAssignment]) async throws -> Int {
        try await base.nameRows(limit: limit, assign: assign)
    }
    func packedRows(afterRowID: String?, limit: Int) async throws -> [PackedRow] { try await base.packedRows(afterRowID: afterRowID, limit: limit) }
    func stats() async throws -> SourceStats { try await base.stats() }
    func readPending(shards: [Int], afterRowID: String?, limit: Int) async throws -> [PendingFile] {
        try await base.readPending(shards: shards, afterRowID: afterRowID, limit: limit)
    }
    func markPackedUnlessPacked(rowIDs: [String], names: [String], container: String) async throws -> Int {
        try await base.markPackedUnlessPacked(rowIDs: rowIDs, names: names, container: container)
    }
    func markSourceDeleted(rowIDs: [String]) async throws -> Int { try await base.markSourceDeleted(rowIDs: rowIDs) }
    func rowsSharingBodies(keys: [String], excluding rowIDs: Set<String>) async throws -> [String: SharedBody] {
        try await base.rowsSharingBodies(keys: keys, excluding: rowIDs)
    }
    func bodiesNotYetPacked(afterRowID: String?, limit: Int) async throws -> [RowBody]? {
        try await base.bodiesNotYetPacked(afterRowID: afterRowID, limit: limit)
    }
    func markDeleted(names: [String]) async throws -> Int { try await base.markDeleted(names: names) }
    func returnFailedRows(_ rowIDs: [String], to target: FailedRowTarget) async throws -> Int {
        try await base.returnFailedRows(rowIDs, to: target)
    }
    func rowsNamed(_ names: [String]) async throws -> [NamedRow] {
        try await base.rowsNamed(names)
    }
    func markFailedIfPending(_ rows: [FailedRow]) async throws -> Int { try await base.markFailedIfPending(rows) }
    func healthCheck() async throws { try await base.healthCheck() }
    func close() async { await base.close() }
}

struct CarelessFixture: SourceFixture {
    let inner: SQLiteSourceFixture
    func makeConnector(rows: [FixtureRow], poolSize: Int) async throws -> any SourceConnector {
        CarelessConnector(base: try await inner.makeConnector(rows: rows, poolSize: poolSize))
    }
}

@Suite("Conformance kit catches a broken plugin") struct ConformanceKitBitesTests {
    @Test("A connector that marks rows packed for any holder fails the holder checks (single and batched marks), and only those")
    func carelessConnectorFails() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let report = await SourceConnectorConformance.run(fixture: CarelessFixture(inner: SQLiteSourceFixture(dir: d.dir)))
        #expect(!report.isOK)
        #expect(
            report.failures.map(\.check) == [
                "only the holder marks packed, failed or released",
                "batched marks: each container's rows get its key, counted per container, as the single marks would",
            ], "\(report)")
    }
}

/// Catalogs shaped as users have them, in SQLite: declared types `TIMESTAMP`, `DATETIME`, `JSON`,
/// `VARCHAR` keys (SQLite keeps text as text), an enum as text.
struct SQLiteShapesFixture: CatalogShapesFixture {
    let path: String
    var schema: String? { nil }
    var dialect: any SQLDialect { SQLiteDialect() }

    func columnType(_ type: CatalogColumnType, table: String) -> String {
        switch type {
        case .bigint: return "BIGINT"
        case .integer: return "INTEGER"
        case .varchar: return "VARCHAR(64)"
        case .text, .enumeration: return "TEXT"
        case .uuid: return "UUID"
        case .timestampWithTimeZone: return "TIMESTAMP"
        case .timestamp: return "DATETIME"
        case .epochSeconds: return "REAL"
        case .json: return "JSON"
        }
    }

    func execute(_ statements: [(sql: String, binds: [SQLValue])]) async throws {
        let c = try await SQLiteConnection.open(path: path)
        defer { Task { await c.close() } }
        try await c.withTransaction { s in
            for statement in statements { try s.execute(statement.sql, statement.binds) }
        }
    }

    func makeConnector(table: TableConfig) async throws -> any SourceConnector {
        let source = SourceConfig(name: "shapes", connection: ConnectionConfig(type: "sqlite", database: path, poolSize: 1), table: table)
        let path = self.path
        let pool = SQLConnectionPool(size: 1) { try await SQLiteConnection.open(path: path, create: false) }
        return try SQLSourceConnector(config: source, dialect: SQLiteDialect(), pool: pool)
    }
}

@Suite("Conformance kit: SQLite catalogs as users have them") struct SQLiteCatalogShapesTests {
    @Test("The SQLite source passes the CatalogShapes suite")
    func shapes() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let report = await CatalogShapes.run(fixture: SQLiteShapesFixture(path: d.dir + "/shapes.sqlite"))
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == CatalogShapes.shapes().count)
    }
}
