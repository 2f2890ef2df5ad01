import Synchronization

/// What a source plugin gets to build a connector.
public struct SourcePluginContext: Sendable {
    /// The source's config.
    public var source: SourceConfig
    /// The directory the config file is in (relative paths resolve against it).
    public var baseDirectory: String
    /// Creates a context.
    public init(source: SourceConfig, baseDirectory: String) {
        self.source = source
        self.baseDirectory = baseDirectory
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

    public var description: String { rawValue }
}

/// Maps each plugin kind's `type:` to the plugin that handles it: sources (by
/// `connection.type`), metadata stores, storage backends, body fetchers, index
/// caches, naming strategies and sample-catalog writers.
///
/// A plugin may register a ``SectionCheck`` with its factory: the config loader
/// (``ConfigLoader/load(path:environment:knownSourceTypes:plugins:)``) then hands it
/// the plugin's section, read-only, and the plugin refuses what it does not know —
/// unknown keys with "did you mean", values of the wrong type or out of range —
/// with the file, line and column, before anything connects.
///
/// The stock `des` registers the stock plugins; a custom package registers its
/// own (and the stock ones it wants) and calls the same entry point, so its
/// binary is the stock packer plus its source. Nothing is registered by default:
/// a registry holds exactly what its owner put in it.
public final class PluginRegistry: Sendable {
    /// Builds a source connector.
    public typealias SourceFactory = @Sendable (SourcePluginContext) async throws -> any SourceConnector
    /// Builds a metadata store from a connection config.
    public typealias MetadataFactory = @Sendable (ConnectionConfig, String) async throws -> any MetadataStore
    /// Builds a storage backend from the `storage:` section (and the config's directory).
    public typealias StorageFactory = @Sendable (StorageConfig, String) async throws -> any StorageBackend
    /// Builds the body fetcher of a source from its `bodies:` section (and the config's directory).
    public typealias BodyFetcherFactory = @Sendable (SourceConfig, String) async throws -> any BodyFetcher
    /// Builds a naming strategy from the `marker:` section.
    public typealias NamingFactory = @Sendable (MarkerConfig) throws -> any NamingStrategy
    /// Fills a source's catalog with sample rows and bodies (`des sample`): (source, config directory,
    /// files, fixed size, seed) → rows added.
    public typealias SampleCatalogFactory = @Sendable (SourceConfig, String, Int, Int?, UInt64) async throws -> Int
    /// Builds the index cache from the `cache:` section.
    public typealias IndexCacheFactory = @Sendable (CacheConfig) async throws -> any IndexCache
    /// Checks a plugin's config section while the file is loaded (throw a ``ConfigError``, made by
    /// the section, to refuse it).
    public typealias SectionCheck = @Sendable (ConfigSection) throws -> Void

    private struct State {
        var sources: [String: SourceFactory] = [:]
        var metadata: [String: MetadataFactory] = [:]
        var storage: [String: StorageFactory] = [:]
        var bodies: [String: BodyFetcherFactory] = [:]
        var naming: [String: NamingFactory] = [:]
        var samples: [String: SampleCatalogFactory] = [:]
        var caches: [String: IndexCacheFactory] = [:]
        var checks: [PluginKind: [String: SectionCheck]] = [:]
    }
    private let state = Mutex(State())

    /// An empty registry.
    public init() {}

    /// Registers (or replaces) the source plugin for `type` (case-insensitive).
    public func registerSource(type: String, check: SectionCheck? = nil, factory: @escaping SourceFactory) {
        state.withLock {
            $0.sources[type.lowercased()] = factory
            $0.checks[.source, default: [:]][type.lowercased()] = check
        }
    }

    /// Registers (or replaces) the metadata store for `type`.
    public func registerMetadataStore(type: String, check: SectionCheck? = nil, factory: @escaping MetadataFactory) {
        state.withLock {
            $0.metadata[type.lowercased()] = factory
            $0.checks[.metadata, default: [:]][type.lowercased()] = check
        }
    }

    /// Registers (or replaces) the storage backend for `storage.type`.
    public func registerStorage(type: String, check: SectionCheck? = nil, factory: @escaping StorageFactory) {
        state.withLock {
            $0.storage[type.lowercased()] = factory
            $0.checks[.storage, default: [:]][type.lowercased()] = check
        }
    }

    /// Registers (or replaces) the body fetcher for `bodies.type`.
    public func registerBodyFetcher(type: String, check: SectionCheck? = nil, factory: @escaping BodyFetcherFactory) {
        state.withLock {
            $0.bodies[type.lowercased()] = factory
            $0.checks[.bodies, default: [:]][type.lowercased()] = check
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

    /// Registers (or replaces) the index cache for `cache.type`.
    public func registerIndexCache(type: String, check: SectionCheck? = nil, factory: @escaping IndexCacheFactory) {
        state.withLock {
            $0.caches[type.lowercased()] = factory
            $0.checks[.cache, default: [:]][type.lowercased()] = check
        }
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
            }
        }
    }

    /// The section check a plugin registered for `type`, if any.
    public func sectionCheck(_ kind: PluginKind, type: String) -> SectionCheck? {
        state.withLock { $0.checks[kind]?[type.lowercased()] ?? nil }
    }

    /// The registered index cache types, sorted.
    public var indexCacheTypes: [String] { types(.cache) }

    /// Builds the index cache of `cache:`.
    public func makeIndexCache(_ config: CacheConfig) async throws -> any IndexCache {
        guard let factory = state.withLock({ $0.caches[config.type.lowercased()] }) else {
            throw unknown("cache", config.type, indexCacheTypes)
        }
        return try await factory(config)
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
        return try await factory(config, baseDirectory)
    }

    /// Builds a source's body fetcher.
    public func makeBodyFetcher(_ source: SourceConfig, baseDirectory: String) async throws -> any BodyFetcher {
        guard let factory = state.withLock({ $0.bodies[source.bodies.type.lowercased()] }) else {
            throw unknown("source '\(source.name)': bodies", source.bodies.type, bodyFetcherTypes)
        }
        return try await factory(source, baseDirectory)
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
