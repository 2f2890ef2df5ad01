import DESKit
import DESNaming
import Foundation
import Logging
import Metrics

/// `des retire`: deletes the bodies of packed rows once it is safe, for the sources that opt in
/// (`bodies.delete_after_pack`).
///
/// A body goes only when all of these hold, checked in this order for each row:
/// 1. the row is packed (its status, read now) and has no open `retire` dead letter;
/// 2. its container is recorded `uploaded`, at least `delete_after_pack` ago;
/// 3. the entry's bytes, read from storage, hash to the sha256 its META records (a container
///    without checksums — the original's — never lets a body go);
/// 4. the body's bytes equal the packed bytes (a body rewritten since it was packed is kept,
///    and dead-lettered with the reason);
/// 5. the body's version (size, and ETag or mtime and inode) is the same just before the delete
///    as just before its bytes were read.
///
/// The body is deleted first and the row marked after: a crash between the two leaves a packed
/// row whose body is gone, which the next pass finds (its entry checked again) and marks. Every
/// step is idempotent, so kill -9 at any point loses nothing and deletes nothing it should not.
public struct Retirer: Sendable {
    /// One source, with what it needs to retire bodies.
    public struct Source: Sendable {
        public var connector: any SourceConnector
        public var fetcher: any BodyFetcher
        /// `bodies.delete_after_pack`, in seconds.
        public var delaySeconds: Double
        /// Creates a source to retire.
        public init(connector: any SourceConnector, fetcher: any BodyFetcher, delaySeconds: Double) {
            self.connector = connector
            self.fetcher = fetcher
            self.delaySeconds = delaySeconds
        }
    }

    /// How the worker runs.
    public struct Config: Sendable {
        /// Rows read (and bodies deleted at most) per batch.
        public var batchSize = 500
        /// The pause between passes when a pass retired nothing (without `--until-idle`).
        public var idleSleepSeconds = 10.0
        /// List what would go; delete and write nothing.
        public var dryRun = false
        /// The shard bits, to find a row's container by its name when the table has no container column.
        public var shardBits = 8
        /// Creates the defaults.
        public init() {}
    }

    /// What a run did.
    public struct Totals: Sendable, Equatable {
        /// Bodies deleted (or, in a dry run, that would be).
        public var deleted = 0
        /// Their bytes.
        public var bytes: UInt64 = 0
        /// Rows not retired in the first pass, by reason (`too_young`, `body_changed`, …): later
        /// passes meet the same rows again, so only the metric counts them.
        public var skipped: [String: Int] = [:]
        /// In a dry run: the bodies that would go, as `source row body`.
        public var wouldDelete: [String] = []
        /// Passes over every source.
        public var passes = 0
        /// Creates zero totals.
        public init() {}
    }

    let sources: [Source]
    let metadata: any MetadataStore
    let storage: any StorageBackend
    let cache: (any IndexCache)?
    let config: Config
    let logger: Logger
    let retry: RetryPolicy
    let metrics = RetireMetrics()

    /// A retire worker over `sources` (those with `delete_after_pack`).
    public init(
        sources: [Source], metadata: any MetadataStore, storage: any StorageBackend, cache: (any IndexCache)?, config: Config,
        logger: Logger, retry: RetryPolicy = RetryPolicy()
    ) {
        self.sources = sources
        self.metadata = metadata
        self.storage = storage
        self.cache = cache
        self.config = config
        self.logger = logger
        self.retry = retry
    }

