import DESFormat
import Foundation
import DESTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What the writer refuses, and what it leaves behind when a write does not finish.
@Suite("Writer behaviour")
struct WriterBehaviourTests {
    @Test("A file that changes while it is read is changedWhileRead, nothing of it kept; an unchanged one is added")
    func changedWhileRead() throws {
        try withTempDir { dir in
            let body = dir + "/body"
            try Data(repeating: 7, count: 300_000).write(to: URL(fileURLWithPath: body))
            let writer = try DESArchiveWriter(path: dir + "/c.des", options: writerOptions())
            let fd = open(body, O_RDONLY)
            defer { close(fd) }
            let before = try FileStamp(fileDescriptor: fd, path: body)
            // Changed after the stamp, before the read ends: an append moves size and mtime.
            let appender = try FileHandle(forWritingTo: URL(fileURLWithPath: body))
            try appender.seekToEnd()
            try appender.write(contentsOf: Data([1]))
            try appender.close()
            var stream = DESFileDescriptorStream(fileDescriptor: fd, path: body, expectedSize: before.size, unchangedSince: before)
            let e = try #require(formatError { try writer.add(name: "torn", from: &stream) })
            #expect(e.code == .changedWhileRead && e.message.contains("changed while it was read"), "\(e)")
            // Shrunk under the stamp (truncated while read): changed too, not a size mismatch.
            let shrinking = try FileStamp(fileDescriptor: fd, path: body)
            #expect(ftruncate(fd, 10) == 0 || truncate(body, 10) == 0)
            var short = DESFileDescriptorStream(fileDescriptor: fd, path: body, expectedSize: shrinking.size, unchangedSince: shrinking)
            #expect(lseek(fd, 0, SEEK_SET) == 0)
            #expect(formatError { try writer.add(name: "shrunk", from: &short) }?.code == .changedWhileRead)
            try Data(repeating: 7, count: 300_001).write(to: URL(fileURLWithPath: body))
            // Unchanged: added, and the writer goes on.
            let now = try FileStamp(fileDescriptor: fd, path: body)
            #expect(lseek(fd, 0, SEEK_SET) == 0)
            var again = DESFileDescriptorStream(fileDescriptor: fd, path: body, expectedSize: now.size, unchangedSince: now)
            try writer.add(name: "whole", from: &again)
            try writer.close()
            let reader = try DESArchiveReader(path: dir + "/c.des")
            #expect(reader.entries.map(\.name) == ["whole"])
            #expect(try reader.file(named: "whole").count == 300_001)
        }
    }

    @Test("A name added twice is a duplicateName error and the writer stays usable")
    func duplicateName() throws {
        try withTempDir { dir in
            let path = dir + "/dup.des"
            let writer = try DESArchiveWriter(path: path, options: writerOptions())
            try writer.add(name: "x/y", bytes: [1, 2, 3])
            let e = try #require(formatError { try writer.add(name: "x/y", bytes: [4]) })
            #expect(e.code == .duplicateName)
            #expect(e.message.contains("x/y"))
            // The same name through the other add paths and as an external entry.
            #expect(formatError { try writer.addExternal(name: "x/y", size: 1, externalKey: "k") }?.code == .duplicateName)
            var stream = DESBufferStream([9])
            #expect(formatError { try writer.add(name: "x/y", from: &stream) }?.code == .duplicateName)
            try writer.add(name: "x/z", bytes: [5])
            try writer.close()
            let reader = try DESArchiveReader(path: path)
            #expect(reader.entries.map(\.name) == ["x/y", "x/z"])
            #expect(try reader.file(named: "x/y") == [1, 2, 3])
            #expect(try reader.file(named: "x/z") == [5])
            #expect(try reader.verify().isOK)
        }
    }

