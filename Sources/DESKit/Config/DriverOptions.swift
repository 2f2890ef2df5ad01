/// What is wrong with a plugin's value, before it is known where the value was written: the
/// loader turns it into a ``ConfigError`` at the key (file, line, column), a connection built in
/// code into a ``DESKitError`` naming the connection.
public struct ConfigProblem: Error, Sendable, Hashable {
    /// What is wrong, in words.
    public var message: String
    /// A near miss the user probably meant.
    public var suggestion: String?
    /// The key of the `connection:` block it concerns (nil: `driver_options`).
    public var key: String?
    /// Creates a problem.
    public init(_ message: String, suggestion: String? = nil, key: String? = nil) {
        self.message = message
        self.suggestion = suggestion
        self.key = key
    }
}

/// A `connection:` plugin's own keys (`driver_options`, `dialect`), read into a typed value.
///
/// The same initializer serves a config file's block (through ``PluginConfiguration/init(from:)``,
/// which the protocol provides) and a ``ConnectionConfig`` built in code (``of(_:what:)``), so the
/// value checked is the value used.
public protocol ConnectionPluginConfiguration: PluginConfiguration {
    /// Reads the plugin's keys of `connection` (its ``ConnectionConfig/driverOptions`` and
    /// ``ConnectionConfig/dialect``; its ``ConnectionConfig/type`` says which of the plugin's types).
    init(connection: ConnectionConfig) throws
    /// DES's own keys of the block this plugin has no use for (`charset` beside anything but
    /// MySQL and MariaDB, a `host` beside a SQLite file): written, each draws a warning that it
    /// is ignored. Default: `charset`.
    static var ignoredConnectionKeys: Set<String> { get }
    /// What the plugin accepted but will not use (options meant for another driver), each shown
    /// by `des config check` as a warning at `driver_options`.
    var ignoredOptionsWarnings: [String] { get }
}

extension ConnectionPluginConfiguration {
    /// Nothing ignored.
    public var ignoredOptionsWarnings: [String] { [] }
    /// Only `charset` goes unused.
    public static var ignoredConnectionKeys: Set<String> { ["charset"] }

    /// Reads the section's `driver_options` and `dialect` (those the plugin declares) through the
    /// same initializer as a connection built in code; a ``ConfigProblem`` becomes an error at
    /// the key it concerns.
    public init(from section: ConfigSection) throws {
        var connection = ConnectionConfig(type: try section.string("type")?.lowercased() ?? "")
        connection.database = try section.string("database")
        connection.charset = try section.string("charset")
        let names = Set(Self.keys.map(\.name))
        if names.contains("driver_options") { connection.driverOptions = try section.textMap(Self.key("driver_options")) ?? [:] }
        if names.contains("dialect") { connection.dialect = try section.string("dialect") }
        do {
            try self.init(connection: connection)
        } catch let problem as ConfigProblem {
            throw section.error(problem.key ?? "driver_options", problem.message, suggestion: problem.suggestion)
        }
        for warning in ignoredOptionsWarnings { section.warn("driver_options", warning) }
    }

    /// The plugin's settings of `connection`: as read from the config file, or read now from a
    /// connection built in code (a problem is a `configuration` error naming `what`).
    public static func of(_ connection: ConnectionConfig, what: String) throws -> Self {
        if let read = connection.settings?.value(as: Self.self) { return read }
        do {
            return try Self(connection: connection)
        } catch let problem as ConfigProblem {
            throw DESKitError(.configuration, "\(what): \(problem.message)")
        }
    }
}

/// A plugin's `driver_options` checked against its table of options (``ConfigKey``s): unknown
/// names are refused with "did you mean", and each value is converted by its declared kind.
public struct DriverOptions: Sendable {
    /// The options as written (text).
    public let values: [String: String]
    let table: [ConfigKey]
    let plugin: String

    /// Checks `values` against `table`; names in `extra` (ones the driver itself knows) pass as text.
    public init(_ values: [String: String], table: [ConfigKey], plugin: String, extra: Set<String> = []) throws {
        self.values = values
        self.table = table
        self.plugin = plugin
        let known = table.map(\.name)
        for name in values.keys.sorted() where !known.contains(name) && !extra.contains(name) {
            throw ConfigProblem(
                "\(plugin): unknown driver option '\(name)' (known: \(known.joined(separator: ", ")))",
                suggestion: KeySuggestion.suggest(for: name, among: known))
        }
        for key in table where values[key.name] != nil { _ = try convert(key) }
    }

    /// A text option.
    public func text(_ name: String) -> String? { values[name] }
    /// A `.seconds` option within its bounds.
    public func seconds(_ name: String) throws -> Double? { try convert(key(name)) as? Double }
    /// An `.integer` option within its bounds.
    public func int(_ name: String) throws -> Int? { try convert(key(name)) as? Int }
    /// A `.boolean` option.
    public func bool(_ name: String) throws -> Bool? { try convert(key(name)) as? Bool }

    func key(_ name: String) -> ConfigKey { table.first { $0.name == name } ?? ConfigKey(name, .text, help: "") }

    /// The value of `key` converted by its kind (nil when absent).
    func convert(_ key: ConfigKey) throws -> (any Sendable)? {
        guard let text = values[key.name] else { return nil }
        let t = text.trimmingSpaces
        func bad(_ what: String) -> ConfigProblem {
            ConfigProblem("\(plugin): driver option \(key.name) must be \(what), got '\(text)'")
        }
        switch key.kind {
        case .text, .secret, .textList, .textMap, .choice:
            if case .choice(let words) = key.kind, !words.contains(where: { $0.lowercased() == t.lowercased() }) {
                throw bad("one of " + words.joined(separator: ", "))
            }
            return text
        case .boolean:
            guard let value = ConfigSection.boolean(t) else { throw bad("true or false") }
            return value
        case .integer(let range):
            guard let value = Int(t), range.contains(value) else { throw bad("a whole number from \(range.lowerBound) to \(range.upperBound)") }
            return value
        case .seconds(let range):
            guard let value = Double(t), value.isFinite, range.contains(value) else {
                throw bad("seconds from \(ConfigMapping.format(range.lowerBound)) to \(ConfigMapping.format(range.upperBound))")
            }
            return value
        case .bytes(let range):
            guard case .bytes(let value) = ConfigMapping.parseBytes(t), range.contains(value) else { throw bad("a byte count") }
            return value
        }
    }
}
