import DESFormat
import DESKit
import DESKitTesting
import DESStorage
import DESTestSupport
import Foundation
import Testing

@testable import DESPluginS3

/// The S3 server `scripts/test-servers.sh up` starts (moto, signatures checked; make test does).
enum S3Server {
    static func variable(_ name: String) throws -> String {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else {
            throw DESKitError(.configuration, "\(name) is not set: start the test servers (scripts/test-servers.sh up; make test does)")
        }
        return v
    }

    /// Settings for the shared test server, whose requests may take ``sharedS3RequestTimeout``.
    static func settings(bucket: String? = nil, secret: String? = nil) throws -> S3Settings {
        var s = S3Settings(
            endpoint: try variable("DES_TEST_S3_ENDPOINT"), region: try variable("DES_TEST_S3_REGION"),
            bucket: try bucket ?? variable("DES_TEST_S3_BUCKET"),
            credentials: SigV4.Credentials(accessKey: try variable("DES_TEST_S3_ACCESS_KEY"), secretKey: try secret ?? variable("DES_TEST_S3_SECRET_KEY")))
        s.requestTimeoutSeconds = Double(sharedS3RequestTimeout)
        return s
    }

    /// Storage on a fresh bucket of its own. The bucket is made with the stock settings (their retries),
    /// so a test that edits retries away is not failed by a blip of the shared server before it starts.
    static func freshStorage(_ edit: (inout S3Settings) -> Void = { _ in }) async throws -> S3Storage {
        var s = try settings(bucket: "des-t-" + UUID().uuidString.prefix(8).lowercased())
        try await S3Storage(client: S3Client(settings: s)).createBucket()
        edit(&s)
        return S3Storage(client: S3Client(settings: s))
    }
}

func temporaryFile(_ bytes: [UInt8]) throws -> String {
    let path = NSTemporaryDirectory() + "des-s3-" + UUID().uuidString
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw DESKitError(.storage, "cannot write \(path)") }
    return path
}

@Suite("SigV4")
struct SigV4Tests {
    @Test("AWS's documented GET Object example signs to its documented signature")
    func awsExample() {
        let signer = SigV4(
            credentials: .init(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), region: "us-east-1")
        let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
        let headers = signer.sign(
            method: "GET", path: "/test.txt", query: [], headers: ["host": "examplebucket.s3.amazonaws.com", "range": "bytes=0-9"],
            payloadHash: SigV4.emptyPayloadHash, date: date)
        #expect(
            headers["authorization"] == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(headers["x-amz-date"] == "20130524T000000Z")
    }
}

@Suite("S3 storage, live (moto)")
struct S3StorageTests {
    // (A key with a space travels percent-encoded. moto itself refuses the signature of any request —
    // boto3's too — whose key holds '+' or non-ASCII, so those are not tried here; the encoding is
    // the one AWS documents, and the signing vector above checks it.)
    @Test("Put, whole and ranged and suffix reads, head, list, delete")
    func roundTrip() async throws {
        let s3 = try await S3Server.freshStorage()
        let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let file = try temporaryFile(bytes)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let info = try await s3.put(key: "des/2025-01-01/a b.des", fromFile: file)
        #expect(info.size == 10_000 && !info.etag.isEmpty)
        #expect(try await s3.get(key: "des/2025-01-01/a b.des") == bytes)
        #expect(try await s3.get(key: "des/2025-01-01/a b.des", offset: 100, length: 50) == Array(bytes[100..<150]))
        let (tail, total) = try await s3.getSuffix(key: "des/2025-01-01/a b.des", length: 64)
        #expect(tail == Array(bytes.suffix(64)) && total == 10_000)
        let (all, size) = try await s3.getSuffix(key: "des/2025-01-01/a b.des", length: 1 << 20)
        #expect(all == bytes && size == 10_000)
        #expect(try await s3.head(key: "des/2025-01-01/a b.des")?.size == 10_000)
        #expect(try await s3.head(key: "nope") == nil)
        _ = try await s3.put(key: "des/2025-01-02/b.des", fromFile: file)
        // (moto refuses the signature of a list whose prefix holds '/' — boto3's too — so the prefixes here have none.)
        #expect(try await s3.list(prefix: "des").map(\.key) == ["des/2025-01-01/a b.des", "des/2025-01-02/b.des"])
        try await s3.delete(key: "des/2025-01-02/b.des")
        try await s3.delete(key: "des/2025-01-02/b.des")  // gone already: no error
        #expect(try await s3.list(prefix: "des").map(\.key) == ["des/2025-01-01/a b.des"])
        // Pagination: more keys than one page holds.
        for i in 0..<25 { _ = try await s3.put(key: "page\(i)", fromFile: file) }
        let paged = S3Storage(client: s3.client, pageSize: 10)
        #expect(try await paged.list(prefix: "page").count == 25)
        await #expect(throws: DESKitError.self) { _ = try await s3.get(key: "missing") }
        let counts = s3.client.requestCounts
        #expect(counts["HEAD"] == 2 && counts["PUT"] == 27, "\(counts)")
    }

