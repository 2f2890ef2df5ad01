import DESTestSupport
import Foundation
import Testing

/// Runs `redis-cli ARGS` against the shared test Redis.
func redisCLI(_ args: [String]) throws -> String {
    let url = try testServerSetting("DES_TEST_REDIS_URL")
    let port = try #require(url.split(separator: ":").last.map(String.init))
    let r = try runProcess("/usr/bin/env", ["redis-cli", "-h", "127.0.0.1", "-p", port] + args)
    return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Credentials in the config: a cache.url every command would refuse is refused by `des config
/// check`; a refused password is reported as an authentication failure (exit 77 from a command such as `des get`,
/// "authentication failed" from `des health`), naming the server and never the password.
@Suite("des and credentials: cache.url, refused passwords")
struct CLICredentialTests {
    @Test("des config check refuses a cache.url that is not redis:// at its line, without its password; redis://user:password@ passes")
    func cacheURLCheck() throws {
        try withTempDir { dir in
            try """
                storage: {type: local, root: ./archive}
                cache:
                  type: redis
                  url: http://x:hunter2-secret@h
                """.write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
            let r = try runDES(["config", "check", "c.yaml"], in: dir)
            #expect(r.status == 65)
            expectCleanErrorLine(r)
            #expect(r.stderr.contains("c.yaml:4:") && r.stderr.contains("cache.url") && r.stderr.contains("redis://"), "\(r.stderr)")
            #expect(!r.stderr.contains("hunter2-secret") && !r.out.contains("hunter2-secret"))
            // Every other command refuses it the same way.
            let get = try runDES(["get", "DES_20250101_(21BCAA000100_88)", "-c", "c.yaml"], in: dir)
            #expect(get.status == 65 && get.stderr.contains("cache.url") && !get.stderr.contains("hunter2-secret"), "\(get.stderr)")
            let good = try String(contentsOfFile: dir + "/c.yaml", encoding: .utf8)
                .replacingOccurrences(of: "http://x:hunter2-secret@h", with: "redis://app:hunter2-secret@h:6380/2")
            try good.write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
            let ok = try runDES(["config", "check", "c.yaml"], in: dir)
            #expect(ok.status == 0, "\(ok.stderr)")
            #expect(!ok.stderr.contains("hunter2-secret") && !ok.out.contains("hunter2-secret"))
        }
    }

    @Test("A wrong MariaDB password: des get exits 77, des health says authentication failed; neither shows it")
    func mariaDBWrongPassword() throws {
        try withTempDir { dir in
            let host = try testServerSetting("DES_TEST_MARIADB_HOST"), port = try testServerSetting("DES_TEST_MARIADB_PORT")
            let user = try testServerSetting("DES_TEST_MARIADB_USER"), database = try testServerSetting("DES_TEST_MARIADB_DATABASE")
            let secret = "wrong-" + UUID().uuidString
            try """
                storage: {type: local, root: ./archive}
                metadata: {connection: {type: mariadb, host: \(host), port: \(port), database: \(database), username: \(user), password: \(secret)}}
                """.write(toFile: dir + "/m.yaml", atomically: true, encoding: .utf8)
            let status = try runDES(["get", "DES_20250101_(21BCAA000100_88)", "-c", "m.yaml"], in: dir)
            #expect(status.status == 77, "\(status.stderr)")
            expectCleanErrorLine(status)
            #expect(status.stderr.contains("authentication failed") && status.stderr.contains("\(host):\(port)") && status.stderr.contains(user))
            #expect(!status.stderr.contains(secret))
            let health = try runDES(["health", "-c", "m.yaml"], in: dir)
            #expect(health.status == 69)
            #expect(health.out.contains("FAILED metadata") && health.out.contains("authentication failed"), "\(health.out)")
            #expect(!health.out.contains("no answer within") && !health.out.contains(secret) && !health.stderr.contains(secret))
        }
    }

    @Test("A PostgreSQL role that does not exist: des get exits 77 at once, des health says authentication failed")
    func postgresRefusedRole() throws {
        try withTempDir { dir in
            let host = try testServerSetting("DES_TEST_PG_HOST"), port = try testServerSetting("DES_TEST_PG_PORT")
            let database = try testServerSetting("DES_TEST_PG_DATABASE")
            let secret = "pw-" + UUID().uuidString
            try """
                storage: {type: local, root: ./archive}
                metadata: {connection: {type: postgresql, host: \(host), port: \(port), database: \(database), username: des_nobody, password: \(secret)}}
                """.write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
            let status = try runDES(["get", "DES_20250101_(21BCAA000100_88)", "-c", "p.yaml"], in: dir)
            #expect(status.status == 77, "\(status.stderr)")
            #expect(status.stderr.contains("authentication failed") && status.stderr.contains("des_nobody") && !status.stderr.contains(secret))
            let health = try runDES(["health", "-c", "p.yaml", "--json"], in: dir)
            #expect(health.status == 69)
            #expect(health.out.contains("authentication failed") && !health.out.contains("no answer within") && !health.out.contains(secret), "\(health.out)")
        }
    }

    @Test("des health checks a Redis cache: a wrong ACL password is an authentication failure naming server and user, never the password")
    func redisWrongPassword() throws {
        let user = "des_t_" + UUID().uuidString.prefix(8).lowercased()
        let password = "pw-" + UUID().uuidString
        try #require(try redisCLI(["ACL", "SETUSER", user, "on", ">" + password, "~*", "+@all"]) == "OK")
        defer { _ = try? redisCLI(["ACL", "DELUSER", user]) }
        let url = try testServerSetting("DES_TEST_REDIS_URL")
        let address = url.replacingOccurrences(of: "redis://", with: "")
        try withTempDir { dir in
            func config(_ pw: String) throws {
                try """
                    storage: {type: local, root: ./archive}
                    metadata: {connection: {type: sqlite, database: meta.sqlite}}
                    cache: {type: redis, url: "redis://\(user):\(pw)@\(address)/0", key_prefix: \(user)}
                    """.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
            }
            try config(password)
            let good = try runDES(["health", "-c", "r.yaml"], in: dir)
            #expect(good.status == 0 && good.out.contains("ok     cache"), "\(good.out)\(good.stderr)")
            let wrong = "WRONG-" + UUID().uuidString
            try config(wrong)
            let bad = try runDES(["health", "-c", "r.yaml", "--log-level", "debug"], in: dir)
            #expect(bad.status == 69)
            #expect(bad.out.contains("FAILED cache") && bad.out.contains("authentication failed") && bad.out.contains(user), "\(bad.out)")
            #expect(bad.out.contains(address))
            for text in [bad.out, bad.stderr] { #expect(!text.contains(wrong) && !text.contains(password)) }
        }
    }
}
