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

    @Test("files hashed in turn by one hasher, after a failed read too, hash as each alone; a given size stops the read there")
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
            #expect(try hasher.sha256(ofFileDescriptor: fd, path: path, expectedSize: UInt64(bytes.count)) == digest)
        }
        // A read that fails (a directory) leaves the hasher ready for the next file.
        let dir = open(NSTemporaryDirectory(), O_RDONLY | O_DIRECTORY)
        #expect(throws: DESFormatError.self) { _ = try hasher.sha256(ofFileDescriptor: dir, path: "dir") }
        close(dir)
        for count in [1, 65_535, 65_536, 65_537, 200_000] {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let path = try Self.file(bytes)
            defer { unlink(path) }
            let alone = try DESFileDigest.sha256(ofFile: path)
            for expected in [nil, UInt64(count)] as [UInt64?] {
                let fd = open(path, O_RDONLY)
                defer { close(fd) }
                #expect(try hasher.sha256(ofFileDescriptor: fd, path: path, expectedSize: expected) == alone, "\(count) bytes, size \(String(describing: expected))")
            }
            // Told a smaller size, it hashes that many bytes (the caller's stamp after the read shows the difference).
            let fd = open(path, O_RDONLY)
            defer { close(fd) }
            let prefix = try Self.file(Array(bytes.prefix(count / 2 + 1)))
            defer { unlink(prefix) }
            #expect(try hasher.sha256(ofFileDescriptor: fd, path: path, expectedSize: UInt64(count / 2 + 1)) == (try DESFileDigest.sha256(ofFile: prefix)))
        }
    }
}
