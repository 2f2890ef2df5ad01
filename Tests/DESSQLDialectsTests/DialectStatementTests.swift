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
        let statements = try await RecordingConnection.everyStatement(dialect: MSSQLDialect(), answers: [("[des_name] IS NULL AND", Self.unnamed)])
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
        #expect(sql.contains { $0.hasPrefix("SELECT TOP (?{3}) [id], [des_name], [des_container], [body_path] FROM [dbo].[files]") })
        let refused = try await SQLGlot.refused(try Self.native(statements, "@P"), dialect: "tsql")
        #expect(refused.isEmpty, "\(refused)")
        #expect(statements.count >= 12)
    }

    @Test("SQL Server: a batch of names splits to stay under the 2,100-value limit")
    func mssqlNameChunks() async throws {
        let recorder = RecordingConnection()
        let shape = try SQLTableShape(config: TableConfig(name: "files"), dialect: MSSQLDialect())
        let names = (1...1_201).map { NameAssignment(rowID: "\($0)", desName: "N\($0)", hash: "h", shard: 0) }
        _ = try await recorder.withSession { try MSSQLDialect().assignNames(in: $0, table: shape, names) }
        let statements = recorder.statements.withLock { $0 }
        #expect(statements.map(\.binds.count) == [2_001, 2_001, 805])
    }

    @Test("Oracle: a FOR UPDATE SKIP LOCKED cursor fetched n rows (never FETCH FIRST), IN lists of at most 1,000, MERGE for names")
    func oracle() async throws {
        let statements = try await RecordingConnection.everyStatement(
            dialect: OracleDialect(), answers: [("\"DES_NAME\" IS NULL AND", Self.unnamed), ("IS NOT NULL FOR UPDATE SKIP LOCKED", Self.ids)])
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
        #expect(!sql.contains { $0.contains(" LIMIT ") })
        #expect(sql.last == "SELECT 1 FROM DUAL")
        let refused = try await SQLGlot.refused(try Self.native(statements, ":p"), dialect: "oracle")
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

    @Test("Oracle quoting: a lower-case config name is upper-cased, as Oracle stores unquoted names; mixed case is kept")
    func oracleQuoting() {
        #expect(OracleDialect().quoteIdentifier("files") == "\"FILES\"")
        #expect(OracleDialect().quoteIdentifier("Files") == "\"Files\"")
        #expect(MSSQLDialect().quoteIdentifier("a]b") == "[a]]b]")
    }
}
