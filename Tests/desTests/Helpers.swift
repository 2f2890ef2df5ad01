import Foundation
import DESTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: Finding and running the `des` binary

/// The `des` executable: `$DES_BIN` when set, otherwise the sibling of the test bundle
/// (on Linux the test runner lives in `.build/debug`, next to `des`).
func desBinary() throws -> String {
    do { return try desExecutable() } catch {
        Issue.record("\(error)")
        throw CancellationError()
    }
}

/// What a run of `des` produced.
struct RunResult {
    var status: Int32
    var stdout: [UInt8]
    var stderr: String
    var out: String { String(decoding: stdout, as: UTF8.self) }
    var outLines: [String] { out.split(separator: "\n").map(String.init) }
    var errLines: [String] { stderr.split(separator: "\n").map(String.init) }
}

/// Runs `des ARGS` in `dir` (stdout and stderr captured through files, so large outputs cannot block).
/// With `fileSizeLimitKiB`, `des` runs under `ulimit -f` with SIGXFSZ ignored, so a write past the
/// limit fails with EFBIG, as on a full disk. With `asUser`, `des` runs as that user id.
func runDES(
    _ args: [String], in dir: String, environment: [String: String] = [:], fileSizeLimitKiB: Int? = nil, asUser uid: Int? = nil
) throws -> RunResult {
    let process = Process()
    if let uid {
        // As another user (and its group, no others): util-linux's setpriv.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = ["--reuid", "\(uid)", "--regid", "\(uid)", "--clear-groups", try desBinary()] + args
    } else if let limit = fileSizeLimitKiB {
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "trap '' XFSZ; ulimit -f \(limit); exec \"$0\" \"$@\"", try desBinary()] + args
    } else {
        process.executableURL = URL(fileURLWithPath: try desBinary())
        process.arguments = args
    }
    process.currentDirectoryURL = URL(fileURLWithPath: dir)
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let id = UUID().uuidString
    let outPath = dir + "/.stdout-\(id)", errPath = dir + "/.stderr-\(id)"
    try #require(FileManager.default.createFile(atPath: outPath, contents: nil))
    try #require(FileManager.default.createFile(atPath: errPath, contents: nil))
    defer {
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
    }
    let outHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    process.standardOutput = outHandle
    process.standardError = errHandle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try outHandle.close()
    try errHandle.close()
    #expect(process.terminationReason == .exit, "des \(args) was killed by signal \(process.terminationStatus)")
    return RunResult(
        status: process.terminationStatus, stdout: try readFile(outPath),
        stderr: String(decoding: try readFile(errPath), as: UTF8.self))
}

// MARK: Temporary directories and files

/// Runs `body` with a fresh, empty directory that is removed afterwards.
func withTempDir<R>(_ body: (String) throws -> R) throws -> R {
    let base = FileManager.default.temporaryDirectory.path
    var template = Array((base + "/des-cli-tests-XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { buf -> String? in
        guard let p = mkdtemp(buf.baseAddress!) else { return nil }
        return String(cString: p)
    }
    let dir = try #require(made, "mkdtemp failed")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try body(dir)
}

func readFile(_ path: String) throws -> [UInt8] {
    [UInt8](try #require(FileManager.default.contents(atPath: path), "cannot read \(path)"))
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Parses JSON text into a Foundation object.
func parseJSON(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
}

/// A small tree of files (relative path -> bytes) with nesting, unicode names, empty and binary files.
func sampleTree() -> [String: [UInt8]] {
    var rng = SeededRNG(seed: 11)
    return [
        "a.txt": Array("hello\n".utf8),
        "empty": [],
        "bin/random.bin": rng.bytes(70_000),
        "bin/zeros": [UInt8](repeating: 0, count: 1000),
        "docs/ünïcode/日本.txt": Array("こんにちは\n".utf8),
        "docs/space name.md": Array("# title\n".utf8),
    ]
}

/// Writes `tree` under `root`.
func makeTree(_ tree: [String: [UInt8]], at root: String) throws {
    for (rel, bytes) in tree { try writeFile(root + "/" + rel, bytes) }
}

/// Checks that an error report is the CLI's one-line form, not a crash.
func expectCleanErrorLine(_ r: RunResult, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.errLines.count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    #expect(r.errLines.first?.hasPrefix("des: error: ") == true, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    for marker in ["Fatal error", "Stack dump", "Backtrace", "backtrace", "Current stack trace", "0x0000"] {
        #expect(!r.stderr.contains(marker), "stderr looks like a crash: \(r.stderr)", sourceLocation: sourceLocation)
    }
}
