import DESKit
import DESNaming
import Foundation
import Logging
import Synchronization

/// Splits the parts of scanners (a filesystem source's roots) between `des scan` processes, as
/// packers split shards: each part is scanned only by the holder of its lease in the metadata
/// store, and each process holds at most its fair share of the parts.
///
/// Every process also holds a membership lease per source, renewed each pass, so the others
/// know how many scan that source: with `n` members each keeps at most `ceil(parts / n)` of its
/// parts, gives back what is over, and takes free parts (or expired ones, or those of a dead
/// instance of its own pod) up to it.
/// A part's lease is renewed while it is scanned. A scanner paused past its lease's TTL may write
/// once more beside the next holder: the catalog's unique index (one row per path and version)
/// and its status-guarded updates make that pass fail or change nothing, never duplicate a row.
public final class ScanCoordinator: Sendable {
    let scanners: [any SourceScanner]
    let metadata: any MetadataStore
    let holder: LeaseHolder
    let ttlSeconds: Double
    let logger: Logger
    let held = Mutex<[Int: ShardLease]>([:])
    /// This process's membership leases, one per source.
    let memberships = Mutex<[ShardLease]>([])
    /// Every (scanner, part) by its lease slot.
    let slots: [(slot: Int, scanner: Int, part: Int)]

    /// A coordinator of `scanners` through `metadata`'s leases, as `holder`, with leases of `ttlSeconds`.
    public init(scanners: [any SourceScanner], metadata: any MetadataStore, holder: LeaseHolder, ttlSeconds: Double, logger: Logger) {
        self.scanners = scanners
        self.metadata = metadata
        self.holder = holder
        self.ttlSeconds = ttlSeconds
        self.logger = logger
        self.slots = scanners.enumerated().flatMap { s, scanner in
            scanner.parts.indices.map { (Self.slot(source: scanner.sourceName, part: scanner.parts[$0]), s, $0) }
        }
    }

    /// The lease slot of a part (negative, apart from shards, the relay's slots and members').
    public static func slot(source: String, part: String) -> Int {
        -(2 << 20) - Int(consistentHash("scan:\(source)/\(part)", bits: 20))
    }

    /// The membership slot of a pod scanning a source.
    public static func memberSlot(source: String, pod: String) -> Int {
        -(3 << 20) - Int(consistentHash("scan-member:\(source)/\(pod)", bits: 20))
    }

    static func isMember(_ slot: Int) -> Bool { slot <= -(3 << 20) && slot > -(4 << 20) }

    /// One pass: membership renewed, parts balanced (per source: processes that scan other
    /// sources do not count), and each part held scanned once (its lease renewed before). The
    /// totals of the parts scanned, and their names. A part whose scan fails does not stop the
    /// others: the first failure is thrown once every held part was scanned.
    public func pass() async throws -> (ScanTotals, [String]) {
        var leases = try await metadata.leases()
        if try await takeOverDeadPredecessors(leases) { leases = try await metadata.leases() }
        try await renewMemberships()
        // (Expiry by this machine's clock: a lease seen live a little too long only delays a take-over.)
        let now = Date().timeIntervalSince1970
        let live = leases.filter { $0.expiresAt > now }
        let all = slots
        // Renew what is held.
        var mine = held.withLock { $0 }
        for (slot, lease) in mine.sorted(by: { $0.key < $1.key }) {
            if let renewed = try await metadata.renewLease(lease, ttlSeconds: ttlSeconds) {
                mine[slot] = renewed
            } else {
                mine[slot] = nil
                logger.notice("lost a scan lease", metadata: ["slot": "\(slot)"])
            }
        }
        let taken = Dictionary(live.map { ($0.shard, $0) }, uniquingKeysWith: { a, _ in a })
        for (s, scanner) in scanners.enumerated() {
            // The other processes scanning this source: their membership slot for it is live.
            let others = Set(
                live.filter {
                    Self.isMember($0.shard) && $0.holder.pod != holder.pod
                        && $0.shard == Self.memberSlot(source: scanner.sourceName, pod: $0.holder.pod)
                }.map(\.holder.pod))
            let ours = all.filter { $0.scanner == s }
            let fair = (ours.count + others.count) / (others.count + 1)
            // Give back what is over the fair share (the last taken first), then take free parts up to it.
            var kept = ours.filter { mine[$0.slot] != nil }.map(\.slot).sorted()
            while kept.count > fair, let slot = kept.popLast(), let lease = mine[slot] {
                try await metadata.releaseLease(lease)
                mine[slot] = nil
            }
            for entry in ours where kept.count < fair && mine[entry.slot] == nil {
                if let other = taken[entry.slot], other.holder != holder { continue }
                if let lease = try await metadata.acquireLease(shard: entry.slot, holder: holder, ttlSeconds: ttlSeconds) {
                    mine[entry.slot] = lease
                    kept.append(entry.slot)
                }
            }
        }
        held.withLock { $0 = mine }
        var totals = ScanTotals()
        var names: [String] = []
        var failure: (any Error)?
        for entry in all where mine[entry.slot] != nil {
            guard let lease = held.withLock({ $0[entry.slot] }),
                let renewed = try await metadata.renewLease(lease, ttlSeconds: ttlSeconds)
            else {
                held.withLock { $0[entry.slot] = nil }
                continue
            }
            held.withLock { $0[entry.slot] = renewed }
            let scanner = scanners[entry.scanner]
            do {
                let scanned = try await scanner.scan(part: entry.part)
                await closeLetters(ofRows: scanned.retaken, source: scanner.sourceName)
                totals = totals.adding(scanned)
                names.append("\(scanner.sourceName):\(scanner.parts[entry.part])")
            } catch {
                logger.error("scan failed", metadata: ["part": "\(scanner.sourceName):\(scanner.parts[entry.part])", "error": "\(error)"])
                if failure == nil { failure = error }
            }
        }
        if let failure { throw failure }
        return (totals, names)
    }

