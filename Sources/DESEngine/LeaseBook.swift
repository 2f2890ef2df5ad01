import DESKit
import Logging
import Synchronization

/// The shard leases a packer holds, shared between its loop and its heartbeat.
final class LeaseBook: Sendable {
    private struct State {
        var held: [Int: ShardLease] = [:]
        var lost: Set<Int> = []
    }
    private let state = Mutex(State())

    var held: [Int: ShardLease] { state.withLock { $0.held } }
    func lease(_ shard: Int) -> ShardLease? { state.withLock { $0.held[shard] } }
    func add(_ lease: ShardLease) { state.withLock { $0.held[lease.shard] = lease } }

    /// Replaces a lease after renewal (only if it is still the same grant).
    func renewed(_ lease: ShardLease) {
        state.withLock { s in
            if s.held[lease.shard]?.token == lease.token { s.held[lease.shard] = lease }
        }
    }

    /// Marks a lease lost: the loop drops its work on that shard.
    func lose(_ shard: Int) {
        state.withLock { s in
            s.held[shard] = nil
            s.lost.insert(shard)
        }
    }

    /// The shards lost since the last call.
    func takeLost() -> Set<Int> {
        state.withLock { s in
            defer { s.lost = [] }
            return s.lost
        }
    }

    func removeAll() -> [ShardLease] {
        state.withLock { s in
            defer { s.held = [:] }
            return Array(s.held.values)
        }
    }
}

/// Renews every held lease every `interval` seconds; a lease that cannot be renewed is lost.
func runHeartbeat(
    book: LeaseBook, metadata: any MetadataStore, ttl: Double, interval: Double, logger: Logger, metrics: PackerMetrics
) async {
    while !Task.isCancelled {
        try? await Task.sleep(nanoseconds: nanoseconds(max(0.05, interval)))
        if Task.isCancelled { return }
        for (shard, lease) in book.held {
            do {
                if let renewed = try await metadata.renewLease(lease, ttlSeconds: ttl) {
                    book.renewed(renewed)
                } else {
                    book.lose(shard)
                    metrics.leasesLost.increment()
                    logger.warning("lease lost", metadata: ["shard": "\(shard)", "token": "\(lease.token)"])
                }
            } catch {
                logger.warning("lease renewal failed", metadata: ["shard": "\(shard)", "error": "\(error)"])
            }
        }
    }
}
