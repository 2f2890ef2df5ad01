import DESKit
import DESPluginMariaDB
import Foundation
import Testing

/// `des sample` on MariaDB, and the shipped MariaDB config end to end.
@Suite("MariaDB end to end")
struct MariaDBShippedConfigTests {
    @Test("configs/mariadb.yaml: des sample creates the catalog; marker, packer and check then run end to end on MariaDB")
    func shippedConfig() async throws {
        let env = ProcessInfo.processInfo.environment
        let host = try #require(env["DES_TEST_MARIADB_HOST"], "DES_TEST_MARIADB_HOST is not set: start the test servers")
        let port = try #require(env["DES_TEST_MARIADB_PORT"].flatMap(Int.init))
        let admin = ConnectionConfig(
            type: "mariadb", host: host, port: port, database: env["DES_TEST_MARIADB_DATABASE"], username: env["DES_TEST_MARIADB_USER"],
            password: env["DES_TEST_MARIADB_PASSWORD"].map(Secret.init))
        let (settings, target) = try MariaDBPlugin.settings(admin, what: "test")
        let c = try await MariaDBConnection.connect(settings, target: target)
        let database = "des_cfg_" + UUID().uuidString.prefix(8).lowercased()
        _ = try await c.withSession { try $0.execute("CREATE DATABASE \(database) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin") }

        let d = try Deployment()
        defer { d.cleanup() }
        // The shipped file, copied beside its own data, pointed at the fresh database.
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs/mariadb.yaml").path
        let config = d.dir + "/mariadb.yaml"
        try FileManager.default.copyItem(atPath: shipped, toPath: config)
        setenv("DES_MARIADB_HOST", host, 1)
        setenv("DES_MARIADB_PORT", String(port), 1)
        setenv("DES_MARIADB_DATABASE", database, 1)
        setenv("DES_MARIADB_USER", env["DES_TEST_MARIADB_USER"] ?? "des", 1)
        setenv("DES_MARIADB_PASSWORD", env["DES_TEST_MARIADB_PASSWORD"] ?? "", 1)
        func des(_ args: [String]) async throws -> Int32 {
            let p = try startDES(args, config: config)
            await d.wait(p)
            return p.terminationStatus
        }
        #expect(try await des(["sample", "--files", "600"]) == 0)
        // The table it made is the shape users have: a DATETIME(6) claim time, varchar statuses.
        let kind = try await c.withSession {
            try $0.query(
                "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?{1} AND TABLE_NAME = 'files' AND COLUMN_NAME = 'des_claimed_at'",
                [.text(database)])
        }
        #expect(kind.first?[0].text?.lowercased() == "datetime")
        // A second sample adds rows to the same table.
        #expect(try await des(["sample", "--files", "200", "--seed", "9"]) == 0)
        #expect(try await des(["marker", "run", "--until-idle"]) == 0)
        #expect(try await des(["packer", "run", "--until-idle"]) == 0)
        #expect(try await des(["check"]) == 0)
        let packed = try await c.withSession {
            try $0.query("SELECT COUNT(*) FROM \(database).files WHERE des_status = 'DES_PACKED'")
        }
        #expect(packed.first?[0].int == 800)
        _ = try await c.withSession { try $0.execute("DROP DATABASE \(database)") }
        await c.close()
    }
}
