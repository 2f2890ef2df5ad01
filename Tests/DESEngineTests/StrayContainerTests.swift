import DESEngine
import DESKit
import DESStorage
import Foundation
import Synchronization
import Testing

/// Local-disk storage that, at the packer's first container upload, records one more `writing`
/// container under the packer's own lease: what a container creation leaves behind when its
/// commit lands but the answer is lost to a cut connection (the packer's retry records another).
final class StrayRecordingStorage: StorageBackend {
    let inner: LocalDiskStorage
    let metadata: any MetadataStore
    /// The packer's holder, set once the packer exists.
    let holder = Mutex<LeaseHolder?>(nil)
    /// The stray record, once made.
    let stray = Mutex<ContainerRecord?>(nil)

    init(root: String, metadata: any MetadataStore) throws {
        inner = try LocalDiskStorage(root: root)
        self.metadata = metadata
    }

    var location: String { inner.location }

    func put(key: String, fromFile path: String) async throws -> ObjectInfo {
        if stray.withLock({ $0 == nil }), let holder = holder.withLock({ $0 }) {
            // The key is {prefix}/{day}/shard_NN_cID.des: the stray goes to the same day and shard.
            let parts = key.split(separator: "/")
            let leases = try await metadata.leases().filter { $0.holder == holder }
            if parts.count >= 2, let lease = leases.first(where: { key.contains(String(format: "shard_%02d_", $0.shard)) }) ?? leases.first {
                let record = try await metadata.createContainer(
                    day: String(parts[parts.count - 2]), shard: lease.shard, lease: lease, keyPrefix: "des")
                stray.withLock { $0 = record }
            }
        }
        return try await inner.put(key: key, fromFile: path)
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

@Suite("Containers recorded but never written") struct StrayContainerTests {
    @Test(
        "A container recorded under the packer whose creation answer was lost is discarded: by --until-idle before it stops, and by a running packer's sweep",
        arguments: [true, false])
    func strayIsDiscarded(untilIdle: Bool) async throws {
        let d = try await Deployment.named(rows: 400)
        defer { d.cleanup() }
        let storage = try StrayRecordingStorage(root: d.dir + "/archive", metadata: try await d.metadata())
        // claimTimeout 2: a running packer sweeps every second.
        let packer = try await d.packer(
            shardBits: 2, maxFiles: 50, pod: "stray", batchSize: 40, storage: storage, claimTimeout: untilIdle ? 600 : 2, claimMode: .lease)
        storage.holder.withLock { $0 = packer.holder }
        let shutdown = ShutdownSignal()
        let run = Task { try await packer.run(shutdown: shutdown, untilIdle: untilIdle) }
        if !untilIdle {
            // The running packer: wait (a minute at most) until the stray is gone, then stop it.
            let metadata = try await d.metadata()
            var left = -1
            for _ in 0..<600 {
                if let stray = storage.stray.withLock({ $0 }) {
                    let state = try await metadata.containers(state: nil, shard: stray.shard, day: stray.day).first { $0.id == stray.id }?.state
                    left = state == .writing ? 1 : 0
                    if left == 0 { break }
                }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            #expect(left == 0, "the running packer left its stray container writing")
            shutdown.trigger()
        }
        _ = try await run.value
        let stray = try #require(storage.stray.withLock { $0 }, "no stray container was recorded")
        let record = try await d.metadata().containers(state: nil, shard: stray.shard, day: stray.day).first { $0.id == stray.id }
        #expect(record?.state == .discarded)
        if !untilIdle {
            // Stopped mid-run: a second packer finishes what the first gave back.
            _ = try await d.packer(shardBits: 2, maxFiles: 50, pod: "second", claimMode: .lease).run(shutdown: ShutdownSignal(), untilIdle: true)
        }
        try await expectNothingStranded(d)
    }
}
