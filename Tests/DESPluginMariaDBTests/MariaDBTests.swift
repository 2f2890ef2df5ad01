import DESKit
import DESSQLDialects
import DESKitTesting
import Foundation
import Testing

@testable import DESPluginMariaDB

/// The live MariaDB `scripts/test-servers.sh up` starts (make test does), as a connection block.
func mariaDB(database: String? = nil) throws -> ConnectionConfig {
    let env = ProcessInfo.processInfo.environment
    guard let host = env["DES_TEST_MARIADB_HOST"], let port = env["DES_TEST_MARIADB_PORT"].flatMap(Int.init) else {
        throw DESKitError(.configuration, "DES_TEST_MARIADB_HOST is not set: start the test servers (scripts/test-servers.sh up; make test does)")
    }
    return ConnectionConfig(
        type: "mariadb", host: host, port: port, database: database ?? env["DES_TEST_MARIADB_DATABASE"],
        username: env["DES_TEST_MARIADB_USER"], password: env["DES_TEST_MARIADB_PASSWORD"].map(Secret.init), poolSize: 4)
}

func connect(_ c: ConnectionConfig) async throws -> MariaDBConnection {
    let (settings, target) = try MariaDBPlugin.settings(c, what: "test")
    return try await MariaDBConnection.connect(settings, target: target)
}

/// A fresh database on the test server, for one fixture.
func freshDatabase() async throws -> String {
    let name = "des_t_" + UUID().uuidString.prefix(8).lowercased()
    let c = try await connect(try mariaDB())
    _ = try await c.withSession { try $0.execute("CREATE DATABASE \(name) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin") }
    await c.close()
    return name
}

struct MariaDBSourceFixture: SourceFixture {
    func makeConnector(rows: [FixtureRow], poolSize: Int) async throws -> any SourceConnector {
        let database = try await freshDatabase()
        var connection = try mariaDB(database: database)
        connection.poolSize = poolSize
        let setup = try await connect(connection)
        try await setup.withTransaction { s in
            try s.execute(
                """
                CREATE TABLE files (id BIGINT PRIMARY KEY, body_path VARCHAR(1024) NOT NULL, size_bytes BIGINT NULL, note LONGTEXT NULL,
                  `rank` BIGINT NULL, des_status VARCHAR(32) NULL, des_name VARCHAR(255) NULL, des_shard INT NULL,
                  des_container VARCHAR(1024) NULL, des_claimed_by VARCHAR(255) NULL, des_claimed_at DOUBLE NULL, des_error TEXT NULL,
                  KEY files_claim (des_status, des_shard, id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
                """)
            for insert in FixtureRow.inserts(rows, into: "files", rankColumn: "`rank`", placeholder: { "?{\($0)}" }) {
                try s.execute(insert.sql, insert.binds)
            }
        }
        await setup.close()
        var columns = ColumnMapping()
        columns.s3Key = "body_path"
        columns.sizeBytes = "size_bytes"
        columns.metadataColumns = ["note", "rank"]
        let source = SourceConfig(
            name: "catalog", connection: connection, table: TableConfig(name: "files", columns: columns),
            bodies: BodiesConfig())
        let (settings, target) = try MariaDBPlugin.settings(connection, what: "test")
        let pool = SQLConnectionPool(size: poolSize) { try await MariaDBConnection.connect(settings, target: target) }
        return try SQLSourceConnector(config: source, dialect: MariaDBDialect(), pool: pool)
    }
}

