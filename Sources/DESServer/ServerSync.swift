import DESEngine
import DESKit
import ServiceLifecycle
import Synchronization

/// Where the locator asks whether the server follows the store's events now.
final class FollowerLink: Sendable {
    private let follower = Mutex<EventFollower?>(nil)
    func set(_ value: EventFollower) { follower.withLock { $0 = value } }
    var isCurrent: Bool { follower.withLock { $0 }?.isCurrent ?? false }
}

/// Keeps what a server knows current: follows the metadata store's events (new containers and
/// deletes, as they commit) and, behind them, polls the deletes (a fallback while the events
/// cannot be read). Ends with the service group's graceful shutdown.
struct ServerSync: Service {
    let tombstones: TombstoneWatcher
    let follower: EventFollower?

    func run() async throws {
        let shutdown = ShutdownSignal()
        // Ends on the group's graceful shutdown, and on its cancellation too (another service
        // failed, the listener could not bind): the follower's loop watches only `shutdown`.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { try? await tombstones.run() }
                    if let follower { group.addTask { await follower.run(until: shutdown) } }
                }
            } onGracefulShutdown: {
                shutdown.trigger()
            }
        } onCancel: {
            shutdown.trigger()
        }
    }
}
