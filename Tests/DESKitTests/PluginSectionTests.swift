import Foundation
import Testing

@testable import DESKit

/// Plugins judge their own config sections through ``ConfigSection``, and with a registry the
/// loader refuses every plugin type the binary does not have.
@Suite("Plugin config sections") struct PluginSectionTests {
    /// A registry with a tape storage whose section has keys of its own, and a CSV source that
    /// refuses driver options it does not know.
    static func registry() -> PluginRegistry {
        let r = PluginRegistry()
        r.registerStorage(
            type: "tape",
            check: { section in
                try section.checkKeys(["type", "prefix", "drive", "block_size"], plugin: "storage type 'tape'")
                _ = try section.int("block_size", in: 512...1_048_576)
                if try section.string("drive") == nil { throw section.error("drive", "storage type 'tape' needs 'drive'") }
            },
            factory: { _, _ in throw DESKitError(.configuration, "not built in this test") })
        r.registerSource(
            type: "csv",
            check: { section in
                for key in try section.stringMap("driver_options")?.keys.sorted() ?? [] where key != "delimiter" {
                    throw section.error("driver_options", "source type 'csv': unknown driver option '\(key)'", suggestion: "delimiter")
                }
            },
            factory: { _ in throw DESKitError(.configuration, "not built in this test") })
        r.registerMetadataStore(type: "sqlite") { _, _ in throw DESKitError(.configuration, "not built") }
        r.registerBodyFetcher(type: "local") { _, _ in throw DESKitError(.configuration, "not built") }
        r.registerIndexCache(type: "memory") { _ in throw DESKitError(.configuration, "not built") }
        return r
    }

    static func load(_ yaml: String, plugins: PluginRegistry? = registry()) throws -> DESConfig {
        try ConfigLoader.parse(yaml: yaml, file: "plugins.yaml", environment: ["DRIVE": "/dev/nst0"], plugins: plugins)
    }

    static func error(_ yaml: String, plugins: PluginRegistry? = registry()) -> ConfigError? {
        do {
            _ = try load(yaml, plugins: plugins)
            return nil
        } catch let e as ConfigError {
            return e
        } catch {
            Issue.record("not a ConfigError: \(error)")
            return nil
        }
    }

    static let csvSource = """
        sources:
          - name: files
            connection: {type: csv, database: files.csv, driver_options: {delimiter: ";"}}
            table: {name: files, columns: {id: id, s3_key: path}}

        """

    @Test("A plugin's own keys reach it as options, ${VAR} expanded")
    func ownKeysAreOptions() throws {
        let config = try Self.load(Self.csvSource + "storage:\n  type: tape\n  drive: ${DRIVE}\n  block_size: 65536\n")
        #expect(config.storage.type == "tape")
        #expect(config.storage.options == ["drive": "/dev/nst0", "block_size": "65536"])
    }

    @Test("A misspelt key of a plugin's section: file, line, column, the plugin named, did you mean")
    func misspeltPluginKey() throws {
        let e = try #require(Self.error("storage:\n  type: tape\n  driv: /dev/st0\n"))
        #expect(e.code == .unknownKey)
        #expect(e.keyPath == "storage.driv")
        #expect(e.file == "plugins.yaml" && e.line == 3)
        #expect(e.message.contains("storage type 'tape'"))
        #expect(e.suggestion == "drive")
    }

    @Test("A plugin's type and value checks run while the file loads")
    func pluginValueChecks() throws {
        let wrongType = try #require(Self.error("storage:\n  type: tape\n  drive: d\n  block_size: huge\n"))
        #expect(wrongType.keyPath == "storage.block_size" && wrongType.line == 4)
        let missing = try #require(Self.error("storage:\n  type: tape\n"))
        #expect(missing.keyPath == "storage.drive" && missing.message.contains("needs 'drive'"))
        let option = try #require(Self.error(Self.csvSource.replacingOccurrences(of: "delimiter", with: "delimter")))
        #expect(option.keyPath == "sources[0].connection.driver_options")
        #expect(option.message.contains("source type 'csv'") && option.message.contains("delimter"))
        #expect(option.suggestion == "delimiter")
    }

    @Test("With a registry, a type no plugin registers is refused where it is written, with the registered ones")
    func unregisteredTypes() throws {
        let storage = try #require(Self.error("storage:\n  type: tap\n  root: x\n"))
        #expect(storage.keyPath == "storage.type" && storage.line == 2)
        #expect(storage.message.contains("no plugin registers it") && storage.message.contains("tape"))
        #expect(storage.suggestion == "tape")
        let bodies = try #require(Self.error(Self.csvSource.replacingOccurrences(of: "columns: {id: id, s3_key: path}}", with: "columns: {id: id, s3_key: path}}\n    bodies: {type: ftp}")))
        #expect(bodies.keyPath == "sources[0].bodies.type")
        let source = try #require(Self.error(Self.csvSource.replacingOccurrences(of: "type: csv", with: "type: xls")))
        #expect(source.keyPath == "sources[0].connection.type")
        let metadata = try #require(Self.error("metadata:\n  connection: {type: postgresql, host: h, database: d}\n"))
        #expect(metadata.keyPath == "metadata.connection.type" && metadata.message.contains("registered: sqlite"))
        let cache = try #require(Self.error("cache:\n  type: disk\n"))
        #expect(cache.keyPath == "cache.type")
        // Stock types whose plugin this registry lacks are refused too.
        #expect(Self.error("storage:\n  type: s3\n  bucket: b\n")?.message.contains("no plugin registers it") == true)
        #expect(Self.error("cache:\n  type: redis\n  url: redis://127.0.0.1:6379\n")?.message.contains("registered: memory") == true)
    }

    @Test("A plugin without a check gets the loader's stock keys; without a registry the stock keys rule")
    func stockKeysWithoutChecks() throws {
        let r = Self.registry()
        r.registerStorage(type: "plain") { _, _ in throw DESKitError(.configuration, "not built") }
        let e = try #require(Self.error("storage:\n  type: plain\n  drive: x\n", plugins: r))
        #expect(e.code == .unknownKey && e.keyPath == "storage.drive")
        let noRegistry = try #require(Self.error("storage:\n  type: tape\n  drive: x\n", plugins: nil))
        #expect(noRegistry.code == .unknownKey && noRegistry.keyPath == "storage.drive")
    }
}
