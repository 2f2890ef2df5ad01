import DESKit
import DESSQLDialects
import Foundation
import Testing

/// SQL Server and Oracle cannot run here: every statement their dialects make the source connector
/// send is checked word for word where it is the dialect's own, and every one is parsed by sqlglot
/// in the database's dialect (placeholders as the drivers send them: `@Pn` over FreeTDS, `:pn` for Oracle).
@Suite("SQL Server and Oracle statements")
struct DialectStatementTests {
    static let unnamed = [SQLRow(columns: ["id", "body_path", "des_name"], values: [.int(5), .text("a/b.bin"), .null])]
    static let ids = [SQLRow(columns: ["id"], values: [.int(7)]), SQLRow(columns: ["id"], values: [.int(8)])]

    static func native(_ statements: [RecordingConnection.Statement], _ prefix: String) throws -> [String] {
        try statements.map { s in try NumberedPlaceholders.replacing(s.sql, valueCount: s.binds.count) { prefix + "\($0)" } }
    }

    @Test("SQL Server: READ COMMITTED, a TOP (n) READPAST CTE updated with OUTPUT, VALUES joins under 2,100 values")
    func mssql() async throws {
        let all = try await RecordingConnection.everyStatement(dialect: MSSQLDialect(), answers: [("[des_name] IS NULL AND", Self.unnamed)])
        // The table is reflected once, before the first statement: its columns, then its indexes.
        #expect(all[0].sql == MSSQLDialect.reflectColumnsSQL && all[0].binds == [.text("[dbo].[files]")])
        #expect(all[1].sql == MSSQLDialect.reflectIndexesSQL)
        #expect(all.dropFirst(2).allSatisfy { !$0.sql.contains("sys.columns") })
        let statements = Array(all.dropFirst(2))
        let sql = statements.map(\.sql)
        #expect(sql[0] == "SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        #expect(
            sql[1] == """
                WITH des_c AS (SELECT TOP (?{4}) * FROM [dbo].[files] WITH (ROWLOCK, UPDLOCK, READPAST) \
                WHERE [des_status] = ?{3} AND [des_shard] IN (0, 1) AND [des_name] IS NOT NULL) \
                UPDATE des_c SET [des_status] = ?{1}, [des_claimed_by] = ?{2}, [des_claimed_at] = \(MSSQLDialect.now) \
                OUTPUT inserted.[id], inserted.[body_path], inserted.[size_bytes], inserted.[des_name], inserted.[des_shard], inserted.[mime]
                """)
        #expect(statements[1].binds == [.text("DES_CLAIMED"), .text("pod-1#a"), .text("DES_TODO"), .int(1000)])
        #expect(sql[2] == "SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        #expect(
            sql[3] == """
                SELECT TOP (?{2}) [id], [body_path], [des_name] FROM [dbo].[files] WITH (ROWLOCK, UPDLOCK, READPAST) \
                WHERE [des_name] IS NULL AND ([des_status] IS NULL OR [des_status] <> ?{1}) ORDER BY [id]
                """)
        #expect(
            sql[4] == """
                UPDATE des_t SET [des_name] = v.name, [des_shard] = v.shard, [des_status] = ?{1}, [des_hash] = v.hash \
                FROM [dbo].[files] AS des_t JOIN (VALUES (?{2}, ?{3}, ?{4}, ?{5})) AS v(id, name, hash, shard) \
                ON des_t.[id] = v.id WHERE des_t.[des_name] IS NULL
                """)
        #expect(statements.allSatisfy { $0.binds.count <= 2_100 })
        #expect(sql.contains { $0.hasPrefix("SELECT TOP (?{4}) [id], [des_name], [des_container], [body_path], [des_status] FROM [dbo].[files] WHERE [des_status] IN (?{1}, ?{2})") })
        // claim_mode lease: the keyset read of pending rows, and the marks from pending.
        #expect(sql.contains {
            $0.hasPrefix("SELECT TOP (?{3}) [id], ") && $0.contains("WHERE [des_status] = ?{1} AND [des_shard] IN (0, 1)")
                && $0.hasSuffix("AND [id] > ?{2} ORDER BY [id]")
        }, "\(sql)")
        #expect(sql.contains { $0.hasPrefix("UPDATE [dbo].[files] SET [des_status] = ?{1}, [des_container] = ?{2}") && $0.contains("WHERE [des_status] <> ?{3} AND [id] IN") })
        // …and the read by name of a container's rows whose ids changed in flight.
        #expect(sql.contains("SELECT [id], [des_name], [des_status] FROM [dbo].[files] WHERE [des_name] IN (?{1}, ?{2})"), "\(sql)")
        let refused = try await SQLGlot.refused(try Self.native(all, "@P"), dialect: "tsql")
        #expect(refused.isEmpty, "\(refused)")
        #expect(statements.count >= 12)
    }

    @Test("SQL Server: the generic layer splits a batch of names to stay under the 2,100-value limit")
    func mssqlNameChunks() async throws {
        let unnamed = (1...1_201).map { SQLRow(columns: ["id", "body_path", "des_name"], values: [.int(Int64($0)), .text("k\($0)"), .null]) }
        let statements = try await RecordingConnection.everyStatement(dialect: MSSQLDialect(), answers: [("[des_name] IS NULL AND", unnamed)])
        let names = statements.filter { $0.sql.hasPrefix("UPDATE des_t SET") }
        // (2,100 − 16) / 4 = 521 rows a statement, four values each plus the status.
        #expect(names.map(\.binds.count) == [2_085, 2_085, 637])
        #expect(statements.allSatisfy { $0.binds.count <= 2_100 })
    }

    @Test("SQL Server and Oracle: a datetime2/TIMESTAMP claim time, a uniqueidentifier/VARCHAR2 key and integer status codes bind by type")
    func typedShapes() async throws {
        var types = RecordingConnection.defaultTypes.map { ($0.0, Optional($0.1)) }
        func set(_ name: String, _ type: String?) { types = types.map { $0.0 == name ? (name, type) : $0 } }
        set("id", "uniqueidentifier")
        set("des_claimed_at", "datetime2")
        set("des_error", nil)
        set("des_container", nil)
        let mssql = try await RecordingConnection.everyStatement(dialect: MSSQLDialect(), answers: [], types: types)
        let claim = try #require(mssql.first { $0.sql.contains("UPDATE des_c") })
        #expect(claim.sql.contains("[des_claimed_at] = SYSUTCDATETIME()"))
        #expect(mssql.contains { $0.sql.contains("[des_claimed_at] < DATEADD(MILLISECOND, -600000, SYSUTCDATETIME())") })
        // No error or container column: the mark writes only what exists.
        let mark = try #require(mssql.first { $0.sql.hasPrefix("UPDATE [dbo].[files] SET [des_status] = ?{1}") && $0.sql.contains("des_claimed_by] = ?{3}") })
        #expect(!mark.sql.contains("des_container") && !mark.sql.contains("des_error"))
        // A uuid key binds as text, never as the integer it may look like.
        #expect(mark.binds.suffix(2) == [.text("1"), .text("2")])
        #expect(try await SQLGlot.refused(try Self.native(mssql, "@P"), dialect: "tsql").isEmpty)

        set("id", "VARCHAR2")
        set("des_claimed_at", "TIMESTAMP(6)")
        set("des_status", "NUMBER")
        let oracle = try await RecordingConnection.everyStatement(
            dialect: OracleDialect(), answers: [("IS NOT NULL FOR UPDATE SKIP LOCKED", Self.ids)], types: types, statuses: ("1", "2", "3", "4"))
        #expect(oracle[0].sql == OracleDialect.reflectColumnsSQL && oracle[0].binds == [.text("DBO"), .text("FILES")])
        #expect(oracle.contains { $0.sql.contains("\"DES_CLAIMED_AT\" = SYS_EXTRACT_UTC(SYSTIMESTAMP)") })
        #expect(oracle.contains { $0.sql.contains("\"DES_CLAIMED_AT\" < SYS_EXTRACT_UTC(SYSTIMESTAMP) - NUMTODSINTERVAL(600.0, 'SECOND')") })
        let oracleMark = try #require(oracle.first { $0.sql.hasPrefix("UPDATE \"DBO\".\"FILES\" SET \"DES_STATUS\" = ?{1}") && $0.sql.contains("CLAIMED_BY\" = ?{3}") })
        #expect(oracleMark.binds.prefix(2) == [.int(3), .int(2)])
        #expect(oracleMark.binds.suffix(2) == [.text("1"), .text("2")])
        #expect(try await SQLGlot.refused(try Self.native(oracle, ":p"), dialect: "oracle").isEmpty)
    }

    @Test("A mapped column the table lacks is an error naming the source, table and column, with did-you-mean")
    func missingColumn() async throws {
        var types = RecordingConnection.defaultTypes.map { ($0.0, Optional($0.1)) }
        types = types.map { $0.0 == "des_status" ? ("des_stat", "varchar") : $0 }
        await #expect {
            _ = try await RecordingConnection.everyStatement(dialect: MSSQLDialect(), answers: [], types: types)
        } throws: { error in
            let e = error as? DESKitError
            return e?.code == .catalog && e?.message.contains("source 'catalog'") == true && e?.message.contains("dbo.files") == true
                && e?.message.contains("'des_status' (columns.status)") == true && e?.message.contains("did you mean 'des_stat'") == true
        }
    }

    @Test("Oracle: a FOR UPDATE SKIP LOCKED cursor fetched n rows (never FETCH FIRST), IN lists of at most 1,000, MERGE for names")
    func oracle() async throws {
        let all = try await RecordingConnection.everyStatement(
            dialect: OracleDialect(), answers: [("\"DES_NAME\" IS NULL AND", Self.unnamed), ("IS NOT NULL FOR UPDATE SKIP LOCKED", Self.ids)])
        #expect(all[0].sql == OracleDialect.reflectColumnsSQL && all[1].sql == OracleDialect.reflectIndexesSQL)
        let statements = Array(all.dropFirst(2))
        let sql = statements.map(\.sql)
        #expect(sql[0] == "SELECT \"ID\" FROM \"DBO\".\"FILES\" WHERE \"DES_STATUS\" = ?{1} AND \"DES_SHARD\" IN (0, 1) AND \"DES_NAME\" IS NOT NULL FOR UPDATE SKIP LOCKED")
        #expect(statements[0].maxRows == 1000)
        #expect(
            sql[1] == """
                UPDATE "DBO"."FILES" SET "DES_STATUS" = ?{1}, "DES_CLAIMED_BY" = ?{2}, "DES_CLAIMED_AT" = \(OracleDialect.now) \
                WHERE "ID" IN (?{3}, ?{4})
                """)
        #expect(sql[2] == "SELECT \"ID\", \"BODY_PATH\", \"SIZE_BYTES\", \"DES_NAME\", \"DES_SHARD\", \"MIME\" FROM \"DBO\".\"FILES\" WHERE \"ID\" IN (?{1}, ?{2})")
        #expect(sql[3] == "SELECT \"ID\", \"BODY_PATH\", \"DES_NAME\" FROM \"DBO\".\"FILES\" WHERE \"DES_NAME\" IS NULL AND (\"DES_STATUS\" IS NULL OR \"DES_STATUS\" <> ?{1}) ORDER BY \"ID\" FOR UPDATE SKIP LOCKED")
        #expect(statements[3].maxRows == 500)
        #expect(
            sql[4] == """
                MERGE INTO "DBO"."FILES" des_t USING (SELECT ?{2} AS id, ?{3} AS name, ?{4} AS hash, ?{5} AS shard FROM DUAL) v \
                ON (des_t."ID" = v.id) WHEN MATCHED THEN UPDATE SET des_t."DES_NAME" = v.name, des_t."DES_SHARD" = v.shard, \
                des_t."DES_STATUS" = ?{1}, des_t."DES_HASH" = v.hash WHERE des_t."DES_NAME" IS NULL
                """)
        #expect(!sql.contains { $0.contains("FETCH FIRST") && $0.contains("FOR UPDATE") })
        // claim_mode lease: a plain keyset read (no lock), n rows.
        let read = try #require(statements.first { $0.sql.contains("\"ID\" > ") && $0.sql.contains("\"DES_SHARD\" IN (0, 1)") && $0.sql.hasSuffix("ORDER BY \"ID\"") })
        #expect(read.maxRows == 500 && !read.sql.contains("FOR UPDATE"), "\(read.sql)")
        #expect(!sql.contains { $0.contains(" LIMIT ") })
        #expect(sql.last == "SELECT 1 FROM DUAL")
        let refused = try await SQLGlot.refused(try Self.native(all, ":p"), dialect: "oracle")
        #expect(refused.isEmpty, "\(refused)")
    }

    @Test("Oracle: claims of more than 1,000 rows update and read back in lists of 1,000")
    func oracleChunks() async throws {
        let many = (1...2_500).map { SQLRow(columns: ["id"], values: [.int(Int64($0))]) }
        let recorder = RecordingConnection(answers: [("FOR UPDATE SKIP LOCKED", many)])
        let shape = try SQLTableShape(config: TableConfig(name: "files"), dialect: OracleDialect())
        _ = try await recorder.withSession { try OracleDialect().claim(in: $0, table: shape, shards: [0], limit: 2_500, holder: "h") }
        let lists = recorder.statements.withLock { $0 }.dropFirst().map { $0.binds.count }
        #expect(lists == [1_002, 1_000, 1_002, 1_000, 502, 500])
    }

    @Test("Claim ages in each dialect's time arithmetic, past and future (a negative age never becomes a comment or a bad modifier)")
    func signedAges() {
        #expect(MSSQLDialect().olderThan("c", kind: .timestamp, seconds: 600) == "c < DATEADD(MILLISECOND, -600000, SYSUTCDATETIME())")
        #expect(MSSQLDialect().olderThan("c", kind: .timestamp, seconds: -60) == "c < DATEADD(MILLISECOND, 60000, SYSUTCDATETIME())")
        #expect(MSSQLDialect().olderThan("c", kind: .timestampWithTimeZone, seconds: 3e6) == "c < DATEADD(SECOND, -3000000, SYSDATETIMEOFFSET())")
        #expect(SQLiteDialect().olderThan("c", kind: .timestamp, seconds: 600) == "c < strftime('%Y-%m-%d %H:%M:%f', 'now', '-600.0 seconds')")
        #expect(SQLiteDialect().olderThan("c", kind: .timestamp, seconds: -60) == "c < strftime('%Y-%m-%d %H:%M:%f', 'now', '60.0 seconds')")
        #expect(MariaDBDialect().olderThan("c", kind: .timestamp, seconds: -60) == "c < UTC_TIMESTAMP(6) - INTERVAL -60000000 MICROSECOND")
        #expect(OracleDialect().olderThan("c", kind: .timestamp, seconds: 600) == "c < SYS_EXTRACT_UTC(SYSTIMESTAMP) - NUMTODSINTERVAL(600.0, 'SECOND')")
    }

    @Test("Oracle quoting: a lower-case config name is upper-cased, as Oracle stores unquoted names; mixed case is kept")
    func oracleQuoting() {
        #expect(OracleDialect().quoteIdentifier("files") == "\"FILES\"")
        #expect(OracleDialect().quoteIdentifier("Files") == "\"Files\"")
        #expect(MSSQLDialect().quoteIdentifier("a]b") == "[a]]b]")
    }

    @Test("PostgreSQL stores an identifier's first 63 bytes, cut before a character that would cross the limit")
    func postgresStoredName() {
        let d = PostgresDialect()
        #expect(d.storedName("Files") == "Files")
        let exact = String(repeating: "a", count: 63)
        #expect(d.storedName(exact) == exact)
        #expect(d.storedName(exact + "bcd") == exact)
        // 62 ASCII bytes, then a 2-byte é that would end at byte 64: it is dropped whole.
        let head = String(repeating: "a", count: 62)
        #expect(d.storedName(head + "éé") == head)
        #expect(d.storedName(head + "éé").utf8.count == 62)
    }
}
