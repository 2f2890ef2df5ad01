import DESTestSupport
import Foundation
import Testing

@testable import DESFormat

#if canImport(Glibc)
import Glibc
#endif

/// `addFiles`: reading on the calling thread while a second thread hashes and writes.
@Suite("Concurrent feed")
struct ConcurrentFeedTests {
    /// A stream of `count` deterministic bytes that throws after `failAfter` bytes (never, when nil).
    struct PatternStream: DESByteStream {
        var count: Int
        var failAfter: Int?
        var produced = 0

        mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            if let failAfter, produced >= failAfter { throw DESFormatError(.io, "disk went away") }
            let limit = min(count, failAfter ?? count)
            let n = min(buffer.count, limit - produced, 7_000)
            for i in 0..<n { buffer[i] = UInt8(truncatingIfNeeded: (produced + i) &* 31) }
            produced += n
            return n
        }
    }

    /// Files on disk of many sizes: empty ones, small ones, and some far larger than a 64 KiB chunk.
    static func makeFiles(in dir: String, count: Int = 300) throws -> [(name: String, path: String, bytes: [UInt8])] {
        var rng = SeededRNG(seed: 42)
        var files: [(String, String, [UInt8])] = []
        for i in 0..<count {
            let size: Int
            switch i % 50 {
            case 0: size = 0
            case 7: size = 200_000
            case 23: size = 1_100_000
            default: size = Int(rng.next() % 3_000)
            }
            let path = dir + "/f\(i)"
            let bytes = rng.bytes(size)
            try writeFile(path, bytes)
            files.append(("dir\(i % 7)/file-\(i).bin", path, bytes))
        }
        return files
    }

    static func metadata(_ i: Int) -> DESMetadata {
        i % 3 == 0 ? ["mime": "application/octet-stream", "note": .string("nº \(i) ✓")] : [:]
    }

    /// Writes `files` to `path`: through the concurrent feed, the serial feed, or plain `add` calls.
    static func write(
        _ files: [(name: String, path: String, bytes: [UInt8])], to path: String, mode: String, checksums: Bool
    ) throws {
        let writer = try DESArchiveWriter(path: path, options: writerOptions(checksums: checksums, bufferSize: 64 * 1024))
        try writer.add(name: "first-in-own-buffer", bytes: [1, 2, 3])
        if mode == "plain" {
            for (i, f) in files.enumerated() {
                try writer.add(name: f.name, contentsOfFile: f.path, metadata: metadata(i))
            }
        } else {
            try writer.addFiles(concurrently: mode == "concurrent") { feed in
                for (i, f) in files.enumerated() {
                    let fd = open(f.path, O_RDONLY | O_CLOEXEC)
                    #expect(fd >= 0)
                    switch i % 3 {
                    case 0:
                        try feed.add(name: f.name, ownedFileDescriptor: fd, path: f.path, metadata: metadata(i))
                    case 1:
                        try feed.add(name: f.name, fileDescriptor: fd, path: f.path, metadata: metadata(i))
                        close(fd)
                    default:
                        close(fd)
                        var stream = DESBufferStream(f.bytes)
                        try feed.add(name: f.name, from: &stream, metadata: metadata(i))
                    }
                }
            }
        }
        try writer.add(name: "last-after-feed", bytes: [4, 5])
        try writer.close()
    }

    @Test("The concurrent feed writes the same bytes as the serial feed and as plain adds", arguments: [true, false])
    func sameBytesEveryWay(checksums: Bool) throws {
        try withTempDir { dir in
            let files = try Self.makeFiles(in: dir)
            for mode in ["concurrent", "serial", "plain"] {
                try Self.write(files, to: dir + "/\(mode).des", mode: mode, checksums: checksums)
            }
            let concurrent = try readFile(dir + "/concurrent.des")
            #expect(sameBytes(concurrent, try readFile(dir + "/serial.des")))
            #expect(sameBytes(concurrent, try readFile(dir + "/plain.des")))

            let reader = try DESArchiveReader(path: dir + "/concurrent.des")
            #expect(reader.entries.count == files.count + 2)
            for (i, f) in files.enumerated() {
                #expect(try reader.file(named: f.name) == f.bytes)
                let meta = try reader.meta(named: f.name)
                #expect(meta["size"]?.intValue == Int64(f.bytes.count))
                #expect(meta["sha256"]?.stringValue == (checksums ? referenceSHA256Hex(f.bytes) : nil))
                if i % 3 == 0 { #expect(meta["note"]?.stringValue == "nº \(i) ✓") }
            }
            #expect(try reader.file(named: "last-after-feed") == [4, 5])
            #expect(try reader.verify().isOK)
        }
    }

    @Test(
        "A file that fails mid-read leaves nothing behind, whether its bytes were still in hand or partly written",
        arguments: [5_000, 300_000])
    func failedFile(failAfter: Int) throws {
        try withTempDir { dir in
            let options = writerOptions(bufferSize: 64 * 1024)
            let concurrent = try DESArchiveWriter(path: dir + "/c.des", options: options)
            try concurrent.addFiles { feed in
                var a = PatternStream(count: 90_000)
                try feed.add(name: "a", from: &a)
                var broken = PatternStream(count: 1_000_000, failAfter: failAfter)
                let e = try #require(formatError { try feed.add(name: "broken", from: &broken) })
                #expect(broken.produced == failAfter)  // it really got that far
                #expect(e.code == .io)
                #expect(e.message == "disk went away")
                var b = PatternStream(count: 70_000)
                try feed.add(name: "b", from: &b)
                var again = PatternStream(count: 10)  // the failed name is free again
                try feed.add(name: "broken", from: &again)
            }
            try concurrent.close()

            let plain = try DESArchiveWriter(path: dir + "/p.des", options: options)
            for (name, count) in [("a", 90_000), ("b", 70_000), ("broken", 10)] {
                var s = PatternStream(count: count)
                try plain.add(name: name, from: &s)
            }
            try plain.close()
            #expect(sameBytes(try readFile(dir + "/c.des"), try readFile(dir + "/p.des")))
            #expect(try DESArchiveReader(path: dir + "/c.des").verify().isOK)
        }
    }

    @Test("Every owned descriptor is closed: recorded files, failed ones, and more than one chunk carries")
    func ownedDescriptorsClosed() throws {
        try withTempDir { dir in
            let count = 4 * DESFileFeed.descriptorsPerChunk + 50
            var opened: [(fd: Int32, inode: ino_t)] = []
            let writer = try DESArchiveWriter(path: dir + "/o.des", options: writerOptions())
            try writer.addFiles { feed in
                for i in 0..<count {
                    let path = dir + "/s\(i)"
                    try writeFile(path, Array("file \(i)".utf8))
                    let fd = open(path, O_RDONLY | O_CLOEXEC)
                    var st = stat()
                    #expect(fstat(fd, &st) == 0)
                    opened.append((fd, st.st_ino))
                    try feed.add(name: "s\(i)", ownedFileDescriptor: fd, path: path)
                }
                // Refused adds close their descriptor too: a directory, and a duplicate name.
                let dirFD = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                var st = stat()
                #expect(fstat(dirFD, &st) == 0)
                opened.append((dirFD, st.st_ino))
                #expect(formatError { try feed.add(name: "a-directory", ownedFileDescriptor: dirFD, path: dir) }?.code == .io)
                let dupFD = open(dir + "/s0", O_RDONLY | O_CLOEXEC)
                #expect(fstat(dupFD, &st) == 0)
                opened.append((dupFD, st.st_ino))
                #expect(formatError { try feed.add(name: "s0", ownedFileDescriptor: dupFD, path: dir + "/s0") }?.code == .duplicateName)
            }
            try writer.close()
            // Other tests open files in parallel and may have been given a freed number since:
            // a descriptor still open on the same file is what a leak looks like.
            for (fd, inode) in opened {
                var st = stat()
                let stillOurs = fstat(fd, &st) == 0 && st.st_ino == inode
                #expect(!stillOurs, "descriptor \(fd) was left open")
            }
            let reader = try DESArchiveReader(path: dir + "/o.des")
            #expect(reader.entries.count == count)
            #expect(try reader.file(named: "s\(count - 1)") == Array("file \(count - 1)".utf8))
        }
    }

    @Test("While addFiles runs the writer takes files only through the feed; the feed ends with it")
    func exclusiveUse() throws {
        try withTempDir { dir in
            let writer = try DESArchiveWriter(path: dir + "/x.des", options: writerOptions())
            var kept: DESFileFeed?
            for concurrently in [true, false] {
                try writer.addFiles(concurrently: concurrently) { feed in
                    kept = feed
                    #expect(formatError { try writer.add(name: "direct", bytes: [1]) }?.code == .writerClosed)
                    #expect(formatError { try writer.close() }?.code == .writerClosed)
                    var s = PatternStream(count: 3)
                    try feed.add(name: "via-feed-\(concurrently)", from: &s)
                }
                var s = PatternStream(count: 3)
                #expect(formatError { try kept?.add(name: "late", from: &s) }?.code == .writerClosed)
            }
            try writer.add(name: "direct", bytes: [1])
            try writer.close()
            #expect(try DESArchiveReader(path: dir + "/x.des").entries.map(\.name) == ["via-feed-true", "via-feed-false", "direct"])
        }
    }

    @Test("abort() from inside addFiles takes effect when it returns; adds after it throw; nothing is left")
    func abortWhileFeeding() throws {
        try withTempDir { dir in
            let path = dir + "/a.des"
            let writer = try DESArchiveWriter(path: path, options: writerOptions(bufferSize: 64 * 1024))
            let e = try #require(
                formatError {
                    try writer.addFiles { feed in
                        var big = PatternStream(count: 200_000)
                        try feed.add(name: "big", from: &big)
                        writer.abort()
                        var more = PatternStream(count: 10)
                        #expect(formatError { try feed.add(name: "more", from: &more) }?.code == .writerClosed)
                    }
                })
            #expect(e.code == .writerClosed)
            #expect(!fileExists(path))
            #expect(!fileExists(writer.partialPath))
            #expect(formatError { try writer.close() }?.code == .writerClosed)
        }
    }

    @Test("fileCount and dataLength are current while the feed runs")
    func countsWhileFeeding() throws {
        try withTempDir { dir in
            let writer = try DESArchiveWriter(path: dir + "/n.des", options: writerOptions(bufferSize: 64 * 1024))
            try writer.add(name: "own", bytes: [1, 2, 3])
            try writer.addFiles { feed in
                for i in 1...20 {
                    var s = PatternStream(count: 10_000)
                    try feed.add(name: "f\(i)", from: &s)
                    #expect(writer.fileCount == 1 + i)
                    #expect(writer.dataLength == UInt64(3 + 10_000 * i))
                }
            }
            #expect(writer.fileCount == 21)
            let summary = try writer.close()
            #expect(summary.dataLength == 200_003)
        }
    }

    @Test("Ten thousand empty files (more events than one chunk holds) go through as the serial writer writes them")
    func manyEmptyFiles() throws {
        try withTempDir { dir in
            var archives: [[UInt8]] = []
            for concurrently in [true, false] {
                let path = dir + "/\(concurrently).des"
                let writer = try DESArchiveWriter(path: path, options: writerOptions())
                try writer.addFiles(concurrently: concurrently) { feed in
                    for i in 0..<10_000 {
                        var s = PatternStream(count: i % 1000 == 0 ? 5 : 0)
                        try feed.add(name: "e/\(i)", from: &s)
                    }
                }
                try writer.close()
                archives.append(try readFile(path))
            }
            #expect(sameBytes(archives[0], archives[1]))
            #expect(try DESArchiveReader(path: dir + "/true.des").entries.count == 10_000)
        }
    }

    @Test("Names are compared byte for byte: composed and decomposed é are two names, as in the original")
    func namesAreBytes() throws {
        try withTempDir { dir in
            let composed = "caf\u{E9}"
            let decomposed = "cafe\u{301}"
            #expect(composed == decomposed)  // Swift's String equality is canonical; archive names are not
            let writer = try DESArchiveWriter(path: dir + "/u.des", options: writerOptions())
            try writer.add(name: composed, bytes: [1])
            try writer.add(name: decomposed, bytes: [2])
            #expect(formatError { try writer.add(name: "caf\u{E9}", bytes: [3]) }?.code == .duplicateName)
            try writer.close()
            let reader = try DESArchiveReader(path: dir + "/u.des")
            #expect(try reader.file(named: composed) == [1])
            #expect(try reader.file(named: decomposed) == [2])
            #expect(reader.index.duplicateNames.isEmpty)
        }
    }

    @Test("An error thrown by the producer keeps the files added before it; the writer stays usable")
    func producerThrows() throws {
        struct Stop: Error {}
        try withTempDir { dir in
            let writer = try DESArchiveWriter(path: dir + "/p.des", options: writerOptions(bufferSize: 64 * 1024))
            #expect(throws: Stop.self) {
                try writer.addFiles { feed in
                    var a = PatternStream(count: 150_000)
                    try feed.add(name: "a", from: &a)
                    throw Stop()
                }
            }
            try writer.add(name: "b", bytes: [9])
            try writer.close()
            let reader = try DESArchiveReader(path: dir + "/p.des")
            #expect(reader.entries.map(\.name) == ["a", "b"])
            #expect(try reader.verify().isOK)
        }
    }
}

