import DESFormat
import DESKit
import DESTestSupport
import Foundation
import Testing

@testable import DESStorage

/// Makes, under `dir`, one body path of each kind that is not a regular file: a FIFO (no
/// writer: opening it for reading in blocking mode would wait forever), a character device
/// like `/dev/zero` (made with mknod: the tests run as root; it never ends), a directory
/// and a Unix socket. Returns (relative path, the kind's name); the socket's descriptor is
/// closed by `cleanup`.
func makeSpecialBodies(in dir: String) throws -> (bodies: [(path: String, kind: String)], cleanup: () -> Void) {
    try #require(mkfifo(dir + "/fifo", 0o644) == 0, "mkfifo: \(String(cString: strerror(errno)))")
    try #require(mknod(dir + "/zero", S_IFCHR | 0o644, dev_t((1 << 8) | 5)) == 0, "mknod (the tests run as root): \(String(cString: strerror(errno)))")
    try FileManager.default.createDirectory(atPath: dir + "/adir", withIntermediateDirectories: true)
    let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let socketPath = dir + "/sock"
    try #require(socketPath.utf8.count < MemoryLayout.size(ofValue: address.sun_path))
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, b) in socketPath.utf8.enumerated() { raw[i] = b }
    }
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    try #require(bound == 0, "bind: \(String(cString: strerror(errno)))")
    let bodies = [("fifo", "a FIFO"), ("zero", "a character device"), ("adir", "a directory"), ("sock", "a socket")]
    return (bodies.map { (path: $0.0, kind: $0.1) }, { close(s) })
}

@Suite("Bodies that are not regular files") struct SpecialBodyTests {
    @Test("The fetcher refuses a FIFO, a device, a directory and a socket at once, naming the path and the kind")
    func fetcherRefuses() async throws {
        let dir = NSTemporaryDirectory() + "des-special-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (bodies, cleanup) = try makeSpecialBodies(in: dir)
        defer { cleanup() }
        try "regular".write(toFile: dir + "/plain.txt", atomically: true, encoding: .utf8)
        for kernel in [true, false] {
            let fetcher = LocalBodyFetcher(root: dir, allowAbsolute: true, kernelConfinement: kernel)
            for (path, kind) in bodies {
                for key in [path, dir + "/" + path] {  // relative, and absolute (allowed here)
                    do {
                        let body = try await fetcher.fetch(BodyLocation(bucket: nil, key: key))
                        let opener = try #require(body.opener, "a local body is opened when appended")
                        let fd = try opener()
                        close(fd)
                        Issue.record("\(key) (kernel \(kernel)) was opened")
                    } catch let error as DESKitError {
                        #expect(error.code == .invalidData && !error.isTransient, "\(key): \(error)")
                        #expect(error.message.contains("is \(kind), not a regular file") && error.message.contains(path), "\(error.message)")
                    }
                }
            }
            // A regular file opens (left O_NONBLOCK, which a regular file's read ignores) and reads whole.
            let fd = try fetcher.open("plain.txt")
            defer { close(fd) }
            var stream = try DESFileDescriptorStream(regularFile: fd, path: "plain.txt")
            var buffer = [UInt8](repeating: 0, count: 64)
            let n = try buffer.withUnsafeMutableBytes { try stream.read(into: $0) }
            let size = try FileStamp(fileDescriptor: fd, path: "plain.txt").size
            #expect(n > 0 && n == Int(size))
        }
    }

    @Test("A FIFO, /dev/zero-like device, directory and socket among the bodies: their rows are dead-lettered, the rest packed")
    func packerGoesOn() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(24, size: 64)
        _ = try await d.mark(shardBits: 1)
        let (bodies, cleanup) = try makeSpecialBodies(in: d.bodiesRoot)
        defer { cleanup() }
        for (i, body) in bodies.enumerated() {
            _ = try await d.sql("UPDATE files SET body_path = '\(body.path)' WHERE id = \(i + 2)")
        }
        let config = try d.writeConfig(packer: "{work_dir: work, shard_bits: 1, batch_size: 5, heartbeat_seconds: 1}")
        let p = try d.startPacker(config: config, untilIdle: true)
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline { try await Task.sleep(nanoseconds: 20_000_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            await d.wait(p)
            Issue.record("the packer did not finish within 120 s: a special body blocked it")
            return
        }
        #expect(p.terminationReason == .exit && p.terminationStatus == 0)
        let failed = try await d.sql("SELECT id, des_error FROM files WHERE des_status = 'DES_FAILED' ORDER BY id")
        #expect(failed.map { $0[0].int ?? 0 } == [2, 3, 4, 5])
        for (row, body) in zip(failed, bodies) {
            #expect(row[1].text?.contains("is \(body.kind), not a regular file") == true, "\(row[1].text ?? "nil")")
        }
        let packed = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_PACKED'").first?[0].int
        #expect(packed == 20)
        let claimed = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_CLAIMED'").first?[0].int
        #expect(claimed == 0)
        let store = try await d.metadata()
        let letters = try await store.deadLetters(limit: 10)
        #expect(Set(letters.map(\.rowID)) == ["2", "3", "4", "5"])
        #expect(letters.allSatisfy { $0.stage == "packer" && $0.reason.contains("not a regular file") }, "\(letters.map(\.reason))")
        #expect(letters.contains { $0.reason.contains("is a FIFO, not a regular file") && $0.reason.contains("fifo") })
        #expect(try await store.containers(state: .writing, shard: nil, day: nil).isEmpty)
        let now = Date().timeIntervalSince1970
        #expect(try await store.leases().filter { $0.expiresAt > now }.isEmpty, "a lease is still held")
        let audit = try await d.audit()
        #expect(audit.isOK, "\(audit.problems)")
    }
}
