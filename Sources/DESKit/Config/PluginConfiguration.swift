/// A plugin's own configuration: its config section, read once into a typed value that the
/// plugin's factory then receives (as Hummingbird's components take their configuration
/// structs, and fluent-kit hands a `DatabaseConfiguration` to its driver).
///
/// The loader refuses keys outside ``keys`` (with "did you mean"), calls ``init(from:)`` on the
/// section, and refuses a written key the initializer did not read. What the check accepted is
/// exactly what runs: nothing re-parses a string later.
///
/// ```swift
/// struct TapeConfig: PluginConfiguration {
///     static let keys = [ConfigKey("drive", .text, default: "/dev/st0", help: "The tape device.")]
///     var drive = "/dev/st0"
///     init(from section: ConfigSection) throws {
///         if let drive = try section.text(Self.keys[0]) { self.drive = drive }
///     }
/// }
/// registry.registerStorage(type: "tape", configuration: TapeConfig.self) { config, _ in TapeStorage(drive: config.drive) }
/// ```
public protocol PluginConfiguration: Sendable, Hashable {
    /// Every key of the section besides `type`: what the loader allows, the docs list and `des config keys` prints.
    static var keys: [ConfigKey] { get }
    /// Reads the section: every key through the accessors that take a ``ConfigKey``; errors are
    /// ``ConfigError``s made by the section, pointing at the value.
    init(from section: ConfigSection) throws
}

extension PluginConfiguration {
    /// The key named `name` in ``keys`` (a plugin reads its keys by name from its own table).
    public static func key(_ name: String) -> ConfigKey {
        keys.first { $0.name == name } ?? ConfigKey(name, .text, help: "(not declared)")
    }
}

/// A plugin section with no keys besides `type`.
public struct NoConfiguration: PluginConfiguration {
    public static let keys: [ConfigKey] = []
    /// The empty configuration.
    public init() {}
    public init(from section: ConfigSection) throws {}
}

/// A storage configuration whose containers are files under one directory (`storage.type:
/// local`): `des scan` refuses a root that holds it.
public protocol DirectoryStorageConfiguration: PluginConfiguration {
    /// The directory, as written (relative paths resolve against the config file's directory).
    var directory: String { get }
}

/// A bodies configuration whose bodies are files under one directory: `des sample` writes its
/// sample bodies there.
public protocol DirectoryBodiesConfiguration: PluginConfiguration {
    /// The directory, as written (relative paths resolve against the config file's directory).
    var directory: String { get }
}

/// A plugin's typed configuration, held by the config model (``StorageConfig/settings`` and the
/// like) until the plugin's factory receives it.
///
/// Also keeps what the section wrote, for `des config check` to show (secrets as `***`).
public struct PluginSettings: @unchecked Sendable, Hashable {
    // @unchecked: the box only ever holds a PluginConfiguration, which is Sendable.
    private let box: AnyHashable
    /// The section's keys and values as written (`${VAR}` expanded; secrets `***`), in document order.
    public let written: [WrittenValue]

    /// One key of the section as written.
    public struct WrittenValue: Sendable, Hashable {
        /// The key.
        public var key: String
        /// Its value as `des config check` shows it.
        public var shown: String
    }

    /// Wraps `value`.
    public init<C: PluginConfiguration>(_ value: C, written: [WrittenValue] = []) {
        self.box = AnyHashable(value)
        self.written = written
    }

    /// The same configuration with what its section wrote.
    init(_ other: PluginSettings, written: [WrittenValue]) {
        self.box = other.box
        self.written = written
    }

    /// The configuration, when it is a `C`.
    public func value<C: PluginConfiguration>(as type: C.Type = C.self) -> C? { box.base as? C }

    /// The configuration, whatever its type.
    public var base: any Sendable {
        // The initializer only ever stores a PluginConfiguration.
        (box.base as? any PluginConfiguration) ?? NoConfiguration()
    }

    /// `key value, key value` of what the section wrote (nothing when it wrote nothing).
    public var summary: String {
        written.map { "\($0.key) \($0.shown)" }.joined(separator: ", ")
    }
}
