import ArgumentParser
import DESEngine
import DESKit
import Foundation

/// `des expire`: retention.
struct ExpireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "expire",
        abstract: "Delete packed files older than their source's retention (sources[].retention).",
        discussion: """
            For each source with retention: 30d (or any duration), deletes the packed files \
            whose name's day ended longer ago than that, exactly as des delete does \
            (tombstones with origin retention; rows DES_DELETED; 410 Gone on every server; \
            des compact then drops their bytes). Each pass also gives the deleted status to \
            the rows of files deleted through DELETE /files/{name}, which the HTTP service \
            records without touching catalogs.

            Runs until SIGINT/SIGTERM, or with --until-idle until a pass deletes nothing. \
            Metrics (on /metrics with --metrics-port): des_expire_files_deleted_total.

            Examples:
              des expire -c des.yaml --dry-run
              des expire -c des.yaml --until-idle
            """)

    @OptionGroup var options: PipelineOptions
    @OptionGroup var observability: WorkerObservabilityOptions
    @Flag(help: "Stop after a pass that deletes nothing.") var untilIdle = false
    @Flag(help: "List the files that would be deleted; write nothing.") var dryRun = false
    @Flag(help: "Print the summary (with --dry-run, the names) as JSON.") var json = false

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.expire")
            let runtime = try await Runtime.open(configPath: options.configPath)
            let chosen = runtime.config.enabledSources.compactMap { config -> Expirer.Source? in
                guard let retention = config.retentionSeconds, let connector = runtime.sources.first(where: { $0.name == config.name }) else {
                    return nil
                }
                return Expirer.Source(connector: connector, retentionSeconds: retention)
            }
            let start = Terminal.seconds()
            let worker = try await runtime.closing { () -> WorkerService<Expirer.Totals> in
                let expirer = Expirer(
                    sources: chosen, deleter: runtime.fileDeleter(logger: logger), metadata: runtime.metadata, dryRun: dryRun, logger: logger)
                let worker = expirer.service(untilIdle: untilIdle || dryRun)
                try await observability.run(worker, runtime: runtime, logger: logger)
                return worker
            }
            let totals = worker.totals ?? .init()
            let secs = max(Terminal.seconds() - start, 1e-9)
            if chosen.isEmpty { Terminal.note("no enabled source sets retention: only the rows of earlier deletes were marked") }
            if json {
                var out: [String: Any] = ["dry_run": dryRun, "expired": totals.expired, "rows_marked": totals.rowsMarked, "seconds": secs]
                if dryRun { out["would_expire"] = totals.wouldExpire }
                Terminal.out(Terminal.json(out) + "\n")
                return
            }
            if dryRun { for name in totals.wouldExpire { Terminal.out("would delete: \(name)\n") } }
            Terminal.out(
                "\(dryRun ? "would delete" : "deleted") \(totals.expired) files past retention; \(totals.rowsMarked) rows of earlier deletes marked, "
                    + "in \(String(format: "%.2f", secs)) s\n")
        }
    }
}
