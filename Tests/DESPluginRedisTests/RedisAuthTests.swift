import DESFormat
import DESKit
import Foundation
import Logging
import Synchronization
import Testing

@testable import DESPluginRedis

/// Every log line a logger made, with its metadata, for checking what reaches the logs.
final class CapturedLogs: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }

    /// A logger whose every line (level trace and up) lands here.
    func logger() -> Logger {
        var l = Logger(label: "test.redis") { _ in CapturingHandler(sink: self) }
        l.logLevel = .trace
        return l
    }

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    struct CapturingHandler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            sink.append("\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 })")
        }
    }
}

/// An ACL user of its own on the shared test Redis, deleted by `remove()` (no global password is set).
struct RedisACLUser {
    let name = "des_t_" + UUID().uuidString.prefix(8).lowercased()
    let password = "pw-" + UUID().uuidString

    init() throws {
        let reply = try RedisServer.cli(["ACL", "SETUSER", name, "on", ">" + password, "~*", "+@all"])
        try #require(reply == "OK", "ACL SETUSER: \(reply)")
    }

    func remove() { _ = try? RedisServer.cli(["ACL", "DELUSER", name]) }

    func url(password: String? = nil) throws -> String {
        let shared = try RedisServer.settings()
        return "redis://\(name):\(password ?? self.password)@127.0.0.1:\(shared.port)/0"
    }
}

@Suite("Redis credentials in cache.url, live")
struct RedisAuthTests {
    @Test("redis://user:password@host:port/db logs in as that ACL user; a wrong password is an authentication failure that never shows it")
    func aclUser() async throws {
        let user = try RedisACLUser()
        defer { user.remove() }
        var good = try RedisIndexCache.Settings(url: try user.url())
        good.keyPrefix = "t" + UUID().uuidString.prefix(8).lowercased()
        #expect(good.username == user.name && good.password == user.password)
        let cache = RedisIndexCache(settings: good)
        try await cache.healthCheck()
        let id = ArchiveIdentity(location: "l", key: "k", version: "v")
        // The settings' TTL (an hour), not a minute: on a loaded CI machine this test's task once
        // resumed after the entry had expired, and a read-back that fails for timing proves nothing
        // about the login. `clear()` below removes the entry.
        await cache.set(id, index: try RedisServer.index(files: 3), ttlSeconds: nil)
        #expect(await cache.get(id) != nil)
        #expect(cache.errorCount == 0)
        await cache.clear()
        await cache.close()

        let wrongPassword = "WRONG-" + UUID().uuidString
        let logs = CapturedLogs()
        let bad = RedisIndexCache(settings: try RedisIndexCache.Settings(url: try user.url(password: wrongPassword)), logger: logs.logger())
        do {
            try await bad.healthCheck()
            Issue.record("a wrong password must be refused")
        } catch let error as DESKitError {
            #expect(error.code == .authentication, "\(error)")
            #expect(error.message.contains("authentication failed") && error.message.contains("127.0.0.1:\(good.port)"), "\(error.message)")
            #expect(error.message.contains(user.name))
            #expect(!error.message.contains(wrongPassword) && !error.message.contains(user.password))
        }
        // A lookup is a miss (the cache is off), and the log says why, without the password.
        #expect(await bad.get(id) == nil)
        #expect(bad.errorCount >= 1)
        let lines = logs.all
        #expect(lines.contains { $0.contains("authentication failed") && $0.contains(user.name) }, "\(lines)")
        #expect(!lines.contains { $0.contains(wrongPassword) || $0.contains(user.password) }, "\(lines)")
        #expect(!lines.contains { $0.contains("unreachable") }, "\(lines)")
        await bad.close()
    }

