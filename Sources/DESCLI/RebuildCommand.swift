import ArgumentParser
import DESEngine
import DESKit
import Foundation

/// `des rebuild`: the metadata store's container records, recreated from storage.
struct RebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Recreate the metadata store's container records from the containers in storage.",
        discussion: """
            For a metadata store that was lost or restored from an old backup. Lists \
            storage under storage.prefix, reads each container's footer and index with \
            the readers' suffix read (checking the seal), and records each one uploaded \
            under the id its key carries, unless that id or key is recorded already. \
            Objects that cannot be used are listed on stderr and the command exits 65; \
            nothing is recorded for them. A name two containers of its (day, shard) both \
            hold (a copied container, another deployment under the same prefix) is \
            warned about; both are recorded, and des check reports it until one copy is \
            gone. Run it with the packers stopped.

            Storage cannot give back what only the metadata store holds: deletes \
            (tombstones), dead letters, leases. Back the store up (docs/operations.md).

            Examples:
              des rebuild -c des.yaml --dry-run
              des rebuild -c des.yaml && des check -c des.yaml
            """)

    @OptionGroup var options: PipelineOptions
    @Flag(help: "Report what would be recorded; write nothing.") var dryRun = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.rebuild")
            let runtime = try await Runtime.open(configPath: options.configPath, needSources: false)
            let report = try await runtime.closing {
                try await Rebuild(metadata: runtime.metadata, storage: runtime.storage, keyPrefix: runtime.config.storage.prefix,
                    shardBits: runtime.config.packer.shardBits, logger: logger)
                    .run(dryRun: dryRun)
            }
            if json {
                Terminal.out(
                    Terminal.json([
                        "dry_run": dryRun, "recorded": report.recorded, "already_recorded": report.alreadyRecorded, "files": report.files,
                        "big_files": report.bigFiles, "unusable": report.unusable, "retired": report.retired,
                        "ignored_notes": report.ignoredNotes, "missing": report.missing,
                        "duplicates": report.duplicates, "duplicate_count": report.duplicateCount,
                    ]) + "\n")
            } else {
                for line in report.unusable { Terminal.error("unusable: \(line)") }
                for line in report.ignoredNotes { Terminal.warn("ignored: \(line)") }
                for line in report.duplicates { Terminal.warn("duplicate: \(line)") }
                if report.duplicateCount > report.duplicates.count {
                    Terminal.warn("duplicate: \(report.duplicateCount - report.duplicates.count) more names held twice")
                }
                for key in report.missing { Terminal.warn("missing: \(key) is recorded but not in storage (recorded deleted unless this is a dry run or nothing is listed)") }
                Terminal.out(
                    "\(dryRun ? "would record" : "recorded") \(report.recorded) containers (\(report.files) files); "
                        + "\(report.alreadyRecorded) already recorded; \(report.retired) of them replaced by compaction (recorded retired); "
                        + "\(report.unusable.count) unusable objects; \(report.bigFiles) big files\n")
            }
            if !report.unusable.isEmpty { throw ExitCode(DESExit.dataError) }
        }
    }
}
