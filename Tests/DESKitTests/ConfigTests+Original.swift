import Foundation
import DESPluginPostgreSQL
import Testing

@testable import DESKit

// The original's `sources:` schema, every key: accepted, stored, and either honoured or warned about.

// MARK: Helpers

private func source(
    type: String = "postgresql", connection: [String] = [], table: [String] = [], columns: [String] = [],
    extra: [String] = []
) -> String {
    var lines = ["sources:", "  - name: a", "    connection:", "      type: \(type)", "      host: h"]
    lines += connection.map { "      " + $0 }
    lines += ["    table:", "      name: files"]
    lines += table.map { "      " + $0 }
    if !columns.isEmpty { lines += ["      columns:"] + columns.map { "        " + $0 } }
    lines += extra.map { "    " + $0 }
    return lines.joined(separator: "\n") + "\n"
}

/// A source written for the original, with every key of its schema.
private let fullOriginalSource = """
    sources:
      - name: documents-mysql
        enabled: true
        connection:
          type: mysql
          host: db.example
          port: 3307
          database: documents
          username: des_reader
          password: pw-123
          schema: docs
          charset: utf8mb4
          pool_size: 7
          pool_recycle: 3600
          pool_pre_ping: true
          driver_options:
            connect_timeout: 10
            ssl_verify_cert: true
            read_timeout: 2.5
            init_command: "SET time_zone = '+00:00'"
        table:
          name: document_storage
          schema: archive
          columns:
            id: doc_id
            s3_bucket: bucket
            s3_key: s3_path
            size_bytes: size_bytes
            status: state
            created_at: created_at
            metadata_columns:
              document_type: doc_type
              category: category
          where_clause: "deleted_at IS NULL AND  tenant = 'a' -- trailing"
          status_pending_value: uploaded
          status_claimed_value: claiming
          shard_key_column: des_shard_no
        batch_size: 250
        claim_timeout_seconds: 300
        shard_bits: 6

    """

// MARK: Every key

@Suite struct OriginalSchemaTests {
    @Test func fullOriginalSourceLoadsWithEveryValueInTheModel() throws {
        let config = try parse(fullOriginalSource, known: stockSourceTypes)
        let s = try #require(config.sources.first)
        #expect(config.sources.count == 1)
        #expect(s.name == "documents-mysql" && s.enabled)

        let c = s.connection
        #expect(c.type == "mysql")
        #expect(c.host == "db.example" && c.port == 3307 && c.database == "documents")
        #expect(c.username == "des_reader" && c.password?.value == "pw-123")
        #expect(c.schema == "docs" && c.charset == "utf8mb4")
        #expect(c.poolSize == 7 && c.poolRecycleSeconds == 3600 && c.poolPrePing)
        #expect(
            c.driverOptions == [
                "connect_timeout": "10", "ssl_verify_cert": "true", "read_timeout": "2.5",
                "init_command": "SET time_zone = '+00:00'",
            ])

