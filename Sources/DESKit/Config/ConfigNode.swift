import Yams

/// The warnings of one document, collected while it is read.
final class ConfigWarningLog {
    /// The warnings so far, in the order they were recorded.
    private(set) var items: [ConfigWarning] = []
    /// Records a warning.
    func append(_ warning: ConfigWarning) { items.append(warning) }
}

/// What every node of one config document shares: the file name (for errors), the environment and the warnings.
struct ConfigContext {
    /// The config file, as given to the loader.
    let file: String
    /// Variables for `${VAR}`.
    let environment: [String: String]
    /// Where ``ConfigMapping/warn(_:_:)`` records warnings.
    let warnings = ConfigWarningLog()

    /// An error at `mark` (or at the start of the file when the node has no position).
    func error(
        _ code: ConfigError.Code, at mark: Mark?, path: String, _ message: String, suggestion: String? = nil
    ) -> ConfigError {
        ConfigError(
            code, file: file, line: mark?.line ?? 0, column: mark?.column ?? 0, keyPath: path, message: message,
            suggestion: suggestion)
    }

    /// The key path of `key` under `path`.
    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : path + "." + key
    }
}

/// One element of a YAML list, with its key path (`sources[2]`).
struct ConfigItem {
    let node: Node
    let path: String
}

/// A YAML mapping of a config file, checked against the keys its section allows, with typed access.
///
/// Every accessor returns nil for an absent key or a null value (`key:`, `key: ~`,
/// `key: null`), expands `${VAR}` in scalars before converting them, and throws a
/// ``ConfigError`` pointing at the value when it has the wrong type. Values of the
/// keys in `secretKeys` are shown as `<redacted>` in errors.
struct ConfigMapping {
    /// Where this mapping is in the document (`sources[0].connection`; empty for the root).
    let path: String
    /// Where the mapping starts.
    let mark: Mark?
    let context: ConfigContext
    /// Keys whose values must never be shown.
    private(set) var secretKeys: Set<String>
    /// Whether every key is accepted here (a plugin's section: the plugin checks its keys).
    let acceptAll: Bool
    /// The keys present, in document order.
    private(set) var keys: [String] = []
    private var entries: [String: (keyMark: Mark?, value: Node)] = [:]

    /// Reads `node` as a mapping whose keys are all in `allowed`.
    ///
    /// With `allowExtensions`, keys starting with `x-` are accepted and ignored (a
    /// place for YAML anchors). `<<: *anchor` merge keys are honoured.
    init(
        _ node: Node, path: String, context: ConfigContext, allowed: [String], secretKeys: Set<String> = [],
        allowExtensions: Bool = false, acceptAll: Bool = false
    ) throws {
        self.acceptAll = acceptAll
        self.path = path
        self.mark = node.mark
        self.context = context
        self.secretKeys = secretKeys
        guard case .mapping(let mapping) = node else {
            throw context.error(.wrongType, at: node.mark, path: path, "expected a mapping, got \(Self.describe(node, secret: false))")
        }
        var merged: [(Node, Node)] = []
        for (key, value) in mapping {
            if key.scalar?.string == "<<", key.scalar?.style == .plain {
                let sources: [Node]
                switch value {
                case .mapping: sources = [value]
                case .sequence(let seq): sources = Array(seq)
                default:
                    throw context.error(.wrongType, at: value.mark, path: path, "'<<' must merge a mapping or a list of mappings")
                }
                for source in sources {
                    guard case .mapping(let m) = source else {
                        throw context.error(.wrongType, at: source.mark, path: path, "'<<' must merge a mapping or a list of mappings")
                    }
                    merged.append(contentsOf: m.map { ($0.key, $0.value) })
                }
                continue
            }
            guard case .scalar(let scalar) = key else {
                throw context.error(.wrongType, at: key.mark, path: path, "keys must be plain words, got \(Self.describe(key, secret: false))")
            }
            try accept(scalar.string, at: key.mark, value: value, allowed: allowed, allowExtensions: allowExtensions)
        }
        // Merged keys count only where the mapping does not set them itself.
        for (key, value) in merged {
            guard let name = key.scalar?.string, entries[name] == nil else { continue }
            try accept(name, at: key.mark, value: value, allowed: allowed, allowExtensions: allowExtensions)
        }
    }

    /// Records key `name` (an `x-` extension is ignored when allowed; a key not in `allowed` is an error).
    private mutating func accept(_ name: String, at keyMark: Mark?, value: Node, allowed: [String], allowExtensions: Bool)
        throws
    {
        if allowExtensions, name.hasPrefix("x-") { return }
        guard acceptAll || allowed.contains(name) else {
            throw context.error(
                .unknownKey, at: keyMark, path: ConfigContext.join(path, name), "unknown key '\(name)'",
                suggestion: KeySuggestion.suggest(for: name, among: allowed))
        }
        keys.append(name)
        entries[name] = (keyMark, value)
    }

    /// The same mapping, with `keys` also never shown (a plugin's secret keys, once it is known).
    func addingSecrets(_ keys: Set<String>) -> ConfigMapping {
        var copy = self
        copy.secretKeys.formUnion(keys)
        return copy
    }

    // MARK: Positions and errors

    /// The key path of `key`.
    func childPath(_ key: String) -> String { ConfigContext.join(path, key) }

    /// Whether `key` is written in the mapping (even with a null value).
    func contains(_ key: String) -> Bool { entries[key] != nil }

    /// The value of `key` when present and not null.
    func node(_ key: String) -> Node? {
        guard let value = entries[key]?.value, !Self.isNull(value) else { return nil }
        return value
    }

    /// Where `key`'s value is (or the key itself, or the mapping, when the value has no position).
    func position(of key: String) -> Mark? {
        entries[key]?.value.mark ?? entries[key]?.keyMark ?? mark
    }

    /// An error about `key`'s value.
    func error(_ key: String, _ code: ConfigError.Code, _ message: String, suggestion: String? = nil) -> ConfigError {
        context.error(code, at: position(of: key), path: childPath(key), message, suggestion: suggestion)
    }

    /// Records a warning about `key` (at its value), for a key that is accepted but not honoured.
    func warn(_ key: String, _ message: String) {
        let at = position(of: key)
        context.warnings.append(
            ConfigWarning(file: context.file, line: at?.line ?? 0, column: at?.column ?? 0, keyPath: childPath(key), message: message))
    }

    /// The error for a required key that is absent (pointing at the mapping, or at the null value).
    func missing(_ key: String) -> ConfigError {
        let at = entries[key].map { $0.value.mark ?? $0.keyMark } ?? mark
        return context.error(.missingKey, at: at, path: childPath(key), "missing required key '\(key)'")
    }

    /// How a value is quoted in an error: `'abc'`, or `<redacted>` for a secret.
    func shown(_ text: String, key: String) -> String {
        secretKeys.contains(key) ? "<redacted>" : Self.quote(text)
    }

    /// A number as shown in an error: as it is, or `<redacted>` for a secret.
    func shownNumber(_ text: String, key: String) -> String {
        secretKeys.contains(key) ? "<redacted>" : text
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
