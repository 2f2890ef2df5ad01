import DESPluginMSSQL
import DESPluginMariaDB
import DESPluginODBC
import DESPluginPostgreSQL
import DESPluginRedis
import DESPluginS3
import DESSQLDialects
import DESStorage
import Foundation
import Testing

@testable import DESKit

/// The stock plugins' sections: read once into typed values, every declared key read, and the
/// value that ran is the value the check accepted.
@Suite("Stock plugin configurations")
struct PluginConfigurationTests {
    @Test("S3: path_style: yes is true and part_size: 32MiB is 32 MiB in the client's settings (they were re-parsed as text before)")
    func s3ValuesMeanWhatWasChecked() throws {
        let yaml = """
            storage:
              type: s3
              bucket: b
              endpoint: http://127.0.0.1:9000
              access_key: a
              secret_key: s
              path_style: yes
              part_size: 32MiB
              multipart_threshold: 1GiB
              concurrency: 3
              request_timeout: 2.5

            """
        let s3 = try #require(try parseStock(yaml).storage.settings?.value(as: S3StorageConfig.self))
        let settings = try s3.settings(environment: [:])
        #expect(settings.pathStyle && settings.partSize == 32 << 20 && settings.multipartThreshold == 1 << 30)
        #expect(settings.concurrency == 3 && settings.requestTimeoutSeconds == 2.5 && settings.bucket == "b")
        let off = try parseStock(yaml.replacingOccurrences(of: "path_style: yes", with: "path_style: off"))
        #expect(try off.storage.settings?.value(as: S3StorageConfig.self)?.settings(environment: [:]).pathStyle == false)
        let small = try #require(stockError(yaml.replacingOccurrences(of: "part_size: 32MiB", with: "part_size: 4MiB")))
        #expect(small.keyPath == "storage.part_size" && small.code == .invalidValue)
        let word = try #require(stockError(yaml.replacingOccurrences(of: "path_style: yes", with: "path_style: sometimes")))
        #expect(word.keyPath == "storage.path_style" && word.code == .wrongType)
    }

    @Test("Every key of every stock plugin's table, written at its example value, loads: each one is read")
    func everyDeclaredKeyIsRead() throws {
        let registry = stockRegistry()
        var checked = 0
        func section(_ keys: [ConfigKey], indent: String) -> String {
            keys.map { "\(indent)\($0.name): \($0.example)\n" }.joined()
        }
        for kind in [PluginKind.storage, .cache] {
            for type in registry.types(kind) {
                let keys = try #require(registry.keys(kind, type: type))
                let yaml = "\(kind):\n  type: \(type)\n" + section(keys, indent: "  ")
                let config = try parseStock(yaml)
                let settings = kind == .storage ? config.storage.settings : config.cache.settings
                #expect(settings?.written.map(\.key) == keys.map(\.name), "\(kind) \(type)")
                checked += keys.count
            }
        }
        for type in registry.types(.bodies) {
            let keys = try #require(registry.keys(.bodies, type: type))
            let yaml = sourceYAML(extra: "bodies:\n  type: \(type)\n" + section(keys, indent: "  "))
            #expect(try parseStock(yaml).sources[0].bodies.settings?.written.map(\.key) == keys.map(\.name), "bodies \(type)")
            checked += keys.count
        }
        for type in registry.types(.source) {
            var keys = try #require(registry.keys(.source, type: type))
            // The DRIVER an ODBC example names stands for any; an oracle block speaks oracle.
            if type == "oracle" { keys = keys.map { $0.name == "dialect" ? ConfigKey("dialect", $0.kind, help: "", example: "oracle") : $0 } }
            let yaml = "sources:\n  - name: s\n    connection:\n      type: \(type)\n      database: d\n"
                + section(keys, indent: "      ") + "    table: {name: t}\n"
            let config = try parseStock(yaml)
            #expect(config.sources[0].connection.settings != nil, "source \(type)")
            checked += keys.count
        }
        #expect(checked >= 30)
    }

