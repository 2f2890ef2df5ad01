import DESFormat
import DESTestSupport
import Foundation
import Testing

/// `des pack`, `ls`, `cat`, `meta`, `stat`, `verify` and `unpack`, run as a real process.
@Suite("des archive commands")
struct CLIArchiveTests {
    /// The order `des pack` stores a tree in: depth-first, each directory sorted by UTF-8 bytes.
    static let packedOrder = ["a.txt", "bin/random.bin", "bin/zeros", "docs/space name.md", "docs/ünïcode/日本.txt", "empty"]

    @Test("pack a tree, then ls / cat / meta / stat / verify / unpack it")
    func fullCycle() throws {
        try withTempDir { dir in
            let tree = sampleTree()
            try makeTree(tree, at: dir + "/src")
            #expect(Set(Self.packedOrder) == Set(tree.keys))

            let pack = try runDES(["pack", "src", "-o", "out.des"], in: dir)
            #expect(pack.status == 0, "\(pack.stderr)")
            #expect(pack.out.contains("packed \(tree.count) files"))
            #expect(FileManager.default.fileExists(atPath: dir + "/out.des"))
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.des.partial"))

            // ls: one name per line, in index order.
            let ls = try runDES(["ls", "out.des"], in: dir)
            #expect(ls.status == 0)
            #expect(ls.outLines == Self.packedOrder)

            // ls -l: size, flags, name.
            let long = try runDES(["ls", "-l", "out.des"], in: dir)
            #expect(long.status == 0)
            #expect(long.outLines.count == tree.count)
            for line in long.outLines {
                let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).map(String.init)
                #expect(fields.count == 3, "\(line)")
                guard fields.count == 3 else { continue }
                let name = fields[2].trimmingCharacters(in: .whitespaces)
                #expect(Int(fields[0]) == tree[name]?.count, "\(line)")
                #expect(fields[1] == "-")
            }

            // ls --json.
            let lsJSON = try runDES(["ls", "--json", "out.des"], in: dir)
            let items = try #require(try parseJSON(lsJSON.out) as? [[String: Any]])
            #expect(items.compactMap { $0["name"] as? String } == Self.packedOrder)
            for item in items {
                let name = try #require(item["name"] as? String)
                #expect((item["size"] as? Int) == tree[name]?.count)
                #expect((item["flags"] as? [String]) == [])
            }

            // cat: exact bytes on stdout, binary included.
            for (name, bytes) in tree {
                let cat = try runDES(["cat", "out.des", name], in: dir)
                #expect(cat.status == 0, "\(name): \(cat.stderr)")
                #expect(cat.stdout == bytes, "cat \(name)")
                #expect(cat.stderr.isEmpty)
            }

            // meta: the stored JSON, exactly, with size and sha256.
            let reader = try DESArchiveReader(path: dir + "/out.des")
            for (name, bytes) in tree {
                let meta = try runDES(["meta", "out.des", name], in: dir)
                #expect(meta.status == 0)
                #expect(meta.stdout == (try reader.rawMeta(named: name)) + [0x0A])
                let obj = try #require(try parseJSON(meta.out) as? [String: Any])
                #expect((obj["size"] as? Int) == bytes.count)
                let sum = try #require(obj["sha256"] as? String)
                #expect(sum.count == 64 && sum.allSatisfy(\.isHexDigit))
            }
            #expect(try runDES(["meta", "out.des", "empty"], in: dir).out.contains("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))

            // stat --json.
            let stat = try runDES(["stat", "--json", "out.des"], in: dir)
            #expect(stat.status == 0)
            let s = try #require(try parseJSON(stat.out) as? [String: Any])
            let size = try readFile(dir + "/out.des").count
            #expect((s["file_count"] as? Int) == tree.count)
            #expect((s["archive_size"] as? Int) == size)
            #expect((s["data_start"] as? Int) == 16)
            #expect((s["data_length"] as? Int) == tree.values.map(\.count).reduce(0, +))
            #expect((s["total_file_bytes"] as? Int) == tree.values.map(\.count).reduce(0, +))
            #expect((s["largest_file"] as? Int) == 70_000)
            #expect((s["version"] as? Int) == 1)
            #expect((s["external_count"] as? Int) == 0)
            #expect((s["index_start"] as? Int).map { $0 + (s["index_length"] as? Int ?? 0) + 72 } == size)

            // verify.
            let verify = try runDES(["verify", "out.des"], in: dir)
            #expect(verify.status == 0, "\(verify.stderr)")
            #expect(verify.out.contains("OK"))
            #expect(verify.out.contains("\(tree.count) entries"))
            let verifyJSON = try #require(try parseJSON(try runDES(["verify", "--json", "out.des"], in: dir).out) as? [String: Any])
            #expect((verifyJSON["ok"] as? Bool) == true)
            #expect((verifyJSON["checksummed"] as? Int) == tree.count)

            // unpack, then compare every byte.
            let unpack = try runDES(["unpack", "out.des", "-C", "restored"], in: dir)
            #expect(unpack.status == 0, "\(unpack.stderr)")
            #expect(unpack.out.contains("unpacked \(tree.count) files"))
            for (name, bytes) in tree {
                #expect(try readFile(dir + "/restored/" + name) == bytes, "\(name)")
            }
            let restored = try FileManager.default.subpathsOfDirectory(atPath: dir + "/restored").filter {
                var isDir: ObjCBool = false
                return FileManager.default.fileExists(atPath: dir + "/restored/" + $0, isDirectory: &isDir) && !isDir.boolValue
            }
            #expect(Set(restored) == Set(tree.keys))

            // A second unpack refuses to overwrite (73) unless --force.
            try writeFile(dir + "/restored/a.txt", Array("changed".utf8))
            let again = try runDES(["unpack", "out.des", "-C", "restored"], in: dir)
            #expect(again.status == 73)
            expectCleanErrorLine(again)
            #expect(try readFile(dir + "/restored/a.txt") == Array("changed".utf8))
            let forced = try runDES(["unpack", "out.des", "-C", "restored", "--force"], in: dir)
            #expect(forced.status == 0)
            #expect(try readFile(dir + "/restored/a.txt") == tree["a.txt"])
        }
    }

    @Test("pack --no-checksums writes the original's META; verify says there was no checksum to check")
    func packWithoutChecksums() throws {
        try withTempDir { dir in
            try writeFile(dir + "/src/a.txt", Array("hello".utf8))
            try writeFile(dir + "/src/b", [])
            let pack = try runDES(["pack", "src", "-o", "plain.des", "--no-checksums"], in: dir)
            #expect(pack.status == 0, "\(pack.stderr)")
            let bytes = try readFile(dir + "/plain.des")
            // 16 header + 5 data + {"size":5}{"size":0} (20) + index (2+5+36 + 2+1+36 = 82) + 72 footer.
            #expect(bytes.count == 16 + 5 + 20 + 82 + 72)
            #expect(String(decoding: bytes[21..<41], as: UTF8.self) == #"{"size":5}{"size":0}"#)
            let verify = try runDES(["verify", "plain.des"], in: dir)
            #expect(verify.status == 0)
            #expect(verify.out.contains("2 without a checksum"))
        }
    }

    @Test("pack warns about a symlink it skips but still succeeds")
    func packSkipsSymlink() throws {
        try withTempDir { dir in
            try writeFile(dir + "/src/real", [1])
            try FileManager.default.createSymbolicLink(atPath: dir + "/src/link", withDestinationPath: "real")
            let pack = try runDES(["pack", "src", "-o", "l.des"], in: dir)
            #expect(pack.status == 0)
            #expect(pack.errLines.count == 1)
            #expect(pack.errLines.first?.hasPrefix("des: warning: ") == true)
            #expect(pack.stderr.contains("link"))
            #expect(try runDES(["ls", "l.des"], in: dir).outLines == ["real"])
        }
    }

    @Test("pack that cannot write (file too large) exits 74 and leaves neither an archive nor a partial file")
    func packWriteFailure() throws {
        try withTempDir { dir in
            // 3 MiB of bodies against a 1 MiB limit: the writer's thread fails part-way through.
            var rng = SeededRNG(seed: 5)
            for i in 0..<48 { try writeFile(dir + "/src/f\(i)", rng.bytes(64 * 1024)) }
            let pack = try runDES(["pack", "src", "-o", "out.des"], in: dir, fileSizeLimitKiB: 1024)
            #expect(pack.status == 74)
            expectCleanErrorLine(pack)
            #expect(pack.stderr.contains("File too large"))
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.des"))
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.des.partial"))
            // The same files pack fine without the limit.
            #expect(try runDES(["pack", "src", "-o", "out.des"], in: dir).status == 0)
        }
    }
}
