import DESKit
import DESSQLDialects
import DESKitTesting
import DESPluginPostgreSQL
import Foundation
import Testing

/// The live server `scripts/test-servers.sh up` starts (make test does): its libpq connection string.
func testServer() throws -> String {
    let conninfo = ProcessInfo.processInfo.environment["DES_TEST_POSTGRES"]
    return try #require(conninfo, "DES_TEST_POSTGRES is not set: start the test servers (scripts/test-servers.sh up; make test does)")
}

/// A fresh schema on the test server, for one fixture.
func freshSchema(_ conninfo: String) async throws -> String {
    let schema = "des_t_" + UUID().uuidString.prefix(8).lowercased()
    let c = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
    _ = try await c.withSession { try $0.execute("CREATE SCHEMA \(schema)") }
    await c.close()
    return schema
}

struct PostgresSourceFixture: SourceFixture {
    let conninfo: String

    func makeConnector(rows: [FixtureRow], poolSize: Int) async throws -> any SourceConnector {
        let schema = try await freshSchema(conninfo)
        let setup = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
        try await setup.withTransaction { s in
            try s.execute(
                """
                CREATE TABLE \(schema).files (id BIGINT PRIMARY KEY, body_path TEXT NOT NULL, size_bytes BIGINT, note TEXT, rank BIGINT,
                  des_status TEXT, des_name TEXT, des_shard INTEGER, des_container TEXT, des_claimed_by TEXT,
                  des_claimed_at DOUBLE PRECISION, des_error TEXT)
                """)
            for insert in FixtureRow.inserts(rows, into: "\(schema).files", placeholder: { "$\($0)" }) {
                try s.execute(insert.sql, insert.binds)
            }
        }
        await setup.close()
        var columns = ColumnMapping()
        columns.s3Key = "body_path"
        columns.sizeBytes = "size_bytes"
        columns.metadataColumns = ["note", "rank"]
        let source = SourceConfig(
            name: "catalog", connection: ConnectionConfig(type: "postgresql", poolSize: poolSize),
            table: TableConfig(name: "files", schema: schema, columns: columns), bodies: BodiesConfig())
        let conninfo = self.conninfo
        let pool = SQLConnectionPool(size: poolSize) { try await PostgresConnection.connect(conninfo: conninfo, target: "test server") }
        return try SQLSourceConnector(config: source, dialect: PostgresDialect(), pool: pool)
    }
}