@Suite("MariaDB plugin, live")
struct MariaDBConformanceTests {
    @Test("The MariaDB source passes the SourceConnector suite")
    func source() async throws {
        let report = await SourceConnectorConformance.run(fixture: MariaDBSourceFixture())
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 13)
    }

    @Test("The MariaDB metadata store passes the MetadataStore suite")
    func metadata() async throws {
        let report = await MetadataStoreConformance.run {
            let store = try await MariaDBPlugin.open(try mariaDB(database: try await freshDatabase()))
            try await store.migrate()
            return store
        }
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 10)
    }

    @Test("Types round-trip: integers, doubles, decimals, text, bytes, NULL, times; errors carry SQLSTATE and number")
    func types() async throws {
        let c = try await connect(try mariaDB())
        let rows = try await c.withSession { s in
            try s.query(
                "SELECT ?{1}, ?{2}, ?{3}, ?{4}, ?{5}, CAST(42 AS SIGNED), 1.5, CAST('2025-01-02 03:04:05' AS DATETIME), ?{1} + 0",
                [.int(.min), .double(-2.5), .text("ü日本 \u{1F600}"), .blob([0, 1, 0xFF, 0x7F]), .null])
        }
        let r = try #require(rows.first)
        #expect(r[0] == .int(.min) && r[1] == .double(-2.5) && r[2] == .text("ü日本 \u{1F600}"))
        #expect(r[3] == .blob([0, 1, 0xFF, 0x7F]) && r[4] == .null && r[5] == .int(42) && r[6] == .double(1.5))
        #expect(r[7] == .text("2025-01-02 03:04:05") && r[8] == .int(.min))
        // Without values: the text protocol, decoded the same way.
        let plain = try await c.withSession { try $0.query("SELECT 7, 'x', NULL, 2.25") }
        #expect(plain.first?.values == [.int(7), .text("x"), .null, .double(2.25)])
        do {
            _ = try await c.withSession { try $0.query("SELECT * FROM no_such_table_here WHERE id = ?{1}", [.int(1)]) }
            Issue.record("expected an error")
        } catch let error as SQLError {
            #expect(error.code == "42S02")
            #expect(error.message.contains("no_such_table_here") && error.message.contains("1146"))
            #expect(!error.isTransient)
        }
        #expect(!c.isBroken)
        await c.close()
    }

    @Test("Transactions commit or roll back; a value longer than the first rows' reads whole")
    func transactions() async throws {
        let database = try await freshDatabase()
        let c = try await connect(try mariaDB(database: database))
        _ = try await c.withSession { try $0.execute("CREATE TABLE t (id INT PRIMARY KEY, v LONGTEXT) ENGINE=InnoDB") }
        _ = try await c.withTransaction { try $0.execute("INSERT INTO t VALUES (?{1}, ?{2})", [.int(1), .text("a")]) }
        await #expect(throws: SQLError.self) {
            _ = try await c.withTransaction { s in
                try s.execute("INSERT INTO t VALUES (?{1}, ?{2})", [.int(2), .text("b")])
                try s.execute("INSERT INTO t VALUES (?{1}, ?{2})", [.int(1), .text("duplicate")])
            }
        }
        let long = String(repeating: "ä€𝄞x", count: 1 << 18)
        _ = try await c.withTransaction { try $0.execute("INSERT INTO t VALUES (?{1}, ?{2})", [.int(3), .text(long)]) }
        let rows = try await c.withSession { try $0.query("SELECT id, v FROM t WHERE id > ?{1} ORDER BY id", [.int(0)]) }
        #expect(rows.map { $0[0] } == [.int(1), .int(3)])  // 2 was rolled back
        #expect(rows.last?[1] == .text(long))
        await c.close()
    }

    @Test("A refused connection is a clear, transient error that names the server and never the password")
    func refusedConnection() async throws {
        var config = try mariaDB()
        config.port = 1
        config.password = Secret("s3cr3t-pw")
        do {
            _ = try await connect(config)
            Issue.record("expected a refused connection")
        } catch let error as SQLError {
            #expect(error.isTransient)
            #expect(error.message.contains("127.0.0.1:1/"))
            #expect(!error.message.contains("s3cr3t-pw") && !"\(error)".contains("s3cr3t-pw"))
        }
        var wrong = try mariaDB()
        wrong.password = Secret("not-the-password")
        do {
            _ = try await connect(wrong)
            Issue.record("expected a refused login")
        } catch let error as SQLError {
            #expect(error.message.contains("Access denied") && !error.message.contains("not-the-password"))
        }
    }

    @Test("A wrong password is an authentication failure (28000, error 1045), not transient, naming server and user, never the password")
    func wrongPassword() async throws {
        var wrong = try mariaDB()
        let secret = "wrong-" + UUID().uuidString
        wrong.password = Secret(secret)
        do {
            _ = try await connect(wrong)
            Issue.record("expected a refused login")
        } catch let error as SQLError {
            #expect(error.isAuthenticationFailure && !error.isTransient && error.code == "28000", "\(error)")
            #expect(error.message.contains("authentication failed") && error.message.contains("(error 1045)"), "\(error)")
            #expect(error.message.contains("\(wrong.host ?? ""):\(wrong.port ?? 0)/") && error.message.contains(wrong.username ?? "?"))
            #expect(!"\(error)".contains(secret))
        }
        // The metadata store and a source's health check report it the same way.
        let registry = PluginRegistry()
        MariaDBPlugin.register(in: registry)
        do {
            _ = try await registry.makeMetadataStore(wrong, baseDirectory: ".")
            Issue.record("the store must not open")
        } catch let error as SQLError {
            #expect(error.isAuthenticationFailure && !"\(error)".contains(secret))
        }
    }

    @Test("Config check: an unknown driver option names the plugin and the nearest option")
    func configCheck() throws {
        let registry = PluginRegistry()
        MariaDBPlugin.register(in: registry)
        let yaml = "metadata:\n  connection: {type: mysql, host: h, database: d, driver_options: {conect_timeout: 5}}\n"
        do {
            _ = try ConfigLoader.parse(yaml: yaml, file: "m.yaml", environment: [:], plugins: registry)
            Issue.record("conect_timeout must be refused")
        } catch let error as ConfigError {
            #expect(error.keyPath == "metadata.connection.driver_options" && error.line == 2)
            #expect(error.message.contains("mariadb plugin") && error.message.contains("conect_timeout"))
            #expect(error.suggestion == "connect_timeout")
        }
        let good = yaml.replacingOccurrences(of: "conect_timeout: 5", with: "connect_timeout: 5, statement_timeout: 30")
        #expect(try ConfigLoader.parse(yaml: good, file: "m.yaml", environment: [:], plugins: registry).metadata.connection.type == "mysql")
    }
}

