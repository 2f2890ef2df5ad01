import DESKit
import DESPluginPostgreSQL
import DESSQLDialects
import Foundation
import Testing

/// The plans PostgreSQL picks for the claim and the marks once a catalog is analyzed: both
/// statements must stay linear in the rows they touch however the statistics look.
@Suite("PostgreSQL plans on an analyzed catalog")
struct PostgresPlanTests {
    /// 20,000 rows: the first 8,000 packed, 2,000 claimed by `h`, the last 10,000 pending (so the
    /// statistics make a sequential scan look cheap, though it must pass 10,000 rows before the
    /// first pending one); a full status index, as many catalogs have; analyzed.
    static func catalog() async throws -> (PostgresConnection, SQLTableShape) {
        let conninfo = try testServer()
        let schema = try await freshSchema(conninfo)
        let c = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
        try await c.withTransaction { s in
            try s.execute(
                """
                CREATE TABLE \(schema).files (id BIGINT PRIMARY KEY, body_path TEXT NOT NULL, des_status TEXT, des_name TEXT,
                  des_shard INTEGER, des_container TEXT, des_claimed_by TEXT, des_claimed_at DOUBLE PRECISION, des_error TEXT)
                """)
            try s.execute(
                """
                INSERT INTO \(schema).files (id, body_path, des_status, des_name, des_shard, des_claimed_by)
                SELECT g, 'b' || g, CASE WHEN g <= 8000 THEN 'DES_PACKED' WHEN g <= 10000 THEN 'DES_CLAIMED' ELSE 'DES_TODO' END,
                  'N' || g, g % 4, CASE WHEN g > 8000 AND g <= 10000 THEN 'h' END
                FROM generate_series(1, 20000) g
                """)
            try s.execute("CREATE INDEX ON \(schema).files (des_status, des_shard, id)")
        }
        _ = try await c.withSession { try $0.execute("ANALYZE \(schema).files") }
        var columns = ColumnMapping()
        columns.s3Key = "body_path"
        let catalog = try await c.withSession { try PostgresDialect().reflectTable(in: $0, schema: schema, table: "files") }
        let shape = try SQLTableShape(
            config: TableConfig(name: "files", schema: schema, columns: columns), dialect: PostgresDialect(), catalog: catalog, source: "plan")
        return (c, shape)
    }

    @Test("A claim walks an index to the pending rows, never the table past the rows already claimed or packed")
    func claimUsesAnIndex() async throws {
        let (c, shape) = try await Self.catalog()
        let (claimed, seqScans) = try await c.withTransaction { s in
            // This backend's counters of how the table was read, before and after the claim.
            func seqScans() throws -> Int64 {
                let rows = try s.query("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = $1::regclass", [.text(shape.table)])
                guard let n = rows.first?[0].int else { throw SQLError(code: "02000", message: "no statistics row for \(shape.table)") }
                return n
            }
            let before = try seqScans()
            let rows = try PostgresDialect().claim(in: s, table: shape, shards: [0, 1, 2, 3], limit: 500, holder: "k")
            return (rows.count, try seqScans() - before)
        }
        await c.close()
        #expect(claimed == 500)
        #expect(seqScans == 0, "the claim scanned the table sequentially")
    }

    @Test("A mark's ids are a constant array the planner can hash, not a subquery searched row by row")
    func markIDsAreConstant() async throws {
        let (c, shape) = try await Self.catalog()
        let ids = Array(8001...9000)
        let plan = try await c.withSession { s in
            var binds: [SQLValue] = [.text("DES_CLAIMED"), .text("h")]
            let condition = try PostgresDialect().idMatches(in: s, table: shape, ids: ids.map(String.init), binds: &binds)
            let sql = "EXPLAIN (VERBOSE) UPDATE \(shape.table) SET \(shape.status) = 'DES_PACKED' "
                + "WHERE \(shape.status) = $1 AND \(shape.claimedBy) = $2 AND \(condition)"
            return try s.query(sql, binds)
                .compactMap { $0[0].text }.joined(separator: "\n")
        }
        await c.close()
        #expect(!plan.contains("InitPlan") && !plan.contains("SubPlan"), "\(plan.prefix(600))")
        #expect(plan.contains("= ANY ('{8001,8002"), "\(plan.prefix(600))")
    }

