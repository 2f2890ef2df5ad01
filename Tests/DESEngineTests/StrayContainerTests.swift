import DESEngine
import DESKit
import DESStorage
import Foundation
import Synchronization
import Testing

/// At the packer's first container upload, records one more `writing` container under the
/// packer's own lease: what a container creation leaves behind when its commit lands but the
/// answer is lost to a cut connection (the packer's retry records another).
final class StrayMaker: Sendable {
    let metadata: any MetadataStore
    /// The packer's holder, set once the packer exists.
    let holder = Mutex<LeaseHolder?>(nil)
    /// The stray record, once made.
    let stray = Mutex<ContainerRecord?>(nil)

    init(metadata: any MetadataStore) { self.metadata = metadata }

    /// Called before each upload of `key` ({prefix}/{day}/shard_NN_cID.des): the first makes the
    /// stray, in the same day and shard.
    func beforePut(_ key: String) async throws {
        guard stray.withLock({ $0 == nil }), let holder = holder.withLock({ $0 }) else { return }
        let parts = key.split(separator: "/")
        let leases = try await metadata.leases().filter { $0.holder == holder }
        guard parts.count >= 2, let lease = leases.first(where: { key.contains(String(format: "shard_%02d_", $0.shard)) }) ?? leases.first
        else { return }
        let record = try await metadata.createContainer(day: String(parts[parts.count - 2]), shard: lease.shard, lease: lease, keyPrefix: "des")
        stray.withLock { $0 = record }
    }
}

@Suite("Containers recorded but never written") struct StrayContainerTests {
    @Test(
        "A container recorded under the packer whose creation answer was lost is discarded: by --until-idle before it stops, and by a running packer's sweep",
        arguments: [true, false])
    func strayIsDiscarded(untilIdle: Bool) async throws {
        let d = try await Deployment.named(rows: 400)
        defer { d.cleanup() }
        let maker = StrayMaker(metadata: try await d.metadata())
        let storage = try GatedStorage(root: d.dir + "/archive", beforePut: { try await maker.beforePut($0) })
        // claimTimeout 2: a running packer sweeps every second.
        let packer = try await d.packer(
            shardBits: 2, maxFiles: 50, pod: "stray", batchSize: 40, storage: storage, claimTimeout: untilIdle ? 600 : 2, claimMode: .lease)
        maker.holder.withLock { $0 = packer.holder }
        let shutdown = ShutdownSignal()
        let run = Task { try await packer.run(shutdown: shutdown, untilIdle: untilIdle) }
        if !untilIdle {
            // The running packer: wait (a minute at most) until the stray is gone, then stop it.
            let metadata = try await d.metadata()
            var left = -1
            for _ in 0..<600 {
                if let stray = maker.stray.withLock({ $0 }) {
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
        let stray = try #require(maker.stray.withLock { $0 }, "no stray container was recorded")
        let record = try await d.metadata().containers(state: nil, shard: stray.shard, day: stray.day).first { $0.id == stray.id }
        #expect(record?.state == .discarded)
        if !untilIdle {
            // Stopped mid-run: a second packer finishes what the first gave back.
            _ = try await d.packer(shardBits: 2, maxFiles: 50, pod: "second", claimMode: .lease).run(shutdown: ShutdownSignal(), untilIdle: true)
        }
        try await expectNothingStranded(d)
    }
}
