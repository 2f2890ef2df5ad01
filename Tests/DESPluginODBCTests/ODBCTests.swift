import DESKit
import DESKitTesting
import DESPluginODBC
import DESSQLDialects
import Foundation
import Testing

/// The test servers through their ODBC drivers (psqlODBC, MariaDB Connector/ODBC), named by path.
enum ODBCServers {
    static let env = ProcessInfo.processInfo.environment

    static func variable(_ name: String) throws -> String {
        guard let value = env[name], !value.isEmpty else {
            throw DESKitError(.configuration, "\(name) is not set: start the test servers (scripts/test-servers.sh up; make test does)")
        }
        return value
    }

    static func postgres() throws -> ConnectionConfig {
        var c = ConnectionConfig(
            type: "odbc", host: try variable("DES_TEST_PG_HOST"), port: Int(try variable("DES_TEST_PG_PORT")),
            database: try variable("DES_TEST_PG_DATABASE"), username: try variable("DES_TEST_PG_USER"), poolSize: 4,
            driverOptions: ["DRIVER": try variable("DES_TEST_ODBC_PG_DRIVER")])
        c.dialect = "postgres"
        return c
    }

    static func mariadb(database: String? = nil) throws -> ConnectionConfig {
        var c = ConnectionConfig(
            type: "odbc", host: try variable("DES_TEST_MARIADB_HOST"), port: Int(try variable("DES_TEST_MARIADB_PORT")),
            database: try database ?? variable("DES_TEST_MARIADB_DATABASE"), username: try variable("DES_TEST_MARIADB_USER"),
            password: Secret(try variable("DES_TEST_MARIADB_PASSWORD")), poolSize: 4,
            driverOptions: ["DRIVER": try variable("DES_TEST_ODBC_MARIADB_DRIVER")])
        c.dialect = "mariadb"
        return c
    }

    static func connect(_ c: ConnectionConfig) async throws -> ODBCConnection {
        let (_, style) = try ODBCPlugin.dialect(for: c, what: "test")
        let (conninfo, target) = try ODBCPlugin.connectionString(c, what: "test")
        return try await ODBCConnection.connect(connectionString: conninfo, target: target, style: style)
    }
}

/// A fresh catalog table through ODBC, in a schema (PostgreSQL) or database (MariaDB) of its own.
struct ODBCSourceFixture: SourceFixture {
    let server: String  // "postgres" or "mariadb"

    func makeConnector(rows: [FixtureRow], poolSize: Int) async throws -> any SourceConnector {
        let space = "des_o_" + UUID().uuidString.prefix(8).lowercased()
        var connection: ConnectionConfig
        let table: TableConfig
        var columns = ColumnMapping()
        columns.s3Key = "body_path"
        columns.sizeBytes = "size_bytes"
        columns.metadataColumns = ["note", "rank"]
        let ddl: String
        let placeholder: @Sendable (Int) -> String
        if server == "postgres" {
            connection = try ODBCServers.postgres()
            let admin = try await ODBCServers.connect(connection)
            _ = try await admin.withSession { try $0.execute("CREATE SCHEMA \(space)") }
            await admin.close()
            table = TableConfig(name: "files", schema: space, columns: columns)
            ddl = """
                CREATE TABLE \(space).files (id BIGINT PRIMARY KEY, body_path TEXT NOT NULL, size_bytes BIGINT, note TEXT, rank BIGINT,
                  des_status TEXT, des_name TEXT, des_shard INTEGER, des_container TEXT, des_claimed_by TEXT,
                  des_claimed_at DOUBLE PRECISION, des_error TEXT)
                """
            placeholder = { "$\($0)" }
        } else {
            let admin = try await ODBCServers.connect(try ODBCServers.mariadb())
            _ = try await admin.withSession { try $0.execute("CREATE DATABASE \(space) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin") }
            await admin.close()
            connection = try ODBCServers.mariadb(database: space)
            table = TableConfig(name: "files", columns: columns)
            ddl = """
                CREATE TABLE files (id BIGINT PRIMARY KEY, body_path VARCHAR(1024) NOT NULL, size_bytes BIGINT NULL, note LONGTEXT NULL,
                  `rank` BIGINT NULL, des_status VARCHAR(32) NULL, des_name VARCHAR(255) NULL, des_shard INT NULL,
                  des_container VARCHAR(1024) NULL, des_claimed_by VARCHAR(255) NULL, des_claimed_at DOUBLE NULL, des_error TEXT NULL,
                  KEY files_claim (des_status, des_shard, id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
                """
            placeholder = { "?{\($0)}" }
        }
        connection.poolSize = poolSize
        let setup = try await ODBCServers.connect(connection)
        let qualified = server == "postgres" ? "\(space).files" : "files"
        let rankColumn = server == "postgres" ? "rank" : "`rank`"
        try await setup.withTransaction { s in
            try s.execute(ddl)
            for insert in FixtureRow.inserts(rows, into: qualified, rankColumn: rankColumn, batch: 500, placeholder: placeholder) {
                try s.execute(insert.sql, insert.binds)
            }
        }
        await setup.close()
        let source = SourceConfig(name: "catalog", connection: connection, table: table, bodies: BodiesConfig())
        let (dialect, style) = try ODBCPlugin.dialect(for: connection, what: "test")
        let (conninfo, target) = try ODBCPlugin.connectionString(connection, what: "test")
        let pool = SQLConnectionPool(size: poolSize) {
            try await ODBCConnection.connect(connectionString: conninfo, target: target, style: style)
        }
        return try SQLSourceConnector(config: source, dialect: ODBCBoundedDialect(dialect), pool: pool)
    }
}

