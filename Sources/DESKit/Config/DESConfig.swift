import Foundation

/// A secret from the config (a password, a key): printed and logged as `***`.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself. Never log it.
    public let value: String
    /// Wraps a secret (and remembers it, so that a server echoing it back is redacted: ``SecretRedaction``).
    public init(_ value: String) {
        self.value = value
        SecretRedaction.register(value)
    }
    public var description: String { value.isEmpty ? "" : "***" }
    public var debugDescription: String { description }
}

/// Where containers are stored: the `storage:` section, read by the storage plugin its `type` names.
public struct StorageConfig: Sendable, Hashable {
    /// The storage plugin: `local` (default), `s3`, or a custom one.
    public var type: String = "local"
    /// Key prefix of every container (`{prefix}/{YYYY-MM-DD}/shard_{NN}….des`): DES's own key.
    public var prefix: String = "des"
    /// The section as the plugin's configuration type read it (nil: built in code; the plugin
    /// then reads an empty section, its defaults).
    public var settings: PluginSettings? = nil
    /// Creates the default (local) storage config.
    public init() {}

    /// The key health checks `HEAD` (it need not exist): under the prefix, so that a bucket
    /// policy scoped to the prefix allows it.
    public var healthProbeKey: String { prefix + "/.des-health" }
}

/// Where leases, containers and dead letters are kept.
public struct MetadataConfig: Sendable, Hashable {
    /// The connection (type `sqlite` or `postgresql`).
    public var connection: ConnectionConfig = ConnectionConfig(type: "sqlite", database: "./des-data/metadata.sqlite")
    /// Creates the default (SQLite) metadata config.
    public init() {}
}

/// The index cache: the `cache:` section, read by the cache plugin its `type` names.
public struct CacheConfig: Sendable, Hashable {
    /// `memory` (default), `none`, or any type a cache plugin registers (`redis`).
    public var type: String = "memory"
    /// The section as the plugin's configuration type read it (nil: built in code; the plugin
    /// then reads an empty section, its defaults).
    public var settings: PluginSettings? = nil
    /// Creates the defaults.
    public init() {}
}

/// A whole DES configuration file.
public struct DESConfig: Sendable, Hashable {
    /// The upstream catalogs.
    public var sources: [SourceConfig] = []
    /// Where containers are stored.
    public var storage = StorageConfig()
    /// DES's own database.
    public var metadata = MetadataConfig()
    /// Packer settings.
    public var packer = PackerConfig()
    /// Marker settings.
    public var marker = MarkerConfig()
    /// Index cache settings.
    public var cache = CacheConfig()
    /// HTTP server settings.
    public var server = ServerConfig()
    /// `compaction:`, read by `des compact`.
    public var compaction = CompactionConfig()
    /// `events:`, read by `des serve` and `des relay` (and the metadata store's retention).
    public var events = EventsConfig()
    /// The file it was read from, if any.
    public var path: String? = nil
    /// Keys the loader accepted but DES does not honour (yet), in document order;
    /// `des config check` prints them. Empty for a config built in code.
    public var warnings: [ConfigWarning] = []
    /// Creates an empty configuration with every default.
    public init() {}

    /// The enabled sources.
    public var enabledSources: [SourceConfig] { sources.filter(\.enabled) }
}
