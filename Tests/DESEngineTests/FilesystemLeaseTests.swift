import DESKit
import DESPluginFilesystem
import DESPluginSQLite
import DESSQLDialects
import DESTestSupport
import Foundation
import Testing

/// A filesystem source drained with `claim_mode: lease`: the packer claims nothing, so a scan may
/// take a row again (its file changed) while the row's old bytes sit in a container the packer
/// has open. That container's mark must not record those bytes as the file's.
@Suite("Filesystem source, lease mode: a file changed while its row is in an open container")
struct FilesystemLeaseTests {
    /// A tree of one file, `a.txt` holding `OLD-CONTENT`, scanned twice and named, under a lease
    /// packer with `packer` added to its section: the directory, the file and the config's path.
    static func namedTree(_ tag: String, packer: String = "") async throws -> (dir: String, file: String, config: String) {
        let dir = NSTemporaryDirectory() + "des-fs-lease-\(tag)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/tree", withIntermediateDirectories: true)
        let file = dir + "/tree/a.txt"
        try Data("OLD-CONTENT".utf8).write(to: URL(fileURLWithPath: file))
        let config = dir + "/des.yaml"
        try """
            sources:
              - name: tree
                connection: {type: filesystem, roots: [tree], min_age: 0}
            storage: {type: local, root: des-data/archive}
            packer: {work_dir: des-data/work, claim_mode: lease\(packer)}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        for step in [["scan", "--until-idle"], ["scan", "--until-idle"], ["marker", "run", "--until-idle"]] {
            let r = try await runDES(step, config: config, in: dir)
            try #require(r.status == 0, "\(step): \(r.err)")
        }
        return (dir, file, config)
    }

    @Test("A row the scan took again is not marked packed by the container read before (its old bytes), nor failed by a failure of that read; it is packed again as the file now is")
    func changedInFlight() async throws {
        let (dir, file, config) = try await Self.namedTree("read")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func des(_ args: [String]) async throws -> (status: Int32, out: String, err: String) {
            try await runDES(args, config: config, in: dir)
        }
        // The catalog as the packer reads it: the source's rows in DES's own table.
        let path = dir + "/des-data/metadata.sqlite"
        let source = SourceConfig(
            name: "tree", connection: ConnectionConfig(type: "sqlite", database: path, poolSize: 1), table: FilesystemCatalog.tableConfig(source: "tree"))
        let pool = SQLConnectionPool(size: 1) { try await SQLiteConnection.open(path: path, create: false) }
        let connector = try SQLSourceConnector(config: source, dialect: SQLiteDialect(), pool: pool)
        // A lease-mode packer's read: the row, its name, and the stamp of the old bytes.
        let read = try await connector.readPending(shards: Array(0..<256), afterRowID: nil, limit: 10)
        try #require(read.count == 1)
        let row = read[0]

        // The file changes (another size), and the scan takes the row again as it is now.
        try Data("NEW-CONTENT-LONGER".utf8).write(to: URL(fileURLWithPath: file))
        for step in [["scan", "--until-idle"], ["scan", "--until-idle"]] {
            let r = try await des(step)
            try #require(r.status == 0, "\(step): \(r.err)")
        }
        // The container read before the change is marked: this row is not among its rows any more.
        #expect(try await connector.markPackedUnlessPacked(rowIDs: [row.rowID], names: [row.desName], container: "des/old.des") == 0)
        // Named afresh; a failure of the old read (its body no longer the scanned file) fails nothing.
        let named = try await des(["marker", "run", "--until-idle"])
        try #require(named.status == 0, "\(named.err)")
        #expect(try await connector.markFailedIfPending([FailedRow(rowID: row.rowID, reason: "stale", desName: row.desName)]) == 0)
        let renamed = try await connector.readPending(shards: Array(0..<256), afterRowID: nil, limit: 10)
        #expect(renamed.map(\.rowID) == [row.rowID] && renamed.first?.desName != row.desName, "\(renamed.map(\.desName))")
        await pool.close()

        let packed = try await des(["packer", "run", "--until-idle"])
        #expect(packed.status == 0, "\(packed.err)")
        let got = try await runDESRaw(["get", "-c", config, "--path", "a.txt"], in: dir)
        #expect(got.status == 0 && String(decoding: got.out, as: UTF8.self) == "NEW-CONTENT-LONGER", "\(String(decoding: got.out, as: UTF8.self)) \(got.err)")
        let check = try await des(["check"])
        #expect(check.status == 0, "\(check.out) \(check.err)")
    }

    @Test("End to end: the file changes while a lease packer holds its row in an open container; that container's entry is tombstoned, the file is packed again as it is now, and des check passes")
    func changedWhileContainerOpen() async throws {
        let (dir, file, config) = try await Self.namedTree("open", packer: ", max_container_age_seconds: 3600, idle_sleep_seconds: 0.2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let before = try await runDES(["ls-versions", "--path", "a.txt", "--json"], config: config, in: dir)
        // The packer reads the row and holds it in a container it keeps open (an hour's age).
        let start = Date()
        let packer = try startDES(["packer", "run"], config: config)
        let placed = await ProcessWatcher(process: packer, workDir: dir + "/des-data/work", since: start) { true }.finished()
        try #require(placed, "the packer never opened a container")
        try Data("NEW-CONTENT-LONGER".utf8).write(to: URL(fileURLWithPath: file))
        for step in [["scan", "--until-idle"], ["scan", "--until-idle"], ["marker", "run", "--until-idle"]] {
            let r = try await runDES(step, config: config, in: dir)
            try #require(r.status == 0, "\(step): \(r.err)")
        }
        // SIGTERM: the open container is finished, uploaded and marked; its one row is not its any more.
        packer.terminate()
        await waitForExit(packer)
        #expect(packer.terminationStatus == 0)
        let drained = try await runDES(["packer", "run", "--until-idle"], config: config, in: dir)
        #expect(drained.status == 0, "\(drained.err)")
        let got = try await runDESRaw(["get", "-c", config, "--path", "a.txt"], in: dir)
        #expect(got.status == 0 && String(decoding: got.out, as: UTF8.self) == "NEW-CONTENT-LONGER", "\(got.err)")
        let check = try await runDES(["check"], config: config, in: dir)
        #expect(check.status == 0, "\(check.out) \(check.err)")
        // The old name, never marked packed, is gone (410 in a server), not served with the old bytes.
        let versions = try #require(try JSONSerialization.jsonObject(with: Data(before.out.utf8)) as? [[String: Any]], "\(before)")
        let name = try #require(versions.first?["name"] as? String, "\(versions)")
        let old = try await runDES(["get", name], config: config, in: dir)
        #expect(old.status != 0 && !old.out.contains("OLD-CONTENT"), "\(old)")
    }
}

