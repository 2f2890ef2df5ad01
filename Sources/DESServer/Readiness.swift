import DESEngine
import ServiceLifecycle
import Synchronization

/// Whether the process should be sent work: its dependencies' health, and whether it is
/// draining for shutdown. `/health/ready` and `des health` answer from it.
public final class Readiness: Sendable {
    let checker: HealthChecker
    private let draining = Atomic<Bool>(false)
    private struct State {
        var inFlight: Task<HealthReport, Never>?
        var last: (report: HealthReport, at: Double)?
    }
    private let state = Mutex(State())
    /// A report this young is answered again instead of checking anew (probes of many
    /// balancers at once cost one check).
    let reuseSeconds: Double

    /// Readiness over `checker`'s dependencies.
    public init(checker: HealthChecker, reuseSeconds: Double = 0.5) {
        self.checker = checker
        self.reuseSeconds = reuseSeconds
    }

    /// Whether shutdown has begun.
    public var isDraining: Bool { draining.load(ordering: .acquiring) }

    /// From now on the process reports itself not ready (it still serves what it is sent).
    public func beginDraining() { draining.store(true, ordering: .releasing) }

    /// The report: while draining, no dependency is checked (the answer is 503 either way).
    /// Callers at the same time share one check.
    public func report() async -> HealthReport {
        if isDraining { return HealthReport(checks: [], draining: true) }
        let now = monotonicSeconds()
        let task = state.withLock { s -> Task<HealthReport, Never>? in
            if let last = s.last, now - last.at < reuseSeconds { return nil }
            if let running = s.inFlight { return running }
            let checker = self.checker
            let t = Task { await checker.check() }
            s.inFlight = t
            return t
        }
        guard let task else { return state.withLock { $0.last?.report } ?? HealthReport(checks: []) }
        var report = await task.value
        state.withLock { s in
            if s.inFlight == task {
                s.inFlight = nil
                s.last = (report, monotonicSeconds())
            }
        }
        report.draining = isDraining
        return report
    }
}

/// The first service to hear of a graceful shutdown (the last of its group): it turns
/// readiness to 503, then waits `seconds` while requests are still served, so that load
/// balancers stop sending before the listener closes; then the other services stop, in
/// reverse order of the group.
public struct DrainGate: Service, CustomStringConvertible {
    let readiness: Readiness
    let seconds: Double

    /// A gate that drains `readiness` for `seconds`.
    public init(readiness: Readiness, seconds: Double) {
        self.readiness = readiness
        self.seconds = seconds
    }

    /// The service's name in the group's logs.
    public var description: String { "drain" }

    /// Waits for the group's graceful shutdown, then drains.
    public func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            readiness.beginDraining()  // cancelled: stop at once
            return
        }
        readiness.beginDraining()
        if seconds > 0 { try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000))) }
    }
}
