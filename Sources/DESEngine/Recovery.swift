import DESFormat
import DESKit
import DESNaming

import Foundation
import Logging

/// Crash recovery, run per shard under an exclusive lease, whenever a lease is newly
/// granted (on packer start, on takeover, on a re-grant to the same instance after a
/// pause) and by `des recover`.
///
/// The caller has no work in hand on the shard (a packer abandons a shard's
/// containers and claims before it leases the shard again), so every claim and
/// every `writing` container of the shard is stale, whoever made it — this instance too:
/// - a `writing` container with no object in storage is discarded; one whose
///   object exists and whose footer, seal and index validate is recorded `uploaded`;
/// - a claimed row whose name is in an uploaded container of its (day, shard) is
///   marked packed; any other claim returns to pending.
public struct Recovery: Sendable {
    /// What a recovery did.
    public struct Report: Sendable, Equatable {
        public var containersRecovered = 0
        public var containersDiscarded = 0
        public var rowsPacked = 0
        public var rowsReleased = 0
        public var shardsSkipped = 0
        /// Temporary objects of interrupted uploads removed from storage.
        public var temporariesRemoved = 0
        /// Creates an empty report.
        public init() {}
        /// Adds another report's counts.
        public mutating func add(_ o: Report) {
            containersRecovered += o.containersRecovered
            containersDiscarded += o.containersDiscarded
            rowsPacked += o.rowsPacked
            rowsReleased += o.rowsReleased
            shardsSkipped += o.shardsSkipped
            temporariesRemoved += o.temporariesRemoved
        }
    }

    let sources: [any SourceConnector]
    let metadata: any MetadataStore
    let storage: any StorageBackend
    let logger: Logger
    let retry: RetryPolicy

    /// Creates a recovery over these parts; storage and metadata calls are retried by `retry`.
    public init(
        sources: [any SourceConnector], metadata: any MetadataStore, storage: any StorageBackend, logger: Logger,
        retry: RetryPolicy = .metadata
    ) {
        self.sources = sources
        self.metadata = metadata
        self.storage = storage
        self.logger = logger
        self.retry = retry
    }

    /// Removes the temporary objects interrupted uploads left under `prefix`: those whose
    /// writer is provably dead, and any older than `olderThanSeconds`.
    public func removeTemporaries(prefix: String, olderThanSeconds: Double) async throws -> Int {
        let removed = try await retry.run { try await storage.removeStaleTemporaries(prefix: prefix, olderThanSeconds: olderThanSeconds) }
        if removed > 0 { logger.info("removed temporary objects of interrupted uploads", metadata: ["count": "\(removed)"]) }
        return removed
    }

    /// Recovers one shard. The caller must hold the shard's lease and have no work in hand on it.
    public func recoverShard(_ shard: Int) async throws -> Report {
        var report = Report()
        let reader = StorageArchiveReader(storage: storage)
        for container in try await retry.run({ try await metadata.containers(state: .writing, shard: shard, day: nil) }) {
            if let info = try await retry.run({ try await storage.head(key: container.key) }) {
                do {
                    let index = try await retry.run { try await reader.index(key: container.key) }
                    try await retry.run {
                        try await metadata.recoverUploaded(containerID: container.id, fileCount: index.count, size: info.size, etag: info.etag)
                    }
                    await NameRanges.record(container, names: index.entries.map(\.name), metadata: metadata, retry: retry, logger: logger)
                    report.containersRecovered += 1
                    logger.info("recovered uploaded container", metadata: ["key": "\(container.key)", "files": "\(index.count)"])
                    continue
                } catch let error as DESFormatError where error.code.isCorruption {
                    // Only an object that is certainly not a whole container is deleted (a transient
                    // error is passed on, and recovery runs again on the next grant).
                    logger.warning("container object is invalid; discarding it", metadata: ["key": "\(container.key)", "error": "\(error)"])
                    try await retry.run { try await storage.delete(key: container.key) }
                }
            }
            try await retry.run { try await metadata.discardContainer(id: container.id) }
            report.containersDiscarded += 1
        }

        // Uploaded containers whose rows were not all marked (claim_mode lease): marked first,
        // so that nothing packed is read as pending again.
        report.rowsPacked += try await markManifests(shard: shard)
        var indexes: [String: Set<String>] = [:]
        for source in sources {
            let stale = try await retry.run { try await source.staleClaims(shards: [shard], excludingHolder: nil, olderThanSeconds: nil) }
            report.add(try await resolve(stale, of: source, shard: shard, indexes: &indexes))
        }
        if report != Report() {
            logger.info(
                "recovered shard",
                metadata: [
                    "shard": "\(shard)", "containers_recovered": "\(report.containersRecovered)",
                    "containers_discarded": "\(report.containersDiscarded)", "rows_packed": "\(report.rowsPacked)",
                    "rows_released": "\(report.rowsReleased)",
                ])
        }
        return report
    }

