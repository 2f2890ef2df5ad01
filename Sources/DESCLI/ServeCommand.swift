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
            or $DES_SERVER_TOKENS (comma-separated) name tokens. Responses of /files carry \
            ETag (the sha256), X-DES-Container and X-DES-Shard-Id. Errors are JSON: \
            {"error": {"code", "message"}}: 400 bad name or body, 401, 404 unknown name, \
            413 body too large, 416 bad range, 503 storage or metadata store down.

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

    func validate() throws {
        if let port, !(0...65_535).contains(port) { throw ValidationError("--port must be 0 to 65535, got \(port)") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.serve")
            if packer { LongRunningProcess.boundHeap() }
            let runtime = try await Runtime.open(configPath: options.configPath, needSources: marker || packer, optionalSources: true)
            var settings = ServerSettings(config: runtime.config)
            if let host { settings.host = host }
            if let port { settings.port = port }
            let readiness = runtime.readiness()
            let server = DESHTTPServer(
                parts: .init(
                    metadata: runtime.metadata, storage: runtime.storage, cache: runtime.cache,
                    shardBits: runtime.config.packer.shardBits, readiness: readiness),
                settings: settings, routes: .all, registry: Observability.registry, logger: logger)
            let shownHost = settings.host
            var members: [ServiceRunner.Member] = [
                .init(
                    service: server.application { bound in
                        logger.notice("listening", metadata: ["address": "http://\(shownHost):\(bound)"])
                        Terminal.out("listening on http://\(shownHost):\(bound)\n")
                    }, endsGroup: false)
            ]
            do {
                if marker {
                    let naming = try DESCommandLine.requireRegistry().makeNaming(runtime.config.marker)
                    let m = Marker(
                        sources: runtime.sources, metadata: runtime.metadata, naming: naming, shardBits: runtime.config.packer.shardBits,
                        config: runtime.config.marker, logger: options.logger("des.marker"))
                    members.append(.init(service: m.service(untilIdle: false), endsGroup: false))
                }
                if packer {
                    let p = try Packer(
                        parts: .init(
                            sources: runtime.sources, fetchers: runtime.fetchers, metadata: runtime.metadata, storage: runtime.storage,
                            keyPrefix: runtime.config.storage.prefix),
                        config: runtime.config.packer, logger: options.logger("des.packer"))
                    members.append(.init(service: p.service(untilIdle: false), endsGroup: false))
                }
                members.append(.init(service: DrainGate(readiness: readiness, seconds: settings.drainSeconds), endsGroup: false))
                try await ServiceRunner.run(members, logger: logger)
            } catch {
                await runtime.close()
                throw error
            }
            await runtime.close()
        }
    }
}

struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "The readiness report: metadata store, storage and each enabled source.",
        discussion: """
            Each dependency is opened and checked within --timeout seconds (default: \
            server.ready_timeout_seconds), all at once. Exit 0 when every check passes, \
            69 when one fails (the report names it). The same report as GET /health/ready.

            Examples:
              des health --config configs/local.yaml
              des health --config prod.yaml --json | jq .checks
            """)

    @OptionGroup var options: PipelineOptions
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: "Seconds each check may take.") var timeout: Double?

    func validate() throws {
        if let timeout, !(timeout > 0 && timeout <= 600) { throw ValidationError("--timeout must be more than 0 and at most 600 seconds") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            _ = options.logger("des.health")
            let path = options.configPath
            guard FileManager.default.fileExists(atPath: path) else {
                throw CLIFailure(message: "\(path): no such config file", exitCode: DESExit.noInput)
            }
            let registry = try DESCommandLine.requireRegistry()
            let config = try ConfigLoader.load(path: path, plugins: registry)
            let base = ((path as NSString).deletingLastPathComponent as NSString).standardizingPath
            let baseDirectory = base.isEmpty ? FileManager.default.currentDirectoryPath : base
            // Each probe opens its dependency, checks it and closes it: one that cannot even
            // be opened (a server down) is reported, not fatal to the others.
            var probes: [(String, HealthChecker.Probe)] = [
                (
                    "metadata",
                    {
                        let m = try await registry.makeMetadataStore(config.metadata.connection, baseDirectory: baseDirectory)
                        do { try await m.healthCheck() } catch {
                            await m.close()
                            throw error
                        }
                        await m.close()
                    }
                ),
                (
                    "storage",
                    {
                        let s = try await registry.makeStorage(config.storage, baseDirectory: baseDirectory)
                        do { _ = try await s.head(key: config.storage.prefix + "/.des-health") } catch {
                            await s.close()
                            throw error
                        }
                        await s.close()
                    }
                ),
            ]
            for source in config.enabledSources {
                probes.append(
                    (
                        "source:\(source.name)",
                        {
                            let c = try await registry.makeSource(SourcePluginContext(source: source, baseDirectory: baseDirectory))
                            do { try await c.healthCheck() } catch {
                                await c.close()
                                throw error
                            }
                            await c.close()
                        }
                    ))
            }
            let report = await HealthChecker(probes: probes, timeoutSeconds: timeout ?? config.server.readyTimeoutSeconds).check()
            if json {
                Terminal.out(report.jsonText + "\n")
            } else {
                for c in report.checks {
                    let mark = c.healthy ? "ok    " : "FAILED"
                    Terminal.out("\(mark) \(c.name) (\(String(format: "%.3f", c.seconds)) s)\(c.error.map { ": " + $0 } ?? "")\n")
                }
                Terminal.out(report.healthy ? "healthy\n" : "unhealthy: \(report.failed.joined(separator: ", "))\n")
            }
            if !report.healthy {
                throw ExitCode(DESExit.unavailable)
            }
        }
    }
}
