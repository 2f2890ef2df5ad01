import DESKit
import DESPluginPostgreSQL
import DESTestSupport
import Foundation
import Synchronization
import Testing

/// The stock packer on a PostgreSQL catalog and a PostgreSQL metadata store, killed with SIGKILL.
@Suite("Crash on PostgreSQL") struct PostgresCrashTests {
    @Test(
        "kill -9 the packer 20 times on a PostgreSQL catalog and metadata store: every row packed exactly once (claim_mode row and lease)",
        arguments: ["row", "lease"])
    func killNineOnPostgres(mode: String) async throws {
        let pg = try await PostgresDeployment(rows: 20_000, applicationName: "des-crash-\(mode)", claimMode: mode)
        defer { pg.cleanup() }
        let (d, admin, schema, rows) = (pg.d, pg.admin, pg.schema, pg.rows)
        var rng = SystemRandomNumberGenerator()
        func des(_ args: [String]) throws -> Process { try pg.des(args) }
        let marker = try des(["marker", "run", "--until-idle"])
        await d.wait(marker)
        #expect(marker.terminationStatus == 0)
        var kills = 0, attempts = 0, total = rows
        func open() async throws -> Int64 {
            try await admin.withSession { try $0.query("SELECT COUNT(*) FROM \(schema).files WHERE des_status <> 'DES_PACKED'") }.first?[0].int ?? -1
        }
        while kills < 20 && attempts < 200 {
            attempts += 1
            let p = try des(["packer", "run", "--until-idle"])
            try await Task.sleep(nanoseconds: UInt64.random(in: 20_000_000...150_000_000, using: &rng))
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                kills += 1
            }
            await d.wait(p)
            // Keep work in hand until the 20th kill: top the catalog up when it is all packed.
            if try await open() == 0 && kills < 20 {
                let first = total + 1
                total += 1000
                for i in first...total {
                    _ = FileManager.default.createFile(atPath: d.bodiesRoot + "/b/f\(i)", contents: Data([UInt8(i % 251), 1, 2, 3]))
                }
                let topUp = "INSERT INTO \(schema).files (id, body_path, mime) SELECT g, 'b/f' || g, 'x' FROM generate_series(\(first), \(total)) g"
                _ = try await admin.withSession { try $0.execute(topUp) }
                let again = try des(["marker", "run", "--until-idle"])
                await d.wait(again)
            }
        }
        let final = try des(["packer", "run", "--until-idle"])
        await d.wait(final)
        #expect(final.terminationStatus == 0)
        #expect(kills >= 20, "only \(kills) kills before the catalog was drained")
        let statuses = try await admin.withSession { try $0.query("SELECT des_status, COUNT(*) FROM \(schema).files GROUP BY des_status") }
        #expect(statuses.count == 1 && statuses.first?[0].text == "DES_PACKED" && statuses.first?[1].int == Int64(total), "\(statuses)")
        let writing = try await admin.withSession {
            try $0.query("SELECT COUNT(*) FROM \(schema).des_containers WHERE state = 'writing'")
        }.first?[0].int
        #expect(writing == 0)
        // Every row read back by name and compared with its body; no name in two containers; nothing stranded.
        let check = try des(["check"])
        await d.wait(check)
        #expect(check.terminationStatus == 0)
        if mode == "lease" {
            // One catalog write per packed row: no row was ever claimed, and every manifest is marked.
            let claimed = try await admin.withSession {
                try $0.query("SELECT COUNT(*) FROM \(schema).files WHERE des_claimed_by IS NOT NULL")
            }.first?[0].int
            #expect(claimed == 0)
            let unmarked = try await admin.withSession {
                try $0.query("SELECT COUNT(*) FROM \(schema).des_containers WHERE state = 'uploaded' AND marked_at IS NULL")
            }.first?[0].int
            #expect(unmarked == 0)
        }
        try await pg.drop()
        print("postgres crash test (\(mode)): \(kills) kills in \(attempts) runs")
    }
}

/// A PostgreSQL catalog (in a fresh schema of the test server) of `rows` files whose bodies are on
/// disk, with a config whose source and metadata store are both on that schema.
struct PostgresDeployment {
    let d: Deployment
    let admin: PostgresConnection
    let schema: String
    let rows: Int
    let config: String