@Suite("ODBC plugin, live")
struct ODBCTests {
    @Test("ODBC → PostgreSQL (psqlODBC) passes the SourceConnector suite")
    func postgresConformance() async throws {
        let report = await SourceConnectorConformance.run(fixture: ODBCSourceFixture(server: "postgres"))
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 13)
    }

    @Test("ODBC → MariaDB (MariaDB Connector/ODBC) passes the SourceConnector suite")
    func mariadbConformance() async throws {
        let report = await SourceConnectorConformance.run(fixture: ODBCSourceFixture(server: "mariadb"))
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 13)
    }

    @Test("Types round-trip through both drivers; errors carry the driver's SQLSTATE")
    func types() async throws {
        for (config, cast) in [(try ODBCServers.postgres(), "$1::bigint, $2::float8, $3::text, $4::bytea, $5::text"),
                               (try ODBCServers.mariadb(), "?{1}, ?{2}, ?{3}, CAST(?{4} AS BINARY), ?{5}")] {
            let c = try await ODBCServers.connect(config)
            let long = String(repeating: "ä€𝄞x", count: 20_000)
            let rows = try await c.withSession { s in
                try s.query("SELECT \(cast), 42, 1.5", [.int(.min), .double(-2.5), .text("ü日本 \u{1F600}" + long), .blob([0, 1, 0xFF, 0x7F]), .null])
            }
            let r = try #require(rows.first)
            #expect(r[0] == .int(.min) && r[1] == .double(-2.5), "\(config.dialect ?? "")")
            #expect(r[2] == .text("ü日本 \u{1F600}" + long), "\(config.dialect ?? ""): long unicode text")
            #expect(r[3] == .blob([0, 1, 0xFF, 0x7F]), "\(config.dialect ?? "") \(r[3])")
            #expect(r[4] == .null && r[5] == .int(42) && r[6] == .double(1.5), "\(config.dialect ?? "") \(r.values.suffix(3))")
            do {
                _ = try await c.withSession { try $0.query("SELECT * FROM no_such_table_here") }
                Issue.record("expected an error")
            } catch let error as SQLError {
                #expect(error.code == "42P01" || error.code == "42S02", "\(error)")
                #expect(error.message.contains("no_such_table_here"))
            }
            await c.close()
        }
    }

    @Test("A batch of 5,000 names through psqlODBC goes in statements the driver can carry")
    func largeNameBatch() async throws {
        let rows = (1...5_000).map { FixtureRow(id: $0, key: "k\($0)", desName: nil, shard: nil) }
        let source = try await ODBCSourceFixture(server: "postgres").makeConnector(rows: rows, poolSize: 1)
        let named = try await source.nameRows(limit: 5_000) { unnamed in
            unnamed.map { NameAssignment(rowID: $0.rowID, desName: "N" + $0.rowID, hash: "h", shard: 1) }
        }
        #expect(named == 5_000)
        #expect(try await source.stats().pending == 5_000)
        await source.close()
    }

    @Test("Transactions commit or roll back through ODBC")
    func transactions() async throws {
        let c = try await ODBCServers.connect(try ODBCServers.postgres())
        let table = "des_o_tx_" + UUID().uuidString.prefix(8).lowercased()
        _ = try await c.withSession { try $0.execute("CREATE TABLE \(table) (id INT PRIMARY KEY)") }
        _ = try await c.withTransaction { try $0.execute("INSERT INTO \(table) VALUES ($1)", [.int(1)]) }
        await #expect(throws: SQLError.self) {
            _ = try await c.withTransaction { s in
                try s.execute("INSERT INTO \(table) VALUES ($1)", [.int(2)])
                try s.execute("INSERT INTO \(table) VALUES ($1)", [.int(1)])
            }
        }
        let ids = try await c.withSession { try $0.query("SELECT id FROM \(table) ORDER BY id").map { $0[0] } }
        #expect(ids == [.int(1)])
        await c.close()
    }

    @Test("A refused connection is a clear, transient error that names the server and never the password")
    func refused() async throws {
        var config = try ODBCServers.mariadb()
        config.port = 1
        config.password = Secret("s3cr3t-pw")
        do {
            _ = try await ODBCServers.connect(config)
            Issue.record("expected a refused connection")
        } catch let error as SQLError {
            #expect(error.isTransient, "\(error)")
            #expect(error.message.contains("127.0.0.1:1/"))
            #expect(!"\(error)".contains("s3cr3t-pw"))
        }
    }

    @Test("Config check: an unknown dialect, a missing driver, a wrong dialect for oracle — each names the plugin")
    func configCheck() throws {
        let registry = PluginRegistry()
        ODBCPlugin.register(in: registry)
        func error(_ connection: String) -> ConfigError? {
            let yaml = "sources:\n  - name: s\n    connection: {\(connection)}\n    table: {name: files, columns: {id: id, s3_key: k}}\n"
            do {
                _ = try ConfigLoader.parse(yaml: yaml, file: "o.yaml", environment: [:], plugins: registry)
                return nil
            } catch let e as ConfigError { return e } catch { return nil }
        }
        let unknown = try #require(error("type: odbc, dialect: postgre, driver_options: {DRIVER: psql}"))
        #expect(unknown.keyPath == "sources[0].connection.dialect" && unknown.line == 3)
        #expect(unknown.message.contains("odbc plugin") && unknown.suggestion == "postgres")
        // A missing DRIVER is an error when connecting, saying what to set, not at config check
        // (the original's Oracle block has none).
        #expect(error("type: odbc, dialect: postgres") == nil)
        #expect {
            _ = try ODBCPlugin.connectionString(ConnectionConfig(type: "odbc", host: "h"), what: "source 's'")
        } throws: { error in
            let message = (error as? DESKitError)?.message ?? ""
            return message.contains("driver_options.DRIVER") && message.contains("source 's'")
        }
        // cx_Oracle's options mean nothing to ODBC: a warning names them, and they stay out of the connection string.
        let warned = try ConfigLoader.parse(
            yaml: "sources:\n  - name: s\n    connection: {type: oracle, driver_options: {threaded: true}}\n    table: {name: files, columns: {id: id, s3_key: k}}\n",
            file: "o.yaml", environment: [:], plugins: registry)
        #expect(warned.warnings.contains { $0.keyPath == "sources[0].connection.driver_options" && $0.message.contains("threaded") })
        var ora = ConnectionConfig(type: "oracle", host: "h", driverOptions: ["threaded": "true", "DSN": "ora"])
        ora.dialect = "oracle"
        #expect(try !ODBCPlugin.connectionString(ora, what: "s").0.contains("threaded"))
        let none = try #require(error("type: odbc, driver_options: {DSN: x}"))
        #expect(none.keyPath == "sources[0].connection.dialect" && none.message.contains("required"))
        let oracle = try #require(error("type: oracle, dialect: mysql, driver_options: {DSN: x}"))
        #expect(oracle.message.contains("oracle dialect"))
        #expect(error("type: oracle, driver_options: {DSN: ora}") == nil)
        #expect(error("type: odbc, dialect: mssql, driver_options: {DRIVER: FreeTDS, statement_timeout: 30}") == nil)
    }

    @Test("The connection string: driver options first as written, braces where needed, no password in the target")
    func connectionString() throws {
        var c = ConnectionConfig(
            type: "odbc", host: "db", port: 5432, database: "cat", username: "u", password: Secret("p;w}d"),
            driverOptions: ["DRIVER": "PostgreSQL Unicode", "SSLMode": "require", "statement_timeout": "5"])
        c.dialect = "postgres"
        let (conninfo, target) = try ODBCPlugin.connectionString(c, what: "t")
        #expect(conninfo == "DRIVER=PostgreSQL Unicode;SSLMode=require;SERVER=db;PORT=5432;DATABASE=cat;UID=u;PWD={p;w}}d}")
        #expect(target == "db:5432/cat")
    }
}

