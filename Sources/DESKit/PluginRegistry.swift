import Logging
import Synchronization

/// What a source plugin gets to build a connector.
public struct SourcePluginContext: Sendable {
    /// The source's config.
    public var source: SourceConfig
    /// The directory the config file is in (relative paths resolve against it).
    public var baseDirectory: String
    /// The metadata store's connection (a source whose catalog DES keeps there opens it).
    public var metadata: ConnectionConfig?
    /// The registry the source was made from (a source built on another plugin's connection uses it).
    public var registry: PluginRegistry?
    /// Creates a context.
    public init(source: SourceConfig, baseDirectory: String, metadata: ConnectionConfig? = nil, registry: PluginRegistry? = nil) {
        self.source = source
        self.baseDirectory = baseDirectory
        self.metadata = metadata
        self.registry = registry
    }
}

/// The kinds of plugin whose config section names its `type:`.
public enum PluginKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// A source, by its `connection.type` (the check sees the `connection:` section).
    case source
    /// The metadata store, by `metadata.connection.type`.
    case metadata
    /// The storage backend, by `storage.type`.
    case storage
    /// A source's body fetcher, by `bodies.type`.
    case bodies
    /// The index cache, by `cache.type`.
    case cache
    /// Where `des relay` publishes the store's events, by `events.publish.type`.
    case events

    public var description: String { rawValue }
}

/// Maps each plugin kind's `type:` to the plugin that handles it: sources (by
/// `connection.type`), metadata stores, storage backends, body fetchers, index
/// caches, naming strategies and sample-catalog writers.
///
/// Each plugin registers with its ``PluginConfiguration`` type: the config loader
/// (``ConfigLoader/load(path:environment:knownSourceTypes:plugins:)``) refuses keys of its
/// section outside that type's key table (with "did you mean"), reads the section once into
/// it, and the factory receives the typed value. For a `connection:` block, the configuration
/// reads the plugin's own keys (`driver_options`, `dialect`); the keys every SQL connection
/// shares (`host`, `port`, `pool_size`, …) are DES's own, in ``ConnectionConfig``.
///
/// The stock `des` registers the stock plugins; a custom package registers its
/// own (and the stock ones it wants) and calls the same entry point, so its
/// binary is the stock packer plus its source. Nothing is registered by default:
/// a registry holds exactly what its owner put in it, and it is handed explicitly to
/// whatever builds from it.
public final class PluginRegistry: Sendable {
    /// Builds a source connector (its typed connection options are in
    /// `context.source.connection.settings`).
    public typealias SourceFactory = @Sendable (SourcePluginContext) async throws -> any SourceConnector
    /// Builds a metadata store from a connection config (and the config's directory).
    public typealias MetadataFactory = @Sendable (ConnectionConfig, String) async throws -> any MetadataStore
    /// Builds a naming strategy from the `marker:` section.
    public typealias NamingFactory = @Sendable (MarkerConfig) throws -> any NamingStrategy
    /// Makes the scanner of a source (`des scan`): (source, its connector, config directory, logger).
    public typealias ScannerFactory = @Sendable (SourceConfig, any SourceConnector, String, Logger) throws -> any SourceScanner
    /// Makes the path index of a source (over its catalog's connector, relative paths against the directory).
    public typealias PathIndexFactory = @Sendable (SourceConfig, any SourceConnector, String) throws -> any PathIndex
    /// Fills a source's catalog with sample rows and bodies (`des sample`): (source, config directory,
    /// files, fixed size, seed) → rows added.
    public typealias SampleCatalogFactory = @Sendable (SourceConfig, String, Int, Int?, UInt64) async throws -> Int

    /// How one plugin's section is read: its key table and its parser.
    struct Section: Sendable {
        let keys: [ConfigKey]
        let parse: @Sendable (ConfigSection) throws -> PluginSettings
        /// For a `connection:` block: DES's own keys the plugin has no use for (warned about).
        let ignoredConnectionKeys: Set<String>
        init<C: PluginConfiguration>(_ type: C.Type) {
            keys = C.keys
            parse = { section in PluginSettings(try C(from: section)) }
            ignoredConnectionKeys = (C.self as? any ConnectionPluginConfiguration.Type)?.ignoredConnectionKeys ?? ["charset"]
        }
    }