    init(rows: Int, applicationName: String, claimMode: String = "row") async throws {
        let conninfo = try #require(
            ProcessInfo.processInfo.environment["DES_TEST_POSTGRES"],
            "DES_TEST_POSTGRES is not set: start the test servers (scripts/test-servers.sh up; make test does)")
        let env = ProcessInfo.processInfo.environment
        let (host, port, db, user) = (env["DES_TEST_PG_HOST"] ?? "127.0.0.1", env["DES_TEST_PG_PORT"] ?? "5432",
                                      env["DES_TEST_PG_DATABASE"] ?? "des_test", env["DES_TEST_PG_USER"] ?? "postgres")
        d = try Deployment()
        schema = "des_t_" + UUID().uuidString.prefix(8).lowercased()
        self.rows = rows
        try FileManager.default.createDirectory(atPath: d.bodiesRoot + "/b", withIntermediateDirectories: true)
        var rng = SystemRandomNumberGenerator()
        for i in 1...rows {
            let body = (0..<Int.random(in: 1...600, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = FileManager.default.createFile(atPath: d.bodiesRoot + "/b/f\(i)", contents: Data(body))
        }
        admin = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
        let schema = self.schema
        try await admin.withTransaction { s in
            try s.execute("CREATE SCHEMA \(schema)")
            try s.execute(
                """
                CREATE TABLE \(schema).files (id BIGINT PRIMARY KEY, body_path TEXT NOT NULL, size_bytes BIGINT, mime TEXT,
                  des_status TEXT, des_name TEXT, des_shard INTEGER, des_container TEXT, des_claimed_by TEXT,
                  des_claimed_at DOUBLE PRECISION, des_error TEXT)
                """)
            try s.execute(
                "INSERT INTO \(schema).files (id, body_path, mime) SELECT g, 'b/f' || g, 'application/octet-stream' FROM generate_series(1, \(rows)) g")
        }
        config = d.dir + "/pg.yaml"
        let connection = "type: postgresql, host: \(host), port: \(port), database: \(db), username: \(user), schema: \(schema), "
            + "driver_options: {application_name: \(applicationName)}"
        try """
            sources:
              - name: pgcatalog
                connection: {\(connection), pool_size: 2}
                table:
                  name: files
                  columns: {id: id, s3_key: body_path, size_bytes: size_bytes, status: des_status, metadata_columns: [mime]}
                bodies: {type: local, root: bodies}
            storage: {type: local, root: archive, prefix: des}
            metadata: {connection: {\(connection)}}
            packer: {work_dir: work, shard_bits: 3, pod_name: crashy, batch_size: 20, max_container_files: 60, checkpoint_every_files: 10, lease_ttl_seconds: 30, heartbeat_seconds: 1, claim_mode: \(claimMode)}
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// Starts `des ARGS -c CONFIG` as a child process, its output discarded.
    func des(_ args: [String]) throws -> Process { try startDES(args, config: config) }

    /// Row counts by status.
    func statuses() async throws -> [String: Int64] {
        let schema = self.schema
        let rows = try await admin.withSession { try $0.query("SELECT des_status, COUNT(*) FROM \(schema).files GROUP BY des_status") }
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0].text ?? "NULL", $0[1].int ?? 0) })
    }

    func drop() async throws {
        let schema = self.schema
        _ = try await admin.withSession { try $0.execute("DROP SCHEMA \(schema) CASCADE") }
        await admin.close()
    }

    func cleanup() { d.cleanup() }
}

@Suite("PostgreSQL connections killed") struct PostgresTerminateTests {
    @Test(
        "Backends killed mid-batch (pg_terminate_backend) lose and duplicate nothing: the packer reconnects and finishes (claim_mode row and lease)",
        arguments: ["row", "lease"])
    func terminateBackends(mode: String) async throws {
        let pg = try await PostgresDeployment(rows: 6000, applicationName: "des-victim-\(mode)", claimMode: mode)
        defer { pg.cleanup() }
        let marker = try pg.des(["marker", "run", "--until-idle"])
        await pg.d.wait(marker)
        #expect(marker.terminationStatus == 0)
        let launched = Date()
        let packer = try pg.des(["packer", "run", "--until-idle"])
        // Mid-batch: once the packer has rows in hand, kill its backends again and again (from a
        // thread of its own, with psql: a busy test process cannot delay it past the run).
        let conninfo = try #require(ProcessInfo.processInfo.environment["DES_TEST_POSTGRES"])
        let counter = Locked<Int64>(0)
        let watcher = ProcessWatcher(process: packer, workDir: pg.d.dir + "/work", since: launched) {
            for _ in 0..<6 {
                let psql = Process()
                psql.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                psql.arguments = [
                    "psql", conninfo, "-qAt", "-c",
                    "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'des-victim-\(mode)') t",
                ]
                let out = Pipe()
                psql.standardOutput = out
                psql.standardError = FileHandle.nullDevice
                guard (try? psql.run()) != nil else { return false }
                let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                psql.waitUntilExit()
                guard psql.terminationStatus == 0 else { return false }  // psql missing, or refused
                let killed = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                counter.withLock { $0 += killed }
                usleep(150_000)
            }
            return true
        }
        #expect(await watcher.finished(), "no kill ran: the packer ended before it had rows in hand, or psql failed")
        let terminated = counter.value
        await pg.d.wait(packer)
        #expect(terminated > 0, "no backend was killed: the packer finished too soon")
        #expect(packer.terminationStatus == 0)
        let statuses = try await pg.statuses()
        #expect(statuses == ["DES_PACKED": 6000], "\(statuses)")
        let check = try await runDES(["check"], config: pg.config, in: pg.d.dir)
        #expect(check.status == 0, "des check: \(check.out) \(check.err)")
        try await pg.drop()
    }
}

@Suite("The shipped PostgreSQL config") struct PostgresShippedConfigTests {
    @Test("configs/postgres.yaml: des sample, marker, packer and check run end to end on PostgreSQL")
    func shippedConfig() async throws {
        _ = try #require(ProcessInfo.processInfo.environment["DES_TEST_POSTGRES"], "DES_TEST_POSTGRES is not set: start the test servers")
        let env = ProcessInfo.processInfo.environment
        let d = try Deployment()
        defer { d.cleanup() }
        let schema = "des_cfg_" + UUID().uuidString.prefix(8).lowercased()
        let conninfo = try #require(env["DES_TEST_POSTGRES"])
        let admin = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
        _ = try await admin.withSession { try $0.execute("CREATE SCHEMA \(schema)") }
        // The shipped file, copied beside its own data, pointed at the test server's fresh schema.
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs/postgres.yaml").path
        let config = d.dir + "/postgres.yaml"
        try FileManager.default.copyItem(atPath: shipped, toPath: config)
        setenv("DES_PG_HOST", env["DES_TEST_PG_HOST"] ?? "127.0.0.1", 1)
        setenv("DES_PG_PORT", env["DES_TEST_PG_PORT"] ?? "54329", 1)
        setenv("DES_PG_DATABASE", env["DES_TEST_PG_DATABASE"] ?? "des_test", 1)
        setenv("DES_PG_USER", env["DES_TEST_PG_USER"] ?? "postgres", 1)
        setenv("DES_PG_SCHEMA", schema, 1)
        func des(_ args: [String]) async throws -> Int32 {
            let p = try startDES(args, config: config)
            await d.wait(p)
            return p.terminationStatus
        }
        #expect(try await des(["sample", "--files", "800"]) == 0)
        #expect(try await des(["marker", "run", "--until-idle"]) == 0)
        #expect(try await des(["packer", "run", "--until-idle"]) == 0)
        #expect(try await des(["check"]) == 0)
        let packed = try await admin.withSession { try $0.query("SELECT COUNT(*) FROM \(schema).files WHERE des_status = 'DES_PACKED'") }
        #expect(packed.first?[0].int == 800)
        _ = try await admin.withSession { try $0.execute("DROP SCHEMA \(schema) CASCADE") }
        await admin.close()
    }
}

