import ArgumentParser
import DESKit
import Foundation

struct SampleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Create a sample catalog and file bodies for the config's first source that can have one.",
        discussion: """
            Makes FILES bodies of 0.5–4 KiB (or --size) under the source's bodies \
            root and one unnamed catalog row each, shaped by the source's column \
            mapping, in a table it creates when missing (with the indexes DES's \
            claims use). For trying DES on the embedded default with no server, \
            or on a database server. The source's plugin writes the catalog: the \
            stock SQLite, PostgreSQL and MySQL/MariaDB plugins can (it is the only \
            command that creates a SQLite database).

            Examples:
              des sample --config configs/local.yaml --files 3000
              des sample --config configs/mariadb.yaml --files 3000
            """)

    @OptionGroup var options: PipelineOptions
    @Option(help: "How many files (0 to 10,000,000).") var files = 3000
    @Option(help: "Fixed body size in bytes, 0 to 64 MiB (default: random 512–4096).") var size: Int?
    @Option(help: "Random seed: the same seed writes the same bodies (a run whose bodies would differ from an earlier one's is refused).")
    var seed: UInt64 = 1

    func validate() throws {
        guard (0...10_000_000).contains(files) else { throw ValidationError("--files must be 0 to 10,000,000, got \(files)") }
        if let size, !(0...(64 << 20)).contains(size) { throw ValidationError("--size must be 0 to 67108864 bytes (64 MiB), got \(size)") }
    }

    func run() async throws {
        try await reportingErrorsAsync {
            _ = options.logger("des.sample")
            let config = try ConfigLoader.load(path: options.configPath, plugins: try DESCommandLine.requireRegistry())
            let registry = try DESCommandLine.requireRegistry()
            let writable = Set(registry.sampleCatalogTypes)
            guard let source = config.enabledSources.first(where: { writable.contains($0.connection.type.lowercased()) }) else {
                throw CLIFailure(
                    message: "\(options.configPath): no enabled source of a type that can hold a sample catalog (\(writable.sorted().joined(separator: ", ")))",
                    exitCode: DESExit.dataError)
            }
            let base = (options.configPath as NSString).deletingLastPathComponent
            let count = try await registry.writeSampleCatalog(
                source, baseDirectory: base.isEmpty ? "." : base, files: files, size: size, seed: seed)
            Terminal.out("created \(count) sample files and their rows for source '\(source.name)'\n")
        }
    }
}

