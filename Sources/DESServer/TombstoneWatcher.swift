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
    /// One poll at a time (a request that finds the list stale polls itself).
    private let polling = Mutex(false)

    init(metadata: any MetadataStore, pollSeconds: Double, logger: Logger) {
        self.metadata = metadata
        self.pollSeconds = pollSeconds
        self.staleAfterSeconds = max(5, 10 * pollSeconds)
        self.logger = logger
    }

    /// Reads the tombstones added since the last poll.
    func poll() async throws {
        guard polling.withLock({ busy in defer { busy = true }; return !busy }) else { return }
        defer { polling.withLock { $0 = false } }
        var seq = state.withLock { $0.lastSeq }
        let started = monotonicSeconds()
        while true {
            let page = try await metadata.tombstones(afterSeq: seq, limit: 10_000)
            guard let last = page.last else { break }
            seq = last.seq
            state.withLock { s in
                s.names.formUnion(page.map(\.name))
                s.lastSeq = seq
            }
            if page.count < 10_000 { break }
        }
        state.withLock { $0.answeredAt = started }
    }

    /// Whether `name` was deleted. Before the first poll, polls; when the store has not answered
    /// for too long, throws `unavailable`.
    func deleted(_ name: String) async throws -> Bool {
        let answeredAt = state.withLock { $0.answeredAt }
        if answeredAt == nil || monotonicSeconds() - (answeredAt ?? 0) > staleAfterSeconds {
            do {
                try await poll()
            } catch {
                throw DESKitError(.unavailable, "deletes cannot be checked: the metadata store has not answered (\(error))")
            }
            if state.withLock({ $0.answeredAt }) == nil {
                throw DESKitError(.unavailable, "deletes cannot be checked yet")
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
