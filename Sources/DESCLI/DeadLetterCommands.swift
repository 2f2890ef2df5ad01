import ArgumentParser
import DESEngine
import DESFormat
import DESKit
import Foundation

/// `des dlq`: the dead-letter table as commands, in place of the hand-written SQL of the
/// original's marker guide.
struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "List, retry or resolve dead letters (rows a worker failed for good).",
        discussion: """
            A row the marker, packer or retire worker cannot handle is marked failed in its \
            catalog (retire keeps it packed) and gets a letter in the metadata store's \
            des_dead_letters table, with the reason. Fix the cause, then:

              des dlq list -c des.yaml [--source S] [--stage packer] [--json]
              des dlq retry -c des.yaml --stage packer      send the rows back
              des dlq resolve -c des.yaml --id 12 --id 13   close letters, rows untouched

            retry sends a marker letter's row back to naming (unnamed), a packer letter's \
            back to pending, and closes a retire letter so that the retire worker tries \
            the body again. retry and resolve act on open letters only, and need --id, \
            --source, --stage or --all.
            """,
        subcommands: [DeadLetterListCommand.self, DeadLetterRetryCommand.self, DeadLetterResolveCommand.self])
}

/// The filters `des dlq` subcommands share.
struct DeadLetterFilter: ParsableArguments {
    @Option(help: "Only letters of this source.") var source: String?
    @Option(help: "Only letters of this stage: marker, packer or retire.") var stage: String?
    @Option(name: .customLong("id"), help: "Only this letter (repeatable).") var ids: [Int64] = []

    func validate() throws {
        if let stage, !["marker", "packer", "retire"].contains(stage) {
            throw ValidationError("--stage must be marker, packer or retire, not '\(stage)'")
        }
        if let bad = ids.first(where: { $0 <= 0 }) { throw ValidationError("--id \(bad): letter ids are positive") }
    }

    var isEmpty: Bool { source == nil && stage == nil && ids.isEmpty }

    /// Warns (on stderr) when `--source` names no source of the config: a typo would otherwise
    /// just match nothing. Letters of a source since removed are still listed.
    func warnOfUnknownSource(_ config: DESConfig) {
        guard let source, !config.sources.contains(where: { $0.name == source }) else { return }
        let known = config.sources.map(\.name).sorted().joined(separator: ", ")
        Terminal.note("warning: --source '\(source)' is not a source of this config (its sources: \(known))")
    }

    func query(includeResolved: Bool, limit: Int) -> DeadLetterQuery {
        DeadLetterQuery(source: source, stage: stage, ids: ids.isEmpty ? nil : ids, includeResolved: includeResolved, limit: limit)
    }
}

extension DeadLetterRecord {
    var json: [String: Any] {
        var out: [String: Any] = [
            "id": id, "source": letter.source, "row_id": letter.rowID, "stage": letter.stage, "reason": letter.reason,
            "created_at": createdAt,
        ]
        out["des_name"] = letter.desName ?? NSNull()
        out["resolved_at"] = resolvedAt ?? NSNull()
        return out
    }
}

struct DeadLetterListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List open dead letters, oldest first.",
        discussion: """
            Examples:
              des dlq list -c des.yaml
              des dlq list -c des.yaml --source orders --stage packer --json
              des dlq list -c des.yaml --all --limit 50
            """)

    @OptionGroup var options: PipelineOptions
    @OptionGroup var filter: DeadLetterFilter
    @Flag(help: "Closed letters too.") var all = false
    @Option(help: "At most this many letters (1...100000).") var limit = 1_000
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if !(1...100_000).contains(limit) { throw ValidationError("--limit must be between 1 and 100000, not \(limit)") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            _ = options.logger("des.dlq")
            let runtime = try await Runtime.open(configPath: options.configPath, needSources: false)
            filter.warnOfUnknownSource(runtime.config)
            let letters = try await runtime.closing { try await runtime.metadata.deadLetters(matching: filter.query(includeResolved: all, limit: limit)) }
            if json {
                Terminal.out(Terminal.json(["letters": letters.map(\.json), "count": letters.count]) + "\n")
                return
            }
            if letters.isEmpty {
                Terminal.out("no \(all ? "" : "open ")dead letters\(filter.isEmpty ? "" : " match")\n")
                return
            }
            var out = ""
            for l in letters {
                let state = l.resolvedAt == nil ? "" : " (resolved)"
                // Catalog text (ids, names, reasons quoting paths) escaped: a hostile row cannot fake lines or drive the terminal.
                let show = DESNameRules.escapedForDisplay
                let name = l.letter.desName.map { " \(show($0))" } ?? ""
                out += "\(l.id)  \(show(l.letter.source)) row \(show(l.letter.rowID))\(name) [\(show(l.letter.stage))]\(state): \(show(l.letter.reason))\n"
            }
            out += "\(letters.count) letter(s)\(letters.count == limit ? " (the first \(limit); --limit for more)" : "")\n"
            Terminal.out(out)
        }
    }
}

