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
        /// The sources, each with its fetcher and policy.
        public var sources: [PackerSource]
        public var metadata: any MetadataStore
        public var storage: any StorageBackend
        public var keyPrefix: String
        /// Creates the parts.
        public init(sources: [PackerSource], metadata: any MetadataStore, storage: any StorageBackend, keyPrefix: String) {
            self.sources = sources
            self.metadata = metadata
            self.storage = storage
            self.keyPrefix = keyPrefix
        }
    }

    /// What never changes while the packer runs (shared with its background tasks).
    let context: PackerContext
    /// The packer's decisions: containers, finalizations, rows in flight.
    var machine: PackerStateMachine
    /// What only the run loop touches.
    var runState = PackerRunState()
    /// `claim_mode: lease`: rows the background marks have marked packed, for the machine.
    let markedRows = MarkedRows()
    /// Uploaded containers whose rows wait to be marked packed.
    let markQueue: MarkQueue

    /// This incarnation's identity: the pod, and an instance naming this process (``ProcessIdentity``).
    public var holder: LeaseHolder { context.holder }
    var config: PackerConfig { context.config }
    var logger: Logger { context.logger }
    var book: LeaseBook { context.book }
    var retry: RetryPolicy { context.retry }
    var metadata: any MetadataStore { context.metadata }

    /// Creates a packer; `podName` defaults to the host name plus the pod index.
    public init(parts: Parts, config: PackerConfig, logger: Logger) throws {
        self.context = try PackerContext(parts: parts, config: config, logger: logger)
        self.machine = PackerStateMachine(mode: config.claimMode, limits: .init(config))
        self.markQueue = MarkQueue(promptRows: parts.sources.map(\.connector.markBatchRows).max() ?? MarkQueue.batchRows)
    }

    deinit { context.closer.stop() }

    /// Runs until `shutdown` fires — or, with `untilIdle`, until no owned shard has pending
    /// rows, every open container is finalized and no row of its shards is left claimed by it.
    public func run(shutdown: ShutdownSignal, untilIdle: Bool) async throws -> Totals {
        try prepareWorkDir()
        logger.info(
            "packer started", metadata: ["holder": "\(holder)", "shards": "\(context.assignment.ownedShardCount)", "claim_mode": "\(config.claimMode.rawValue)"])
        let heartbeat = Task { [context] in
            await runHeartbeat(
                book: context.book, metadata: context.metadata, ttl: context.config.leaseTTLSeconds,
                interval: context.config.heartbeatSeconds, logger: context.logger, metrics: context.metrics)
        }
        do {
            try await takeOverDeadPredecessors()
            runState.totals.recovery.temporariesRemoved += try await context.recovery.removeTemporaries(
                prefix: context.keyPrefix, olderThanSeconds: max(config.leaseTTLSeconds, 3600))
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
            metadata: [
                "files": "\(runState.totals.filesPacked)", "containers": "\(runState.totals.containersUploaded)",
                "failed": "\(runState.totals.filesFailed)",
            ])
        return runState.totals
    }

    /// Creates this instance's work directory and removes those of dead instances of the pod
    /// (their containers are recovered from metadata). A live instance's directory is left alone.
    private func prepareWorkDir() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: context.workDir, withIntermediateDirectories: true)
        for name in (try? fm.contentsOfDirectory(atPath: context.podDir)) ?? [] where name != holder.instance {
            let path = (context.podDir as NSString).appendingPathComponent(name)
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
        for lease in try await retry.run({ try await metadata.leases() })
        where context.assignment.owns(lease.shard) && lease.holder.pod == holder.pod && lease.holder.instance != holder.instance
            && ProcessIdentity.isProvablyDead(token: lease.holder.instance)
        {
            if try await retry.run({ try await metadata.expireLease(shard: lease.shard, holder: lease.holder) }) {
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
            if let ahead = runState.prefetch {
                // Claimed while the last batch was written, on shards all held then (no lease
                // was taken between, so no recovery can have touched these claims).
                runState.prefetch = nil
                batch = try await ahead.value
            } else {
                try await acquireLeases(force: false)
                batch = try await startTake(shards: book.held.keys.sorted()).value
            }
            machine.taken(
                rows: batch.files.map { ($0.source, $0.rowID, $0.desName) }, shards: batch.shards, cursors: batch.cursors, twins: batch.twins,
                saturated: batch.saturated)
            if !batch.shards.isEmpty { context.metrics.claimDuration.recordSeconds(batch.claimSeconds) }
            runState.saturated = batch.saturated
            let (shards, epoch) = (batch.shards, batch.epoch)
            // Lease mode: a read that began past a cursor and found nothing has reset its cursors;
            // the next one starts over, and only that one can show idleness.
            if batch.files.isEmpty, !batch.fromStart { continue }
            if batch.files.isEmpty {
                try await settleFinalizations()
                try await awaitMarking()
                try await finalizeDue()
                if untilIdle, machine.activity == epoch, try await idleEverywhere(claimedFrom: shards) {
                    try await finalizeAll()
                    await dropLostShards()
                    // Nothing is in hand now, so any claim left on a held shard — this instance's (a release
                    // that failed) or a paused zombie's — is stale, and so is any container recorded under
                    // this instance (a creation whose answer was lost): recover them, and go round again.
                    let stale = try await claimsOn(shards.filter { book.lease($0) != nil }) + strayContainers().count
                    if stale == 0, machine.activity == epoch, try await idleEverywhere(claimedFrom: shards), machine.activity == epoch { return }
                    if stale > 0 {
                        leftoverRounds += 1
                        if leftoverRounds > 3 {
                            throw DESKitError(
                                .invalidData,
                                "\(stale) rows or containers of this packer's shards are still claimed or writing after \(leftoverRounds - 1) recoveries")
                        }
                        logger.warning("claimed rows or writing containers left on idle shards; recovering them", metadata: ["count": "\(stale)"])
                        for shard in shards where book.lease(shard) != nil {
                            runState.totals.recovery.add(try await context.recovery.recoverShard(shard))
                        }
                        machine.noteActivity()
                    }
                    continue
                }
                if machine.activity == epoch { await shutdown.sleep(seconds: config.idleSleepSeconds) }
                continue
            }
            leftoverRounds = 0
            // Claim the next batch while this one is written — only when every shard with work is
            // held, so the next round takes no lease (whose recovery would treat claims in
            // flight as stale), and the shards with work are not due to be looked up again.
            if !shutdown.isTriggered, !workLookupIsDue, runState.targets.allSatisfy({ book.lease($0) != nil })
            {
                runState.prefetch = startTake(shards: book.held.keys.sorted())
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
        let missing = Set(runState.targets).subtracting(claimedFrom)
        if missing.isEmpty { return true }
        let leases = try await retry.run { try await metadata.leases() }.filter { missing.contains($0.shard) }
        for lease in leases where lease.holder.pod == holder.pod && ProcessIdentity.isProvablyDead(token: lease.holder.instance) {
            // A sibling instance died while we ran: take its shards over instead of trusting it to drain them.
            try await retry.run { try await metadata.expireLease(shard: lease.shard, holder: lease.holder) }
            return false
        }
        return leases.count == missing.count
            && leases.allSatisfy { $0.holder.pod == holder.pod && $0.holder.instance != holder.instance }
    }

    /// How many rows of `shards` are claimed, by anyone, over every source.
    func claimsOn(_ shards: [Int]) async throws -> Int {
        guard !shards.isEmpty else { return 0 }
        var claimed = 0
        for source in context.sources {
            claimed += try await retry.run { try await source.connector.staleClaims(shards: shards, excludingHolder: nil, olderThanSeconds: nil) }.count
        }
        return claimed
    }

    // MARK: Leases

    /// How often missing leases are tried again (and, while the packer is not kept busy, the
    /// shards with work looked up).
    var leaseRetrySeconds: Double { min(config.leaseTTLSeconds / 2, 5) }

    /// Whether the shards with work are to be looked up again: every ``leaseRetrySeconds`` while
    /// the packer is not kept busy, once a minute while its claims fill their batches.
    var workLookupIsDue: Bool { monotonicSeconds() - runState.lastWorkLookup >= (runState.saturated ? 60 : leaseRetrySeconds) }

    /// Looks up the shards with work (when due, or `force`), gives back the leases of shards that
    /// have none and nothing in hand, and leases the missing ones (retried every ``leaseRetrySeconds``).
    func acquireLeases(force: Bool) async throws {
        let now = monotonicSeconds()
        guard force || now - runState.lastLeaseAttempt >= leaseRetrySeconds else { return }
        runState.lastLeaseAttempt = now
        if force || workLookupIsDue {
            runState.targets = try await ShardsWithWork.find(
                sources: context.sources.map(\.connector), metadata: metadata, assignment: context.assignment, retry: retry)
            runState.lastWorkLookup = now
            await releaseIdleLeases()
        }
        let missing = runState.targets.filter { book.lease($0) == nil }
        guard !missing.isEmpty else { return }
        // A finalization still running on a shard about to be leased again is work in hand too.
        if missing.contains(where: machine.isFinalizing) { try await settleFinalizations() }
        for shard in missing {
            // Nothing may be in hand on a shard being leased again: recovery treats all its work as stale.
            await abandonShard(shard, reason: "lease being taken again")
            guard let lease = try await retry.run({
                try await metadata.acquireLease(shard: shard, holder: holder, ttlSeconds: config.leaseTTLSeconds)
            }) else { continue }
            book.add(lease)
            if lease.isNewGrant {
                runState.totals.recovery.add(try await context.recovery.recoverShard(shard))
                machine.noteActivity()
            }
        }
    }

    private func releaseLeases() async {
        for lease in book.removeAll() { try? await metadata.releaseLease(lease) }
    }

    /// Gives back the leases of held shards that no longer have work and hold nothing of ours:
    /// no open container, no finalization, no batch claimed ahead.
    private func releaseIdleLeases() async {
        guard runState.prefetch == nil else { return }
        let wanted = Set(runState.targets)
        let busy = machine.busyShards
        for (shard, lease) in book.held where !wanted.contains(shard) && !busy.contains(shard) {
            guard book.remove(shard, token: lease.token) else { continue }
            do {
                try await retry.run { try await metadata.releaseLease(lease) }
            } catch {
                // It expires on its own; nobody works on the shard meanwhile, which has no work.
                logger.warning("could not give back an idle lease", metadata: ["shard": "\(shard)", "error": "\(error)"])
            }
        }
    }

    /// Stops work on shards whose lease was lost: their containers are abandoned and our
    /// claims there are given back (the packer carries on with its other shards).
    func dropLostShards() async {
        // A container whose lease is no longer the one held (lost and taken again meanwhile) is stale too.
        let lost = machine.lostShards(lost: book.takeLost(), held: book.held.mapValues(\.token))
        for shard in lost { await abandonShard(shard, reason: "lease lost") }
    }
}
