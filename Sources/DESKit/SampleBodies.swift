import Foundation

/// Sample bodies on disk and the catalog values of their rows, for `des sample` in any database:
/// a plugin's sample-catalog writer creates its table and inserts ``rows`` (key, size when the
/// table has a size column, the metadata columns, and the new-row status when one is configured,
/// in that order, as ``columns(of:)`` lists them).
public struct SampleBodies: Sendable {
    /// One row's values, in ``columns(of:)`` order.
    public var rows: [[SQLValue]]

    /// The config column names the row values are for, in order.
    public static func columns(of table: TableConfig) -> [String] {
        var cols = [table.columns.s3Key]
        if let size = table.columns.sizeBytes { cols.append(size) }
        cols += table.columns.metadataColumns
        if table.statusNewValue != nil { cols.append(table.columns.status) }
        return cols
    }

    /// Checks that `table` (just created, or there already) has every column the mapping names,
    /// in types DES can use: `des sample` never fills a table of another shape.
    public static func requireShape(of table: TableConfig, in session: any SQLSession, dialect: any SQLDialect) throws {
        let catalog = try dialect.reflectTable(in: session, schema: table.schema, table: table.name)
        _ = try SQLTableShape(config: table, dialect: dialect, catalog: catalog, source: "sample")
    }

    /// Inserts ``rows`` into `table` in multi-row `INSERT`s, each within `dialect`'s bind limit.
    public func insert(into session: any SQLSession, table: TableConfig, dialect: any SQLDialect) throws {
        let shape = try SQLTableShape(config: table, dialect: dialect)
        let columns = Self.columns(of: table)
        let names = columns.map(dialect.quoteIdentifier).joined(separator: ", ")
        let chunk = dialect.chunkSize(valuesPerRow: columns.count, fixed: 0)
        for start in stride(from: 0, to: rows.count, by: chunk) {
            var binds: [SQLValue] = []
            var tuples: [String] = []
            for row in rows[start..<min(rows.count, start + chunk)] {
                let n = binds.count
                tuples.append("(" + (1...columns.count).map { dialect.placeholder(n + $0) }.joined(separator: ", ") + ")")
                binds += row
            }
            try session.execute("INSERT INTO \(shape.table) (\(names)) VALUES " + tuples.joined(separator: ", "), binds)
        }
    }

    /// Writes `files` bodies of 512–4096 bytes (or `size`) under `bodiesRoot`, reproducibly from `seed`.
    public static func write(
        table: TableConfig, bodiesRoot: String, files: Int, size: Int?, seed: UInt64,
        metadataValue: @escaping @Sendable (String, Int) -> SQLValue = { column, i in .text("\(column)-\(i % 7)") }
    ) throws -> SampleBodies {
        guard (0...10_000_000).contains(files) else { throw DESKitError(.configuration, "sample: \(files) files (0 to 10,000,000)") }
        if let size, !(0...(64 << 20)).contains(size) { throw DESKitError(.configuration, "sample: a body of \(size) bytes (0 to 64 MiB)") }
        try FileManager.default.createDirectory(atPath: bodiesRoot, withIntermediateDirectories: true)
        var rng = SplitMix(state: seed)
        var rows: [[SQLValue]] = []
        rows.reserveCapacity(files)
        let blob = (0..<8192).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let stamp = String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 36)
        for i in 0..<files {
            let n = size ?? Int.random(in: 512...4096, using: &rng)
            let start = Int.random(in: 0...(blob.count - min(n, blob.count)), using: &rng)
            var body = Array(blob[start..<(start + min(n, blob.count))])
            while body.count < n { body += blob.prefix(n - body.count) }
            let dir = "s\(stamp)/d\(i / 1000)"
            let rel = "\(dir)/f\(i).bin"
            if i % 1000 == 0 {
                try FileManager.default.createDirectory(atPath: (bodiesRoot as NSString).appendingPathComponent(dir), withIntermediateDirectories: true)
            }
            let path = (bodiesRoot as NSString).appendingPathComponent(rel)
            if let existing = FileManager.default.contents(atPath: path) {
                // An earlier sample with this seed wrote here: rows may already point at these bytes.
                guard existing == Data(body) else {
                    throw DESKitError(
                        .invalidData,
                        "sample body \(rel) already exists with other bytes (an earlier des sample with --seed \(seed)): pass another --seed")
                }
            } else if !FileManager.default.createFile(atPath: path, contents: Data(body)) {
                throw DESKitError(.invalidData, "cannot write sample body \(rel)")
            }
            var row: [SQLValue] = [.text(rel)]
            if table.columns.sizeBytes != nil { row.append(.int(Int64(n))) }
            for column in table.columns.metadataColumns { row.append(metadataValue(column, i)) }
            if let statusNew = table.statusNewValue { row.append(.text(statusNew)) }
            rows.append(row)
        }
        return SampleBodies(rows: rows)
    }
}

/// A small seeded generator (SplitMix64) for reproducible samples (and tests).
package struct SplitMix: RandomNumberGenerator {
    package var state: UInt64
    /// A generator starting at `state`.
    package init(state: UInt64) { self.state = state }
    /// The next value.
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