    @Test("driver_options are read once into typed values, for a config file and for a connection built in code alike")
    func driverOptionsAreTyped() throws {
        let yaml = """
            sources:
              - name: m
                connection: {type: mariadb, host: h, driver_options: {connect_timeout: 2.5, ssl_verify_cert: no}}
                table: {name: t}
              - name: s
                connection: {type: mssql, host: h, driver_options: {login_timeout: 7, charset: utf8, tds_version: '7.3'}}
                table: {name: t}

            """
        let config = try parseStock(yaml)
        let maria = try #require(config.sources[0].connection.settings?.value(as: MariaDBConnectionOptions.self))
        #expect(maria.connectTimeoutSeconds == 2.5 && maria.verifyServerCertificate == false)
        let mssql = try #require(config.sources[1].connection.settings?.value(as: MSSQLConnectionOptions.self))
        #expect(mssql.loginTimeoutSeconds == 7 && mssql.charset == "UTF-8" && mssql.tdsMinorVersion == 3)
        // What the check refuses, the factory refuses too: a login_timeout of 0.5 is not whole seconds.
        let half = try #require(stockError(yaml.replacingOccurrences(of: "login_timeout: 7", with: "login_timeout: 0.5")))
        #expect(half.keyPath == "sources[1].connection.driver_options" && half.message.contains("login_timeout"))
        var code = ConnectionConfig(type: "mssql", host: "h", driverOptions: ["login_timeout": "0.5"])
        #expect(throws: DESKitError.self) { _ = try MSSQLConnectionOptions.of(code, what: "source 's'") }
        code.driverOptions = ["login_timeout": "7", "charset": "latin1"]
        #expect(try MSSQLConnectionOptions.of(code, what: "source 's'").charset == "ISO-8859-1")
        // An unknown option names the plugin and the nearest one.
        let typo = try #require(stockError(yaml.replacingOccurrences(of: "ssl_verify_cert", with: "ssl_verify_cer")))
        #expect(typo.suggestion == "ssl_verify_cert" && typo.message.contains("mariadb plugin"))
    }

    @Test("SQLite declares no driver options: writing some is an unknown key, not a value silently dropped")
    func sqliteHasNoDriverOptions() throws {
        let e = try #require(stockError(sourceYAML(connectionExtra: "driver_options: {journal_mode: wal}")))
        #expect(e.code == .unknownKey && e.keyPath == "sources[0].connection.driver_options")
    }

    @Test("A section built in code is read by the same plugin parser (the s3:// of archive commands)")
    func sectionInCode() throws {
        let registry = stockRegistry()
        let settings = try registry.settings(.storage, type: "s3", values: ["bucket": "b", "part_size": "32MiB"], what: "s3://b/k")
        #expect(settings.value(as: S3StorageConfig.self)?.partSize == 32 << 20)
        #expect(throws: ConfigError.self) { _ = try registry.settings(.storage, type: "s3", values: [:], what: "s3://") }
        #expect(throws: DESKitError.self) { _ = try registry.settings(.storage, type: "s3", values: ["bukket": "b"], what: "s3://") }
    }

    @Test("DES's own sections: every key the loader allows is documented in docs/configuration.md, and every ranged key is allowed")
    func ownKeysAreDocumented() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let docs = try String(contentsOfFile: root + "/docs/configuration.md", encoding: .utf8)
        let tables: [String: [String]] = [
            "sources[]": ConfigLoader.sourceKeys, "sources[].connection": ConfigLoader.connectionOwnKeys + ["type", "driver_options"],
            "sources[].table": ConfigLoader.tableKeys, "sources[].table.columns": ConfigLoader.columnKeys,
            "packer": ConfigLoader.packerKeys, "marker": ConfigLoader.markerKeys, "server": ConfigLoader.serverKeys,
            "compaction": ConfigLoader.compactionKeys, "sources[].bodies": ConfigLoader.bodiesRules.ownKeys,
            "events": ConfigLoader.eventsKeys,
        ]
        for (section, keys) in tables {
            for key in keys { #expect(docs.contains("| `\(key)` |"), "\(section).\(key) has no row in docs/configuration.md") }
        }
        for entry in ConfigLimits.entries {
            let parts = entry.keyPath.split(separator: ".").map(String.init)
            let key = parts.last ?? ""
            let section = parts.dropLast().joined(separator: ".").replacingOccurrences(of: "metadata.connection", with: "sources[].connection")
            #expect(tables[section]?.contains(key) == true, "\(entry.keyPath) has a range but its section does not allow it")
        }
    }
}

/// What a hostile or careless config did to the first version of the typed sections, each now refused or warned at load.
@Suite("Plugin sections: hostile values")
struct PluginSectionHostileTests {
    static let s3 = "storage:\n  type: s3\n  bucket: b\n"

