import DESFormat
import DESKit
import DESNaming

import Foundation
import Logging

/// The packer (docs/operations.md): leases shards, claims their rows from every
/// source, appends bodies to the open container of (day of name, shard),
/// checkpoints, finalizes on size, age or a closed day, uploads, records the
/// container `uploaded` under its fencing token, and only then marks its rows packed.
///
/// Exactly once under `kill -9`: every row ends packed in one uploaded
/// container or failed with a reason in the dead-letter table.
public final class Packer {
    /// Counts of one run.
    public struct Totals: Sendable, Equatable {
        public var filesPacked = 0
        public var bytesPacked: UInt64 = 0
        public var filesFailed = 0
        public var containersUploaded = 0
        public var recovery = Recovery.Report()
        /// Creates zero totals.
        public init() {}
    }

    /// How the packer treats one source's rows (its `sources[]` keys).
    public struct SourcePolicy: Sendable, Equatable {
        /// Rows claimed from the source per round trip (nil: `packer.batch_size`).
        public var claimBatchSize: Int?
        /// Claims of the source's rows held by someone else longer than this many seconds are
        /// returned (nil: `packer.claim_timeout_seconds`).
        public var claimTimeoutSeconds: Double?
        /// Creates a policy.
        public init(claimBatchSize: Int? = nil, claimTimeoutSeconds: Double? = nil) {
            self.claimBatchSize = claimBatchSize
            self.claimTimeoutSeconds = claimTimeoutSeconds
        }
        /// Each source's policy, by name, as its config section writes it.
        public static func policies(for sources: [SourceConfig]) -> [String: SourcePolicy] {
            Dictionary(
                sources.map { ($0.name, SourcePolicy(claimBatchSize: $0.batchSize, claimTimeoutSeconds: $0.claimTimeoutSeconds)) },
                uniquingKeysWith: { first, _ in first })
        }
    }

    /// What the packer works with.
    public struct Parts: Sendable {
        public var sources: [any SourceConnector]
        /// Body fetchers by source name.
        public var fetchers: [String: any BodyFetcher]
        public var metadata: any MetadataStore
        public var storage: any StorageBackend
        public var keyPrefix: String
        /// Per-source settings by source name (a source without one follows the packer's).
        public var policies: [String: SourcePolicy]
        /// Creates the parts.
        public init(
            sources: [any SourceConnector], fetchers: [String: any BodyFetcher], metadata: any MetadataStore,
            storage: any StorageBackend, keyPrefix: String, policies: [String: SourcePolicy] = [:]
        ) {
            self.sources = sources
            self.policies = policies
            self.fetchers = fetchers
            self.metadata = metadata
            self.storage = storage
            self.keyPrefix = keyPrefix
        }
    }

    let parts: Parts
    let config: PackerConfig
    let logger: Logger
    /// This incarnation's identity: the pod, and an instance naming this process (``ProcessIdentity``).
    public let holder: LeaseHolder
    let assignment: ShardAssignment
    let book = LeaseBook()
    let metrics = PackerMetrics()
    let recovery: Recovery
    /// Retries metadata-store and storage calls (a lock held for half a minute is ridden out).
    let retry = RetryPolicy.metadata
    /// This pod's folder of work directories (one per instance).
    let podDir: String
    /// This instance's work directory.
    let workDir: String
    var open: [ContainerSlot: OpenContainer] = [:]
    var totals = Totals()
    var lastLeaseAttempt = -Double.infinity
    /// The owned shards with work as of the last look (``ShardsWithWork``), ascending: the shards
    /// this packer leases. Looked up again when ``workLookupIsDue``.
    var targets: [Int] = []
    /// When claims past their source's timeout were last looked for (-∞: never).
    var lastStaleClaimSweep = -Double.infinity
    /// When the shards with work were last looked up (-∞: never).
    var lastWorkLookup = -Double.infinity
    /// Whether the last claim filled its batch: the held shards keep the packer busy, so the
    /// shards with work (a scan of the catalog's pending rows) are looked up only once a minute.
    var saturated = false
    /// Bumped whenever rows may have gone back to pending or the leases changed (a release, an
    /// abandon, a new grant, a lost lease): `--until-idle` stops only if nothing moved since its empty claim.
    var activity = 0
    /// The next batch, being claimed and fetched while the current one is written.
    var prefetch: Task<ClaimedBatch, Error>?
    /// `claim_mode: lease`: the rows read and not yet marked packed, failed or let go, by source
    /// (a keyset read skips them: they are still pending in the catalog).
    var inFlight: [String: Set<String>] = [:]
    /// `claim_mode: lease`: where each source's keyset read goes on, for the shards in ``cursorShards``.
    var cursors: [String: String] = [:]
    /// The shards the cursors are for (another set of shards starts the reads over).
    var cursorShards: [Int] = []
    /// `claim_mode: lease`: rows the background marks have marked packed, to drop from ``inFlight``.
    let markedRows = MarkedRows()
    /// Rows of uploaded containers being marked packed.
    var marking: [Task<Void, Error>] = []
    /// Full containers being closed, uploaded and recorded, oldest first (``finalize(_:)``).
    var finalizing: [Finalization] = []
    /// Closes containers (the index written, the file synced) off the cooperative pool.
    let closer = DedicatedThread(name: "des-packer-close")

