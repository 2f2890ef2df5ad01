/// A change the metadata store announces, written in the same transaction as the change
/// itself (an outbox): whoever follows the store's events learns of every committed change,
/// and of nothing that was rolled back.
///
/// Delivery is at least once: a follower may see an event twice (after a restart, or when it
/// re-reads behind a gap), so consumers are idempotent by ``seq``, the event's id.
public struct StoreEvent: Sendable, Hashable, Codable {
    /// What changed.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// A container was recorded uploaded (packed, compacted, recovered or rebuilt): its files can be served.
        case containerUploaded = "container_uploaded"
        /// A container was replaced by compaction (its object stays readable for the grace period).
        case containerRetired = "container_retired"
        /// A retired container's object was deleted, or a recorded one was found missing.
        case containerDeleted = "container_deleted"
        /// A file was deleted (``name``).
        case tombstone
        /// A source body was retired after packing (``source`` and ``rowID``).
        case sourceRetired = "source_retired"
    }

    /// The event's id: increasing in the order events were written (not always in commit order).
    public var seq: Int64
    /// What changed.
    public var kind: Kind
    /// The container concerned (container events; the container a tombstone names).
    public var containerID: Int64?
    /// Its storage key (container events).
    public var containerKey: String?
    /// Its day, `YYYY-MM-DD` (container events).
    public var day: String?
    /// Its shard (container events).
    public var shard: Int?
    /// The DES name (tombstones).
    public var name: String?
    /// The source (retirements).
    public var source: String?
    /// The catalog row's id (retirements).
    public var rowID: String?
    /// When it was written (database time, seconds since the epoch).
    public var createdAt: Double

    /// An event.
    public init(
        seq: Int64, kind: Kind, containerID: Int64? = nil, containerKey: String? = nil, day: String? = nil, shard: Int? = nil,
        name: String? = nil, source: String? = nil, rowID: String? = nil, createdAt: Double
    ) {
        self.seq = seq
        self.kind = kind
        self.containerID = containerID
        self.containerKey = containerKey
        self.day = day
        self.shard = shard
        self.name = name
        self.source = source
        self.rowID = rowID
        self.createdAt = createdAt
    }
}

/// A connection that waits for the store's wake-ups (PostgreSQL `LISTEN`): a hint that events
/// may have been written, never the events themselves, which are always read from the outbox.
public protocol SQLEventListener: AnyObject, Sendable {
    /// Waits up to `timeoutSeconds` for a wake-up; true when one came (several count as one).
    func wait(timeoutSeconds: Double) async throws -> Bool
    /// Closes the connection.
    func close() async
}

/// Where `des relay` publishes the metadata store's events for consumers outside DES (a Redis
/// Stream with the stock plugin). Publishing is at least once: the relay records how far it got
/// with ``setCursor(_:)`` after publishing, and starts from ``cursor()`` again, so a crash in
/// between publishes some events twice; consumers are idempotent by the event's `id` (its `seq`).
public protocol EventSink: Sendable {
    /// Publishes `events`, in order.
    func publish(_ events: [StoreEvent]) async throws
    /// The last event number recorded as published (nil: none yet).
    func cursor() async throws -> Int64?
    /// Records that every event up to `seq` was published.
    func setCursor(_ seq: Int64) async throws
    /// A short description of where it publishes (no secrets), for logs.
    var destination: String { get }
    /// Closes connections.
    func close() async
}
