import DESCLI
import DESEngine
import DESKit
import DESSQLDialects
import DESNaming
import DESPluginSQLite
import DESStorage
import DESTestSupport
import Foundation
import Logging
import Testing

/// A temporary embedded-default deployment: SQLite catalog and metadata, local bodies and storage.
struct Deployment {
    let dir: String
    let table: TableConfig
    let source: SourceConfig
    var catalogPath: String { dir + "/catalog.sqlite" }
    var bodiesRoot: String { dir + "/bodies" }
    var logger: Logger {
        var l = Logger(label: "test")
        l.logLevel = ProcessInfo.processInfo.environment["DES_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        return l
    }

    init() throws {
        dir = NSTemporaryDirectory() + "des-engine-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var columns = ColumnMapping()
        columns.s3Key = "body_path"
        columns.sizeBytes = "size_bytes"
        columns.metadataColumns = ["mime"]
        table = TableConfig(name: "files", columns: columns)
        source = SourceConfig(
            name: "catalog", connection: ConnectionConfig(type: "sqlite", database: dir + "/catalog.sqlite", poolSize: 1),
            table: table, bodies: BodiesConfig(type: "local", settings: PluginSettings(LocalBodiesConfig(root: dir + "/bodies"))))
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }

    func addRows(_ count: Int, size: Int? = 64, seed: UInt64 = 1) async throws {
        _ = try await SQLiteSampleCatalog.create(
            databasePath: catalogPath, table: table, bodiesRoot: bodiesRoot, files: count, size: size, seed: seed)
    }

    func connector(poolSize: Int = 1) throws -> SQLSourceConnector {
        let path = catalogPath
        let pool = SQLConnectionPool(size: poolSize) { try await SQLiteConnection.open(path: path) }
        return try SQLSourceConnector(config: source, dialect: SQLiteDialect(), pool: pool)
    }

    func metadata() async throws -> SQLMetadataStore {
        let store = try await SQLiteMetadataStore.open(path: dir + "/metadata.sqlite")
        try await store.migrate()
        return store
    }

    func storage() throws -> LocalDiskStorage { try LocalDiskStorage(root: dir + "/archive") }

    /// A marker over this deployment's catalog and metadata store.
    func marker(naming: any NamingStrategy, shardBits: Int, config: MarkerConfig = MarkerConfig(), poolSize: Int = 1)
        async throws -> Marker
    {
        Marker(
            sources: [try connector(poolSize: poolSize)], metadata: try await metadata(), naming: naming, shardBits: shardBits,
            config: config, logger: logger)
    }

    /// Names every row with Snowflake names from `clock` (default: now).
    func mark(shardBits: Int, clock: SnowflakeGenerator.Clock? = nil) async throws -> Int {
        let generator = try SnowflakeGenerator(configuration: .init(prefix: "T", node: 1), clock: clock)
        let marker = try await marker(naming: SnowflakeNaming(generator: generator), shardBits: shardBits)
        return try await marker.run(shutdown: ShutdownSignal(), untilIdle: true).marked
    }

    func sql(_ statement: String) async throws -> [SQLRow] {
        try await Self.sql(statement, in: catalogPath)
    }

    /// Runs one statement on the metadata database (as a hostile hand, or a test's set-up, would).
    @discardableResult
    func metadataSQL(_ statement: String) async throws -> [SQLRow] {
        try await Self.sql(statement, in: dir + "/metadata.sqlite")
    }

    private static func sql(_ statement: String, in path: String) async throws -> [SQLRow] {
        let c = try await SQLiteConnection.open(path: path)
        let rows = try await c.withSession { try $0.query(statement) }
        await c.close()
        return rows
    }

    /// Deletes the metadata database, its journal files included (a store lost).
    func dropMetadata() {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir + "/metadata.sqlite" + suffix) }
    }

    /// A packer over this deployment (its storage: the local archive, unless `storage` is given).
    func packer(
        shardBits: Int, maxFiles: Int = 100_000, pod: String = "pod", batchSize: Int = 500, storage: (any StorageBackend)? = nil,
        claimTimeout: Double = 600, policies: [String: Packer.SourcePolicy] = [:], claimMode: ClaimMode = .row
    ) async throws -> Packer {
        var config = PackerConfig()
        config.claimMode = claimMode
        config.claimTimeoutSeconds = claimTimeout
        config.batchSize = batchSize
        config.workDir = dir + "/work"
        config.shardBits = shardBits
        config.maxContainerFiles = maxFiles
        config.podName = pod
        config.heartbeatSeconds = 1
        return try Packer(
            parts: .init(
                sources: [
                    PackerSource(
                        connector: try connector(), fetcher: LocalBodyFetcher(root: bodiesRoot), policy: policies["catalog"] ?? .init())
                ],
                metadata: try await metadata(), storage: try storage ?? self.storage(), keyPrefix: "des"),
            config: config, logger: logger)
    }

    func audit(desNamesOnly: Bool = false) async throws -> CatalogAudit.Report {
        try await CatalogAudit(
            sources: [try connector()], fetchers: ["catalog": LocalBodyFetcher(root: bodiesRoot)],
            metadata: try await metadata(), storage: try storage(), desNamesOnly: desNamesOnly
        ).run()
    }

    /// Writes a config for a `des` child process over this deployment; `packer` is the packer
    /// section's flow map, `bodies` the keys after the bodies' type and root, `source` more keys
    /// of the source, `extra` more sections.
    func writeConfig(packer: String, name: String = "des.yaml", bodies: String = "", source: String = "", extra: String = "") throws -> String {
        let path = dir + "/" + name
        try """
            sources:
              - name: catalog
                connection: {type: sqlite, database: catalog.sqlite}
                table:
                  name: files
                  columns: {id: id, s3_key: body_path, size_bytes: size_bytes, status: des_status, metadata_columns: [mime]}
                bodies: {type: local, root: bodies\(bodies.isEmpty ? "" : ", " + bodies)}
            \(source.isEmpty ? "" : "    " + source + "\n")storage: {type: local, root: archive, prefix: des}
            metadata: {connection: {type: sqlite, database: metadata.sqlite}}
            packer: \(packer)
            \(extra)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Waits (up to about 10 s) until the packer has taken some rows: how many rows have left `DES_TODO`.
    func waitForClaims() async throws -> Int64 {
        var taken: Int64 = 0
        for _ in 0..<1000 where taken == 0 {
            try await Task.sleep(nanoseconds: 10_000_000)
            taken = try await sql("SELECT COUNT(*) FROM files WHERE des_status <> 'DES_TODO'").first?[0].int ?? 0
        }
        return taken
    }

    /// Waits for a child to exit (``waitForExit(_:)``: no thread is held).
    func wait(_ p: Process) async { await waitForExit(p) }

    /// Starts `des packer run` on `config` as a child process, its output discarded (its
    /// standard error written to `stderr`, when given).
    func startPacker(config: String, untilIdle: Bool, stderr: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try desBinary())
        p.arguments = ["packer", "run", "-c", config, "--log-level", "critical"] + (untilIdle ? ["--until-idle"] : [])
        p.standardOutput = FileHandle.nullDevice
        if let stderr {
            _ = FileManager.default.createFile(atPath: stderr, contents: nil)
            p.standardError = FileHandle(forWritingAtPath: stderr)
        } else {
            p.standardError = FileHandle.nullDevice
        }
        try p.run()
        return p
    }
}

/// Starts `des ARGS -c CONFIG --log-level critical` as a child process, its output discarded
/// (`environment`: variables set for it on top of this process's).
func startDES(_ args: [String], config: String, environment: [String: String] = [:]) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try desBinary())
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    p.arguments = args + ["-c", config, "--log-level", "critical"]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    return p
}

/// Stops process `pid` (SIGSTOP) at a moment when it holds no write lock on any of the SQLite
/// `databases` (WAL mode: the lock on byte 120 of the `-shm` file): a writer paused inside its
/// transaction would block every other process on that file, which is SQLite's nature, not
/// what a paused-packer test is about. Tries again, letting the process run a moment between
/// tries, until it is caught outside; false when it never is or has exited.
func pauseOutsideSQLiteWrites(_ pid: pid_t, databases: [String]) -> Bool {
    func writeLocked(_ database: String) -> Bool {
        let fd = open(database + "-shm", O_RDWR)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var probe = flock()
        probe.l_type = Int16(F_WRLCK)
        probe.l_whence = Int16(SEEK_SET)
        probe.l_start = 120
        probe.l_len = 1
        return fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != Int16(F_UNLCK)
    }
    for _ in 0..<2000 {
        guard kill(pid, SIGSTOP) == 0, waitUntilStopped(pid) else { return false }
        if !databases.contains(where: writeLocked) { return true }
        kill(pid, SIGCONT)
        usleep(500)
    }
    return false
}

/// Waits (a second at most) until every thread of `pid` is stopped: SIGSTOP is delivered
/// asynchronously, and a thread still running could take a lock after it was looked at.
func waitUntilStopped(_ pid: pid_t) -> Bool {
    func stopped(_ statPath: String) -> Bool {
        guard let stat = try? String(contentsOfFile: statPath, encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].dropFirst().first
        return state == "T" || state == "t"
    }
    for _ in 0..<1000 {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        if tasks.isEmpty { return false }  // gone
        if tasks.allSatisfy({ stopped("/proc/\(pid)/task/\($0)/stat") }) { return true }
        usleep(1000)
    }
    return false
}

/// Pauses `p` (SIGSTOP) from a watching thread the moment it has rows in hand — a container file
/// under `workDir` — and outside any SQLite write transaction on `databases`
/// (``pauseOutsideSQLiteWrites(_:databases:)``); false when it finished first.
func pauseWithRowsInHand(_ p: Process, workDir: String, databases: [String]) async -> Bool {
    let pid = p.processIdentifier
    return await ProcessWatcher(process: p, workDir: workDir, since: Date()) {
        pauseOutsideSQLiteWrites(pid, databases: databases)
    }.finished()
}

/// Watches a child process from a thread of its own (not the cooperative pool, which tests
/// running in parallel can keep busy for seconds): once a condition holds — for a packer, rows
/// in hand (a container file under its work directory) — `act` runs there. Kills that must land
/// mid-run use it, so that they do however loaded the machine is.
final class ProcessWatcher: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var acted = false  // guarded by lock

    /// Starts watching `workDir` while `process` (launched at `since`: files older than that
    /// are an earlier instance's) runs, for two minutes at most; `act` says whether it did its work.
    convenience init(process: Process, workDir: String, since: Date, act: @escaping @Sendable () -> Bool) {
        self.init(process: process, when: { Self.hasContainerFile(workDir, since: since) }, act: act)
    }

    /// Watches `process` for two minutes at most, polling `ready` every 2 ms from the watching
    /// thread; the first time it holds, `act` runs there.
    init(process: Process, when ready: @escaping @Sendable () -> Bool, act: @escaping @Sendable () -> Bool) {
        let pid = process.processIdentifier
        let deadline = Date().addingTimeInterval(120)
        let thread = Thread { [self] in
            defer { done.signal() }
            while kill(pid, 0) == 0, Date() < deadline {
                if ready() {
                    let did = act()
                    lock.withLock { acted = did }
                    return
                }
                usleep(2_000)
            }
        }
        thread.start()
    }

    /// Whether `act` ran and did its work (its condition held while the process ran), once the watch is over.
    func finished() async -> Bool {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.done.wait()
                c.resume()
            }
        }
        return lock.withLock { acted }
    }

    /// A container file written since `since` (an earlier, killed instance's files are older).
    private static func hasContainerFile(_ dir: String, since: Date) -> Bool {
        guard let walker = FileManager.default.enumerator(atPath: dir) else { return false }
        for case let path as String in walker where path.hasSuffix(".des") || path.contains(".des.") {
            let attributes = try? FileManager.default.attributesOfItem(atPath: (dir as NSString).appendingPathComponent(path))
            if let modified = attributes?[.modificationDate] as? Date, modified >= since { return true }
        }
        return false
    }
}

/// Runs `des ARGS -c CONFIG --log-level critical` (with an empty `config`, the arguments as given)
/// under timeout(1), killed after `killAfter` seconds; its exit status, stdout and stderr, kept
/// in files under `dir`. Waits without holding a thread.
func runDES(_ args: [String], config: String, in dir: String, killAfter: Int = 300) async throws -> (status: Int32, out: String, err: String) {
    let run = try await runDESRaw(config.isEmpty ? args : args + ["-c", config, "--log-level", "critical"], in: dir, killAfter: killAfter)
    return (run.status, String(decoding: run.out, as: UTF8.self), run.err)
}

/// Runs `des ARGS` as given (with `environment` added to this process's) under timeout(1);
/// its exit status, stdout as bytes and stderr, kept in files under `dir`.
func runDESRaw(_ args: [String], environment: [String: String] = [:], in dir: String, killAfter: Int = 300) async throws
    -> (status: Int32, out: Data, err: String)
{
    let (outPath, errPath) = (dir + "/out-\(UUID().uuidString)", dir + "/err-\(UUID().uuidString)")
    try #require(FileManager.default.createFile(atPath: outPath, contents: nil) && FileManager.default.createFile(atPath: errPath, contents: nil))
    let (out, err) = (try FileHandle(forWritingTo: URL(fileURLWithPath: outPath)), try FileHandle(forWritingTo: URL(fileURLWithPath: errPath)))
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    p.arguments = ["-s", "KILL", String(killAfter), try desBinary()] + args
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    p.standardOutput = out
    p.standardError = err
    try p.run()
    await waitForExit(p)
    try out.close()
    try err.close()
    return (
        p.terminationStatus, (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data(),
        String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data(), as: UTF8.self)
    )
}

/// A JSON object printed by `des … --json`.
func jsonObject(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
}

