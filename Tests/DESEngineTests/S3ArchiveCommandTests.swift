import DESFormat
import DESKit
import DESPluginS3
import DESTestSupport
import Foundation
import Testing

/// `des ls|cat|meta|stat|verify|unpack s3://…` read the object in place with ranged requests,
/// counted exactly by a recording proxy in front of the S3 server.
@Suite("Archive commands on S3") struct S3ArchiveCommandTests {
    /// A bucket holding `files` as one container under `key`, and a proxy in front of the server.
    struct Setup {
        let s3: S3TestServer
        let proxy: TCPProxy
        let bucket: String
        let key: String
        let dir: String
        let files: [(name: String, bytes: [UInt8])]

        var url: String { "s3://\(bucket)/\(key)" }
        /// The requests for the container's object.
        var requests: [TCPProxy.Request] { proxy.requests.filter { $0.target.hasPrefix("/\(bucket)/\(key)") } }

        /// Runs `des ARGS` against the proxy; its status, stdout (bytes) and stderr.
        func des(_ args: [String]) async throws -> (status: Int32, out: Data, err: String) {
            try await runDESRaw(
                args,
                environment: [
                    "AWS_ENDPOINT_URL": "http://127.0.0.1:\(proxy.port)", "AWS_REGION": s3.region, "AWS_ACCESS_KEY_ID": s3.key,
                    "AWS_SECRET_ACCESS_KEY": s3.secret, "TMPDIR": dir + "/tmp",
                    "DES_S3_REQUEST_TIMEOUT": "\(sharedS3RequestTimeout)",
                ], in: dir, killAfter: 120)
        }
    }