    /// Marks packed, from pending, the rows of every uploaded container of `shard` whose manifest
    /// is not yet marked, and records each as marked; how many rows changed.
    func markManifests(shard: Int) async throws -> Int {
        var changed = 0
        for unmarked in try await retry.run({ try await metadata.unmarkedManifests(shard: shard) }) {
            let c = unmarked.container
            // A manifest must name exactly the files its container holds.
            guard unmarked.manifest.count == c.fileCount else {
                throw DESKitError(
                    .invalidData,
                    "des_containers id \(c.id) (\(c.key)): its manifest names \(unmarked.manifest.count) rows but the container holds "
                        + "\(c.fileCount) files; recovery of shard \(shard) stops here until the record is repaired")
            }
            // Every source it names must be here: reading a source's rows as pending before its
            // manifest is marked would pack them again (a renamed or disabled source).
            let marks = try unmarked.manifest.rows.sorted { $0.key < $1.key }.map { name, ids in
                guard let source = sources.first(where: { $0.name == name }) else {
                    throw DESKitError(
                        .configuration,
                        "container \(c.key) holds rows of source '\(name)', which this config does not have (renamed or disabled?): "
                            + "run with that source enabled under that name until its rows are marked (des recover), then change it")
                }
                return (source, ids)
            }
            // A row is marked only when its id is in the manifest and its name in the container: an
            // id given to another row since (renumbered, swapped, reused) marks nothing.
            let reader = StorageArchiveReader(storage: storage)
            let held = try await retry.run { try await reader.index(key: c.key, etag: c.etag) }.entries.map(\.name)
            for (source, ids) in marks {
                changed += try await source.markManifestRows(
                    ids: ids, names: held, container: c.key, metadata: metadata, retry: retry, logger: logger)
            }
            try await retry.run { try await metadata.manifestMarked(containerID: c.id) }
        }
        if changed > 0 { logger.info("marked the rows of recovered manifests", metadata: ["shard": "\(shard)", "rows": "\(changed)"]) }
        return changed
    }

    /// Settles claims known to be stale on `shard`, whose lease the caller holds: a row whose
    /// name is in an uploaded container of its (day, shard) is marked packed, any other returns
    /// to pending. Every write is a compare-and-set on the claim as read (its claimer), so a claim
    /// made since — by anyone — is never touched. `indexes` caches the containers' names read so far.
    func resolve(_ stale: [PendingFile], of source: any SourceConnector, shard: Int, indexes: inout [String: Set<String>])
        async throws -> Report
    {
        var report = Report()
        if stale.isEmpty { return report }
        let reader = StorageArchiveReader(storage: storage)
        var byDay: [String: [PendingFile]] = [:]
        for file in stale { byDay[dayOfName(file.desName), default: []].append(file) }
        // Keyed by (container or "", claimer).
        var packed: [String: [String: [String]]] = [:]
        var release: [String: [String]] = [:]
        for (day, files) in byDay {
            let uploaded = try await retry.run { try await metadata.containers(state: .uploaded, shard: shard, day: day) }
            for container in uploaded where indexes[container.key] == nil {
                let index = try await retry.run { try await reader.index(key: container.key, etag: container.etag) }
                indexes[container.key] = Set(index.entries.map(\.name))
            }
            for file in files {
                let claimer = file.claimedBy ?? ""
                if let hit = uploaded.first(where: { indexes[$0.key]?.contains(file.desName) == true }) {
                    packed[hit.key, default: [:]][claimer, default: []].append(file.rowID)
                } else {
                    release[claimer, default: []].append(file.rowID)
                }
            }
        }
        for (key, byClaimer) in packed {
            for (claimer, ids) in byClaimer {
                report.rowsPacked += try await retry.run {
                    try await source.markPacked(rowIDs: ids, container: key, holder: claimer.isEmpty ? nil : claimer)
                }
            }
        }
        for (claimer, ids) in release {
            report.rowsReleased += try await retry.run {
                try await source.releaseClaims(rowIDs: ids, holder: claimer.isEmpty ? nil : claimer)
            }
        }
        return report
    }

