import DESKit
import DESPluginMariaDB
import DESPluginPostgreSQL
import DESSQLDialects
import Foundation

/// A benchmark server: how to open connections, its dialect, and how to lay out a fresh table.
struct BenchDatabase: Sendable {
    let name: String
    let dialect: any SQLDialect
    let connect: @Sendable () async throws -> any SQLConnection
    /// Creates `files` with `rows` named pending rows over 256 shards in a fresh namespace; returns the table config.
    let setUp: @Sendable (any SQLConnection, Int) async throws -> (TableConfig, @Sendable (any SQLConnection) async throws -> Void)

    static func postgres(conninfo: String) -> BenchDatabase {
        BenchDatabase(
            name: "postgresql", dialect: PostgresDialect(),
            connect: { try await PostgresConnection.connect(conninfo: conninfo, target: "bench server") },
            setUp: { admin, rows in
                let schema = "des_bench_" + UUID().uuidString.prefix(8).lowercased()
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
                return (TableConfig(name: "files", schema: schema, columns: columns), { a in
                    _ = try await a.withSession { try $0.execute("DROP SCHEMA \(schema) CASCADE") }
                })
            })
    }

    static func mariadb(_ connection: ConnectionConfig) throws -> BenchDatabase {
        let (settings, target) = try MariaDBPlugin.settings(connection, what: "bench")
        return BenchDatabase(
            name: "mariadb", dialect: MariaDBDialect(),
            connect: { try await MariaDBConnection.connect(settings, target: target) },
            setUp: { admin, rows in
                let database = "des_bench_" + UUID().uuidString.prefix(8).lowercased()
                try await admin.withSession { s in
                    try s.execute("CREATE DATABASE \(database)")
                    try s.execute(
                        """
                        CREATE TABLE \(database).files (id BIGINT PRIMARY KEY, body_path VARCHAR(255) NOT NULL, size_bytes BIGINT,
                          des_status VARCHAR(16), des_name VARCHAR(64), des_shard INT, des_container VARCHAR(255),
                          des_claimed_by VARCHAR(255), des_claimed_at DOUBLE, des_error TEXT, KEY claim (des_status, des_shard, id)) ENGINE=InnoDB
                        """)
                    try s.execute("SET SESSION max_recursive_iterations = \(rows + 10)")
                    try s.execute(
                        """
                        INSERT INTO \(database).files (id, body_path, des_status, des_name, des_shard)
                        WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < \(rows))
                        SELECT n, CONCAT('k/', n), 'DES_TODO', CONCAT('N', n), n % 256 FROM g
                        """)
                    try s.execute("ANALYZE TABLE \(database).files")
                }
                var columns = ColumnMapping()
                columns.s3Key = "body_path"
                return (TableConfig(name: "files", schema: database, columns: columns), { a in
                    _ = try await a.withSession { try $0.execute("DROP DATABASE \(database)") }
                })
            })
    }
}

/// `des-bench claims`: claimed rows/s with `claimers` concurrent claimers taking batches of `batch`
/// rows from a fresh table of `rows` named rows over 256 shards — once with every claimer on every
/// shard (contended: each skips the rows the others hold), once with the shards split between them
/// as pods split them (`s mod N = i`) — on each database given.
func runClaimsBenchmark(databases: [BenchDatabase], rows: Int, claimers: Int, batch: Int) async throws {
    for database in databases {
        for split in [false, true] {
            let (claimed, seconds) = try await claimRound(database, rows: rows, claimers: claimers, batch: batch, split: split)
            let label = (database.name == "postgresql" ? "" : "_" + database.name) + (split ? "_split" : "")
            print("claimed_rows\(label) \(claimed)")
            print("claim_seconds\(label) \(String(format: "%.3f", seconds))")
            print("claimed_rows_per_sec\(label) \(Int(Double(claimed) / seconds))")
        }
    }
}

private func claimRound(_ database: BenchDatabase, rows: Int, claimers: Int, batch: Int, split: Bool) async throws -> (Int, Double) {
    let admin = try await database.connect()
    let (table, drop) = try await database.setUp(admin, rows)
    let source = SourceConfig(
        name: "bench", connection: ConnectionConfig(type: database.name, poolSize: 1), table: table,
        bodies: BodiesConfig())
    var connectors: [SQLSourceConnector] = []
    for _ in 0..<claimers {
        let pool = SQLConnectionPool(size: 1) { try await database.connect() }
        connectors.append(try SQLSourceConnector(config: source, dialect: database.dialect, pool: pool))
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
    try await drop(admin)
    await admin.close()
    return (claimed, seconds)
}
