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
    /// With `backlog`, the backlog gauges of the runtime's sources are refreshed beside it.
    func run<Totals: Sendable>(_ worker: WorkerService<Totals>, runtime: Runtime, logger: Logger, backlog: BacklogOptions? = nil) async throws {
        guard let port = metricsPort else {
            if let backlog, backlog.given {
                throw CLIFailure(message: "--backlog-interval, --backlog-cap and --backlog-statuses need --metrics-port: the gauges are served on its /metrics", exitCode: DESExit.usage)
            }
            try await ServiceRunner.run([.init(service: worker, endsGroup: true)], logger: logger)
            return
        }
        var workers: [ServiceRunner.Member] = [.init(service: worker, endsGroup: true)]
        if let backlog, backlog.interval > 0, !runtime.sources.isEmpty {
            let monitor = BacklogMonitor(
                sources: runtime.sources, intervalSeconds: backlog.interval, cap: backlog.cap, statuses: backlog.statuses,
                logger: logger)
            workers.append(.init(service: monitor, endsGroup: false))
        }
        var settings = try ServerSettings(config: runtime.config, baseDirectory: runtime.baseDirectory)
        settings.port = port
        if let metricsHost { settings.host = metricsHost }
        let host = settings.host
        settings.drainSeconds = 0  // a worker's listener has no load balancer to wait for
        try await runtime.serve(
            settings: settings, routes: .observability, readiness: runtime.readiness(),
            workers: workers, logger: logger
        ) { bound in
            // On stderr whatever the log level: with --metrics-port 0 it is how the port is known.
            Terminal.note("metrics and health on http://\(host):\(bound)/metrics")
        }
    }
}

/// The backlog gauges of the marker, the packer and the scanner (with `--metrics-port`).
struct BacklogOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Seconds between refreshes of the backlog gauges des_catalog_rows and des_catalog_oldest_pending_seconds (default 30; 0: off).",
            discussion: "The gauges are served on a worker's --metrics-port /metrics (which they need), or on the /metrics of des serve --marker/--packer."))
    var backlogInterval: Double?

    @Option(help: "The most rows one backlog count reads, per source and status (the gauge stops there; default 100000).")
    var backlogCap: Int?

    @Option(
        help: ArgumentHelp(
            "The statuses counted, comma-separated: unnamed, pending, claimed, failed.",
            discussion: "Unnamed and pending rows are counted on the claim indexes des catalog prepare makes; claimed and failed rows need an index on the status column to be as cheap."))
    var backlogStatuses: String?

    /// Whether any backlog option was given (they need --metrics-port).
    var given: Bool { backlogInterval != nil || backlogCap != nil || backlogStatuses != nil }
    /// --backlog-interval, or its default.
    var interval: Double { backlogInterval ?? 30 }
    /// --backlog-cap, or its default.
    var cap: Int { backlogCap ?? 100_000 }

    /// The statuses of --backlog-statuses.
    var statuses: Set<SourceBacklog.Status> {
        Set((backlogStatuses ?? "unnamed,pending").split(separator: ",").compactMap { SourceBacklog.Status(rawValue: $0.trimmingCharacters(in: .whitespaces)) })
    }

    func validate() throws {
        guard interval.isFinite, interval == 0 || (1...86_400).contains(interval) else {
            throw ValidationError("--backlog-interval must be 0 (off) or 1 to 86400 seconds, got \(interval)")
        }
        guard (1...100_000_000).contains(cap) else {
            throw ValidationError("--backlog-cap must be 1 to 100000000 rows, got \(cap)")
        }
        let names = (backlogStatuses ?? "unnamed,pending").split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        if let bad = names.first(where: { SourceBacklog.Status(rawValue: $0) == nil }) {
            throw ValidationError("--backlog-statuses: '\(bad)' is not one of unnamed, pending, claimed, failed")
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
    /// With `reload`, SIGHUP puts the credentials it returns in force (``CredentialReloader``).
    func serve(
        settings: ServerSettings, routes: DESHTTPServer.Routes, readiness: Readiness,
        workers: [ServiceRunner.Member], logger: Logger, reload: (@Sendable () throws -> ServerCredentials)? = nil,
        onRunning: @escaping @Sendable (Int) async -> Void
    ) async throws {
        let server = DESHTTPServer(
            parts: .init(
                metadata: metadata, storage: storage, cache: cache, shardBits: config.packer.shardBits, readiness: readiness,
                paths: try pathLookup()),
            settings: settings, routes: routes, registry: Observability.registry, logger: logger)
        var reloader: CredentialReloader?
        if let reload { reloader = await CredentialReloader.trapping(server: server, logger: logger, load: reload) }
        var members: [ServiceRunner.Member] =
            [.init(service: try server.application(onRunning: onRunning), endsGroup: false)] + workers
            + [.init(service: DrainGate(readiness: readiness, seconds: settings.drainSeconds), endsGroup: false)]
        // Where files are served, deletes are polled beside them.
        if routes.contains(.files) { members.append(.init(service: server.tombstonePoller, endsGroup: false)) }
        if let reloader { members.append(.init(service: reloader, endsGroup: false)) }
        try await ServiceRunner.run(members, logger: logger)
    }
}
