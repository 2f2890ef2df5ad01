import DESFormat
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One hasher, many files (the filesystem scan hashes each ready file with its thread's hasher).
@Suite("File hasher")
struct FileHasherTests {
    static func file(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "/des-hasher-\(UUID().uuidString)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The file's digest by coreutils' sha256sum: another implementation.
    static func sha256sum(_ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return String(text.prefix(64))
    }

    @Test("files hashed in turn by one hasher, after a failed read too, hash as each alone")
    func manyFiles() throws {
        let hasher = DESFileHasher()
        // "abc" and the empty file, by their published digests; then sizes around the 64 KiB buffer.
        let vectors: [([UInt8], String)] = [
            (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ]
        for (bytes, digest) in vectors {
            let path = try Self.file(bytes)
            defer { unlink(path) }
            let fd = open(path, O_RDONLY)
            defer { close(fd) }
            #expect(try hasher.sha256(ofFileDescriptor: fd, path: path) == digest)
        }
        // A read that fails (a directory) leaves the hasher ready for the next file.
        let dir = open(NSTemporaryDirectory(), O_RDONLY | O_DIRECTORY)
        #expect(throws: DESFormatError.self) { _ = try hasher.sha256(ofFileDescriptor: dir, path: "dir") }
        close(dir)
        for count in [1, 65_535, 65_536, 65_537, 200_000] {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let path = try Self.file(bytes)
            defer { unlink(path) }
            let alone = try Self.sha256sum(path)
            let fd = open(path, O_RDONLY)
            defer { close(fd) }
            #expect(try hasher.sha256(ofFileDescriptor: fd, path: path) == alone, "\(count) bytes")
        }
    }
}
