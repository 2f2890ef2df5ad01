import ArgumentParser
import DESKit
import Foundation

struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Hold each source's mapping against its real table, and add what DES needs.",
        discussion: """
            DES works on the tables you already have. `check` reflects every enabled SQL source's \
            table from the database's own catalog and shows, column by column, what the mapping \
            finds; `prepare` prints (or with --apply runs) the DDL that adds the DES columns and \
            indexes that are missing, in that database's dialect.

            Required columns: the key (columns.id), the body (columns.s3_key), the status, the DES \
            name, the shard (shard_key_column) and the claimer (columns.claimed_by). Optional, \
            written only where present: claimed_at, des_container, error, packed_at.
            """,
        subcommands: [CatalogCheck.self, CatalogPrepare.self])
}

/// An enabled source of a catalog command: its config, and its connector when it is a SQL source.
struct CatalogSource {
    var config: SourceConfig
    var sql: SQLSourceConnector?

    /// Its mapping against its table, reflected now; nil for a source that is not SQL.
    func plan() async throws -> SQLCatalogPlan? { try await sql?.catalogPlan() }
}

/// Opens every enabled source once, runs `body`, and closes them (also when `body` throws).
func withCatalogSources<T>(_ options: PipelineOptions, _ body: ([CatalogSource]) async throws -> T) async throws -> T {
    let (config, base, registry) = try Runtime.loadConfig(options.configPath)
    if config.enabledSources.isEmpty {
        throw CLIFailure(message: "\(options.configPath): no enabled sources", exitCode: DESExit.dataError)
    }
    var opened: [any SourceConnector] = []
    func closeAll() async { for connector in opened { await connector.close() } }
    do {
        var sources: [CatalogSource] = []
        for source in config.enabledSources {
            let connector = try await registry.makeSource(Runtime.sourceContext(source, config: config, baseDirectory: base, registry: registry))
            opened.append(connector)
            sources.append(CatalogSource(config: source, sql: connector as? SQLSourceConnector))
        }
        let result = try await body(sources)
        await closeAll()
        return result
    } catch {
        await closeAll()
        throw error
    }
}

struct CatalogCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Show each enabled source's mapping against its real table; exit 0 only when every one can run.",
        discussion: """
            For each mapped column: found (with its type as the database names it, and what DES \
            makes of it) or missing; for each recommended index: present or missing; the DDL \
            that adds what is missing (des catalog prepare --apply runs it); and what no DDL of \
            DES's can fix. Exit codes: 0 every enabled source can run, 78 one cannot, 69 a \
            database is down, 77 a login was refused.

            Examples:
              des catalog check -c prod.yaml
              des catalog check -c prod.yaml --json
            """)

    @OptionGroup var options: PipelineOptions
    @Flag(help: "Print JSON: one object per source.") var json = false

    func run() async throws {
        try await reportingErrorsAsync {
            _ = options.logger("des.catalog")
            // A source that cannot be reflected (its server down, a login refused) is reported with
            // the others, not instead of them; its error decides the exit code.
            let plans = try await withCatalogSources(options) { sources in
                var plans: [(source: SourceConfig, plan: SQLCatalogPlan?, error: Error?)] = []
                for source in sources {
                    do { plans.append((source.config, try await source.plan(), nil)) } catch { plans.append((source.config, nil, error)) }
                }
                return plans
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                struct Entry: Encodable {
                    var source: String, type: String, sql: Bool, canRun: Bool, plan: SQLCatalogPlan?, error: String?
                    enum CodingKeys: String, CodingKey { case source, type, sql, canRun = "can_run", plan, error }
                }
                let entries = plans.map {
                    Entry(
                        source: $0.source.name, type: $0.source.connection.type, sql: $0.plan != nil,
                        canRun: $0.error == nil && ($0.plan?.canRun ?? true), plan: $0.plan, error: $0.error.map { DESCLI.describe($0).0 })
                }
                Terminal.out(String(decoding: try encoder.encode(entries), as: UTF8.self) + "\n")
            } else {
                Terminal.out(
                    plans.map { entry in
                        entry.error.map { "source \(entry.source.name) (\(entry.source.connection.type)): cannot check: \(DESCLI.describe($0).0)\n" }
                            ?? Self.describe(entry.source, entry.plan)
                    }.joined(separator: "\n"))
            }
            if let failed = plans.first(where: { $0.error != nil })?.error { throw failed }
            if plans.contains(where: { $0.plan?.canRun == false }) {
                throw CLIFailure(message: "a source cannot run as its table is: see above (des catalog prepare adds DES's columns)", exitCode: DESExit.catalog)
            }
        }
    }

    static func describe(_ source: SourceConfig, _ plan: SQLCatalogPlan?) -> String {
        let (name, type) = (source.name, source.connection.type)
        guard let plan else { return "source \(name) (\(type)): not a SQL source, nothing to reflect\n" }
        var out = "source \(name) (\(type)), table \(plan.table): \(plan.canRun ? "can run" : "cannot run")\n"
        let width = plan.columns.map(\.key.count).max() ?? 0
        for c in plan.columns {
            let key = c.key.padding(toLength: width, withPad: " ", startingAt: 0)
            if c.found {
                out += "  \(key)  \(c.name): \(c.type ?? "?") (\(c.kind ?? "?"))\n"
            } else {
                let what = c.required ? "MISSING, required" : "missing, optional (written only where present)"
                out += "  \(key)  \(c.name): \(what)\(c.desColumn ? "; prepare adds it" : "")\n"
            }
        }
        for i in plan.indexes {
            out += "  index \(i.name) (\(i.purpose)): \(i.present ? "present" : "missing")\n"
        }
        if !plan.problems.isEmpty {
            out += "  problems no DDL of DES's fixes:\n" + plan.problems.map { "    \($0)\n" }.joined()
        }
        if !plan.ddl.isEmpty {
            out += "  DDL that adds what is missing (des catalog prepare --apply):\n" + plan.ddl.map { "    \($0);\n" }.joined()
        }
        return out
    }
}