    private struct State {
        var sources: [String: SourceFactory] = [:]
        var metadata: [String: MetadataFactory] = [:]
        var storage: [String: @Sendable (PluginSettings, String) async throws -> any StorageBackend] = [:]
        var bodies: [String: @Sendable (PluginSettings, SourceConfig, String) async throws -> any BodyFetcher] = [:]
        var naming: [String: NamingFactory] = [:]
        var samples: [String: SampleCatalogFactory] = [:]
        var caches: [String: @Sendable (PluginSettings) async throws -> any IndexCache] = [:]
        var sinks: [String: @Sendable (PluginSettings) async throws -> any EventSink] = [:]
        var sections: [PluginKind: [String: Section]] = [:]
        var ownedCatalogs: [String: @Sendable (String) -> TableConfig] = [:]
        var scanners: [String: ScannerFactory] = [:]
        var pathIndexes: [String: PathIndexFactory] = [:]
    }
    private let state = Mutex(State())

    /// An empty registry.
    public init() {}

    /// Registers (or replaces) the source plugin for `type` (case-insensitive); `connection` reads
    /// the plugin's own keys of the `connection:` block.
    ///
    /// `catalog`, for a source whose catalog DES keeps itself (the filesystem source's table in the
    /// metadata store): the table of the source named by its argument. Such a source is written
    /// with no `table:` and no `bodies:` (its bodies are read by the body fetcher registered under
    /// the same type).
    public func registerSource<C: PluginConfiguration>(
        type: String, connection: C.Type = NoConfiguration.self, catalog: (@Sendable (String) -> TableConfig)? = nil,
        factory: @escaping SourceFactory
    ) {
        state.withLock {
            $0.sources[type.lowercased()] = factory
            $0.sections[.source, default: [:]][type.lowercased()] = Section(C.self)
            $0.ownedCatalogs[type.lowercased()] = catalog
        }
    }

    /// Registers the scanner `des scan` runs for sources of `type`.
    public func registerScanner(type: String, factory: @escaping ScannerFactory) {
        state.withLock { $0.scanners[type.lowercased()] = factory }
    }

    /// The scanner of `source` (made over `connector`), or nil when its type has none.
    public func makeScanner(_ source: SourceConfig, connector: any SourceConnector, baseDirectory: String, logger: Logger) throws
        -> (any SourceScanner)?
    {
        guard let factory = state.withLock({ $0.scanners[source.connection.type.lowercased()] }) else { return nil }
        return try factory(source, connector, baseDirectory, logger)
    }

    /// Registers the index of files by path for sources of `type` (`des get --path`,
    /// `des ls-versions`, `GET /files/by-path/…`).
    public func registerPathIndex(type: String, factory: @escaping PathIndexFactory) {
        state.withLock { $0.pathIndexes[type.lowercased()] = factory }
    }

    /// Whether sources of `type` can be read by path.
    public func hasPathIndex(type: String) -> Bool {
        state.withLock { $0.pathIndexes[type.lowercased()] != nil }
    }

    /// The path index of `source` (made over `connector`), or nil when its type keeps none.
    public func makePathIndex(_ source: SourceConfig, connector: any SourceConnector, baseDirectory: String) throws -> (any PathIndex)? {
        guard let factory = state.withLock({ $0.pathIndexes[source.connection.type.lowercased()] }) else { return nil }
        return try factory(source, connector, baseDirectory)
    }

    /// The catalog DES keeps for sources of `type`, when it keeps one (see ``registerSource(type:connection:catalog:factory:)``).
    public func ownedCatalog(type: String) -> (@Sendable (String) -> TableConfig)? {
        state.withLock { $0.ownedCatalogs[type.lowercased()] }
    }

    /// Registers (or replaces) the metadata store for `type`.
    public func registerMetadataStore<C: PluginConfiguration>(
        type: String, connection: C.Type = NoConfiguration.self, factory: @escaping MetadataFactory
    ) {
        state.withLock {
            $0.metadata[type.lowercased()] = factory
            $0.sections[.metadata, default: [:]][type.lowercased()] = Section(C.self)
        }
    }

    /// Registers (or replaces) the storage backend for `storage.type`; the factory receives the
    /// `storage:` section read into `configuration` (and the config file's directory).
    public func registerStorage<C: PluginConfiguration>(
        type: String, configuration: C.Type,
        factory: @escaping @Sendable (C, String) async throws -> any StorageBackend
    ) {
        let what = "storage type '\(type)'"
        state.withLock {
            $0.storage[type.lowercased()] = { settings, base in try await factory(try Self.typed(settings, C.self, what), base) }
            $0.sections[.storage, default: [:]][type.lowercased()] = Section(C.self)
        }
    }

