import DESTestSupport
import DESKit
import DESPluginMariaDB
import DESPluginPostgreSQL
import Foundation
import Testing

/// One config, three catalogs in three database products — PostgreSQL (libpq), MariaDB (Connector/C)
/// and PostgreSQL again through ODBC (psqlODBC) — with their own table names, column names, status
/// values and metadata columns, marked and packed by one stock packer into shared containers.
struct HeterogeneousDeployment {
    let d: Deployment
    let pg: PostgresConnection
    let my: MariaDBConnection
    let pgSchema: String, odbcSchema: String, myDatabase: String
    let rows: Int
    let config: String

    init(rowsPerSource rows: Int, claimMode: String = "row") async throws {
        d = try Deployment()
        self.rows = rows
        let tag = UUID().uuidString.prefix(8).lowercased()
        pgSchema = "des_h_pg_" + tag
        odbcSchema = "des_h_odbc_" + tag
        myDatabase = "des_h_my_" + tag
        for folder in ["pg", "my", "od"] {
            try FileManager.default.createDirectory(atPath: d.bodiesRoot + "/" + folder, withIntermediateDirectories: true)
            var rng = SystemRandomNumberGenerator()
            for i in 1...rows {
                let body = (0..<Int.random(in: 1...400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                _ = FileManager.default.createFile(atPath: "\(d.bodiesRoot)/\(folder)/f\(i)", contents: Data(body))
            }
        }
        let (pgHost, pgPort, pgDB, pgUser) = (try testServerSetting("DES_TEST_PG_HOST"), try testServerSetting("DES_TEST_PG_PORT"),
                                              try testServerSetting("DES_TEST_PG_DATABASE"), try testServerSetting("DES_TEST_PG_USER"))
        let (myHost, myPort, myUser, myPassword) = (try testServerSetting("DES_TEST_MARIADB_HOST"), try testServerSetting("DES_TEST_MARIADB_PORT"),
                                                    try testServerSetting("DES_TEST_MARIADB_USER"), try testServerSetting("DES_TEST_MARIADB_PASSWORD"))
        let odbcDriver = try testServerSetting("DES_TEST_ODBC_PG_DRIVER")
        pg = try await PostgresConnection.connect(conninfo: try testServerSetting("DES_TEST_POSTGRES"), target: "test server")
        let (pgSchema, odbcSchema, myDatabase) = (self.pgSchema, self.odbcSchema, self.myDatabase)
        try await pg.withTransaction { s in
            try s.execute("CREATE SCHEMA \(pgSchema)")
            try s.execute(
                """
                CREATE TABLE \(pgSchema).pg_files (id BIGINT PRIMARY KEY, path TEXT NOT NULL, bytes BIGINT, kind TEXT, st TEXT,
                  des_name TEXT, des_shard INTEGER, des_container TEXT, des_claimed_by TEXT, des_claimed_at DOUBLE PRECISION, des_error TEXT)
                """)
            try s.execute("INSERT INTO \(pgSchema).pg_files (id, path, kind) SELECT g, 'pg/f' || g, 'scan' FROM generate_series(1, \(rows)) g")
            try s.execute("CREATE SCHEMA \(odbcSchema)")
            try s.execute(
                """
                CREATE TABLE \(odbcSchema).odbc_objects (oid BIGINT PRIMARY KEY, object_key TEXT NOT NULL, label TEXT, des_status TEXT,
                  des_name TEXT, des_shard INTEGER, des_container TEXT, des_claimed_by TEXT, des_claimed_at DOUBLE PRECISION, des_error TEXT)
                """)
            try s.execute(
                "INSERT INTO \(odbcSchema).odbc_objects (oid, object_key, label) SELECT g, 'od/f' || g, 'odbc-' || g FROM generate_series(1, \(rows)) g")
        }
        var myConnection = ConnectionConfig(
            type: "mariadb", host: myHost, port: Int(myPort), username: myUser, password: Secret(myPassword))
        let (settings, target) = try MariaDBPlugin.settings(myConnection, what: "test")
        my = try await MariaDBConnection.connect(settings, target: target)
        try await my.withSession { s in
            try s.execute("CREATE DATABASE \(myDatabase) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            try s.execute(
                """
                CREATE TABLE \(myDatabase).catalog_items (item_id BIGINT PRIMARY KEY, location VARCHAR(255) NOT NULL, length BIGINT NULL,
                  mime_type VARCHAR(64) NULL, state VARCHAR(16) NULL, des_name VARCHAR(255) NULL, des_shard INT NULL,
                  des_container VARCHAR(512) NULL, des_claimed_by VARCHAR(255) NULL, des_claimed_at DOUBLE NULL, des_error TEXT NULL,
                  KEY claim (state, des_shard, item_id)) ENGINE=InnoDB
                """)
            for start in stride(from: 1, through: rows, by: 500) {
                let ids = Array(start...min(rows, start + 499))
                let tuples = ids.map { "(\($0), 'my/f\($0)', 'image/png', 'NEW')" }.joined(separator: ", ")
                try s.execute("INSERT INTO \(myDatabase).catalog_items (item_id, location, mime_type, state) VALUES \(tuples)")
            }
        }
        myConnection.database = myDatabase
        config = d.dir + "/heterogeneous.yaml"
        try """
            sources:
              - name: warehouse
                connection: {type: postgres, host: \(pgHost), port: \(pgPort), database: \(pgDB), username: \(pgUser), schema: \(pgSchema), pool_size: 2}
                table:
                  name: pg_files
                  columns: {id: id, s3_key: path, size_bytes: bytes, status: st, metadata_columns: {category: kind}}
                  status_pending_value: todo
                  status_claimed_value: busy
                  status_packed_value: done
                  status_failed_value: bad
                bodies: {type: local, root: bodies}
              - name: shop
                connection: {type: mariadb, host: \(myHost), port: \(myPort), database: \(myDatabase), username: \(myUser), password: "\(myPassword)", pool_size: 2}
                table:
                  name: catalog_items
                  columns: {id: item_id, s3_key: location, size_bytes: length, status: state, metadata_columns: [mime_type]}
                  status_new_value: NEW
                  status_pending_value: READY
                  status_claimed_value: TAKEN
                  status_packed_value: STORED
                  status_failed_value: BROKEN
                bodies: {type: local, root: bodies}
              - name: archive
                connection:
                  type: odbc
                  dialect: postgres
                  host: \(pgHost)
                  port: \(pgPort)
                  database: \(pgDB)
                  username: \(pgUser)
                  schema: \(odbcSchema)
                  pool_size: 2
                  driver_options: {DRIVER: \(odbcDriver)}
                table:
                  name: odbc_objects
                  columns: {id: oid, s3_key: object_key, metadata_columns: [label]}
                bodies: {type: local, root: bodies}
            storage: {type: local, root: archive, prefix: des}
            metadata: {connection: {type: postgresql, host: \(pgHost), port: \(pgPort), database: \(pgDB), username: \(pgUser), schema: \(pgSchema)}}
            packer: {claim_mode: \(claimMode), work_dir: work, shard_bits: 3, pod_name: mixed, batch_size: 50, max_container_files: 300, checkpoint_every_files: 20, lease_ttl_seconds: 30, heartbeat_seconds: 1}
            marker: {batch_size: 500}
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// Starts `des ARGS -c CONFIG` as a child process, its output discarded.
    func des(_ args: [String]) throws -> Process { try startDES(args, config: config) }

    /// (status, count) of each source, and the container keys each source's rows went to.
    func outcome() async throws -> (statuses: [String: [String: Int64]], containers: [String: Set<String>]) {
        let (pgSchema, odbcSchema, myDatabase) = (self.pgSchema, self.odbcSchema, self.myDatabase)
        func count(_ rows: [SQLRow]) -> [String: Int64] {
            Dictionary(uniqueKeysWithValues: rows.map { ($0[0].text ?? "NULL", $0[1].int ?? 0) })
        }
        let warehouse = try await pg.withSession { try $0.query("SELECT st, COUNT(*) FROM \(pgSchema).pg_files GROUP BY st") }
        let archive = try await pg.withSession { try $0.query("SELECT des_status, COUNT(*) FROM \(odbcSchema).odbc_objects GROUP BY des_status") }
        let shop = try await my.withSession { try $0.query("SELECT state, COUNT(*) FROM \(myDatabase).catalog_items GROUP BY state") }
        let c1 = try await pg.withSession { try $0.query("SELECT DISTINCT des_container FROM \(pgSchema).pg_files") }
        let c2 = try await pg.withSession { try $0.query("SELECT DISTINCT des_container FROM \(odbcSchema).odbc_objects") }
        let c3 = try await my.withSession { try $0.query("SELECT DISTINCT des_container FROM \(myDatabase).catalog_items") }
        func keys(_ rows: [SQLRow]) -> Set<String> { Set(rows.compactMap { $0[0].text }) }
        return (
            ["warehouse": count(warehouse), "shop": count(shop), "archive": count(archive)],
            ["warehouse": keys(c1), "shop": keys(c3), "archive": keys(c2)]
        )
    }

    func drop() async throws {
        let (pgSchema, odbcSchema, myDatabase) = (self.pgSchema, self.odbcSchema, self.myDatabase)
        _ = try await pg.withSession { s in
            try s.execute("DROP SCHEMA \(pgSchema) CASCADE")
            try s.execute("DROP SCHEMA \(odbcSchema) CASCADE")
        }
        _ = try await my.withSession { try $0.execute("DROP DATABASE \(myDatabase)") }
        await pg.close()
        await my.close()
    }
}

@Suite("Heterogeneous sources") struct HeterogeneousTests {
    static func expectAllPacked(_ h: HeterogeneousDeployment) async throws {
        let (statuses, containers) = try await h.outcome()
        let n = Int64(h.rows)
        #expect(statuses["warehouse"] == ["done": n], "\(statuses)")
        #expect(statuses["shop"] == ["STORED": n], "\(statuses)")
        #expect(statuses["archive"] == ["DES_PACKED": n], "\(statuses)")
        // Shared containers: the sources' rows went into the same containers of (day, shard).
        let shared = containers["warehouse", default: []].intersection(containers["shop", default: []])
            .intersection(containers["archive", default: []])
        #expect(!shared.isEmpty, "no container holds files of all three sources")
        // Every row read back by its name and compared with its body, for all three sources.
        let check = try h.des(["check"])
        await h.d.wait(check)
        #expect(check.terminationStatus == 0)
    }

    @Test("PostgreSQL, MariaDB and ODBC catalogs, different tables, columns and status values: one marker and one packer, shared containers")
    func oneRunOverThreeDatabases() async throws {
        let h = try await HeterogeneousDeployment(rowsPerSource: 1500)
        defer { h.d.cleanup() }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: try desBinary())
        check.arguments = ["config", "check", h.config]
        check.standardOutput = FileHandle.nullDevice
        try check.run()
        await h.d.wait(check)
        #expect(check.terminationStatus == 0)
        let marker = try h.des(["marker", "run", "--until-idle"])
        await h.d.wait(marker)
        #expect(marker.terminationStatus == 0)
        let packer = try h.des(["packer", "run", "--until-idle"])
        await h.d.wait(packer)
        #expect(packer.terminationStatus == 0)
        try await Self.expectAllPacked(h)
        try await h.drop()
    }

    @Test(
        "The same run with the packer killed (SIGKILL) mid-run again and again: nothing lost, nothing twice (claim_mode row and lease)",
        arguments: ["row", "lease"])
    func killNineAcrossThreeDatabases(mode: String) async throws {
        let h = try await HeterogeneousDeployment(rowsPerSource: 2000, claimMode: mode)
        defer { h.d.cleanup() }
        let marker = try h.des(["marker", "run", "--until-idle"])
        await h.d.wait(marker)
        #expect(marker.terminationStatus == 0)
        var kills = 0
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<40 where kills < 8 {
            let launched = Date()
            let p = try h.des(["packer", "run", "--until-idle"])
            // Killed once it has rows in hand (a container open): mid-run, whatever the machine's
            // speed; watched from a thread of its own, so a busy test process cannot delay it.
            let delay = useconds_t.random(in: 0...50_000, using: &rng)
            let pid = p.processIdentifier
            let watcher = ProcessWatcher(process: p, workDir: h.d.dir + "/work", since: launched) {
                usleep(delay)
                return kill(pid, SIGKILL) == 0
            }
            let acted = await watcher.finished()
            await h.d.wait(p)
            if acted && p.terminationReason == .uncaughtSignal { kills += 1 }  // landed: it did not exit by itself
        }
        #expect(kills >= 5, "only \(kills) kills landed before the catalogs were drained")
        let last = try h.des(["packer", "run", "--until-idle"])
        await h.d.wait(last)
        #expect(last.terminationStatus == 0)
        try await Self.expectAllPacked(h)
        print("heterogeneous crash test (\(mode)): \(kills) kills")
        try await h.drop()
    }
}
