import Yams

/// Sections that name a plugin by `type:`, checked against a ``PluginRegistry`` when the loader has one.
extension ConfigLoader {
    /// Everything a section of one plugin kind needs while it is read.
    struct PluginSectionRules {
        let kind: PluginKind
        /// The keys the loader reads itself (and the only ones allowed when the plugin has no check).
        let stockKeys: [String]
        let secretKeys: Set<String>
    }

    /// Reads the plugin section `key` of `parent`.
    ///
    /// Without a registry its keys must be `stockKeys` (the loader's own view). With one, `type`
    /// must be registered ("did you mean" for a near miss), and a
    /// plugin that registered a check judges the section, keys the loader does not know included
    /// (they reach the plugin as `options`); a plugin without a check gets the stock keys only.
    static func pluginSection(
        _ parent: ConfigMapping, _ key: String, rules: PluginSectionRules, defaultType: String, plugins: PluginRegistry?
    ) throws -> ConfigMapping? {
        guard let plugins else { return try parent.mapping(key, allowed: rules.stockKeys, secretKeys: rules.secretKeys) }
        guard let node = parent.node(key) else { return nil }
        let lenient = try ConfigMapping(
            node, path: parent.childPath(key), context: parent.context, allowed: [], secretKeys: rules.secretKeys, acceptAll: true)
        let type = (try lenient.string("type") ?? defaultType).lowercased()
        try requireRegistered(type, kind: rules.kind, in: lenient, plugins: plugins)
        if let check = plugins.sectionCheck(rules.kind, type: type) {
            try check(ConfigSection(lenient))
            return lenient
        }
        return try ConfigMapping(
            node, path: parent.childPath(key), context: parent.context, allowed: rules.stockKeys, secretKeys: rules.secretKeys)
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

    /// Runs the check a source or metadata plugin registered for a `connection:` block.
    static func checkConnection(_ m: ConfigMapping, type: String, kind: PluginKind, plugins: PluginRegistry?) throws {
        guard let plugins else { return }
        try requireRegistered(type, kind: kind, in: m, plugins: plugins)
        if let check = plugins.sectionCheck(kind, type: type) { try check(ConfigSection(m)) }
    }

    /// The scalar values of the keys outside `known`, `${VAR}` expanded: a plugin's own settings.
    static func options(of m: ConfigMapping, known: [String]) throws -> [String: String] {
        var out: [String: String] = [:]
        for key in m.keys where !known.contains(key) {
            guard let node = m.node(key), node.scalar != nil else { continue }
            out[key] = try m.string(key)
        }
        return out
    }
}
