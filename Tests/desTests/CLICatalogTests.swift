import DESTestSupport
import Foundation
import Testing

/// Configs and catalogs as users have them: a sources file in the original DES's own shapes
/// (its four databases, its Python driver options, its shard_key_column and mixed shard bits)
/// checks as it is; `des catalog check` shows what a table lacks and `des catalog prepare
/// --apply` adds it.
@Suite("des config check on the original's configs; des catalog check and prepare")
struct CLICatalogTests {
    /// A sources file with the same keys and shapes as the original's `configs/source_databases.yaml`.
    static let originalShaped = """
        sources:
          - name: "records-oracle"
            enabled: true
            connection:
              type: oracle
              host: oracle.example.test
              port: 1521
              database: RECDB
              username: reader
              password: "${ORA_PW:-}"
              schema: REC_SCHEMA
              pool_size: 8
              pool_recycle: 3600
              pool_pre_ping: true
              driver_options:
                threaded: true
            table:
              name: stored_files
              schema: REC_SCHEMA
              columns:
                id: file_id
                s3_bucket: bucket_name
                s3_key: object_key
                size_bytes: file_size
                status: processing_status
                created_at: upload_date
                metadata_columns:
                  user_id: owner_id
                  mime_type: content_type
              where_clause: "upload_date >= SYSDATE - 30"
              status_pending_value: "uploaded"
              status_claimed_value: "packing"
              shard_key_column: object_key
            batch_size: 200
            claim_timeout_seconds: 600
            shard_bits: 8
          - name: "vault-mssql"
            enabled: true
            connection:
              type: mssql
              host: mssql.example.test
              port: 1433
              database: VaultDB
              username: svc
              password: "${MS_PW:-}"
              pool_size: 5
              driver_options:
                charset: utf8
            table:
              name: VaultFiles
              schema: dbo
              columns:
                id: FileID
                s3_bucket: S3Bucket
                s3_key: S3Key
                size_bytes: FileSizeBytes
                status: Status
                created_at: CreatedAt
                metadata_columns:
                  department: Dept
                  retention_days: KeepDays
              status_pending_value: "pending"
              status_claimed_value: "claimed"
            batch_size: 100
            shard_bits: 6
          - name: "clips-mysql"
            enabled: false
            connection:
              type: mysql
              host: mysql.example.test
              port: 3306
              database: clips
              username: u
              password: "${MY_PW:-}"
              charset: utf8mb4
              pool_size: 8
              pool_pre_ping: true
            table:
              name: clip_files
              columns:
                id: id
                s3_bucket: storage_bucket
                s3_key: storage_path
                size_bytes: size
                status: state
                metadata_columns:
                  content_type: mime_type
                  uploader: user_email
              status_pending_value: "new"
              status_claimed_value: "processing"
            batch_size: 150
            shard_bits: 8
          - name: "papers-postgres"
            enabled: true
            connection:
              type: postgres
              host: postgres.example.test
              port: 5432
              database: papers
              username: ro
              password: "${PG_PW:-}"
              schema: public
              pool_size: 10
              pool_recycle: 1800
              pool_pre_ping: true
            table:
              name: paper_storage
              schema: public
              columns:
                id: paper_id
                s3_bucket: bucket
                s3_key: s3_path
                size_bytes: size_bytes
                status: status
                created_at: created_at
                metadata_columns:
                  document_type: doc_type
                  category: category
                  tags: tags
              where_clause: "created_at >= NOW() - INTERVAL '90 days'"
              status_pending_value: "uploaded"
              status_claimed_value: "claimed"
            batch_size: 200
            shard_bits: 8
        """