    @Test("Keys with separators, quotes, backslashes, braces, spaces or the word NULL are matched as themselves; an empty key too")
    func hostileTextKeysMatch() async throws {
        let conninfo = try testServer()
        let schema = try await freshSchema(conninfo)
        let c = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
        let keys = ["plain", "with \"quote\"", "back\\slash", "a,b", "c|d", "{brace}", " spaced ", "NULL", "zéro-0007", "\\\"", "e\u{1F}f"]
        try await c.withTransaction { s in
            try s.execute("CREATE TABLE \(schema).\"Keys\" (\"Id\" VARCHAR(40) PRIMARY KEY, body_path TEXT NOT NULL, des_status TEXT, des_name TEXT, "
                + "des_shard INTEGER, des_container TEXT, des_claimed_by TEXT, des_claimed_at DOUBLE PRECISION, des_error TEXT)")
            for (i, key) in (keys + ["", "NULL2", "other", "a", "b"]).enumerated() {
                try s.execute("INSERT INTO \(schema).\"Keys\" (\"Id\", body_path) VALUES ($1, $2)", [.text(key), .text("b\(i)")])
            }
        }
        var columns = ColumnMapping()
        columns.id = "Id"
        columns.s3Key = "body_path"
        let catalog = try await c.withSession { try PostgresDialect().reflectTable(in: $0, schema: schema, table: "Keys") }
        let shape = try SQLTableShape(
            config: TableConfig(name: "Keys", schema: schema, columns: columns), dialect: PostgresDialect(), catalog: catalog, source: "keys")
        /// The keys `condition` (written by the dialect, its values appended to the binds) selects.
        func select(_ condition: @escaping @Sendable (any SQLSession, inout [SQLValue]) throws -> String) async throws -> (found: Set<String>, binds: Int) {
            try await c.withSession { s in
                var binds: [SQLValue] = []
                let sql = "SELECT \(shape.id) FROM \(shape.table) WHERE \(try condition(s, &binds))"
                return (Set(try s.query(sql, binds).compactMap { $0[0].text }), binds.count)
            }
        }
        func match(_ ids: [String]) async throws -> (found: Set<String>, binds: Int) {
            try await select { s, binds in try PostgresDialect().idMatches(in: s, table: shape, ids: ids, binds: &binds) }
        }
        let asText = try await select { _, binds in PostgresDialect().textMatches(shape.id, values: keys, binds: &binds) }
        #expect(asText.found == Set(keys) && asText.binds == 2, "names are matched as ids are")
        let joined = try await match(keys)
        #expect(joined.found == Set(keys))
        #expect(joined.binds == 2, "the ids go as one text and its separator")
        let withEmpty = try await match(keys + [""])
        #expect(withEmpty.found == Set(keys + [""]))
        #expect(withEmpty.binds == keys.count + 1, "an empty id cannot be told from no id in a joined text")
        await c.close()
    }
}

@Suite("PostgreSQL identifiers over 63 bytes")
struct PostgresLongIdentifierTests {
    @Test("A status column configured by a name over 63 bytes is found under the name PostgreSQL kept, and a claim runs")
    func longColumnName() async throws {
        let conninfo = try testServer()
        let schema = try await freshSchema(conninfo)
        // 70 bytes; the server keeps (and matches in every statement) its first 63.
        let status = "upload_status_of_the_file_as_the_ingest_service_wrote_it_" + String(repeating: "x", count: 13)
        #expect(status.utf8.count == 70)
        let c = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
        try await c.withTransaction { s in
            try s.execute(
                """
                CREATE TABLE \(schema).files (id BIGINT PRIMARY KEY, path TEXT NOT NULL, "\(status)" TEXT, des_name TEXT,
                  des_shard INTEGER, des_claimed_by TEXT)
                """)
            try s.execute("INSERT INTO \(schema).files VALUES (1, 'a', 'DES_TODO', 'N1', 0, NULL)")
        }
        let catalog = try await c.withSession { try PostgresDialect().reflectTable(in: $0, schema: schema, table: "files") }
        #expect(catalog.columns.contains { $0.name == PostgresDialect().storedName(status) })
        var columns = ColumnMapping()
        columns.s3Key = "path"
        columns.status = status
        let config = TableConfig(name: "files", schema: schema, columns: columns)
        let plan = try SQLCatalogPlan(source: "long", config: config, dialect: PostgresDialect(), catalog: catalog)
        #expect(plan.columns.first { $0.key == "columns.status" }?.found == true, "\(plan.columns)")
        #expect(plan.canRun, "\(plan.problems)")
        #expect(!plan.ddl.contains { $0.contains("ADD COLUMN") && $0.contains("upload_status") }, "\(plan.ddl)")
        let shape = try SQLTableShape(config: config, dialect: PostgresDialect(), catalog: catalog, source: "long")
        let claimed = try await c.withTransaction { s in
            try PostgresDialect().claim(in: s, table: shape, shards: [0], limit: 10, holder: "h").count
        }
        await c.close()
        #expect(claimed == 1)
    }
}

