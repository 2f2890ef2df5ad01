import ArgumentParser
import DESEngine
import DESKit
import Foundation

/// `des retire`: deletes the small originals once their packed copies are proven good.
struct RetireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retire",
        abstract: "Delete the bodies of packed rows once it is safe (sources with bodies.delete_after_pack).",
        discussion: """
            Opt-in per source: bodies: {type: local, root: /data, delete_after_pack: 24h} \
            (0s: as soon as it is safe). A body is deleted only when its row is packed, \
            its container uploaded at least delete_after_pack ago, the packed bytes hash \
            to the sha256 in META, the body's bytes equal the packed ones, and its version \
            (size and ETag, or mtime and inode) is unchanged just before the delete. A body \
            that changed is kept and dead-lettered (stage retire; des dlq lists it). S3 bodies \
            go in DeleteObjects requests of up to 1,000 keys; local ones are unlinked only \
            beneath bodies.root. The row then gets status_source_deleted_value \
            (DES_SOURCE_DELETED) and source_deleted_at where the column exists. Safe under \
            kill -9: the body goes first and the row is marked after, and a pass finds a \
            packed row whose body is gone, checks its packed copy, and marks it.

            Runs until SIGINT/SIGTERM (finishing the batch in hand), or with --until-idle \
            until a pass retires nothing. Metrics (on /metrics with --metrics-port): \
            des_retire_bodies_deleted_total, des_retire_bytes_deleted_total, \
            des_retire_skipped_total{reason}.

            Examples:
              des retire -c des.yaml --dry-run          list what would go
              des retire -c des.yaml --until-idle
              des retire -c prod.yaml --metrics-port 9104
            """)

    @OptionGroup var options: PipelineOptions
    @OptionGroup var observability: WorkerObservabilityOptions
    @Flag(help: "Stop after a pass that retires nothing.") var untilIdle = false
    @Flag(help: "List the bodies that would be deleted; delete and write nothing.") var dryRun = false
    @Option(help: "Rows checked per batch (1...10000).") var batchSize = 500
    @Flag(help: "Print the summary (and, with --dry-run, the bodies) as JSON.") var json = false

    func validate() throws {
        if !(1...10_000).contains(batchSize) { throw ValidationError("--batch-size must be between 1 and 10000, not \(batchSize)") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.retire")
            let runtime = try await Runtime.open(configPath: options.configPath)
            var config = Retirer.Config()
            config.batchSize = batchSize
            config.dryRun = dryRun
            let start = Terminal.seconds()
            let worker = try await runtime.closing {
                let worker = try runtime.retirer(config: config, logger: logger).service(untilIdle: untilIdle || dryRun)
                try await observability.run(worker, runtime: runtime, logger: logger)
                return worker
            }
            let totals = worker.totals ?? .init()
            let secs = max(Terminal.seconds() - start, 1e-9)
            if json {
                var out: [String: Any] = ["dry_run": dryRun, "bytes": totals.bytes, "skipped": totals.skipped, "seconds": secs]
                if dryRun {
                    out["would_delete_count"] = totals.deleted
                    out["would_delete"] = totals.wouldDelete
                } else {
                    out["deleted"] = totals.deleted
                }
                Terminal.out(Terminal.json(out) + "\n")
                return
            }
            if dryRun {
                for line in totals.wouldDelete { Terminal.out("would delete: \(line)\n") }
            }
            let skipped = totals.skipped.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            Terminal.out(
                "\(dryRun ? "would delete" : "deleted") \(totals.deleted) bodies (\(Terminal.bytes(totals.bytes))) in "
                    + "\(String(format: "%.2f", secs)) s\(skipped.isEmpty ? "" : "; kept: \(skipped)")\n")
        }
    }
}