    @Test("A 40 MiB file goes up in parts, in parallel, and reads back byte for byte")
    func multipart() async throws {
        let s3 = try await S3Server.freshStorage { $0.multipartThreshold = 8 << 20; $0.partSize = 5 << 20 }
        var rng = SystemRandomNumberGenerator()
        let block = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(40 << 20)
        for i in 0..<40 { bytes += block[(i * 7919 % 4096)...] + block[..<(i * 7919 % 4096)] }
        let file = try temporaryFile(bytes)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let info = try await s3.put(key: "big.des", fromFile: file)
        #expect(info.size == 40 << 20)
        #expect(s3.client.requestCounts["PUT"] == 8)  // 8 parts of 5 MiB
        let back = try await s3.get(key: "big.des")
        #expect(back.count == bytes.count && back == bytes)
        #expect(try await s3.pendingUploads(prefix: "").isEmpty)
    }

    @Test("An upload cut short leaves no object and no pending upload")
    func interruptedMultipart() async throws {
        let s3 = try await S3Server.freshStorage { $0.multipartThreshold = 8 << 20; $0.partSize = 5 << 20; $0.maxRetries = 1 }
        let file = try temporaryFile([UInt8](repeating: 7, count: 12 << 20))
        defer { try? FileManager.default.removeItem(atPath: file) }
        // The file is shorter than the upload claims: the last part cannot be read, and the upload fails.
        await #expect(throws: (any Error).self) { _ = try await s3.multipartPutForTesting(key: "cut.des", path: file, size: 20 << 20) }
        #expect(try await s3.head(key: "cut.des") == nil)
        #expect(try await s3.pendingUploads(prefix: "").isEmpty)
    }

    @Test("A wrong secret is a clear authentication error, not retried")
    func wrongSecret() async throws {
        let s3 = S3Storage(client: S3Client(settings: try S3Server.settings(secret: "not-the-secret")))
        do {
            _ = try await s3.get(key: "anything")
            Issue.record("a wrong secret must be refused")
        } catch let error as DESKitError {
            #expect("\(error)".contains("authentication failed"), "\(error)")
            #expect(!"\(error)".contains("not-the-secret"))
        }
        #expect(s3.client.requestCounts["GET"] == 1)
    }

    @Test("A server that is down is a transient unavailable error after retries")
    func serverDown() async throws {
        var settings = try S3Server.settings()
        settings.endpoint = "http://127.0.0.1:1"
        settings.maxRetries = 2
        let s3 = S3Storage(client: S3Client(settings: settings))
        do {
            _ = try await s3.head(key: "x")
            Issue.record("expected an error")
        } catch let error as DESKitError {
            #expect(error.code == .unavailable && error.isTransient)
        }
        #expect(s3.client.requestCounts["HEAD"] == 3)
    }

    @Test("A cold read of a container with a small index: 2 GETs and no HEAD; a zero-length file costs no request")
    func coldRead() async throws {
        let s3 = try await S3Server.freshStorage()
        let path = NSTemporaryDirectory() + "des-s3-c-" + UUID().uuidString + ".des"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try DESArchiveWriter(path: path)
        for i in 0..<50 { try writer.add(name: "f\(i)", bytes: Array("body \(i)".utf8)) }
        try writer.add(name: "empty", bytes: [])
        _ = try writer.close()
        _ = try await s3.put(key: "c.des", fromFile: path)
        s3.client.resetCounts()
        let reader = StorageArchiveReader(storage: s3)
        #expect(try await reader.file(named: "f7", key: "c.des") == Array("body 7".utf8))
        #expect(s3.client.requestCounts == ["GET": 2])
        s3.client.resetCounts()
        let index = try await reader.index(key: "c.des")
        #expect(s3.client.requestCounts == ["GET": 1])
        #expect(index.entry(named: "empty")?.dataLength == 0)
        s3.client.resetCounts()
        #expect(try await reader.file(named: "empty", key: "c.des", etag: "x") != nil)
    }
}

