import ArgumentParser
import DESKit
import Foundation

/// `des config keys`: every plugin section's keys, from the plugins' own tables.
struct ConfigKeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List the keys each plugin of this binary reads from its config section.",
        discussion: """
            Each plugin declares its section's keys once (name, kind and bounds, default, \
            help); the config loader allows exactly those, and refuses a declared key the \
            plugin never reads. This prints those tables: for storage, cache and bodies \
            sections, every key besides `type`; for `connection:` blocks, the plugin's own \
            keys besides the ones every SQL connection shares (host, port, database, \
            username, password, schema, charset, pool_size, pool_recycle, pool_pre_ping). \
            docs/configuration.md embeds the --markdown output.

            Examples:
              des config keys
              des config keys --kind storage --json
            """
    )

    @Option(help: "Only this kind of plugin: source, metadata, storage, bodies or cache.")
    var kind: PluginKind?

    @Flag(help: "Print the tables as Markdown (as docs/configuration.md embeds them).")
    var markdown = false

    @Flag(help: "Print the tables as JSON.")
    var json = false

    func validate() throws {
        if markdown && json { throw ValidationError("choose --markdown or --json, not both") }
    }

    func run() throws {
        try reportingErrors {
            let groups = Self.groups(try DESCommandLine.requireRegistry(), kind: kind)
            if json {
                Terminal.out(Terminal.json(groups.map(Self.json)) + "\n")
            } else if markdown {
                Terminal.out(Self.markdown(groups))
            } else {
                Terminal.out(Self.text(groups))
            }
        }
    }

    /// Types of one kind sharing one key table.
    struct Group {
        var kind: PluginKind
        var types: [String]
        var keys: [ConfigKey]

        var title: String {
            let names = types.map { "`\($0)`" }.joined(separator: ", ")
            switch kind {
            case .source: return "`connection:` of source type\(types.count > 1 ? "s" : "") \(names)"
            case .metadata: return "`metadata.connection:` of type\(types.count > 1 ? "s" : "") \(names)"
            case .storage: return "`storage:` type\(types.count > 1 ? "s" : "") \(names)"
            case .bodies: return "`bodies:` type\(types.count > 1 ? "s" : "") \(names)"
            case .cache: return "`cache:` type\(types.count > 1 ? "s" : "") \(names)"
            case .events: return "`events.publish:` type\(types.count > 1 ? "s" : "") \(names)"
            }
        }
    }

    /// The registry's plugins, kind by kind, types with the same table together.
    static func groups(_ registry: PluginRegistry, kind: PluginKind?) -> [Group] {
        var out: [Group] = []
        for k in [PluginKind.storage, .cache, .bodies, .source, .metadata, .events] where kind == nil || kind == k {
            for type in registry.types(k) {
                let keys = registry.keys(k, type: type) ?? []
                if let i = out.firstIndex(where: { $0.kind == k && $0.keys == keys }) {
                    out[i].types.append(type)
                } else {
                    out.append(Group(kind: k, types: [type], keys: keys))
                }
            }
        }
        return out
    }

    static func text(_ groups: [Group]) -> String {
        var out = ""
        for g in groups {
            out += g.title.replacingOccurrences(of: "`", with: "") + "\n"
            if g.keys.isEmpty { out += "  (no keys besides type)\n" }
            for key in g.keys {
                out += "  \(key.name): \(key.kindDescription)\(key.defaultValue.map { ", default \($0)" } ?? "")\n      \(key.help)\n"
            }
        }
        return out
    }

    static func markdown(_ groups: [Group]) -> String {
        var out = ""
        for g in groups {
            out += "#### \(g.title)\n\n"
            if g.keys.isEmpty {
                out += "No keys besides `type`.\n\n"
                continue
            }
            out += "| Key | Kind | Default | Meaning |\n|---|---|---|---|\n"
            for key in g.keys {
                let help = key.help.replacingOccurrences(of: "|", with: "\\|")
                out += "| `\(key.name)` | \(key.kindDescription) | \(key.defaultValue.map { "`\($0)`" } ?? "—") | \(help) |\n"
            }
            out += "\n"
        }
        return out
    }

    static func json(_ g: Group) -> [String: Any] {
        [
            "kind": g.kind.rawValue, "types": g.types,
            "keys": g.keys.map { key -> [String: Any] in
                ["name": key.name, "kind": key.kindDescription, "default": key.defaultValue ?? NSNull(), "help": key.help]
            },
        ]
    }
}

extension PluginKind: ExpressibleByArgument {}
