import DESFormat
import DESEngine
import DESKit
import DESPluginS3
import DESStorage
import Foundation

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
    let storage = RequestCountingStorage(base: s3)
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
            let (count, bytes) = (storage.total, storage.bytesRead)
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