@Suite("PostgreSQL numeric keys")
struct PostgresNumericKeyTests {
    @Test("A numeric key of up to 15 digits is bound cast to its type (a keyset read past an id runs); a wider or unbounded one is a catalog error before any row is read")
    func numericKeys() async throws {
        let conninfo = try testServer()
        let schema = try await freshSchema(conninfo)
        let c = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
        try await c.withTransaction { s in
            for (table, type) in [("narrow", "numeric(12,0)"), ("wide", "numeric(20,0)"), ("unbounded", "numeric")] {
                try s.execute(
                    "CREATE TABLE \(schema).\(table) (id \(type) PRIMARY KEY, path TEXT NOT NULL, des_status TEXT, des_name TEXT, des_shard INTEGER, des_claimed_by TEXT)")
            }
            try s.execute("INSERT INTO \(schema).narrow SELECT g, 'b' || g, 'DES_TODO', 'N' || g, 0, NULL FROM generate_series(1, 5) g")
        }
        await c.close()
        var columns = ColumnMapping()
        columns.s3Key = "path"
        func connector(_ table: String) throws -> SQLSourceConnector {
            let source = SourceConfig(
                name: table, connection: ConnectionConfig(type: "postgresql", poolSize: 1), table: TableConfig(name: table, schema: schema, columns: columns))
            let pool = SQLConnectionPool(size: 1) { try await PostgresConnection.connect(conninfo: conninfo, target: "test server") }
            return try SQLSourceConnector(config: source, dialect: PostgresDialect(), pool: pool)
        }
        let narrow = try connector("narrow")
        let read = try await narrow.readPending(shards: [0], afterRowID: "2", limit: 10)
        #expect(read.map(\.rowID) == ["3", "4", "5"])
        #expect(try await narrow.markPackedUnlessPacked(rowIDs: ["3"], names: ["N3"], container: "x") == 1)
        await narrow.close()
        for table in ["wide", "unbounded"] {
            let source = try connector(table)
            await #expect {
                _ = try await source.tableShape()
            } throws: { error in
                let e = error as? DESKitError
                return e?.code == .catalog && e?.message.contains("key column 'id'") == true && e?.message.contains("bigint or text") == true
            }
            await source.close()
        }
    }
}

@Suite("PostgreSQL enum status labels")
struct PostgresEnumLabelTests {
    @Test("An enum status reflects its labels; status values outside them are a catalog error before any row is touched, and labels that fit run")
    func enumLabels() async throws {
        let conninfo = try testServer()
        let schema = try await freshSchema(conninfo)
        let c = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
        try await c.withTransaction { s in
            try s.execute("CREATE TYPE \(schema).upload_state AS ENUM ('uploaded', 'claimed', 'packed', 'failed')")
            try s.execute(
                """
                CREATE TABLE \(schema)."Uploads" (id uuid PRIMARY KEY, path TEXT NOT NULL, state \(schema).upload_state, des_name TEXT,
                  des_shard INTEGER, des_claimed_by TEXT, des_claimed_at timestamptz)
                """)
        }
        let catalog = try await c.withSession { try PostgresDialect().reflectTable(in: $0, schema: schema, table: "Uploads") }
        await c.close()
        #expect(catalog.columns.first { $0.name == "state" }?.labels == ["uploaded", "claimed", "packed", "failed"])
        #expect(catalog.columns.first { $0.name == "path" }?.labels == nil)
        var columns = ColumnMapping()
        columns.s3Key = "path"
        columns.status = "state"
        var table = TableConfig(name: "Uploads", schema: schema, columns: columns)
        #expect {
            _ = try SQLTableShape(config: table, dialect: PostgresDialect(), catalog: catalog, source: "uploads")
        } throws: { error in
            let e = error as? DESKitError
            return e?.code == .catalog && e?.message.contains("status_pending_value 'DES_TODO' is not one of them") == true
        }
        table.statusPendingValue = "uploaded"
        table.statusClaimedValue = "claimed"
        table.statusPackedValue = "packed"
        table.statusFailedValue = "failed"
        #expect(throws: Never.self) { _ = try SQLTableShape(config: table, dialect: PostgresDialect(), catalog: catalog, source: "uploads") }
    }
}