@Suite("Numbered placeholders")
struct NumberedPlaceholderTests {
    @Test("?{n} become ? with the values in the order they appear; quotes are left alone")
    func rewrite() throws {
        let (sql, values) = try NumberedPlaceholders.rewrite(
            "SELECT ?{2}, '?{1}', `a?{1}`, \"x\\\"?{1}\", ?{1}, ?{2}", [.int(1), .text("two")])
        #expect(sql == "SELECT ?, '?{1}', `a?{1}`, \"x\\\"?{1}\", ?, ?")
        #expect(values == [.text("two"), .int(1), .text("two")])
        #expect(throws: SQLError.self) { _ = try NumberedPlaceholders.rewrite("SELECT ?{3}", [.int(1)]) }
        #expect(throws: SQLError.self) { _ = try NumberedPlaceholders.rewrite("SELECT ?{x}", [.int(1)]) }
        #expect(try NumberedPlaceholders.rewrite("SELECT 1", [.int(1)]).1 == [.int(1)])
    }
}

/// Catalogs shaped as users have them, on the live MariaDB: `ENUM`, `DATETIME(6)` and
/// `TIMESTAMP(6)`, `UUID`, `JSON` (a checked `LONGTEXT`), `varchar` keys, in a database of their own.
struct MariaDBShapesFixture: CatalogShapesFixture {
    let database: String
    var schema: String? { nil }
    var dialect: any SQLDialect { MariaDBDialect() }

    func columnType(_ type: CatalogColumnType, table: String) -> String {
        switch type {
        case .bigint: return "BIGINT"
        case .integer: return "INT"
        case .varchar: return "VARCHAR(64)"
        case .text: return "TEXT"
        case .uuid: return "UUID"
        case .enumeration(let labels): return "ENUM(\(labels.map { "'\($0)'" }.joined(separator: ", ")))"
        case .timestampWithTimeZone: return "TIMESTAMP(6) NULL"
        case .timestamp: return "DATETIME(6)"
        case .epochSeconds: return "DOUBLE"
        case .json: return "JSON"
        }
    }

    func execute(_ statements: [(sql: String, binds: [SQLValue])]) async throws {
        let c = try await connect(try mariaDB(database: database))
        defer { Task { await c.close() } }
        try await c.withTransaction { s in
            for statement in statements { try s.execute(statement.sql, statement.binds) }
        }
    }

    func makeConnector(table: TableConfig) async throws -> any SourceConnector {
        let connection = try mariaDB(database: database)
        let source = SourceConfig(name: "shapes", connection: connection, table: table)
        let (settings, target) = try MariaDBPlugin.settings(connection, what: "test")
        let pool = SQLConnectionPool(size: 2) { try await MariaDBConnection.connect(settings, target: target) }
        return try SQLSourceConnector(config: source, dialect: MariaDBDialect(), pool: pool)
    }
}

@Suite("MariaDB: catalogs as users have them")
struct MariaDBCatalogShapesTests {
    @Test("The MariaDB source passes the CatalogShapes suite")
    func shapes() async throws {
        let report = await CatalogShapes.run(fixture: MariaDBShapesFixture(database: try await freshDatabase()))
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == CatalogShapes.shapes().count)
    }
}
