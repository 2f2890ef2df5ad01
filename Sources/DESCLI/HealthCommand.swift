import ArgumentParser
import DESEngine
import DESKit
import DESServer
import Foundation

struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "The readiness report: metadata store, storage and each enabled source.",
        discussion: """
            Each dependency is opened and checked within --timeout seconds (default: \
            server.ready_timeout_seconds), all at once. Exit 0 when every check passes, \
            69 when one fails (the report names it; a server that refuses the \
            password says "authentication failed", naming the server and the user, \
            never the password). The same report as GET /health/ready, plus the index \
            cache when it is on a server of its own (cache.type: redis).

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
            let (config, baseDirectory, registry) = try Runtime.loadConfig(options.configPath)
            // Each probe opens its dependency, checks it and closes it: one that cannot even
            // be opened (a server down) is reported, not fatal to the others.
            let cache = await HealthProbes.cache(config, registry: registry)
            let probes =
                HealthProbes.metadata(config, baseDirectory: baseDirectory, registry: registry)
                + HealthProbes.storage(config, baseDirectory: baseDirectory, registry: registry)
                + HealthProbes.sources(config, baseDirectory: baseDirectory, registry: registry)
                + cache.probes
            let report = await HealthChecker(probes: probes, timeoutSeconds: timeout ?? config.server.readyTimeoutSeconds).check()
            await cache.close()
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

/// Readiness probes that open their dependency, check it and close it: for a process that
/// keeps no connection to it (`des health`; the sources of a `des serve` that runs no worker).
enum HealthProbes {
    static func metadata(_ config: DESConfig, baseDirectory: String, registry: PluginRegistry) -> [(String, HealthChecker.Probe)] {
        [
            (
                "metadata",
                {
                    try await opened(
                        { try await registry.makeMetadataStore(config.metadata.connection, baseDirectory: baseDirectory) },
                        check: { try await $0.healthCheck() }, close: { await $0.close() })
                }
            )
        ]
    }

    static func storage(_ config: DESConfig, baseDirectory: String, registry: PluginRegistry) -> [(String, HealthChecker.Probe)] {
        [
            (
                "storage",
                {
                    try await opened(
                        { try await registry.makeStorage(config.storage, baseDirectory: baseDirectory) },
                        check: { _ = try await $0.head(key: config.storage.healthProbeKey) }, close: { await $0.close() })
                }
            )
        ]
    }

    /// The index cache, when it lives on a server of its own (a ``CheckableIndexCache``: Redis);
    /// none for an in-process cache. `close` releases the cache once the report is made.
    static func cache(_ config: DESConfig, registry: PluginRegistry) async -> (probes: [(String, HealthChecker.Probe)], close: () async -> Void) {
        do {
            let cache = try await registry.makeIndexCache(config.cache)
            guard let checkable = cache as? any CheckableIndexCache else {
                await cache.close()
                return ([], {})
            }
            return ([("cache", { try await checkable.healthCheck() })], { await checkable.close() })
        } catch {
            let failure = error
            return ([("cache", { throw failure })], {})
        }
    }

    static func sources(_ config: DESConfig, baseDirectory: String, registry: PluginRegistry) -> [(String, HealthChecker.Probe)] {
        config.enabledSources.map { source in
            (
                "source:\(source.name)",
                {
                    try await opened(
                        { try await registry.makeSource(Runtime.sourceContext(source, config: config, baseDirectory: baseDirectory, registry: registry)) },
                        check: { try await $0.healthCheck() }, close: { await $0.close() })
                }
            )
        }
    }
}

/// Opens a dependency, checks it and closes it, whatever the check says.
private func opened<T>(
    _ open: () async throws -> T, check: (T) async throws -> Void, close: (T) async -> Void
) async throws {
    let value = try await open()
    do {
        try await check(value)
    } catch {
        await close(value)
        throw error
    }
    await close(value)
}
