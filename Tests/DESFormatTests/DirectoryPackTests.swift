import DESFormat
import Foundation
import DESTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Packing a directory tree, unpacking it, and never writing outside the target directory.
@Suite("Directory pack and unpack")
struct DirectoryPackTests {
    /// Regular files of the test tree (relative path -> bytes).
    static func treeFiles() -> [String: [UInt8]] {
        var rng = SeededRNG(seed: 42)
        return [
            "a.txt": Array("alpha\n".utf8),
            "empty.bin": [],
            "sub/deeper/x.dat": rng.bytes(100_000),
            "sub/deeper/empty": [],
            "sub/ünï cødé.txt": Array("unicode name\n".utf8),
            "日本語/ファイル.txt": Array("日本語の内容".utf8),
            "z/😀/last": rng.bytes(4096),
            "big.bin": rng.bytes(1_500_000),
        ]
    }

    /// Builds the tree under `root`: the regular files, an empty directory, a symlink and a FIFO.
    static func makeTree(at root: String) throws -> [String: [UInt8]] {
        let files = treeFiles()
        for (rel, bytes) in files {
            let path = root + "/" + rel
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try writeFile(path, bytes)
        }
        try FileManager.default.createDirectory(atPath: root + "/emptydir", withIntermediateDirectories: true)
        #expect(symlink("a.txt", root + "/link-to-a") == 0)
        #expect(symlink("/etc", root + "/sub/link-to-dir") == 0)
        #expect(mkfifo(root + "/fifo", 0o644) == 0)
        return files
    }

