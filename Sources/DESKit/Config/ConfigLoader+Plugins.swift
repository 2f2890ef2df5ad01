import Yams

/// Sections that name a plugin by `type:`, read by the plugin registered for that type.
extension ConfigLoader {
    /// Everything a section of one plugin kind needs while it is read.
    struct PluginSectionRules {
        let kind: PluginKind
        /// The keys DES reads itself in every section of this kind (`prefix` of `storage:`; the
        /// shared keys of a `connection:` block), besides `type`.
        let ownKeys: [String]
        /// Keys whose values are never shown, whatever the plugin declares.
        let secretKeys: Set<String>
    }

    /// A plugin section as read: its mapping (for the keys DES reads itself) and, with a registry,
    /// the plugin's typed settings.
    struct PluginSectionRead {
        let mapping: ConfigMapping
        let type: String
        let settings: PluginSettings?
    }

    /// Reads the plugin section `key` of `parent` (nil when absent).
    static func pluginSection(
        _ parent: ConfigMapping, _ key: String, rules: PluginSectionRules, defaultType: String, plugins: PluginRegistry?,
        table: TableConfig? = nil
    ) throws -> PluginSectionRead? {
        guard let node = parent.node(key) else { return nil }
        let m = try ConfigMapping(
            node, path: parent.childPath(key), context: parent.context, allowed: [], secretKeys: rules.secretKeys, acceptAll: true)
        let written = try m.string("type") ?? defaultType
        try checkTypeWord(written, in: m)
        let type = written.lowercased()
        return PluginSectionRead(
            mapping: m, type: type, settings: try readPlugin(m, type: type, rules: rules, plugins: plugins, table: table))
    }

    /// Reads a section `m` already opened (a `connection:` block) with the plugin `type` of `rules.kind`:
    /// nil without a registry (only DES's own keys are then checked, by the caller).
    static func readPlugin(
        _ m: ConfigMapping, type: String, rules: PluginSectionRules, plugins: PluginRegistry?, table: TableConfig? = nil
    ) throws -> PluginSettings? {
        guard let plugins else { return nil }
        try requireRegistered(type, kind: rules.kind, in: m, plugins: plugins)
        guard let reader = plugins.section(rules.kind, type: type) else { return nil }
        let m = m.addingSecrets(Set(reader.keys.filter(\.isSecret).map(\.name)))
        let what = "\(rules.kind) type '\(type)'"
        let allowed = ["type"] + rules.ownKeys + reader.keys.map(\.name)
        for key in m.keys where !allowed.contains(key) {
            throw m.context.error(
                .unknownKey, at: m.position(of: key), path: m.childPath(key), "unknown key '\(key)' for \(what)",
                suggestion: KeySuggestion.suggest(for: key, among: allowed))
        }
        // DES's own keys of a `connection:` block that this plugin has no use for (charset beside
        // anything but MySQL; a host beside a SQLite file): accepted with a warning, never silently.
        for key in m.keys where rules.ownKeys.contains(key) && reader.ignoredConnectionKeys.contains(key) && m.node(key) != nil {
            m.warn(key, "means nothing to the '\(type)' plugin; ignored")
        }
        return try read(m, reader: reader, own: rules.ownKeys, secretKeys: rules.secretKeys, what: what, table: table)
    }

    /// Hands `m` to the plugin's reader and refuses a written key that nobody read.
    static func read(
        _ m: ConfigMapping, reader: PluginRegistry.Section, own: [String], secretKeys: Set<String>, what: String,
        table: TableConfig? = nil
    ) throws -> PluginSettings {
        let section = ConfigSection(m, table: table)
        let settings = try reader.parse(section)
        for key in section.unreadKeys(except: Set(own)) {
            throw m.error(
                key, .unreadKey,
                "\(what) declares '\(key)' but never reads it (a bug in the plugin: the value would be accepted and ignored)")
        }
        let secrets = secretKeys.union(reader.keys.filter(\.isSecret).map(\.name))
        let written = section.written(secretKeys: secrets).filter { !own.contains($0.key) }
        return PluginSettings(settings, written: written)
    }

    /// A section built in code (`values`, scalars only) read by the plugin `type`, as if written in a file named `what`.
    static func readSection(values: [String: String], type: String, what: String, reader: PluginRegistry.Section) throws
        -> PluginSettings
    {
        var pairs: [(Node, Node)] = [(Node("type"), Node(type))]
        for (key, value) in values.sorted(by: { $0.key < $1.key }) { pairs.append((Node(key), Node(value))) }
        let context = ConfigContext(file: what, environment: [:])
        let m = try ConfigMapping(
            Node.mapping(Node.Mapping(pairs)), path: what, context: context, allowed: [], acceptAll: true)
        let allowed = ["type"] + reader.keys.map(\.name)
        for key in m.keys where !allowed.contains(key) {
            throw DESKitError(.configuration, "\(what): '\(key)' is not a key of \(type)")
        }
        return try read(m, reader: reader, own: [], secretKeys: [], what: "\(what) type '\(type)'")
    }

    /// A plugin `type:` must be a word (letters, digits, `-`, `_`).
    static func checkTypeWord(_ text: String, in m: ConfigMapping) throws {
        guard !text.isEmpty, text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw m.error("type", .invalidValue, "'\(text)' is not a plugin type (letters, digits, '-' and '_')")
        }
    }

    /// Refuses a `type` no plugin of `kind` registers.
    static func requireRegistered(_ type: String, kind: PluginKind, in m: ConfigMapping, plugins: PluginRegistry) throws {
        let registered = plugins.types(kind)
        guard !registered.contains(type) else { return }
        let message = "\(kind) type '\(type)': no plugin registers it (registered: \(registered.isEmpty ? "none" : registered.joined(separator: ", ")))"
        if m.contains("type") {
            throw m.error("type", .invalidValue, message, suggestion: KeySuggestion.suggest(for: type, among: registered))
        }
        throw m.context.error(.invalidValue, at: m.mark, path: m.childPath("type"), message)
    }
}
