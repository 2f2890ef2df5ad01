import DESEngine
import Synchronization

/// Keeps a line an attacker can make the server write (a refused bearer token) from filling the
/// log: at most `burst` lines at once and `perSecond` a second after that. The lines held back
/// are counted, and the next one let through says how many (`suppressed`).
final class LogThrottle: Sendable {
    private let bucket: TokenBucket
    private let held = Atomic<Int>(0)

    /// A throttle of `perSecond` lines a second, `burst` at once; `clock` is for tests.
    init(perSecond: Double, burst: Double, clock: @escaping @Sendable () -> Double = monotonicSeconds) {
        bucket = TokenBucket(rate: perSecond, burst: burst, clock: clock)
    }

    /// Whether to write a line now: nil to hold it back (it is counted), else how many were held
    /// back since the last one written.
    func admit() -> Int? {
        guard bucket.tryTake(1) == 0 else {
            held.add(1, ordering: .relaxed)
            return nil
        }
        return held.exchange(0, ordering: .relaxed)
    }
}
