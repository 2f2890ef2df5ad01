@testable import DESPluginS3
import DESFormat
import DESKit
import DESNaming
@testable import DESServer
import DESTestSupport
import Foundation
import NIOCore
import Testing

/// `server.body_cache_bytes`: small bodies, once read and checked, are answered from memory;
/// their container's version is believed for container_refresh_seconds, then asked again.
@Suite("Body cache") struct BodyCacheTests {
    /// Storage requests by operation on a server's registry.
    static func requests(_ server: RunningServer, _ operation: String) -> Int {
        metricSum(server.metrics.registry.emitToString(), "des_storage_requests_total", labels: "operation=\"\(operation)\"")
    }

    @Test("A file read again is answered from memory, bytes and ranges alike: no storage request while container_refresh_seconds has not passed")
    func hitsCostNothing() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(6, size: 3_000, filesPerContainer: 3)
        try await withServer(shelf, edit: { $0.containerRefreshSeconds = 3_600 }) { server, client async throws in
            for name in names { #expect(try await client.send("GET", server.base + "/files/" + path(name)).status == 200) }
            let before = storageRequests(server)
            for name in names {
                let file = try #require(shelf.files[name])
                let whole = try await client.send("GET", server.base + "/files/" + path(name))
                #expect(whole.status == 200 && whole.body == file.bytes)
                #expect(whole.headers["etag"] == "\"" + referenceSHA256Hex(file.bytes) + "\"")
                let part = try await client.send("GET", server.base + "/files/" + path(name), headers: ["Range": "bytes=100-199"])
                #expect(part.status == 206 && part.body == Array(file.bytes[100..<200]))
                #expect(part.headers["content-range"] == "bytes 100-199/3000")
            }
            #expect(storageRequests(server) == before, "every body came from memory")
            let text = server.metrics.registry.emitToString()
            #expect(metricSum(text, "des_body_cache_requests_total", labels: "result=\"hit\"") == 12)
            #expect(metricSum(text, "des_body_cache_requests_total", labels: "result=\"miss\"") == 6)
            #expect(metricSum(text, "des_body_cache_bytes") == 6 * (3_000 + BodyCache.entryOverhead), "their bytes, and what each costs beside")
        }
    }

    @Test("Once container_refresh_seconds has passed, a kept body costs one HEAD of its container and no read")
    func confirmedByHead() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(2, size: 1_000)
        try await withServer(shelf, edit: { $0.containerRefreshSeconds = 0 }) { server, client async throws in
            let url = server.base + "/files/" + path(names[0])
            #expect(try await client.send("GET", url).status == 200)
            let (heads, reads) = (Self.requests(server, "head"), Self.requests(server, "get_range"))
            for _ in 0..<3 { #expect(try await client.send("GET", url).body == shelf.files[names[0]]?.bytes) }
            #expect(Self.requests(server, "head") == heads + 3 && Self.requests(server, "get_range") == reads)
        }
    }

    @Test("A body over an eighth of the budget is read each time; a budget of 0 keeps none")
    func admission() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let big = try await shelf.pack(1, size: 3_000)
        let small = try await shelf.pack(1, size: 500)
        try await withServer(shelf, edit: { $0.bodyCacheBytes = 40_000; $0.containerRefreshSeconds = 3_600 }) { server, client async throws in
            for name in big + small { #expect(try await client.send("GET", server.base + "/files/" + path(name)).status == 200) }
            let reads = Self.requests(server, "get_range")  // the first reads: META and bodies
            for _ in 0..<2 { #expect(try await client.send("GET", server.base + "/files/" + path(big[0])).body == shelf.files[big[0]]?.bytes) }
            for _ in 0..<2 { #expect(try await client.send("GET", server.base + "/files/" + path(small[0])).body == shelf.files[small[0]]?.bytes) }
            #expect(Self.requests(server, "get_range") == reads + 2, "the 3,000-byte body each time (its cost over 40,000 / 8), the 500-byte one from memory")
        }
        try await withServer(shelf, edit: { $0.bodyCacheBytes = 0; $0.containerRefreshSeconds = 3_600 }) { server, client async throws in
            #expect(try await client.send("GET", server.base + "/files/" + path(small[0])).status == 200)
            let reads = Self.requests(server, "get_range")
            for _ in 0..<2 { #expect(try await client.send("GET", server.base + "/files/" + path(small[0])).status == 200) }
            #expect(Self.requests(server, "get_range") == reads + 2)
            #expect(metricSum(server.metrics.registry.emitToString(), "des_body_cache_requests_total") == 0)
        }
    }

    @Test("A deleted file answers 410 once the server knows of its tombstone, though its body is in memory")
    func deletesFirst() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(1, size: 100)
        try await withServer(shelf, edit: { $0.containerRefreshSeconds = 3_600 }) { server, client async throws in
            let url = server.base + "/files/" + path(names[0])
            #expect(try await client.send("GET", url).status == 200)
            #expect(try await client.send("GET", url).status == 200)
            _ = try await shelf.metadata.addTombstones([Tombstone(name: names[0], reason: "test", origin: "delete", containerID: nil, bytes: 100)])
            let gone = try await poll(until: 410, client, url, within: 10)
            #expect(gone.status == 410)
        }
    }

    /// A located file for the unit tests below.
    static func served(_ name: String, key: String = "c.des") -> ServedFile {
        let entry = DESIndexEntry(name: name, dataOffset: 0, dataLength: 10, metaOffset: 0, metaLength: 0, flags: [])
        return ServedFile(LocatedEntry(key: key, version: "1-1-1", entry: entry, metadata: DESMetadata()), shard: 0)
    }

    @Test("The cache never holds more than its budget, keeps what was asked for lately, and answers only for the location a body was read through")
    func bounded() {
        let cache = BodyCache(budget: 80_000)
        var kept: [String: ServedFile] = [:]
        for i in 0..<100 {
            let name = "n\(i)"
            let served = Self.served(name)
            kept[name] = served
            cache.insert(name, served: served, body: ByteBuffer(repeating: UInt8(i), count: 1_000))
            #expect(cache.bytes <= 80_000, "never more than the budget")
            // n0 is asked for after every insert: it stays.
            #expect(cache.body(of: "n0", served: kept["n0"].unsafelyUnwrapped)?.readableBytes == 1_000, "after \(i)")
        }
        #expect(cache.body(of: "n1", served: kept["n1"].unsafelyUnwrapped) == nil, "not asked for: dropped long since")
        #expect(cache.body(of: "n99", served: kept["n99"].unsafelyUnwrapped)?.getBytes(at: 0, length: 1) == [99])
        #expect(cache.body(of: "n99", served: Self.served("n99")) == nil, "found anew: another location, not this body")
        cache.remove("n99")
        #expect(cache.body(of: "n99", served: kept["n99"].unsafelyUnwrapped) == nil)
        let largest = UInt64(80_000 / 8 - BodyCache.entryOverhead)
        #expect(cache.admits(size: largest) && !cache.admits(size: largest + 1))
        #expect(!BodyCache(budget: 0).admits(size: 0))
        #expect(!BodyCache(budget: 1).admits(size: 0), "a budget too small for one entry's cost keeps none")
    }

    @Test("Empty bodies are not free: a flood of them stays within the budget")
    func emptyBodies() {
        let cache = BodyCache(budget: 80_000)
        for i in 0..<10_000 { cache.insert("e\(i)", served: Self.served("e\(i)"), body: ByteBuffer()) }
        #expect(cache.bytes <= 80_000)
        #expect(cache.count <= 80_000 / BodyCache.entryOverhead)
    }
}
