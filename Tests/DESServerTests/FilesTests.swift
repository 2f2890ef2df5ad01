@testable import DESPluginS3
import DESKit
import DESNaming
@testable import DESServer
import DESTestSupport
import Foundation
import Testing

@Suite("GET /files/{name}") struct FilesTests {
    /// Every file of the shelf read back: bytes, content type, ETag, X-DES headers; HEAD; ranges; 304.
    static func checkRetrieval(_ shelf: Shelf, server: RunningServer, client: Client, names: [String]) async throws {
        for name in names {
            let file = try #require(shelf.files[name])
            let url = server.base + "/files/" + path(name)
            let r = try await client.send("GET", url)
            #expect(r.status == 200, "\(name)")
            #expect(r.body == file.bytes, "\(name)")
            #expect(r.headers["content-type"] == (file.contentType ?? "application/octet-stream"))
            #expect(r.headers["etag"] == "\"" + referenceSHA256Hex(file.bytes) + "\"")
            #expect(r.headers["x-des-container"] == file.container && r.headers["x-des-shard-id"] == String(file.shard))
            #expect(r.headers["accept-ranges"] == "bytes")

            let head = try await client.send("HEAD", url)
            #expect(head.status == 200 && head.body.isEmpty && head.headers["content-length"] == String(file.bytes.count))

            let n = file.bytes.count
            let cases: [(String, Range<Int>)] = [
                ("bytes=0-0", 0..<1), ("bytes=1-\(n / 2)", 1..<(n / 2 + 1)), ("bytes=\(n / 3)-", (n / 3)..<n), ("bytes=-5", max(0, n - 5)..<n),
                ("bytes=0-\(n + 100)", 0..<n),
            ]
            for (range, slice) in cases where n >= 4 {
                let part = try await client.send("GET", url, headers: ["Range": range])
                #expect(part.status == 206, "\(range)")
                #expect(part.body == Array(file.bytes[slice]), "\(range) of \(n)")
                #expect(part.headers["content-range"] == "bytes \(slice.lowerBound)-\(slice.upperBound - 1)/\(n)")
            }
            let past = try await client.send("GET", url, headers: ["Range": "bytes=\(n)-"])
            #expect(past.status == 416 && past.headers["content-range"] == "bytes */\(n)")
            #expect(past.headers["cache-control"] == "no-store" && past.headers["etag"] == nil)  // an error is not the file
            #expect(r.headers["x-content-type-options"] == "nosniff" && r.headers["content-security-policy"] == "sandbox")
            let garbled = try await client.send("GET", url, headers: ["Range": "bytes=abc"])
            #expect(garbled.status == 400 && client.errorCode(garbled) == "bad_range")
            let cached = try await client.send("GET", url, headers: ["If-None-Match": r.headers["etag"] ?? ""])
            #expect(cached.status == 304 && cached.body.isEmpty)
        }
    }