    @Test("An S3 endpoint with credentials in it is refused without repeating them; one with no host is refused")
    func s3EndpointCredentials() throws {
        let creds = try #require(stockError(Self.s3 + "  endpoint: 'http://AKIAUSER:SuperSecretPW@127.0.0.1:9000'\n"))
        #expect(creds.keyPath == "storage.endpoint" && creds.message.contains("credentials"))
        #expect(!creds.description.contains("SuperSecretPW") && !creds.description.contains("AKIAUSER"))
        let ftp = try #require(stockError(Self.s3 + "  endpoint: 'ftp://u:hunter2@h'\n"))
        #expect(!ftp.description.contains("hunter2"))
        #expect(stockError(Self.s3 + "  endpoint: 'http://'\n")?.message.contains("no host") == true)
        // From the environment too, when the client is built.
        let config = try #require(try parseStock(Self.s3 + "  access_key: a\n  secret_key: s\n").storage.settings?.value(as: S3StorageConfig.self))
        #expect(throws: DESKitError.self) { _ = try config.settings(environment: ["AWS_ENDPOINT_URL": "http://u:pw@h"]) }
    }

    @Test("bodies type s3 needs a bucket from the section or the table's s3_bucket column")
    func s3BodiesNeedABucket() throws {
        let e = try #require(stockError(sourceYAML(extra: "bodies: {type: s3}")))
        #expect(e.keyPath == "sources[0].bodies.bucket" && e.message.contains("columns.s3_bucket"))
        #expect(try parseStock(sourceYAML(extra: "bodies: {type: s3, bucket: b}")).sources[0].bodies.type == "s3")
        let column = sourceYAML(extra: "bodies: {type: s3}").replacingOccurrences(of: "name: files\n", with: "name: files\n      columns: {s3_bucket: bucket}\n")
        #expect(try parseStock(column).sources[0].bodies.type == "s3")
    }

    @Test("Table, schema and column names every dialect could not quote are refused at their line, not at the first statement")
    func identifiersAtLoad() throws {
        let table = try #require(configError(sourceYAML().replacingOccurrences(of: "name: files", with: "name: \"files; DROP TABLE x\"")))
        #expect(table.keyPath == "sources[0].table.name" && table.code == .invalidValue && table.line == 7)
        let column = try #require(configError(sourceYAML(extra: "  columns: {s3_key: \"my path\"}")))
        #expect(column.keyPath == "sources[0].table.columns.s3_key")
        let meta = try #require(configError(sourceYAML(extra: "  columns: {metadata_columns: [ok, \"bad`name\"]}")))
        #expect(meta.keyPath.hasPrefix("sources[0].table.columns.metadata_columns"))
        #expect(try parse(sourceYAML(extra: "  columns: {s3_key: \"Mixed_Case$1\"}")).sources[0].table.columns.s3Key == "Mixed_Case$1")
    }

