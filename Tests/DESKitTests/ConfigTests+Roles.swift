import Testing

@testable import DESKit

/// Mappings that validate but would destroy data or fail every row are refused at their key.
@Suite("Config: columns, META keys, sources and pod names that cannot work")
struct ConfigRoleTests {
    /// A source over `table` with `columns` lines, named `name`.
    private func source(_ name: String = "a", table: String = "files", columns: [String] = [], extra: [String] = []) -> String {
        var text = "  - name: \(name)\n    connection: {type: sqlite, database: a.sqlite}\n    table:\n      name: \(table)\n"
        if !columns.isEmpty { text += "      columns:\n" + columns.map { "        \($0)\n" }.joined() }
        text += extra.map { "    \($0)\n" }.joined()
        return text
    }

    @Test("A column DES writes may not be another role's column: the body's key would get container keys, a status names", arguments: [
        ("s3_key: body_path", "des_container: body_path", "des_container"),
        ("status: des_name", "", "status"),
        ("claimed_by: des_status", "", "claimed_by"),
        ("error: body_path", "s3_key: body_path", "s3_key"),
        ("metadata_columns: {kind: des_status}", "", "metadata_columns"),
        ("source_deleted_at: packed", "packed_at: packed", "packed_at"),
        ("des_hash: Body_Path", "s3_key: body_path", "s3_key"),
    ])
    func writtenColumnsApart(first: String, second: String, key: String) throws {
        let yaml = "sources:\n" + source(columns: [first, second].filter { !$0.isEmpty })
        let error = try #require(configError(yaml))
        #expect(error.code == .invalidValue && error.keyPath == "sources[0].table.columns.\(key)", "\(error)")
        #expect(error.message.contains("overwrite") && error.message.contains("a column of its own"), "\(error.message)")
        #expect(error.line == lineNumber(of: key, in: yaml), "\(error)")
    }

    @Test("Columns DES only reads may share one: an id that is the path, a META value that is the size")
    func readColumnsMayShare() throws {
        let config = try parse("sources:\n" + source(columns: ["id: path", "s3_key: path", "size_bytes: n", "metadata_columns: {bytes: n}"]))
        #expect(config.sources[0].table.columns.id == "path" && config.sources[0].table.columns.s3Key == "path")
    }

    @Test("A META key DES writes itself (size, sha256, is_external, external_key) is refused at its line", arguments: ["size", "sha256", "is_external", "external_key"])
    func reservedMetaKeys(key: String) throws {
        for form in ["metadata_columns: {\(key): c1}", "metadata_columns: [\(key)]"] {
            let yaml = "sources:\n" + source(columns: [form])
            let error = try #require(configError(yaml))
            #expect(error.code == .invalidValue && error.message.contains("reserved") && error.message.contains("'\(key)'"), "\(error)")
            #expect(error.line == lineNumber(of: "metadata_columns", in: yaml), "\(error)")
        }
    }

    @Test("With claim_mode lease, two sources over one table are refused (a row both accept would be packed twice); row mode, other tables and disabled ones pass")
    func leaseSourcesOverOneTable() throws {
        let two = source("a") + source("b")
        let lease = "packer: {claim_mode: lease}\nsources:\n" + two
        let error = try #require(configError(lease))
        #expect(error.keyPath == "sources[1].table" && error.message.contains("source 'a'") && error.message.contains("packed twice"), "\(error)")
        #expect(try parse("packer: {claim_mode: row}\nsources:\n" + two).sources.count == 2)
        #expect(try parse("packer: {claim_mode: lease}\nsources:\n" + source("a") + source("b", table: "other")).sources.count == 2)
        #expect(try parse("packer: {claim_mode: lease}\nsources:\n" + source("a") + source("b", extra: ["enabled: false"])).sources.count == 2)
        // DES quotes names: files and FILES are two tables.
        #expect(try parse("packer: {claim_mode: lease}\nsources:\n" + source("a") + source("b", table: "FILES")).sources.count == 2)
        // One PostgreSQL table however its place is spelled: this machine's names, the default port and schema.
        func pg(_ name: String, _ connection: String, schema: String = "") -> String {
            "  - name: \(name)\n    connection: {type: postgresql, database: app\(connection)}\n    table: {name: files\(schema)}\n"
        }
        for (first, second) in [
            (pg("a", ", host: 127.0.0.1"), pg("b", ", host: localhost")), (pg("a", ", host: db.example."), pg("b", ", host: DB.example")),
            (pg("a", ", host: db, port: 5432"), pg("b", ", host: db")), (pg("a", ""), pg("b", "", schema: ", schema: public")),
        ] {
            let e = try #require(configError("packer: {claim_mode: lease}\nsources:\n" + first + second), "\(first)\(second)")
            #expect(e.message.contains("packed twice"), "\(e)")
        }
        // Two servers, or two databases: two tables.
        #expect(try parse("packer: {claim_mode: lease}\nsources:\n" + pg("a", ", host: db1") + pg("b", ", host: db2")).sources.count == 2)
    }

    @Test("A column DES writes may not be the shard column, nor columns.created_at's META key a metadata column's")
    func shardAndCreatedAt() throws {
        let shard = try #require(configError("sources:\n" + source(columns: ["source_deleted_at: des_shard"])))
        #expect(shard.message.contains("columns.source_deleted_at") && shard.message.contains("shard"), "\(shard)")
        let created = try #require(configError("sources:\n" + source(columns: ["created_at: ts", "metadata_columns: {created_at: other}"])))
        #expect(created.keyPath == "sources[0].table.columns.metadata_columns" && created.message.contains("created_at"), "\(created)")
        #expect(try parse("sources:\n" + source(columns: ["created_at: ts", "metadata_columns: {made: other}"])).sources.count == 1)
    }

    @Test("A pod name is 1 to 128 bytes with no control character or '/', in the config and on the command line")
    func podNames() throws {
        for bad in ["''", "\"\(String(repeating: "x", count: 129))\"", "\"a/b\"", "\"a\\tb\""] {
            let error = try #require(configError("packer: {pod_name: \(bad)}\n"), "\(bad)")
            #expect(error.keyPath == "packer.pod_name" && error.code == .invalidValue, "\(bad): \(error)")
        }
        #expect(try parse("packer: {pod_name: \"\(String(repeating: "x", count: 128))\"}\n").packer.podName?.count == 128)
        #expect(PackerConfig.podNameProblem("") != nil && PackerConfig.podNameProblem("des-0.pod") == nil)
    }

    @Test("Index names stay under 60 bytes, distinct for long table names that share their first 60")
    func indexNames() {
        let long = String(repeating: "t", count: 58)
        let claim = SQLCatalogPlan.indexName(long, "_des_claim"), name = SQLCatalogPlan.indexName(long, "_des_name")
        #expect(claim.utf8.count <= 60 && name.utf8.count <= 60 && claim != name && claim.hasSuffix("_des_claim"))
        let other = SQLCatalogPlan.indexName(long + "x", "_des_claim")
        #expect(other != claim, "two tables cut to the same prefix keep their own names")
        #expect(SQLCatalogPlan.indexName("files", "_des_claim") == "files_des_claim")
    }
}
