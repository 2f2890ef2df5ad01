import ArgumentParser
import DESEngine
import DESFormat
import DESKit
import DESNaming
import Foundation

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Rows by status per source, containers by state, shard leases.",
        discussion: """
            Example:
              des status --config configs/local.yaml
              des status --config configs/local.yaml --json
            """)

    @OptionGroup var options: PipelineOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await reportingErrorsAsync {
            _ = options.logger("des.status")
            let runtime = try await Runtime.open(configPath: options.configPath)
            let (sourceStats, containers, leases, letters) = try await runtime.closing {
                var sourceStats: [(String, SourceStats)] = []
                for source in runtime.sources { sourceStats.append((source.name, try await source.stats())) }
                return (
                    sourceStats, try await runtime.metadata.containers(state: nil, shard: nil, day: nil), try await runtime.metadata.leases(),
                    try await runtime.metadata.deadLetters(limit: 5)
                )
            }
            var byState: [String: (count: Int, files: Int, bytes: UInt64)] = [:]
            for c in containers {
                var v = byState[c.state.rawValue] ?? (0, 0, 0)
                v.count += 1
                v.files += c.fileCount
                v.bytes += c.size ?? c.bytes
                byState[c.state.rawValue] = v
            }
            let now = Date().timeIntervalSince1970
            let live = leases.filter { $0.expiresAt > now }
            if json {
                Terminal.out(
                    Terminal.json([
                        "sources": Dictionary(uniqueKeysWithValues: sourceStats.map { ($0.0, [
                            "unnamed": $0.1.unnamed, "pending": $0.1.pending, "claimed": $0.1.claimed,
                            "packed": $0.1.packed, "failed": $0.1.failed, "retired": $0.1.retired, "deleted": $0.1.deleted,
                            "other": $0.1.other,
                        ]) }),
                        "containers": byState.mapValues { ["count": $0.count, "files": $0.files, "bytes": $0.bytes] },
                        "leases": ["total": leases.count, "live": live.count,
                                   "holders": Array(Set(live.map { $0.holder.description })).sorted()],
                        "dead_letters": letters.map { ["source": $0.source, "row_id": $0.rowID, "stage": $0.stage, "reason": $0.reason] },
                    ]) + "\n")
                return
            }
            var out = "sources:\n"
            for (name, s) in sourceStats {
                out += "  \(name): unnamed \(s.unnamed), pending \(s.pending), claimed \(s.claimed), packed \(s.packed), failed \(s.failed)"
                if s.retired > 0 { out += ", body retired \(s.retired)" }
                if s.deleted > 0 { out += ", deleted \(s.deleted)" }
                out += s.other > 0 ? ", other \(s.other)\n" : "\n"
            }
            out += "containers:\n"
            for state in ContainerState.allCases {
                let v = byState[state.rawValue] ?? (0, 0, 0)
                out += "  \(state.rawValue): \(v.count) (\(v.files) files, \(Terminal.bytes(v.bytes)))\n"
            }
            out += "leases: \(live.count) live of \(leases.count)"
            let holders = Set(live.map { $0.holder.description })
            out += holders.isEmpty ? "\n" : " (held by \(holders.sorted().joined(separator: ", ")))\n"
            if !letters.isEmpty {
                out += "latest dead letters:\n"
                let show = DESNameRules.escapedForDisplay  // catalog text: no faked lines, no terminal control
                for l in letters { out += "  \(show(l.source)) row \(show(l.rowID)) [\(show(l.stage))]: \(show(l.reason))\n" }
            }
            Terminal.out(out)
        }
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Read a packed file by its DES name, or by its path in a filesystem source.",
        discussion: """
            The name alone finds the file: its day and shard select the uploaded \
            containers of (day, shard); their indexes find the entry; one ranged \
            read returns the bytes. Exit 66 when no container holds the name.

            With --path instead of a name, the file a filesystem source scanned at that \
            path (relative to its root) is read: its newest packed version, or --version N \
            (des ls-versions --path lists them). Where two roots or sources have the path, \
            --root (and --source) say which (exit 64 until they do); a path never packed, or \
            a version that is not, exits 66.

            With -o, the output is written as cp writes it: a device, FIFO or symbolic \
            link at the path is written through (a FIFO with no reader is an error after \
            10 s, not a hang); an existing regular file is refused with exit 73 unless \
            --force; a new or replaced file is written beside it under a temporary name \
            and renamed into place once complete.

            Examples:
              des get 'DES_20250101_(21BCAA000100_88)' --config configs/local.yaml > file
              des get 'DES_20250101_(21BCAA000100_88)' -o file
              des get -c des.yaml --path invoices/2025/0001.pdf --version 2 -o old.pdf
            """)

    @OptionGroup var options: PipelineOptions
    @Argument(help: "The DES name (or give --path).") var name: String?
    @OptionGroup var path: PathOptions
    @Option(help: "With --path: the version to read (default: the newest packed one).") var version: Int?
    @Option(name: [.short, .customLong("output")], help: "Write to this file instead of stdout (a device, FIFO or link there is written through).")
    var output: String?
    @Flag(help: "Replace an existing regular file at the output path.") var force = false

    func validate() throws {
        if output?.isEmpty == true { throw ValidationError("--output must name a file") }
        switch (name, path.path) {
        case (nil, nil): throw ValidationError("give a DES name, or --path PATH")
        case (.some, .some): throw ValidationError("give a DES name or --path, not both")
        default: break
        }
        if path.path?.isEmpty == true { throw ValidationError("--path must name a file (relative to its root)") }
        if path.path == nil && (version != nil || path.root != nil || path.source != nil) {
            throw ValidationError("--version, --root and --source go with --path")
        }
        if let version, version < 1 { throw ValidationError("--version must be 1 or more, got \(version)") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            _ = options.logger("des.get")
            // The output is checked (and a FIFO's reader waited for) before anything is read; it
            // is removed again, untouched, if the read fails.
            if let name { _ = try SnowflakeName(parsing: name) }
            let out = try output.map { try OutputFile.open($0, force: force) }
            defer { out?.abort() }
            let runtime = try await Runtime.open(configPath: options.configPath, needSources: false, pathSources: path.path != nil)
            let bytes = try await runtime.closing { () -> [UInt8] in
                var name = self.name ?? ""
                if let asked = path.path {
                    let found = try await path.resolve(asked, version: version, runtime: runtime)
                    guard let n = found.name else {
                        throw CLIFailure(message: "'\(asked)' version \(found.version) has no DES name", exitCode: DESExit.noInput)
                    }
                    name = n
                }
                return try await read(name: name, runtime: runtime)
            }
            if let out {
                try bytes.withUnsafeBytes { try out.write($0) }
                try out.commit()
            } else {
                try bytes.withUnsafeBytes { try Terminal.outBytes($0) }
            }
        }
    }

    /// The bytes of `name`, or the failure that says why there are none.
    private func read(name: String, runtime: Runtime) async throws -> [UInt8] {
        let parsed = try SnowflakeName(parsing: name)
        let shard = Int(consistentHash(name, bits: runtime.config.packer.shardBits))
        if let stone = try await runtime.metadata.tombstone(named: name) {
            throw CLIFailure(message: "\(name): deleted (\(stone.origin), at \(Terminal.time(stone.deletedAt))): \(stone.reason)", exitCode: DESExit.noInput)
        }
        let (found, searched) = try await find(name: name, parsed: parsed, shard: shard, runtime: runtime)
        guard let bytes = found else {
            throw CLIFailure(
                message: "\(name): not in any uploaded container of day \(parsed.isoDay), shard \(shard) (\(searched) searched)",
                exitCode: DESExit.noInput)
        }
        return bytes
    }

    /// The bytes of the name from the uploaded containers of its (day, shard) whose recorded
    /// names may hold it, newest first.
    private func find(name: String, parsed: SnowflakeName, shard: Int, runtime: Runtime) async throws -> ([UInt8]?, Int) {
        let reader = StorageArchiveReader(storage: runtime.storage, cache: runtime.cache)
        let containers = try await runtime.metadata.containers(state: .uploaded, shard: shard, day: parsed.isoDay)
        let candidates = NameRanges.candidates(for: name, among: containers)
        for container in candidates {
            if let bytes = try await reader.file(named: name, key: container.key) {
                return (bytes, candidates.count)
            }
        }
        return (nil, candidates.count)
    }
}

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Audit: read every packed row back by name and compare it with its body.",
        discussion: """
            Checks that every packed row's name is in its uploaded container, that no \
            name is in two uploaded containers, and that the packed bytes equal the \
            body at the row's location. Exit 0 when all is well, 65 otherwise.

            Example:
              des check --config configs/local.yaml
            """)

    @OptionGroup var options: PipelineOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await reportingErrorsAsync {
            _ = options.logger("des.check")
            let runtime = try await Runtime.open(configPath: options.configPath)
            let start = Terminal.seconds()
            let report = try await runtime.closing {
                try await CatalogAudit(
                    sources: runtime.sources, fetchers: runtime.fetchers, metadata: runtime.metadata, storage: runtime.storage,
                    staleAfterSeconds: runtime.config.packer.leaseTTLSeconds, shardBits: runtime.config.packer.shardBits,
                    desNamesOnly: runtime.config.marker.naming == "snowflake"
                ).run()
            }
            let secs = max(Terminal.seconds() - start, 1e-9)
            if json {
                Terminal.out(
                    Terminal.json([
                        "ok": report.isOK, "rows_checked": report.rowsChecked, "bytes_checked": report.bytesChecked,
                        "containers": report.containers, "entries": report.entries, "problems": report.problems,
                        "rows_body_retired": report.rowsRetired, "files_deleted": report.filesDeleted,
                        "seconds": secs,
                    ]) + "\n")
            } else {
                for p in report.problems { Terminal.error(p) }
                Terminal.out(
                    "\(report.isOK ? "OK" : "FAILED"): \(report.rowsChecked) packed rows read back by name "
                        + "(\(Terminal.bytes(report.bytesChecked))) from \(report.containers) containers "
                        + (report.rowsRetired > 0 ? "(\(report.rowsRetired) whose bodies are gone from the source: retired, or superseded in a scanned tree) " : "")
                        + (report.filesDeleted > 0 ? "(\(report.filesDeleted) files deleted) " : "")
                        + "(\(report.entries) entries) in \(String(format: "%.2f", secs)) s\n")
                for (source, s) in report.unpacked.sorted(by: { $0.key < $1.key }) {
                    Terminal.out("  \(source) not packed: unnamed \(s.unnamed), pending \(s.pending), claimed \(s.claimed), failed \(s.failed)\n")
                }
            }
            if !report.isOK { throw ExitCode(DESExit.dataError) }
        }
    }
}
