import ArgumentParser
import DESEngine
import DESKit
import Foundation
import Logging
import Metrics

/// `des scan`: filesystem sources' directory trees, brought into their catalogs.
struct ScanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Scan the roots of the config's filesystem sources into their catalogs, for the marker and the packer.",
        discussion: """
            A source of connection.type filesystem names directory trees instead of a table:

              sources:
                - name: scans
                  connection:
                    type: filesystem
                    roots: [/srv/scanner/out]
                    include: ["*.pdf", "*.tif"]       # default: every file
                    exclude: ["*.tmp", "*.part", ".*"] # the default
                    min_age: 30                        # seconds a file must be left alone
                    routing: {"invoices/**": invoice}  # glob -> tag (META tags)

            des scan walks each root (in parallel, never leaving it: links are not followed \
            unless follow_symlinks, and then only beneath the root; other file systems are not \
            entered with one_file_system) and writes a row per file version into des_fs_files, \
            a table DES keeps in the metadata store's database. A file is handed to the marker \
            once two scans saw the same size, mtime and ctime and both are older than min_age; \
            des marker run and des packer run then drain it like any other catalog. A file that \
            changes after it was packed gets a new version row (the packed one stays); one that \
            vanishes before it is packed is marked gone. A ready file is hashed once; one whose \
            bytes DES already holds for the source (another path, an earlier version) is recorded \
            as a reference to that entry, not packed again. Read by path with des get --path and \
            des ls-versions --path, or GET /files/by-path/{path} on des serve.

            Several des scan processes (pods) split the roots between them under leases in \
            the metadata store, as packers split shards: each root is walked by the holder of \
            its lease only, and each process holds at most its fair share (the roots divided \
            by the processes scanning, counted by their membership leases); a process that \
            stops gives its roots back, one that dies loses them after 30 s (at once to its own \
            restart on the same host). --pod-name names the holder.

            Runs until SIGINT/SIGTERM, walking again every rescan_seconds, sooner (after \
            min_age) while files wait to settle, and within a second of inotify seeing a \
            change in a watched directory (a hint only: the periodic walk stays the truth); with --until-idle it \
            scans until a scan moves nothing on (files still too young, or still being written, \
            stay waiting for the next run) or leaves no file waiting that was there when it began (files made while it runs are the next run's). \
            Metrics (with --metrics-port): des_scan_files_seen_total, des_scan_rows_inserted_total, \
            des_scan_rows_ready_total, des_scan_rows_duplicate_total, des_scan_rows_gone_total, des_scan_seconds, des_scan_parts_held.

            Examples:
              des scan -c des.yaml --until-idle
              des scan -c des.yaml --metrics-port 9103
            """)

    @OptionGroup var options: PipelineOptions
    @OptionGroup var observability: WorkerObservabilityOptions
    @OptionGroup var backlog: BacklogOptions
    @Flag(help: "Scan until a scan moves nothing on (files still being written wait) or leaves no file waiting that was there when the run began, then stop.") var untilIdle = false
    @Option(help: "The name this process's leases are held under (default: packer.pod_name, else the host name).") var podName: String?
    @Flag(help: "Print the summary as JSON.") var json = false

    func validate() throws {
        if let podName, let problem = PackerConfig.podNameProblem(podName) { throw ValidationError("--pod-name \(problem)") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            let logger = options.logger("des.scan")
            let runtime = try await Runtime.open(configPath: options.configPath)
            let registry = try DESCommandLine.requireRegistry()
            let scanners = try zip(runtime.config.enabledSources, runtime.sources).compactMap { source, connector in
                try registry.makeScanner(source, connector: connector, baseDirectory: runtime.baseDirectory, logger: logger)
            }
            guard !scanners.isEmpty else {
                throw CLIFailure(
                    message: "\(options.configPath): no enabled source that scans (connection.type filesystem): nothing to scan (see des scan --help)",
                    exitCode: DESExit.catalog)
            }
            let own = Self.ownPathProblems(runtime, scanners: scanners, configPath: options.configPath)
            if !own.isEmpty {
                for (source, problem) in own { Terminal.error("\(options.configPath): source '\(source)': \(problem)") }
                throw ExitCode(DESExit.dataError)
            }
            let start = Terminal.seconds()
            let untilIdle = self.untilIdle
            let host = ProcessInfo.processInfo.hostName.isEmpty ? "host" : ProcessInfo.processInfo.hostName
            let pod = podName ?? runtime.config.packer.podName ?? host
            let coordinator = ScanCoordinator(
                scanners: scanners, metadata: runtime.metadata, holder: LeaseHolder(pod: pod, instance: ProcessIdentity.current.token),
                ttlSeconds: Self.leaseTTL, logger: logger)
            let worker = WorkerService<ScanTotals>(name: "scan") { shutdown in
                try await Self.loop(coordinator, scanners: scanners, shutdown: shutdown, untilIdle: untilIdle, logger: logger)
            }
            try await runtime.closing { try await observability.run(worker, runtime: runtime, logger: logger, backlog: backlog) }
            let t = worker.totals ?? .init()
            let secs = max(Terminal.seconds() - start, 1e-9)
            if json {
                Terminal.out(
                    Terminal.json([
                        "seen": t.seen, "inserted": t.inserted, "versions": t.versions, "updated": t.updated, "ready": t.ready, "duplicates": t.duplicates, "read": t.read, "gone": t.gone, "superseded": t.superseded,
                        "waiting": t.waiting, "directories": t.directories, "excluded": t.excluded, "links": t.links,
                        "special": t.special, "unreadable": t.unreadable, "seconds": secs,
                    ]) + "\n")
                return
            }
            Terminal.out(
                "scanned \(t.seen) files in \(t.directories) directories in \(String(format: "%.2f", secs)) s: \(t.inserted) new rows "
                    + "(\(t.versions) new versions), \(t.ready) ready, \(t.duplicates) duplicates of packed files, \(t.gone) gone, \(t.waiting) waiting\n")
            if t.unreadable > 0 {
                // The log names each; the summary must not read as a whole tree scanned.
                Terminal.warn(
                    "\(t.unreadable) names could not be read (see the log): their roots were walked in part, and nothing in them was marked gone")
            }
        }
    }

    /// How long a part's lease lasts unrenewed (renewed every third of it, scanning or not).
    static let leaseTTL = 30.0

    /// Scans the parts this process holds again and again: until a scan changes nothing
    /// (`untilIdle`), else every `rescanSeconds`. The totals: what the last scan saw, and what
    /// every scan wrote.
    static func loop(
        _ coordinator: ScanCoordinator, scanners: [any SourceScanner], shutdown: ShutdownSignal, untilIdle: Bool, logger: Logger
    ) async throws -> ScanTotals {
        if !untilIdle { for scanner in scanners { scanner.watchForChanges() } }
        let rescanSeconds = scanners.map(\.rescanSeconds).min() ?? 300
        let settleSeconds = scanners.map(\.settleSeconds).min() ?? rescanSeconds
        let beat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(leaseTTL / 3 * 1e9))
                if Task.isCancelled { break }
                await coordinator.heartbeat()
            }
        }
        var written = ScanTotals()
        var last = ScanTotals()
        var scannedEver = Set<String>()
        var failure: (any Error)?
        do {
            while !shutdown.isTriggered {
                let began = Terminal.seconds()
                let (t, parts) = try await coordinator.pass()
                last = t
                scannedEver.formUnion(parts)
                Timer(label: "des_scan_seconds").recordNanoseconds(Int64((Terminal.seconds() - began) * 1e9))
                Counter(label: "des_scan_files_seen_total").increment(by: t.seen)
                Counter(label: "des_scan_rows_inserted_total").increment(by: t.inserted)
                Counter(label: "des_scan_rows_ready_total").increment(by: t.ready)
                Counter(label: "des_scan_rows_gone_total").increment(by: t.gone)
                Counter(label: "des_scan_rows_duplicate_total").increment(by: t.duplicates)
                Gauge(label: "des_scan_parts_held").record(parts.count)
                written = written.adding(last)
                logger.info(
                    "scanned", metadata: ["files": "\(last.seen)", "waiting": "\(last.waiting)", "changed": "\(last.changed)", "parts": "\(parts.sorted())"])
                if untilIdle {
                    // Idle: a scan that moved nothing on (files still too young, or still being
                    // written, keep waiting for the next run), or one that left no file waiting
                    // that was there, unchanged, when the run began (what is made or changed
                    // while it runs is the next run's: a directory that never stops receiving
                    // files must not keep a one-shot scan running).
                    if !last.progressed || last.waitingFromBefore == 0 { break }
                    _ = await shutdown.sleep(seconds: 0.2)
                    continue
                }
                // A service: again after rescan_seconds, sooner when files wait to settle or a
                // source hints at a change (inotify), looked at every half second.
                let wait = last.waiting > 0 ? min(rescanSeconds, settleSeconds) : rescanSeconds
                let until = Terminal.seconds() + wait
                while !shutdown.isTriggered && Terminal.seconds() < until && !coordinator.hinted {
                    _ = await shutdown.sleep(seconds: min(0.5, max(0.01, until - Terminal.seconds())))
                }
            }
        } catch {
            failure = error
        }
        // The heartbeat ends first: one in flight must not take the membership back after the release.
        beat.cancel()
        _ = await beat.value
        await coordinator.releaseAll()
        if let failure { throw failure }
        if scannedEver.isEmpty {
            logger.warning("scanned no part: another des scan holds every root's lease (see des status)")
        }
        // What the last scan saw (files, directories, waiting), and every row written.
        var totals = last
        (totals.inserted, totals.versions, totals.updated) = (written.inserted, written.versions, written.updated)
        (totals.ready, totals.gone, totals.superseded) = (written.ready, written.gone, written.superseded)
        (totals.duplicates, totals.read) = (written.duplicates, written.read)
        return totals
    }
}

