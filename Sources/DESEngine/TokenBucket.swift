import Foundation
import Synchronization

/// A token-bucket rate limiter: `rate` tokens a second, at most `burst` saved up.
/// A rate of 0 means unlimited.
public final class TokenBucket: Sendable {
    private struct State {
        var tokens: Double
        var last: Double
    }
    /// Tokens added per second.
    public let rate: Double
    /// Most tokens held.
    public let burst: Double
    private let state: Mutex<State>
    private let clock: @Sendable () -> Double

    /// Creates a bucket, full.
    public init(rate: Double, burst: Double? = nil, clock: @escaping @Sendable () -> Double = monotonicSeconds) {
        self.rate = max(0, rate)
        self.burst = max(1, burst ?? max(1, rate))
        self.clock = clock
        self.state = Mutex(State(tokens: max(1, burst ?? max(1, rate)), last: clock()))
    }

    /// Takes `count` tokens if they are there; otherwise returns how long to wait for them.
    public func tryTake(_ count: Double) -> Double {
        if rate == 0 { return 0 }
        let now = clock()
        return state.withLock { s in
            s.tokens = min(burst, s.tokens + (now - s.last) * rate)
            s.last = now
            let need = min(count, burst)
            if s.tokens >= need {
                s.tokens -= need
                return 0
            }
            return (need - s.tokens) / rate
        }
    }

    /// Waits until `count` tokens (capped at the burst) are available and takes them.
    /// Returns false if `shutdown` fired while waiting.
    public func take(_ count: Double, shutdown: ShutdownSignal? = nil) async -> Bool {
        while true {
            let wait = tryTake(count)
            if wait <= 0 { return true }
            if let shutdown {
                if !(await shutdown.sleep(seconds: wait)) { return false }
            } else {
                try? await Task.sleep(nanoseconds: nanoseconds(wait))
            }
        }
    }
}

/// Seconds on a monotonic clock.
@Sendable public func monotonicSeconds() -> Double {
    Double(DispatchTime.now().uptimeNanoseconds) / 1e9
}
