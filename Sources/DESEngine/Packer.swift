import DESFormat
import DESKit
import DESNaming

import Foundation
import Logging

/// The packer (DESIGN.md §7): leases shards, claims their rows from every
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

    /// What the packer works with.
    public struct Parts: Sendable {
        public var sources: [any SourceConnector]
        /// Body fetchers by source name.
        public var fetchers: [String: any BodyFetcher]
        public var metadata: any MetadataStore
        public var storage: any StorageBackend
        public var keyPrefix: String
        /// Creates the parts.
        public init(
            sources: [any SourceConnector], fetchers: [String: any BodyFetcher], metadata: any MetadataStore,
            storage: any StorageBackend, keyPrefix: String
        ) {
            self.sources = sources
            self.fetchers = fetchers
            self.metadata = metadata
            self.storage = storage
            self.keyPrefix = keyPrefix
        }
    }

    let parts: Parts
    let config: PackerConfig
    let logger: Logger
    /// This incarnation's identity.
    public let holder: LeaseHolder
    let assignment: ShardAssignment
    let book = LeaseBook()
    let metrics = PackerMetrics()
    let recovery: Recovery
    let workDir: String
    var open: [ContainerSlot: OpenContainer] = [:]
    var totals = Totals()
    var lastLeaseAttempt = -Double.infinity

    /// Creates a packer; `podName` defaults to the host name plus the pod index.
    public init(parts: Parts, config: PackerConfig, logger: Logger) throws {
        self.parts = parts
        self.config = config
        self.logger = logger
        let pod = config.podName ?? "\(ProcessInfo.processInfo.hostName)-\(config.podIndex)"
        self.holder = LeaseHolder(pod: pod, instance: String(UInt64.random(in: 0...UInt64.max), radix: 36))
        do {
            self.assignment = try ShardAssignment(shardBits: config.shardBits, podIndex: config.podIndex, podCount: config.podCount)
        } catch {
            throw DESKitError(.configuration, "packer: \(error)")
        }
        self.recovery = Recovery(sources: parts.sources, metadata: parts.metadata, storage: parts.storage, logger: logger)
        let safePod = pod.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }
        self.workDir = (config.workDir as NSString).appendingPathComponent(String(safePod))
    }

    /// Runs until `shutdown` fires — or, with `untilIdle`, until no owned shard has
    /// pending rows, when every open container is finalized.
    public func run(shutdown: ShutdownSignal, untilIdle: Bool) async throws -> Totals {
        try prepareWorkDir()
        logger.info("packer started", metadata: ["holder": "\(holder)", "shards": "\(assignment.ownedShards.count)"])
        let heartbeat = Task { [book, parts, config, logger, metrics] in
            await runHeartbeat(
                book: book, metadata: parts.metadata, ttl: config.leaseTTLSeconds, interval: config.heartbeatSeconds,
                logger: logger, metrics: metrics)
        }
        do {
            try await loop(shutdown: shutdown, untilIdle: untilIdle)
            try await finalizeAll()
        } catch {
            heartbeat.cancel()
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

    private func prepareWorkDir() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        // Leftovers of an earlier incarnation of this pod: their containers are recovered from metadata.
        for name in (try? fm.contentsOfDirectory(atPath: workDir)) ?? [] {
            try? fm.removeItem(atPath: (workDir as NSString).appendingPathComponent(name))
        }
    }

    private func loop(shutdown: ShutdownSignal, untilIdle: Bool) async throws {
        while !shutdown.isTriggered {
            try await acquireLeases(force: false)
            await dropLostShards()
            let shards = book.held.keys.sorted()
            var files: [PendingFile] = []
            if !shards.isEmpty {
                let start = monotonicSeconds()
                for source in parts.sources {
                    let batch = try await RetryPolicy().run { try await source.claim(shards: shards, limit: config.batchSize, holder: holder.description) }
                    files += batch
                }
                metrics.claimDuration.recordSeconds(monotonicSeconds() - start)
            }
            if files.isEmpty {
                try await finalizeDue()
                if untilIdle && book.held.count == assignment.ownedShards.count { return }
                await shutdown.sleep(seconds: config.idleSleepSeconds)
                continue
            }
            try await pack(files)
            try await finalizeDue()
        }
    }

    // MARK: Leases

    private func acquireLeases(force: Bool) async throws {
        let now = monotonicSeconds()
        let missing = assignment.ownedShards.filter { book.lease($0) == nil }
        guard !missing.isEmpty, force || now - lastLeaseAttempt >= min(config.leaseTTLSeconds / 2, 5) else { return }
        lastLeaseAttempt = now
        for shard in missing {
            guard let lease = try await parts.metadata.acquireLease(shard: shard, holder: holder, ttlSeconds: config.leaseTTLSeconds) else { continue }
            book.add(lease)
            if lease.isNewGrant {
                totals.recovery.add(try await recovery.recoverShard(shard, currentHolder: holder.description))
            }
        }
    }

    private func releaseLeases() async {
        for lease in book.removeAll() { try? await parts.metadata.releaseLease(lease) }
    }

    /// Stops work on shards whose lease was lost: their containers are abandoned
    /// (the new holder recovers them) and our claims there are given back.
    private func dropLostShards() async {
        let lost = book.takeLost()
        guard !lost.isEmpty else { return }
        for (slot, container) in open where lost.contains(slot.shard) {
            container.writer.abort()
            open[slot] = nil
            for (source, ids) in container.rows {
                _ = try? await sourceNamed(source)?.releaseClaims(rowIDs: ids, holder: holder.description)
            }
            logger.warning("abandoned container after losing its lease", metadata: ["key": "\(container.record.key)"])
        }
        metrics.openContainers.record(open.count)
    }

    func sourceNamed(_ name: String) -> (any SourceConnector)? { parts.sources.first { $0.name == name } }
}
