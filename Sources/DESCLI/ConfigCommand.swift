import ArgumentParser
import DESKit
import DESServer
import Foundation

/// `des config …`: work with config files.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with DES config files.",
        subcommands: [ConfigCheckCommand.self, ConfigKeysCommand.self]
    )
}

/// `des config check FILE`: validates a config file without connecting to anything.
struct ConfigCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a config file without connecting to anything.",
        discussion: """
            Reads FILE, expands ${VAR} and ${VAR:-default} from the environment and \
            checks every key, type and range. Prints a summary when the file is \
            valid (passwords shown as ***); otherwise prints one line \
            FILE:LINE:COL: key: message and exits 65. A missing FILE exits 66.

            Examples:
              des config check configs/local.yaml
              des config check -c configs/local.yaml
              PG_PASSWORD=x des config check configs/source_databases.yaml --json
            """
    )

    @Argument(help: "The config file.", completion: .file(extensions: ["yaml", "yml"]))
    var fileArgument: String?

    @Option(name: [.customShort("c"), .customLong("config")], help: "The config file, as every other command takes it (instead of FILE).")
    var configOption: String?

    /// The file, however it was given.
    var file: String { configOption ?? fileArgument ?? "" }

    func validate() throws {
        switch (fileArgument, configOption) {
        case (nil, nil): throw ValidationError("name the config file: des config check FILE (or -c FILE)")
        case (.some, .some): throw ValidationError("name the config file once: FILE or -c FILE, not both")
        default: break
        }
    }

    @Flag(help: "Print the summary (or the error) as JSON on stdout.")
    var json = false

    func run() throws {
        try reportingErrors {
            guard FileManager.default.fileExists(atPath: file) else {
                throw CLIFailure(message: "\(file): no such config file", exitCode: DESExit.noInput)
            }
            // Every plugin type must be one this binary registers, and each plugin judges its own section.
            let registry = try DESCommandLine.requireRegistry()
            let config: DESConfig
            do {
                config = try ConfigLoader.load(path: file, plugins: registry)
            } catch let error as ConfigError {
                if json { Terminal.out(Terminal.json(Self.errorJSON(error)) + "\n") }
                throw error
            }
            // Keys accepted but not (yet) honoured: one line each on stderr, file:line:col: key: what.
            for warning in config.warnings { Terminal.warn(warning.description) }
            // The credentials des serve would put in force: server.jwt's key files are read as it reads them.
            let credentials = try ServerCredentials(config: config, baseDirectory: Runtime.baseDirectory(of: file))
            for why in credentials.skippedKeys { Terminal.warn("server.jwt: JWKS key skipped: \(why)") }
            Terminal.out(
                json
                    ? Terminal.json(ConfigSummary.json(config, credentials: credentials)) + "\n"
                    : ConfigSummary.text(config, credentials: credentials))
        }
    }

    static func errorJSON(_ e: ConfigError) -> [String: Any] {
        [
            "valid": false, "file": e.file, "line": e.line, "column": e.column, "key": e.keyPath, "code": "\(e.code)",
            "message": e.message, "suggestion": e.suggestion ?? NSNull(),
        ]
    }
}

/// The summary `des config check` prints: what each section says, secrets as `***`.
enum ConfigSummary {
    static let masked = "***"

    /// Who may call des serve's API: `open`, or the static tokens and the JWT keys.
    static func authSummary(_ config: DESConfig, _ credentials: ServerCredentials) -> String {
        guard credentials.isConfigured else { return "API open (no auth_tokens, DES_SERVER_TOKENS or jwt)" }
        var parts: [String] = []
        if !credentials.tokens.isEmpty { parts.append("\(credentials.tokens.count) static token\(credentials.tokens.count == 1 ? "" : "s")") }
        if let j = config.server.jwt {
            parts.append("JWTs for audience '\(j.audience)' (\(credentials.jwtKeyCount) key\(credentials.jwtKeyCount == 1 ? "" : "s"), writes need '\(j.writeScope)')")
        }
        return "auth: " + parts.joined(separator: ", ") + (config.server.tls != nil ? ", TLS" : "")
    }