    @Test("A server with requirepass: no password is NOAUTH, a wrong one is refused, both reported as authentication failures")
    func requirePass() async throws {
        let secret = "srv-" + UUID().uuidString
        // A private redis-server on a free port. The port is free when chosen, but in a full run
        // another connection may take it before the server binds it: the server then exits, and
        // it is started again on another port.
        var port = 0
        var p = Process()
        var up = false
        for _ in 0..<5 where !up {
            port = try RedisServer.freePort()
            p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["redis-server", "--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no", "--requirepass", secret]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Generous: in a full run this process is busy, and a slow start is not what is tested.
            let deadline = Date().addingTimeInterval(60)
            while !up && p.isRunning && Date() < deadline {
                up = (try? RedisServer.cli(["-a", secret, "--no-auth-warning", "PING"], port: port)) == "PONG"
                if !up { try await Task.sleep(nanoseconds: 20_000_000) }
            }
            if !up {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
        let server = p
        defer {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        try #require(up, "the private redis-server did not start")
        for (url, hint) in [("redis://127.0.0.1:\(port)", "NOAUTH"), ("redis://:not-\(secret)@127.0.0.1:\(port)", "WRONGPASS")] {
            let logs = CapturedLogs()
            let cache = RedisIndexCache(settings: try RedisIndexCache.Settings(url: url), logger: logs.logger())
            let error = await #expect(throws: DESKitError.self) { try await cache.healthCheck() }
            #expect(error?.code == .authentication && error?.message.contains(hint) == true, "\(String(describing: error))")
            #expect(error?.message.contains("127.0.0.1:\(port)") == true)
            #expect(await cache.get(ArchiveIdentity(location: "l", key: "k", version: "v")) == nil)
            #expect(logs.all.contains { $0.contains("authentication failed") }, "\(logs.all)")
            #expect(!logs.all.joined().contains(secret))
            await cache.close()
        }
        let ok = RedisIndexCache(settings: try RedisIndexCache.Settings(url: "redis://:\(secret)@127.0.0.1:\(port)/1"))
        try await ok.healthCheck()
        await ok.close()
    }

    @Test("redis:// URLs: user, password, percent-encoding, IPv6, database; other schemes and malformed URLs refused without showing the password")
    func urlForms() throws {
        let s = try RedisIndexCache.Settings(url: "redis://app%40x:p%3Aw%40rd@cache.local:6380/3")
        #expect(s.username == "app@x" && s.password == "p:w@rd" && s.host == "cache.local" && s.port == 6380 && s.database == 3)
        #expect(s.server == "cache.local:6380 (user 'app@x')")
        let v6 = try RedisIndexCache.Settings(url: "redis://[::1]:6390")
        #expect(v6.host == "::1" && v6.port == 6390 && v6.username == nil && v6.password == nil)
        #expect(try RedisIndexCache.Settings(url: "redis://h").port == 6379)
        let secret = "hunter2-secret"
        for bad in [
            "http://x:\(secret)@h", "rediss://u:\(secret)@h", "redis://u@h", "redis://u:\(secret)@h:0", "redis://u:\(secret)@h/x",
            "redis://u:\(secret)@h?db=1", "u:\(secret)@h", "redis://u:%zz\(secret)@h", "u:\(secret)@h://x",
        ] {
            let error = #expect(throws: DESKitError.self, "\(bad)") { _ = try RedisIndexCache.Settings(url: bad) }
            #expect(error?.code == .configuration)
            #expect(error?.message.contains(secret) == false, "\(error?.message ?? "")")
        }
    }

    @Test("des config check: a cache.url that is not redis:// is refused at its line and column, without its password")
    func configCheck() throws {
        let registry = PluginRegistry()
        RedisPlugin.register(in: registry)
        let yaml = "cache:\n  type: redis\n  url: http://x:hunter2-secret@h\n"
        do {
            _ = try ConfigLoader.parse(yaml: yaml, file: "c.yaml", environment: [:], plugins: registry)
            Issue.record("http:// must be refused")
        } catch let error as ConfigError {
            #expect(error.line == 3 && error.keyPath == "cache.url", "\(error)")
            #expect(error.description.contains("c.yaml:3:") && error.description.contains("redis://"), "\(error)")
            #expect(!error.description.contains("hunter2-secret"))
        }
        let good = yaml.replacingOccurrences(of: "http://x:hunter2-secret@h", with: "redis://user:hunter2-secret@h:6380/2")
        #expect(try ConfigLoader.parse(yaml: good, file: "c.yaml", environment: [:], plugins: registry).cache.settings?.value(as: RedisCacheConfig.self) != nil)
    }
}
