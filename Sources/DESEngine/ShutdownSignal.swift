import Foundation
import Synchronization

/// A one-way "please stop" flag that long-running workers check and sleep on.
///
/// ``WorkerService`` triggers it when its service group shuts down gracefully (SIGINT,
/// SIGTERM) or is cancelled; workers finish or release the batch in hand and return.
public final class ShutdownSignal: Sendable {
    private struct State {
        var triggered = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Timers that fired before their sleeper was registered (the sleeper then does not wait).
        var fired: Set<UInt64> = []
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    /// A signal not yet triggered.
    public init() {}

    /// Whether stopping was asked for.
    public var isTriggered: Bool { state.withLock { $0.triggered } }

    /// Asks every worker to stop; wakes sleepers.
    public func trigger() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.triggered = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }

    /// Sleeps up to `seconds`, returning early (with `false`) when triggered.
    @discardableResult
    public func sleep(seconds: Double) async -> Bool {
        if isTriggered { return false }
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        let timer = Task {
            try? await Task.sleep(nanoseconds: nanoseconds(seconds))
            if !Task.isCancelled { self.wake(id) }  // cancelled: the sleeper was woken already
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.triggered || s.fired.remove(id) != nil { return true }
                s.waiters[id] = c
                return false
            }
            if resumeNow { c.resume() }
        }
        timer.cancel()
        return !isTriggered
    }

    private func wake(_ id: UInt64) {
        let w = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiters.removeValue(forKey: id) { return w }
            s.fired.insert(id)  // the sleeper has not registered yet: it must not wait when it does
            return nil
        }
        w?.resume()
    }
}

/// Seconds as nanoseconds for `Task.sleep`, clamped to 0…one day (no overflow trap on absurd values).
func nanoseconds(_ seconds: Double) -> UInt64 {
    guard seconds.isFinite, seconds > 0 else { return 0 }
    return UInt64(min(seconds, 86_400) * 1e9)
}