extension ScanCommand {
    /// DES's own paths — local storage's directory, the work directory, a SQLite metadata
    /// database (with its journal files) and the config file — that a scanned source's part
    /// holds and does not leave out (``SourceScanner/ownPathProblems(_:)``): scanning them would
    /// pack DES's own files.
    static func ownPathProblems(_ runtime: Runtime, scanners: [any SourceScanner], configPath: String) -> [(source: String, problem: String)] {
        func absolute(_ path: String, _ base: String) -> String { path.hasPrefix("/") ? path : base + "/" + path }
        var own: [(what: String, paths: [String])] = [
            ("packer.work_dir", [runtime.config.packer.workDir]),
            ("the config file", [absolute(configPath, FileManager.default.currentDirectoryPath)]),
        ]
        if let storage = runtime.config.storage.settings?.base as? any DirectoryStorageConfiguration {
            own.append(("storage.root", [absolute(storage.directory, runtime.baseDirectory)]))
        }
        let metadata = runtime.config.metadata.connection
        if metadata.type.lowercased() == "sqlite", let database = metadata.database {
            let path = absolute(database, runtime.baseDirectory)
            own.append(("the metadata database", ["", "-wal", "-shm", "-journal"].map { path + $0 }))
        }
        return scanners.flatMap { scanner in scanner.ownPathProblems(own).map { (scanner.sourceName, $0) } }
    }
}
