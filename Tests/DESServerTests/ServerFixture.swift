import DESTestSupport
@testable import DESPluginS3
import DESEngine
import DESFormat
import DESKit
import DESNaming
import DESPluginSQLite
import DESServer
import DESStorage
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

/// Files packed into containers recorded `uploaded`, as the packer leaves them (written
/// here directly, so each test chooses names, bodies and META).
struct Shelf {
    struct File {
        var bytes: [UInt8]
        var contentType: String?
        var container: String
        var shard: Int
        /// Where the body starts in its container.
        var dataOffset: UInt64 = 0
    }
    let dir: String
    let metadata: any MetadataStore
    var storage: any StorageBackend
    let shardBits: Int
    var files: [String: File] = [:]

    /// A temporary directory with a SQLite metadata store and local storage (or `storage`).
    static func make(storage: (any StorageBackend)? = nil, metadata: (any MetadataStore)? = nil, shardBits: Int = 2) async throws -> Shelf {
        let dir = NSTemporaryDirectory() + "des-server-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let meta: any MetadataStore
        if let metadata {
            meta = metadata
        } else {
            let m = try await SQLiteMetadataStore.open(path: dir + "/metadata.sqlite")
            _ = try await m.migrate()
            meta = m
        }
        return Shelf(dir: dir, metadata: meta, storage: try storage ?? LocalDiskStorage(root: dir + "/archive"), shardBits: shardBits)
    }

    /// S3 storage on the test server, in a new bucket (through `port` instead of the server's when given).
    static func s3Storage(port: Int? = nil, maxRetries: Int = 4) async throws -> S3Storage {
        var endpoint = try testServerSetting("DES_TEST_S3_ENDPOINT")
        if let port, let url = URLComponents(string: endpoint), let host = url.host { endpoint = "http://\(host):\(port)" }
        var settings = S3Settings(
            endpoint: endpoint, region: try testServerSetting("DES_TEST_S3_REGION"), bucket: "des-srv-\(UUID().uuidString.prefix(8).lowercased())",
            credentials: .init(accessKey: try testServerSetting("DES_TEST_S3_ACCESS_KEY"), secretKey: try testServerSetting("DES_TEST_S3_SECRET_KEY")))
        settings.maxRetries = maxRetries
        settings.requestTimeoutSeconds = Double(sharedS3RequestTimeout)
        let storage = S3Storage(client: S3Client(settings: settings))
        try await storage.createBucket()
        return storage
    }

    /// Packs `count` new names (bodies of `size` bytes, or random sizes up to 4 KiB) into
    /// containers of their (day, shard), recorded uploaded; `contentType` goes to META.
    mutating func pack(
        _ count: Int, prefix: String = "SRV", size: Int? = nil, contentType: String? = "image/jpeg", filesPerContainer: Int = 1000,
        checksums: Bool = true, recordNames: Bool = true, interleave: Bool = false
    ) async throws -> [String] {
        let generator = try SnowflakeGenerator(configuration: .init(prefix: prefix, node: 200))
        var rng = SystemRandomNumberGenerator()
        var groups: [String: [(String, [UInt8])]] = [:]
        var names: [String] = []
        for name in generator.next(count: count) {
            let text = name.description
            let n = size ?? Int.random(in: 1...4096, using: &rng)
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let shard = Int(consistentHash(text, bits: shardBits))
            groups[name.isoDay + "/" + String(shard), default: []].append((text, bytes))
            names.append(text)
        }
        let holder = LeaseHolder(pod: "shelf", instance: UUID().uuidString)
        for (group, members) in groups {
            let parts = group.split(separator: "/")
            let (day, shard) = (String(parts[0]), Int(parts[1]) ?? 0)
            guard let lease = try await metadata.acquireLease(shard: shard, holder: holder, ttlSeconds: 60) else {
                throw DESKitError(.fenced, "shard \(shard) is leased")
            }
            // Runs of consecutive names, one a container; or, interleaved, every k-th name in the k-th
            // container (so that their ranges overlap).
            let groupCount = (members.count + filesPerContainer - 1) / filesPerContainer
            let chunks: [[(String, [UInt8])]] =
                interleave
                ? (0..<groupCount).map { k in stride(from: k, to: members.count, by: groupCount).map { members[$0] } }
                : stride(from: 0, to: members.count, by: filesPerContainer).map { Array(members[$0..<min($0 + filesPerContainer, members.count)]) }
            for chunk in chunks {
                let record = try await metadata.createContainer(day: day, shard: shard, lease: lease, keyPrefix: "des")
                let path = dir + "/c\(record.id).des"
                var options = DESArchiveWriter.Options()
                options.checksums = checksums  // false: as the original DES wrote them, no sha256 in META
                let writer = try DESArchiveWriter(path: path, options: options)
                var bytes: UInt64 = 0
                for (name, body) in chunk {
                    var meta: DESMetadata = [:]
                    if let contentType { meta = ["content_type": .string(contentType)] }
                    let entry = try writer.add(name: name, bytes: body, metadata: meta)
                    bytes += UInt64(body.count)
                    files[name] = File(bytes: body, contentType: contentType, container: record.key, shard: shard, dataOffset: entry.dataOffset)
                }
                _ = try writer.close()
                let info = try await storage.put(key: record.key, fromFile: path)
                _ = try await metadata.markUploaded(
                    containerID: record.id, fileCount: chunk.count, bytes: bytes, size: info.size, etag: info.etag, lease: lease)
                if recordNames {
                    await NameRanges.record(record, names: chunk.map(\.0), metadata: metadata, retry: RetryPolicy(), logger: Logger(label: "shelf"))
                }
                try? FileManager.default.removeItem(atPath: path)
            }
            try await metadata.releaseLease(lease)
        }
        return names
    }

