import DESFormat
import DESTestSupport
import Foundation
import Testing

/// Hostile archives through the `des` command: escaped listings, verified unpacks, the seal.
@Suite("des on hostile archives")
struct CLIHardeningTests {
    /// An unsealed archive (as the original writes) whose names hold a newline and an escape sequence,
    /// which DES's writer would refuse: the names are patched in after writing.
    static func hostileArchive(in dir: String) throws -> String {
        let path = dir + "/hostile.des"
        var options = DESArchiveWriter.Options()
        options.checksums = false
        let writer = try DESArchiveWriter(path: path, options: options)
        try writer.add(name: "aXb", bytes: Array("one".utf8))
        try writer.add(name: "cYd[31m", bytes: Array("two".utf8))
        try writer.close()
        var bytes = try readFile(path)
        let index = Int(bytes.count - 72 + 16 + 32)
        let indexStart = Int(bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: index, as: UInt64.self) })
        for i in indexStart..<(bytes.count - 72) {
            if bytes[i] == UInt8(ascii: "X") { bytes[i] = 0x0A }
            if bytes[i] == UInt8(ascii: "Y") { bytes[i] = 0x1B }
        }
        try writeFile(path, bytes)
        return path
    }

    @Test("ls escapes control characters; --raw prints them as they are; --json escapes them as JSON does")
    func listingEscapes() throws {
        try withTempDir { dir in
            _ = try Self.hostileArchive(in: dir)
            let ls = try runDES(["ls", "hostile.des"], in: dir)
            #expect(ls.status == 0, "\(ls.stderr)")
            #expect(ls.outLines == ["a\\nb", "c\\x1bd[31m"])
            #expect(!ls.stdout.contains(0x1B))
            let long = try runDES(["ls", "-l", "hostile.des"], in: dir)
            #expect(long.outLines.count == 2)
            #expect(!long.stdout.contains(0x1B))
            let raw = try runDES(["ls", "--raw", "hostile.des"], in: dir)
            #expect(raw.stdout == Array("a\nb\nc\u{1b}d[31m\n".utf8))
            let json = try runDES(["ls", "--json", "hostile.des"], in: dir)
            #expect(!json.stdout.contains(0x1B) && !json.stdout.dropLast().contains(0x0A))
            let items = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [[String: Any]])
            #expect(items.compactMap { $0["name"] as? String } == ["a\nb", "c\u{1b}d[31m"])
        }
    }

    @Test("unpack of a corrupted entry exits 65 and leaves no file for it; --no-verify extracts it")
    func unpackChecksBodies() throws {
        try withTempDir { dir in
            try makeTree(["good.txt": Array("fine".utf8), "zbad.bin": [UInt8](repeating: 7, count: 4096)], at: dir + "/src")
            #expect(try runDES(["pack", "src", "-o", "a.des"], in: dir).status == 0)
            var bytes = try readFile(dir + "/a.des")
            // Flip a byte of the second body (DATA is covered by each entry's sha256, not by the seal).
            bytes[16 + 4 + 100] ^= 0x01
            try writeFile(dir + "/a.des", bytes)
            let unpack = try runDES(["unpack", "a.des", "-C", "out"], in: dir)
            #expect(unpack.status == 65, "\(unpack.stderr)")
            #expect(unpack.stderr.contains("zbad.bin"))
            #expect(unpack.stderr.contains("hashes to"))
            #expect(!FileManager.default.fileExists(atPath: dir + "/out/zbad.bin"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/out") == ["good.txt"])
            let cat = try runDES(["cat", "a.des", "zbad.bin"], in: dir)
            #expect(cat.status == 65 && cat.stdout.isEmpty)
            let unchecked = try runDES(["unpack", "a.des", "-C", "raw", "--no-verify"], in: dir)
            #expect(unchecked.status == 0, "\(unchecked.stderr)")
            #expect(try readFile(dir + "/raw/zbad.bin").count == 4096)
        }
    }

    @Test("verify and stat report the seal; --require-seal fails an unsealed archive")
    func sealReporting() throws {
        try withTempDir { dir in
            try makeTree(["x.txt": Array("x".utf8)], at: dir + "/src")
            #expect(try runDES(["pack", "src", "-o", "sealed.des"], in: dir).status == 0)
            #expect(try runDES(["pack", "src", "-o", "plain.des", "--no-checksums"], in: dir).status == 0)
            let sealed = try runDES(["verify", "sealed.des", "--require-seal"], in: dir)
            #expect(sealed.status == 0 && sealed.out.contains("sealed"), "\(sealed.out)\(sealed.stderr)")
            let plain = try runDES(["verify", "plain.des"], in: dir)
            #expect(plain.status == 0 && plain.out.contains("unsealed"))
            let required = try runDES(["verify", "plain.des", "--require-seal", "--json"], in: dir)
            #expect(required.status == 65)
            let report = try #require(try JSONSerialization.jsonObject(with: Data(required.stdout)) as? [String: Any])
            #expect(report["sealed"] as? Bool == false && report["ok"] as? Bool == false)
            let stat = try runDES(["stat", "sealed.des", "--json"], in: dir)
            let s = try #require(try JSONSerialization.jsonObject(with: Data(stat.stdout)) as? [String: Any])
            #expect(s["sealed"] as? Bool == true && s["seal_version"] as? Int == 1)
        }
    }

    @Test("A reader that knows nothing of the seal (the original's layout, in Python) reads sealed archives")
    func originalReaderReadsSealedArchives() throws {
        try withTempDir { dir in
            let tree = sampleTree()
            try makeTree(tree, at: dir + "/src")
            #expect(try runDES(["pack", "src", "-o", "s.des"], in: dir).status == 0)
            #expect(try readFile(dir + "/s.des").suffix(72)[(72 - 72 + 9) + (try readFile(dir + "/s.des").count - 72)] == 1)
            try expectOriginalReaderLists(dir + "/s.des", tree)
        }
    }
}