/// What `retry` and `resolve` share: their options, the open letters they act on, and the report.
struct DeadLetterAction: ParsableArguments {
    @OptionGroup var options: PipelineOptions
    @OptionGroup var filter: DeadLetterFilter
    @Flag(help: "Every open letter.") var all = false
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if filter.isEmpty && !all { throw ValidationError("name the letters: --id, --source or --stage, or --all for every open letter") }
    }

    /// Opens the config (with its sources when `needSources`), hands the open letters the filter
    /// selects to `act`, and reports what it did.
    func run(
        needSources: Bool, _ act: @escaping (DeadLetterDesk, [DeadLetterRecord]) async throws -> DeadLetterDesk.Outcome
    ) async throws -> DeadLetterDesk.Outcome {
        let logger = options.logger("des.dlq")
        let runtime = try await Runtime.open(configPath: options.configPath, needSources: needSources)
        filter.warnOfUnknownSource(runtime.config)
        let outcome = try await runtime.closing {
            let letters = try await runtime.metadata.deadLetters(matching: filter.query(includeResolved: false, limit: Int(Int32.max)))
            return try await act(DeadLetterDesk(sources: runtime.sources, metadata: runtime.metadata, logger: logger), letters)
        }
        Self.report(outcome, json: json)
        return outcome
    }

    static func report(_ outcome: DeadLetterDesk.Outcome, json: Bool) {
        for s in outcome.skipped { Terminal.error("left open: \(s)") }
        if json {
            Terminal.out(
                Terminal.json([
                    "letters_closed": outcome.lettersClosed, "rows_to_naming": outcome.rowsToNaming,
                    "rows_to_packing": outcome.rowsToPacking, "skipped": outcome.skipped,
                ]) + "\n")
        } else {
            var out = "closed \(outcome.lettersClosed) letter(s)"
            if outcome.rowsToNaming > 0 || outcome.rowsToPacking > 0 {
                out += "; \(outcome.rowsToNaming) row(s) back to naming, \(outcome.rowsToPacking) back to packing"
            }
            Terminal.out(out + "\n")
        }
    }
}

struct DeadLetterRetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Send the rows of open dead letters back to the stage that failed them, and close the letters.",
        discussion: """
            A marker letter's row becomes unnamed again, a packer letter's row pending \
            again (its error column cleared); a retire letter is closed so the retire worker \
            tries again. A row no longer failed is left as it is. Exit 0, or 1 when some \
            letters were left open (their source is not in the config).

            Examples:
              des dlq retry -c des.yaml --stage packer --source orders
              des dlq retry -c des.yaml --id 42
            """)

    @OptionGroup var action: DeadLetterAction

    func run() async throws {
        try await reportingErrorsAsync {
            let outcome = try await action.run(needSources: true) { desk, letters in try await desk.retry(letters) }
            if !outcome.skipped.isEmpty { throw ExitCode(DESExit.failure) }
        }
    }
}

struct DeadLetterResolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Close open dead letters without touching their rows.",
        discussion: """
            For rows fixed by hand, or given up on. A row that fails again later gets a new letter.

            Examples:
              des dlq resolve -c des.yaml --id 12 --id 13
              des dlq resolve -c des.yaml --source legacy --stage marker
            """)

    @OptionGroup var action: DeadLetterAction

    func run() async throws {
        try await reportingErrorsAsync {
            _ = try await action.run(needSources: false) { desk, letters in try await desk.resolve(letters) }
        }
    }
}
