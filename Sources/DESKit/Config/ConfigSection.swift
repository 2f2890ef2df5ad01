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
/// A plugin reads its section in its ``PluginConfiguration/init(from:)``, through the accessors
/// that take a ``ConfigKey`` (bounds come from the key); the section remembers which keys were
/// read, so that the loader can refuse one that was written but never read.
public struct ConfigSection {
    let mapping: ConfigMapping
    /// The keys read so far (shared by copies of the section).
    let log: ReadLog

    /// Which keys were read.
    final class ReadLog {
        var read: Set<String> = []
    }

    /// For a source's `bodies:` section: the source's table, as configured (so that a body
    /// fetcher can check that each row will find its body, e.g. its bucket). Nil elsewhere.
    public let table: TableConfig?

    init(_ mapping: ConfigMapping, table: TableConfig? = nil) {
        self.mapping = mapping
        self.log = ReadLog()
        self.table = table
    }

    /// Written keys no accessor has read, in document order (`type` and the keys in `except` aside).
    func unreadKeys(except: Set<String> = []) -> [String] {
        keys.filter { $0 != "type" && !except.contains($0) && !log.read.contains($0) }
    }

    /// Marks `key` read.
    func touch(_ key: String) { log.read.insert(key) }

    /// Where the section is (`storage`, `sources[1].bodies`).
    public var path: String { mapping.path }
    /// The keys written in the section, in document order.
    public var keys: [String] { mapping.keys }
    /// Whether `key` is written (even with a null value).
    public func contains(_ key: String) -> Bool { mapping.contains(key) }

    /// A string value.
    public func string(_ key: String) throws -> String? {
        touch(key)
        return try mapping.string(key)
    }
    /// A string value that must be written.
    public func requiredString(_ key: String) throws -> String {
        touch(key)
        return try mapping.requiredString(key)
    }
    /// An integer within `range`.
    public func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        touch(key)
        return try mapping.int(key, in: range)
    }
    /// A number within `range` (`unit` names it in errors).
    public func double(_ key: String, in range: ClosedRange<Double>, unit: String = "seconds") throws -> Double? {
        touch(key)
        return try mapping.double(key, in: range, unit: unit)
    }
    /// `true` or `false`.
    public func bool(_ key: String) throws -> Bool? {
        touch(key)
        return try mapping.bool(key)
    }

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
    public func byteCount(_ key: String, in range: ClosedRange<UInt64>) throws -> UInt64? {
        touch(key)
        return try mapping.byteCount(key, in: range)
    }
    /// One of `choices` (with "did you mean").
    public func choice(_ key: String, among choices: [String]) throws -> String? {
        touch(key)
        return try mapping.choice(key, among: choices)
    }
    /// A list of strings.
    public func stringList(_ key: String) throws -> [String]? {
        touch(key)
        return try mapping.stringList(key)
    }
    /// A mapping of strings to strings (`driver_options`).
    public func stringMap(_ key: String) throws -> [String: String]? {
        touch(key)
        return try mapping.stringMap(key)
    }

    /// An error at `key`'s value (or at the section when the key is absent).
    public func error(_ key: String, _ message: String, suggestion: String? = nil) -> ConfigError {
        mapping.contains(key)
            ? mapping.error(key, .invalidValue, message, suggestion: suggestion)
            : mapping.context.error(.missingKey, at: mapping.mark, path: mapping.childPath(key), message, suggestion: suggestion)
    }

    /// Records a warning at `key` (a key accepted but not honoured), shown by `des config check`.
    public func warn(_ key: String, _ message: String) { mapping.warn(key, message) }

    // MARK: Declared keys

    /// A `.text` key: a non-empty string.
    public func text(_ key: ConfigKey) throws -> String? {
        try expect(key, .text)
        guard let value = try string(key.name) else { return nil }
        if value.isEmpty { throw mapping.error(key.name, .invalidValue, "must not be empty") }
        return value
    }
    /// A `.secret` key: a non-empty string, never shown.
    public func secret(_ key: ConfigKey) throws -> Secret? {
        try expect(key, .secret)
        guard let value = try string(key.name) else { return nil }
        if value.isEmpty { throw mapping.error(key.name, .invalidValue, "must not be empty") }
        return Secret(value)
    }
    /// A `.boolean` key.
    public func bool(_ key: ConfigKey) throws -> Bool? {
        try expect(key, .boolean)
        return try bool(key.name)
    }
    /// An `.integer` key, within its range.
    public func int(_ key: ConfigKey) throws -> Int? {
        guard case .integer(let range) = key.kind else { throw mismatch(key, "an integer") }
        return try int(key.name, in: range)
    }
    /// A `.seconds` key, within its range.
    public func seconds(_ key: ConfigKey) throws -> Double? {
        guard case .seconds(let range) = key.kind else { throw mismatch(key, "seconds") }
        return try double(key.name, in: range)
    }
    /// A `.bytes` key, within its range.
    public func bytes(_ key: ConfigKey) throws -> UInt64? {
        guard case .bytes(let range) = key.kind else { throw mismatch(key, "a byte count") }
        return try byteCount(key.name, in: range)
    }
    /// A `.choice` key: one of its words, as the table spells it.
    public func choice(_ key: ConfigKey) throws -> String? {
        guard case .choice(let words) = key.kind else { throw mismatch(key, "a choice") }
        return try choice(key.name, among: words)
    }
    /// A `.textList` key.
    public func textList(_ key: ConfigKey) throws -> [String]? {
        try expect(key, .textList)
        return try stringList(key.name)
    }
    /// A `.textMap` key.
    public func textMap(_ key: ConfigKey) throws -> [String: String]? {
        try expect(key, .textMap)
        return try stringMap(key.name)
    }

    private func expect(_ key: ConfigKey, _ kind: ConfigKey.Kind) throws {
        if key.kind != kind { throw mismatch(key, "\(kind)") }
    }

    /// A plugin reading a key as another kind than its table declares: a bug in the plugin.
    private func mismatch(_ key: ConfigKey, _ readAs: String) -> ConfigError {
        error(key.name, "the plugin reads '\(key.name)' as \(readAs) but declares it \(key.kindDescription) (a bug in the plugin)")
    }

    /// What the section wrote, for `des config check` (secrets, and the keys in `secretKeys`, as `***`).
    func written(secretKeys: Set<String>) -> [PluginSettings.WrittenValue] {
        keys.filter { $0 != "type" }.map { key in
            let shown: String
            if secretKeys.contains(key) || mapping.secretKeys.contains(key) {
                shown = "***"
            } else if mapping.node(key) == nil {
                shown = "null"
            } else if let text = try? mapping.string(key) {
                shown = text
            } else if let list = try? mapping.stringList(key) {
                shown = "[" + list.joined(separator: ", ") + "]"
            } else {
                shown = "(set)"
            }
            return PluginSettings.WrittenValue(key: key, shown: shown)
        }
    }
}