/// The two-level index is a region the original's reader does not need.
@Suite("Two-level index and the original's reader") struct CLIHardeningLevels {
    @Test("The original's reader (in Python) lists and serves every file of a 3,000-file archive with a two-level index between INDEX and the footer; des verify checks that index against the flat one")
    func originalReaderReadsLevels() throws {
        try withTempDir { dir in
            var tree: [String: [UInt8]] = [:]
            for i in 0..<3000 { tree["d\(i % 10)/file-\(i).bin"] = Array("body \(i) ".utf8) + [UInt8(i % 256)] }
            try makeTree(tree, at: dir + "/src")
            #expect(try runDES(["pack", "src", "-o", "l.des"], in: dir).status == 0)
            let bytes = try readFile(dir + "/l.des")
            let trailer = Array(bytes[(bytes.count - 72 - 32)..<(bytes.count - 72 - 24)])
            #expect(trailer == Array("DESLVLS1".utf8), "no two-level index was written")
            try expectOriginalReaderLists(dir + "/l.des", tree)
            let one = try runProcess("/usr/bin/env", ["python3", originalReaderScript, dir + "/l.des", "d7/file-1237.bin"])
            #expect(one.stdout == tree["d7/file-1237.bin"])
            let verify = try runDES(["verify", "l.des", "--json"], in: dir)
            #expect(verify.status == 0, "\(verify)")
            // One byte of a leaf flipped (the region just before the root and trailer): verify says so.
            var damaged = bytes
            damaged[bytes.count - 72 - 32 - 2000] ^= 0x01
            try writeFile(dir + "/d.des", damaged)
            let bad = try runDES(["verify", "d.des"], in: dir)
            #expect(bad.status == 65 && bad.stderr.contains("two-level index"), "\(bad.stderr)")
        }
    }
}

/// The original's reader of scripts/compat (Python).
let originalReaderScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("scripts/compat/original_des_reader.py").path

/// The original's reader lists `archive` as exactly `tree`: each name with its size and sha256.
func expectOriginalReaderLists(_ archive: String, _ tree: [String: [UInt8]]) throws {
    let listing = try runProcess("/usr/bin/env", ["python3", originalReaderScript, archive])
    #expect(listing.status == 0, "\(listing.stderr)")
    let lines = listing.out.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
    #expect(lines.count == tree.count)
    for line in lines {
        guard line.count == 3, let body = tree[line[0]] else {
            Issue.record("unexpected line \(line)")
            continue
        }
        #expect(Int(line[1]) == body.count && line[2] == referenceSHA256Hex(body))
    }
}

/// ``runProcess(_:_:)`` off the cooperative pool, for a child that runs for seconds: a pool
/// thread blocked that long stalls every other test of the process.
func runProcessAwaiting(_ executable: String, _ args: [String]) async throws -> RunResult {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<RunResult, any Error>) in
        DispatchQueue.global().async { c.resume(with: Result { try runProcess(executable, args) }) }
    }
}

/// Runs a program and captures its output.
func runProcess(_ executable: String, _ args: [String]) throws -> RunResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = args
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return RunResult(status: process.terminationStatus, stdout: [UInt8](stdout), stderr: String(decoding: stderr, as: UTF8.self))
}
