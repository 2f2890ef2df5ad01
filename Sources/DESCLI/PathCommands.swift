import ArgumentParser
import DESKit
import Foundation

/// Which file by path: `--path`, and where two roots or sources have it, `--root`/`--source`.
struct PathOptions: ParsableArguments {
    @Option(help: "A filesystem source's file, by its path relative to its root.") var path: String?
    @Option(help: "With --path: the root it lies beneath, as the config names it (where two roots have the path).") var root: String?
    @Option(help: "With --path: the source (where two filesystem sources have the path).") var source: String?

    /// The lookup over `runtime`'s path sources, failing with exit 66 when the config has none.
    func lookup(_ runtime: Runtime) throws -> PathLookup {
        let lookup = try runtime.pathLookup()
        if lookup.indexes.isEmpty {
            throw CLIFailure(
                message: "no enabled source keeps files by path (connection.type filesystem): --path has nothing to look in",
                exitCode: DESExit.noInput)
        }
        if let source, !lookup.indexes.contains(where: { $0.sourceName == source }) {
            let known = lookup.indexes.map(\.sourceName).joined(separator: ", ")
            throw CLIFailure(message: "--source \(source): not an enabled filesystem source (there are: \(known))", exitCode: DESExit.usage)
        }
        return lookup
    }

    /// The version of `asked` to read (see ``PathLookup/resolve(path:version:source:root:)``).
    func resolve(_ asked: String, version: Int?, runtime: Runtime) async throws -> PathVersion {
        do {
            return try await lookup(runtime).resolve(path: asked, version: version, source: source, root: root)
        } catch let error as PathLookupError {
            throw CLIFailure(message: error.message, exitCode: error.code == .ambiguous ? DESExit.usage : DESExit.noInput)
        }
    }
}

/// `des ls-versions --path P`: every version a filesystem source recorded at a path.
struct LsVersionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls-versions",
        abstract: "List the versions of a filesystem source's file, by its path.",
        discussion: """
            A file that changed after it was packed gets a new version; the old one stays \
            readable (des get --path P --version N). For each version: its number, its row's \
            status (packed, superseded: replaced or removed in the tree since, still held; \
            observed, new, pending: not packed yet; gone: removed before it was packed), \
            size, mtime, DES name and SHA-256. Exit 66 when no source has the path.

            Examples:
              des ls-versions -c des.yaml --path invoices/2025/0001.pdf
              des ls-versions -c des.yaml --path logs/app.log --json
            """)

    @OptionGroup var options: PipelineOptions
    @OptionGroup var path: PathOptions
    @Flag(help: "Print JSON: one object per version.") var json = false

    func validate() throws {
        guard let p = path.path, !p.isEmpty else { throw ValidationError("--path PATH is required") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            _ = options.logger("des.ls-versions")
            let asked = path.path ?? ""
            let runtime = try await Runtime.open(configPath: options.configPath, needSources: false, pathSources: true)
            let versions = try await runtime.closing {
                try await path.lookup(runtime).versions(ofPath: asked, source: path.source, root: path.root)
            }
            guard !versions.isEmpty else {
                throw CLIFailure(message: "'\(asked)': no file at this path in any filesystem source's catalog", exitCode: DESExit.noInput)
            }
            if json {
                let objects: [[String: Any]] = versions.map { v in
                    [
                        "source": v.source, "root": v.root, "path": v.path, "version": v.version, "status": v.status,
                        "name": v.name ?? NSNull(), "held": v.held, "size": v.sizeBytes, "mtime_ns": v.mtimeNanoseconds,
                        "sha256": v.sha256 ?? NSNull(),
                    ]
                }
                Terminal.out(Terminal.json(objects) + "\n")
                return
            }
            var out = ""
            for v in versions {
                let when = Terminal.time(Double(v.mtimeNanoseconds) / 1e9)
                out += "\(v.source):\(v.root)  v\(v.version)  \(v.status)  \(v.sizeBytes) B  \(when)  \(v.name ?? "-")  \(v.sha256 ?? "-")\n"
            }
            Terminal.out(out)
        }
    }
}
