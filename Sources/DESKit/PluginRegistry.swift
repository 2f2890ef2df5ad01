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

/// Maps each plugin kind's `type:` to the plugin that handles it: sources (by
/// `connection.type`), metadata stores, storage backends, body fetchers, naming
/// strategies and sample-catalog writers.
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

    private struct State {
        var sources: [String: SourceFactory] = [:]
        var metadata: [String: MetadataFactory] = [:]
        var storage: [String: StorageFactory] = [:]
        var bodies: [String: BodyFetcherFactory] = [:]
        var naming: [String: NamingFactory] = [:]
        var samples: [String: SampleCatalogFactory] = [:]
    }
    private let state = Mutex(State())

    /// An empty registry.
    public init() {}

    /// Registers (or replaces) the source plugin for `type` (case-insensitive).
    public func registerSource(type: String, factory: @escaping SourceFactory) {
        state.withLock { $0.sources[type.lowercased()] = factory }
    }

    /// Registers (or replaces) the metadata store for `type`.
    public func registerMetadataStore(type: String, factory: @escaping MetadataFactory) {
        state.withLock { $0.metadata[type.lowercased()] = factory }
    }

    /// Registers (or replaces) the storage backend for `storage.type`.
    public func registerStorage(type: String, factory: @escaping StorageFactory) {
        state.withLock { $0.storage[type.lowercased()] = factory }
    }

    /// Registers (or replaces) the body fetcher for `bodies.type`.
    public func registerBodyFetcher(type: String, factory: @escaping BodyFetcherFactory) {
        state.withLock { $0.bodies[type.lowercased()] = factory }
    }

    /// Registers (or replaces) the naming strategy for `marker.naming`.
    public func registerNaming(_ name: String, factory: @escaping NamingFactory) {
        state.withLock { $0.naming[name.lowercased()] = factory }
    }

    /// Registers (or replaces) the sample-catalog writer for sources of `connection.type`.
    public func registerSampleCatalog(type: String, factory: @escaping SampleCatalogFactory) {
        state.withLock { $0.samples[type.lowercased()] = factory }
    }

    /// The registered source types, sorted.
    public var sourceTypes: [String] { state.withLock { $0.sources.keys.sorted() } }
    /// The registered metadata store types, sorted.
    public var metadataTypes: [String] { state.withLock { $0.metadata.keys.sorted() } }
    /// The registered storage types, sorted.
    public var storageTypes: [String] { state.withLock { $0.storage.keys.sorted() } }
    /// The registered body fetcher types, sorted.
    public var bodyFetcherTypes: [String] { state.withLock { $0.bodies.keys.sorted() } }
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
