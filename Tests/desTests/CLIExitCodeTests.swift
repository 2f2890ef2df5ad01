import Foundation
import Testing

/// Exit codes (sysexits-style) and the one-line error reports of `des`.
@Suite("des exit codes and errors")
struct CLIExitCodeTests {
    /// Packs the sample tree into `dir/a.des`.
    static func packSample(in dir: String) throws {
        try makeTree(sampleTree(), at: dir + "/src")
        let r = try runDES(["pack", "src", "-o", "a.des"], in: dir)
        try #require(r.status == 0, "\(r.stderr)")
    }

    @Test("pack to an existing output exits 73 and leaves it alone")
    func packOutputExists() throws {
        try withTempDir { dir in
            try Self.packSample(in: dir)
            try writeFile(dir + "/taken.des", Array("keep me".utf8))
            let r = try runDES(["pack", "src", "-o", "taken.des"], in: dir)
            #expect(r.status == 73)
            expectCleanErrorLine(r)
            #expect(r.stderr.contains("already exists"))
            #expect(r.stderr.contains("--force"))
            #expect(try readFile(dir + "/taken.des") == Array("keep me".utf8))
            #expect(!FileManager.default.fileExists(atPath: dir + "/taken.des.partial"))
            // --force replaces it.
            #expect(try runDES(["pack", "src", "-o", "taken.des", "--force"], in: dir).status == 0)
            #expect(try runDES(["verify", "taken.des"], in: dir).status == 0)
        }
    }

    @Test("cat of a missing entry exits 66")
    func catMissingEntry() throws {
        try withTempDir { dir in
            try Self.packSample(in: dir)
            let r = try runDES(["cat", "a.des", "no/such/entry"], in: dir)
            #expect(r.status == 66)
            expectCleanErrorLine(r)
            #expect(r.stderr.contains("no/such/entry"))
            #expect(r.stdout.isEmpty)
        }
    }

    @Test("ls of a missing archive exits 66")
    func lsMissingArchive() throws {
        try withTempDir { dir in
            let r = try runDES(["ls", "nope.des"], in: dir)
            #expect(r.status == 66)
            expectCleanErrorLine(r)
            #expect(r.stderr.contains("nope.des"))
            #expect(r.stdout.isEmpty)
        }
    }

    @Test("verify of a structurally corrupt archive exits 65 with one error line")
    func verifyCorruptStructure() throws {
        try withTempDir { dir in
            try Self.packSample(in: dir)
            var bytes = try readFile(dir + "/a.des")
            bytes[bytes.count - 72] ^= 0xFF  // footer magic
            try writeFile(dir + "/bad.des", bytes)
            let r = try runDES(["verify", "bad.des"], in: dir)
            #expect(r.status == 65)
            expectCleanErrorLine(r)
            #expect(r.stderr.contains("corrupt archive"))
            #expect(r.stderr.contains("footer magic"))
            #expect(r.stderr.contains("bad.des"))
            // With --json, a report a script can parse all the same: not ok, the problem named.
            let j = try runDES(["verify", "--json", "bad.des"], in: dir)
            #expect(j.status == 65)
            let report = try #require(try JSONSerialization.jsonObject(with: Data(j.stdout)) as? [String: Any], "\(String(decoding: j.stdout, as: UTF8.self))")
            #expect(report["ok"] as? Bool == false && report["problem_count"] as? Int == 1)
            #expect((report["problems"] as? [String])?.first?.contains("footer magic") == true, "\(report)")

            // The same for every command that opens the archive, and for a file that is not an archive at all.
            for args in [["ls", "bad.des"], ["stat", "bad.des"], ["cat", "bad.des", "a.txt"]] {
                let other = try runDES(args, in: dir)
                #expect(other.status == 65, "\(args)")
                expectCleanErrorLine(other)
            }
            try writeFile(dir + "/text.des", Array(String(repeating: "not an archive\n", count: 20).utf8))
            let text = try runDES(["verify", "text.des"], in: dir)
            #expect(text.status == 65)
            expectCleanErrorLine(text)
            #expect(text.stderr.contains("header magic"))
        }
    }

    @Test("verify of an archive with a damaged body exits 65, naming the entry; cat refuses it")
    func verifyCorruptBody() throws {
        try withTempDir { dir in
            try Self.packSample(in: dir)
            var bytes = try readFile(dir + "/a.des")
            // bin/random.bin is the second entry, right after a.txt's 6 bytes.
            bytes[16 + 6 + 1234] ^= 0x40
            try writeFile(dir + "/bad.des", bytes)
            let r = try runDES(["verify", "bad.des"], in: dir)
            #expect(r.status == 65)
            #expect(!r.errLines.isEmpty)
            #expect(r.errLines.allSatisfy { $0.hasPrefix("des: error: ") }, "\(r.stderr)")
            #expect(r.stderr.contains("bin/random.bin"))
            #expect(r.stderr.contains("checksum mismatch"))
            #expect(r.stderr.contains("FAILED, 1 problems"))
            #expect(!r.stderr.contains("Fatal error"))

            let cat = try runDES(["cat", "bad.des", "bin/random.bin"], in: dir)
            #expect(cat.status == 65)
            expectCleanErrorLine(cat)
            #expect(cat.stdout.isEmpty, "nothing may be written before the check")
            // --no-verify hands out the bytes as stored; other entries are fine.
            let raw = try runDES(["cat", "bad.des", "bin/random.bin", "--no-verify"], in: dir)
            #expect(raw.status == 0)
            #expect(raw.stdout.count == 70_000)
            #expect(try runDES(["cat", "bad.des", "a.txt"], in: dir).stdout == Array("hello\n".utf8))
        }
    }

    @Test("Usage errors exit 64", arguments: [
        ["ls", "--bogus", "a.des"], ["frobnicate"], ["cat", "a.des"], ["name", "--count", "0"], ["pack", "src"],
        ["packer", "run", "-c", "none.yaml", "--pod-name", ""], ["packer", "run", "-c", "none.yaml", "--pod-name", String(repeating: "p", count: 300)],
        ["scan", "-c", "none.yaml", "--pod-name", "a/b"],
    ])
    func usageErrors(args: [String]) throws {
        try withTempDir { dir in
            try Self.packSample(in: dir)
            let r = try runDES(args, in: dir)
            #expect(r.status == 64, "\(args): \(r.stderr)")
            #expect(!r.stderr.isEmpty)
            #expect(!r.stderr.contains("Fatal error"))
            if args.contains("--bogus") { #expect(r.stderr.contains("--bogus")) }
        }
    }

    @Test("Invalid naming settings exit 64")
    func invalidNamingSettings() throws {
        try withTempDir { dir in
            for args in [["name", "--prefix", "BAD-PREFIX"], ["name", "--node", "256"], ["shard", "x", "--bits", "0"]] {
                let r = try runDES(args, in: dir)
                #expect(r.status == 64, "\(args): \(r.stderr)")
                expectCleanErrorLine(r)
            }
        }
    }

    @Test("--help and --version exit 0")
    func helpAndVersion() throws {
        try withTempDir { dir in
            let help = try runDES(["--help"], in: dir)
            #expect(help.status == 0)
            #expect(help.out.contains("pack"))
            #expect(help.out.contains("Exit codes"))
            let version = try runDES(["--version"], in: dir)
            #expect(version.status == 0)
            #expect(!version.out.isEmpty)
        }
    }
}
