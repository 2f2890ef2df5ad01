import ArgumentParser
import DESEngine
import DESKit
import DESNaming
import Foundation

struct MarkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "marker", abstract: "The marker worker: gives catalog rows their DES names.",
        subcommands: [MarkerRun.self])
}

struct MarkerRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Name pending catalog rows: Snowflake name, hash and shard, in batches.",
        discussion: """
            Runs until SIGINT/SIGTERM (finishing the batch in hand), or with \
            --until-idle until no source has rows needing a name. Metrics: \
            des_marker_entries_marked_total{status}, des_marker_batch_duration_seconds, \
            des_marker_errors_total{error_type}, des_marker_retries_total, des_marker_dlq_entries_total, \
            and the backlog gauges des_catalog_rows{source,status} and \
            des_catalog_oldest_pending_seconds{source} (on /metrics with --metrics-port, beside \
            /health, /health/live and /health/ready).

            Examples:
              des marker run --config configs/local.yaml --until-idle
              des marker run --config prod.yaml --metrics-port 9101
            """)

    @OptionGroup var options: PipelineOptions
    @OptionGroup var observability: WorkerObservabilityOptions
    @OptionGroup var backlog: BacklogOptions
    @Flag(help: "Stop when no rows need a name.") var untilIdle = false

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.marker")
            let runtime = try await Runtime.open(configPath: options.configPath)
            let start = Terminal.seconds()
            let worker = try await runtime.closing {
                let worker = try runtime.marker(logger: logger).service(untilIdle: untilIdle)
                try await observability.run(worker, runtime: runtime, logger: logger, backlog: backlog)
                return worker
            }
            let totals = worker.totals ?? .init()
            let secs = max(Terminal.seconds() - start, 1e-9)
            Terminal.out("marked \(totals.marked) rows (\(totals.failed) failed) in \(String(format: "%.2f", secs)) s, \(Int(Double(totals.marked) / secs)) rows/s\n")
        }
    }
}

struct PackerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "packer", abstract: "The packer worker: packs named rows into containers.",
        subcommands: [PackerRun.self])
}

struct PackerRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Lease shards, claim their rows from every source, pack, upload, mark packed.",
        discussion: """
            Exactly once, even under kill -9: rows are marked packed only after \
            their container is uploaded and recorded under the shard lease's \
            fencing token; on start and on lease takeover the packer recovers \
            what a dead predecessor left. SIGINT/SIGTERM finishes and uploads the \
            open containers, then releases the leases.

            Metrics (on /metrics with --metrics-port, beside /health, /health/live and \
            /health/ready): des_packer_files_packed_total, des_packer_bytes_packed_total, \
            des_packer_files_failed_total, des_packer_containers_uploaded_total, \
            des_packer_leases_lost_total, des_packer_errors_total{error_type}, \
            des_packer_claim_duration_seconds, des_packer_finalize_duration_seconds, \
            des_packer_bytes_uploaded_total, des_packer_open_containers, des_packer_leases_held, \
            des_fencing_rejections_total{worker}, des_storage_errors_total{operation}, and the \
            backlog gauges des_catalog_rows{source,status} and des_catalog_oldest_pending_seconds{source} \
            (see --backlog-interval).

            Examples:
              des packer run --config configs/local.yaml --until-idle
              des packer run --config prod.yaml --pod-index 2 --pod-count 4 --metrics-port 9102
            """)

    @OptionGroup var options: PipelineOptions
    @OptionGroup var observability: WorkerObservabilityOptions
    @OptionGroup var backlog: BacklogOptions
    @Flag(help: "Stop (after uploading every open container) when no owned shard has pending rows.") var untilIdle = false
    @Option(help: "This pod's index (overrides packer.pod_index).") var podIndex: Int?
    @Option(help: "Number of pods (overrides packer.pod_count).") var podCount: Int?
    @Option(help: "Stable pod name (overrides packer.pod_name).") var podName: String?

    func validate() throws {
        if let podName, let problem = PackerConfig.podNameProblem(podName) { throw ValidationError("--pod-name \(problem)") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.packer")
            let runtime = try await Runtime.open(configPath: options.configPath)
            var config = runtime.config.packer
            if let podIndex { config.podIndex = podIndex }
            if let podCount { config.podCount = podCount }
            if let podName { config.podName = podName }
            let start = Terminal.seconds()
            let worker = try await runtime.closing {
                let worker = try runtime.packer(config: config, logger: logger).service(untilIdle: untilIdle)
                try await observability.run(worker, runtime: runtime, logger: logger, backlog: backlog)
                return worker
            }
            let totals = worker.totals ?? .init()
            let secs = max(Terminal.seconds() - start, 1e-9)
            Terminal.out(
                "packed \(totals.filesPacked) files (\(Terminal.bytes(totals.bytesPacked))) into \(totals.containersUploaded) containers, "
                    + "\(totals.filesFailed) failed, in \(String(format: "%.2f", secs)) s, \(Int(Double(totals.filesPacked) / secs)) files/s\n")
        }
    }
}

struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Recover what crashed packers left: stale claims, partial containers.",
        discussion: """
            For each shard whose lease is free or expired: a writing container with \
            no object is discarded, one whose object validates is recorded uploaded; \
            claimed rows found in an uploaded container are marked packed, others \
            return to pending. Shards held by live packers are skipped. Temporary \
            objects that interrupted uploads left in storage are removed when their \
            writer is provably dead (same host) or older than an hour; finished \
            containers never are.

            Example:
              des recover --config configs/local.yaml
            """)

    @OptionGroup var options: PipelineOptions
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.recover")
            let runtime = try await Runtime.open(configPath: options.configPath)
            let recovery = Recovery(sources: runtime.sources, metadata: runtime.metadata, storage: runtime.storage, logger: logger)
            let holder = LeaseHolder(pod: "des-recover-\(ProcessInfo.processInfo.hostName)", instance: ProcessIdentity.current.token)
            let r = try await runtime.closing {
                // Only shards with claimed or pending rows or a `writing` container can need recovery.
                let everyShard = try ShardAssignment(shardBits: runtime.config.packer.shardBits)
                let shards = try await ShardsWithWork.find(sources: runtime.sources, metadata: runtime.metadata, assignment: everyShard)
                return try await recovery.recoverAll(
                    shards: shards, holder: holder, ttlSeconds: runtime.config.packer.leaseTTLSeconds, keyPrefix: runtime.config.storage.prefix)
            }
            if json {
                Terminal.out(
                    Terminal.json([
                        "containers_recovered": r.containersRecovered, "containers_discarded": r.containersDiscarded,
                        "rows_packed": r.rowsPacked, "rows_released": r.rowsReleased, "shards_skipped": r.shardsSkipped,
                        "temporaries_removed": r.temporariesRemoved,
                    ]) + "\n")
            } else {
                Terminal.out(
                    "recovered: \(r.containersRecovered) containers recorded uploaded, \(r.containersDiscarded) discarded, "
                        + "\(r.rowsPacked) rows marked packed, \(r.rowsReleased) returned to pending, \(r.shardsSkipped) shards skipped (held by live packers), "
                        + "\(r.temporariesRemoved) temporary objects removed\n")
            }
        }
    }
}