        let t = s.table
        #expect(t.name == "document_storage" && t.schema == "archive")
        #expect(t.columns.id == "doc_id" && t.columns.s3Bucket == "bucket" && t.columns.s3Key == "s3_path")
        #expect(t.columns.sizeBytes == "size_bytes" && t.columns.status == "state" && t.columns.createdAt == "created_at")
        #expect(
            t.columns.metadata == [
                MetadataColumn(key: "document_type", column: "doc_type"), MetadataColumn(key: "category", column: "category"),
            ])
        #expect(t.columns.metadataColumns == ["doc_type", "category"])
        #expect(t.whereClause == "deleted_at IS NULL AND  tenant = 'a' -- trailing")
        #expect(t.statusPendingValue == "uploaded" && t.statusClaimedValue == "claiming")
        #expect(t.shardKeyColumn == "des_shard_no")

        #expect(s.batchSize == 250)
        #expect(s.claimTimeoutSeconds == 300 && s.effectiveClaimTimeoutSeconds(packer: config.packer) == 300)
        #expect(s.shardBits == 6 && config.packer.shardBits == 6)
        // The original read every body from S3: with an s3_bucket column and no bodies block, so does DES.
        #expect(s.bodies.type == "s3")
    }

    @Test("The original's `postgres` spelling is a type the PostgreSQL plugin answers to, source and metadata alike")
    func theOriginalsPostgresSpelling() throws {
        let yaml = source(type: "postgres") + "metadata:\n  connection: {type: postgres, host: m}\n"
        let config = try parseStock(yaml)
        #expect(config.sources[0].connection.type == "postgres" && config.metadata.connection.type == "postgres")
        #expect(config.sources[0].connection.settings?.value(as: PostgresConnectionOptions.self) != nil)
        #expect(config.metadata.connection.settings?.value(as: PostgresConnectionOptions.self) != nil)
        #expect(try parseStock(source(type: "Postgres")).sources[0].connection.type == "postgres")
        let metadata = try #require(stockError("metadata:\n  connection: {type: postgress}\n"))
        #expect(metadata.keyPath == "metadata.connection.type")
        #expect(metadata.suggestion == "postgres")
    }

    @Test func defaultsOfTheNewKeys() throws {
        let config = try parse(source())
        let s = try #require(config.sources.first)
        #expect(s.connection.poolRecycleSeconds == -1 && !s.connection.poolPrePing)
        #expect(s.connection.driverOptions.isEmpty && s.connection.charset == nil && s.connection.schema == nil)
        #expect(s.claimTimeoutSeconds == nil)
        #expect(s.effectiveClaimTimeoutSeconds(packer: config.packer) == config.packer.claimTimeoutSeconds)
        #expect(s.table.whereClause == nil && s.table.schema == nil && s.table.columns.metadata.isEmpty)
        #expect(s.bodies.type == "local")
        #expect(config.warnings.isEmpty)
    }

    @Test func connectionSchemaIsTheTablesDefault() throws {
        let fromConnection = try parse(source(connection: ["schema: sales"]))
        #expect(fromConnection.sources[0].table.schema == "sales")
        #expect(fromConnection.sources[0].connection.schema == "sales")
        let own = try parse(source(connection: ["schema: sales"], table: ["schema: archive"]))
        #expect(own.sources[0].table.schema == "archive")
        #expect(own.sources[0].connection.schema == "sales")
    }

    @Test func bodiesFollowTheBucketColumnOnlyWithoutABodiesBlock() throws {
        #expect(try parse(source(columns: ["s3_bucket: b"])).sources[0].bodies.type == "s3")
        let local = try parseStock(source(columns: ["s3_bucket: b"], extra: ["bodies: {type: local, root: /data}"]))
        #expect(local.sources[0].bodies.type == "local" && local.sources[0].bodies.directory == "/data")
        #expect(try parse(source(columns: ["s3_key: k"])).sources[0].bodies.type == "local")
    }

    @Test func whereClauseIsKeptAsWritten() throws {
        let sql = "status_code IN ('a', 'b') AND size > 0  /* big */"
        #expect(try parse(source(table: ["where_clause: \"\(sql)\""])).sources[0].table.whereClause == sql)
        let block = try parse(source(table: ["where_clause: |", "  a = 1", "  AND b = 2"]))
        #expect(block.sources[0].table.whereClause == "a = 1\nAND b = 2\n")
        // The original skipped an empty clause; so does DES.
        #expect(try parse(source(table: ["where_clause: \"\""])).sources[0].table.whereClause == nil)
        #expect(try parse(source(table: ["where_clause: \"   \""])).sources[0].table.whereClause == nil)
    }

    @Test func claimTimeoutPerSource() throws {
        let config = try parse(source(extra: ["claim_timeout_seconds: 45.5"]) + "packer:\n  claim_timeout_seconds: 600\n")
        #expect(config.sources[0].claimTimeoutSeconds == 45.5)
        #expect(config.sources[0].effectiveClaimTimeoutSeconds(packer: config.packer) == 45.5)
        #expect(config.warnings.isEmpty)
        let zero = try #require(configError(source(extra: ["claim_timeout_seconds: 0"])))
        #expect(zero.code == .invalidValue)
        #expect(zero.keyPath == "sources[0].claim_timeout_seconds")
        #expect(zero.message == "must be between 1 and 604800 seconds, got 0")
    }

    @Test func poolRecycleRange() throws {
        #expect(try parse(source(connection: ["pool_recycle: -1"])).sources[0].connection.poolRecycleSeconds == -1)
        #expect(try parse(source(connection: ["pool_recycle: 0"])).sources[0].connection.poolRecycleSeconds == 0)
        let between = try #require(configError(source(connection: ["pool_recycle: -0.5"])))
        #expect(between.code == .invalidValue)
        #expect(between.keyPath == "sources[0].connection.pool_recycle")
        #expect(between.message == "must be -1 (never) or between 0 and 86400 seconds, got -0.5")
        #expect(configError(source(connection: ["pool_recycle: 86401"]))?.message == "must be between -1 and 86400 seconds, got 86401")
        #expect(configError(source(connection: ["pool_recycle: -2"]))?.message == "must be between -1 and 86400 seconds, got -2")
    }

    @Test func shardKeyColumnNamingAMappedColumnIsReadAsTheOriginalMeantIt() throws {
        // The original hashed this column's value; DES shards by the DES name and keeps the shard in des_shard.
        let config = try parse(source(table: ["shard_key_column: object_key"], columns: ["s3_key: object_key"]))
        #expect(config.sources[0].table.shardKeyColumn == "des_shard")
        let warning = try #require(config.warnings.first { $0.keyPath == "sources[0].table.shard_key_column" })
        #expect(warning.message.contains("columns.s3_key") && warning.message.contains("'des_shard'"))
        // Without shard_key_column, a mapping that gives des_shard to another role is still refused.
        let clash = try #require(configError(source(columns: ["metadata_columns: {area: des_shard}"])))
        #expect(clash.message.contains("columns.metadata_columns.area"))
    }
}

