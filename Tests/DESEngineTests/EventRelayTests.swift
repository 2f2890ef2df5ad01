@testable import DESPluginRedis
import DESEngine
import DESKit
import DESPluginSQLite
import DESTestSupport
import Foundation
import Logging
import Testing

/// `des relay` publishes the outbox to a Redis Stream on the test server: every event once per
/// run, in order, from where the last run stopped; a Redis that is down is a clear failure.
@Suite("Event relay")
struct EventRelayTests {
    @Test("des relay --until-idle publishes each event to the stream once, in order, and starts from its cursor the next time")
    func publishes() async throws {
        let url = try testServerSetting("DES_TEST_REDIS_URL")
        let d = try Deployment()
        defer { d.cleanup() }
        let stream = "des:test:\(UUID().uuidString.prefix(8))"
        let config = try d.writeConfig(
            packer: "{work_dir: work}", extra: "events: {poll_seconds: 0.05, publish: {type: redis, url: \"\(url)\", stream: \"\(stream)\", max_length: 1000}}")
        let store = try await SQLiteMetadataStore.open(path: d.dir + "/metadata.sqlite")
        defer { Task { await store.close() } }
        try await store.migrate()
        func delete(_ names: [String]) async throws {
            _ = try await store.addTombstones(names.map { Tombstone(name: $0, reason: "test", origin: "delete", containerID: nil, bytes: 0) })
        }
        try await delete(["R_1", "R_2", "R_3"])
        let first = try await runDES(["relay", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(first.status == 0, "\(first.err)")
        let one = try jsonObject(first.out)
        #expect(one["published"] as? Int == 3 && one["cursor"] as? Int == 3, "\(one)")
        try await delete(["R_4", "R_5"])
        let second = try await runDES(["relay", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(second.status == 0, "\(second.err)")
        #expect(try jsonObject(second.out)["published"] as? Int == 2)

        let redis = RedisIndexCache(settings: try RedisIndexCache.Settings(url: url))
        defer { Task { await redis.close() } }
        guard case .array(let entries)? = await redis.command([Array("XRANGE".utf8), Array(stream.utf8), Array("-".utf8), Array("+".utf8)]) else {
            Issue.record("XRANGE gave no entries")
            return
        }
        var published: [(id: String, kind: String, name: String)] = []
        for case .array(let entry) in entries {
            guard entry.count == 2, case .array(let fields) = entry[1] else { continue }
            var map: [String: String] = [:]
            var i = 0
            while i + 1 < fields.count {
                if case .bytes(let k) = fields[i], case .bytes(let v) = fields[i + 1] { map[String(decoding: k, as: UTF8.self)] = String(decoding: v, as: UTF8.self) }
                i += 2
            }
            published.append((map["id"] ?? "", map["kind"] ?? "", map["name"] ?? ""))
        }
        #expect(published.map(\.id) == ["1", "2", "3", "4", "5"])
        #expect(published.allSatisfy { $0.kind == "tombstone" })
        #expect(published.map(\.name) == ["R_1", "R_2", "R_3", "R_4", "R_5"])
        // A cursor past every event (the metadata store recreated or restored): everything kept is
        // published again, not nothing until the numbers catch up. A cursor that is not a number is refused.
        _ = await redis.command([Array("SET".utf8), Array((stream + ":cursor").utf8), Array("99999999999".utf8)])
        try await delete(["R_6"])
        let past = try await runDES(["relay", "--until-idle", "--json"], config: config, in: d.dir)
        #expect(past.status == 0, "\(past.err)")
        #expect(try jsonObject(past.out)["published"] as? Int == 6 && (try jsonObject(past.out)["cursor"] as? Int) == 6)
        _ = await redis.command([Array("SET".utf8), Array((stream + ":cursor").utf8), Array("garbage".utf8)])
        let garbage = try await runDES(["relay", "--until-idle"], config: config, in: d.dir)
        #expect(garbage.status != 0 && garbage.err.contains("not an event number"), "\(garbage.err)")
        _ = await redis.command([Array("DEL".utf8), Array(stream.utf8), Array((stream + ":cursor").utf8)])
    }

    @Test("Two relays on one stream: one publishes, the other stands by and takes over from the cursor once it stops; every event once")
    func twoRelays() async throws {
        let url = try testServerSetting("DES_TEST_REDIS_URL")
        let d = try Deployment()
        defer { d.cleanup() }
        let stream = "des:test:\(UUID().uuidString.prefix(8))"
        let store = try await SQLiteMetadataStore.open(path: d.dir + "/metadata.sqlite")
        defer { Task { await store.close() } }
        try await store.migrate()
        var sinkSettings = RedisEventSink.Settings()
        sinkSettings.server = try RedisIndexCache.Settings(url: url)
        sinkSettings.stream = stream
        let redis = RedisIndexCache(settings: try RedisIndexCache.Settings(url: url))
        defer { Task { await redis.close() } }
        func ids() async -> [String] {
            guard case .array(let entries)? = await redis.command([Array("XRANGE".utf8), Array(stream.utf8), Array("-".utf8), Array("+".utf8)]) else {
                return []
            }
            return entries.compactMap { entry -> String? in
                guard case .array(let e) = entry, e.count == 2, case .array(let fields) = e[1] else { return nil }
                for i in stride(from: 0, to: fields.count - 1, by: 2) {
                    if case .bytes(let k) = fields[i], k == Array("id".utf8), case .bytes(let v) = fields[i + 1] { return String(decoding: v, as: UTF8.self) }
                }
                return nil
            }
        }
        func published(_ count: Int) async throws {
            let deadline = monotonicSeconds() + 60
            while await ids().count < count, monotonicSeconds() < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
        }
        var settings = EventFollower.Settings()
        settings.pollSeconds = 0.05
        let signals = [ShutdownSignal(), ShutdownSignal()]
        let relays = (0..<2).map { i in
            EventRelay(
                metadata: store, sink: RedisEventSink(settings: sinkSettings), settings: settings, logger: Logger(label: "test"),
                holder: LeaseHolder(pod: "relay-\(i)", instance: "t"), leaseTTLSeconds: 300)
        }
        // A TTL no renewal misses on a loaded machine (30 s was missed once in CI, when other suites
        // held the test process's few cooperative threads): the hand-over comes from the first relay
        // letting go when it stops, and the second taking the lease at its next look (every second).
        let runs = (0..<2).map { i in Task { try await relays[i].run(shutdown: signals[i], untilIdle: false) } }
        _ = try await store.addTombstones((1...3).map { Tombstone(name: "T_\($0)", reason: "test", origin: "delete", containerID: nil, bytes: 0) })
        try await published(3)
        let slot = EventRelay.leaseShard(for: RedisEventSink(settings: sinkSettings).destination)
        let holder = try #require(try await store.leases().first { $0.shard == slot && $0.expiresAt > 0 }?.holder.pod)
        let first = holder == "relay-0" ? 0 : 1

        // A one-shot relay while one publishes: nothing to do, and it says who publishes.
        let config = try d.writeConfig(
            packer: "{work_dir: work}", extra: "events: {poll_seconds: 0.05, publish: {type: redis, url: \"\(url)\", stream: \"\(stream)\"}}")
        let busy = try await runDES(["relay", "--until-idle"], config: config, in: d.dir)
        let busyText = "\(holder)#t publishes to redis stream \(stream)"
        #expect(busy.status == 69 && busy.err.contains(busyText), "\(busy.status) \(busy.err)")

        signals[first].trigger()
        let firstTotals = try await runs[first].value
        _ = try await store.addTombstones((4...5).map { Tombstone(name: "T_\($0)", reason: "test", origin: "delete", containerID: nil, bytes: 0) })
        try await published(5)
        signals[1 - first].trigger()
        let secondTotals = try await runs[1 - first].value
        #expect(await ids() == ["1", "2", "3", "4", "5"], "each event once, in order")
        #expect(firstTotals.published == 3 && secondTotals.published == 2, "\(firstTotals.published) \(secondTotals.published)")
        _ = await redis.command([Array("DEL".utf8), Array(stream.utf8), Array((stream + ":cursor").utf8)])
    }

    @Test("With no events.publish, or a Redis that does not answer, des relay says so and exits non-zero")
    func refusals() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let none = try d.writeConfig(packer: "{work_dir: work}")
        let a = try await runDES(["relay", "--until-idle"], config: none, in: d.dir)
        #expect(a.status == 78 && a.err.contains("events.publish is not set"), "\(a.status) \(a.err)")
        let down = try d.writeConfig(
            packer: "{work_dir: work}", name: "down.yaml", extra: "events: {publish: {type: redis, url: \"redis://:hunter2@127.0.0.1:9\"}}")
        let store = try await SQLiteMetadataStore.open(path: d.dir + "/metadata.sqlite")
        try await store.migrate()
        _ = try await store.addTombstones([Tombstone(name: "X_1", reason: "r", origin: "delete", containerID: nil, bytes: 0)])
        await store.close()
        let b = try await runDES(["relay", "--until-idle"], config: down, in: d.dir)
        #expect(b.status != 0 && b.err.contains("127.0.0.1:9") && !b.err.contains("hunter2"), "\(b.status) \(b.err)")
        // A login the server refuses is an authentication failure (77), named as the event stream's.
        let login = try d.writeConfig(
            packer: "{work_dir: work}", name: "login.yaml", extra: "events: {publish: {type: redis, url: \"redis://:wrong-secret-7@127.0.0.1:\(URL(string: try testServerSetting("DES_TEST_REDIS_URL"))?.port ?? 6379)\"}}")
        let l = try await runDES(["relay", "--until-idle"], config: login, in: d.dir)
        #expect(l.status == 77 && l.err.contains("Redis event stream") && l.err.contains("authentication failed") && !l.err.contains("wrong-secret-7"), "\(l.status) \(l.err)")
        let typo = try d.writeConfig(packer: "{work_dir: work}", name: "typo.yaml", extra: "events: {publish: {type: redis, url: \"redis://127.0.0.1:6379\", strem: x}}")
        let c = try await runDES(["config", "check", typo], config: "", in: d.dir)
        #expect(c.status != 0 && c.err.contains("strem"), "\(c.err)")
    }
}
