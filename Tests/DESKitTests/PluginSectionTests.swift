import Foundation
import Testing

@testable import DESKit

/// Plugins judge their own config sections through ``ConfigSection``, and with a registry the
/// loader refuses every plugin type the binary does not have.
@Suite("Plugin config sections") struct PluginSectionTests {
    /// A tape storage whose section has keys of its own.
    struct TapeConfig: PluginConfiguration {
        static let keys = [
            ConfigKey("drive", .text, help: "The tape device (required)."),
            ConfigKey("block_size", .bytes(512...1_048_576), default: "64KiB", help: "Bytes per block."),
        ]
        var drive: String
        var blockSize: UInt64 = 64 << 10
        init(from section: ConfigSection) throws {
            guard let drive = try section.text(Self.key("drive")) else { throw section.error("drive", "storage type 'tape' needs 'drive'") }
            self.drive = drive
            if let v = try section.bytes(Self.key("block_size")) { blockSize = v }
        }
    }

    /// A CSV source that refuses driver options it does not know.
    struct CSVOptions: ConnectionPluginConfiguration {
        static let keys = [ConfigKey("driver_options", .textMap, help: "delimiter")]
        var delimiter = ","
        init(connection: ConnectionConfig) throws {
            let o = try DriverOptions(
                connection.driverOptions, table: [ConfigKey("delimiter", .text, help: "")], plugin: "source type 'csv'")
            if let d = o.text("delimiter") { delimiter = d }
        }
    }

    /// A plugin that declares a key it never reads: a bug the loader refuses.
    struct ForgetfulConfig: PluginConfiguration {
        static let keys = [ConfigKey("used", .text, help: ""), ConfigKey("forgotten", .integer(1...10), help: "")]
        var used: String?
        init(from section: ConfigSection) throws { used = try section.text(Self.key("used")) }
    }

    static func registry() -> PluginRegistry {
        let r = PluginRegistry()
        r.registerStorage(type: "tape", configuration: TapeConfig.self) { _, _ in throw DESKitError(.configuration, "not built in this test") }
        r.registerStorage(type: "forgetful", configuration: ForgetfulConfig.self) { _, _ in throw DESKitError(.configuration, "not built") }
        r.registerSource(type: "csv", connection: CSVOptions.self) { _ in throw DESKitError(.configuration, "not built in this test") }
        r.registerMetadataStore(type: "sqlite") { _, _ in throw DESKitError(.configuration, "not built") }
        r.registerBodyFetcher(type: "local", configuration: NoConfiguration.self) { _, _, _ in throw DESKitError(.configuration, "not built") }
        r.registerIndexCache(type: "memory", configuration: NoConfiguration.self) { _ in throw DESKitError(.configuration, "not built") }
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

    @Test("A plugin's section is read once into its typed configuration, ${VAR} expanded; the factory gets that value")
    func ownKeysAreTyped() throws {
        let config = try Self.load(Self.csvSource + "storage:\n  type: tape\n  drive: ${DRIVE}\n  block_size: 128KiB\n")
        #expect(config.storage.type == "tape")
        let tape = try #require(config.storage.settings?.value(as: TapeConfig.self))
        #expect(tape.drive == "/dev/nst0" && tape.blockSize == 128 << 10)
        #expect(config.storage.settings?.summary == "drive /dev/nst0, block_size 128KiB")
        #expect(config.sources[0].connection.settings?.value(as: CSVOptions.self)?.delimiter == ";")
    }

    @Test("A key a plugin declares but never reads is refused at load (it would be accepted and ignored)")
    func declaredButUnreadKeyIsRefused() throws {
        #expect(try Self.load("storage:\n  type: forgetful\n  used: x\n").storage.type == "forgetful")
        let e = try #require(Self.error("storage:\n  type: forgetful\n  used: x\n  forgotten: 3\n"))
        #expect(e.code == .unreadKey && e.keyPath == "storage.forgotten" && e.line == 4)
        #expect(e.message.contains("never reads it"))
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

    @Test("Without a registry the plugin sections are kept unread: only DES's own keys are checked")
    func noRegistry() throws {
        let config = try Self.load("storage:\n  type: tape\n  drive: x\n  prefix: p\n", plugins: nil)
        #expect(config.storage.type == "tape" && config.storage.prefix == "p" && config.storage.settings == nil)
        #expect(Self.error("storage:\n  type: 'no spaces'\n", plugins: nil)?.keyPath == "storage.type")
    }
}