// MARK: metadata_columns and driver_options

@Suite struct OriginalCollectionTests {
    @Test func metadataColumnsAsAMappingKeepKeysAndOrder() throws {
        let config = try parse(source(columns: ["metadata_columns:", "  user: owner_id", "  mime: mime", "  b: a_column"]))
        let columns = config.sources[0].table.columns
        #expect(
            columns.metadata == [
                MetadataColumn(key: "user", column: "owner_id"), MetadataColumn("mime"), MetadataColumn(key: "b", column: "a_column"),
            ])
        #expect(columns.metadataColumns == ["owner_id", "mime", "a_column"])
    }

    @Test func metadataColumnsAsAListUseTheColumnAsKey() throws {
        let config = try parse(source(columns: ["metadata_columns: [mime, owner]"]))
        let columns = config.sources[0].table.columns
        #expect(columns.metadata == [MetadataColumn(key: "mime", column: "mime"), MetadataColumn(key: "owner", column: "owner")])
        #expect(columns.metadataColumns == ["mime", "owner"])
        #expect(config.warnings.isEmpty)
        // Setting the column list stores each column under its own name.
        var mapping = ColumnMapping()
        mapping.metadataColumns = ["x", "y"]
        #expect(mapping.metadata == [MetadataColumn("x"), MetadataColumn("y")])
        #expect(try parse(source(columns: ["metadata_columns: {}"])).sources[0].table.columns.metadata.isEmpty)
        #expect(try parse(source(columns: ["metadata_columns: []"])).sources[0].table.columns.metadata.isEmpty)
    }

    @Test func metadataColumnsErrors() throws {
        let scalar = try #require(configError(source(columns: ["metadata_columns: mime"])))
        #expect(scalar.code == .wrongType)
        #expect(scalar.keyPath == "sources[0].table.columns.metadata_columns")
        #expect(scalar.message == "expected a mapping (meta_key: column) or a list of columns, got 'mime'")
        let nested = try #require(configError(source(columns: ["metadata_columns:", "  user: [a, b]"])))
        #expect(nested.code == .wrongType)
        #expect(nested.keyPath == "sources[0].table.columns.metadata_columns.user")
        #expect(configError(source(columns: ["metadata_columns:", "  user:"]))?.message == "expected a column name, got nothing")
        let item = try #require(configError(source(columns: ["metadata_columns: [a, {b: c}]"])))
        #expect(item.keyPath == "sources[0].table.columns.metadata_columns[1]")
        #expect(item.code == .wrongType)
        let twice = try #require(configError(source(columns: ["metadata_columns: [mime, mime]"])))
        #expect(twice.code == .duplicate)
        #expect(twice.keyPath == "sources[0].table.columns.metadata_columns[1]")
        #expect(twice.message.contains("metadata_columns[0]"))
    }

    @Test func driverOptionsTakeAnyScalarAsText() throws {
        let yaml = source(connection: [
            "driver_options:", "  stmt_cache_size: 20", "  ssl: true", "  timeout: 1.5", "  mode: require", "  empty:",
            "  from_env: ${OPT:-fallback}",
        ])
        let options = try parse(yaml).sources[0].connection.driverOptions
        #expect(options == ["stmt_cache_size": "20", "ssl": "true", "timeout": "1.5", "mode": "require", "from_env": "fallback"])
        let nested = try #require(configError(source(connection: ["driver_options:", "  ssl: {mode: verify}"])))
        #expect(nested.code == .wrongType)
        #expect(nested.keyPath == "sources[0].connection.driver_options.ssl")
    }
}

