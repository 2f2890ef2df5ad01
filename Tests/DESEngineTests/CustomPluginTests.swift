import DESCLI
import DESFormat
import DESKit
import DESSQLDialects
import DESPluginSQLite
import DESStorage
import Foundation
import Synchronization
import Testing

/// Containers kept in memory: a storage backend of this test target's own.
final class MemoryStorage: StorageBackend {
    let objects = Mutex<[String: [UInt8]]>([:])
    var location: String { "memory://test" }

    func put(key: String, fromFile path: String) async throws -> ObjectInfo {
        guard let data = FileManager.default.contents(atPath: path) else { throw DESKitError(.storage, "cannot read \(path)") }
        let bytes = [UInt8](data)
        objects.withLock { $0[key] = bytes }
        return ObjectInfo(key: key, size: UInt64(bytes.count), etag: "\(bytes.count)-\(bytes.reduce(0) { $0 &* 31 &+ Int($1) })")
    }
    func get(key: String) async throws -> [UInt8] {
        guard let b = objects.withLock({ $0[key] }) else { throw DESKitError(.notFound, "no object \(key)") }
        return b
    }
    func get(key: String, offset: UInt64, length: UInt64) async throws -> [UInt8] {
        let b = try await get(key: key)
        guard offset + length <= UInt64(b.count) else { throw DESKitError(.storage, "range past the end of \(key)") }
        return Array(b[Int(offset)..<Int(offset + length)])
    }
    func getSuffix(key: String, length: UInt64) async throws -> (bytes: [UInt8], totalSize: UInt64) {
        let b = try await get(key: key)
        return (Array(b.suffix(Int(min(length, UInt64(b.count))))), UInt64(b.count))
    }
    func head(key: String) async throws -> ObjectInfo? {
        guard let b = objects.withLock({ $0[key] }) else { return nil }
        return ObjectInfo(key: key, size: UInt64(b.count), etag: "\(b.count)-\(b.reduce(0) { $0 &* 31 &+ Int($1) })")
    }
    func delete(key: String) async throws { _ = objects.withLock { $0.removeValue(forKey: key) } }
    func list(prefix: String) async throws -> [ObjectInfo] {
        var out: [ObjectInfo] = []
        for key in objects.withLock({ $0.keys.sorted() }) where key.hasPrefix(prefix) {
            if let info = try await head(key: key) { out.append(info) }
        }
        return out
    }
}

@Suite("Custom plugins") struct CustomPluginTests {
    @Test("A test target's own storage backend and source type, registered beside the stock plugins, run the stock marker, packer and check")
    func customStorageAndSource() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(300, size: 200)
        let memory = MemoryStorage()
        let registry = PluginRegistry()
        SQLitePlugin.register(in: registry)
        LocalStoragePlugin.register(in: registry)
        StockNaming.register(in: registry)
        registry.registerStorage(type: "memory", configuration: NoConfiguration.self) { _, _ in memory }
        registry.registerSource(type: "tenant-catalog") { context in
            // A source of this target's own type (over the SQLite driver and dialect here).
            let path = context.source.connection.database.map { $0.hasPrefix("/") ? $0 : context.baseDirectory + "/" + $0 } ?? ""
            let pool = SQLConnectionPool(size: 2) { try await SQLiteConnection.open(path: path, create: false) }
            return try SQLSourceConnector(config: context.source, dialect: SQLiteDialect(), pool: pool)
        }
        let config = d.dir + "/custom.yaml"
        try """
            sources:
              - name: tenant
                connection: {type: tenant-catalog, database: catalog.sqlite}
                table:
                  name: files
                  columns: {id: id, s3_key: body_path, size_bytes: size_bytes, status: des_status, metadata_columns: [mime]}
                bodies: {type: local, root: bodies}
            storage: {type: memory, prefix: des}
            metadata: {connection: {type: sqlite, database: metadata.sqlite}}
            packer: {work_dir: work, shard_bits: 2, max_container_files: 100}
            marker: {}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let quiet = ["--log-level", "critical"]
        #expect(await DESCommandLine.run(["config", "check", config], registry: registry) == 0)
        #expect(await DESCommandLine.run(["marker", "run", "-c", config, "--until-idle"] + quiet, registry: registry) == 0)
        #expect(await DESCommandLine.run(["packer", "run", "-c", config, "--until-idle"] + quiet, registry: registry) == 0)
        #expect(await DESCommandLine.run(["check", "-c", config] + quiet, registry: registry) == 0)
        let keys = memory.objects.withLock { $0.keys.sorted() }
        #expect(keys.count >= 3 && keys.allSatisfy { $0.hasPrefix("des/") && $0.hasSuffix(".des") }, "\(keys)")
        let packed = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_PACKED'").first?[0].int
        #expect(packed == 300)
        // A type no plugin registers is refused by config check, naming it.
        try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "type: memory", with: "type: tape")
            .write(toFile: config, atomically: true, encoding: .utf8)
        #expect(await DESCommandLine.run(["config", "check", config], registry: registry) == 65)
    }
}
