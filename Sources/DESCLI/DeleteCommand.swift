import ArgumentParser
import DESEngine
import DESKit
import DESNaming
import Foundation

/// `des delete`: tombstones files by name.
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete packed files by name: a tombstone each, served as 410 Gone from then on.",
        discussion: """
            Records a tombstone in the metadata store for each NAME an uploaded container \
            holds, with --reason and the time. From then on GET and HEAD /files/NAME answer \
            410 Gone on every running server (within a second: servers follow the metadata \
            store's events, and poll the tombstones every server.tombstone_poll_seconds behind \
            them), des get exits 66 saying the file was \
            deleted, des check counts it as deleted, and des compact drops its bytes. The \
            rows holding the names get status_deleted_value (DES_DELETED) where the status \
            column can hold it. The source bodies are not touched (des retire deletes those \
            of packed rows).

            Exit 0 when every name was deleted (or was already), 66 when some name is in no \
            uploaded container (the others are deleted all the same).

            Examples:
              des delete -c des.yaml 'DES_20250101_(21BCAA000100_88)' --reason 'GDPR request 4711'
              des delete -c des.yaml --json NAME1 NAME2
            """)

    @OptionGroup var options: PipelineOptions
    @Argument(help: "The DES names to delete.") var names: [String]
    @Option(help: "Why (kept with the tombstone: a ticket, a request).") var reason: String
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if names.isEmpty { throw ValidationError("name at least one file to delete") }
        if let problem = FileDeleter.reasonProblem(reason) { throw ValidationError("--reason \(problem)") }
        if let bad = names.first(where: { (try? SnowflakeName(parsing: $0)) == nil }) {
            throw ValidationError("'\(bad)' is not a DES name")
        }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.delete")
            let runtime = try await Runtime.open(configPath: options.configPath)
            let outcome = try await runtime.closing {
                try await runtime.fileDeleter(logger: logger).delete(names: names, reason: reason)
            }
            for problem in outcome.rowProblems { Terminal.error("rows not marked deleted: \(problem)") }
            if json {
                Terminal.out(
                    Terminal.json([
                        "deleted": outcome.deleted, "already_deleted": outcome.alreadyDeleted, "not_found": outcome.notFound,
                        "rows_marked": outcome.rowsMarked, "row_problems": outcome.rowProblems,
                    ]) + "\n")
            } else {
                for name in outcome.notFound { Terminal.error("\(name): in no uploaded container; nothing deleted") }
                Terminal.out(
                    "deleted \(outcome.deleted.count) files (\(outcome.alreadyDeleted.count) deleted before); "
                        + "\(outcome.rowsMarked) catalog rows marked deleted\n")
            }
            if !outcome.notFound.isEmpty { throw ExitCode(DESExit.noInput) }
        }
    }
}
