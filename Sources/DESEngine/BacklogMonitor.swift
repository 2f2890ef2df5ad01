import DESKit
import Logging
import Metrics
import ServiceLifecycle

/// Refreshes the backlog gauges of every source on an interval, beside a worker that serves
/// `/metrics`:
/// - `des_catalog_rows{source,status}`: rows of each of ``statuses`` (unnamed and pending by
///   default; claimed and failed on request), each count stopping at ``cap``;
/// - `des_catalog_oldest_pending_seconds{source}`: the age of the oldest pending row, for
///   sources whose catalog maps `created_at` (NaN while it cannot be told: rows pending with no
///   creation time, or one that is not a time, which is logged once).
///
/// A refresh that fails is logged (once until one succeeds again) and sets the source's gauges
/// to NaN, so that nothing stale is read as current; the worker it runs beside never stops for it.
public struct BacklogMonitor: Service, CustomStringConvertible {
    /// The sources counted.
    public let sources: [any SourceConnector]
    /// Seconds between refreshes.
    public let intervalSeconds: Double
    /// The most rows one count reads.
    public let cap: Int
    /// The statuses counted.
    public let statuses: Set<SourceBacklog.Status>
    let logger: Logger

    /// A monitor of `sources` refreshed every `intervalSeconds`, counting at most `cap` rows of each of `statuses`.
    public init(
        sources: [any SourceConnector], intervalSeconds: Double, cap: Int, statuses: Set<SourceBacklog.Status> = [.unnamed, .pending],
        logger: Logger
    ) {
        self.sources = sources
        self.intervalSeconds = intervalSeconds
        self.cap = cap
        self.statuses = statuses
        self.logger = logger
    }

    /// The service's name in the group's logs.
    public var description: String { "backlog" }

    /// Refreshes until the group shuts down.
    public func run() async throws {
        var failing: Set<String> = []
        var unreadable: Set<String> = []
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            for source in sources {
                do {
                    let backlog = try await refresh(source)
                    failing.remove(source.name)
                    if let value = backlog?.unreadableCreatedAt, unreadable.insert(source.name).inserted {
                        logger.warning(
                            "the oldest pending row's created_at is not a time: des_catalog_oldest_pending_seconds is NaN",
                            metadata: ["source": "\(source.name)", "value": "\(value)"])
                    }
                } catch is CancellationError {
                    return
                } catch {
                    unknown(source)
                    if failing.insert(source.name).inserted {
                        logger.warning("backlog gauges not refreshed (NaN until they are)", metadata: ["source": "\(source.name)", "error": "\(error)"])
                    }
                }
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(intervalSeconds * 1000))) }
            } catch {
                return
            }
        }
    }

    /// Counts `source` once and sets its gauges.
    @discardableResult
    public func refresh(_ source: any SourceConnector) async throws -> SourceBacklog? {
        guard let backlog = try await source.backlog(cap: cap, statuses: statuses) else { return nil }
        for status in SourceBacklog.Status.allCases where statuses.contains(status) {
            rows(source, status).record(backlog.rows[status] ?? 0)
        }
        if let age = backlog.oldestPendingSeconds { oldest(source).record(age) }
        return backlog
    }

    /// The source's gauges as NaN: its catalog did not answer.
    func unknown(_ source: any SourceConnector) {
        for status in SourceBacklog.Status.allCases where statuses.contains(status) { rows(source, status).record(Double.nan) }
        oldest(source).record(Double.nan)
    }

    private func rows(_ source: any SourceConnector, _ status: SourceBacklog.Status) -> Gauge {
        Gauge(label: "des_catalog_rows", dimensions: [("source", source.name), ("status", status.rawValue)])
    }

    private func oldest(_ source: any SourceConnector) -> Gauge {
        Gauge(label: "des_catalog_oldest_pending_seconds", dimensions: [("source", source.name)])
    }
}
