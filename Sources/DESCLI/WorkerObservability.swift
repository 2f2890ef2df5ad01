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
        let readiness = runtime.readiness()
        let server = DESHTTPServer(
            parts: .init(
                metadata: runtime.metadata, storage: runtime.storage, cache: runtime.cache, shardBits: runtime.config.packer.shardBits,
                readiness: readiness),
            settings: settings, routes: .observability, registry: Observability.registry, logger: logger)
        let host = settings.host
        let app = server.application { bound in
            // On stderr whatever the log level: with --metrics-port 0 it is how the port is known.
            Terminal.note("metrics and health on http://\(host):\(bound)/metrics")
        }
        try await ServiceRunner.run(
            [.init(service: app, endsGroup: false), .init(service: worker, endsGroup: true), .init(service: DrainGate(readiness: readiness, seconds: 0), endsGroup: false)],
            logger: logger)
    }
}

extension Runtime {
    /// The readiness of this process: metadata store, storage, every opened source, and `extra`.
    func readiness(extra: [(String, HealthChecker.Probe)] = []) -> Readiness {
        let (metadata, storage, key) = (self.metadata, self.storage, config.storage.prefix + "/.des-health")
        var probes: [(String, HealthChecker.Probe)] = [
            ("metadata", { try await metadata.healthCheck() }),
            ("storage", { _ = try await storage.head(key: key) }),
        ]
        for source in sources { probes.append(("source:\(source.name)", { try await source.healthCheck() })) }
        return Readiness(checker: HealthChecker(probes: probes + extra, timeoutSeconds: config.server.readyTimeoutSeconds))
    }
}
