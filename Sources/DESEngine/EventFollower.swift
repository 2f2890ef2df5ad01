import DESKit
import Foundation
import Logging
import Metrics
import Synchronization

/// Follows the metadata store's outbox of events (``StoreEvent``): reads what was written after
/// the last event it delivered, hands it to its consumer, then waits for the store's wake-up
/// (PostgreSQL `LISTEN`) or `pollSeconds`, whichever comes first.
///
/// Delivery is at least once and consumers are idempotent by ``StoreEvent/seq``. Sequence
/// numbers are handed out at insert, not at commit, so an event may commit after a later one
/// was read: the follower keeps a watermark below which every number is resolved, re-reads the
/// numbers missing above it (delivering each event once it appears), and gives a missing number
/// up after `gapSeconds` (a rolled-back transaction never fills it). A follower that fell
/// further behind than the outbox keeps (the store prunes the oldest) calls `resync` — the
/// consumer forgets what it cached — and goes on from the oldest event kept.
public final class EventFollower: Sendable {
    /// How it follows.
    public struct Settings: Sendable, Equatable {
        /// How long it waits for a wake-up before reading the outbox anyway.
        public var pollSeconds: Double = 0.25
        /// Events read at once.
        public var batch: Int = 1_000
        /// How long a missing sequence number is waited for.
        public var gapSeconds: Double = 10
        /// The defaults.
        public init() {}
        /// The settings of the config's `events:` section.
        public init(_ events: EventsConfig) {
            pollSeconds = events.pollSeconds
            gapSeconds = events.gapSeconds
        }
    }

    /// Hands events over (in `seq` order, each at most once per follower unless it throws).
    public typealias Deliver = @Sendable ([StoreEvent]) async throws -> Void

    private struct State {
        /// The watermark at which the consumer was last told to start again (one resync per fall-behind).
        var resyncedAt: Int64?
        /// Every number up to here is delivered or given up; nil until the first read.
        var watermark: Int64?
        /// Numbers above the watermark already delivered.
        var seen = Set<Int64>()
        /// Since when the number after the watermark has been missing (monotonic seconds).
        var gapSince: Double?
        /// When the store last answered (monotonic seconds).
        var answeredAt: Double?
    }

    let metadata: any MetadataStore
    let settings: Settings
    let logger: Logger
    private let deliver: Deliver
    private let resync: @Sendable () async -> Void
    private let state: Mutex<State>
    private let lag = Gauge(label: "des_events_lag_seconds")

    /// A follower that starts after event `startAfter` (nil: after the newest event at its first read).
    public init(
        metadata: any MetadataStore, settings: Settings = Settings(), startAfter: Int64? = nil, logger: Logger,
        resync: @escaping @Sendable () async -> Void = {}, deliver: @escaping Deliver
    ) {
        self.metadata = metadata
        self.settings = settings
        self.logger = logger
        self.deliver = deliver
        self.resync = resync
        self.state = Mutex(State(watermark: startAfter))
        // Every kind's counter at zero from the start: a `rate()` then sees the first event.
        for kind in StoreEvent.Kind.allCases { _ = Counter(label: "des_events_published_total", dimensions: [("kind", kind.rawValue)]) }
    }

    /// Every event up to this one has been delivered (or given up); nil before the first read.
    public var watermark: Int64? { state.withLock { $0.watermark } }

    /// Whether the store answered the follower recently (within four polls, and at least 2 s):
    /// while it does, consumers may rely on events instead of asking the store again.
    public var isCurrent: Bool {
        guard let answered = state.withLock({ $0.answeredAt }) else { return false }
        return monotonicSeconds() - answered <= max(2, 4 * settings.pollSeconds)
    }

