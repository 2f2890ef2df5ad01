import DESKit
import DESNaming
import Foundation
import Logging
import Metrics

/// `des expire`: retention. For each source with `retention`, deletes (tombstones, as
/// `des delete` does) the packed files whose name's day ended longer ago than the retention,
/// and gives the rows of files deleted through the HTTP service (which has no sources) the
/// deleted status.
public struct Expirer: Sendable {
    /// One source and its retention.
    public struct Source: Sendable {
        public var connector: any SourceConnector
        public var retentionSeconds: Double
        /// Creates a source to expire.
        public init(connector: any SourceConnector, retentionSeconds: Double) {
            self.connector = connector
            self.retentionSeconds = retentionSeconds
        }
    }

    /// What a run did.
    public struct Totals: Sendable, Equatable {
        /// Files deleted (in a dry run: that would be).
        public var expired = 0
        /// In a dry run, the names that would be deleted.
        public var wouldExpire: [String] = []
        /// Rows of earlier deletes given the deleted status.
        public var rowsMarked = 0
        public var passes = 0
        /// Creates zero totals.
        public init() {}
    }

    let sources: [Source]
    let deleter: FileDeleter
    let metadata: any MetadataStore
    let batchSize: Int
    let idleSleepSeconds: Double
    let dryRun: Bool
    let clock: @Sendable () -> Double
    let logger: Logger
    let expiredCounter = Counter(label: "des_expire_files_deleted_total")

    /// An expire worker: `sources` have a retention; the deleter's sources get the deleted
    /// status for deletes made elsewhere.
    public init(
        sources: [Source], deleter: FileDeleter, metadata: any MetadataStore, batchSize: Int = 1_000,
        idleSleepSeconds: Double = 60, dryRun: Bool = false, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        logger: Logger
    ) {
        self.sources = sources
        self.deleter = deleter
        self.metadata = metadata
        self.batchSize = batchSize
        self.idleSleepSeconds = idleSleepSeconds
        self.dryRun = dryRun
        self.clock = clock
        self.logger = logger
    }

    /// The newest day (`YYYY-MM-DD`) whose files are past `retention` at `now`: a day expires
    /// once it ended longer ago than the retention. Days compare as text.
    public static func lastExpiredDay(retentionSeconds: Double, now: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: now - retentionSeconds - 86_400))
    }

    /// Whether a file named on `isoDay` is past `retention` at `now`: its whole day ended longer ago.
    public static func isExpired(isoDay: String, retentionSeconds: Double, now: Double) -> Bool {
        isoDay <= lastExpiredDay(retentionSeconds: retentionSeconds, now: now)
    }

    /// Passes until `shutdown`, or with `untilIdle` until a pass deletes nothing.
    public func run(shutdown: ShutdownSignal, untilIdle: Bool) async throws -> Totals {
        var totals = Totals()
        var seq: Int64 = 0
        while !shutdown.isTriggered {
            let before = totals.expired + totals.rowsMarked
            for source in sources where !shutdown.isTriggered {
                try await expire(source, totals: &totals, shutdown: shutdown)
            }
            if !dryRun { seq = try await markDeletedRows(after: seq, totals: &totals) }
            totals.passes += 1
            if dryRun || (untilIdle && totals.expired + totals.rowsMarked == before) { break }
            if totals.expired + totals.rowsMarked == before { _ = await shutdown.sleep(seconds: idleSleepSeconds) }
        }
        logger.info("expire stopped", metadata: ["expired": "\(totals.expired)", "rows_marked": "\(totals.rowsMarked)"])
        return totals
    }

    /// One pass over a source's packed rows (retired bodies included).
    func expire(_ source: Source, totals: inout Totals, shutdown: ShutdownSignal) async throws {
        let cutoff = Self.lastExpiredDay(retentionSeconds: source.retentionSeconds, now: clock())
        var after: String?
        while !shutdown.isTriggered {
            let rows = try await source.connector.packedRows(afterRowID: after, limit: batchSize)
            guard let last = rows.last else { break }
            after = last.rowID
            let old = rows.map(\.desName).filter { name in
                guard let parsed = try? SnowflakeName(parsing: name) else { return false }
                return parsed.isoDay <= cutoff
            }
            if old.isEmpty { continue }
            if dryRun {
                totals.expired += old.count
                totals.wouldExpire += old
                continue
            }
            let days = Int(source.retentionSeconds / 86_400)
            let outcome = try await deleter.delete(names: old, reason: "retention \(days)d of source \(source.connector.name)", origin: "retention")
            totals.expired += outcome.deleted.count
            expiredCounter.increment(by: outcome.deleted.count)
        }
    }

    /// Gives the deleted status to the rows of tombstones after `seq` (deletes made through the
    /// HTTP service, or whose rows could not be marked then); returns the last `seq` read.
    func markDeletedRows(after seq: Int64, totals: inout Totals) async throws -> Int64 {
        let stones = try await metadata.tombstones(afterSeq: seq)
        for start in stride(from: 0, to: stones.count, by: 5_000) {
            let marked = try await deleter.markRows(names: stones[start..<min(stones.count, start + 5_000)].map(\.name))
            totals.rowsMarked += marked.rows
            for problem in marked.problems { logger.warning("rows of deleted files not marked", metadata: ["problem": "\(problem)"]) }
        }
        return stones.last?.seq ?? seq
    }
}

extension Expirer {
    /// The expire worker as a service (`untilIdle`: end after a pass that deletes nothing).
    public func service(untilIdle: Bool) -> WorkerService<Totals> {
        WorkerService(name: "expire") { shutdown in try await self.run(shutdown: shutdown, untilIdle: untilIdle) }
    }
}