    /// Writes `count` files of `size` random bytes into a container and uploads it.
    static func setup(count: Int, size: Int) async throws -> Setup {
        let dir = NSTemporaryDirectory() + "des-s3cmd-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir + "/tmp", withIntermediateDirectories: true)
        let s3 = try S3TestServer()
        let bucket = "des-cmd-" + UUID().uuidString.prefix(8).lowercased()
        let storage = try await s3.bucket(bucket)
        var rng = SystemRandomNumberGenerator()
        let files = (0..<count).map { i in ("d\(i % 7)/f\(i).bin", (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }) }
        let path = dir + "/c.des"
        let writer = try DESArchiveWriter(path: path)
        for (name, bytes) in files { _ = try writer.add(name: name, bytes: bytes) }
        _ = try writer.close()
        let key = "des/2026-12-05/shard_00_c000001.des"
        _ = try await storage.put(key: key, fromFile: path)
        await storage.close()
        let proxy = try TCPProxy(targetPort: try #require(URL(string: s3.endpoint)?.port), recordingRequests: true)
        return Setup(s3: s3, proxy: proxy, bucket: bucket, key: key, dir: dir, files: files)
    }

    @Test("A cold des cat of a container whose index fits the first read is 2 GETs (the tail by a suffix range, then the body) and no HEAD; ls, meta and stat are 1 GET; nothing is written to TMPDIR")
    func coldRequests() async throws {
        let s = try await Self.setup(count: 50, size: 4096)
        defer { s.proxy.stop(); try? FileManager.default.removeItem(atPath: s.dir) }
        let (name, bytes) = s.files[17]

        let cat = try await s.des(["cat", s.url, name])
        #expect(cat.status == 0, "\(cat.err)")
        #expect([UInt8](cat.out) == bytes)
        let catRequests = s.requests
        #expect(catRequests.map(\.method) == ["GET", "GET"], "\(catRequests)")
        #expect(catRequests.first?.range == "bytes=-65536", "\(catRequests)")
        #expect(catRequests.last?.range?.hasPrefix("bytes=") == true && catRequests.last?.range?.contains("-") == true)

        for args in [["ls", s.url], ["meta", s.url, name], ["stat", s.url, "--json"]] {
            s.proxy.clearRequests()
            let run = try await s.des(args)
            #expect(run.status == 0, "\(args): \(run.err)")
            #expect(s.requests.map(\.method) == ["GET"], "\(args): \(s.requests)")
        }
        let listed = try await s.des(["ls", s.url])
        #expect(String(decoding: listed.out, as: UTF8.self).split(separator: "\n").map(String.init) == s.files.map(\.name))
        let meta = try await s.des(["meta", s.url, name])
        #expect(meta.status == 0 && String(decoding: meta.out, as: UTF8.self).contains("\"size\":4096"), "\(meta.status) \(meta.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.dir + "/tmp").isEmpty, "a temporary copy was written")

        // A missing object and a missing entry: exit 66, no HEAD either way.
        s.proxy.clearRequests()
        let missing = try await s.des(["cat", "s3://\(s.bucket)/nope.des", name])
        #expect(missing.status == 66 && missing.err.contains("no such object"), "\(missing)")
        let noEntry = try await s.des(["cat", s.url, "nope"])
        #expect(noEntry.status == 66, "\(noEntry)")
        #expect(!s.proxy.requests.contains { $0.method == "HEAD" })
    }

    @Test("A container whose index does not come with the first read: a cold des cat is 3 GETs through its two-level index (the suffix with the root, one leaf, the body), each range small, no HEAD")
    func coldCatThroughLevels() async throws {
        let s = try await Self.setup(count: 3000, size: 64)
        defer { s.proxy.stop(); try? FileManager.default.removeItem(atPath: s.dir) }
        let (name, bytes) = s.files[1234]
        let cat = try await s.des(["cat", s.url, name])
        #expect(cat.status == 0, "\(cat.err)")
        #expect([UInt8](cat.out) == bytes)
        let requests = s.requests
        #expect(requests.map(\.method) == ["GET", "GET", "GET"], "\(requests)")
        #expect(requests.first?.range == "bytes=-65536")
        for request in requests.dropFirst() {
            let parts = (request.range ?? "").dropFirst("bytes=".count).split(separator: "-").compactMap { UInt64($0) }
            #expect(parts.count == 2 && parts[1] - parts[0] < 64 * 1024, "\(request)")
        }
        let missing = try await s.des(["cat", s.url, "nope"])
        #expect(missing.status == 66, "\(missing)")
    }

    @Test("verify and unpack stream a 12 MiB container: ranged GETs of at most 8 MiB that together read it once, no whole-object GET, nothing in TMPDIR; a flipped byte fails both with exit 65")
    func streaming() async throws {
        let s = try await Self.setup(count: 48, size: 256 * 1024)
        defer { s.proxy.stop(); try? FileManager.default.removeItem(atPath: s.dir) }
        let objectSize = UInt64(try #require(FileManager.default.attributesOfItem(atPath: s.dir + "/c.des")[.size] as? Int))

        let verify = try await s.des(["verify", s.url, "--json"])
        #expect(verify.status == 0, "\(verify.err)")
        let report = try jsonObject(String(decoding: verify.out, as: UTF8.self))
        #expect(report["ok"] as? Bool == true && report["checksummed"] as? Int == 48, "\(report)")
        Self.expectStreamed(s.requests, objectSize: objectSize)

        s.proxy.clearRequests()
        let unpack = try await s.des(["unpack", s.url, "-C", s.dir + "/out"])
        #expect(unpack.status == 0, "\(unpack.err)")
        for (name, bytes) in s.files {
            #expect(FileManager.default.contents(atPath: s.dir + "/out/" + name).map([UInt8].init) == bytes, "\(name)")
        }
        Self.expectStreamed(s.requests, objectSize: objectSize)
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.dir + "/tmp").isEmpty, "a temporary copy was written")

        // One byte of one body flipped in the object: both commands refuse it.
        var raw = try [UInt8](Data(contentsOf: URL(fileURLWithPath: s.dir + "/c.des")))
        let victim = try DESArchiveReader(path: s.dir + "/c.des").entries[40]
        raw[Int(victim.dataOffset) + 1000] ^= 0x01
        try Data(raw).write(to: URL(fileURLWithPath: s.dir + "/bad.des"))
        let storage = try await s.s3.bucket(s.bucket)
        _ = try await storage.put(key: s.key, fromFile: s.dir + "/bad.des")
        await storage.close()
        let bad = try await s.des(["verify", s.url])
        #expect(bad.status == 65 && bad.err.contains(victim.name), "\(bad.err)")
        let badUnpack = try await s.des(["unpack", s.url, "-C", s.dir + "/out2"])
        #expect(badUnpack.status == 65, "\(badUnpack.err)")
        // A damaged header: verify and unpack, which read the whole object anyway, check it too.
        var headless = try [UInt8](Data(contentsOf: URL(fileURLWithPath: s.dir + "/c.des")))
        headless.replaceSubrange(0..<8, with: Array("NOTADES!".utf8))
        try Data(headless).write(to: URL(fileURLWithPath: s.dir + "/headless.des"))
        let again = try await s.s3.bucket(s.bucket)
        _ = try await again.put(key: s.key, fromFile: s.dir + "/headless.des")
        await again.close()
        let noHeader = try await s.des(["verify", s.url])
        #expect(noHeader.status == 65 && noHeader.err.contains("header"), "\(noHeader.err)")
    }

    /// Every request of a streamed read is a GET of a range of at most 8 MiB (the first a
    /// suffix), and together they read no more than the object once (plus the first suffix).
    static func expectStreamed(_ requests: [TCPProxy.Request], objectSize: UInt64) {
        #expect(requests.allSatisfy { $0.method == "GET" }, "\(requests)")
        #expect(requests.first?.range == "bytes=-65536")
        var total: UInt64 = 65536
        for request in requests.dropFirst() {
            guard let range = request.range, range.hasPrefix("bytes="), let dash = range.firstIndex(of: "-") else {
                Issue.record("a GET without a range: \(request)")
                continue
            }
            let from = UInt64(range[range.index(range.startIndex, offsetBy: 6)..<dash]) ?? 0
            let to = UInt64(range[range.index(after: dash)...]) ?? 0
            #expect(to >= from && to - from + 1 <= 8 << 20, "\(range)")
            total += to - from + 1
        }
        #expect(total <= objectSize + 65536, "read \(total) bytes of a \(objectSize)-byte object")
        #expect(requests.count <= Int(objectSize / (8 << 20)) + 3, "\(requests.count) requests")
    }
}
