import DESEngine
import DESKit
import DESServer
import Dispatch
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization

/// The process's metrics: one Prometheus registry behind swift-metrics, bootstrapped once,
/// before any plugin or worker makes its first metric. `/metrics` emits it whole.
enum Observability {
    private static let state = Mutex<PrometheusCollectorRegistry?>(nil)

    /// The registry (bootstrapping swift-metrics with it on first use).
    static var registry: PrometheusCollectorRegistry {
        state.withLock { current in
            if let r = current { return r }
            let r = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: r)
            factory.defaultDurationHistogramBuckets = [
                .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
            ]
            MetricsSystem.bootstrap(factory)
            current = r
            return r
        }
    }
}

/// Runs long-running services in one swift-service-lifecycle `ServiceGroup`: SIGTERM and
/// SIGINT shut it down gracefully (services stop in reverse order: the drain gate first,
/// then the workers, then the HTTP listener); a second signal exits at once with 130.
enum ServiceRunner {
    /// One service and what its end means for the group.
    struct Member {
        var service: any Service
        /// A worker run until idle ends the group when it returns; a server never returns by itself.
        var endsGroup: Bool
    }

    static func run(_ members: [Member], logger: Logger) async throws {
        let escalation = SecondSignal(logger: logger)
        defer { escalation.cancel() }
        let services = members.map { m in
            ServiceGroupConfiguration.ServiceConfiguration(
                service: m.service, successTerminationBehavior: m.endsGroup ? .gracefullyShutdownGroup : .cancelGroup,
                failureTerminationBehavior: .cancelGroup)
        }
        var config = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        config.cancellationSignals = []
        try await ServiceGroup(configuration: config).run()
    }
}

/// Watches SIGTERM and SIGINT beside the service group (a signal reaches every dispatch
/// source listening for it): the first is logged, the group shuts down; the second exits.
final class SecondSignal {
    private let sources: [any DispatchSourceSignal]

    init(logger: Logger) {
        let seen = SignalCount()
        sources = [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)  // delivered to the dispatch sources only, not to the default action
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if seen.increment() > 1 { exit(130) }
                logger.notice(
                    "signal received: finishing the work in hand, then stopping (again to exit at once)", metadata: ["signal": "\(sig)"])
            }
            source.resume()
            return source
        }
    }

    func cancel() { sources.forEach { $0.cancel() } }
}

private final class SignalCount: Sendable {
    private let count = Atomic<Int>(0)
    func increment() -> Int { count.wrappingAdd(1, ordering: .relaxed).newValue }
}
