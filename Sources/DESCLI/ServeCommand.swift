import ArgumentParser
import DESEngine
import DESKit
import DESServer
import Foundation

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "The HTTP service: name assignment, file retrieval by name, health, metrics.",
        discussion: """
            Routes:
              POST /assign            {"prefix": "IMG", "count": 10} -> {"name", "shard_id", "day"} (a list with count)
              GET  /files/{name}      the file's bytes, found from the name alone; Range gives 206
              HEAD /files/{name}      size and existence
              GET  /health            alive, with uptime
              GET  /health/live       the process answers
              GET  /health/ready      metadata store, storage and each enabled source; 503 naming what failed
              GET  /metrics           Prometheus text

            /assign and /files take 'Authorization: Bearer <token>' when server.auth_tokens \
            or $DES_SERVER_TOKENS (comma-separated) name tokens, or server.jwt accepts JWTs \
            of an identity provider (verified against its JWKS or PEM keys: signature, exp, \
            nbf, aud, iss; writes — /assign, DELETE /files — need the write scope, else 403). \
            A refused token gets a bare 401; the log says why. SIGHUP reads the config again \
            and puts its tokens and JWT keys in force. Responses of /files carry \
            ETag (the sha256), X-DES-Container and X-DES-Shard-Id. Errors are JSON: \
            {"error": {"code", "message", "request_id"}} (the id is X-Request-Id's, also in \
            the log line): 400 bad name or body, 401, 404 unknown name, 413 body too large, \
            416 bad range, 500 corrupt container, 502 a body that does not match its \
            sha256, 503 storage or metadata store down (with Retry-After). Every body is \
            checked against the sha256 its META records before it is served.

            The server keeps connections to the metadata store and the storage. It connects \
            to the catalogs (sources) only to run --marker or --packer; without them, \
            /health/ready connects to each enabled source when asked, so a catalog that is \
            down does not keep the server from starting and serving files.

            SIGTERM or SIGINT: readiness turns 503 for server.drain_seconds while requests \
            are still served, then the listener closes after the requests in flight; with \
            --marker or --packer, the workers finish their work in hand (open containers are \
            finalised and uploaded) before it does. A second signal exits at once (130).

            Examples:
              des serve --config configs/local.yaml
              des serve --config prod.yaml --host 0.0.0.0 --port 8080 --packer
              curl -s -XPOST localhost:8080/assign -d '{"prefix":"IMG","count":2}'
            """)

    @OptionGroup var options: PipelineOptions
    @Option(help: "The address to listen on (default: server.host, 127.0.0.1).") var host: String?
    @Option(help: "The port to listen on (default: server.port, 8080; 0: any free port, printed).") var port: Int?
    @Flag(help: "Also run the marker in this process (its metrics join /metrics).") var marker = false
    @Flag(help: "Also run the packer in this process (its metrics join /metrics).") var packer = false
    @OptionGroup(title: "Backlog gauges (with --marker or --packer)") var backlog: BacklogOptions

    func validate() throws {
        if let port, !(0...65_535).contains(port) { throw ValidationError("--port must be 0 to 65535, got \(port)") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.serve")
            // Sources are opened only for the workers. A server alone checks each enabled source
            // by connecting when asked whether it is ready: an upstream catalog that is down does
            // not stop it from starting and serving files, its readiness just says so.
            let runsWorker = marker || packer
            if backlog.given && !runsWorker {
                throw CLIFailure(
                    message: "--backlog-interval, --backlog-cap and --backlog-statuses need --marker or --packer: the server alone opens no sources to count",
                    exitCode: DESExit.usage)
            }
            let runtime = try await Runtime.open(configPath: options.configPath, needSources: runsWorker, pathSources: true)
            var settings = try ServerSettings(config: runtime.config, baseDirectory: runtime.baseDirectory)
            settings.credentials.logSkippedKeys(logger)
            if !settings.credentials.isConfigured {
                logger.notice("no credentials (server.auth_tokens, DES_SERVER_TOKENS, server.jwt): /assign and /files are open, deletes refused")
            }
            if let host { settings.host = host }
            if let port { settings.port = port }
            let readiness: Readiness
            if runsWorker {
                readiness = runtime.readiness()
            } else {
                let registry = try DESCommandLine.requireRegistry()
                // A source opened for reading by path is checked as opened (the checker keeps the first probe of a name).
                readiness = runtime.readiness(
                    extra: HealthProbes.sources(runtime.config, baseDirectory: runtime.baseDirectory, registry: registry))
            }
            let shownHost = settings.host
            let scheme = settings.tls == nil ? "http" : "https"
            try await runtime.closing {
                var workers: [ServiceRunner.Member] = []
                if marker {
                    workers.append(.init(service: try runtime.marker(logger: options.logger("des.marker")).service(untilIdle: false), endsGroup: false))
                }
                if packer {
                    workers.append(.init(service: try runtime.packer(logger: options.logger("des.packer")).service(untilIdle: false), endsGroup: false))
                }
                if runsWorker, backlog.interval > 0, !runtime.sources.isEmpty {
                    // The backlog gauges (des_catalog_rows, des_catalog_oldest_pending_seconds) join /metrics, as a worker's --metrics-port has them.
                    let monitor = BacklogMonitor(
                        sources: runtime.sources, intervalSeconds: backlog.interval, cap: backlog.cap, statuses: backlog.statuses,
                        logger: options.logger("des.backlog"))
                    workers.append(.init(service: monitor, endsGroup: false))
                }
                let configPath = options.configPath
                let reload: @Sendable () throws -> ServerCredentials = {
                    let (config, base, _) = try Runtime.loadConfig(configPath)
                    return try ServerCredentials(config: config, baseDirectory: base)
                }
                try await runtime.serve(
                    settings: settings, routes: .all, readiness: readiness, workers: workers, logger: logger, reload: reload
                ) { bound in
                    logger.notice("listening", metadata: ["address": "\(scheme)://\(shownHost):\(bound)"])
                    Terminal.out("listening on \(scheme)://\(shownHost):\(bound)\n")
                }
            }
        }
    }
}
