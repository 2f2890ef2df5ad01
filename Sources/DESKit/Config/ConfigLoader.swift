import Foundation
import Yams

/// Reads DES configuration files (YAML) into a ``DESConfig``.
///
/// The loader checks the whole file against the schema before anything connects:
/// an unknown key (with "did you mean" for near misses), a value of the wrong
/// type, a missing required key, a value out of range and an unset `${VAR}` are
/// each a ``ConfigError`` naming the file, line, column and key path. Secret
/// values never appear in errors. A key that is accepted but not honoured (an
/// original-schema key DES does not act on yet) is recorded as a
/// ``ConfigWarning`` in ``DESConfig/warnings`` instead.
///
/// Values may use `${VAR}` and `${VAR:-default}` (expanded before conversion,
/// so `port: ${PG_PORT:-5432}` is an integer); `$${` is a literal `${`. Keys
/// starting with `x-` at the top level are ignored (a place for YAML anchors),
/// and `<<: *anchor` merges a mapping.
///
/// The loader reads only the config file: it does not resolve paths, open
/// databases or touch the network. Relative paths in the config are relative to
/// the file's directory (``DESConfig/baseDirectory``).
public enum ConfigLoader {
    /// Reads and checks the config file at `path`.
    ///
    /// - Parameters:
    ///   - path: The YAML file; recorded in ``DESConfig/path``.
    ///   - environment: Variables for `${VAR}` (default: the process's environment).
    ///   - knownSourceTypes: When given, a source whose `connection.type` is not one of
    ///     these is an error (with "did you mean"); when nil, any type is accepted here
    ///     and the plugin registry decides later.
    ///   - plugins: When given, every plugin `type:` (sources, metadata, storage, bodies, cache) must be
    ///     one it registers, and each plugin's section is read into its ``PluginConfiguration``
    ///     (``StorageConfig/settings`` and the like). Without one, only DES's own keys are checked:
    ///     plugin sections are kept unread, and nothing can be built from them.
    /// - Throws: ``ConfigError`` (code `unreadable` when the file does not exist or cannot be read).
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        knownSourceTypes: Set<String>? = nil, plugins: PluginRegistry? = nil
    ) throws -> DESConfig {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError(.unreadable, file: path, line: 0, column: 0, keyPath: "", message: "no such config file")
        }
        guard !isDirectory.boolValue else {
            throw ConfigError(.unreadable, file: path, line: 0, column: 0, keyPath: "", message: "is a directory, not a config file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(.unreadable, file: path, line: 0, column: 0, keyPath: "", message: "cannot read the config file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(.syntax, file: path, line: 0, column: 0, keyPath: "", message: "not UTF-8 text")
        }
        return try parse(yaml: text, file: path, environment: environment, knownSourceTypes: knownSourceTypes, plugins: plugins)
    }

    /// Checks YAML text as if it were the file `file` (which is named in errors and recorded in ``DESConfig/path``).
    ///
    /// - Throws: ``ConfigError``.
    public static func parse(
        yaml: String, file: String, environment: [String: String], knownSourceTypes: Set<String>? = nil,
        plugins: PluginRegistry? = nil
    ) throws -> DESConfig {
        let knownSourceTypes = knownSourceTypes ?? plugins.map { Set($0.types(.source)) }
        let context = ConfigContext(file: file, environment: environment)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw syntaxError(error, yaml: yaml, context: context)
        } catch {
            throw context.error(.syntax, at: nil, path: "", "invalid YAML")
        }
        var config = DESConfig()
        config.path = file
        guard let root, !ConfigMapping.isNull(root) else { return config }
        let top = try ConfigMapping(
            root, path: "", context: context,
            allowed: ["sources", "storage", "metadata", "packer", "marker", "cache", "server", "compaction", "events"], allowExtensions: true)

        let packerBitsGiven: Bool
        if let packer = try top.mapping("packer", allowed: packerKeys) {
            config.packer = try parsePacker(packer)
            packerBitsGiven = packer.node("shard_bits") != nil
        } else {
            packerBitsGiven = false
        }
        if let items = try top.items("sources") {
            config.sources = try parseSources(
                items, context: context, packer: &config.packer, packerBitsGiven: packerBitsGiven,
                knownSourceTypes: knownSourceTypes, plugins: plugins)
        }
        if let storage = try pluginSection(top, "storage", rules: storageRules, defaultType: "local", plugins: plugins) {
            config.storage = try parseStorage(storage)
        }
        if let metadata = try top.mapping("metadata", allowed: ["connection"]) {
            config.metadata = try parseMetadata(metadata, plugins: plugins)
        }
        if let marker = try top.mapping("marker", allowed: markerKeys) {
            config.marker = try parseMarker(marker)
        }
        if let cache = try pluginSection(top, "cache", rules: cacheRules, defaultType: "memory", plugins: plugins) {
            config.cache = parseCache(cache)
        }
        if let server = try top.mapping("server", allowed: serverKeys, secretKeys: ["auth_tokens"]) {
            config.server = try parseServer(server)
        }
        if let compaction = try top.mapping("compaction", allowed: compactionKeys) {
            config.compaction = try parseCompaction(compaction)
        }
        if let events = try top.mapping("events", allowed: eventsKeys) {
            config.events = try parseEvents(events, plugins: plugins)
        }
        config.warnings = context.warnings.items
        return config
    }

    /// A ``ConfigError`` for text Yams cannot read (the YAML snippet is left out: it may hold a secret).
    static func syntaxError(_ error: YamlError, yaml: String, context: ConfigContext) -> ConfigError {
        func at(_ mark: Mark?, _ message: String) -> ConfigError {
            context.error(.syntax, at: mark, path: "", message)
        }
        func problem(_ text: String, _ yamlContext: YamlError.Context?) -> String {
            guard let yamlContext else { return "invalid YAML: \(text)" }
            return "invalid YAML: \(text) (\(yamlContext.text) at line \(yamlContext.mark.line), column \(yamlContext.mark.column))"
        }
        switch error {
        case .scanner(let yamlContext, let text, let mark, _),
            .parser(let yamlContext, let text, let mark, _),
            .composer(let yamlContext, let text, let mark, _):
            return at(mark, problem(text, yamlContext))
        case .reader(let text, let offset, _, _):
            let (line, column) = offset.map { lineAndColumn(ofCharacter: $0, in: yaml) } ?? (0, 0)
            return ConfigError(.syntax, file: context.file, line: line, column: column, keyPath: "", message: "invalid YAML: \(text)")
        case .duplicatedKeysInMapping(let duplicates, let yamlContext):
            let keys = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return context.error(
                .duplicate, at: yamlContext.mark, path: "",
                "the mapping here sets \(keys) twice (each key may appear once per mapping)")
        case .dataCouldNotBeDecoded:
            return at(nil, "not UTF-8 text")
        default:
            return at(nil, "invalid YAML")
        }
    }

    /// The 1-based line and column of the `offset`-th character.
    private static func lineAndColumn(ofCharacter offset: Int, in text: String) -> (Int, Int) {
        var line = 1
        var column = 1
        for (i, c) in text.enumerated() {
            if i == offset { break }
            if c == "\n" || c == "\r\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }
}
