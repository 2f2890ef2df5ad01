import DESEngine
import ServiceLifecycle
import Synchronization

/// Whether the process should be sent work: its dependencies' health, and whether it is
/// draining for shutdown. `/health/ready` and `des health` answer from it.
public final class Readiness: Sendable {
    let checker: HealthChecker
    private let draining = Atomic<Bool>(false)

    /// Readiness over `checker`'s dependencies.
    public init(checker: HealthChecker) {
        self.checker = checker
    }

    /// Whether shutdown has begun.
    public var isDraining: Bool { draining.load(ordering: .acquiring) }

    /// From now on the process reports itself not ready (it still serves what it is sent).
    public func beginDraining() { draining.store(true, ordering: .releasing) }

    /// The report: while draining, no dependency is checked (the answer is 503 either way).
    public func report() async -> HealthReport {
        if isDraining { return HealthReport(checks: [], draining: true) }
        var report = await checker.check()
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