    /// Creates a packer; `podName` defaults to the host name plus the pod index.
    public init(parts: Parts, config: PackerConfig, logger: Logger) throws {
        self.parts = parts
        self.config = config
        self.logger = logger
        let pod = config.podName ?? "\(ProcessInfo.processInfo.hostName)-\(config.podIndex)"
        let instance = ProcessIdentity.current.token + "." + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        self.holder = LeaseHolder(pod: pod, instance: instance)
        do {
            self.assignment = try ShardAssignment(shardBits: config.shardBits, podIndex: config.podIndex, podCount: config.podCount)
        } catch {
            throw DESKitError(.configuration, "packer: \(error)")
        }
        self.recovery = Recovery(sources: parts.sources, metadata: parts.metadata, storage: parts.storage, logger: logger)
        let safePod = pod.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }
        self.podDir = (config.workDir as NSString).appendingPathComponent(String(safePod))
        self.workDir = (podDir as NSString).appendingPathComponent(instance)
    }

    deinit { closer.stop() }

    /// Runs until `shutdown` fires — or, with `untilIdle`, until no owned shard has pending
    /// rows, every open container is finalized and no row of its shards is left claimed by it.
    public func run(shutdown: ShutdownSignal, untilIdle: Bool) async throws -> Totals {
        try prepareWorkDir()
        logger.info(
            "packer started", metadata: ["holder": "\(holder)", "shards": "\(assignment.ownedShardCount)", "claim_mode": "\(config.claimMode.rawValue)"])
        let heartbeat = Task { [book, parts, config, logger, metrics] in
            await runHeartbeat(
                book: book, metadata: parts.metadata, ttl: config.leaseTTLSeconds, interval: config.heartbeatSeconds,
                logger: logger, metrics: metrics)
        }
        do {
            try await takeOverDeadPredecessors()
            totals.recovery.temporariesRemoved += try await recovery.removeTemporaries(
                prefix: parts.keyPrefix, olderThanSeconds: max(config.leaseTTLSeconds, 3600))
            try await loop(shutdown: shutdown, untilIdle: untilIdle)
            await discardPrefetch(reason: "packer stopping")
            try await finalizeAll()
        } catch {
            heartbeat.cancel()
            await discardPrefetch(reason: "packer stopped on an error")
            try? await settleFinalizations()
            try? await awaitMarking()
            await abandonAll(reason: "packer stopped on an error")
            await releaseLeases()
            throw error
        }
        heartbeat.cancel()
        await releaseLeases()
        logger.info(
            "packer stopped",
            metadata: ["files": "\(totals.filesPacked)", "containers": "\(totals.containersUploaded)", "failed": "\(totals.filesFailed)"])
        return totals
    }

    /// Creates this instance's work directory and removes those of dead instances of the pod
    /// (their containers are recovered from metadata). A live instance's directory is left alone.
    private func prepareWorkDir() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        for name in (try? fm.contentsOfDirectory(atPath: podDir)) ?? [] where name != holder.instance {
            let path = (podDir as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            _ = fm.fileExists(atPath: path, isDirectory: &isDirectory)
            // Loose files are an older layout's leftovers; a directory is an instance's.
            if !isDirectory.boolValue || ProcessIdentity.isProvablyDead(token: name) {
                try? fm.removeItem(atPath: path)
            }
        }
    }

    /// Ends the leases of this pod's earlier instances that are provably dead (a restart on the
    /// same host), so this instance takes them at once; a live instance's leases are never touched.
    private func takeOverDeadPredecessors() async throws {
        for lease in try await retry.run({ try await parts.metadata.leases() })
        where assignment.owns(lease.shard) && lease.holder.pod == holder.pod && lease.holder.instance != holder.instance
            && ProcessIdentity.isProvablyDead(token: lease.holder.instance)
        {
            if try await retry.run({ try await parts.metadata.expireLease(shard: lease.shard, holder: lease.holder) }) {
                logger.info("took over the lease of a dead instance of this pod", metadata: ["shard": "\(lease.shard)", "was": "\(lease.holder)"])
            }
        }
    }

    private func loop(shutdown: ShutdownSignal, untilIdle: Bool) async throws {
        var leftoverRounds = 0
        while !shutdown.isTriggered {
            dropMarkedRows()
            await dropLostShards()
            try await returnStaleClaimsIfDue()
            let batch: ClaimedBatch
            if let ahead = prefetch {
                // Claimed while the last batch was written, on shards all held then (no lease
                // was taken between, so no recovery can have touched these claims).
                prefetch = nil
                batch = try await ahead.value
            } else {
                try await acquireLeases(force: false)
                batch = try await startTake(shards: book.held.keys.sorted()).value
            }
            absorb(batch)
            if !batch.shards.isEmpty { metrics.claimDuration.recordSeconds(batch.claimSeconds) }
            saturated = batch.saturated
            let (shards, epoch) = (batch.shards, batch.epoch)
            if batch.files.isEmpty {
                try await settleFinalizations()
                try await awaitMarking()
                try await finalizeDue()
                if untilIdle, activity == epoch, try await idleEverywhere(claimedFrom: shards) {
                    try await finalizeAll()
                    await dropLostShards()
                    // Nothing is in hand now, so any claim left on a held shard — this instance's (a release
                    // that failed) or a paused zombie's — is stale: recover it, and go round again.
                    let stale = try await claimsOn(shards.filter { book.lease($0) != nil })
                    if stale == 0, activity == epoch, try await idleEverywhere(claimedFrom: shards), activity == epoch { return }
                    if stale > 0 {
                        leftoverRounds += 1
                        if leftoverRounds > 3 {
                            throw DESKitError(
                                .invalidData, "\(stale) rows of this packer's shards are still claimed after \(leftoverRounds - 1) recoveries")
                        }
                        logger.warning("claimed rows left on idle shards; recovering them", metadata: ["rows": "\(stale)"])
                        for shard in shards where book.lease(shard) != nil {
                            totals.recovery.add(try await recovery.recoverShard(shard))
                        }
                        activity += 1
                    }
                    continue
                }
                if activity == epoch { await shutdown.sleep(seconds: config.idleSleepSeconds) }
                continue
            }
            leftoverRounds = 0
            // Claim the next batch while this one is written — only when every shard with work is
            // held, so the next round takes no lease (whose recovery would treat claims in
            // flight as stale), and the shards with work are not due to be looked up again.
            if !shutdown.isTriggered, !workLookupIsDue, targets.allSatisfy({ book.lease($0) != nil })
            {
                prefetch = startTake(shards: book.held.keys.sorted())
            }
            try await pack(batch.files, bodies: batch.bodies)
            try await finalizeDue()
        }
    }

    /// Whether every owned shard this instance does not hold is leased, live, by another instance
    /// of this pod (which drains it): with `--until-idle` an instance then stops when its own
    /// shards are idle. A shard held by anyone else (a dead instance whose lease has not yet
    /// expired, `des recover`) is waited for, as it may still have rows for us.
    ///
    /// `claimedFrom` are the shards the last (empty) claim covered: when the shards held now
    /// differ, there is more to look at and the answer is no.
    private func idleEverywhere(claimedFrom: [Int]) async throws -> Bool {
        // The shards with work, looked up now: work may have moved to shards not held.
        try await acquireLeases(force: true)
        guard Set(book.held.keys) == Set(claimedFrom) else { return false }
        let missing = Set(targets).subtracting(claimedFrom)
        if missing.isEmpty { return true }
        let leases = try await retry.run { try await parts.metadata.leases() }.filter { missing.contains($0.shard) }
        for lease in leases where lease.holder.pod == holder.pod && ProcessIdentity.isProvablyDead(token: lease.holder.instance) {
            // A sibling instance died while we ran: take its shards over instead of trusting it to drain them.
            try await retry.run { try await parts.metadata.expireLease(shard: lease.shard, holder: lease.holder) }
            return false
        }
        return leases.count == missing.count
            && leases.allSatisfy { $0.holder.pod == holder.pod && $0.holder.instance != holder.instance }
    }

    /// How many rows of `shards` are claimed, by anyone, over every source.
    private func claimsOn(_ shards: [Int]) async throws -> Int {
        guard !shards.isEmpty else { return 0 }
        var claimed = 0
        for source in parts.sources {
            claimed += try await retry.run { try await source.staleClaims(shards: shards, excludingHolder: nil, olderThanSeconds: nil) }.count
        }
        return claimed
    }

    // MARK: Leases

    /// How often missing leases are tried again (and, while the packer is not kept busy, the
    /// shards with work looked up).
    var leaseRetrySeconds: Double { min(config.leaseTTLSeconds / 2, 5) }

    /// Whether the shards with work are to be looked up again: every ``leaseRetrySeconds`` while
    /// the packer is not kept busy, once a minute while its claims fill their batches.
    var workLookupIsDue: Bool { monotonicSeconds() - lastWorkLookup >= (saturated ? 60 : leaseRetrySeconds) }

    /// Looks up the shards with work (when due, or `force`), gives back the leases of shards that
    /// have none and nothing in hand, and leases the missing ones (retried every ``leaseRetrySeconds``).
    func acquireLeases(force: Bool) async throws {
        let now = monotonicSeconds()
        guard force || now - lastLeaseAttempt >= leaseRetrySeconds else { return }
        lastLeaseAttempt = now
        if force || workLookupIsDue {
            targets = try await ShardsWithWork.find(sources: parts.sources, metadata: parts.metadata, assignment: assignment, retry: retry)
            lastWorkLookup = now
            await releaseIdleLeases()
        }
        let missing = targets.filter { book.lease($0) == nil }
        guard !missing.isEmpty else { return }
        // A finalization still running on a shard about to be leased again is work in hand too.
        if missing.contains(where: isFinalizing) { try await settleFinalizations() }
        for shard in missing {
            // Nothing may be in hand on a shard being leased again: recovery treats all its work as stale.
            await abandonShard(shard, reason: "lease being taken again")
            guard let lease = try await retry.run({
                try await parts.metadata.acquireLease(shard: shard, holder: holder, ttlSeconds: config.leaseTTLSeconds)
            }) else { continue }
            book.add(lease)
            if lease.isNewGrant {
                totals.recovery.add(try await recovery.recoverShard(shard))
                activity += 1
            }
        }
    }

    private func releaseLeases() async {
        for lease in book.removeAll() { try? await parts.metadata.releaseLease(lease) }
    }

    /// Gives back the leases of held shards that no longer have work and hold nothing of ours:
    /// no open container, no finalization, no batch claimed ahead.
    private func releaseIdleLeases() async {
        guard prefetch == nil else { return }
        let wanted = Set(targets)
        let busy = Set(open.keys.map(\.shard))
        for (shard, lease) in book.held where !wanted.contains(shard) && !busy.contains(shard) && !isFinalizing(shard: shard) {
            guard book.remove(shard, token: lease.token) else { continue }
            do {
                try await retry.run { try await parts.metadata.releaseLease(lease) }
            } catch {
                // It expires on its own; nobody works on the shard meanwhile, which has no work.
                logger.warning("could not give back an idle lease", metadata: ["shard": "\(shard)", "error": "\(error)"])
            }
        }
    }

    /// Stops work on shards whose lease was lost: their containers are abandoned and our
    /// claims there are given back (the packer carries on with its other shards).
    func dropLostShards() async {
        var lost = book.takeLost()
        // A container whose lease is no longer the one held (lost and taken again meanwhile) is stale too.
        for slot in open.keys where book.lease(slot.shard)?.token != open[slot]?.lease.token { lost.insert(slot.shard) }
        if !lost.isEmpty { activity += 1 }
        for shard in lost.sorted() { await abandonShard(shard, reason: "lease lost") }
    }

    func sourceNamed(_ name: String) -> (any SourceConnector)? { parts.sources.first { $0.name == name } }
}