    /// Passes over every source until `shutdown` fires, or — with `untilIdle` — until a pass
    /// retires nothing (rows waiting for their delay do not keep it running).
    public func run(shutdown: ShutdownSignal, untilIdle: Bool) async throws -> Totals {
        // Before any body goes: every source can record a retired row.
        for source in sources { _ = try await source.connector.markSourceDeleted(rowIDs: []) }
        logger.info(
            "retire started",
            metadata: ["sources": "\(sources.map(\.connector.name))", "dry_run": "\(config.dryRun)", "batch_size": "\(config.batchSize)"])
        var totals = Totals()
        while !shutdown.isTriggered {
            let before = totals.deleted
            for source in sources where !shutdown.isTriggered {
                try await pass(source, totals: &totals, shutdown: shutdown)
            }
            totals.passes += 1
            // A dry run deletes nothing, so a second pass would list the same bodies again.
            if config.dryRun || (untilIdle && totals.deleted == before) { break }
            if totals.deleted == before { _ = await shutdown.sleep(seconds: config.idleSleepSeconds) }
        }
        logger.info("retire stopped", metadata: ["deleted": "\(totals.deleted)", "bytes": "\(totals.bytes)", "skipped": "\(totals.skipped)"])
        return totals
    }

    /// One pass over a source's packed rows, batch by batch in id order.
    func pass(_ source: Source, totals: inout Totals, shutdown: ShutdownSignal) async throws {
        let name = source.connector.name
        let letters = try await retry.run {
            try await metadata.deadLetters(matching: DeadLetterQuery(source: name, stage: "retire", limit: Int(Int32.max)))
        }
        let lettered = Set(letters.map(\.letter.rowID))
        let needed = try await filesNotYetPacked(source)
        var containers = try await uploadedContainers()
        var after: String?
        while !shutdown.isTriggered {
            let rows = try await retry.run { try await source.connector.packedRows(afterRowID: after, limit: config.batchSize) }
            guard let last = rows.last else { break }
            after = last.rowID
            let candidates = rows.filter { !$0.bodyDeleted }
            if candidates.isEmpty { continue }
            try await retireBatch(candidates, of: source, lettered: lettered, needed: needed, containers: &containers, totals: &totals)
        }
    }

    /// The most rows not yet packed whose bodies a pass resolves (one `stat` each).
    static let maxRowsResolved = 2_000_000

    /// The files that the bodies of the source's rows not yet packed reach (one `stat` each, on
    /// local disk), so that a body a packed row spells otherwise is kept for them. Rows named
    /// while the pass runs are compared by key only (``retireBatch``'s step 0).
    func filesNotYetPacked(_ source: Source) async throws -> Set<String> {
        var files: Set<String> = []
        guard source.fetcher.locationsMayAlias else { return files }
        var after: String?
        var count = 0
        while true {
            guard let page = try await retry.run({ try await source.connector.bodiesNotYetPacked(afterRowID: after, limit: 1000) }),
                let last = page.last
            else { break }
            after = last.rowID
            for row in page { if let file = try? await source.fetcher.identity(of: row.body) { files.insert(file) } }
            count += page.count
            if count >= Self.maxRowsResolved {
                logger.warning(
                    "more rows are not yet packed than one pass resolves; beyond these, a body is kept for them only when they spell its key the same",
                    metadata: ["source": "\(source.connector.name)", "resolved": "\(count)"])
                break
            }
        }
        return files
    }

    /// Every recorded container, the uploaded ones with their age.
    func uploadedContainers() async throws -> ContainerChain {
        try await retry.run { try await ContainerChain.load(from: metadata) }
    }
}

/// The retire worker's metrics (`docs/operations.md` lists them).
struct RetireMetrics: Sendable {
    let deleted = Counter(label: "des_retire_bodies_deleted_total")
    let bytes = Counter(label: "des_retire_bytes_deleted_total")
    /// The common reasons, at zero from the start: a `rate()` alert then sees the first skip.
    let knownSkips = ["too_young", "already_gone", "body_changed", "body_missing", "delete_failed", "dead_lettered"].map {
        Counter(label: "des_retire_skipped_total", dimensions: [("reason", $0)])
    }

    func skipped(_ reason: String, count: Int = 1) {
        Counter(label: "des_retire_skipped_total", dimensions: [("reason", reason)]).increment(by: count)
    }
}
