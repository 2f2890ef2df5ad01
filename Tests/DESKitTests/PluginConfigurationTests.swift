import DESPluginMSSQL
import DESPluginMariaDB
import DESPluginODBC
import DESPluginPostgreSQL
import DESPluginRedis
import DESPluginS3
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