// MARK: Wrong types and unknown keys

/// A value of the wrong type for one new key, and where the error must point.
struct OriginalWrongTypeCase: Sendable, CustomTestStringConvertible {
    var yaml: String
    var keyPath: String
    /// The start of the line the error points at.
    var linePrefix: String
    var testDescription: String { keyPath }
}

private let wrongTypeCases: [OriginalWrongTypeCase] = [
    OriginalWrongTypeCase(
        yaml: source(connection: ["pool_recycle: soon"]), keyPath: "sources[0].connection.pool_recycle", linePrefix: "pool_recycle"),
    OriginalWrongTypeCase(
        yaml: source(connection: ["pool_pre_ping: maybe"]), keyPath: "sources[0].connection.pool_pre_ping",
        linePrefix: "pool_pre_ping"),
    OriginalWrongTypeCase(
        yaml: source(connection: ["driver_options: [a, b]"]), keyPath: "sources[0].connection.driver_options",
        linePrefix: "driver_options"),
    OriginalWrongTypeCase(
        yaml: source(connection: ["charset: [utf8]"]), keyPath: "sources[0].connection.charset", linePrefix: "charset"),
    OriginalWrongTypeCase(
        yaml: source(connection: ["schema: {a: b}"]), keyPath: "sources[0].connection.schema", linePrefix: "schema"),
    OriginalWrongTypeCase(yaml: source(table: ["schema: [s]"]), keyPath: "sources[0].table.schema", linePrefix: "schema"),
    OriginalWrongTypeCase(
        yaml: source(table: ["where_clause: [a = 1]"]), keyPath: "sources[0].table.where_clause", linePrefix: "where_clause"),
    OriginalWrongTypeCase(
        yaml: source(table: ["status_pending_value: [x]"]), keyPath: "sources[0].table.status_pending_value",
        linePrefix: "status_pending_value"),
    OriginalWrongTypeCase(
        yaml: source(table: ["status_claimed_value: {a: b}"]), keyPath: "sources[0].table.status_claimed_value",
        linePrefix: "status_claimed_value"),
    OriginalWrongTypeCase(
        yaml: source(table: ["shard_key_column: [c]"]), keyPath: "sources[0].table.shard_key_column",
        linePrefix: "shard_key_column"),
    OriginalWrongTypeCase(
        yaml: source(columns: ["metadata_columns: 3"]), keyPath: "sources[0].table.columns.metadata_columns",
        linePrefix: "metadata_columns"),
    OriginalWrongTypeCase(
        yaml: source(extra: ["claim_timeout_seconds: later"]), keyPath: "sources[0].claim_timeout_seconds",
        linePrefix: "claim_timeout_seconds"),
    OriginalWrongTypeCase(
        yaml: "metadata:\n  connection:\n    type: postgresql\n    pool_pre_ping: perhaps\n",
        keyPath: "metadata.connection.pool_pre_ping", linePrefix: "pool_pre_ping"),
]

@Suite struct OriginalTypeAndKeyTests {
    @Test(arguments: wrongTypeCases)
    func wrongTypeNamesKeyPathAndLine(_ c: OriginalWrongTypeCase) throws {
        let error = try #require(configError(c.yaml))
        #expect(error.code == .wrongType)
        #expect(error.keyPath == c.keyPath)
        #expect(error.line == lineNumber(of: c.linePrefix, in: c.yaml))
        #expect(error.line > 0 && error.column > 0)
        #expect(error.description.hasPrefix("test.yaml:\(error.line):\(error.column): \(c.keyPath): expected "))
    }

