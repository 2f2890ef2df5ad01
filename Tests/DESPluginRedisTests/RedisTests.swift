import DESFormat
import DESKit
import Foundation
import DESKitTesting
import Testing

@testable import DESPluginRedis

/// The Redis `scripts/test-servers.sh up` starts (make test does); each test has a key prefix of its own.
enum RedisServer {
    static func settings(prefix: String = "t" + UUID().uuidString.prefix(8).lowercased()) throws -> RedisIndexCache.Settings {
        guard let url = ProcessInfo.processInfo.environment["DES_TEST_REDIS_URL"] else {
            throw DESKitError(.configuration, "DES_TEST_REDIS_URL is not set: start the test servers (scripts/test-servers.sh up; make test does)")
        }
        var s = try RedisIndexCache.Settings(url: url)
        s.keyPrefix = prefix
        return s
    }

    /// A loopback port nothing listens on now (the kernel's pick for a socket bound to port 0),
    /// for a private redis-server: a random pick could land on another test's server.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DESKitError(.unavailable, "socket: \(errno)") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw DESKitError(.unavailable, "bind: \(errno)") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func cli(_ args: [String], port: Int? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let settings = try settings()
        p.arguments = ["redis-cli", "-h", "127.0.0.1", "-p", String(port ?? settings.port)] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func index(files: Int) throws -> DESIndex {
        let path = NSTemporaryDirectory() + "des-redis-\(UUID().uuidString).des"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try DESArchiveWriter(path: path)
        for i in 0..<files { try writer.add(name: "f\(i)", bytes: Array("body \(i)".utf8)) }
        _ = try writer.close()
        return try DESArchiveReader(path: path).index
    }
}

@Suite("Redis index cache, live")
struct RedisTests {
    @Test("Round trip: an index comes back whole, under its version; the newest version is found without it")
    func roundTrip() async throws {
        let cache = RedisIndexCache(settings: try RedisServer.settings())
        let index = try RedisServer.index(files: 300)
        let id = ArchiveIdentity(location: "s3://b", key: "des/2025-01-01/shard_01_c000001.des", version: "etag-1")
        #expect(await cache.get(id) == nil)
        await cache.set(id, index: index, ttlSeconds: nil)
        let back = try #require(await cache.get(id))
        #expect(back.entries == index.entries && back.footer == index.footer && back.archiveSize == index.archiveSize)
        #expect(back.entry(named: "f299")?.dataLength == index.entry(named: "f299")?.dataLength)
        let latest = try #require(await cache.latest(location: "s3://b", key: id.key))
        #expect(latest.version == "etag-1" && latest.index.entries.count == 300)
        await cache.delete(id)
        #expect(await cache.get(id) == nil)
        let stats = await cache.stats()
        #expect(stats.hits == 2 && stats.misses == 2, "\(stats)")
        #expect(cache.errorCount == 0)
    }

    @Test("An entry expires after its TTL")
    func ttl() async throws {
        let cache = RedisIndexCache(settings: try RedisServer.settings())
        let id = ArchiveIdentity(location: "l", key: "k", version: "v")
        let set = Date()
        await cache.set(id, index: try RedisServer.index(files: 3), ttlSeconds: 2)
        let present = await cache.get(id) != nil
        // (Under a loaded test run the first read may come late; it must find the entry only while it lives.)
        #expect(present || Date().timeIntervalSince(set) >= 2)
        // Read until it is gone, at least once after the TTL (a late first read must not use up
        // the whole wait), for at most 15 s after that.
        let deadline = max(Date(), set.addingTimeInterval(2)).addingTimeInterval(15)
        var gone = false
        repeat {
            gone = await cache.get(id) == nil
            if !gone { try await Task.sleep(nanoseconds: 50_000_000) }
        } while !gone && Date() < deadline
        // A sleep on a starved machine can outlast the deadline: ask once more before judging.
        if !gone { gone = await cache.get(id) == nil }
        #expect(gone, "the entry outlived its TTL")
    }

