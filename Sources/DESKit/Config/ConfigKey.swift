/// One key of a plugin's config section, declared once: its name, the kind of value with its
/// bounds, its default and a line of help.
///
/// A plugin's table of keys (``PluginConfiguration/keys``) is the whole truth about its section:
/// the loader allows exactly these keys (besides `type`), the plugin reads them through the
/// ``ConfigSection`` accessors that take a key (which take the bounds from here), `des config
/// keys` prints the table, and a test checks `docs/configuration.md` against it. A key in the
/// table that the plugin's initializer does not read is refused when the section is loaded
/// (``ConfigError/Code/unreadKey``), so a key cannot be accepted and then ignored.
///
/// ```swift
/// static let keys: [ConfigKey] = [
///     ConfigKey("drive", .text, default: "/dev/st0", help: "The tape device."),
///     ConfigKey("block_size", .bytes(512...1_048_576), default: "64 KiB", help: "Bytes per tape block."),
/// ]
/// ```
public struct ConfigKey: Sendable, Hashable {
    /// The kind of value a key holds, with its bounds.
    public enum Kind: Sendable, Hashable {
        /// A non-empty string.
        case text
        /// A non-empty string never shown: not in errors, not by `des config check`.
        case secret
        /// `true`/`false` (also `yes`/`no`, `on`/`off`).
        case boolean
        /// An integer within the range.
        case integer(ClosedRange<Int>)
        /// A number of seconds within the range.
        case seconds(ClosedRange<Double>)
        /// A byte count (`64KiB`, `1GiB` or a number) within the range.
        case bytes(ClosedRange<UInt64>)
        /// One of the words (any case).
        case choice([String])
        /// A list of non-empty strings.
        case textList
        /// A mapping of words to strings.
        case textMap
    }

    /// The key as written in the section.
    public var name: String
    /// The kind of value, with its bounds.
    public var kind: Kind
    /// The default as the docs show it (nil: none; the plugin may still require the key).
    public var defaultValue: String?
    /// One line for `des config keys` and the docs.
    public var help: String
    /// A value the section accepts, as YAML (for the docs and for the test that loads every key).
    public var example: String

    /// Declares a key; `example` defaults to a value of `kind` within its bounds.
    public init(_ name: String, _ kind: Kind, default defaultValue: String? = nil, help: String, example: String? = nil) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.help = help
        self.example = example ?? Self.example(of: kind)
    }

    /// Whether the value is a secret (never shown).
    public var isSecret: Bool { kind == .secret }

    /// The kind as the docs write it: `integer 1…256`, `seconds 0.1…3600`, `one of a, b`.
    public var kindDescription: String {
        switch kind {
        case .text: return "string"
        case .secret: return "secret string"
        case .boolean: return "boolean"
        case .integer(let r): return "integer \(r.lowerBound)…\(r.upperBound)"
        case .seconds(let r): return "seconds \(ConfigMapping.format(r.lowerBound))…\(ConfigMapping.format(r.upperBound))"
        case .bytes(let r):
            let show = { (v: UInt64) in ConfigMapping.binaryUnits(v) ?? String(v) }
            return "bytes \(show(r.lowerBound))…\(show(r.upperBound))"
        case .choice(let words): return "one of " + words.joined(separator: ", ")
        case .textList: return "list of strings"
        case .textMap: return "mapping"
        }
    }

    static func example(of kind: Kind) -> String {
        switch kind {
        case .text: return "example"
        case .secret: return "example-secret"
        case .boolean: return "true"
        case .integer(let r): return String(r.lowerBound)
        case .seconds(let r): return ConfigMapping.format(r.upperBound)
        case .bytes(let r): return String(r.lowerBound)
        case .choice(let words): return words.first ?? ""
        case .textList: return "[example]"
        case .textMap: return "{}"
        }
    }
}