    @Test("PostgreSQL driver option values libpq would refuse only when connecting are refused at load")
    func postgresOptionValues() throws {
        func pg(_ options: String) -> ConfigError? {
            stockError("sources:\n  - name: p\n    connection: {type: postgresql, host: h, driver_options: {\(options)}}\n    table: {name: t}\n")
        }
        #expect(pg("sslmode: maybe")?.message.contains("one of disable, allow, prefer, require, verify-ca, verify-full") == true)
        #expect(pg("sslmode: requir")?.suggestion == "require")
        #expect(pg("connect_timeout: abc")?.message.contains("connect_timeout") == true)
        #expect(pg("statement_timeout: forever")?.message.contains("statement_timeout") == true)
        #expect(pg("statement_timeout: 99999999999999h") != nil)
        #expect(try parseStock("sources:\n  - name: p\n    connection: {type: postgresql, host: h, driver_options: {sslmode: require, statement_timeout: 5min}}\n    table: {name: t}\n")
            .sources[0].connection.settings?.value(as: PostgresConnectionOptions.self)?.statementTimeout == "5min")
    }

    @Test("MariaDB: a charset that is not a name is refused at load (the factory refused it before); SQLite warns of server keys it ignores")
    func charsetAndIgnoredKeys() throws {
        let e = try #require(stockError("sources:\n  - name: m\n    connection: {type: mariadb, host: h, charset: 'utf8mb4; SET x=1'}\n    table: {name: t}\n"))
        #expect(e.keyPath == "sources[0].connection.charset")
        let sqlite = try parseStock(sourceYAML(connectionExtra: "host: db.example\npassword: pw-secret\ncharset: utf8"))
        #expect(Set(sqlite.warnings.map(\.keyPath)) == ["sources[0].connection.host", "sources[0].connection.password", "sources[0].connection.charset"])
        #expect(sqlite.warnings.allSatisfy { $0.message.contains("'sqlite'") && !$0.description.contains("pw-secret") })
    }

    @Test("Redis: a URL with no host is refused (it connected to 127.0.0.1 before); a bad %-encoded password says so")
    func redisURLs() throws {
        #expect(stockError("cache: {type: redis, url: 'redis://u:pw@'}\n")?.message.contains("no host") == true)
        let percent = try #require(stockError("cache: {type: redis, url: 'redis://u:pw%SE@h'}\n"))
        #expect(percent.message.contains("percent-encoding") && !percent.description.contains("pw%SE"))
    }

    @Test("MySQL ENUM members are read from COLUMN_TYPE, quotes and escapes included")
    func mysqlEnumLabels() {
        #expect(SQLCatalogColumn.mysqlEnumLabels("enum('uploaded','it''s','a\\\\b')") == ["uploaded", "it's", "a\\b"])
        #expect(SQLCatalogColumn.mysqlEnumLabels("varchar(64)") == nil)
    }

    @Test("A status column whose type allows only some labels refuses a status value outside them, naming the key")
    func enumLabelsRefuseOtherStatuses() throws {
        var table = TableConfig(name: "t")
        table.statusPackedValue = "packed"
        let columns = ["id", "s3_key", "des_status", "des_name", "des_shard", "des_claimed_by"].map {
            SQLCatalogColumn(
                name: $0, type: $0 == "des_status" ? "upload_state" : $0 == "des_shard" ? "integer" : "text",
                kind: $0 == "des_status" ? .enumeration : nil,
                labels: $0 == "des_status" ? ["DES_TODO", "DES_CLAIMED", "packed", "DES_FAILED"] : nil)
        }
        let catalog = SQLTableCatalog(columns: columns)
        #expect(throws: Never.self) { _ = try SQLTableShape(config: table, dialect: DESSQLDialects.PostgresDialect(), catalog: catalog, source: "s") }
        table.statusFailedValue = "failed"
        #expect {
            _ = try SQLTableShape(config: table, dialect: DESSQLDialects.PostgresDialect(), catalog: catalog, source: "s")
        } throws: { error in
            let e = error as? DESKitError
            return e?.code == .catalog && e?.message.contains("status_failed_value 'failed'") == true && e?.message.contains("'packed'") == true
        }
    }
}

@Suite("Container manifests")
struct ContainerManifestTests {
    @Test("Integer ids encode as runs, others as a list; both decode to the same rows; hostile text is an error, not a crash")
    func encoding() throws {
        let m = ContainerManifest(rows: ["a": ["3", "1", "2", "5", "10", "11"], "b": ["07", "7"], "c": ["-1"], "d": []])
        let text = m.encoded
        #expect(text.contains("\"a\":\"1-3,5,10-11\"") && text.contains("\"b\":[\"07\",\"7\"]") && text.contains("\"c\":[\"-1\"]"), "\(text)")
        let back = try ContainerManifest(encoded: text)
        #expect(back.rows["a"] == ["1", "2", "3", "5", "10", "11"] && back.rows["b"] == ["07", "7"] && back.rows["d"] == [])
        #expect(back.count == 9)
        for bad in ["", "[]", "{\"a\": 5}", "{\"a\": \"3-1\"}", "{\"a\": \"1-99999999999\"}", "{\"a\": \"x\"}", "{\"a\": \"1,,2\"}"] {
            #expect(throws: DESKitError.self, "\(bad)") { _ = try ContainerManifest(encoded: bad) }
        }
        // 100,000 consecutive ids stay a few bytes.
        #expect(ContainerManifest(rows: ["a": (1...100_000).map(String.init)]).encoded == "{\"a\":\"1-100000\"}")
    }

    @Test("Hostile source names and ids (quotes, backslashes, control characters, non-ASCII, Int64's edge) come back as themselves")
    func hostileText() throws {
        let m = ContainerManifest(rows: [
            "s\"q\\\n\u{1}é": ["a\"b", "c\\d", "line\nbreak", "\u{0}", "ünï\u{2028}", "/x/", "\u{1F}\u{7F}"],
            "edge": ["0", "9223372036854775807"],
            "over": ["1", "9223372036854775808"],
            "zero": ["00", "0"],
        ])
        let text = m.encoded
        #expect(text.contains("\"edge\":\"0,9223372036854775807\""), "\(text)")
        #expect(text.contains("\"over\":[\"1\",\"9223372036854775808\"]") && text.contains("\"zero\":[\"00\",\"0\"]"), "\(text)")
        #expect(try ContainerManifest(encoded: text) == m)
        #expect(ContainerManifest.canonicalInteger("") == nil && ContainerManifest.canonicalInteger("+1") == nil && ContainerManifest.canonicalInteger("0") == 0)
    }
}