    static let invalidNames: [String] = [
        "", "/", "/abs", "a//b", "a/./b", "./a", "a/.", "../x", "a/../b", "..", ".", "a/",
        "a:b", "a\\b", "a*b", "a?b", "a\"b", "a<b", "a>b", "a|b",
        "a\u{1}b", "\u{0}", "tab\there", "new\nline", "del\u{7F}", "c1\u{85}control",
        String(repeating: "x", count: 65536),
        String(repeating: "é", count: 32768),  // 32768 characters but 65536 UTF-8 bytes
    ]

    @Test("Invalid names are refused with invalidName", arguments: invalidNames)
    func invalidName(name: String) throws {
        #expect(!DESNameRules.isValid(name))
        try withTempDir { dir in
            let writer = try DESArchiveWriter(path: dir + "/n.des", options: writerOptions())
            let e = try #require(formatError { try writer.add(name: name, bytes: [1]) })
            #expect(e.code == .invalidName)
            #expect(e.message.contains("invalid name"))
            #expect(formatError { try writer.addExternal(name: name, size: 1, externalKey: "k") }?.code == .invalidName)
            // Nothing was recorded.
            #expect(writer.fileCount == 0)
            #expect(writer.dataLength == 0)
            try writer.close()
            #expect(try readFile(dir + "/n.des").count == 88)
        }
    }

    static let validNames: [String] = [
        "a", "a.txt", ".hidden", "...", "a/..b/c", "a b/c d", "日本語/ファイル.txt", "emoji/😀.png", "é", "ü/ö/ä",
        "x-y_z+w=v,u;t'!@#$%^&()[]{}~`",
        String(repeating: "x", count: 65535),
        String(repeating: "é", count: 32767) + "x",  // exactly 65535 UTF-8 bytes
        String(repeating: "a/", count: 1000) + "leaf",
    ]

    @Test("Valid names are accepted and read back exactly")
    func validNames() throws {
        try withTempDir { dir in
            let path = dir + "/v.des"
            let writer = try DESArchiveWriter(path: path, options: writerOptions())
            for (i, name) in Self.validNames.enumerated() {
                #expect(DESNameRules.isValid(name), "\(name.prefix(40))")
                try writer.add(name: name, bytes: Array("body \(i)".utf8))
            }
            try writer.close()
            let bytes = try readFile(path)
            #expect(rawIndex(bytes).map(\.name) == Self.validNames)
            #expect(rawIndex(bytes)[11].name.utf8.count == 65535)
            let reader = try DESArchiveReader(path: path)
            for (i, name) in Self.validNames.enumerated() {
                #expect(try reader.file(named: name) == Array("body \(i)".utf8))
            }
        }
    }

    @Test("Caller metadata may not use DES's own keys", arguments: ["size", "sha256", "is_external", "external_key"])
    func reservedMetadataKey(key: String) throws {
        try withTempDir { dir in
            let writer = try DESArchiveWriter(path: dir + "/r.des", options: writerOptions())
            let e = try #require(formatError { try writer.add(name: "f", bytes: [1], metadata: [key: 1]) })
            #expect(e.code == .reservedMetadataKey)
            #expect(e.message.contains(key))
            #expect(formatError { try writer.addExternal(name: "g", size: 1, externalKey: "k", metadata: ["a": 1, key: "x"]) }?.code == .reservedMetadataKey)
            // The same key nested inside a value is the caller's business.
            try writer.add(name: "f", bytes: [1], metadata: ["inner": .object([key: 1])])
            try writer.close()
            #expect(try DESArchiveReader(path: dir + "/r.des").meta(named: "f")["inner"] == .object([key: 1]))
        }
    }

    @Test("An existing output is refused unless overwrite is set")
    func outputExists() throws {
        try withTempDir { dir in
            let path = dir + "/o.des"
            try writeFile(path, Array("precious".utf8))
            let e = try #require(formatError { _ = try DESArchiveWriter(path: path, options: writerOptions()) })
            #expect(e.code == .outputExists)
            #expect(e.path == path)
            #expect(try readFile(path) == Array("precious".utf8))
            #expect(!fileExists(path + ".partial"))

            var options = writerOptions()
            options.overwrite = true
            let writer = try DESArchiveWriter(path: path, options: options)
            try writer.add(name: "new", bytes: [7])
            // Until close the old file is untouched.
            #expect(try readFile(path) == Array("precious".utf8))
            try writer.close()
            #expect(try DESArchiveReader(path: path).file(named: "new") == [7])
        }
    }

