import DESKit
import Foundation

/// Writes sample bodies and SQLite catalog rows (`des sample`, tests and benchmarks).
public enum SQLiteSampleCatalog {
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
