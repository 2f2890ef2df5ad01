import DESFormat
import DESKit
import Foundation
import Logging
import Metrics

/// `des compact`: rewrites containers whose deleted bytes reach `compaction.garbage_ratio`, and
/// merges small containers of one (day, shard), without stopping reads or packing.
///
/// Each group of containers of one (day, shard) is compacted under that shard's *compaction*
/// lease — a lease of its own (shard `-1 - shard` in `des_shard_locks`), so packers keep packing
/// the shard meanwhile — and every metadata write checks its fencing token:
/// 1. each old container is read whole and its live entries (not tombstoned) found; the new
///    container is recorded `compacting` (a packer's recovery never touches it);
/// 2. beside each old container a small `{key}.compacted` object records what replaces it and
///    which big-file objects of deleted entries may go (`des rebuild` reads these) — before the
///    new object exists, so none ever exists without them;
/// 3. the live entries, checked against their sha256, are written with their META into the new
///    container (external, big-file entries keep pointing at their objects), which is uploaded
///    and its index read back and compared;
/// 4. one transaction records the new container uploaded and the old ones retired — only if the
///    lease still holds and every old one is still uploaded, each old one with a link to the new
///    one. The users' catalogs are not written: a row keeps naming the container it was packed
///    into, and `des check` and `des retire` follow the links (``ContainerChain``).
///
/// Old objects stay readable for `compaction.grace` (a server holding an old index keeps reading
/// them); after it, they are deleted with their `.compacted` record and the big files of deleted
/// entries. A crash at any step leaves either the old containers uploaded (the new one
/// `compacting`, discarded on the next run) or the new one uploaded and the old ones retired.
public struct Compactor: Sendable {
    /// How the worker runs.
    public struct Config: Sendable {
        public var compaction = CompactionConfig()
        /// The largest container a merge writes (`packer.max_container_bytes`).
        public var maxContainerBytes: UInt64 = 1 << 30
        /// The most files a merge writes into one container (`packer.max_container_files`).
        public var maxContainerFiles = 1_000_000
        public var keyPrefix = "des"
        /// Where old containers are downloaded and new ones written.
        public var workDir = NSTemporaryDirectory()
        /// Who holds the compaction leases.
        public var holder = LeaseHolder(pod: "compactor", instance: ProcessIdentity.current.token)
        /// Report the plan; write nothing.
        public var dryRun = false
        /// Rewrite every container holding a deleted file, whatever its garbage ratio (erasure).
        public var erase = false
        /// The pause between passes that found nothing to do (without `--until-idle`).
        public var idleSleepSeconds = 60.0
        /// Creates the defaults.
        public init() {}
    }

    /// What a run did.
    public struct Totals: Sendable, Equatable {
        /// Old containers retired (or, in a dry run, that would be).
        public var containersRetired = 0
        /// New containers written.
        public var containersWritten = 0
        /// Live files and bytes rewritten.
        public var liveFiles = 0
        public var liveBytes: UInt64 = 0
        /// Deleted files and bytes dropped.
        public var droppedFiles = 0
        public var droppedBytes: UInt64 = 0
        /// Retired containers whose objects were deleted after the grace period.
        public var objectsDeleted = 0
        /// Groups given up (a lost race, a lost lease, a damaged entry): their containers stay, and
        /// this process does not try them again.
        public var groupsAbandoned = 0
        /// Shards skipped because another compactor held their compaction lease.
        public var shardsSkipped = 0
        /// Wall-clock seconds spent compacting shards (taking their leases, reading, writing,
        /// uploading, recording), however many at once.
        public var secondsCompacting = 0.0
        public var passes = 0
        /// Creates zero totals.
        public init() {}

        /// Adds what another shard's compaction did (its seconds are not added: shards overlap).
        mutating func add(_ other: Totals) {
            containersRetired += other.containersRetired
            containersWritten += other.containersWritten
            liveFiles += other.liveFiles
            liveBytes += other.liveBytes
            droppedFiles += other.droppedFiles
            droppedBytes += other.droppedBytes
            objectsDeleted += other.objectsDeleted
            groupsAbandoned += other.groupsAbandoned
            shardsSkipped += other.shardsSkipped
        }
    }