    /// Every regular file under `root` (relative path -> bytes); fails on anything that is not a file or directory.
    static func readTree(at root: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        func walk(_ dir: String, _ prefix: String) throws {
            for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
                let path = dir + "/" + name
                let rel = prefix.isEmpty ? name : prefix + "/" + name
                var st = stat()
                #expect(lstat(path, &st) == 0)
                switch st.st_mode & S_IFMT {
                case S_IFDIR: try walk(path, rel)
                case S_IFREG: out[rel] = try readFile(path)
                default: Issue.record("unexpected non-regular file \(rel) in the unpacked tree")
                }
            }
        }
        try walk(root, "")
        return out
    }

    static func pack(_ root: String, to archive: String) throws -> (DESDirectoryPacker.Totals, [DESDirectoryPacker.Skipped]) {
        final class Box: @unchecked Sendable { var skipped: [DESDirectoryPacker.Skipped] = [] }
        let box = Box()
        var packer = DESDirectoryPacker()
        packer.onSkip = { box.skipped.append($0) }
        let writer = try DESArchiveWriter(path: archive, options: writerOptions(bufferSize: 64 * 1024))
        let totals = try packer.pack(roots: [root], into: writer)
        try writer.close()
        return (totals, box.skipped)
    }

    @Test("A tree packs and unpacks to the same files; links and FIFOs are skipped and reported")
    func packAndUnpack() throws {
        try withTempDir { dir in
            let root = dir + "/tree"
            let files = try Self.makeTree(at: root)
            let archive = dir + "/tree.des"
            let (totals, skipped) = try Self.pack(root, to: archive)

            #expect(totals.files == files.count)
            #expect(totals.bytes == UInt64(files.values.map(\.count).reduce(0, +)))
            #expect(totals.skipped == 3)
            #expect(Set(skipped.map(\.path)) == [root + "/link-to-a", root + "/sub/link-to-dir", root + "/fifo"])
            #expect(skipped.first { $0.path.hasSuffix("fifo") }?.reason.contains("special") == true)
            #expect(skipped.first { $0.path.hasSuffix("link-to-a") }?.reason.contains("symbolic link") == true)

            let reader = try DESArchiveReader(path: archive)
            #expect(Set(reader.entries.map(\.name)) == Set(files.keys))
            // Depth-first, each directory sorted by UTF-8 bytes: the same tree always gives the same order.
            #expect(reader.entries.map(\.name) == ["a.txt", "big.bin", "empty.bin", "sub/deeper/empty", "sub/deeper/x.dat", "sub/ünï cødé.txt", "z/😀/last", "日本語/ファイル.txt"])
            #expect(try reader.verify().isOK)

            let out = dir + "/out"  // does not exist yet: unpack creates it
            let unpacked = try reader.unpack(to: out)
            #expect(unpacked.files == files.count)
            #expect(unpacked.skipped.isEmpty)
            let back = try Self.readTree(at: out)
            #expect(Set(back.keys) == Set(files.keys))
            for (rel, bytes) in files {
                #expect(sameBytes(back[rel] ?? [0xFF], bytes), "\(rel) differs after unpack")
            }
        }
    }

    @Test("Packing the same tree twice gives byte-identical archives")
    func deterministic() throws {
        try withTempDir { dir in
            _ = try Self.makeTree(at: dir + "/tree")
            _ = try Self.pack(dir + "/tree", to: dir + "/1.des")
            _ = try Self.pack(dir + "/tree", to: dir + "/2.des")
            #expect(sameBytes(try readFile(dir + "/1.des"), try readFile(dir + "/2.des")))
        }
    }

    @Test("A file whose path breaks the name rules fails the pack unless skipInvalidNames is set")
    func invalidNameOnDisk() throws {
        try withTempDir { dir in
            let root = dir + "/t"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try writeFile(root + "/ok.txt", [1])
            try writeFile(root + "/bad:name", [2])
            let writer = try DESArchiveWriter(path: dir + "/x.des", options: writerOptions())
            let e = try #require(formatError { _ = try DESDirectoryPacker().pack(roots: [root], into: writer) })
            #expect(e.code == .invalidName)
            #expect(e.path == root + "/bad:name")
            writer.abort()

            var skipped: [String] = []
            var packer = DESDirectoryPacker()
            packer.skipInvalidNames = true
            packer.onSkip = { skipped.append($0.path) }
            let w2 = try DESArchiveWriter(path: dir + "/y.des", options: writerOptions())
            let totals = try packer.pack(roots: [root], into: w2)
            try w2.close()
            #expect(totals.files == 1)
            #expect(skipped == [root + "/bad:name"])
            #expect(try DESArchiveReader(path: dir + "/y.des").entries.map(\.name) == ["ok.txt"])
        }
    }

    @Test("Reading on a second thread or on one, a tree packs to the same bytes")
    func concurrentMatchesSerial() throws {
        try withTempDir { dir in
            _ = try Self.makeTree(at: dir + "/tree")
            // Enough files that the reader runs ahead by several chunks of 64 KiB and 64 descriptors.
            var rng = SeededRNG(seed: 3)
            try FileManager.default.createDirectory(atPath: dir + "/tree/many", withIntermediateDirectories: true)
            for i in 0..<600 { try writeFile(dir + "/tree/many/\(i).bin", rng.bytes(Int(rng.next() % 4_000))) }
            var archives: [[UInt8]] = []
            for concurrent in [true, false] {
                var packer = DESDirectoryPacker()
                packer.concurrentReads = concurrent
                let path = dir + "/\(concurrent).des"
                let writer = try DESArchiveWriter(path: path, options: writerOptions(bufferSize: 64 * 1024))
                let totals = try packer.pack(roots: [dir + "/tree"], into: writer)
                try writer.close()
                #expect(totals.files == 608)
                archives.append(try readFile(path))
            }
            #expect(sameBytes(archives[0], archives[1]))
            #expect(try DESArchiveReader(path: dir + "/true.des").verify().isOK)
        }
    }

    @Test("A file name that is not UTF-8 is opened by its bytes, then refused or skipped by name")
    func nonUTF8NameOnDisk() throws {
        try withTempDir { dir in
            let root = dir + "/t"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try writeFile(root + "/ok.txt", [1])
            // "bad<0xFF>.txt": a name no String holds as it is.
            var raw = Array((root + "/bad").utf8) + [0xFF] + Array(".txt".utf8) + [0]
            let fd = raw.withUnsafeMutableBufferPointer { p in
                p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { open($0, O_CREAT | O_WRONLY, 0o644) }
            }
            #expect(fd >= 0)
            close(fd)
            let writer = try DESArchiveWriter(path: dir + "/x.des", options: writerOptions())
            let e = try #require(formatError { _ = try DESDirectoryPacker().pack(roots: [root], into: writer) })
            #expect(e.code == .invalidName)
            #expect(e.message.contains("not valid UTF-8"))
            writer.abort()

            var skipped: [DESDirectoryPacker.Skipped] = []
            var packer = DESDirectoryPacker()
            packer.skipInvalidNames = true
            packer.onSkip = { skipped.append($0) }
            let w2 = try DESArchiveWriter(path: dir + "/y.des", options: writerOptions())
            let totals = try packer.pack(roots: [root], into: w2)
            try w2.close()
            #expect(totals.files == 1)
            #expect(skipped.count == 1)
            #expect(skipped.first?.reason == "name is not valid UTF-8")
            #expect(try DESArchiveReader(path: dir + "/y.des").entries.map(\.name) == ["ok.txt"])
        }
    }

    @Test("A root that is a single file is named by its last component")
    func singleFileRoot() throws {
        try withTempDir { dir in
            try writeFile(dir + "/one.txt", [1, 2])
            let writer = try DESArchiveWriter(path: dir + "/s.des", options: writerOptions())
            let totals = try DESDirectoryPacker().pack(roots: [dir + "/one.txt"], into: writer)
            try writer.close()
            #expect(totals.files == 1)
            #expect(try DESArchiveReader(path: dir + "/s.des").file(named: "one.txt") == [1, 2])
            // A root that is a link is followed, to a file as to a directory, and named by the link.
            #expect(symlink(dir + "/one.txt", dir + "/alias.txt") == 0)
            let w2 = try DESArchiveWriter(path: dir + "/l.des", options: writerOptions())
            #expect(try DESDirectoryPacker().pack(roots: [dir + "/alias.txt"], into: w2).files == 1)
            try w2.close()
            #expect(try DESArchiveReader(path: dir + "/l.des").file(named: "alias.txt") == [1, 2])
            let missing = try #require(formatError { _ = try DESDirectoryPacker().pack(roots: [dir + "/none"], into: DESArchiveWriter(path: dir + "/m.des", options: writerOptions())) })
            #expect(missing.code == .io)
        }
    }

    @Test("unpack refuses to replace existing files unless overwrite is set")
    func unpackOverwrite() throws {
        try withTempDir { dir in
            let archive = dir + "/o.des"
            try writeArchive(at: archive, [("a.txt", [1], [:]), ("d/b.txt", [2], [:])])
            let out = dir + "/out"
            let reader = try DESArchiveReader(path: archive)
            _ = try reader.unpack(to: out)
            try writeFile(out + "/d/b.txt", Array("changed".utf8))

            let e = try #require(formatError { _ = try reader.unpack(to: out) })
            #expect(e.code == .outputExists)
            #expect(try readFile(out + "/d/b.txt") == Array("changed".utf8))

            let totals = try reader.unpack(to: out, overwrite: true)
            #expect(totals.files == 2)
            #expect(try readFile(out + "/a.txt") == [1])
            #expect(try readFile(out + "/d/b.txt") == [2])
        }
    }

    @Test(
        "unpack refuses names that would escape the directory, before writing anything",
        arguments: ["../evil", "/abs-evil", "d/../../evil", "a//b", "./x"])
    func unpackUnsafeNames(bad: String) throws {
        try withTempDir { dir in
            // The writer refuses such names, so the archive is built by hand.
            let archive = dir + "/evil.des"
            try writeFile(archive, buildRawArchive([
                RawEntry("good.txt", [1], meta: #"{"size":1}"#),
                RawEntry(bad, Array("pwned".utf8), meta: #"{"size":5}"#),
            ]))
            let reader = try DESArchiveReader(path: archive)
            #expect(reader.contains(bad))
            let out = dir + "/sandbox/out"
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let e = try #require(formatError { _ = try reader.unpack(to: out) })
            #expect(e.code == .unsafePath)
            #expect(!e.message.isEmpty)
            // Nothing written anywhere: not the good file, not the evil one.
            #expect(try FileManager.default.contentsOfDirectory(atPath: out).isEmpty)
            #expect(!fileExists(dir + "/sandbox/evil"))
            #expect(!fileExists(dir + "/evil"))
            #expect(!fileExists("/abs-evil"))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/sandbox") == ["out"])
        }
    }

    @Test("A symlinked directory planted inside the target is not followed")
    func plantedDirectorySymlink() throws {
        try withTempDir { dir in
            let archive = dir + "/s.des"
            try writeArchive(at: archive, [("first.txt", [0], [:]), ("sub/file.txt", Array("payload".utf8), [:])])
            let outside = dir + "/outside"
            let out = dir + "/out"
            try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            #expect(symlink(outside, out + "/sub") == 0)

            let reader = try DESArchiveReader(path: archive)
            for overwrite in [false, true] {
                let e = try #require(formatError { _ = try reader.unpack(to: out, overwrite: overwrite) })
                #expect(e.code == .unsafePath)
                #expect(e.message.contains("symbolic link"))
                #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
            }
        }
    }

    @Test("A symlinked file planted inside the target is never written through")
    func plantedFileSymlink() throws {
        try withTempDir { dir in
            let archive = dir + "/s.des"
            try writeArchive(at: archive, [("victim.txt", Array("from archive".utf8), [:])])
            let outside = dir + "/outside.txt"
            try writeFile(outside, Array("original".utf8))
            let out = dir + "/out"
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            #expect(symlink(outside, out + "/victim.txt") == 0)

            let reader = try DESArchiveReader(path: archive)
            #expect(formatError { _ = try reader.unpack(to: out) }?.code == .outputExists)
            #expect(try readFile(outside) == Array("original".utf8))

            // With overwrite the link itself is replaced by a regular file; its target is untouched.
            _ = try reader.unpack(to: out, overwrite: true)
            #expect(try readFile(outside) == Array("original".utf8))
            var st = stat()
            #expect(lstat(out + "/victim.txt", &st) == 0)
            #expect(st.st_mode & S_IFMT == S_IFREG)
            #expect(try readFile(out + "/victim.txt") == Array("from archive".utf8))
        }
    }

    @Test("External entries are skipped by unpack and listed")
    func unpackSkipsExternal() throws {
        try withTempDir { dir in
            let writer = try DESArchiveWriter(path: dir + "/e.des", options: writerOptions())
            try writer.add(name: "in.txt", bytes: [1])
            try writer.addExternal(name: "ext.bin", size: 10, externalKey: "k", sha256: String(repeating: "0", count: 64))
            try writer.close()
            let totals = try DESArchiveReader(path: dir + "/e.des").unpack(to: dir + "/out")
            #expect(totals.files == 1)
            #expect(totals.skipped == ["ext.bin"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/out") == ["in.txt"])
        }
    }
}

@Test("unpack creates every missing folder of the target path")
func unpackCreatesParents() throws {
    let dir = NSTemporaryDirectory() + "des-unpack-parents-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let writer = try DESArchiveWriter(path: dir + "/a.des")
    try writer.add(name: "x/y.txt", bytes: Array("hi".utf8))
    try writer.close()
    let totals = try DESArchiveReader(path: dir + "/a.des").unpack(to: dir + "/new/deeper/out")
    #expect(totals.files == 1)
    #expect(FileManager.default.contents(atPath: dir + "/new/deeper/out/x/y.txt") == Data("hi".utf8))
}
