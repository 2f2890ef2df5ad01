import DESKit
import Foundation

/// Registers local-disk storage (`storage.type: local`), local bodies (`bodies.type: local`) and
/// the in-process index caches (``StockIndexCaches``).
public enum LocalStoragePlugin {
    /// The type both answer to.
    public static let type = "local"

    /// Adds local storage and the local body fetcher to `registry`; relative paths resolve
    /// against the config file's directory.
    public static func register(in registry: PluginRegistry) {
        registry.registerStorage(type: type, configuration: LocalStorageConfig.self) { config, base in
            try LocalDiskStorage(root: resolve(config.root, base: base))
        }
        registry.registerBodyFetcher(type: type, configuration: LocalBodiesConfig.self) { config, _, base in
            LocalBodyFetcher(root: resolve(config.root, base: base), allowAbsolute: config.allowAbsolute)
        }
        StockIndexCaches.register(in: registry)
    }

    static func resolve(_ path: String, base: String) -> String {
        path.hasPrefix("/") ? path : ((base as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }
}

/// `storage.type: local`: containers are files under a directory.
public struct LocalStorageConfig: DirectoryStorageConfiguration {
    public static let keys = [
        ConfigKey(
            "root", .text, default: "./des-data/archive",
            help: "The directory holding the containers (relative: to the config file's directory)."),
    ]
    /// The directory holding the containers.
    public var root = "./des-data/archive"
    public var directory: String { root }
    /// The defaults.
    public init() {}
    public init(from section: ConfigSection) throws {
        if let root = try section.text(Self.key("root")) { self.root = root }
    }
}

/// `bodies.type: local`: each row's key is a path under a directory.
public struct LocalBodiesConfig: DirectoryBodiesConfiguration {
    public static let keys = [
        ConfigKey("root", .text, default: ".", help: "The directory body keys are relative to (relative: to the config file's directory)."),
        ConfigKey(
            "allow_absolute", .boolean, default: "false",
            help: "Whether the catalog may name bodies by absolute path (refused otherwise)."),
    ]
    /// The directory body keys are relative to.
    public var root = "."
    /// Whether absolute body paths are allowed.
    public var allowAbsolute = false
    public var directory: String { root }
    /// A configuration in code.
    public init(root: String = ".", allowAbsolute: Bool = false) {
        self.root = root
        self.allowAbsolute = allowAbsolute
    }
    public init(from section: ConfigSection) throws {
        if let root = try section.text(Self.key("root")) { self.root = root }
        if let allow = try section.bool(Self.key("allow_absolute")) { allowAbsolute = allow }
    }
}

/// `close(2)`, named so inside types that have a `close()` of their own.