    @Test("A damaged entry is deleted and read as a miss")
    func corruptEntry() async throws {
        let settings = try RedisServer.settings()
        let cache = RedisIndexCache(settings: settings)
        let id = ArchiveIdentity(location: "l", key: "k", version: "v")
        await cache.set(id, index: try RedisServer.index(files: 3), ttlSeconds: nil)
        let key = "\(settings.keyPrefix):idx:l/k@v"
        #expect(try RedisServer.cli(["EXISTS", key]) == "1")
        _ = try RedisServer.cli(["SETRANGE", key, "20", "garbage!"])
        #expect(await cache.get(id) == nil)
        #expect(try RedisServer.cli(["EXISTS", key]) == "0")
        _ = try RedisServer.cli(["SET", key, "not an index at all"])
        #expect(await cache.get(id) == nil)
    }

    @Test("An entry holding another container's (valid) index is deleted and read as a miss, never used")
    func foreignEntry() async throws {
        let settings = try RedisServer.settings()
        let cache = RedisIndexCache(settings: settings)
        let a = ArchiveIdentity(location: "l", key: "a.des", version: "v1")
        let b = ArchiveIdentity(location: "l", key: "b.des", version: "v1")
        await cache.set(b, index: try RedisServer.index(files: 5), ttlSeconds: nil)
        let bKey = "\(settings.keyPrefix):idx:l/b.des@v1", aKey = "\(settings.keyPrefix):idx:l/a.des@v1"
        // Copy B's value under A's key, as a buggy or hostile writer would.
        _ = try RedisServer.cli(["COPY", bKey, aKey])
        #expect(try RedisServer.cli(["EXISTS", aKey]) == "1")
        #expect(await cache.get(a) == nil)
        #expect(try RedisServer.cli(["EXISTS", aKey]) == "0")
        #expect(await cache.get(b)?.count == 5)
        // Nor is an index stored under an identity other than the one it records.
        var other = try RedisServer.index(files: 2)
        other.origin = b.description
        await cache.set(a, index: other, ttlSeconds: nil)
        #expect(try RedisServer.cli(["EXISTS", aKey]) == "0")
    }

    @Test("Redis stopped mid-run: reads go on without the cache, and it is used again once Redis is back")
    func outage() async throws {
        let port = try RedisServer.freePort()
        let dir = NSTemporaryDirectory() + "des-redis-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        /// A private redis-server in the foreground (a child of the test), so that it can be killed.
        func start() async throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["redis-server", "--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--save", "", "--appendonly", "no"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            for _ in 0..<250 where (try? RedisServer.cli(["PING"], port: port)) != "PONG" { try? await Task.sleep(nanoseconds: 20_000_000) }
            return p
        }
        func stop(_ p: Process) async {
            kill(p.processIdentifier, SIGKILL)
            while p.isRunning { try? await Task.sleep(nanoseconds: 10_000_000) }
        }
        var server = try await start()
        var settings = RedisIndexCache.Settings()
        settings.port = port
        settings.timeoutSeconds = 0.2
        let cache = RedisIndexCache(settings: settings)
        let id = ArchiveIdentity(location: "l", key: "k", version: "v")
        let index = try RedisServer.index(files: 10)
        await cache.set(id, index: index, ttlSeconds: nil)
        #expect(await cache.get(id) != nil)
        await stop(server)
        // Down: misses, never an error.
        for _ in 0..<5 { #expect(await cache.get(id) == nil) }
        await cache.set(id, index: index, ttlSeconds: nil)
        #expect(cache.errorCount >= 1)
        server = try await start()
        let deadline = Date().addingTimeInterval(10)
        var back = false
        while Date() < deadline, !back {
            await cache.set(id, index: index, ttlSeconds: nil)
            back = await cache.get(id) != nil
            if !back { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        #expect(back, "the cache did not come back with Redis")
        await stop(server)
    }

    @Test("redis:// URLs")
    func urls() throws {
        let s = try RedisIndexCache.Settings(url: "redis://:pw@cache.local:6380/2")
        #expect(s.host == "cache.local" && s.port == 6380 && s.password == "pw" && s.database == 2)
        #expect(throws: DESKitError.self) { _ = try RedisIndexCache.Settings(url: "http://x") }
    }
}

@Suite("Conformance kit: Redis index cache")
struct RedisConformanceTests {
    @Test("The Redis index cache passes the IndexCache suite (under a key prefix of its own, since one check clears)")
    func cache() async throws {
        let settings = try RedisServer.settings()
        let report = await IndexCacheConformance.run { RedisIndexCache(settings: settings) }
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 6)
    }
}
