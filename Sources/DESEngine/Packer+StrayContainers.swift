import DESKit

/// Containers recorded under this instance that it is not writing.
///
/// A container's record is created in a transaction that the packer retries when the
/// connection fails. When a connection is cut after the commit but before the answer arrives,
/// the retry records a second container and the first is left `writing`, known to no one.
/// A failed discard of an abandoned container leaves such a record as well. Nothing would
/// finish or discard it while this packer holds its shard: the grant's recovery has already
/// run, and a shard with a `writing` container counts as having work, so its lease is never
/// given back. `des check` would then report a container writing past the lease TTL.
///
/// The periodic sweep discards the ones that have no object in storage (a container this
/// instance is not writing can get none). One with an object is left to the shard's recovery,
/// which validates it: `--until-idle` runs that recovery before it stops, and a later grant of
/// the shard does otherwise.
extension Packer {
    /// The `writing` containers on shards this instance holds, recorded under this instance,
    /// that are neither open nor being finalized here.
    func strayContainers() async throws -> [ContainerRecord] {
        let held = Set(book.held.keys)
        guard !held.isEmpty else { return [] }
        let known = Set(machine.open.values.map(\.record.id)).union(machine.finalizing.map(\.record.id))
        let mine = holder.description
        return try await retry.run { try await metadata.containers(state: .writing, shard: nil, day: nil) }
            .filter { held.contains($0.shard) && $0.holder == mine && !known.contains($0.id) }
    }

    /// Discards the stray containers (``strayContainers()``) that have no object in storage;
    /// how many.
    @discardableResult
    func discardStrayContainers() async throws -> Int {
        var discarded = 0
        for stray in try await strayContainers() {
            guard try await retry.run({ try await context.storage.head(key: stray.key) }) == nil else { continue }
            if try await retry.run({ try await metadata.discardContainer(id: stray.id) }) {
                discarded += 1
                logger.warning(
                    "discarded a container recorded under this packer that it was not writing (a creation whose answer was lost)",
                    metadata: ["key": "\(stray.key)", "shard": "\(stray.shard)"])
            }
        }
        if discarded > 0 { machine.noteActivity() }
        return discarded
    }
}