@Suite("Name table")
struct NameTableTests {
    @Test("Lookups, duplicates, growth and undoing the last insert agree with a Set")
    func modelCheck() {
        var rng = SeededRNG(seed: 7)
        var table = NameTable()
        var model: [String: Int] = [:]
        var order: [String] = []
        for step in 0..<30_000 {
            // Long shared prefixes, as archive names have; a few repeats.
            let name = "photos/2024/\(rng.next() % 12)/img_\(rng.next() % 20_000).jpg"
            let previous = table.insert(name, value: step)
            #expect(previous == model[name], "insert \(name)")
            if model[name] == nil {
                model[name] = step
                order.append(name)
                if step % 97 == 0 {
                    // Undo it, as a writer does after a failed add, then it is absent.
                    table.removeLast(name)
                    model[name] = nil
                    order.removeLast()
                    #expect(table.value(for: name) == nil)
                }
            }
        }
        #expect(table.count == model.count)
        for (name, value) in model { #expect(table.value(for: name) == value) }
        #expect(table.value(for: "photos/2024/1/img_99999999.jpg") == nil)
        #expect(table.value(for: "") == nil)
    }

    @Test("replace keeps the newest value for a name that repeats; the empty name is a name")
    func replace() {
        var table = NameTable(capacity: 4)
        #expect(table.insert("", value: 1) == nil)
        #expect(table.insert("a", value: 2) == nil)
        #expect(table.insert("a", value: 3, replace: true) == 2)
        #expect(table.insert("a", value: 4) == 3)
        #expect(table.value(for: "a") == 3)
        #expect(table.value(for: "") == 1)
        #expect(table.count == 2)
    }
}