@Suite("PostgreSQL plugin, live")
struct PostgresConformanceTests {
    @Test("The PostgreSQL source passes the SourceConnector suite")
    func source() async throws {
        let report = await SourceConnectorConformance.run(fixture: PostgresSourceFixture(conninfo: try testServer()))
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 13)
    }

    @Test("The PostgreSQL metadata store passes the MetadataStore suite")
    func metadata() async throws {
        let conninfo = try testServer()
        let report = await MetadataStoreConformance.run {
            let schema = try await freshSchema(conninfo)
            let scoped = conninfo + " options='-c search_path=\(schema)'"
            let pool = SQLConnectionPool(size: 2) { try await PostgresConnection.connect(conninfo: scoped, target: "test server") }
            let store = SQLMetadataStore(pool: pool, dialect: PostgresMetadataDialect()) {
                try await PostgresListener.listen(conninfo: scoped, target: "test server")
            }
            try await store.migrate()
            return store
        }
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 10)
    }

    @Test("A committed event wakes a LISTEN connection at once; a change that announces nothing wakes nobody; the outbox stays bounded through 100,000 events")
    func eventsWakeAndStayBounded() async throws {
        let conninfo = try testServer()
        let schema = try await freshSchema(conninfo)
        let scoped = conninfo + " options='-c search_path=\(schema)'"
        let pool = SQLConnectionPool(size: 2) { try await PostgresConnection.connect(conninfo: scoped, target: "test server") }
        let store = SQLMetadataStore(pool: pool, dialect: PostgresMetadataDialect()) {
            try await PostgresListener.listen(conninfo: scoped, target: "test server")
        }
        defer { Task { await store.close() } }
        try await store.migrate()
        // The listener is open (and drained) before the change; a wait then ends on the commit's
        // notification, long before its timeout.
        _ = try await store.waitForEvents(timeoutSeconds: 0.01)
        while try await store.waitForEvents(timeoutSeconds: 0.01) {}
        let waiter = Task { () -> (Bool, Double) in
            let started = Date()
            let woken = try await store.waitForEvents(timeoutSeconds: 30)
            return (woken, Date().timeIntervalSince(started))
        }
        _ = try await store.addTombstones([Tombstone(name: "W_1", reason: "r", origin: "delete", containerID: nil, bytes: 0)])
        let (woken, waited) = try await waiter.value
        #expect(woken && waited < 30, "woken \(woken) after \(waited) s")
        #expect(try await store.events(afterSeq: 0, limit: 10).map(\.name) == ["W_1"])
        // A change that announces nothing (a duplicate tombstone) sends no wake-up.
        _ = try await store.addTombstones([Tombstone(name: "W_1", reason: "again", origin: "delete", containerID: nil, bytes: 0)])
        #expect(try await store.waitForEvents(timeoutSeconds: 0.3) == false)
        // Another deployment's store, in another schema of the same database, wakes only its own listeners.
        let otherSchema = try await freshSchema(conninfo)
        let otherScoped = conninfo + " options='-c search_path=\(otherSchema)'"
        let other = SQLMetadataStore(
            pool: SQLConnectionPool(size: 1) { try await PostgresConnection.connect(conninfo: otherScoped, target: "test server") },
            dialect: PostgresMetadataDialect())
        defer { Task { await other.close() } }
        try await other.migrate()
        // Whether the wait starts before or after the other store's notification arrives, it is read and passed over.
        let unrelated = Task { try await store.waitForEvents(timeoutSeconds: 1) }
        _ = try await other.addTombstones([Tombstone(name: "O_1", reason: "r", origin: "delete", containerID: nil, bytes: 0)])
        #expect(try await unrelated.value == false)

        store.eventRetention = 10_000
        for batch in 0..<100 {
            _ = try await store.addTombstones((0..<1_000).map { Tombstone(name: "S_\(batch)_\($0)", reason: "soak", origin: "delete", containerID: nil, bytes: 0) })
        }
        let rows = try await pool.withConnection { c in try await c.withSession { try $0.query("SELECT COUNT(*) FROM des_events") } }
        let count = try #require(rows.first?[0].int)
        let bounds = try #require(try await store.eventBounds())
        #expect(count >= 10_000 && count <= 10_000 + 1_024, "\(count) events kept")
        #expect(bounds.last == 100_001 && bounds.last - bounds.first + 1 == count, "\(bounds)")
    }

    @Test("Types round-trip: integers, doubles, text, bytea, NULL; errors carry the SQLSTATE")
    func types() async throws {
        let c = try await PostgresConnection.connect(conninfo: try testServer(), target: "test server")
        let rows = try await c.withSession { s in
            try s.query(
                "SELECT $1::bigint, $2::float8, $3::text, $4::bytea, $5::text, 42::int2, true, 1.5::numeric",
                [.int(.min), .double(-2.5), .text("ü日本 \u{1F600}"), .blob([0, 1, 0xFF, 0x7F]), .null])
        }
        let r = try #require(rows.first)
        #expect(r[0] == .int(.min) && r[1] == .double(-2.5) && r[2] == .text("ü日本 \u{1F600}"))
        #expect(r[3] == .blob([0, 1, 0xFF, 0x7F]) && r[4] == .null && r[5] == .int(42) && r[6] == .int(1) && r[7] == .double(1.5))
        do {
            _ = try await c.withSession { try $0.query("SELECT * FROM no_such_table_here") }
            Issue.record("expected an error")
        } catch let error as SQLError {
            #expect(error.code == "42P01")
            #expect(error.message.contains("no_such_table_here"))
        }
        #expect(!c.isBroken)
        await c.close()
    }

    @Test("A refused connection is a clear, transient error that names the server and never the password")
    func refusedConnection() async throws {
        let config = ConnectionConfig(
            type: "postgresql", host: "127.0.0.1", port: 1, database: "nope", username: "u", password: Secret("s3cr3t-pw"), poolSize: 1)
        let (conninfo, target) = try PostgresPlugin.connectionString(config, what: "source 'x'")
        do {
            _ = try await PostgresConnection.connect(conninfo: conninfo, target: target)
            Issue.record("expected a refused connection")
        } catch let error as SQLError {
            #expect(error.isTransient)
            #expect(error.message.contains("127.0.0.1:1/nope"))
            #expect(!error.message.contains("s3cr3t-pw") && !"\(error)".contains("s3cr3t-pw"))
        }
    }
}

/// Catalogs shaped as users have them, on the live PostgreSQL: enum and domain types, `timestamptz`,
/// `uuid`, `jsonb`, mixed-case quoted names, in a schema of their own.
struct PostgresShapesFixture: CatalogShapesFixture {
    let conninfo: String
    let schema: String?
    var dialect: any SQLDialect { PostgresDialect() }

    func columnType(_ type: CatalogColumnType, table: String) -> String {
        switch type {
        case .bigint: return "bigint"
        case .integer: return "integer"
        case .varchar: return "varchar(64)"
        case .text: return "text"
        case .uuid: return "uuid"
        case .enumeration: return (schema.map { "\"\($0)\"." } ?? "") + "\"\(table)_state\""
        case .timestampWithTimeZone: return "timestamptz"
        case .timestamp: return "timestamp"
        case .epochSeconds: return "double precision"
        case .json: return "jsonb"
        }
    }

    func prelude(for table: String, type: CatalogColumnType) -> [String] {
        guard case .enumeration(let labels) = type else { return [] }
        return ["CREATE TYPE \(columnType(type, table: table)) AS ENUM (\(labels.map { "'\($0)'" }.joined(separator: ", ")))"]
    }

    func execute(_ statements: [(sql: String, binds: [SQLValue])]) async throws {
        let c = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
        defer { Task { await c.close() } }
        try await c.withTransaction { s in
            for statement in statements { try s.execute(statement.sql, statement.binds) }
        }
    }

    func makeConnector(table: TableConfig) async throws -> any SourceConnector {
        let source = SourceConfig(name: "shapes", connection: ConnectionConfig(type: "postgresql", poolSize: 2), table: table)
        let conninfo = self.conninfo
        let pool = SQLConnectionPool(size: 2) { try await PostgresConnection.connect(conninfo: conninfo, target: "test server") }
        return try SQLSourceConnector(config: source, dialect: PostgresDialect(), pool: pool)
    }
}

@Suite("PostgreSQL: catalogs as users have them")
struct PostgresCatalogShapesTests {
    @Test("The PostgreSQL source passes the CatalogShapes suite")
    func shapes() async throws {
        let conninfo = try testServer()
        let report = await CatalogShapes.run(fixture: PostgresShapesFixture(conninfo: conninfo, schema: try await freshSchema(conninfo)))
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == CatalogShapes.shapes().count)
    }
}
