import ArgumentParser
import DESKit
import DESPluginSQLite
import Foundation

struct SampleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Create a sample catalog and file bodies for the config's first SQLite source.",
        discussion: """
            Makes FILES bodies of 0.5–4 KiB (or --size) under the source's bodies \
            root and one unnamed catalog row each, shaped by the source's column \
            mapping. For trying DES on the embedded default with no server.

            Example:
              des sample --config configs/local.yaml --files 3000
            """)

    @OptionGroup var options: PipelineOptions
    @Option(help: "How many files.") var files = 3000
    @Option(help: "Fixed body size in bytes (default: random 512–4096).") var size: Int?
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func run() async throws {
        try await reportingErrorsAsync {
            _ = options.logger("des.sample")
            let config = try ConfigLoader.load(path: options.configPath)
            guard let source = config.enabledSources.first(where: { $0.connection.type.lowercased() == "sqlite" }) else {
                throw CLIFailure(message: "\(options.configPath): no enabled sqlite source", exitCode: DESExit.dataError)
            }
            let base = (options.configPath as NSString).deletingLastPathComponent
            func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : ((base.isEmpty ? "." : base) as NSString).appendingPathComponent(p) }
            guard let database = source.connection.database else {
                throw CLIFailure(message: "source '\(source.name)': connection.database is not set", exitCode: DESExit.dataError)
            }
            let bodies = resolve(source.bodies.root ?? ".")
            let count = try await SampleCatalog.create(
                databasePath: resolve(database), table: source.table, bodiesRoot: bodies, files: files, size: size, seed: seed)
            Terminal.out("created \(count) sample files under \(bodies) and their rows in \(resolve(database))\n")
        }
    }
}

/// Writes sample bodies and catalog rows (used by `des sample`, tests and benchmarks).
public enum SampleCatalog {
    /// Creates the table if needed and adds `files` rows with bodies; returns the number added.
    public static func create(
        databasePath: String, table: TableConfig, bodiesRoot: String, files: Int, size: Int?, seed: UInt64,
        metadataValue: @escaping @Sendable (String, Int) -> SQLValue = { column, i in .text("\(column)-\(i % 7)") }
    ) async throws -> Int {
        try FileManager.default.createDirectory(atPath: bodiesRoot, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: (databasePath as NSString).deletingLastPathComponent.isEmpty ? "." : (databasePath as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true)
        var rng = SplitMix(state: seed)
        var rows: [[SQLValue]] = []
        let blob = (0..<8192).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let stamp = String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 36)
        for i in 0..<files {
            let n = size ?? Int.random(in: 512...4096, using: &rng)
            let start = Int.random(in: 0...(blob.count - min(n, blob.count)), using: &rng)
            var body = Array(blob[start..<(start + min(n, blob.count))])
            while body.count < n { body += blob.prefix(n - body.count) }
            let dir = "s\(stamp)/d\(i / 1000)"
            let rel = "\(dir)/f\(i).bin"
            try FileManager.default.createDirectory(atPath: (bodiesRoot as NSString).appendingPathComponent(dir), withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: (bodiesRoot as NSString).appendingPathComponent(rel), contents: Data(body)) else {
                throw DESKitError(.invalidData, "cannot write sample body \(rel)")
            }
            var row: [SQLValue] = [.text(rel)]
            if table.columns.sizeBytes != nil { row.append(.int(Int64(n))) }
            for column in table.columns.metadataColumns { row.append(metadataValue(column, i)) }
            if let statusNew = table.statusNewValue { row.append(.text(statusNew)) }
            rows.append(row)
        }
        let connection = try await SQLiteConnection.open(path: databasePath)
        let ddl = try SQLiteCatalogSchema.createStatements(for: table)
        let insert = try SQLiteCatalogSchema.insertStatement(for: table)
        let frozen = rows
        try await connection.withTransaction { session in
            for statement in ddl { try session.execute(statement) }
            for row in frozen { try session.execute(insert, row) }
        }
        await connection.close()
        return files
    }
}

/// A small seeded generator (SplitMix64) for reproducible samples.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
