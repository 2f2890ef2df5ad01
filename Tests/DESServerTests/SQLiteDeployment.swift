import DESTestSupport
import Foundation
import Testing

/// A temporary directory with a `des.yaml` over a SQLite catalog (source `catalog`, bodies on
/// local disk), local storage and a SQLite metadata store: what the tests that run the `des`
/// binary as a user would start from. `cleanup()` removes it.
struct SQLiteDeployment {
    let dir: String
    /// The config file.
    let config: String

    /// `columns` are the catalog's column mapping, `bodies` more keys of its `bodies:` section,
    /// `sources` more source entries (YAML list items), `extra` more top-level sections.
    init(_ label: String, columns: String = "s3_key: body_path", bodies: String = "", sources: String = "", extra: String = "") throws {
        dir = NSTemporaryDirectory() + "des-\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        config = dir + "/des.yaml"
        try """
            sources:
              - name: catalog
                connection: {type: sqlite, database: ./des-data/catalog.sqlite}
                table: {name: files, columns: {\(columns)}}
                bodies: {type: local, root: ./des-data/bodies\(bodies.isEmpty ? "" : ", " + bodies)}
            \(sources)
            storage: {type: local, root: ./des-data/archive}
            metadata: {connection: {type: sqlite, database: ./des-data/metadata.sqlite}}
            \(extra)
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }

    /// The DES name of a packed row of the catalog.
    func packedName() throws -> String {
        try python(
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT des_name FROM files WHERE des_container IS NOT NULL').fetchone()[0])",
            dir + "/des-data/catalog.sqlite")
    }
}

/// Starts `des ARGS --metrics-port 0` (in `directory`, when given) and returns the process and
/// the port it bound, which its first stderr line names ("des: metrics and health on
/// http://127.0.0.1:PORT/metrics"). Its stdout is discarded; the caller stops it.
func startWorker(_ args: [String], in directory: String? = nil) async throws -> (Process, Int) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try desBinary())
    p.arguments = args + ["--metrics-port", "0"]
    if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
    p.standardOutput = FileHandle.nullDevice
    let err = Pipe()
    p.standardError = err
    try p.run()
    let line = await firstLine(err.fileHandleForReading)
    guard let port = line.components(separatedBy: "127.0.0.1:").last?.components(separatedBy: "/").first.flatMap({ Int($0) }) else {
        p.terminate()
        throw TestFailure("des \(args.joined(separator: " ")) did not name its metrics port: '\(line)'")
    }
    return (p, port)
}

/// Runs `tool` with `arguments` in the repository; returns its status and its output (stdout and stderr).
func runTool(_ tool: String, _ arguments: [String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = arguments
    p.currentDirectoryURL = URL(fileURLWithPath: MonitoringTests.root)
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
}

/// What a Python one-liner prints (trimmed); its failure is the test's.
func python(_ program: String, _ arguments: String...) throws -> String {
    let (status, out) = try runTool("/usr/bin/env", ["python3", "-c", program] + arguments)
    guard status == 0 else { throw TestFailure("python3 -c \(program): \(out)") }
    return out.trimmingCharacters(in: .whitespacesAndNewlines)
}
