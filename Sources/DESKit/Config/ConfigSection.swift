import Yams

/// A plugin's section of the config file, read-only, as the loader hands it to the plugin's
/// check (``PluginRegistry/SectionCheck``): typed access to its values and errors that point
/// at them.
///
/// Every error it makes is a ``ConfigError`` with the file, line, column and key path of the
/// value, like the loader's own; `${VAR}` is expanded before a value is converted; secret
/// values (`password`, `secret_key`, …) are never shown. Accessors return nil for an absent
/// key or a null value.
///
/// ```swift
/// registry.registerStorage(type: "tape", check: { section in
///     try section.checkKeys(["type", "prefix", "drive", "block_size"], plugin: "storage type 'tape'")
///     _ = try section.int("block_size", in: 512...1_048_576)
/// }, factory: { config, base in try TapeStorage(drive: config.options["drive"] ?? "/dev/st0") })
/// ```
public struct ConfigSection {
    let mapping: ConfigMapping

    init(_ mapping: ConfigMapping) { self.mapping = mapping }

    /// Where the section is (`storage`, `sources[1].bodies`).
    public var path: String { mapping.path }
    /// The keys written in the section, in document order.
    public var keys: [String] { mapping.keys }
    /// Whether `key` is written (even with a null value).
    public func contains(_ key: String) -> Bool { mapping.contains(key) }

    /// Refuses any key not in `allowed`, naming the plugin and the nearest allowed key ("did you mean").
    public func checkKeys(_ allowed: [String], plugin: String) throws {
        for key in keys where !allowed.contains(key) {
            throw mapping.context.error(
                .unknownKey, at: mapping.position(of: key), path: mapping.childPath(key), "unknown key '\(key)' for \(plugin)",
                suggestion: KeySuggestion.suggest(for: key, among: allowed))
        }
    }

    /// Refuses `driver_options` keys outside `known` (naming the plugin, with "did you mean"), and
    /// values of `seconds` keys that are not whole seconds in 0…86,400.
    public func checkDriverOptions(known: [String], seconds: [String], plugin: String) throws {
        guard let options = try stringMap("driver_options") else { return }
        for key in options.keys.sorted() where !known.contains(key) {
            throw error(
                "driver_options", "\(plugin): unknown driver option '\(key)' (known: \(known.joined(separator: ", ")))",
                suggestion: KeySuggestion.suggest(for: key, among: known))
        }
        for key in seconds {
            if let text = options[key], Double(text).map({ $0 < 0 || $0 > 86_400 }) ?? true {
                throw error("driver_options", "\(plugin): driver option \(key) must be seconds between 0 and 86400, got '\(text)'")
            }
        }
    }

    /// A string value.
    public func string(_ key: String) throws -> String? { try mapping.string(key) }
    /// A string value that must be written.
    public func requiredString(_ key: String) throws -> String { try mapping.requiredString(key) }
    /// An integer within `range`.
    public func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? { try mapping.int(key, in: range) }
    /// A number within `range` (`unit` names it in errors).
    public func double(_ key: String, in range: ClosedRange<Double>, unit: String = "seconds") throws -> Double? {
        try mapping.double(key, in: range, unit: unit)
    }
    /// `true` or `false`.
    public func bool(_ key: String) throws -> Bool? { try mapping.bool(key) }

    /// A boolean as the config writes one — `true`/`false`, `yes`/`no`, `on`/`off`, any case — or
    /// nil: how a plugin reads a boolean it received as text (a `driver_options` value), so that
    /// it means what `des config check` accepted.
    public static func boolean(_ text: String) -> Bool? {
        switch text.trimmingSpaces.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: return nil
        }
    }
    /// A byte count (`64KiB`, `1GiB`, or a number) within `range`.
    public func byteCount(_ key: String, in range: ClosedRange<UInt64>) throws -> UInt64? { try mapping.byteCount(key, in: range) }
    /// One of `choices` (with "did you mean").
    public func choice(_ key: String, among choices: [String]) throws -> String? { try mapping.choice(key, among: choices) }
    /// A list of strings.
    public func stringList(_ key: String) throws -> [String]? { try mapping.stringList(key) }
    /// A mapping of strings to strings (`driver_options`).
    public func stringMap(_ key: String) throws -> [String: String]? { try mapping.stringMap(key) }

    /// An error at `key`'s value (or at the section when the key is absent).
    public func error(_ key: String, _ message: String, suggestion: String? = nil) -> ConfigError {
        mapping.contains(key)
            ? mapping.error(key, .invalidValue, message, suggestion: suggestion)
            : mapping.context.error(.missingKey, at: mapping.mark, path: mapping.childPath(key), message, suggestion: suggestion)
    }

    /// Records a warning at `key` (a key accepted but not honoured), shown by `des config check`.
    public func warn(_ key: String, _ message: String) { mapping.warn(key, message) }
}