struct CatalogPrepare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Print the DDL that adds DES's missing columns and indexes; run it with --apply.",
        discussion: """
            Only what reflection finds missing is added, so running it again does nothing. With \
            --apply the statements of one source run in one transaction where the database rolls \
            DDL back (PostgreSQL, SQLite, SQL Server); MySQL/MariaDB and Oracle commit each \
            statement. Then every source is checked again: exit 0 when each can run, 78 when one \
            still cannot (a missing key or body column is yours to fix).

            Examples:
              des catalog prepare -c prod.yaml > add-des-columns.sql
              des catalog prepare -c prod.yaml --apply
            """)

    @OptionGroup var options: PipelineOptions
    @Flag(help: "Run the DDL instead of printing it.") var apply = false

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.catalog")
            try await withCatalogSources(options) { sources in
                var blocked: [(SourceConfig, SQLCatalogPlan)] = []
                var nothing = true
                for source in sources {
                    guard let sql = source.sql, let plan = try await source.plan() else { continue }
                    if plan.ddl.isEmpty {
                        if !plan.canRun { blocked.append((source.config, plan)) }
                        continue
                    }
                    nothing = false
                    guard apply else {
                        Terminal.out("-- source \(source.config.name), table \(plan.table)\n" + plan.ddl.map { $0 + ";\n" }.joined())
                        continue
                    }
                    try await sql.apply(ddl: plan.ddl)
                    logger.notice("catalog prepared", metadata: ["source": "\(source.config.name)", "statements": "\(plan.ddl.count)"])
                    Terminal.out("source \(source.config.name): ran \(plan.ddl.count) statement(s)\n")
                    // Checked again on the same connection: what DDL cannot fix remains to be told.
                    if let after = try await source.plan(), !after.canRun { blocked.append((source.config, after)) }
                }
                if nothing { Terminal.out("-- nothing to add\n") }
                guard apply else { return }
                for (config, plan) in blocked { Terminal.out(CatalogCheck.describe(config, plan)) }
                if !blocked.isEmpty {
                    throw CLIFailure(message: "a source still cannot run: see above", exitCode: DESExit.catalog)
                }
            }
        }
    }
}