    @Test func unknownKeysStillSuggest() throws {
        let cases: [(String, String, String)] = [
            (source(connection: ["pool_recyle: 3600"]), "sources[0].connection.pool_recyle", "pool_recycle"),
            (source(connection: ["pool_pre_pign: true"]), "sources[0].connection.pool_pre_pign", "pool_pre_ping"),
            (source(connection: ["driver_option: {a: b}"]), "sources[0].connection.driver_option", "driver_options"),
            (source(extra: ["claim_timout_seconds: 5"]), "sources[0].claim_timout_seconds", "claim_timeout_seconds"),
            (source(columns: ["metadata_column: [a]"]), "sources[0].table.columns.metadata_column", "metadata_columns"),
            (source(table: ["shard_key_colum: c"]), "sources[0].table.shard_key_colum", "shard_key_column"),
        ]
        for (yaml, path, suggestion) in cases {
            let error = try #require(configError(yaml))
            #expect(error.code == .unknownKey)
            #expect(error.keyPath == path)
            #expect(error.suggestion == suggestion)
            #expect(error.description.hasSuffix("(did you mean '\(suggestion)'?)"))
        }
    }
}

// MARK: Warnings

@Suite struct ConfigWarningTests {
    @Test func warningsCarryFileLineColumnAndKey() throws {
        let yaml = source(connection: ["charset: latin1"])
        let config = try parseStock(yaml)
        let warning = try #require(config.warnings.first)
        #expect(config.warnings.count == 1)
        #expect(warning.file == "test.yaml")
        #expect(warning.keyPath == "sources[0].connection.charset")
        #expect(warning.line == lineNumber(of: "charset", in: yaml))
        #expect(warning.column == 16)
        #expect(warning.message.contains("ignored"))
        #expect(warning.description == "test.yaml:\(warning.line):16: sources[0].connection.charset: \(warning.message)")
        #expect(!warning.description.contains("\n"))
    }

    @Test func onlyWhatIsNotHonouredWarns() throws {
        // Values DES does honour: no warning.
        let quiet = try parseStock(
            source(
                connection: [
                    "pool_recycle: 3600", "pool_pre_ping: true", "driver_options: {sslmode: require}", "schema: s",
                ],
                table: ["where_clause: a = 1", "status_claimed_value: claiming", "shard_key_column: DES_SHARD"],
                columns: ["metadata_columns: {mime: mime}"], extra: ["batch_size: 500", "claim_timeout_seconds: 30"]))
        #expect(quiet.warnings.isEmpty, "\(quiet.warnings)")
        #expect(try parseStock(source(type: "mysql", connection: ["charset: utf8mb4"])).warnings.isEmpty)

        let loud = try parseStock(
            source(
                connection: ["charset: utf8", "pool_recycle: 60", "pool_pre_ping: true"],  // the pool honours these two
                table: ["shard_key_column: shard_no"], columns: ["created_at: made", "metadata_columns: {kind: doc_type}"],
                extra: ["batch_size: 100"]) + "metadata:\n  connection: {type: postgresql, pool_pre_ping: yes}\n")
        // created_at is copied into META (ISO 8601 UTC), as the original did: no warning.
        #expect(
            loud.warnings.map(\.keyPath) == [
                "sources[0].connection.charset", "sources[0].table.shard_key_column",
            ])
        #expect(loud.warnings.allSatisfy { $0.file == "test.yaml" && $0.line > 0 && $0.column > 0 })
        #expect(loud.warnings[0].message.contains("'postgresql'"))
    }

    @Test func warningsNeverQuoteSecrets() throws {
        let yaml = source(connection: ["password: Sup3r-secret", "charset: latin1"])
        let config = try parseStock(yaml)
        #expect(!config.warnings.isEmpty)
        #expect(config.warnings.allSatisfy { !$0.description.contains("Sup3r-secret") })
    }

    @Test func aConfigBuiltInCodeHasNoWarnings() {
        #expect(DESConfig().warnings.isEmpty)
    }
}
