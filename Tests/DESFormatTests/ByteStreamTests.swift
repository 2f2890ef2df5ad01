import DESFormat
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Reading a descriptor left non-blocking (bodies are opened `O_NONBLOCK` so that a FIFO cannot
/// block the open, and the packer no longer clears the flag before it reads).
@Suite("Descriptor streams")
struct ByteStreamTests {
    @Test("A read that meets EAGAIN on a non-blocking descriptor makes it blocking and waits for the bytes, instead of failing")
    func nonBlockingDescriptorReadsWhole() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let (readEnd, writeEnd) = (ends[0], ends[1])
        defer { close(readEnd) }
        #expect(fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK) == 0)
        // The writer writes only once the reader has met EAGAIN and cleared O_NONBLOCK (the flag
        // is on the open file, which both ends' holders see): the fallback is sure to have run.
        let writer = Thread {
            while fcntl(readEnd, F_GETFL) & O_NONBLOCK != 0 { usleep(1_000) }
            _ = "hello".withCString { write(writeEnd, $0, 5) }
            close(writeEnd)
        }
        writer.start()
        var stream = DESFileDescriptorStream(fileDescriptor: readEnd, path: "a pipe", expectedSize: 5)
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = try buffer.withUnsafeMutableBytes { try stream.read(into: $0) }
        #expect(n == 5 && Array(buffer[..<5]) == Array("hello".utf8))
        #expect(fcntl(readEnd, F_GETFL) & O_NONBLOCK == 0)
    }

    @Test("makeBlocking: true only when it cleared the flag")
    func makeBlockingAnswers() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        #expect(!makeBlocking(ends[0]), "already blocking")
        #expect(fcntl(ends[0], F_SETFL, O_NONBLOCK) == 0)
        #expect(makeBlocking(ends[0]))
        #expect(!makeBlocking(-1))
    }

    @Test("A file fstat calls empty that has bytes (/proc) is refused, not read as empty; an empty file reads empty; one written since its stamp changed while read")
    func zeroSizeFiles() throws {
        let proc = open("/proc/self/status", O_RDONLY)
        #expect(proc >= 0)
        defer { close(proc) }
        var buffer = [UInt8](repeating: 0, count: 64)
        var procStream = try DESFileDescriptorStream(regularFile: proc, path: "/proc/self/status")
        #expect(procStream.expectedSize == 0)
        let refused = #expect(throws: DESFormatError.self) { _ = try buffer.withUnsafeMutableBytes { try procStream.read(into: $0) } }
        #expect(refused?.code == .sizeMismatch && refused?.message.contains("0 bytes") == true)

        let dir = NSTemporaryDirectory() + "des-bytestream-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/empty"
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let stamp = try FileStamp(fileDescriptor: fd, path: path)
        var empty = DESFileDescriptorStream(fileDescriptor: fd, path: path, expectedSize: stamp.size, unchangedSince: stamp)
        #expect(try buffer.withUnsafeMutableBytes { try empty.read(into: $0) } == 0)

        // Written after the stamp was taken: changed while read (the packer gives the row back), not refused.
        let writer = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try writer.write(contentsOf: Data("late".utf8))
        try writer.close()
        var grown = DESFileDescriptorStream(fileDescriptor: fd, path: path, expectedSize: stamp.size, unchangedSince: stamp)
        let changed = #expect(throws: DESFormatError.self) { _ = try buffer.withUnsafeMutableBytes { try grown.read(into: $0) } }
        #expect(changed?.code == .changedWhileRead)
    }

    @Test("a stamp's text parses back to the stamp; anything else parses to nothing")
    func stampText() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let stamp = FileStamp(
                device: rng.next(), inode: rng.next(), size: rng.next(), mtimeNanos: Int64(bitPattern: rng.next()), ctimeNanos: Int64(bitPattern: rng.next()))
            #expect(FileStamp(text: stamp.text) == stamp)
        }
        for edge in [FileStamp(device: .max, inode: 0, size: .max, mtimeNanos: .min, ctimeNanos: .max), FileStamp(device: 0, inode: 0, size: 0, mtimeNanos: -1, ctimeNanos: 0)] {
            #expect(FileStamp(text: edge.text) == edge, "\(edge.text)")
        }
        #expect(FileStamp(text: "01:2:3:-0:5") == FileStamp(device: 1, inode: 2, size: 3, mtimeNanos: 0, ctimeNanos: 5), "numbers, as numbers")
        for bad in [
            "", "1:2:3:4", "1:2:3:4:5:6", "a:2:3:4:5", "1:2:-3:4:5", "1::3:4:5", " 1:2:3:4:5", "1:2:3:4:5 ", "1:2:3:4:+5", "18446744073709551616:2:3:4:5",
            "1:2:3:4:", ":1:2:3:4", "1:2:3:--4:5", "1:2:3:4-:5", "1:2:3:9223372036854775808:5", "1:2:3:-9223372036854775809:5", "1:2:3:4:5#", "1:2:3:4:5\u{0}",
        ] {
            #expect(FileStamp(text: bad) == nil, "\(bad)")
        }
    }
}