    /// Closes the open dead letters of `rows` of `source`: rows a scan took out of failure (their
    /// file changed, or is gone), so the letters no longer describe them (a row that fails again
    /// gets a new one). The rows were written first: a crash in between leaves a stale letter,
    /// which `des dlq retry` closes, never a failed row without its letter. A failure here is
    /// logged, not thrown: the scan itself is done.
    func closeLetters(ofRows rows: [String], source: String) async {
        guard !rows.isEmpty else { return }
        var closed = 0
        do {
            for start in stride(from: 0, to: rows.count, by: 500) {
                let chunk = Array(rows[start..<min(rows.count, start + 500)])
                let letters = try await metadata.deadLetters(matching: DeadLetterQuery(source: source, rowIDs: chunk, limit: 100_000))
                closed += try await metadata.resolveDeadLetters(ids: letters.map(\.id))
            }
        } catch {
            logger.warning("could not close the dead letters of rows the scan took back", metadata: ["source": "\(source)", "error": "\(error)"])
        }
        if closed > 0 {
            logger.info("closed the dead letters of rows the scan took back", metadata: ["source": "\(source)", "letters": "\(closed)"])
        }
    }

    /// Whether a source hints at a change in a part this process holds.
    public var hinted: Bool {
        let mine = Set(held.withLock { Array($0.keys) })
        return slots.contains { mine.contains($0.slot) && scanners[$0.scanner].hasChanged(part: $0.part) }
    }

    /// Renews every part held (run beside a long scan, so its lease does not lapse mid-walk).
    public func heartbeat() async {
        for (slot, lease) in held.withLock({ $0 }) {
            if let renewed = try? await metadata.renewLease(lease, ttlSeconds: ttlSeconds) {
                held.withLock { if $0[slot]?.token == renewed.token { $0[slot] = renewed } }
            }
        }
        try? await renewMemberships()
    }

    /// Takes (or keeps) this process's membership of each source.
    func renewMemberships() async throws {
        var taken: [ShardLease] = []
        for scanner in scanners {
            let slot = Self.memberSlot(source: scanner.sourceName, pod: holder.pod)
            if let lease = try await metadata.acquireLease(shard: slot, holder: holder, ttlSeconds: ttlSeconds) { taken.append(lease) }
        }
        memberships.withLock { $0 = taken }
    }

    /// Gives every lease back (a clean stop: another process takes the parts at once).
    public func releaseAll() async {
        for lease in held.withLock({ held in defer { held = [:] }; return Array(held.values) }) {
            try? await metadata.releaseLease(lease)
        }
        for lease in memberships.withLock({ held in defer { held = [] }; return held }) {
            try? await metadata.releaseLease(lease)
        }
    }

    /// Ends the leases of this pod's earlier instances that are provably dead (a restart on the
    /// same host), so this instance takes their parts at once; whether any was ended.
    func takeOverDeadPredecessors(_ leases: [ShardLease]) async throws -> Bool {
        let ours = Set(slots.map(\.slot)).union(scanners.map { Self.memberSlot(source: $0.sourceName, pod: holder.pod) })
        var ended = false
        for lease in leases
        where ours.contains(lease.shard) && lease.holder.pod == holder.pod && lease.holder.instance != holder.instance
            && ProcessIdentity.isProvablyDead(token: lease.holder.instance)
        {
            if try await metadata.expireLease(shard: lease.shard, holder: lease.holder) { ended = true }
        }
        return ended
    }
}