@Suite("Placeholder bracing")
struct BracingTests {
    @Test("$n and ?n become ?{n} outside quotes and names")
    func bracing() {
        #expect(NumberedPlaceholders.bracing("SELECT $1, '$2', a$1, $10::text", marker: "$") == "SELECT ?{1}, '$2', a$1, ?{10}::text")
        #expect(NumberedPlaceholders.bracing("WHERE x = ?2 AND y = ?1", marker: "?") == "WHERE x = ?{2} AND y = ?{1}")
        #expect(NumberedPlaceholders.bracing("SELECT 1", marker: "$") == "SELECT 1")
    }
}

/// Catalogs shaped as users have them, through ODBC to the live PostgreSQL and MariaDB.
struct ODBCShapesFixture: CatalogShapesFixture {
    let server: String  // "postgres" or "mariadb"
    let space: String
    var schema: String? { server == "postgres" ? space : nil }
    var connection: ConnectionConfig {
        get throws { server == "postgres" ? try ODBCServers.postgres() : try ODBCServers.mariadb(database: space) }
    }
    let dialect: any SQLDialect

    static func make(_ server: String) async throws -> ODBCShapesFixture {
        let space = "des_os_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try await ODBCServers.connect(server == "postgres" ? try ODBCServers.postgres() : try ODBCServers.mariadb())
        _ = try await admin.withSession {
            try $0.execute(server == "postgres" ? "CREATE SCHEMA \(space)" : "CREATE DATABASE \(space) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        }
        await admin.close()
        let connection = server == "postgres" ? try ODBCServers.postgres() : try ODBCServers.mariadb(database: space)
        let dialect = ODBCBoundedDialect(try ODBCPlugin.dialect(for: connection, what: "test").0)
        return ODBCShapesFixture(server: server, space: space, dialect: dialect)
    }

    func columnType(_ type: CatalogColumnType, table: String) -> String {
        let pg = server == "postgres"
        switch type {
        case .bigint: return "BIGINT"
        case .integer: return "INTEGER"
        case .varchar: return "VARCHAR(64)"
        case .text: return "TEXT"
        case .uuid: return "UUID"
        case .enumeration(let labels): return pg ? "\"\(space)\".\"\(table)_state\"" : "ENUM(\(labels.map { "'\($0)'" }.joined(separator: ", ")))"
        case .timestampWithTimeZone: return pg ? "timestamptz" : "TIMESTAMP(6) NULL"
        case .timestamp: return pg ? "timestamp" : "DATETIME(6)"
        case .epochSeconds: return pg ? "double precision" : "DOUBLE"
        case .json: return pg ? "jsonb" : "JSON"
        }
    }

    func prelude(for table: String, type: CatalogColumnType) -> [String] {
        guard server == "postgres", case .enumeration(let labels) = type else { return [] }
        return ["CREATE TYPE \(columnType(type, table: table)) AS ENUM (\(labels.map { "'\($0)'" }.joined(separator: ", ")))"]
    }

    func execute(_ statements: [(sql: String, binds: [SQLValue])]) async throws {
        let c = try await ODBCServers.connect(try connection)
        defer { Task { await c.close() } }
        try await c.withTransaction { s in
            for statement in statements { try s.execute(statement.sql, statement.binds) }
        }
    }

    func makeConnector(table: TableConfig) async throws -> any SourceConnector {
        var connection = try self.connection
        connection.poolSize = 2
        let source = SourceConfig(name: "shapes", connection: connection, table: table)
        let (dialect, style) = try ODBCPlugin.dialect(for: connection, what: "test")
        let (conninfo, target) = try ODBCPlugin.connectionString(connection, what: "test")
        let pool = SQLConnectionPool(size: 2) { try await ODBCConnection.connect(connectionString: conninfo, target: target, style: style) }
        return try SQLSourceConnector(config: source, dialect: ODBCBoundedDialect(dialect), pool: pool)
    }
}

@Suite("ODBC: catalogs as users have them")
struct ODBCCatalogShapesTests {
    @Test("ODBC → PostgreSQL and ODBC → MariaDB pass the CatalogShapes suite", arguments: ["postgres", "mariadb"])
    func shapes(server: String) async throws {
        let report = await CatalogShapes.run(fixture: try await ODBCShapesFixture.make(server))
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == CatalogShapes.shapes().count)
    }
}
