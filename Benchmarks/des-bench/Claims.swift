import DESKit
import DESSQLDialects
import DESPluginPostgreSQL
import Foundation

/// `des-bench claims`: claimed rows/s on PostgreSQL with `claimers` concurrent claimers taking
/// batches of `batch` rows from a fresh table of `rows` named rows over 256 shards — once with every
/// claimer on every shard (contended: each skips the rows the others hold), once with the shards
/// split between them as pods split them (`s mod N = i`).
func runClaimsBenchmark(conninfo: String, rows: Int, claimers: Int, batch: Int) async throws {
    for split in [false, true] {
        let (claimed, seconds) = try await claimRound(conninfo: conninfo, rows: rows, claimers: claimers, batch: batch, split: split)
        let label = split ? "_split" : ""
        print("claimed_rows\(label) \(claimed)")
        print("claim_seconds\(label) \(String(format: "%.3f", seconds))")
        print("claimed_rows_per_sec\(label) \(Int(Double(claimed) / seconds))")
    }
}

private func claimRound(conninfo: String, rows: Int, claimers: Int, batch: Int, split: Bool) async throws -> (Int, Double) {
    let schema = "des_bench_" + UUID().uuidString.prefix(8).lowercased()
    let admin = try await PostgresConnection.connect(conninfo: conninfo, target: "bench server")
    try await admin.withTransaction { s in
        try s.execute("CREATE SCHEMA \(schema)")
        try s.execute(
            """
            CREATE TABLE \(schema).files (id BIGINT PRIMARY KEY, body_path TEXT NOT NULL, size_bytes BIGINT, des_status TEXT,
              des_name TEXT, des_shard INTEGER, des_container TEXT, des_claimed_by TEXT, des_claimed_at DOUBLE PRECISION, des_error TEXT)
            """)
        try s.execute(
            "INSERT INTO \(schema).files (id, body_path, des_status, des_name, des_shard) "
                + "SELECT g, 'k/' || g, 'DES_TODO', 'N' || g, g % 256 FROM generate_series(1, \(rows)) g")
        try s.execute("CREATE INDEX ON \(schema).files (des_status, des_shard, id)")
        try s.execute("ANALYZE \(schema).files")
    }
    var columns = ColumnMapping()
    columns.s3Key = "body_path"
    let source = SourceConfig(
        name: "bench", connection: ConnectionConfig(type: "postgresql", poolSize: 1),
        table: TableConfig(name: "files", schema: schema, columns: columns), bodies: BodiesConfig(type: "local", root: "/tmp"))
    var connectors: [SQLSourceConnector] = []
    for _ in 0..<claimers {
        let pool = SQLConnectionPool(size: 1) { try await PostgresConnection.connect(conninfo: conninfo, target: "bench server") }
        connectors.append(try SQLSourceConnector(config: source, dialect: PostgresDialect(), pool: pool))
    }
    let start = now()
    let claimed = try await withThrowingTaskGroup(of: Int.self) { group in
        for (i, connector) in connectors.enumerated() {
            let shards = split ? (0..<256).filter { $0 % claimers == i } : Array(0..<256)
            group.addTask {
                var n = 0
                while true {
                    let got = try await connector.claim(shards: shards, limit: batch, holder: "claimer-\(i)").count
                    if got == 0 { return n }
                    n += got
                }
            }
        }
        var total = 0
        for try await n in group { total += n }
        return total
    }
    let seconds = now() - start
    for c in connectors { await c.close() }
    _ = try await admin.withSession { try $0.execute("DROP SCHEMA \(schema) CASCADE") }
    await admin.close()
    return (claimed, seconds)
}
