import Foundation
import Testing

@testable import DESCLI

#if canImport(Glibc)
import Glibc
#endif

/// The file kind at `path` (not following a link): `S_IFREG`, `S_IFLNK`, … or nil when nothing is there.
func fileKind(_ path: String, follow: Bool = false) -> mode_t? {
    var st = stat()
    guard (follow ? stat(path, &st) : lstat(path, &st)) == 0 else { return nil }
    return st.st_mode & S_IFMT
}

/// The names in `dir` that a writer left behind as temporary files.
func temporaries(in dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".des-tmp-") || $0.hasSuffix(".partial") }
}

/// Reads a FIFO to its end in a child process (`cat FIFO > OUT`), so the test can check what went through it.
final class FIFOReader {
    let process = Process()
    let outPath: String

    init(fifo: String, into outPath: String) throws {
        self.outPath = outPath
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "exec cat \"$0\" > \"$1\"", fifo, outPath]
        try process.run()
    }

    /// What the reader got, once it has seen the end (within `seconds`; a reader still waiting then is killed).
    func bytes(within seconds: Double = 30) throws -> [UInt8] {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            Issue.record("the FIFO's reader saw no end within \(seconds) s")
        }
        return try readFile(outPath)
    }
}

@Suite("The output writer: outputs written as cp writes them")
struct OutputFileTests {
    static let bytes = Array("the output\n".utf8)

    static func write(_ out: OutputFile, _ bytes: [UInt8] = bytes) throws {
        try bytes.withUnsafeBytes { try out.write($0) }
    }

