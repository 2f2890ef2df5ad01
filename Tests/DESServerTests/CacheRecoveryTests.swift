@testable import DESPluginS3
import DESFormat
import DESKit
import DESNaming
import DESServer
import DESStorage
import DESTestSupport
import Foundation
import Testing

@Suite("Caches recover") struct CacheRecoveryTests {
    /// A container replaced on storage with another valid archive, then restored: its files
    /// answer 404 while it is replaced, and 200 again within container_refresh_seconds after.
    /// Without the body cache, every read is pinned to the version it located (the replacement is
    /// seen at once); with it, a kept body is believed for container_refresh_seconds (the
    /// replacement is seen within that long).
    static func replaceAndRestore(_ storage: any StorageBackend, bodyCache: Bool = false) async throws {
        var shelf = try await Shelf.make(storage: storage)
        defer { shelf.cleanup() }
        let names = try await shelf.pack(6, filesPerContainer: 3)
        let name = names[0]
        let file = try #require(shelf.files[name])
        let original = shelf.dir + "/original.des"
        try Data(try await storage.get(key: file.container)).write(to: URL(fileURLWithPath: original))
        let foreign = shelf.dir + "/foreign.des"
        let writer = try DESArchiveWriter(path: foreign)
        _ = try writer.add(name: "OTHER_20250101_(21BCAA000100_00)", bytes: Array("someone else's file".utf8))
        _ = try writer.close()
        let refresh = 0.5
        let edit: (inout ServerSettings) -> Void = {
            $0.containerRefreshSeconds = refresh
            if !bodyCache { $0.bodyCacheBytes = 0 }
        }
        try await withServer(shelf, edit: edit) { server, client in
            let url = server.base + "/files/" + path(name)
            #expect(try await client.send("GET", url).status == 200)
            if !bodyCache {
                let before = storageRequests(server)
                #expect(try await client.send("GET", url).body == file.bytes)
                #expect(storageRequests(server) == before + 1, "a warm read is one ranged read")
            }

            _ = try await storage.put(key: file.container, fromFile: foreign)
            let replaced = bodyCache ? try await poll(until: 404, client, url, within: refresh + 15) : try await client.send("GET", url)
            #expect(replaced.status == 404, "\(String(decoding: replaced.body, as: UTF8.self))")

            _ = try await storage.put(key: file.container, fromFile: original)
            let restored = try await poll(until: 200, client, url, within: refresh + 15)
            #expect(restored.status == 200 && restored.body == file.bytes, "still \(restored.status) after the restore")
            // Every file of the container is back, and the warm path is one request again.
            for other in names where shelf.files[other]?.container == file.container {
                let r = try await client.send("GET", server.base + "/files/" + path(other))
                #expect(r.status == 200 && r.body == shelf.files[other]?.bytes)
            }
            if !bodyCache {
                let warm = storageRequests(server)
                #expect(try await client.send("GET", url).status == 200)
                #expect(storageRequests(server) == warm + 1)
            }
        }
    }

    @Test("local disk: a container replaced with another valid archive, then restored, is served again within container_refresh_seconds")
    func localReplaceAndRestore() async throws {
        let dir = NSTemporaryDirectory() + "des-recover-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await Self.replaceAndRestore(try LocalDiskStorage(root: dir))
    }

    @Test("S3 (moto): a container replaced with another valid archive, then restored, is served again within container_refresh_seconds")
    func s3ReplaceAndRestore() async throws {
        try await Self.replaceAndRestore(try await Shelf.s3Storage())
    }

    @Test("With bodies kept in memory, a replaced container's files answer 404 within container_refresh_seconds, and 200 again once restored", arguments: ["local", "s3"])
    func replaceAndRestoreWithBodyCache(storage kind: String) async throws {
        let dir = NSTemporaryDirectory() + "des-recover-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let storage: any StorageBackend = kind == "s3" ? try await Shelf.s3Storage() : try LocalDiskStorage(root: dir)
        try await Self.replaceAndRestore(storage, bodyCache: true)
    }

    @Test("a name in no container costs at most one HEAD per container per container_refresh_seconds")
    func missesAreBounded() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(3, filesPerContainer: 3)
        let key = try #require(shelf.files[names[0]]?.container)
        try await withServer(shelf, edit: { $0.containerRefreshSeconds = 3_600 }) { server, client in
            #expect(try await client.send("GET", server.base + "/files/" + path(names[0])).status == 200)
            // Names of the same day and shard that were never packed.
            let day = String(key.split(separator: "/")[1])
            let shard = try #require(shelf.files[names[0]]?.shard)
            let strangers = try strangerNames(day: day, shard: shard, bits: shelf.shardBits, count: 5)
            let before = metricSum(server.metrics.registry.emitToString(), "des_storage_requests_total", labels: "operation=\"head\"")
            for stranger in strangers {
                #expect(try await client.send("GET", server.base + "/files/" + path(stranger)).status == 404)
            }
            let heads = metricSum(server.metrics.registry.emitToString(), "des_storage_requests_total", labels: "operation=\"head\"") - before
            #expect(heads <= 1, "\(heads) HEADs for 5 misses in one container")
        }
    }
}

/// `count` valid names of `day` and `shard` that no shelf packed (another node's).
func strangerNames(day: String, shard: Int, bits: Int, count: Int) throws -> [String] {
    let generator = try SnowflakeGenerator(configuration: .init(prefix: "SRV", node: 9))
    var out: [String] = []
    for _ in 0..<1_000 where out.count < count {
        for name in generator.next(count: 64) where name.isoDay == day && Int(consistentHash(name.description, bits: bits)) == shard {
            out.append(name.description)
        }
    }
    guard out.count >= count else { throw TestFailure("no names of day \(day), shard \(shard)") }
    return Array(out.prefix(count))
}