    let metadata: any MetadataStore
    let storage: any StorageBackend
    let config: Config
    let logger: Logger
    let retry: RetryPolicy
    let metrics = CompactionMetrics()

    /// A compactor over the containers `metadata` records in `storage`.
    public init(
        metadata: any MetadataStore, storage: any StorageBackend, config: Config, logger: Logger,
        retry: RetryPolicy = RetryPolicy()
    ) {
        self.metadata = metadata
        self.storage = storage
        self.config = config
        self.logger = logger
        self.retry = retry
    }

    /// This process's own folder under the work directory (removed when it ends; a dead
    /// process's is removed by the next compactor to start).
    var workDir: String { config.workDir + "/" + ProcessIdentity.current.token }

    /// Creates this process's folder and removes those of compactors that are provably dead.
    func prepareWorkDir() throws {
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: config.workDir)) ?? [] where ProcessIdentity.isProvablyDead(token: name) {
            try? FileManager.default.removeItem(atPath: config.workDir + "/" + name)
        }
    }

    /// The shard number of the compaction lease of `shard` (apart from the packers' leases).
    public static func leaseShard(of shard: Int) -> Int { -1 - shard }

    /// The key of the record written beside a replaced container.
    public static func compactedRecordKey(of key: String) -> String { key + ".compacted" }

    /// Passes until `shutdown`, or with `untilIdle` until a pass compacts and deletes nothing.
    public func run(shutdown: ShutdownSignal, untilIdle: Bool) async throws -> Totals {
        try prepareWorkDir()
        defer { try? FileManager.default.removeItem(atPath: workDir) }
        var totals = Totals()
        var failed = Set<Int64>()  // containers of groups given up: not tried again by this process
        while !shutdown.isTriggered {
            let before = (totals.containersRetired, totals.objectsDeleted)
            let skippedBefore = totals.shardsSkipped
            if !config.dryRun { try await removeRetired(totals: &totals) }
            let groups = try await plan().filter { group in !group.containers.contains { failed.contains($0.id) } }
            if config.dryRun {
                for group in groups {
                    totals.containersRetired += group.containers.count
                    totals.droppedBytes += group.garbageBytes
                }
                totals.passes += 1
                return totals
            }
            if !groups.isEmpty {
                let started = monotonicSeconds()
                try await compactShards(Dictionary(grouping: groups, by: \.shard), totals: &totals, failed: &failed, shutdown: shutdown)
                totals.secondsCompacting += monotonicSeconds() - started
            }
            if config.compaction.graceSeconds == 0 { try await removeRetired(totals: &totals) }
            totals.passes += 1
            let idle = before == (totals.containersRetired, totals.objectsDeleted)
            // A shard another compactor held (a killed one's lease lapses after its TTL) is work left.
            let waited = totals.shardsSkipped > skippedBefore
            if untilIdle && idle && !waited { break }
            if idle { _ = await shutdown.sleep(seconds: waited ? min(config.idleSleepSeconds, config.compaction.leaseTTLSeconds / 2) : config.idleSleepSeconds) }
        }
        logger.info(
            "compaction stopped",
            metadata: [
                "retired": "\(totals.containersRetired)", "written": "\(totals.containersWritten)", "dropped_files": "\(totals.droppedFiles)",
                "objects_deleted": "\(totals.objectsDeleted)",
            ])
        return totals
    }
}

extension Compactor {
    /// The service (`untilIdle`: end after a pass that compacts and deletes nothing).
    public func service(untilIdle: Bool) -> WorkerService<Totals> {
        WorkerService(name: "compact") { shutdown in try await self.run(shutdown: shutdown, untilIdle: untilIdle) }
    }
}

/// The compaction worker's metrics.
struct CompactionMetrics: Sendable {
    let containersRetired = Counter(label: "des_compact_containers_retired_total")
    let liveBytes = Counter(label: "des_compact_live_bytes_total")
    let droppedBytes = Counter(label: "des_compact_dropped_bytes_total")
    let objectsDeleted = Counter(label: "des_compact_objects_deleted_total")
    /// At zero from the start, as the packer's: a `rate()` alert then sees the first rejection.
    let fencingRejections = FencingMetrics.counter(worker: "compactor")
}
