import DESKit
import DESNaming
import Foundation
import Logging

/// `des relay`: publishes the metadata store's events to an ``EventSink`` (a Redis Stream) for
/// consumers outside DES, at least once and in order, from where the sink's cursor says it
/// stopped (from the oldest event kept the first time). The cursor is advanced after each
/// batch is published, so a relay killed in between publishes that batch again.
///
/// One relay publishes to a destination at a time: it holds a lease on it in the metadata
/// store (``leaseShard(for:)``, renewed while it runs), and a second relay started for the same
/// destination stands by until the lease is free (a fleet may run two for availability without
/// publishing everything twice). A relay that loses its lease (paused past its TTL) stops
/// publishing and stands by; what it published meanwhile is at most published twice, never lost.
public struct EventRelay: Sendable {
    /// What a run did.
    public struct Totals: Sendable {
        /// Events published.
        public var published = 0
        /// The cursor at the end (every event up to it published).
        public var cursor: Int64?
        /// Creates empty totals.
        public init() {}
    }

    let metadata: any MetadataStore
    let sink: any EventSink
    let settings: EventFollower.Settings
    let logger: Logger
    let holder: LeaseHolder
    let leaseTTLSeconds: Double

    /// A relay from `metadata`'s outbox to `sink`, holding the destination's lease as `holder`
    /// for `leaseTTLSeconds` at a time (at least four polls; renewed every third of it).
    public init(
        metadata: any MetadataStore, sink: any EventSink, settings: EventFollower.Settings, logger: Logger,
        holder: LeaseHolder = LeaseHolder(pod: "relay", instance: ProcessIdentity.current.token), leaseTTLSeconds: Double = 15
    ) {
        self.metadata = metadata
        self.sink = sink
        self.settings = settings
        self.logger = logger
        self.holder = holder
        // Renewed every third of it, between polls: never shorter than four polls.
        self.leaseTTLSeconds = max(leaseTTLSeconds, settings.pollSeconds * 4)
    }

    /// The lease slot of relays to `destination` in the store's lease table: below the
    /// compaction leases (`-1 - shard`, shards under 2^16), one per destination (its consistent
    /// hash, as names find their shard; two destinations that share a slot only take turns).
    public static func leaseShard(for destination: String) -> Int {
        -(1 << 20) - Int(consistentHash(destination, bits: 20))
    }

    /// Publishes until `shutdown` (with `untilIdle`, until everything the outbox holds is
    /// published; then a failure to publish ends the run with its error instead of a retry, and
    /// another relay holding the destination is ``DESKitError/Code/unavailable``).
    public func run(shutdown: ShutdownSignal, untilIdle: Bool) async throws -> Totals {
        var totals = Totals()
        let slot = Self.leaseShard(for: sink.destination)
        while let lease = try await takeLease(slot, shutdown: shutdown, untilIdle: untilIdle) {
            // Publishes while the lease holds; nil when it was lost (stand by again).
            let held: ShardLease?
            do {
                held = try await publish(&totals, lease: lease, shutdown: shutdown, untilIdle: untilIdle)
            } catch {
                try? await metadata.releaseLease(lease)
                throw error
            }
            if let held {
                try? await metadata.releaseLease(held)
                break
            }
        }
        return totals
    }

    /// The destination's lease, once free (nil: shut down while standing by).
    private func takeLease(_ slot: Int, shutdown: ShutdownSignal, untilIdle: Bool) async throws -> ShardLease? {
        var announced = false
        while !shutdown.isTriggered {
            if let lease = try await metadata.acquireLease(shard: slot, holder: holder, ttlSeconds: leaseTTLSeconds) { return lease }
            let other = try await metadata.leases().first { $0.shard == slot }.map { "\($0.holder)" } ?? "another relay"
            if untilIdle {
                throw DESKitError(.unavailable, "\(other) publishes to \(sink.destination) now: this relay has nothing to do (try again once it stops)")
            }
            if !announced {
                logger.notice("another relay publishes to this destination; standing by", metadata: ["holder": "\(other)", "to": "\(sink.destination)"])
                announced = true
            }
            // Looked at every second (one statement), so a relay that stops hands over at once.
            _ = await shutdown.sleep(seconds: min(1, leaseTTLSeconds / 3))
        }
        return nil
    }

    /// Publishes from the sink's cursor while `lease` holds, renewing it every third of its TTL.
    /// Returns the lease when the run ends (shut down, or idle with `untilIdle`), nil when it was
    /// lost: a relay paused past its TTL stands by, as another may publish now.
    private func publish(_ totals: inout Totals, lease: ShardLease, shutdown: ShutdownSignal, untilIdle: Bool) async throws -> ShardLease? {
        var lease = lease
        var renewed = monotonicSeconds()
        var start = try await sink.cursor() ?? 0
        let newest = try await metadata.eventBounds()?.last ?? 0
        if start > newest {
            // A cursor past every event written: the metadata store was recreated or restored
            // from a backup. Everything it keeps is published (again, for some: consumers skip an
            // id they have seen) rather than nothing until its numbers catch up.
            logger.warning(
                "the relay's cursor is past the newest event: the metadata store was recreated or restored; publishing every event it keeps",
                metadata: ["cursor": "\(start)", "newest": "\(newest)"])
            start = 0
        }
        let (sink, fromStart) = (self.sink, start == 0)
        let follower = EventFollower(
            metadata: metadata, settings: settings, startAfter: start, logger: logger,
            resync: { [logger] in
                // From the start (no cursor yet) nothing was missed: the oldest kept is where a first run begins.
                if !fromStart { logger.warning("events were pruned before they were published; the stream has a gap") }
            },
            deliver: { events in try await sink.publish(events) })
        var cursor = start
        logger.info("relaying events", metadata: ["to": "\(sink.destination)", "after": "\(start)"])
        while !shutdown.isTriggered {
            if monotonicSeconds() - renewed >= leaseTTLSeconds / 3 {
                guard let kept = try await metadata.renewLease(lease, ttlSeconds: leaseTTLSeconds) else {
                    logger.warning("the relay's lease was lost (paused past its TTL?); standing by", metadata: ["to": "\(sink.destination)"])
                    return nil
                }
                (lease, renewed) = (kept, monotonicSeconds())
            }
            let published: Int
            do {
                published = try await follower.poll()
            } catch {
                if untilIdle { throw error }
                logger.warning("publishing events failed; tried again", metadata: ["error": "\(error)"])
                _ = await shutdown.sleep(seconds: min(max(1, settings.pollSeconds), leaseTTLSeconds / 3))
                continue
            }
            totals.published += published
            if let mark = follower.watermark, mark > cursor {
                try await sink.setCursor(mark)
                cursor = mark
            }
            totals.cursor = cursor
            if published >= settings.batch { continue }
            if untilIdle, try await cursor >= (metadata.eventBounds()?.last ?? 0) { break }
            do {
                _ = try await metadata.waitForEvents(timeoutSeconds: min(settings.pollSeconds, leaseTTLSeconds / 3))
            } catch {
                _ = await shutdown.sleep(seconds: min(settings.pollSeconds, leaseTTLSeconds / 3))
            }
        }
        return lease
    }

    /// The relay as a service.
    public func service(untilIdle: Bool) -> WorkerService<Totals> {
        WorkerService(name: "relay") { shutdown in try await self.run(shutdown: shutdown, untilIdle: untilIdle) }
    }
}