    @Test("The original's sources file checks as it is: exit 0, four sources, a warning naming each key DES reads its own way")
    func originalConfig() throws {
        try withTempDir { dir in
            try Self.originalShaped.write(toFile: dir + "/sources.yaml", atomically: true, encoding: .utf8)
            let r = try runDES(["config", "check", "sources.yaml"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            let all = r.out + r.stderr
            for name in ["records-oracle", "vault-mssql", "clips-mysql", "papers-postgres"] { #expect(all.contains(name), "\(all)") }
            // Each warning names its file, line and key.
            let warnings = r.stderr.split(separator: "\n").filter { $0.hasPrefix("des: warning: sources.yaml:") }
            func warned(_ keyPath: String, _ words: String) -> Bool {
                warnings.contains { $0.contains(": \(keyPath): ") && $0.contains(words) }
            }
            #expect(warned("sources[0].connection.driver_options", "threaded means nothing to ODBC"), "\(r.stderr)")
            #expect(warned("sources[0].table.shard_key_column", "'object_key' is columns.s3_key"), "\(r.stderr)")
            #expect(warned("sources[1].shard_bits", "6 differs from sources[0].shard_bits (8)"), "\(r.stderr)")
            // Nothing else warns: batch_size is each source's claim batch, created_at is copied into META,
            // charset is FreeTDS's client charset.
            #expect(warnings.count == 3, "\(warnings)")
            // Each source's batch_size and claim_timeout_seconds are what the packer uses for it.
            #expect(r.out.contains("200 rows a claim, claims stale after 600 s"), "\(r.out)")
            #expect(r.out.contains("150 rows a claim"), "\(r.out)")
        }
    }

    @Test("des catalog check on a table without DES's columns prints the DDL; prepare --apply runs it; check then exits 0")
    func checkAndPrepare() throws {
        try withTempDir { dir in
            let pg = try testServerSetting("DES_TEST_POSTGRES")
            let schema = "des_cat_" + UUID().uuidString.prefix(8).lowercased()
            // A table as users have it: uuid keys, a timestamptz, an enum status, none of DES's columns.
            _ = try runProcess("/usr/bin/env", ["psql", pg, "-v", "ON_ERROR_STOP=1", "-q", "-c", """
                CREATE SCHEMA \(schema);
                CREATE TYPE \(schema).file_state AS ENUM ('NEW', 'DES_TODO', 'DES_CLAIMED', 'DES_PACKED', 'DES_FAILED');
                CREATE TABLE \(schema)."Uploads" ("FileId" uuid PRIMARY KEY, "Path" text NOT NULL, state \(schema).file_state,
                  created timestamptz DEFAULT now());
                """])
            let host = try testServerSetting("DES_TEST_PG_HOST"), port = try testServerSetting("DES_TEST_PG_PORT")
            let user = try testServerSetting("DES_TEST_PG_USER"), database = try testServerSetting("DES_TEST_PG_DATABASE")
            try """
                storage: {type: local, root: ./archive}
                sources:
                  - name: uploads
                    connection: {type: postgresql, host: \(host), port: \(port), database: \(database), username: \(user)}
                    table:
                      name: Uploads
                      schema: \(schema)
                      columns: {id: FileId, s3_key: Path, status: state, created_at: created}
                    bodies: {type: local, root: ./bodies}
                """.write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
            let check = try runDES(["catalog", "check", "-c", "c.yaml"], in: dir)
            #expect(check.status == 78, "\(check.out)\(check.stderr)")
            #expect(check.out.contains("columns.id") && check.out.contains("uuid"), "\(check.out)")
            #expect(check.out.contains("des_name: MISSING, required"), "\(check.out)")
            #expect(check.out.contains("ALTER TABLE \"\(schema)\".\"Uploads\" ADD COLUMN IF NOT EXISTS \"des_name\" text"), "\(check.out)")
            let json = try runDES(["catalog", "check", "-c", "c.yaml", "--json"], in: dir)
            let parsed = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]]
            #expect(parsed?.first?["can_run"] as? Bool == false, "\(json.out)")
            let printed = try runDES(["catalog", "prepare", "-c", "c.yaml"], in: dir)
            #expect(printed.status == 0 && printed.out.contains("CREATE INDEX IF NOT EXISTS \"Uploads_des_claim\""), "\(printed.out)")
            let applied = try runDES(["catalog", "prepare", "-c", "c.yaml", "--apply"], in: dir)
            #expect(applied.status == 0, "\(applied.out)\(applied.stderr)")
            let again = try runDES(["catalog", "check", "-c", "c.yaml"], in: dir)
            #expect(again.status == 0, "\(again.out)\(again.stderr)")
            #expect(again.out.contains("can run") && !again.out.contains("ALTER TABLE"), "\(again.out)")
            // Idempotent: nothing more to add.
            let twice = try runDES(["catalog", "prepare", "-c", "c.yaml"], in: dir)
            #expect(twice.out.contains("nothing to add"), "\(twice.out)")
        }
    }
}
