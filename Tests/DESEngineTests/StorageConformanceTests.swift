import DESKit
import DESKitTesting
import DESStorage
import Foundation
import Testing

/// Local disk and the in-process caches against the storage and cache suites of the kit (S3 and
/// Redis run the same suites in their own test targets).
@Suite("Conformance kit: local disk storage and the memory index cache") struct StorageConformanceTests {
    /// What `LocalDiskStorage.put` leaves when killed before its rename: a temporary beside the
    /// final name, carrying the writer's identity (here the older `PID-N` form of a dead writer).
    static func localFixture(root: String) -> StorageBackendConformance.Fixture {
        StorageBackendConformance.Fixture(
            makeStorage: { try LocalDiskStorage(root: root) },
            leaveInterruptedPut: { storage, key in
                guard let local = storage as? LocalDiskStorage else { return }
                let path = try local.path(for: key) + ".tmp-4194302-1"
                try FileManager.default.createDirectory(
                    atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                guard FileManager.default.createFile(atPath: path, contents: Data(repeating: 9, count: 100)) else {
                    throw DESKitError(.storage, "cannot write \(path)")
                }
            })
    }

    @Test("Local disk passes the StorageBackend suite")
    func localDisk() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let report = await StorageBackendConformance.run(fixture: Self.localFixture(root: d.dir + "/archive"))
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 6)
    }

    @Test("The memory index cache passes the IndexCache suite")
    func memoryCache() async throws {
        let report = await IndexCacheConformance.run { MemoryIndexCache(limits: .init(maxEntries: 100, ttlSeconds: nil)) }
        #expect(report.isOK, "\(report)")
        #expect(report.passed.count == 6)
    }

    /// Lists at most one page, as a backend that forgets S3's continuation token would.
    struct OnePageStorage: StorageBackend {
        let base: LocalDiskStorage
        var location: String { base.location }
        func put(key: String, fromFile path: String) async throws -> ObjectInfo { try await base.put(key: key, fromFile: path) }
        func get(key: String) async throws -> [UInt8] { try await base.get(key: key) }
        func get(key: String, offset: UInt64, length: UInt64) async throws -> [UInt8] { try await base.get(key: key, offset: offset, length: length) }
        func getSuffix(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64) { try await base.getSuffix(key: key, length: length) }
        func head(key: String) async throws -> ObjectInfo? { try await base.head(key: key) }
        func delete(key: String) async throws { try await base.delete(key: key) }
        func list(prefix: String) async throws -> [ObjectInfo] { Array(try await base.list(prefix: prefix).prefix(1_000)) }
        func removeStaleTemporaries(prefix: String, olderThanSeconds: Double) async throws -> Int {
            try await base.removeStaleTemporaries(prefix: prefix, olderThanSeconds: olderThanSeconds)
        }
    }

    @Test("A backend that lists one page of 1,000 keys fails the listing check, and only that one")
    func onePageFails() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let root = d.dir + "/archive"
        let local = Self.localFixture(root: root)
        let fixture = StorageBackendConformance.Fixture(
            makeStorage: { OnePageStorage(base: try LocalDiskStorage(root: root)) },
            leaveInterruptedPut: { storage, key in
                guard let paged = storage as? OnePageStorage else { return }
                try await local.leaveInterruptedPut?(paged.base, key)
            })
        let report = await StorageBackendConformance.run(fixture: fixture)
        #expect(report.failures.map(\.check) == [report.failures.first?.check ?? "none"] && report.failures.first?.check.hasPrefix("list:") == true, "\(report)")
    }
}