    @Test("An output that appears while writing is not replaced")
    func outputAppearsWhileWriting() throws {
        try withTempDir { dir in
            let path = dir + "/late.des"
            let writer = try DESArchiveWriter(path: path, options: writerOptions())
            try writer.add(name: "a", bytes: [1])
            try writeFile(path, Array("someone else".utf8))
            #expect(formatError { try writer.close() }?.code == .outputExists)
            #expect(try readFile(path) == Array("someone else".utf8))
            #expect(!fileExists(path + ".partial"))
            #expect(formatError { try writer.add(name: "b", bytes: [2]) }?.code == .writerClosed)
        }
    }

    @Test("An unfinished writer is invisible at the path; abort and deallocation leave nothing")
    func interruptedWriter() throws {
        try withTempDir { dir in
            // Open, not closed: only the .partial file exists.
            let openPath = dir + "/open.des"
            let open = try DESArchiveWriter(path: openPath, options: writerOptions())
            try open.add(name: "a", bytes: [UInt8](repeating: 1, count: 200_000))
            #expect(!fileExists(openPath))
            #expect(fileExists(openPath + ".partial"))
            #expect(open.partialPath == openPath + ".partial")

            // abort(): nothing left, and the writer refuses more work.
            open.abort()
            #expect(!fileExists(openPath))
            #expect(!fileExists(openPath + ".partial"))
            #expect(formatError { try open.add(name: "b", bytes: [1]) }?.code == .writerClosed)
            #expect(formatError { try open.close() }?.code == .writerClosed)
            #expect(!fileExists(openPath))

            // Deallocated without close: nothing left.
            let droppedPath = dir + "/dropped.des"
            func writeAndDrop() throws {
                let w = try DESArchiveWriter(path: droppedPath, options: writerOptions())
                try w.add(name: "a", bytes: [UInt8](repeating: 2, count: 3_000_000))
                #expect(fileExists(droppedPath + ".partial"))
            }
            try writeAndDrop()
            #expect(!fileExists(droppedPath))
            #expect(!fileExists(droppedPath + ".partial"))

            // A closed writer that is then deallocated keeps its archive.
            let keptPath = dir + "/kept.des"
            func writeAndClose() throws {
                let w = try DESArchiveWriter(path: keptPath, options: writerOptions())
                try w.add(name: "a", bytes: [3])
                try w.close()
                w.abort()  // no effect after close
            }
            try writeAndClose()
            #expect(try DESArchiveReader(path: keptPath).file(named: "a") == [3])
            #expect(!fileExists(keptPath + ".partial"))
        }
    }

