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

/// Maps `connection.type` to the plugin that handles it.
///
/// The stock `des` registers the stock plugins; a custom package registers its
/// own (and the stock ones it wants) and calls the same entry point, so its
/// binary is the stock packer plus its source.
public final class PluginRegistry: Sendable {
    /// Builds a source connector.
    public typealias SourceFactory = @Sendable (SourcePluginContext) async throws -> any SourceConnector
    /// Builds a metadata store from a connection config.
    public typealias MetadataFactory = @Sendable (ConnectionConfig, String) async throws -> any MetadataStore

    private struct State {
        var sources: [String: SourceFactory] = [:]
        var metadata: [String: MetadataFactory] = [:]
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

    /// The registered source types, sorted.
    public var sourceTypes: [String] { state.withLock { $0.sources.keys.sorted() } }
    /// The registered metadata store types, sorted.
    public var metadataTypes: [String] { state.withLock { $0.metadata.keys.sorted() } }

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
