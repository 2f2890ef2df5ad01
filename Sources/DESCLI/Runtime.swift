import ArgumentParser
import DESEngine
import DESKit
import Foundation
import Logging
import Synchronization

/// Everything a pipeline command needs, built from a config file through the plugin registry.
struct Runtime {
    let config: DESConfig
    let baseDirectory: String
    let sources: [any SourceConnector]
    let fetchers: [String: any BodyFetcher]
    let metadata: any MetadataStore
    let storage: any StorageBackend
    /// The index cache of `cache:` (readers of single files use it).
    let cache: any IndexCache

    /// Loads the config and opens metadata and storage, and with `needSources` every enabled
    /// source (at least one must be); without, but with `pathSources`, the enabled sources whose
    /// files can be found by path (their catalogs live in the metadata store).
    static func open(configPath: String, needSources: Bool = true, pathSources: Bool = false) async throws -> Runtime {
        _ = Observability.registry  // metrics are bootstrapped before any plugin or worker makes one
        let (config, baseDirectory, registry) = try loadConfig(configPath)
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : ((baseDirectory as NSString).appendingPathComponent(path) as NSString).standardizingPath
        }
        // The metadata store first: a source whose catalog DES keeps there (a filesystem source) opens its database.
        let metadata = try await registry.makeMetadataStore(config.metadata.connection, baseDirectory: baseDirectory)
        (metadata as? SQLMetadataStore)?.eventRetention = config.events.retain
        var sources: [any SourceConnector] = []
        var fetchers: [String: any BodyFetcher] = [:]
        if needSources {
            if config.enabledSources.isEmpty {
                throw CLIFailure(message: "\(configPath): no enabled sources", exitCode: DESExit.dataError)
            }
            for source in config.enabledSources {
                sources.append(try await registry.makeSource(sourceContext(source, config: config, baseDirectory: baseDirectory, registry: registry)))
                fetchers[source.name] = try await registry.makeBodyFetcher(source, baseDirectory: baseDirectory)
            }
        } else if pathSources {
            for source in config.enabledSources where registry.hasPathIndex(type: source.connection.type) {
                sources.append(try await registry.makeSource(sourceContext(source, config: config, baseDirectory: baseDirectory, registry: registry)))
            }
        }
        let storage = ErrorCountingStorage(base: try await registry.makeStorage(config.storage, baseDirectory: baseDirectory))
        let cache = try await registry.makeIndexCache(config.cache)
        var resolved = config
        resolved.packer.workDir = resolve(config.packer.workDir)
        return Runtime(
            config: resolved, baseDirectory: baseDirectory, sources: sources, fetchers: fetchers, metadata: metadata,
            storage: storage, cache: cache)
    }

    /// What a source plugin is made from: the source, the config's directory, the metadata
    /// store's connection and the registry.
    static func sourceContext(_ source: SourceConfig, config: DESConfig, baseDirectory: String, registry: PluginRegistry) -> SourcePluginContext {
        SourcePluginContext(source: source, baseDirectory: baseDirectory, metadata: config.metadata.connection, registry: registry)
    }

    /// The config at `path` (checked against the registry's plugins), the directory its relative
    /// paths start from, and the registry.
    static func loadConfig(_ path: String) throws -> (DESConfig, String, PluginRegistry) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIFailure(message: "\(path): no such config file", exitCode: DESExit.noInput)
        }
        let registry = try DESCommandLine.requireRegistry()
        let config = try ConfigLoader.load(path: path, plugins: registry)
        return (config, baseDirectory(of: path), registry)
    }

    /// The directory relative paths of the config file at `path` are read from: its own.
    static func baseDirectory(of path: String) -> String {
        let base = ((path as NSString).deletingLastPathComponent as NSString).standardizingPath
        return base.isEmpty ? FileManager.default.currentDirectoryPath : base
    }

    /// Files found by path, through the opened sources that keep paths.
    func pathLookup() throws -> PathLookup {
        let registry = try DESCommandLine.requireRegistry()
        var indexes: [any PathIndex] = []
        for connector in sources {
            guard let source = config.enabledSources.first(where: { $0.name == connector.name }),
                let index = try registry.makePathIndex(source, connector: connector, baseDirectory: baseDirectory)
            else { continue }
            indexes.append(index)
        }
        return PathLookup(indexes: indexes)
    }

    /// The marker over this runtime's sources and metadata store.
    func marker(logger: Logger) throws -> Marker {
        let naming = try DESCommandLine.requireRegistry().makeNaming(config.marker)
        return Marker(
            sources: sources, metadata: metadata, naming: naming, shardBits: config.packer.shardBits, config: config.marker, logger: logger)
    }

    /// The packer over this runtime's parts (`config`: the packer section, with overrides).
    func packer(config packerConfig: PackerConfig? = nil, logger: Logger) throws -> Packer {
        let policies = Packer.SourcePolicy.policies(for: config.enabledSources)
        let packerSources = try sources.map { source in
            guard let fetcher = fetchers[source.name] else {
                throw CLIFailure(message: "source '\(source.name)': no body fetcher", exitCode: DESExit.software)
            }
            return PackerSource(connector: source, fetcher: fetcher, policy: policies[source.name] ?? .init())
        }
        return try Packer(
            parts: .init(sources: packerSources, metadata: metadata, storage: storage, keyPrefix: config.storage.prefix),
            config: packerConfig ?? config.packer, logger: logger)
    }

    /// The retire worker over the sources that set `bodies.delete_after_pack` (at least one must).
    func retirer(config retireConfig: Retirer.Config, logger: Logger) throws -> Retirer {
        var chosen: [Retirer.Source] = []
        for source in config.enabledSources {
            guard let delay = source.bodies.deleteAfterPack else { continue }
            guard let connector = sources.first(where: { $0.name == source.name }), let fetcher = fetchers[source.name] else {
                throw CLIFailure(message: "source '\(source.name)': not opened", exitCode: DESExit.software)
            }
            chosen.append(Retirer.Source(connector: connector, fetcher: fetcher, delaySeconds: delay))
        }
        guard !chosen.isEmpty else {
            throw CLIFailure(
                message: "no enabled source sets bodies.delete_after_pack: bodies are kept unless a source opts in "
                    + "(bodies: {delete_after_pack: 24h}, or 0s for as soon as it is safe)",
                exitCode: DESExit.dataError)
        }
        var retireConfig = retireConfig
        retireConfig.shardBits = config.packer.shardBits
        return Retirer(sources: chosen, metadata: metadata, storage: storage, cache: cache, config: retireConfig, logger: logger)
    }

    /// Deletes by name over this runtime's sources (whose rows get the deleted status).
    func fileDeleter(logger: Logger) -> FileDeleter {
        FileDeleter(sources: sources, metadata: metadata, storage: storage, cache: cache, shardBits: config.packer.shardBits, logger: logger)
    }

    /// Runs `body`, then closes every connection, whether `body` returned or threw.
    func closing<T>(_ body: () async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await body()
        } catch {
            await close()
            throw error
        }
        await close()
        return result
    }

    /// Closes every connection.
    func close() async {
        for source in sources { await source.close() }
        for fetcher in fetchers.values { await fetcher.close() }
        await metadata.close()
        await storage.close()
        await cache.close()
    }
}

/// Options shared by the pipeline commands.
struct PipelineOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "The config file (default: $DES_CONFIG or configs/local.yaml).")
    var config: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default: $DES_LOG_LEVEL or info).")
    var logLevel: String?

    var configPath: String {
        config ?? ProcessInfo.processInfo.environment["DES_CONFIG"] ?? "configs/local.yaml"
    }

    /// Sets up logging to stderr (once per process) and returns a logger.
    func logger(_ label: String) -> Logger {
        let level = Logger.Level(rawValue: (logLevel ?? ProcessInfo.processInfo.environment["DES_LOG_LEVEL"] ?? "info").lowercased()) ?? .info
        LoggingSetup.once(level: level)
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

/// Bootstraps swift-log once.
enum LoggingSetup {
    private static let done = Mutex(false)
    static func once(level: Logger.Level) {
        let first = done.withLock { d -> Bool in
            defer { d = true }
            return !d
        }
        guard first else { return }
        let json = Terminal.jsonLines
        if let unknown = Terminal.unknownLogFormat {
            Terminal.note("DES_LOG_FORMAT=\(unknown) is neither text nor json: logging as text")
        }
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return RedactingLogHandler(base: handler, escapesControls: !json)
        }
    }
}

