import Foundation
import Synchronization

/// A thread of its own for blocking calls (C database drivers), with `async`
/// entry points: jobs run one at a time, in order, never on the cooperative pool.
public final class DedicatedThread: Sendable {
    private final class JobQueue: Sendable {
        struct State {
            var jobs: [@Sendable () -> Void] = []
            var stopped = false
        }
        let state = Mutex(State())
        let signal = DispatchSemaphore(value: 0)

        func loop() {
            while true {
                signal.wait()
                let (job, stopped): ((@Sendable () -> Void)?, Bool) = state.withLock { s in
                    (s.jobs.isEmpty ? nil : s.jobs.removeFirst(), s.stopped)
                }
                if let job {
                    job()
                } else if stopped {
                    return
                }
            }
        }
    }

    private let queue = JobQueue()

    /// Starts the thread.
    public init(name: String) {
        let queue = self.queue
        let thread = Thread { queue.loop() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Runs `body` on the thread and returns its result.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let accepted = queue.state.withLock { s -> Bool in
                if s.stopped { return false }
                s.jobs.append { continuation.resume(with: Result { try body() }) }
                return true
            }
            if accepted {
                queue.signal.signal()
            } else {
                continuation.resume(throwing: DESKitError(.unavailable, "connection thread is stopped"))
            }
        }
    }

    /// Stops the thread after the queued jobs.
    public func stop() {
        queue.state.withLock { $0.stopped = true }
        queue.signal.signal()
    }
}