@Suite("Container reads on S3 (moto)")
struct S3ReaderTests {
    /// A container of `files` small files (plus an empty one) uploaded under `key`.
    static func container(_ s3: S3Storage, key: String, files: Int, tag: String = "") async throws {
        let path = NSTemporaryDirectory() + "des-s3-c-" + UUID().uuidString + ".des"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try DESArchiveWriter(path: path)
        for i in 0..<files { try writer.add(name: "f\(i)", bytes: Array("body \(i)\(tag)".utf8)) }
        try writer.add(name: "empty", bytes: [])
        _ = try writer.close()
        _ = try await s3.put(key: key, fromFile: path)
        s3.client.resetCounts()
    }

    @Test("Cold: 2 GETs, no HEAD. Warm (memory cache): 1 GET. A zero-length file: no request")
    func coldAndWarm() async throws {
        let s3 = try await S3Server.freshStorage()
        try await Self.container(s3, key: "c.des", files: 50)
        let reader = StorageArchiveReader(storage: s3, cache: MemoryCacheForTests.make())
        #expect(try await reader.file(named: "f7", key: "c.des") == Array("body 7".utf8))
        #expect(s3.client.requestCounts == ["GET": 2])
        s3.client.resetCounts()
        #expect(try await reader.file(named: "f8", key: "c.des") == Array("body 8".utf8))
        #expect(s3.client.requestCounts == ["GET": 1])
        s3.client.resetCounts()
        #expect(try await reader.file(named: "empty", key: "c.des") == [])
        #expect(s3.client.requestCounts.isEmpty)
        #expect(try await reader.file(named: "missing", key: "c.des") == nil)
    }

    @Test("An object replaced under a cached index is detected (412 on If-Match) and read again, once")
    func replaced() async throws {
        let s3 = try await S3Server.freshStorage()
        try await Self.container(s3, key: "r.des", files: 5)
        let reader = StorageArchiveReader(storage: s3, cache: MemoryCacheForTests.make())
        #expect(try await reader.file(named: "f1", key: "r.des") == Array("body 1".utf8))
        try await Self.container(s3, key: "r.des", files: 5, tag: " (v2)")
        #expect(try await reader.file(named: "f1", key: "r.des") == Array("body 1 (v2)".utf8))
        // The pinned read refused (412), the suffix read of the new version, the data.
        #expect(s3.client.requestCounts == ["GET": 3])
    }

    @Test("50 neighbouring files in one batch: one ranged GET for their data")
    func batch() async throws {
        let s3 = try await S3Server.freshStorage()
        try await Self.container(s3, key: "b.des", files: 50)
        let reader = StorageArchiveReader(storage: s3, cache: MemoryCacheForTests.make())
        _ = try await reader.versionedIndex(key: "b.des")
        s3.client.resetCounts()
        let names = (0..<50).map { "f\($0)" }
        let got = try await reader.files(named: names, key: "b.des")
        #expect(got == (0..<50).map { Array("body \($0)".utf8) })
        #expect(s3.client.requestCounts == ["GET": 1])
    }
}

enum MemoryCacheForTests {
    static func make() -> any IndexCache { MemoryIndexCache(limits: .init(maxEntries: 100, ttlSeconds: nil)) }
}

@Suite("Conformance kit: S3 storage (moto)")
struct S3ConformanceTests {
    @Test("S3 storage passes the StorageBackend suite, listing past 1,000 keys by continuation token")
    func storage() async throws {
        let bucket = try await S3Server.freshStorage()
        let settings = bucket.client.settings
        let fixture = StorageBackendConformance.Fixture(
            makeStorage: { S3Storage(client: S3Client(settings: settings)) },
            leaveInterruptedPut: { storage, key in
                // A multipart upload created and never completed, as by a packer killed mid-upload.
                guard let s3 = storage as? S3Storage else { return }
                _ = try await s3.client.send(
                    .init(method: "POST", key: key, query: [("uploads", "")], headers: ["content-type": "application/octet-stream"],
                          operation: "CreateMultipartUpload"))
            })
        let report = await StorageBackendConformance.run(fixture: fixture)
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 6)
    }
}