    /// Registers (or replaces) the body fetcher for `bodies.type`; the factory receives the
    /// source's `bodies:` section read into `configuration`, the source, and the config file's directory.
    public func registerBodyFetcher<C: PluginConfiguration>(
        type: String, configuration: C.Type,
        factory: @escaping @Sendable (C, SourceConfig, String) async throws -> any BodyFetcher
    ) {
        let what = "bodies type '\(type)'"
        state.withLock {
            $0.bodies[type.lowercased()] = { settings, source, base in
                try await factory(try Self.typed(settings, C.self, what), source, base)
            }
            $0.sections[.bodies, default: [:]][type.lowercased()] = Section(C.self)
        }
    }

    /// Registers (or replaces) the naming strategy for `marker.naming`.
    public func registerNaming(_ name: String, factory: @escaping NamingFactory) {
        state.withLock { $0.naming[name.lowercased()] = factory }
    }

    /// Registers (or replaces) the sample-catalog writer for sources of `connection.type`.
    public func registerSampleCatalog(type: String, factory: @escaping SampleCatalogFactory) {
        state.withLock { $0.samples[type.lowercased()] = factory }
    }

    /// Registers (or replaces) the index cache for `cache.type`; the factory receives the
    /// `cache:` section read into `configuration`.
    public func registerIndexCache<C: PluginConfiguration>(
        type: String, configuration: C.Type, factory: @escaping @Sendable (C) async throws -> any IndexCache
    ) {
        let what = "cache type '\(type)'"
        state.withLock {
            $0.caches[type.lowercased()] = { settings in try await factory(try Self.typed(settings, C.self, what)) }
            $0.sections[.cache, default: [:]][type.lowercased()] = Section(C.self)
        }
    }

    /// Registers (or replaces) the event sink for `events.publish.type`; the factory receives
    /// the `events.publish:` section read into `configuration`.
    public func registerEventSink<C: PluginConfiguration>(
        type: String, configuration: C.Type, factory: @escaping @Sendable (C) async throws -> any EventSink
    ) {
        let what = "events.publish type '\(type)'"
        state.withLock {
            $0.sinks[type.lowercased()] = { settings in try await factory(try Self.typed(settings, C.self, what)) }
            $0.sections[.events, default: [:]][type.lowercased()] = Section(C.self)
        }
    }

    /// Builds the event sink of `events.publish:`.
    public func makeEventSink(_ config: EventSinkConfig) async throws -> any EventSink {
        guard let factory = state.withLock({ $0.sinks[config.type.lowercased()] }) else {
            throw unknown("events.publish", config.type, types(.events))
        }
        return try await factory(try settingsOrDefault(config.settings, .events, type: config.type, what: "events.publish"))
    }

    /// The settings as the plugin's own type (settings read for another plugin are an error).
    static func typed<C: PluginConfiguration>(_ settings: PluginSettings, _ type: C.Type, _ what: String) throws -> C {
        guard let value = settings.value(as: C.self) else {
            throw DESKitError(.configuration, "\(what): its settings were read for another plugin")
        }
        return value
    }

    /// How the section of the plugin `type` of `kind` is read, if one is registered.
    func section(_ kind: PluginKind, type: String) -> Section? {
        state.withLock { $0.sections[kind]?[type.lowercased()] }
    }

    /// The key table of the plugin `type` of `kind` (nil: none registered): `des config keys`.
    public func keys(_ kind: PluginKind, type: String) -> [ConfigKey]? {
        section(kind, type: type)?.keys
    }

    /// Reads `values` as the section of the plugin `type` of `kind`, as the loader reads a config
    /// file's (for a section built in code, like the `s3://bucket` of an archive command).
    /// `what` names the section in errors.
    public func settings(_ kind: PluginKind, type: String, values: [String: String], what: String) throws -> PluginSettings {
        guard let section = section(kind, type: type) else { throw unknown(what, type, types(kind)) }
        return try ConfigLoader.readSection(values: values, type: type, what: what, reader: section)
    }

    /// The settings of a section given in code without them: the plugin reads an empty section
    /// (its defaults, or an error naming what it needs).
    func settingsOrDefault(_ settings: PluginSettings?, _ kind: PluginKind, type: String, what: String) throws -> PluginSettings {
        if let settings { return settings }
        return try self.settings(kind, type: type, values: [:], what: what)
    }

    /// The registered types of one kind, sorted.
    public func types(_ kind: PluginKind) -> [String] {
        state.withLock { s in
            switch kind {
            case .source: return s.sources.keys.sorted()
            case .metadata: return s.metadata.keys.sorted()
            case .storage: return s.storage.keys.sorted()
            case .bodies: return s.bodies.keys.sorted()
            case .cache: return s.caches.keys.sorted()
            case .events: return s.sinks.keys.sorted()
            }
        }
    }

    /// The registered index cache types, sorted.
    public var indexCacheTypes: [String] { types(.cache) }

