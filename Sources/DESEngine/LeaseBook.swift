import DESKit
import Logging
import Metrics
import Synchronization

/// The shard leases a packer holds, shared between its loop and its heartbeat.
final class LeaseBook: Sendable {
    private struct State {
        var held: [Int: ShardLease] = [:]
        var lost: Set<Int> = []
    }
    private let state = Mutex(State())
    /// Set to the number of leases held after every change (the packer's `des_packer_leases_held`).
    private let gauge: Gauge?

    /// An empty book; `gauge`, when given, follows the number of leases held.
    init(gauge: Gauge? = nil) { self.gauge = gauge }

    var held: [Int: ShardLease] { state.withLock { $0.held } }
    func lease(_ shard: Int) -> ShardLease? { state.withLock { $0.held[shard] } }
    func add(_ lease: ShardLease) { changing { $0.held[lease.shard] = lease } }

    /// Runs `change` on the state and records the count held after it.
    private func changing<T>(_ change: (inout State) -> T) -> T {
        let (result, count) = state.withLock { s in (change(&s), s.held.count) }
        gauge?.record(count)
        return result
    }

    /// Replaces a lease after renewal (only if it is still the same grant).
    func renewed(_ lease: ShardLease) {
        state.withLock { s in
            if s.held[lease.shard]?.token == lease.token { s.held[lease.shard] = lease }
        }
    }

    /// Marks the lease with `token` on `shard` lost (nil: whatever is held): the loop drops its work
    /// on that shard. A lease granted since (another token) is left alone.
    func lose(_ shard: Int, token: Int64? = nil) {
        changing { s in
            guard let held = s.held[shard], token == nil || held.token == token else { return }
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

    /// Drops the lease with `token` on `shard` (given back, not lost); false when another is held.
    func remove(_ shard: Int, token: Int64) -> Bool {
        changing { s in
            guard s.held[shard]?.token == token else { return false }
            s.held[shard] = nil
            return true
        }
    }

    func removeAll() -> [ShardLease] {
        changing { s in
            defer { s.held = [:] }
            return Array(s.held.values)
        }
    }
}

/// Renews every held lease every `interval` seconds; a lease that cannot be renewed is lost, and so is
/// one whose renewals have kept failing (the store unreachable) for longer than its TTL by this
/// process's clock — it has expired in the store by then, whatever the store says later.
func runHeartbeat(
    book: LeaseBook, metadata: any MetadataStore, ttl: Double, interval: Double, logger: Logger, metrics: PackerMetrics?
) async {
    var lastRenewed: [Int: (token: Int64, at: Double)] = [:]
    while !Task.isCancelled {
        try? await Task.sleep(nanoseconds: nanoseconds(max(0.05, interval)))
        if Task.isCancelled { return }
        for (shard, lease) in book.held {
            let started = monotonicSeconds()
            if lastRenewed[shard]?.token != lease.token { lastRenewed[shard] = (lease.token, started) }
            do {
                if let renewed = try await metadata.renewLease(lease, ttlSeconds: ttl) {
                    book.renewed(renewed)
                    lastRenewed[shard] = (lease.token, started)
                } else {
                    book.lose(shard, token: lease.token)
                    metrics?.leasesLost.increment()
                    logger.warning("lease lost", metadata: ["shard": "\(shard)", "token": "\(lease.token)"])
                }
            } catch {
                logger.warning("lease renewal failed", metadata: ["shard": "\(shard)", "error": "\(error)"])
                if let last = lastRenewed[shard], monotonicSeconds() - last.at > ttl {
                    book.lose(shard, token: lease.token)
                    metrics?.leasesLost.increment()
                    logger.warning("lease given up: not renewed within its TTL", metadata: ["shard": "\(shard)", "token": "\(lease.token)"])
                }
            }
        }
    }
}
