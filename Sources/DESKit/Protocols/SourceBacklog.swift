/// How much work a source holds, counted on an interval: each count stops at a cap, so that it
/// reads at most `cap` entries of an index on the status (the claim indexes `des catalog prepare`
/// makes cover unnamed and pending rows; claimed and failed rows need an index of their own to be
/// as cheap), and the oldest pending row is one `MIN(created_at)` over the pending rows (cheap
/// with an index on the status and `created_at`; without one it reads every pending row).
///
/// The `des_catalog_rows{source,status}` and `des_catalog_oldest_pending_seconds{source}`
/// gauges of the workers are these values.
public struct SourceBacklog: Sendable, Equatable {
    /// The statuses counted, in this order: rows without a DES name, named rows waiting for a
    /// packer, rows a packer holds, rows that failed.
    public enum Status: String, Sendable, CaseIterable {
        case unnamed, pending, claimed, failed
    }

    /// Rows per status, each at most the cap it was counted with.
    public var rows: [Status: Int]
    /// The age in seconds of the oldest pending row by the catalog's `created_at`: 0 when none is
    /// pending, NaN when rows are pending but the oldest creation time is not known (NULL, or
    /// not a time), nil when the source maps no creation time.
    public var oldestPendingSeconds: Double?
    /// The oldest `created_at` value when it could not be read as a time (for a warning).
    public var unreadableCreatedAt: String?

    /// A backlog of `rows` with the oldest pending row `oldestPendingSeconds` old.
    public init(rows: [Status: Int] = [:], oldestPendingSeconds: Double? = nil) {
        self.rows = rows
        self.oldestPendingSeconds = oldestPendingSeconds
    }
}

extension SourceConnector {
    /// A source that cannot count its work cheaply reports none: its gauges are not exported.
    public func backlog(cap: Int, statuses: Set<SourceBacklog.Status>) async throws -> SourceBacklog? { nil }
}
