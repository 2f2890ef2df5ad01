import DESKit
import DESNaming

/// The shards that have work for a packer or for recovery: shards where some source has named
/// rows pending or claimed (``SourceConnector/shardsWithWork()``, one query per source), and
/// shards with a `writing` container (a packer died before finishing it).
///
/// Leases, lease rows in the metadata store, heartbeats and claim statements then grow with
/// the work in hand, not with `2^shard_bits`.
public enum ShardsWithWork {
    /// The shards with work among those `assignment` owns, ascending; every owned shard when a
    /// source cannot tell.
    public static func find(
        sources: [any SourceConnector], metadata: any MetadataStore, assignment: ShardAssignment, retry: RetryPolicy = .metadata
    ) async throws -> [Int] {
        var work = Set<Int>()
        for source in sources {
            guard let shards = try await retry.run({ try await source.shardsWithWork() }) else { return assignment.ownedShards }
            work.formUnion(shards)
        }
        for container in try await retry.run({ try await metadata.containers(state: .writing, shard: nil, day: nil) }) {
            work.insert(container.shard)
        }
        return work.filter { (0..<assignment.shardCount).contains($0) && assignment.owns($0) }.sorted()
    }
}
