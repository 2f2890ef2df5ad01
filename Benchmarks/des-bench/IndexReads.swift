import DESFormat
import DESKit
import DESPluginS3
import DESStorage
import Foundation
import Synchronization

/// Storage that counts the requests and bytes its reads return.
final class ByteCountingStorage: StorageBackend, @unchecked Sendable {
    let base: any StorageBackend
    private let counts = Mutex<(requests: [String: Int], bytes: UInt64)>(([:], 0))

    init(base: any StorageBackend) { self.base = base }

    var location: String { base.location }
    func snapshot() -> (requests: [String: Int], bytes: UInt64) { counts.withLock { $0 } }
    func reset() { counts.withLock { $0 = ([:], 0) } }
    private func note(_ kind: String, _ bytes: Int) {
        counts.withLock {
            $0.requests[kind, default: 0] += 1
            $0.bytes += UInt64(bytes)
        }
    }

    func put(key: String, fromFile path: String) async throws -> ObjectInfo { try await base.put(key: key, fromFile: path) }
    func get(key: String) async throws -> [UInt8] {
        let b = try await base.get(key: key)
        note("get", b.count)
        return b
    }
    func get(key: String, offset: UInt64, length: UInt64) async throws -> [UInt8] {
        let b = try await base.get(key: key, offset: offset, length: length)
        note("get_range", b.count)
        return b
    }
    func get(key: String, offset: UInt64, length: UInt64, ifMatch: String?) async throws -> [UInt8] {
        let b = try await base.get(key: key, offset: offset, length: length, ifMatch: ifMatch)
        note("get_range", b.count)
        return b
    }
    func getSuffix(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64) {
        let r = try await base.getSuffix(key: key, length: length)
        note("get_suffix", r.bytes.count)
        return r
    }
    func getSuffixVersioned(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64, version: String?) {
        let r = try await base.getSuffixVersioned(key: key, length: length)
        note("get_suffix", r.bytes.count)
        return r
    }
    func head(key: String) async throws -> ObjectInfo? {
        note("head", 0)
        return try await base.head(key: key)
    }
    func delete(key: String) async throws { try await base.delete(key: key) }
    func list(prefix: String) async throws -> [ObjectInfo] { try await base.list(prefix: prefix) }
    func close() async { await base.close() }
    func localPath(of key: String) -> String? { nil }
}

/// `des-bench index-reads SIZES`: for each size, a container of that many 8-byte files on the S3
/// of the standard AWS variables; prints the requests and index bytes of one read cold, with the
/// root cached and with the leaf cached (two-level index), beside a cold read through the flat
/// index (the whole tail) in the same run.
func runIndexReadsBenchmark(sizes: [Int]) async throws {
    let env = ProcessInfo.processInfo.environment
    guard let endpoint = env["AWS_ENDPOINT_URL"], let access = env["AWS_ACCESS_KEY_ID"], let secret = env["AWS_SECRET_ACCESS_KEY"] else {
        throw DESKitError(.configuration, "set AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    }
    let bucket = "des-bench-index-" + UUID().uuidString.prefix(6).lowercased()
    let s3 = S3Storage(client: S3Client(settings: S3Settings(
        endpoint: endpoint, region: env["AWS_REGION"] ?? "us-east-1", bucket: bucket, credentials: .init(accessKey: access, secretKey: secret))))
    try await s3.createBucket()
    let storage = ByteCountingStorage(base: s3)
    func row(_ a: String, _ b: String, _ c: String, _ d: String) -> String {
        a.padding(toLength: 10, withPad: " ", startingAt: 0) + " " + b.padding(toLength: 26, withPad: " ", startingAt: 0) + " "
            + String(repeating: " ", count: max(0, 9 - c.count)) + c + " " + String(repeating: " ", count: max(0, 12 - d.count)) + d
    }
    print(row("entries", "read", "requests", "index bytes"))
    for size in sizes {
        let path = NSTemporaryDirectory() + "des-bench-index-\(UUID().uuidString).des"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var options = DESArchiveWriter.Options()
        options.syncOnClose = false
        let writer = try DESArchiveWriter(path: path, options: options)
        func name(_ i: Int) -> String { String(format: "DES_20261205_(%012X_%02X)", i &* 2_654_435_761 % 0xFFFF_FFFF_FFFF, i % 256) }
        for i in 0..<size { _ = try writer.add(name: name(i), bytes: [UInt8](repeating: UInt8(i % 251), count: 8)) }
        _ = try writer.close()
        let key = "c\(size).des"
        _ = try await s3.put(key: key, fromFile: path)
        func measure(_ what: String, _ body: () async throws -> Void) async throws {
            storage.reset()
            try await body()
            let (requests, bytes) = storage.snapshot()
            let count = requests.values.reduce(0, +)
            // Index bytes: everything read but the 8-byte body of the one file read.
            print(row(String(size), what, String(count), String(bytes - min(bytes, 8))))
        }
        let reader = StorageArchiveReader(storage: storage, cache: MemoryIndexCache(limits: .init(maxEntries: 16, maxBytes: 1 << 30, ttlSeconds: nil)))
        let (a, b) = (size / 3, (2 * size) / 3 + 1)
        try await measure("two-level, cold") { _ = try await reader.file(named: name(a), key: key) }
        try await measure("two-level, root cached") { _ = try await reader.file(named: name(b), key: key) }
        try await measure("two-level, leaf cached") { _ = try await reader.file(named: name(b), key: key) }
        let flat = StorageArchiveReader(storage: storage)
        try await measure("flat index, cold") {
            let index = try await flat.index(key: key)
            guard let entry = index.entry(named: name(a)) else { throw DESKitError(.notFound, "\(name(a))") }
            _ = try await storage.get(key: key, offset: entry.dataOffset, length: entry.dataLength, ifMatch: nil)
        }
        try await s3.delete(key: key)
    }
    await s3.close()
}
