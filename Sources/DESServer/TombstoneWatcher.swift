import DESEngine
import DESKit
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// What a server knows of deletes: every tombstoned name, polled from the metadata store every
/// `server.tombstone_poll_seconds` (by the last sequence number seen, so a poll reads only new
/// deletes). Polling works on every store DES supports; a deleted file stops being served within
/// one poll interval plus the query, with no restart.
///
/// When the store has not answered for ``staleAfterSeconds``, the server can no longer tell
/// whether a file was deleted since, and ``deleted(_:)`` throws `unavailable`: `/files`
/// answers 503 rather than serve a file that may be gone.
final class TombstoneWatcher: Service, Sendable {
    struct State {
        var names = Set<String>()
        var lastSeq: Int64 = 0
        /// When the store last answered a poll (monotonic seconds); nil before the first.
        var answeredAt: Double?
    }

    let metadata: any MetadataStore
    let pollSeconds: Double
    let staleAfterSeconds: Double
    let logger: Logger
    private let state = Mutex(State())
    /// The poll under way, which every caller that needs one awaits (one poll at a time).
    private let inflight = Mutex<Task<Void, any Error>?>(nil)

    /// Deletes re-read behind the last sequence number seen: PostgreSQL and MariaDB hand out
    /// sequence numbers at insert, not at commit, so a delete committed after a later-numbered
    /// one is found by the next poll (unless more than this many deletes came in between).
    static let overlap: Int64 = 256

    init(metadata: any MetadataStore, pollSeconds: Double, logger: Logger) {
        self.metadata = metadata
        self.pollSeconds = pollSeconds
        self.staleAfterSeconds = max(5, 10 * pollSeconds)
        self.logger = logger
    }

    /// Reads the tombstones added since the last poll (and the last ``overlap`` before it);
    /// joins the poll under way, if any.
    func poll() async throws {
        let task = inflight.withLock { current -> Task<Void, any Error> in
            if let current { return current }
            let task = Task {
                defer { self.inflight.withLock { $0 = nil } }
                try await self.read()
            }
            current = task
            return task
        }
        try await task.value
    }

    private func read() async throws {
        let started = monotonicSeconds()
        let from = state.withLock { max(0, $0.lastSeq - Self.overlap) }
        let stones = try await metadata.tombstones(afterSeq: from)
        state.withLock { s in
            s.names.formUnion(stones.map(\.name))
            s.lastSeq = max(s.lastSeq, stones.last?.seq ?? 0)
            s.answeredAt = started
        }
    }

    /// Whether `name` was deleted. Before the first poll answered, and when the store has not
    /// answered for too long, polls (joining a poll under way); if that fails, throws `unavailable`.
    func deleted(_ name: String) async throws -> Bool {
        let answeredAt = state.withLock { $0.answeredAt }
        if answeredAt == nil || monotonicSeconds() - (answeredAt ?? 0) > staleAfterSeconds {
            do {
                try await poll()
            } catch {
                throw DESKitError(.unavailable, "deletes cannot be checked: the metadata store has not answered (\(error))")
            }
        }
        return state.withLock { $0.names.contains(name) }
    }

    /// Adds a name deleted through this server, at once (the next poll reads it too).
    func insert(_ name: String) {
        _ = state.withLock { $0.names.insert(name) }
    }

    /// Polls until the service group shuts down (then returns: stopping is not a failure).
    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    do {
                        try await self.poll()
                    } catch {
                        self.logger.warning("tombstone poll failed", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(nanoseconds: UInt64(self.pollSeconds * 1_000_000_000))
                }
            }
        } catch is CancellationError {
            return
        }
    }
}
