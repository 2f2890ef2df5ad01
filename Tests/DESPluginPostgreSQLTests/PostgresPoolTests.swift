import DESKit
import DESSQLDialects
import DESPluginPostgreSQL
import Foundation
import Testing

/// The pool options and driver options of a `connection:` block, against the live server.
@Suite("PostgreSQL connection options")
struct PostgresPoolTests {
    /// The test server's connection as a config block.
    static func connection(_ edit: (inout ConnectionConfig) -> Void = { _ in }) throws -> ConnectionConfig {
        let env = ProcessInfo.processInfo.environment
        var c = ConnectionConfig(type: "postgresql")
        guard let host = env["DES_TEST_PG_HOST"] else {
            throw DESKitError(.configuration, "DES_TEST_PG_HOST is not set: start the test servers (scripts/test-servers.sh up; make test does)")
        }
        c.host = host
        c.port = Int(env["DES_TEST_PG_PORT"] ?? "")
        c.database = env["DES_TEST_PG_DATABASE"]
        c.username = env["DES_TEST_PG_USER"]
        edit(&c)
        return c
    }

    static func pool(_ c: ConnectionConfig) throws -> SQLConnectionPool {
        let (conninfo, target) = try PostgresPlugin.connectionString(c, what: "test")
        return SQLConnectionPool(size: 1, options: .from(c, healthQuery: PostgresDialect().healthQuery)) {
            try await PostgresConnection.connect(conninfo: conninfo, target: target)
        }
    }

    static func backendPID(_ pool: SQLConnectionPool) async throws -> Int64 {
        try await pool.withConnection { c in try await c.withSession { try $0.query("SELECT pg_backend_pid()")[0][0].int ?? -1 } }
    }

    static func terminate(_ pid: Int64) async throws {
        let killer = try await PostgresConnection.connect(conninfo: try testServer(), target: "test server")
        defer { Task { await killer.close() } }
        _ = try await killer.withSession { s in
            try s.query("SELECT pg_terminate_backend($1::int)", [.int(pid)])
        }
        // Wait until the server has let the backend go (bounded; not a guess at a delay).
        for _ in 0..<200 {
            let alive = try await killer.withSession { try $0.query("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1::int", [.int(pid)])[0][0].int }
            if alive == 0 { return }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        Issue.record("backend \(pid) still alive")
    }

    @Test("metadata.connection.pool_size is the metadata store's pool size, as written (no hidden cap)")
    func metadataPoolSizeIsHonoured() async throws {
        for size in [1, 9] {
            let store = try await PostgresPlugin.open(try Self.connection { $0.poolSize = size })
            #expect(store.poolSize == size)
            await store.close()
        }
    }

    @Test("pool_pre_ping: a connection the server dropped while idle is replaced before anyone uses it")
    func prePingRidesOutAKilledConnection() async throws {
        let pool = try Self.pool(try Self.connection { $0.poolPrePing = true })
        let first = try await Self.backendPID(pool)
        try await Self.terminate(first)
        let second = try await Self.backendPID(pool)
        #expect(second != first && second > 0)
        await pool.close()
    }

    @Test("Without pool_pre_ping the first use after the server dropped the connection fails, and the next one is fresh")
    func withoutPrePingTheFirstUseFails() async throws {
        let pool = try Self.pool(try Self.connection())
        let first = try await Self.backendPID(pool)
        try await Self.terminate(first)
        await #expect(throws: (any Error).self) { _ = try await Self.backendPID(pool) }
        let second = try await Self.backendPID(pool)  // the broken one was discarded
        #expect(second != first)
        await pool.close()
    }

    @Test("pool_recycle: 0 gives every use a fresh connection")
    func recycleZero() async throws {
        let pool = try Self.pool(try Self.connection { $0.poolRecycleSeconds = 0 })
        let a = try await Self.backendPID(pool)
        let b = try await Self.backendPID(pool)
        #expect(a != b)
        #expect(pool.stats.open == 0)  // none is kept after use
        await pool.close()
    }

    @Test("driver_options statement_timeout stops a long statement with SQLSTATE 57014")
    func statementTimeout() async throws {
        let pool = try Self.pool(try Self.connection { $0.driverOptions = ["statement_timeout": "200ms"]; $0.schema = "public" })
        do {
            _ = try await pool.withConnection { c in try await c.withSession { try $0.query("SELECT pg_sleep(5)") } }
            Issue.record("the statement must time out")
        } catch let error as SQLError {
            #expect(error.code == "57014")
        }
        // The search path (from schema) still applies beside it.
        let path = try await pool.withConnection { c in try await c.withSession { try $0.query("SHOW search_path")[0][0].text } }
        #expect(path == "public")
        await pool.close()
    }

    @Test("des config check: a driver option libpq does not know names the plugin, the key and the nearest keyword")
    func badDriverOption() throws {
        let registry = PluginRegistry()
        PostgresPlugin.register(in: registry)
        let yaml = """
            metadata:
              connection: {type: postgres, host: h, database: d, driver_options: {sslmod: require}}
            """
        do {
            _ = try ConfigLoader.parse(yaml: yaml, file: "pg.yaml", environment: [:], plugins: registry)
            Issue.record("sslmod must be refused")
        } catch let error as ConfigError {
            #expect(error.keyPath == "metadata.connection.driver_options")
            #expect(error.message.contains("postgresql plugin") && error.message.contains("sslmod"))
            #expect(error.suggestion == "sslmode")
            #expect(error.line == 2)
        }
        let good = yaml.replacingOccurrences(of: "sslmod: require", with: "sslmode: disable, application_name: des, statement_timeout: 30s")
        #expect(try ConfigLoader.parse(yaml: good, file: "pg.yaml", environment: [:], plugins: registry).metadata.connection.driverOptions.count == 3)
        let dbname = yaml.replacingOccurrences(of: "sslmod: require", with: "dbname: other")
        #expect(throws: ConfigError.self) { _ = try ConfigLoader.parse(yaml: dbname, file: "pg.yaml", environment: [:], plugins: registry) }
    }
}
