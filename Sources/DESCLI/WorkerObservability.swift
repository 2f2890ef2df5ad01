import ArgumentParser
import DESEngine
import DESKit
import DESServer
import Logging

/// `--metrics-port` of the workers: `/metrics`, `/health`, `/health/live` and `/health/ready`
/// served beside the worker, in its service group.
struct WorkerObservabilityOptions: ParsableArguments {
    @Option(help: "Serve /metrics and /health* on this port while the worker runs (0: any free port).")
    var metricsPort: Int?

    @Option(help: "The address of --metrics-port (default: server.host of the config).")
    var metricsHost: String?

    func validate() throws {
        if let p = metricsPort, !(0...65_535).contains(p) {
            throw ValidationError("--metrics-port must be 0 to 65535, got \(p)")
        }
    }

    /// Runs `worker` (and the metrics listener, when asked) until it ends or a signal stops it.
    func run<Totals: Sendable>(_ worker: WorkerService<Totals>, runtime: Runtime, logger: Logger) async throws {
        guard let port = metricsPort else {
            try await ServiceRunner.run([.init(service: worker, endsGroup: true)], logger: logger)
            return
        }
        var settings = ServerSettings(config: runtime.config)
        settings.port = port
        if let metricsHost { settings.host = metricsHost }
        let host = settings.host
        settings.drainSeconds = 0  // a worker's listener has no load balancer to wait for
        try await runtime.serve(
            settings: settings, routes: .observability, readiness: runtime.readiness(),
            workers: [.init(service: worker, endsGroup: true)], logger: logger
        ) { bound in
            // On stderr whatever the log level: with --metrics-port 0 it is how the port is known.
            Terminal.note("metrics and health on http://\(host):\(bound)/metrics")
        }
    }
}

extension Runtime {
    /// The readiness of this process: metadata store, storage, every opened source, and `extra`.
    func readiness(extra: [(String, HealthChecker.Probe)] = []) -> Readiness {
        Readiness(
            checker: HealthChecker(
                metadata: metadata, storage: storage, probeKey: config.storage.healthProbeKey, sources: sources, extra: extra,
                timeoutSeconds: config.server.readyTimeoutSeconds))
    }

    /// Runs the HTTP service over this runtime's parts beside `workers`, in one service group:
    /// [listener, workers…, drain gate], so that shutdown drains first and closes the listener last.
    func serve(
        settings: ServerSettings, routes: DESHTTPServer.Routes, readiness: Readiness,
        workers: [ServiceRunner.Member], logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void
    ) async throws {
        let server = DESHTTPServer(
            parts: .init(metadata: metadata, storage: storage, cache: cache, shardBits: config.packer.shardBits, readiness: readiness),
            settings: settings, routes: routes, registry: Observability.registry, logger: logger)
        var members: [ServiceRunner.Member] =
            [.init(service: server.application(onRunning: onRunning), endsGroup: false)] + workers
            + [.init(service: DrainGate(readiness: readiness, seconds: settings.drainSeconds), endsGroup: false)]
        // Where files are served, deletes are polled beside them.
        if routes.contains(.files) { members.append(.init(service: server.tombstonePoller, endsGroup: false)) }
        try await ServiceRunner.run(members, logger: logger)
    }
}