    static func text(_ config: DESConfig, credentials: ServerCredentials) -> String {
        var out = "\(config.path ?? "config"): valid\n"
        let enabled = config.enabledSources.count
        out += "sources: \(config.sources.count) (\(enabled) enabled)\n"
        for s in config.sources {
            let c = s.connection
            out += "  \(s.name) (\(c.type), \(s.enabled ? "enabled" : "disabled"))\n"
            if let host = c.host { out += "    host:      \(host)\(c.port.map { ":\($0)" } ?? "")\n" }
            if let database = c.database { out += "    database:  \(database)\n" }
            if let user = c.username { out += "    username:  \(user)\n" }
            if c.password != nil { out += "    password:  \(masked)\n" }
            // What the source's plugin read of the block (a filesystem source's roots and globs; secrets ***).
            if let written = c.settings?.summary, !written.isEmpty { out += "    options:   \(written)\n" }
            let table = (s.table.schema.map { $0 + "." } ?? "") + s.table.name
            out += "    table:     \(table) (key column \(s.table.columns.s3Key), status column \(s.table.columns.status))\n"
            out += "    bodies:    \(s.bodies.type)\(s.bodies.settings.map { $0.summary.isEmpty ? "" : ", " + $0.summary } ?? "")\n"
            let batch = s.batchSize ?? config.packer.batchSize
            let stale = s.effectiveClaimTimeoutSeconds(packer: config.packer)
            let staleText = stale == stale.rounded() ? String(Int(stale)) : String(stale)
            out += "    batch:     \(batch) row\(batch == 1 ? "" : "s") a claim, claims stale after \(staleText) s, shard_bits \(s.shardBits ?? config.packer.shardBits)\n"
        }
        let st = config.storage
        var storage = "\(st.type), prefix \(st.prefix)"
        if let written = st.settings?.summary, !written.isEmpty { storage += ", " + written }
        out += "storage:  \(storage)\n"
        let m = config.metadata.connection
        var metadata = m.type
        if let host = m.host { metadata += " \(host)\(m.port.map { ":\($0)" } ?? "")" }
        if let database = m.database { metadata += " \(database)" }
        if m.password != nil { metadata += ", password \(masked)" }
        out += "metadata: \(metadata)\n"
        let p = config.packer
        out += "packer:   \(1 << p.shardBits) shards (shard_bits \(p.shardBits)), pod \(p.podIndex) of \(p.podCount), "
            + "claim_mode \(p.claimMode.rawValue), work_dir \(p.workDir)\n"
        let k = config.marker
        out += "marker:   \(k.naming) names, prefix \(k.namePrefix), node \(k.nodeID), batch \(k.batchSize)\n"
        let c = config.cache
        out += "cache:    \(c.type)\(c.settings.map { $0.summary.isEmpty ? "" : ", " + $0.summary } ?? "")\n"
        out += "server:   \(config.server.host):\(config.server.port), \(authSummary(config, credentials))\n"
        let e = config.events
        let retain = e.retain.formatted(.number.grouping(.automatic))
        out += "events:   "
            + (e.follow
                ? "followed (outbox read every \(e.pollSeconds) s or on a wake-up), "
                : "not followed (servers poll: containers every \(config.server.containerRefreshSeconds) s, deletes every \(config.server.tombstonePollSeconds) s), ")
            + "outbox keeps \(retain)"
            + (e.publish.map { p in ", published by des relay to \(p.type)" + (p.settings.map { $0.summary.isEmpty ? "" : " (" + $0.summary + ")" } ?? "") } ?? "")
            + "\n"
        return out
    }

    /// What a plugin section wrote (secrets as `<redacted>`), for `--json`.
    static func written(_ settings: PluginSettings?) -> [String: Any] {
        var out: [String: Any] = [:]
        for value in settings?.written ?? [] { out[value.key] = value.shown }
        return out
    }

    static func json(_ config: DESConfig, credentials: ServerCredentials) -> [String: Any] {
        func opt(_ v: Any?) -> Any { v ?? NSNull() }
        let sources: [[String: Any]] = config.sources.map { s in
            let c = s.connection
            return [
                "name": s.name, "enabled": s.enabled, "type": c.type, "host": opt(c.host), "port": opt(c.port),
                "database": opt(c.database), "username": opt(c.username), "password": c.password == nil ? NSNull() : masked,
                "table": s.table.name, "schema": opt(s.table.schema), "batch_size": s.batchSize ?? config.packer.batchSize,
                "claim_timeout_seconds": s.effectiveClaimTimeoutSeconds(packer: config.packer),
                "shard_bits": s.shardBits ?? config.packer.shardBits,
                "bodies": (["type": s.bodies.type] as [String: Any]).merging(written(s.bodies.settings)) { own, _ in own },
            ]
        }
        let st = config.storage
        let m = config.metadata.connection
        let p = config.packer
        return [
            "valid": true, "path": opt(config.path), "sources": sources,
            "storage": ["type": st.type, "prefix": st.prefix].merging(written(st.settings)) { own, _ in own },
            "metadata": [
                "type": m.type, "host": opt(m.host), "port": opt(m.port), "database": opt(m.database),
                "password": m.password == nil ? NSNull() : masked,
            ] as [String: Any],
            "packer": [
                "shard_bits": p.shardBits, "shards": 1 << p.shardBits, "pod_index": p.podIndex, "pod_count": p.podCount,
                "work_dir": p.workDir, "batch_size": p.batchSize, "claim_mode": p.claimMode.rawValue,
            ] as [String: Any],
            "marker": ["naming": config.marker.naming, "name_prefix": config.marker.namePrefix, "node_id": config.marker.nodeID]
                as [String: Any],
            "cache": ["type": config.cache.type].merging(written(config.cache.settings)) { own, _ in own },
            "server": [
                "host": config.server.host, "port": config.server.port, "static_tokens": credentials.tokens.count,
                "jwt": config.server.jwt.map { j -> [String: Any] in
                    ["keys": credentials.jwtKeyCount, "skipped_keys": credentials.skippedKeys.count, "audience": j.audience, "issuer": opt(j.issuer), "write_scope": j.writeScope]
                } ?? NSNull(),
                "tls": config.server.tls != nil,
            ] as [String: Any],
            "events": [
                "follow": config.events.follow, "poll_seconds": config.events.pollSeconds, "gap_seconds": config.events.gapSeconds,
                "retain": config.events.retain, "fallback_refresh_seconds": config.events.fallbackRefreshSeconds,
                "publish": config.events.publish.map { ["type": $0.type].merging(written($0.settings)) { own, _ in own } } as Any,
            ] as [String: Any],
        ]
    }
}