@Suite("S3 bodies: versions and DeleteObjects")
struct S3BodyRetireTests {
    @Test("1,200 bodies are deleted in two DeleteObjects requests (1,000 and 200 keys); a version is the size and ETag; a missing key has none")
    func deleteInBatches() async throws {
        let storage = try await S3Server.freshStorage()
        let settings = storage.client.settings
        var connection = S3ConnectionConfig()
        connection.endpoint = settings.endpoint
        connection.region = settings.region
        connection.accessKey = Secret(settings.credentials.accessKey)
        connection.secretKey = Secret(settings.credentials.secretKey)
        let fetcher = S3BodyFetcher(config: S3BodiesConfig(bucket: settings.bucket, connection: connection), environment: [:], what: "test")
        defer { Task { await fetcher.close() } }
        let file = try temporaryFile(Array("hello".utf8))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let keys = (0..<1_200).map { "b/\($0)" }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<8 {
                group.addTask { for i in stride(from: lane, to: keys.count, by: 8) { _ = try await storage.put(key: keys[i], fromFile: file) } }
            }
            try await group.waitForAll()
        }
        let version = try await fetcher.version(of: BodyLocation(bucket: nil, key: "b/7"))
        #expect(version?.size == 5 && version?.tag.hasPrefix("etag ") == true, "\(String(describing: version))")
        #expect(try await fetcher.version(of: BodyLocation(bucket: nil, key: "b/none")) == nil)
        let client = try fetcher.client(bucket: settings.bucket)
        client.resetCounts()
        let failed = try await fetcher.delete(keys.map { BodyLocation(bucket: nil, key: $0) } + [BodyLocation(bucket: nil, key: "b/never")])
        #expect(failed.isEmpty, "\(failed)")
        #expect(client.requestCounts["POST"] == 2, "\(client.requestCounts)")
        #expect(try await storage.list(prefix: "b").isEmpty)
    }
}

@Suite("S3 settings from the environment")
struct S3EnvironmentTests {
    @Test("A variable set to nothing is unset: AWS_ENDPOINT_URL= falls through to DES_S3_ENDPOINT, then to the region's AWS endpoint")
    func emptyIsUnset() throws {
        var connection = S3ConnectionConfig()
        connection.accessKey = Secret("AKIAEXAMPLE")
        connection.secretKey = Secret("secret-example")
        let a = try connection.settings(
            bucket: "b", environment: ["AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": " ", "DES_S3_ENDPOINT": "http://127.0.0.1:9000"], what: "t")
        #expect(a.endpoint == "http://127.0.0.1:9000")
        let b = try connection.settings(bucket: "b", environment: ["DES_S3_ENDPOINT": "", "AWS_REGION": "eu-west-1"], what: "t")
        #expect(b.endpoint == "https://s3.eu-west-1.amazonaws.com" && b.region == "eu-west-1")
        #expect(throws: DESKitError.self) { try connection.settings(bucket: "b", environment: ["AWS_ENDPOINT_URL": ""], what: "t") }
    }

    @Test("DES_S3_REQUEST_TIMEOUT sets the request timeout a section leaves unset; the section's wins; a value out of bounds is a configuration error naming the variable")
    func requestTimeoutFromEnvironment() throws {
        var connection = S3ConnectionConfig()
        connection.accessKey = Secret("AKIAEXAMPLE")
        connection.secretKey = Secret("secret-example")
        let endpoint = ["AWS_ENDPOINT_URL": "http://127.0.0.1:9000"]
        #expect(try connection.settings(bucket: "b", environment: endpoint, what: "t").requestTimeoutSeconds == 10)
        let fromEnv = endpoint.merging(["DES_S3_REQUEST_TIMEOUT": "45"]) { $1 }
        #expect(try connection.settings(bucket: "b", environment: fromEnv, what: "t").requestTimeoutSeconds == 45)
        #expect(try connection.settings(bucket: "b", environment: endpoint.merging(["DES_S3_REQUEST_TIMEOUT": " 2.5 "]) { $1 }, what: "t").requestTimeoutSeconds == 2.5)
        // Written as the key is: a number of seconds (`2.5s` is no more accepted here than in YAML).
        for bad in ["0", "-1", "nan", "inf", "4000", "soon", "2.5s"] {
            let error = #expect(throws: DESKitError.self) {
                try connection.settings(bucket: "b", environment: endpoint.merging(["DES_S3_REQUEST_TIMEOUT": bad]) { $1 }, what: "t")
            }
            #expect(error?.code == .configuration && "\(error.map { "\($0)" } ?? "")".contains("DES_S3_REQUEST_TIMEOUT must be seconds"), "\(bad)")
        }
        connection.requestTimeoutSeconds = 3
        #expect(try connection.settings(bucket: "b", environment: fromEnv, what: "t").requestTimeoutSeconds == 3)
    }
}
