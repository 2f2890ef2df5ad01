import DESTestSupport
import Foundation
import Testing

/// A filesystem source whose catalog lives in a PostgreSQL or MariaDB metadata store (the test
/// servers), each in a database of its own made for the test.
@Suite("Filesystem sources with a PostgreSQL or MariaDB metadata store")
struct CLIScanServerTests {
    /// Runs SQL as the test servers' admin user (psql, or the mariadb client).
    static func admin(_ server: String, _ sql: String) throws {
        var r: RunResult
        if server == "postgresql" {
            r = try runProcess("/usr/bin/env", ["psql", try testServerSetting("DES_TEST_POSTGRES"), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        } else {
            r = try runProcess(
                "/usr/bin/env",
                [
                    "mariadb", "-h", try testServerSetting("DES_TEST_MARIADB_HOST"), "-P", try testServerSetting("DES_TEST_MARIADB_PORT"),
                    "-u", try testServerSetting("DES_TEST_MARIADB_USER"), "-p" + (try testServerSetting("DES_TEST_MARIADB_PASSWORD")), "-e", sql,
                ])
        }
        #expect(r.status == 0, "\(server): \(sql): \(r.stderr)")
    }

    /// The metadata connection block for `database` on `server`.
    static func connection(_ server: String, database: String) throws -> String {
        if server == "postgresql" {
            return "{type: postgresql, host: \(try testServerSetting("DES_TEST_PG_HOST")), port: \(try testServerSetting("DES_TEST_PG_PORT")), "
                + "database: \(database), username: \(try testServerSetting("DES_TEST_PG_USER"))}"
        }
        return "{type: mariadb, host: \(try testServerSetting("DES_TEST_MARIADB_HOST")), port: \(try testServerSetting("DES_TEST_MARIADB_PORT")), "
            + "database: \(database), username: \(try testServerSetting("DES_TEST_MARIADB_USER")), password: \"${DES_TEST_MARIADB_PASSWORD}\"}"
    }

    @Test("Scan, duplicates, pack, read by path and check, with the catalog in the metadata store's own database; a second run reuses its table",
        arguments: ["postgresql", "mariadb"])
    func drained(server: String) throws {
        try withTempDir { dir in
            let database = "des_fs_" + UUID().uuidString.prefix(8).lowercased()
            try Self.admin(server, server == "postgresql" ? "CREATE DATABASE \(database)" : "CREATE DATABASE \(database) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            defer { try? Self.admin(server, "DROP DATABASE \(database)") }
            try """
                sources:
                  - name: share
                    connection: {type: filesystem, roots: [tree], min_age: 0}
                metadata: {connection: \(try Self.connection(server, database: database))}
                storage: {type: local, root: des-data/archive}
                packer: {work_dir: des-data/work}
                """.write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try CLIScanPathTests.write(dir, ["a.txt": "same bytes", "sub/b.txt": "same bytes", "sub/c é.txt": "other bytes"])
            var t = try CLIScanPathTests.scan(dir)
            #expect(t["ready"] as? Int == 2 && t["waiting"] as? Int == 1, "\(server): \(t)")
            try CLIScanTests.drain(dir)
            t = try CLIScanPathTests.scan(dir)
            #expect(t["duplicates"] as? Int == 1 && t["read"] as? Int == 1, "\(server): \(t)")
            try CLIScanPathTests.write(dir, ["a.txt": "a second edition"])
            _ = try CLIScanPathTests.scan(dir)
            try CLIScanTests.drain(dir)
            for (args, text) in [
                (["--path", "a.txt"], "a second edition"), (["--path", "a.txt", "--version", "1"], "same bytes"), (["--path", "sub/b.txt"], "same bytes"),
                (["--path", "sub/c é.txt"], "other bytes"),
            ] {
                let r = try runDES(["get", "-c", "des.yaml"] + args, in: dir)
                #expect(r.status == 0 && r.out == text, "\(server) \(args): \(r.out) \(r.stderr)")
            }
            let versions = try runDES(["ls-versions", "-c", "des.yaml", "--path", "a.txt", "--json"], in: dir)
            let list = try #require(try JSONSerialization.jsonObject(with: Data(versions.out.utf8)) as? [[String: Any]], "\(versions.stderr)")
            #expect(list.map { $0["status"] as? String } == ["superseded", "packed"], "\(server): \(list)")
            let check = try runDES(["check", "-c", "des.yaml"], in: dir)
            #expect(check.status == 0, "\(server): \(check.out) \(check.stderr)")
        }
    }

    @Test("MariaDB: in a database whose default collation ignores case, the catalog still tells A.txt from a.txt and a.txt from a.txt with a space; a catalog made case-blind or space-padded is refused, naming the fix")
    func caseBlindDatabase() throws {
        try withTempDir { dir in
            let database = "des_fs_" + UUID().uuidString.prefix(8).lowercased()
            try Self.admin("mariadb", "CREATE DATABASE \(database) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
            defer { try? Self.admin("mariadb", "DROP DATABASE \(database)") }
            try """
                sources:
                  - name: share
                    connection: {type: filesystem, roots: [tree], min_age: 0}
                metadata: {connection: \(try Self.connection("mariadb", database: database))}
                storage: {type: local, root: des-data/archive}
                packer: {work_dir: des-data/work}
                """.write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try CLIScanPathTests.write(dir, ["A.txt": "upper", "a.txt": "lower", "a.txt ": "trailing space", "caf\u{e9}.txt": "accent"])
            let t = try CLIScanPathTests.scan(dir)
            #expect(t["inserted"] as? Int == 4 && t["ready"] as? Int == 4, "\(t)")
            try CLIScanTests.drain(dir)
            for (path, text) in [("A.txt", "upper"), ("a.txt", "lower"), ("a.txt ", "trailing space"), ("caf\u{e9}.txt", "accent")] {
                let r = try runDES(["get", "-c", "des.yaml", "--path", path], in: dir)
                #expect(r.status == 0 && r.out == text, "\(path): \(r.out) \(r.stderr)")
            }
            // A catalog an earlier release made with the database's case-blind default, or with
            // utf8mb4_bin (which pads with spaces). (Emptied first: their keys would collide.)
            for collation in ["utf8mb4_general_ci", "utf8mb4_bin"] {
                try Self.admin(
                    "mariadb", "DELETE FROM \(database).des_fs_files; ALTER TABLE \(database).des_fs_files CONVERT TO CHARACTER SET utf8mb4 COLLATE \(collation)")
                let refused = try runDES(["scan", "-c", "des.yaml", "--until-idle"], in: dir)
                #expect(
                    refused.status != 0 && refused.stderr.contains(collation) && refused.stderr.contains("CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"),
                    "\(refused.status) \(refused.stderr)")
            }
        }
    }
}
