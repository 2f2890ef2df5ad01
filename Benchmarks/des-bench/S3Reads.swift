import DESFormat
import DESKit
import DESPluginS3
import DESStorage
import Foundation

/// `des-bench s3-reads FILES GETS`: a container of FILES small files on the S3 of the standard AWS
/// variables; prints the requests of a cold and of a warm read, and warm gets/s through the memory cache.
func runS3ReadsBenchmark(files: Int, gets: Int) async throws {
    let env = ProcessInfo.processInfo.environment
    guard let endpoint = env["AWS_ENDPOINT_URL"], let access = env["AWS_ACCESS_KEY_ID"], let secret = env["AWS_SECRET_ACCESS_KEY"] else {
        throw DESKitError(.configuration, "set AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    }
    let bucket = "des-bench-reads-" + UUID().uuidString.prefix(6).lowercased()
    let s3 = S3Storage(client: S3Client(settings: S3Settings(
        endpoint: endpoint, region: env["AWS_REGION"] ?? "us-east-1", bucket: bucket,
        credentials: .init(accessKey: access, secretKey: secret))))
    try await s3.createBucket()
    let path = NSTemporaryDirectory() + "des-bench-\(UUID().uuidString).des"
    defer { try? FileManager.default.removeItem(atPath: path) }
    let writer = try DESArchiveWriter(path: path)
    for i in 0..<files { try writer.add(name: "f\(i)", bytes: [UInt8](repeating: UInt8(i % 251), count: 4096)) }
    _ = try writer.close()
    _ = try await s3.put(key: "c.des", fromFile: path)
    let reader = StorageArchiveReader(storage: s3, cache: MemoryIndexCache())
    s3.client.resetCounts()
    _ = try await reader.file(named: "f1", key: "c.des")
    let cold = s3.client.requestCounts
    s3.client.resetCounts()
    _ = try await reader.file(named: "f2", key: "c.des")
    let warm = s3.client.requestCounts
    print("cold_read_requests \(cold["GET", default: 0])")
    print("cold_read_heads \(cold["HEAD", default: 0])")
    print("warm_read_requests \(warm.values.reduce(0, +))")
    let start = now()
    for i in 0..<gets { _ = try await reader.file(named: "f\((i * 7919) % files)", key: "c.des") }
    print("warm_gets_per_sec \(Int(Double(gets) / (now() - start)))")
    await s3.close()
}
