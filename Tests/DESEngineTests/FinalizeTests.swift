import DESEngine
import DESKit
import DESStorage
import Foundation
import Synchronization
import Testing

/// Local-disk storage whose container uploads can be held back or refused, to watch the
/// packer's background finalization from outside.
final class GatedStorage: StorageBackend {
    struct State {
        var completedPuts = 0
        var heldKey: String?
        /// Whether the held upload was let go because others completed (not by the deadline).
        var releasedByOthers = false
        var refusedKeys: [String] = []
    }

    let inner: LocalDiskStorage
    let holdFirstUntilOthers: Int
    let refuseUploadNumber: Int?
    let beforePut: (@Sendable (_ key: String) async throws -> Void)?
    let state = Mutex(State())
    private let uploads = Atomic<Int>(0)

    /// `holdFirstUntilOthers`: the first container upload waits until that many others have
    /// completed (at most a minute). `refuseUploadNumber`: that upload (1-based) fails, not
    /// transiently. `beforePut`: runs before every upload, with its key.
    init(
        root: String, holdFirstUntilOthers: Int = 0, refuseUploadNumber: Int? = nil,
        beforePut: (@Sendable (_ key: String) async throws -> Void)? = nil
    ) throws {
        inner = try LocalDiskStorage(root: root)
        self.holdFirstUntilOthers = holdFirstUntilOthers
        self.refuseUploadNumber = refuseUploadNumber
        self.beforePut = beforePut
    }

    var location: String { inner.location }

    func put(key: String, fromFile path: String) async throws -> ObjectInfo {
        try await beforePut?(key)
        let number = uploads.wrappingAdd(1, ordering: .relaxed).newValue
        if number == refuseUploadNumber {
            state.withLock { $0.refusedKeys.append(key) }
            throw DESKitError(.invalidData, "upload \(number) of '\(key)' refused by the test")
        }
        if number == 1 && holdFirstUntilOthers > 0 {
            state.withLock { $0.heldKey = key }
            for _ in 0..<6000 {
                if state.withLock({ $0.completedPuts >= holdFirstUntilOthers }) {
                    state.withLock { $0.releasedByOthers = true }
                    break
                }
                try await Task.sleep(nanoseconds: 10_000_000)
            }
        }
        let info = try await inner.put(key: key, fromFile: path)
        state.withLock { $0.completedPuts += 1 }
        return info
    }

    func get(key: String) async throws -> [UInt8] { try await inner.get(key: key) }
    func get(key: String, offset: UInt64, length: UInt64) async throws -> [UInt8] {
        try await inner.get(key: key, offset: offset, length: length)
    }
    func getSuffix(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64) {
        try await inner.getSuffix(key: key, length: length)
    }
    func head(key: String) async throws -> ObjectInfo? { try await inner.head(key: key) }
    func delete(key: String) async throws { try await inner.delete(key: key) }
    func list(prefix: String) async throws -> [ObjectInfo] { try await inner.list(prefix: prefix) }
    func close() async { await inner.close() }
}

extension Deployment {
    /// A deployment with `rows` named rows of 64 bytes over four shards.
    static func named(rows: Int) async throws -> Deployment {
        let d = try Deployment()
        try await d.addRows(rows, size: 64)
        _ = try await d.mark(shardBits: 2)
        return d
    }
}

@Suite("Finalizing in the background") struct FinalizeTests {
    @Test("A container upload that hangs does not stop the packer: other containers are uploaded meanwhile, and all rows end packed once")
    func slowUploadDoesNotStall() async throws {
        let d = try await Deployment.named(rows: 1200)
        defer { d.cleanup() }
        let storage = try GatedStorage(root: d.dir + "/archive", holdFirstUntilOthers: 3)
        let packer = try await d.packer(shardBits: 2, maxFiles: 50, pod: "gated", batchSize: 40, storage: storage)
        let totals = try await packer.run(shutdown: ShutdownSignal(), untilIdle: true)
        let s = storage.state.withLock { $0 }
        #expect(s.heldKey != nil)
        // Had the packer waited on the held upload, no other could have completed: it would have
        // been let go only at its one-minute deadline.
        #expect(s.releasedByOthers, "the packer stood still while one upload hung")
        #expect(totals.filesPacked == 1200)
        try await expectNothingStranded(d)
    }

    @Test("An upload that fails in the background stops the run with that error; its rows go back to pending and a second run packs them once")
    func failedUploadGivesRowsBack() async throws {
        let d = try await Deployment.named(rows: 1000)
        defer { d.cleanup() }
        let storage = try GatedStorage(root: d.dir + "/archive", refuseUploadNumber: 3)
        let packer = try await d.packer(shardBits: 2, maxFiles: 40, pod: "gated", batchSize: 30, storage: storage)
        await #expect(throws: DESKitError.self) {
            _ = try await packer.run(shutdown: ShutdownSignal(), untilIdle: true)
        }
        let refused = try #require(storage.state.withLock { $0.refusedKeys.first })
        #expect(try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_CLAIMED'").first?[0].int == 0)
        let refusedRecord = try await d.metadata().containers(state: nil, shard: nil, day: nil).first { $0.key == refused }
        #expect(refusedRecord?.state == .discarded)
        #expect(try await d.sql("SELECT COUNT(*) FROM files WHERE des_container = '\(refused)'").first?[0].int == 0)
        let second = try await d.packer(shardBits: 2, maxFiles: 40, pod: "second", batchSize: 30)
        _ = try await second.run(shutdown: ShutdownSignal(), untilIdle: true)
        try await expectNothingStranded(d)
    }
}