    @Test("A new file is written beside its name and appears only at commit, mode 0644 less the umask")
    func newFile() throws {
        try withTempDir { dir in
            let path = dir + "/new.bin"
            let out = try OutputFile.open(path, force: false)
            try Self.write(out)
            #expect(fileKind(path) == nil, "nothing at the path before the commit")
            #expect(temporaries(in: dir).count == 1)
            try out.commit()
            #expect(try readFile(path) == Self.bytes)
            #expect(temporaries(in: dir).isEmpty)
            // The umask, read without changing it (tests run in parallel).
            let status = String(decoding: try readFile("/proc/self/status"), as: UTF8.self)
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("Umask:") })
            let mask = try #require(Int(line.dropFirst("Umask:".count).trimmingCharacters(in: .whitespaces), radix: 8))
            let mode = try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
            #expect(mode == 0o644 & ~mask)
        }
    }

    @Test("An existing file is refused without force and left alone; with force it is replaced")
    func existingFile() throws {
        try withTempDir { dir in
            let path = dir + "/taken"
            try writeFile(path, Array("keep me".utf8))
            let e1 = #expect(throws: OutputFileError.self) {
                _ = try OutputFile.open(path, force: false)
            }
            #expect(e1?.code == .exists && e1?.description.contains("--force") == true)
            #expect(try readFile(path) == Array("keep me".utf8))
            let out = try OutputFile.open(path, force: true)
            try Self.write(out)
            #expect(try readFile(path) == Array("keep me".utf8), "replaced only at the commit")
            try out.commit()
            #expect(try readFile(path) == Self.bytes)
            #expect(temporaries(in: dir).isEmpty)
        }
    }

    @Test("A link to an existing file: refused without force; with force the target is replaced and the link stays")
    func linkToFile() throws {
        try withTempDir { dir in
            try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: true)
            try writeFile(dir + "/real/target", Array("old".utf8))
            try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "real/target")
            let e2 = #expect(throws: OutputFileError.self) {
                _ = try OutputFile.open(dir + "/link", force: false)
            }
            #expect(e2?.code == .exists)
            let out = try OutputFile.open(dir + "/link", force: true)
            #expect(temporaries(in: dir + "/real").count == 1, "the temporary file is beside the target")
            try Self.write(out)
            try out.commit()
            #expect(fileKind(dir + "/link") == S_IFLNK)
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/link") == "real/target")
            #expect(try readFile(dir + "/real/target") == Self.bytes)
            #expect(temporaries(in: dir).isEmpty && temporaries(in: dir + "/real").isEmpty)
        }
    }

    @Test("A dangling link, a directory and a socket are refused, and nothing is created")
    func refusedKinds() throws {
        try withTempDir { dir in
            try FileManager.default.createSymbolicLink(atPath: dir + "/dangling", withDestinationPath: "missing")
            let e3 = #expect(throws: OutputFileError.self) {
                _ = try OutputFile.open(dir + "/dangling", force: true)
            }
            #expect(e3?.code == .danglingLink && e3?.description.contains("missing") == true)
            #expect(fileKind(dir + "/missing") == nil)
            try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
            let e4 = #expect(throws: OutputFileError.self) {
                _ = try OutputFile.open(dir + "/sub", force: true)
            }
            #expect(e4?.code == .isDirectory && e4?.description.contains("is a directory") == true)
            let e5 = #expect(throws: OutputFileError.self) {
                _ = try OutputFile.open(dir + "/nodir/file", force: false)
            }
            #expect(e5?.code == .cannotCreate && e5?.description.contains("no such directory") == true)
            let socketPath = dir + "/sock"
            let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(s) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, b) in socketPath.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            try #require(bound == 0)
            let e6 = #expect(throws: OutputFileError.self) {
                _ = try OutputFile.open(socketPath, force: true)
            }
            #expect(e6?.code == .unsupportedKind)
            #expect(fileKind(socketPath) == S_IFSOCK)
            #expect(temporaries(in: dir).isEmpty)
        }
    }

    @Test("/dev/null and a link to it are written through and stay a character device, seekable or not")
    func deviceThrough() throws {
        try withTempDir { dir in
            for seekable in [false, true] {
                let out = try OutputFile.open("/dev/null", force: false, seekable: seekable)
                #expect(out.isWriteThrough)
                try Self.write(out)
                try out.commit()
            }
            try FileManager.default.createSymbolicLink(atPath: dir + "/null", withDestinationPath: "/dev/null")
            let out = try OutputFile.open(dir + "/null", force: false)
            try Self.write(out)
            try out.commit()
            #expect(fileKind("/dev/null") == S_IFCHR)
            #expect(fileKind(dir + "/null") == S_IFLNK)
            #expect(temporaries(in: dir).isEmpty)
        }
    }

    @Test("A FIFO with a reader is written through; staged (seekable) output arrives whole at commit")
    func fifoWithReader() throws {
        try withTempDir { dir in
            let fifo = dir + "/fifo"
            try #require(mkfifo(fifo, 0o600) == 0)
            for seekable in [false, true] {
                let reader = try FIFOReader(fifo: fifo, into: dir + "/got-\(seekable)")
                let out = try OutputFile.open(fifo, force: false, seekable: seekable)
                let big = [UInt8](repeating: 0x5A, count: 300_000)  // more than a pipe holds: the writes block for the reader
                if seekable {
                    big.withUnsafeBytes { raw in
                        #expect(pwrite(out.descriptor, raw.baseAddress, raw.count, 0) == raw.count)
                    }
                } else {
                    try Self.write(out, big)
                }
                try out.commit()
                #expect(try reader.bytes() == big)
                #expect(fileKind(fifo) == S_IFIFO)
            }
        }
    }

    @Test("A FIFO with no reader is an error after the wait, not a hang")
    func fifoWithoutReader() throws {
        try withTempDir { dir in
            let fifo = dir + "/fifo"
            try #require(mkfifo(fifo, 0o600) == 0)
            let e7 = #expect(throws: OutputFileError.self) {
                _ = try OutputFile.open(fifo, force: false, readerWaitSeconds: 0.2)
            }
            #expect(e7?.code == .noReader && e7?.description.contains("no process has open for reading") == true)
            #expect(fileKind(fifo) == S_IFIFO)
        }
    }

    @Test("Abandoned or failed outputs leave no temporary file and nothing at the path")
    func nothingLeftBehind() throws {
        try withTempDir { dir in
            let path = dir + "/out"
            do {
                let out = try OutputFile.open(path, force: false)
                try Self.write(out)
                out.abort()
            }
            do {
                let out = try OutputFile.open(path, force: false)
                try Self.write(out)
                // dropped uncommitted
            }
            #expect(fileKind(path) == nil)
            #expect(temporaries(in: dir).isEmpty)
            // A file that appears while the output is written is not replaced without force.
            let out = try OutputFile.open(path, force: false)
            try Self.write(out)
            try writeFile(path, Array("someone else's".utf8))
            let e8 = #expect(throws: OutputFileError.self) {
                try out.commit()
            }
            #expect(e8?.code == .exists && e8?.description.contains("appeared") == true)
            #expect(try readFile(path) == Array("someone else's".utf8))
            #expect(temporaries(in: dir).isEmpty)
        }
    }
}