    /// Returns the claims on `shards` (whose leases the caller holds) that someone other than
    /// `holder` has held longer than their source's claim timeout (`timeout(source name)`): a
    /// paused worker's claims made after it lost the lease, which no grant would otherwise
    /// recover while the shard stays leased. The caller's own claims are never touched (they are
    /// its work in hand).
    public func returnStaleClaims(
        shards: [Int], excludingHolder holder: String, timeout: (String) -> Double
    ) async throws -> Report {
        var report = Report()
        guard !shards.isEmpty else { return report }
        var indexes: [String: Set<String>] = [:]
        for source in sources {
            let timeout = timeout(source.name)
            // Older than the timeout *and* someone else's (the query's two conditions are either-or).
            let stale = try await retry.run {
                try await source.staleClaims(shards: shards, excludingHolder: nil, olderThanSeconds: timeout)
            }.filter { $0.claimedBy != holder }
            for (shard, files) in Dictionary(grouping: stale, by: \.shard) {
                let done = try await resolve(files, of: source, shard: shard, indexes: &indexes)
                if done.rowsPacked + done.rowsReleased > 0 {
                    logger.warning(
                        "returned claims held past the source's claim timeout",
                        metadata: [
                            "source": "\(source.name)", "shard": "\(shard)", "timeout_seconds": "\(timeout)",
                            "rows_packed": "\(done.rowsPacked)", "rows_released": "\(done.rowsReleased)",
                        ])
                }
                report.add(done)
            }
        }
        return report
    }

    /// `des recover`: removes stale temporary objects under `keyPrefix`, then, for each shard
    /// whose lease is free or expired, takes the lease, recovers the shard and gives the lease
    /// back. Shards held by live packers are skipped (they recover their own shards on takeover).
    public func recoverAll(shards: [Int], holder: LeaseHolder, ttlSeconds: Double, keyPrefix: String = "") async throws -> Report {
        let removed = try await removeTemporaries(prefix: keyPrefix, olderThanSeconds: max(ttlSeconds, 3600))
        var total = try await recover(shards: shards, holder: holder, ttlSeconds: ttlSeconds)
        total.temporariesRemoved = removed
        return total
    }

    /// For each of `shards` whose lease is free or expired: takes the lease as `holder`, recovers
    /// the shard and gives the lease back; a shard held by a live packer is skipped.
    public func recover(shards: [Int], holder: LeaseHolder, ttlSeconds: Double) async throws -> Report {
        var total = Report()
        for shard in shards {
            guard let lease = try await metadata.acquireLease(shard: shard, holder: holder, ttlSeconds: ttlSeconds) else {
                total.shardsSkipped += 1
                continue
            }
            do {
                total.add(try await recoverShard(shard))
            } catch {
                try? await metadata.releaseLease(lease)
                throw error
            }
            try await metadata.releaseLease(lease)
        }
        return total
    }
}

/// The `YYYY-MM-DD` day of a DES name; names that carry no day belong to today (UTC).
public func dayOfName(_ name: String) -> String {
    if let day = SnowflakeName.isoDay(ofName: name) { return day }
    let today = utcDay(milliseconds: UInt64(Date().timeIntervalSince1970 * 1000))
    return String(today.prefix(4)) + "-" + String(today.dropFirst(4).prefix(2)) + "-" + String(today.suffix(2))
}
