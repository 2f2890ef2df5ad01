import DESKit
import DESNaming
import Foundation
import Logging
import Synchronization

/// Gives catalog rows their DES names (docs/architecture.md).
///
/// Each batch selects rows needing a name (locked, skipping rows others hold),
/// gives each a name, hash and shard, and writes them back in one statement.
/// A token bucket limits rows per second; transient errors are retried with
/// exponential backoff and jitter; rows that cannot be named go to the
/// dead-letter table.
public struct Marker: Sendable {
    /// Counts of one run.
    public struct Totals: Sendable, Equatable {
        /// Rows named.
        public var marked = 0
        /// Rows that failed for good.
        public var failed = 0
        /// Batches run.
        public var batches = 0
        /// Creates zero totals.
        public init() {}
    }

    let sources: [any SourceConnector]
    let metadata: any MetadataStore
    let naming: any NamingStrategy
    let shardBits: Int
    let config: MarkerConfig
    let logger: Logger
    let bucket: TokenBucket
    let retry: RetryPolicy
    private let metrics = MarkerMetrics()
    /// Rows whose naming failed and whose `markFailed` has not run yet: between the naming
    /// transaction's commit and that update the row looks unnamed, and another worker of this
    /// marker must not take it (it would fail it again and count it twice; the metadata store
    /// keeps one dead letter per row and stage whoever writes it).
    private let failing = FailingRows()

    /// Creates a marker over `sources`.
    public init(
        sources: [any SourceConnector], metadata: any MetadataStore, naming: any NamingStrategy, shardBits: Int,
        config: MarkerConfig, logger: Logger
    ) {
        self.sources = sources
        self.metadata = metadata
        self.naming = naming
        self.shardBits = shardBits
        self.config = config
        self.logger = logger
        self.bucket = TokenBucket(rate: config.rateLimitPerSecond, burst: max(Double(config.batchSize), config.rateLimitPerSecond))
        self.retry = RetryPolicy(maxRetries: config.maxRetries, baseDelay: 0.05 * config.retryBackoffBase, multiplier: config.retryBackoffBase)
    }

    /// One batch on one source. Returns (named, failed).
    public func markBatch(_ source: any SourceConnector) async throws -> (marked: Int, failed: Int) {
        let failures = Mutex<[FailedRow]>([])
        // However the batch ends (marked failed, or thrown), its rows are no longer "failing".
        defer { failing.remove(source.name, failures.withLock { $0.map(\.rowID) }) }
        let (naming, bits) = (self.naming, self.shardBits)
        let start = monotonicSeconds()
        let marked = try await retry.run(onRetry: { error, attempt in
            metrics.retries.increment()
            logger.warning("marker batch failed, retrying", metadata: ["source": "\(source.name)", "attempt": "\(attempt)", "error": "\(error)"])
        }) {
            failures.withLock { previous in  // a retried attempt names its rows afresh
                failing.remove(source.name, previous.map(\.rowID))
                previous = []
            }
            return try await source.nameRows(limit: config.batchSize) { rows in
                var out: [NameAssignment] = []
                out.reserveCapacity(rows.count)
                for row in rows where !failing.contains(source.name, row.rowID) {
                    do {
                        let name = try naming.name(for: row)
                        // One SHA-256 a name: the shard is the top `bits` bits of the 64-bit hash.
                        let hash64 = consistentHash(name, bits: 64)
                        let shard = Int(hash64 >> UInt64(64 - bits))
                        let hash = String(hash64, radix: 16)
                        out.append(NameAssignment(rowID: row.rowID, desName: name, hash: hash, shard: shard))
                    } catch {
                        failing.insert(source.name, row.rowID)  // before this transaction commits
                        failures.withLock { $0.append(FailedRow(rowID: row.rowID, reason: "naming failed: \(error)")) }
                    }
                }
                return out
            }
        }
        metrics.batchDuration.recordSeconds(monotonicSeconds() - start)
        let failed = failures.withLock { $0 }
        if !failed.isEmpty {
            // The letter first: a crash between the two leaves a letter for a row still unnamed (it
            // fails again and keeps that one letter), never a failed row without its letter.
            if config.enableDeadLetterQueue {
                try await metadata.addDeadLetters(
                    failed.map { DeadLetter(source: source.name, rowID: $0.rowID, desName: nil, stage: "marker", reason: $0.reason) })
                metrics.deadLetters.increment(by: failed.count)
            }
            _ = try await source.markFailed(failed, holder: nil)
            metrics.markFailed.increment(by: failed.count)
        }
        if marked > 0 { metrics.marked.increment(by: marked) }
        return (marked, failed.count)
    }

    /// Runs batches over every source until `shutdown` fires, or — with
    /// `untilIdle` — until no source has rows needing a name (a pass in which a batch failed
    /// does not count as idle). `config.concurrency` workers run at once, each taking its own
    /// batches (rows another holds are skipped).
    public func run(shutdown: ShutdownSignal, untilIdle: Bool) async throws -> Totals {
        logger.info(
            "marker started",
            metadata: ["sources": "\(sources.map(\.name))", "batch_size": "\(config.batchSize)", "concurrency": "\(config.concurrency)"])
        let totals = try await withThrowingTaskGroup(of: Totals.self) { group in
            for _ in 0..<max(1, config.concurrency) {
                group.addTask { try await self.work(shutdown: shutdown, untilIdle: untilIdle) }
            }
            var sum = Totals()
            do {
                for try await part in group {
                    sum.marked += part.marked
                    sum.failed += part.failed
                    sum.batches += part.batches
                }
            } catch {
                shutdown.trigger()  // the other workers finish their batch in hand, then stop
                throw error
            }
            return sum
        }
        logger.info("marker stopped", metadata: ["marked": "\(totals.marked)", "failed": "\(totals.failed)"])
        return totals
    }

    /// One worker: batch after batch over every source. With `untilIdle` it ends after a pass
    /// in which no source gave it a row (those other workers hold are theirs to finish).
    private func work(shutdown: ShutdownSignal, untilIdle: Bool) async throws -> Totals {
        var totals = Totals()
        while !shutdown.isTriggered {
            var didWork = false
            var hadError = false
            for source in sources where !shutdown.isTriggered {
                guard await bucket.take(Double(config.batchSize), shutdown: shutdown) else { break }
                do {
                    let (marked, failed) = try await markBatch(source)
                    totals.batches += 1
                    totals.marked += marked
                    totals.failed += failed
                    if marked + failed > 0 { didWork = true }
                } catch {
                    metrics.error(errorType(error))
                    logger.error("marker batch failed", metadata: ["source": "\(source.name)", "error": "\(error)"])
                    if !RetryPolicy.isTransient(error) { throw error }
                    hadError = true  // its rows are unnamed again: this pass proves nothing idle
                }
            }
            if !didWork {
                if untilIdle && !hadError { break }
                await shutdown.sleep(seconds: config.intervalSeconds)
            }
        }
        return totals
    }
}

/// The rows of a marker's workers that failed naming and are not yet marked failed.
final class FailingRows: Sendable {
    private let rows = Mutex<Set<String>>([])
    private func key(_ source: String, _ row: String) -> String { source + "\u{0}" + row }
    func contains(_ source: String, _ row: String) -> Bool { rows.withLock { $0.contains(key(source, row)) } }
    func insert(_ source: String, _ row: String) { _ = rows.withLock { $0.insert(key(source, row)) } }
    func remove(_ source: String, _ ids: [String]) {
        guard !ids.isEmpty else { return }
        rows.withLock { set in for id in ids { set.remove(key(source, id)) } }
    }
}