    /// The descriptor of this process that is open on `path` (from /proc/self/fd).
    static func descriptor(openOn path: String) -> Int32? {
        let want = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return nil }
        for name in fds {
            guard let fd = Int32(name),
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + name)
            else { continue }
            if target == want || target == path { return fd }
        }
        return nil
    }

    @Test("A writer whose close failed never closes its descriptor a second time")
    func noDoubleCloseAfterFailedClose() throws {
        try withTempDir { dir in
            // Other tests open files in parallel and may take the freed descriptor number;
            // repeat until this test gets it back itself, then check it survives the writer.
            for attempt in 0..<50 {
                let path = dir + "/dc\(attempt).des"
                var held: [Int32] = []
                defer { for fd in held { _ = Glibc.close(fd) } }
                var writerFD: Int32 = -1
                func failAndDrop() throws {
                    let w = try DESArchiveWriter(path: path, options: writerOptions())
                    try w.add(name: "a", bytes: [1])
                    writerFD = try #require(Self.descriptor(openOn: w.partialPath))
                    try writeFile(path, [1])  // the output appears: close() fails
                    #expect(formatError { try w.close() }?.code == .outputExists)
                    // The writer's descriptor number is free again; open() hands out the lowest free number.
                    while true {
                        let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
                        try #require(fd >= 0)
                        held.append(fd)
                        if fd >= writerFD { break }
                    }
                    withExtendedLifetime(w) {}
                }
                try failAndDrop()  // the writer is deallocated here
                let reused = try #require(held.last)
                guard reused == writerFD else { continue }
                #expect(fcntl(reused, F_GETFD) != -1, "the deallocated writer closed descriptor \(reused), which it no longer owned")
                #expect(!fileExists(path + ".partial"))
                return
            }
            Issue.record("never got the freed descriptor back in 50 attempts; could not check")
        }
    }

    /// A stream that yields `failAfter` bytes and then throws.
    struct FailingStream: DESByteStream {
        struct Boom: Error {}
        var failAfter: Int
        var produced = 0
        mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            if produced >= failAfter { throw Boom() }
            let n = min(buffer.count, failAfter - produced, 10_000)
            for i in 0..<n { buffer[i] = UInt8(truncatingIfNeeded: produced + i) }
            produced += n
            return n
        }
    }

    @Test("A stream that throws mid-file leaves the archive as before", arguments: [5_000, 3_000_000])
    func failingStream(failAfter: Int) throws {
        try withTempDir { dir in
            let path = dir + "/f.des"
            let writer = try DESArchiveWriter(path: path, options: writerOptions(bufferSize: 64 * 1024))
            try writer.add(name: "before", bytes: Array("before".utf8))
            let dataBefore = writer.dataLength
            var stream = FailingStream(failAfter: failAfter)
            let e = try #require(formatError { try writer.add(name: "broken", from: &stream) })
            #expect(stream.produced == failAfter)  // the stream really got that far
            #expect(e.code == .io)
            #expect(e.message.contains("broken"))
            #expect(writer.fileCount == 1)
            #expect(writer.dataLength == dataBefore)

            // Still usable: the next file lands right after "before", and the name "broken" is free.
            let after = try writer.add(name: "after", bytes: Array("after".utf8))
            #expect(after.dataOffset == 16 + dataBefore)
            try writer.add(name: "broken", bytes: [1, 2])
            try writer.close()

            let bytes = try readFile(path)
            #expect(bytes.count == Int(rawFooter(bytes).indexStart + rawFooter(bytes).indexLength) + 72)
            #expect(rawFooter(bytes).dataLength == 6 + 5 + 2)
            let reader = try DESArchiveReader(path: path)
            #expect(reader.entries.map(\.name) == ["before", "after", "broken"])
            #expect(try reader.file(named: "after") == Array("after".utf8))
            #expect(try reader.file(named: "broken") == [1, 2])
            #expect(try reader.verify().isOK)
        }
    }

    @Test("A DESFormatError thrown by a stream is passed through unchanged")
    func streamFormatErrorPassesThrough() throws {
        struct Thrower: DESByteStream {
            mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
                throw DESFormatError(.sizeMismatch, "source shrank")
            }
        }
        try withTempDir { dir in
            let writer = try DESArchiveWriter(path: dir + "/t.des", options: writerOptions())
            var s = Thrower()
            let e = try #require(formatError { try writer.add(name: "t", from: &s) })
            #expect(e.code == .sizeMismatch)
            #expect(e.message == "source shrank")
            try writer.close()
        }
    }

    @Test("addExternal records flag 0x01, offset 0, the real size and the key")
    func externalEntry() throws {
        try withTempDir { dir in
            let path = dir + "/e.des"
            let writer = try DESArchiveWriter(path: path, options: writerOptions())
            try writer.add(name: "in", bytes: [1, 2, 3])
            let entry = try writer.addExternal(name: "out/big.bin", size: 123_456, externalKey: "bucket/key/big.bin", sha256: String(repeating: "ab", count: 32), metadata: ["mime": "x/y"])
            #expect(entry.flags == .external)
            #expect(entry.dataOffset == 0)
            #expect(entry.dataLength == 123_456)
            try writer.close()

            let bytes = try readFile(path)
            let raw = rawIndex(bytes)
            #expect(raw[1].name == "out/big.bin")
            #expect(raw[1].flags == 0x01)
            #expect(raw[1].dataOffset == 0)
            #expect(raw[1].dataLength == 123_456)
            #expect(rawFooter(bytes).dataLength == 3)  // the external body takes no DATA
            let meta = String(decoding: bytes[Int(raw[1].metaOffset)..<Int(raw[1].metaOffset + raw[1].metaLength)], as: UTF8.self)
            #expect(meta == #"{"mime":"x/y","size":123456,"is_external":true,"external_key":"bucket/key/big.bin","sha256":"\#(String(repeating: "ab", count: 32))"}"#)

            for mode in [DESArchiveReader.Mode.mapped, .positional] {
                let reader = try DESArchiveReader(path: path, mode: mode)
                let e = try #require(formatError { _ = try reader.file(named: "out/big.bin") })
                #expect(e.code == .externalEntry)
                #expect(e.message.contains("bucket/key/big.bin"))
                #expect(formatError { _ = try reader.checkedFile(named: "out/big.bin") }?.code == .externalEntry)
                #expect(try reader.files(named: ["in", "out/big.bin"]) == ["in": [1, 2, 3]])
                let report = try reader.verify()
                #expect(report.isOK)
                #expect(report.external == 1)
                #expect(report.checksummed == 1)
                #expect(try reader.stats().externalCount == 1)
                #expect(try reader.stats().totalFileBytes == 123_459)
            }
        }
    }

    @Test("addExternal with a checksum records it after the key")
    func externalWithChecksum() throws {
        try withTempDir { dir in
            let writer = try DESArchiveWriter(path: dir + "/e.des", options: writerOptions())
            let sum = referenceSHA256Hex(Array("hello".utf8))
            try writer.addExternal(name: "x", size: 5, externalKey: "k", sha256: sum)
            try writer.close()
            let meta = try DESArchiveReader(path: dir + "/e.des").rawMeta(named: "x")
            #expect(String(decoding: meta, as: UTF8.self) == #"{"size":5,"is_external":true,"external_key":"k","sha256":"\#(sum)"}"#)
        }
    }

    @Test("Adding from a file copies it exactly; a missing or special source is a typed error")
    func addContentsOfFile() throws {
        try withTempDir { dir in
            var rng = SeededRNG(seed: 7)
            let body = rng.bytes(2_500_000)
            try writeFile(dir + "/src.bin", body)
            try writeFile(dir + "/empty.bin", [])
            let writer = try DESArchiveWriter(path: dir + "/c.des", options: writerOptions(bufferSize: 64 * 1024))
            try writer.add(name: "src", contentsOfFile: dir + "/src.bin", metadata: ["from": "disk"])
            try writer.add(name: "empty", contentsOfFile: dir + "/empty.bin")
            let missing = try #require(formatError { try writer.add(name: "missing", contentsOfFile: dir + "/nope") })
            #expect(missing.code == .io)
            #expect(missing.path == dir + "/nope")
            #expect(formatError { try writer.add(name: "dir", contentsOfFile: dir) }?.code == .io)
            try writer.close()
            let reader = try DESArchiveReader(path: dir + "/c.des")
            #expect(sameBytes(try reader.file(named: "src"), body))
            #expect(try reader.file(named: "empty") == [])
            #expect(try reader.meta(named: "src")["sha256"] == .string(referenceSHA256Hex(body)))
            #expect(reader.entries.map(\.name) == ["src", "empty"])
        }
    }
}