    @Test("from local-disk containers: bytes, headers, HEAD, Range, 304; 404 and 400 before any I/O")
    func localDisk() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(60, filesPerContainer: 20)
        let plain = try await shelf.pack(3, prefix: "RAW", size: 100, contentType: nil)
        try await withServer(shelf) { server, client in
            try await Self.checkRetrieval(shelf, server: server, client: client, names: Array(names.prefix(12)) + plain)
            // Every name is found (several containers per (day, shard)), the raw parentheses work too.
            for name in names {
                let r = try await client.send("GET", server.base + "/files/" + name)
                #expect(r.status == 200 && r.body == shelf.files[name]?.bytes)
            }
            // A name never packed: a valid name, 404 after the container lookup.
            let unknown = try SnowflakeGenerator(configuration: .init(prefix: "SRV", node: 9)).next().description
            let missing = try await client.send("GET", server.base + "/files/" + path(unknown))
            #expect(missing.status == 404 && client.errorCode(missing) == "not_found")
            let missingHead = try await client.send("HEAD", server.base + "/files/" + path(unknown))
            #expect(missingHead.status == 404)
            // Malformed names: 400, and storage is not touched.
            let before = storageRequests(server)
            for bad in ["nope", "SRV_20250101_(21BCAA000100_00)", "SRV_2025_(X)", String(repeating: "A", count: 300), "..%2F..%2Fetc%2Fpasswd"] {
                let r = try await client.send("GET", server.base + "/files/" + bad)
                #expect(r.status == 400 && client.errorCode(r) == "bad_name", "\(bad)")
            }
            #expect(storageRequests(server) == before)
        }
    }

    @Test("a body larger than the streaming chunk (1 MiB) goes out whole, and in slices across chunks")
    func largeBodyStreams() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(1, size: (3 << 20) + 12_345)
        try await withServer(shelf) { server, client in
            let file = try #require(shelf.files[names[0]])
            let url = server.base + "/files/" + path(names[0])
            let whole = try await client.send("GET", url)
            #expect(whole.status == 200 && whole.body.count == file.bytes.count && whole.body == file.bytes)
            let from = (1 << 20) - 10, to = (2 << 20) + 10
            let slice = try await client.send("GET", url, headers: ["Range": "bytes=\(from)-\(to)"])
            #expect(slice.status == 206 && slice.body == Array(file.bytes[from...to]))
        }
    }

    @Test("Range headers: suffixes, clamping, signs, huge positions, several ranges")
    func rangeParsing() {
        #expect(ByteRange.parse("bytes=0-9", size: 100) == .slice(0...9))
        #expect(ByteRange.parse("bytes=90-", size: 100) == .slice(90...99))
        #expect(ByteRange.parse("bytes=-10", size: 100) == .slice(90...99))
        #expect(ByteRange.parse("bytes=-500", size: 100) == .slice(0...99))
        #expect(ByteRange.parse("bytes=5-99999999999999999999999", size: 100) == .slice(5...99))
        #expect(ByteRange.parse("bytes=99999999999999999999999-", size: 100) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=100-", size: 100) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=-0", size: 100) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=0-0", size: 0) == .unsatisfiable)
        #expect(ByteRange.parse("bytes=+5-9", size: 100) == .malformed)
        #expect(ByteRange.parse("bytes=9-5", size: 100) == .malformed)
        #expect(ByteRange.parse("bytes=a-b", size: 100) == .malformed)
        #expect(ByteRange.parse("bytes=0-1,5-6", size: 100) == .whole)
        #expect(ByteRange.parse("items=0-1", size: 100) == .whole)
    }

    @Test("the location cache: a key removed and set again survives the eviction of its old slot")
    func boundedCacheReinsert() {
        let cache = BoundedCache<String, Int>(capacity: 3)
        cache.set("a", 1)
        cache.set("b", 2)
        cache.set("c", 3)
        cache.remove("a")
        cache.set("a", 10)  // the ring is full: takes the oldest slot, the stale one of "a"
        #expect(cache["a"] == 10 && cache["b"] == 2 && cache["c"] == 3)
        cache.set("d", 4)  // evicts "b", the oldest live key
        #expect(cache["b"] == nil && cache["a"] == 10 && cache["c"] == 3 && cache["d"] == 4)
        cache.remove("c")
        cache.set("c", 30)  // again through its own stale slot
        cache.set("e", 5)  // evicts "a", now the oldest
        #expect(cache["c"] == 30 && cache["e"] == 5 && cache["a"] == nil && cache["d"] == 4)
        #expect(cache.count == 3)
    }

    @Test("from S3 containers (moto): bytes, headers, HEAD, Range; a warm read is one ranged GET")
    func s3() async throws {
        let storage = try await Shelf.s3Storage()
        var shelf = try await Shelf.make(storage: storage)
        defer { shelf.cleanup() }
        let names = try await shelf.pack(12, filesPerContainer: 6)
        // Without the body cache (BodyCacheTests): every read goes to storage.
        try await withServer(shelf, edit: { $0.bodyCacheBytes = 0 }) { server, client in
            try await Self.checkRetrieval(shelf, server: server, client: client, names: Array(names.prefix(4)))
            // Warm: the location is known; one GET of the body's range, nothing else.
            let name = names[0]
            let before = storageRequests(server)
            let r = try await client.send("GET", server.base + "/files/" + path(name))
            #expect(r.status == 200 && r.body == shelf.files[name]?.bytes)
            #expect(storageRequests(server) == before + 1)
        }
    }
}

/// The total of `des_storage_requests_total` on a server's /metrics registry.
func storageRequests(_ server: RunningServer) -> Int {
    metricSum(server.metrics.registry.emitToString(), "des_storage_requests_total")
}

/// The sum of a metric's series in Prometheus text (optionally only those containing `labels`).
func metricSum(_ text: String, _ name: String, labels: String = "") -> Int {
    var total = 0.0
    for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
        if !labels.isEmpty && !line.contains(labels) { continue }
        if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { total += value }
    }
    return Int(total)
}