    /// Builds the index cache of `cache:`.
    public func makeIndexCache(_ config: CacheConfig) async throws -> any IndexCache {
        guard let factory = state.withLock({ $0.caches[config.type.lowercased()] }) else {
            throw unknown("cache", config.type, indexCacheTypes)
        }
        return try await factory(try settingsOrDefault(config.settings, .cache, type: config.type, what: "cache"))
    }

    /// The registered source types, sorted.
    public var sourceTypes: [String] { types(.source) }
    /// The registered metadata store types, sorted.
    public var metadataTypes: [String] { types(.metadata) }
    /// The registered storage types, sorted.
    public var storageTypes: [String] { types(.storage) }
    /// The registered body fetcher types, sorted.
    public var bodyFetcherTypes: [String] { types(.bodies) }
    /// The registered naming strategies, sorted.
    public var namingStrategies: [String] { state.withLock { $0.naming.keys.sorted() } }
    /// The source types that can write a sample catalog, sorted.
    public var sampleCatalogTypes: [String] { state.withLock { $0.samples.keys.sorted() } }

    /// An error for a type no plugin registers, listing the ones that are.
    private func unknown(_ what: String, _ type: String, _ known: [String]) -> DESKitError {
        DESKitError(
            .unknownPlugin,
            "\(what): no plugin registers type '\(type)' (registered: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
    }

    /// Builds the storage backend of `storage:`.
    public func makeStorage(_ config: StorageConfig, baseDirectory: String) async throws -> any StorageBackend {
        guard let factory = state.withLock({ $0.storage[config.type.lowercased()] }) else {
            throw unknown("storage", config.type, storageTypes)
        }
        return try await factory(try settingsOrDefault(config.settings, .storage, type: config.type, what: "storage"), baseDirectory)
    }

    /// Builds a source's body fetcher.
    public func makeBodyFetcher(_ source: SourceConfig, baseDirectory: String) async throws -> any BodyFetcher {
        guard let factory = state.withLock({ $0.bodies[source.bodies.type.lowercased()] }) else {
            throw unknown("source '\(source.name)': bodies", source.bodies.type, bodyFetcherTypes)
        }
        let settings = try settingsOrDefault(
            source.bodies.settings, .bodies, type: source.bodies.type, what: "source '\(source.name)': bodies")
        return try await factory(settings, source, baseDirectory)
    }

    /// Builds the marker's naming strategy.
    public func makeNaming(_ config: MarkerConfig) throws -> any NamingStrategy {
        guard let factory = state.withLock({ $0.naming[config.naming.lowercased()] }) else {
            throw unknown("marker.naming", config.naming, namingStrategies)
        }
        return try factory(config)
    }

    /// Writes a sample catalog for `source` (`des sample`).
    public func writeSampleCatalog(_ source: SourceConfig, baseDirectory: String, files: Int, size: Int?, seed: UInt64) async throws
        -> Int
    {
        guard let factory = state.withLock({ $0.samples[source.connection.type.lowercased()] }) else {
            throw unknown("source '\(source.name)': sample catalog", source.connection.type, sampleCatalogTypes)
        }
        var source = source
        let bodies = try settingsOrDefault(source.bodies.settings, .bodies, type: source.bodies.type, what: "source '\(source.name)': bodies")
        guard bodies.base is any DirectoryBodiesConfiguration else {
            throw DESKitError(
                .configuration,
                "source '\(source.name)': des sample writes its bodies as files in a directory, but this source's bodies are type '\(source.bodies.type)'")
        }
        source.bodies.settings = bodies
        return try await factory(source, baseDirectory, files, size, seed)
    }

    /// Builds the connector for a source; an unknown type is an error listing the known ones.
    public func makeSource(_ context: SourcePluginContext) async throws -> any SourceConnector {
        let type = context.source.connection.type.lowercased()
        guard let factory = state.withLock({ $0.sources[type] }) else {
            throw DESKitError(
                .unknownPlugin,
                "source '\(context.source.name)': unknown connection.type '\(context.source.connection.type)' (registered: \(sourceTypes.joined(separator: ", ")))"
            )
        }
        return try await factory(context)
    }

    /// Builds the metadata store.
    public func makeMetadataStore(_ config: ConnectionConfig, baseDirectory: String) async throws -> any MetadataStore {
        let type = config.type.lowercased()
        guard let factory = state.withLock({ $0.metadata[type] }) else {
            throw DESKitError(
                .unknownPlugin,
                "metadata: unknown connection.type '\(config.type)' (registered: \(metadataTypes.joined(separator: ", ")))")
        }
        return try await factory(config, baseDirectory)
    }
}