    /// Reads and delivers what is new; returns how many events were delivered.
    @discardableResult
    public func poll() async throws -> Int {
        guard let watermark = state.withLock({ $0.watermark }) else {
            // The first read: from the store's newest event on (earlier ones concern nothing cached yet).
            let last = try await metadata.eventBounds()?.last ?? 0
            let answered = monotonicSeconds()
            state.withLock { s in
                if s.watermark == nil { s.watermark = last }
                s.answeredAt = answered
            }
            return 0
        }
        let highest = state.withLock { $0.seen.max() } ?? watermark
        let missing = Int(highest - watermark)
        var read = try await metadata.events(afterSeq: highest, limit: settings.batch)
        if missing > 0 {
            // Numbers below the highest delivered that were missing: read again, in case they
            // committed since (a batch at most from the watermark: the work of a poll stays bounded
            // however many events came after a gap; later ones are read once it closes).
            let below = try await metadata.events(afterSeq: watermark, limit: min(missing, settings.batch))
            read = below.filter { $0.seq <= highest } + read  // in seq order, each number once
        }
        if missing == 0, let first = read.first, first.seq > watermark + 1 {
            // Numbers missing right after the watermark: in flight, or pruned because this follower
            // fell behind what the outbox keeps. Pruned ones are older than the oldest kept, and
            // their changes (deletes among them) must not wait for the gap time: start again now.
            try await resyncIfPruned(after: watermark)
        }
        let fresh = state.withLock { s in read.filter { $0.seq > (s.watermark ?? 0) && !s.seen.contains($0.seq) } }
        if !fresh.isEmpty {
            do {
                try await deliver(fresh)
            } catch {
                // Stuck (a relay whose stream is down): the lag is the age of the oldest event not
                // delivered, growing while delivery fails, never the last good value.
                if let oldest = fresh.min(by: { $0.createdAt < $1.createdAt }) {
                    lag.record(max(0, Date().timeIntervalSince1970 - oldest.createdAt))
                }
                throw error
            }
        }
        let now = monotonicSeconds()
        let expired = state.withLock { s in
            s.answeredAt = now
            for event in fresh { s.seen.insert(event.seq) }
            while let w = s.watermark, s.seen.remove(w + 1) != nil { s.watermark = w + 1 }
            if s.seen.isEmpty { s.gapSince = nil } else if s.gapSince == nil { s.gapSince = now }
            return s.gapSince.map { now - $0 >= settings.gapSeconds } ?? false
        }
        if expired {
            // Missing for too long: pruned (the follower fell behind what the outbox keeps), or
            // never committed. Pruned numbers are older than the oldest kept.
            let after = state.withLock { $0.watermark } ?? 0
            if let first = try await resyncIfPruned(after: after) {
                state.withLock { s in
                    if (s.watermark ?? 0) < first - 1 { s.watermark = first - 1 }
                }
            }
            state.withLock { s in giveUpGap(&s) }
        }
        for event in fresh {
            Counter(label: "des_events_published_total", dimensions: [("kind", event.kind.rawValue)]).increment()
        }
        if let newest = fresh.max(by: { $0.createdAt < $1.createdAt }) {
            lag.record(max(0, Date().timeIntervalSince1970 - newest.createdAt))
        } else if read.isEmpty, missing == 0 {
            lag.record(0)  // caught up: nothing waits (the last burst's lag does not linger)
        }
        return fresh.count
    }

    /// When the outbox's oldest event is past `after + 1` (events this follower never read were
    /// pruned), tells the consumer to start again — once for this watermark — and returns that
    /// oldest number; nil when nothing was pruned past it.
    @discardableResult
    private func resyncIfPruned(after: Int64) async throws -> Int64? {
        guard let bounds = try await metadata.eventBounds(), bounds.first > after + 1 else { return nil }
        let first = state.withLock { s -> Bool in
            if s.resyncedAt == after { return false }
            s.resyncedAt = after
            return true
        }
        if first {
            logger.warning(
                "the outbox was pruned past this follower; it starts again from the oldest event kept",
                metadata: ["delivered_up_to": "\(after)", "oldest_kept": "\(bounds.first)"])
            await resync()
        }
        return bounds.first
    }

    /// Moves the watermark past the numbers missing below the lowest delivered one (missing for
    /// too long), and over the delivered ones that follow; a further gap starts its own wait.
    private func giveUpGap(_ s: inout State) {
        guard var w = s.watermark else { return }
        s.seen = s.seen.filter { $0 > w }
        while s.seen.remove(w + 1) != nil { w += 1 }
        if let lowest = s.seen.min() {
            logger.debug("event numbers never appeared; given up", metadata: ["from": "\(w + 1)", "to": "\(lowest - 1)"])
            w = lowest - 1
            while s.seen.remove(w + 1) != nil { w += 1 }
        }
        s.watermark = w
        s.gapSince = s.seen.isEmpty ? nil : monotonicSeconds()
    }

    /// Polls until `shutdown` is triggered: after each read, waits for a wake-up or
    /// `pollSeconds` (at once again when a full batch came). A failed read is logged and tried
    /// again after `pollSeconds`; consumers keep their fallbacks meanwhile (``isCurrent`` turns false).
    public func run(until shutdown: ShutdownSignal) async {
        while !shutdown.isTriggered {
            do {
                if try await poll() >= settings.batch { continue }
            } catch {
                logger.warning("reading the events failed", metadata: ["error": "\(error)"])
                _ = await shutdown.sleep(seconds: settings.pollSeconds)
                continue
            }
            do {
                _ = try await metadata.waitForEvents(timeoutSeconds: settings.pollSeconds)
            } catch {
                _ = await shutdown.sleep(seconds: settings.pollSeconds)
            }
        }
    }
}