    /// Flips one byte of `name`'s body (at `at` within it) in its container on local storage,
    /// in place: the index and META stay as they were, so only a check of the bytes can tell.
    func flipByte(of name: String, at: Int = 0) throws {
        let file = try #require(files[name])
        let handle = try #require(FileHandle(forUpdatingAtPath: dir + "/archive/" + file.container))
        defer { try? handle.close() }
        try handle.seek(toOffset: file.dataOffset + UInt64(at))
        let old = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: file.dataOffset + UInt64(at))
        try handle.write(contentsOf: [old ^ 0x5A])
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }
}

/// A `DESHTTPServer` running in this process on a free loopback port, in its own service group.
final class RunningServer: Sendable {
    let port: Int
    let metrics: ServerMetrics
    let readiness: Readiness
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    static func start(
        _ shelf: Shelf, cache: (any IndexCache)? = MemoryIndexCache(limits: .init(maxEntries: 100)), sources: [any SourceConnector] = [],
        edit: (inout ServerSettings) -> Void = { _ in }
    ) async throws -> RunningServer {
        var settings = try ServerSettings(config: DESConfig(), environment: [:])
        settings.port = 0
        settings.drainSeconds = 0
        settings.readyTimeoutSeconds = 2
        edit(&settings)
        let readiness = Readiness(
            checker: HealthChecker(
                metadata: shelf.metadata, storage: shelf.storage, probeKey: "des/.des-health", sources: sources, timeoutSeconds: settings.readyTimeoutSeconds))
        var logger = Logger(label: "des.test.server")
        logger.logLevel = .critical
        let server = DESHTTPServer(
            parts: .init(metadata: shelf.metadata, storage: shelf.storage, cache: cache, shardBits: shelf.shardBits, readiness: readiness),
            settings: settings, registry: PrometheusCollectorRegistry(), logger: logger)
        let bound = AsyncStream<Int>.makeStream()
        let app = try server.application { port in bound.continuation.yield(port) }
        let group = ServiceGroup(
            configuration: .init(
                services: [app, DrainGate(readiness: readiness, seconds: settings.drainSeconds), server.tombstonePoller], logger: logger))
        let task = Task { try await group.run() }
        var it = bound.stream.makeAsyncIterator()
        guard let port = await it.next(), port > 0 else { throw DESKitError(.unavailable, "the server did not start") }
        return RunningServer(port: port, metrics: server.metrics, readiness: readiness, group: group, task: task)
    }

    private init(port: Int, metrics: ServerMetrics, readiness: Readiness, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.metrics = metrics
        self.readiness = readiness
        self.group = group
        self.task = task
    }

    var base: String { "http://127.0.0.1:\(port)" }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

/// `GET url` again every 50 ms until it answers `status`, for at most `seconds`: the last answer.
/// A request that fails (a connection refused or closed) is tried again while time is left; when
/// no answer came at all, the last failure is thrown.
func poll(until status: Int, _ client: Client, _ url: String, within seconds: Double) async throws -> HTTPResponse {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        do {
            let r = try await client.send("GET", url)
            if r.status == status || Date() > deadline { return r }
        } catch {
            if Date() > deadline { throw error }
        }
        try await Task.sleep(for: .milliseconds(50))
    }
}

/// Real HTTP over libcurl (the S3 plugin's transport).
struct Client: Sendable {
    let transport = CurlTransport(concurrency: 16, timeouts: .init(stallSeconds: 10))

    func send(_ method: String, _ url: String, headers: [String: String] = [:], body: String? = nil) async throws -> HTTPResponse {
        do {
            return try await transport.send(
                HTTPRequest(method: method, url: url, headers: headers, body: body.map { .bytes(Array($0.utf8)) } ?? .none))
        } catch {
            throw TestFailure("\(method) \(url): \(error)")  // which request, when a run fails
        }
    }

    func json(_ response: HTTPResponse) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(response.body))
    }

    /// The error code of a JSON error body.
    func errorCode(_ response: HTTPResponse) -> String? {
        ((try? json(response)) as? [String: Any]).flatMap { ($0["error"] as? [String: Any])?["code"] as? String }
    }

    func close() async { await transport.close() }
}

/// The file name in a URL path (DES names carry parentheses; sent as they are, or encoded).
func path(_ name: String) -> String {
    name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "()"))) ?? name
}

/// Runs `body` against a server over `shelf`, stopping both server and client after, whatever happens.
func withServer<T>(
    _ shelf: Shelf, cache: (any IndexCache)? = MemoryIndexCache(limits: .init(maxEntries: 100)), sources: [any SourceConnector] = [],
    edit: (inout ServerSettings) -> Void = { _ in }, _ body: (RunningServer, Client) async throws -> T
) async throws -> T {
    let server = try await RunningServer.start(shelf, cache: cache, sources: sources, edit: edit)
    let client = Client()
    do {
        let result = try await body(server, client)
        await client.close()
        await server.stop()
        return result
    } catch {
        await client.close()
        await server.stop()
        throw error
    }
}

/// A failed expectation inside a task.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
