import DESKit
import Foundation
import Logging

/// `des relay`: publishes the metadata store's events to an ``EventSink`` (a Redis Stream) for
/// consumers outside DES, at least once and in order, from where the sink's cursor says it
/// stopped (from the oldest event kept the first time). The cursor is advanced after each
/// batch is published, so a relay killed in between publishes that batch again.
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

    /// A relay from `metadata`'s outbox to `sink`.
    public init(metadata: any MetadataStore, sink: any EventSink, settings: EventFollower.Settings, logger: Logger) {
        self.metadata = metadata
        self.sink = sink
        self.settings = settings
        self.logger = logger
    }

    /// Publishes until `shutdown` (with `untilIdle`, until everything the outbox holds is
    /// published; then a failure to publish ends the run with its error instead of a retry).
    public func run(shutdown: ShutdownSignal, untilIdle: Bool) async throws -> Totals {
        var totals = Totals()
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
        let sink = self.sink
        let follower = EventFollower(
            metadata: metadata, settings: settings, startAfter: start, logger: logger,
            resync: { [logger] in logger.warning("events were pruned before they were published; the stream has a gap") },
            deliver: { events in try await sink.publish(events) })
        var cursor = start
        logger.info("relaying events", metadata: ["to": "\(sink.destination)", "after": "\(start)"])
        while !shutdown.isTriggered {
            let published: Int
            do {
                published = try await follower.poll()
            } catch {
                if untilIdle { throw error }
                logger.warning("publishing events failed; tried again", metadata: ["error": "\(error)"])
                _ = await shutdown.sleep(seconds: max(1, settings.pollSeconds))
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
                _ = try await metadata.waitForEvents(timeoutSeconds: settings.pollSeconds)
            } catch {
                _ = await shutdown.sleep(seconds: settings.pollSeconds)
            }
        }
        return totals
    }

    /// The relay as a service.
    public func service(untilIdle: Bool) -> WorkerService<Totals> {
        WorkerService(name: "relay") { shutdown in try await self.run(shutdown: shutdown, untilIdle: untilIdle) }
    }
}
