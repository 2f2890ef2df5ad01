import ArgumentParser
import DESEngine
import DESKit
import Foundation

/// `des compact`: garbage out, small containers merged, reads and packing uninterrupted.
struct CompactCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Rewrite containers with deleted files, merge small ones; delete replaced objects after the grace period.",
        discussion: """
            A container whose deleted (tombstoned) bytes reach compaction.garbage_ratio (0.3) \
            is rewritten with its live entries only, META and checksums kept; uploaded \
            containers of one (day, shard) smaller than compaction.small_container_bytes are \
            merged (with --erase, every container holding a deleted file is rewritten, \
            for erasure requests). Each new container is uploaded and read back, then one metadata \
            transaction records it uploaded and the old ones retired, under the shard's \
            compaction lease and its fencing token (packers keep packing meanwhile), \
            compaction.concurrency (4) shards at once. The catalogs are not written: a row \
            keeps naming the container it was packed into, which the metadata store links to \
            its replacement. Old objects stay readable for compaction.grace (24h), then are \
            deleted.

            Runs until SIGINT/SIGTERM, or with --until-idle until a pass has nothing to do. \
            Metrics (on /metrics with --metrics-port): des_compact_containers_retired_total, \
            des_compact_live_bytes_total, des_compact_dropped_bytes_total, \
            des_compact_objects_deleted_total.

            Examples:
              des compact -c des.yaml --dry-run
              des compact -c des.yaml --until-idle --json
            """)

    @OptionGroup var options: PipelineOptions
    @OptionGroup var observability: WorkerObservabilityOptions
    @Flag(help: "Stop after a pass that has nothing to do.") var untilIdle = false
    @Flag(help: "Report what would be compacted; write nothing.") var dryRun = false
    @Flag(help: "Rewrite every container that holds a deleted file, whatever its garbage ratio (erasure: no deleted byte left once the grace is over).")
    var erase = false
    @Flag(help: "Print the summary as JSON.") var json = false

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.compact")
            let runtime = try await Runtime.open(configPath: options.configPath)
            var config = Compactor.Config()
            config.compaction = runtime.config.compaction
            config.maxContainerBytes = runtime.config.packer.maxContainerBytes
            config.maxContainerFiles = runtime.config.packer.maxContainerFiles
            config.keyPrefix = runtime.config.storage.prefix
            config.workDir = runtime.config.packer.workDir + "/compact"
            config.holder = LeaseHolder(pod: "compactor-" + (ProcessInfo.processInfo.hostName.isEmpty ? "host" : ProcessInfo.processInfo.hostName), instance: ProcessIdentity.current.token)
            config.dryRun = dryRun
            config.erase = erase
            let start = Terminal.seconds()
            let counting = RequestCountingStorage(base: runtime.storage)
            let worker = try await runtime.closing { () -> WorkerService<Compactor.Totals> in
                let compactor = Compactor(metadata: runtime.metadata, storage: counting, config: config, logger: logger)
                let worker = compactor.service(untilIdle: untilIdle || dryRun)
                try await observability.run(worker, runtime: runtime, logger: logger)
                return worker
            }
            let t = worker.totals ?? .init()
            let secs = max(Terminal.seconds() - start, 1e-9)
            let rate = t.secondsCompacting > 0 ? Double(t.liveBytes) / t.secondsCompacting / 1_048_576 : 0
            if json {
                Terminal.out(
                    Terminal.json([
                        "dry_run": dryRun, "containers_retired": t.containersRetired, "containers_written": t.containersWritten,
                        "live_files": t.liveFiles, "live_bytes": t.liveBytes, "dropped_files": t.droppedFiles, "dropped_bytes": t.droppedBytes,
                        "objects_deleted": t.objectsDeleted, "groups_abandoned": t.groupsAbandoned, "shards_skipped": t.shardsSkipped, "seconds": secs,
                        "seconds_compacting": t.secondsCompacting, "live_mb_per_second": rate,
                        "storage_requests": counting.requests, "storage_requests_total": counting.total,
                    ]) + "\n")
            } else if dryRun {
                Terminal.out("would compact \(t.containersRetired) containers, dropping \(Terminal.bytes(t.droppedBytes)) of deleted files\n")
            } else {
                Terminal.out(
                    "compacted \(t.containersRetired) containers into \(t.containersWritten): \(t.liveFiles) live files "
                        + "(\(Terminal.bytes(t.liveBytes)), \(String(format: "%.1f", rate)) MB/s), \(t.droppedFiles) deleted files dropped "
                        + "(\(Terminal.bytes(t.droppedBytes))); \(t.objectsDeleted) replaced objects deleted; in \(String(format: "%.2f", secs)) s\n")
            }
            if t.groupsAbandoned > 0 { throw ExitCode(DESExit.failure) }
        }
    }
}
