import DESEngine
import DESFormat
import DESKit
import DESNaming
import DESPluginS3
import DESStorage
import DESTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every body a reader returns is checked against the sha256 META records; a cached index is
/// used only for the object it was read from; leases follow the work, not 2^shard_bits.
@Suite("Read integrity and bounds") struct ReadIntegrityTests {
    /// A sealed container of `files` entries at `key` in `storage`'s root (bodies "body i of key").
    static func putContainer(_ storage: LocalDiskStorage, key: String, files: Int, checksums: Bool = true) throws -> String {
        let path = storage.root + "/" + key
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var options = DESArchiveWriter.Options()
        options.checksums = checksums
        let writer = try DESArchiveWriter(path: path, options: options)
        for i in 0..<files { try writer.add(name: "f\(i)", bytes: Array("body \(i) of \(key)".utf8)) }
        _ = try writer.close()
        return path
    }

    /// Flips one byte of `name`'s body in the archive at `path`.
    static func flipBodyByte(of name: String, at path: String) throws {
        let entry = try #require(try DESArchiveReader(path: path).entry(named: name))
        let fd = open(path, O_RDWR)
        try #require(fd >= 0)
        defer { close(fd) }
        var b: UInt8 = 0
        #expect(pread(fd, &b, 1, off_t(entry.dataOffset)) == 1)
        b ^= 0x01
        #expect(pwrite(fd, &b, 1, off_t(entry.dataOffset)) == 1)
    }

    static func tempStorage() throws -> LocalDiskStorage {
        let dir = NSTemporaryDirectory() + "des-integrity-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return try LocalDiskStorage(root: dir)
    }

    @Test("A sealed index knows every entry's recorded sha256; an unsealed one knows none")
    func digestsInTheIndex() throws {
        let storage = try Self.tempStorage()
        defer { try? FileManager.default.removeItem(atPath: storage.root) }
        let sealed = try DESArchiveReader(path: try Self.putContainer(storage, key: "s.des", files: 5))
        #expect(sealed.index.knowsDigests)
        for (i, entry) in sealed.entries.enumerated() {
            #expect(sealed.index.sha256(at: i) == (try sealed.meta(named: entry.name))["sha256"]?.stringValue)
        }
        let unsealed = try DESArchiveReader(path: try Self.putContainer(storage, key: "u.des", files: 2, checksums: false))
        #expect(unsealed.index.sha256(at: 0) == nil)
        // The cache encoding keeps the digests and the origin, and refuses another object's.
        var index = sealed.index
        index.origin = "local/s.des@v1"
        let decoded = try DESIndex(cacheEncoding: index.cacheEncoding(), origin: "local/s.des@v1")
        #expect(decoded.origin == "local/s.des@v1" && decoded.sha256(at: 3) == sealed.index.sha256(at: 3))
        #expect(throws: DESFormatError.self) { try DESIndex(cacheEncoding: index.cacheEncoding(), origin: "local/other.des@v1") }
        var old = index.cacheEncoding()
        old[4] = 1  // the encoding before origins and digests
        #expect(throws: DESFormatError.self) { try DESIndex(cacheEncoding: old) }
    }

    @Test("A flipped body byte is a checksumMismatch naming the container and the entry; the other entries still read")
    func flippedByte() async throws {
        let storage = try Self.tempStorage()
        defer { try? FileManager.default.removeItem(atPath: storage.root) }
        let path = try Self.putContainer(storage, key: "day/c1.des", files: 4)
        try Self.flipBodyByte(of: "f2", at: path)
        let reader = StorageArchiveReader(storage: storage, cache: MemoryIndexCache())
        do {
            _ = try await reader.file(named: "f2", key: "day/c1.des")
            Issue.record("a flipped byte was served")
        } catch let error as DESFormatError {
            #expect(error.code == .checksumMismatch)
            #expect(error.path == "day/c1.des" && error.message.contains("\"f2\""), "\(error)")
        }
        // A batch holding the bad entry fails whole; the good entries alone read.
        await #expect(throws: DESFormatError.self) { _ = try await reader.files(named: ["f1", "f2"], key: "day/c1.des") }
        #expect(try await reader.files(named: ["f1", "f3"], key: "day/c1.des") == [Array("body 1 of day/c1.des".utf8), Array("body 3 of day/c1.des".utf8)])
    }

    @Test("Clearing a container's seal does not turn the check off: the sha256 META records is still checked")
    func clearedSeal() async throws {
        let storage = try Self.tempStorage()
        defer { try? FileManager.default.removeItem(atPath: storage.root) }
        let path = try Self.putContainer(storage, key: "c.des", files: 3)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        // The footer's seal version and CRC (bytes 9–15 of the 72-byte footer) zeroed: "unsealed".
        let footer = bytes.count - DESFormat.footerSize
        for i in (footer + 9)..<(footer + 16) { bytes[i] = 0 }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        try Self.flipBodyByte(of: "f1", at: path)
        let reader = StorageArchiveReader(storage: storage)
        #expect(try await reader.file(named: "f0", key: "c.des") == Array("body 0 of c.des".utf8))
        do {
            _ = try await reader.file(named: "f1", key: "c.des")
            Issue.record("a flipped byte in an unsealed container was served")
        } catch let error as DESFormatError {
            #expect(error.code == .checksumMismatch, "\(error)")
        }
    }

    @Test("An original's (unsealed) container is served as before, unchecked")
    func unsealedServedAsBefore() async throws {
        let storage = try Self.tempStorage()
        defer { try? FileManager.default.removeItem(atPath: storage.root) }
        _ = try Self.putContainer(storage, key: "old.des", files: 2, checksums: false)
        let reader = StorageArchiveReader(storage: storage)
        #expect(try await reader.file(named: "f1", key: "old.des") == Array("body 1 of old.des".utf8))
    }

    @Test("A cached index read from another container is dropped, never used: the right bytes come back")
    func foreignCachedIndex() async throws {
        let storage = try Self.tempStorage()
        defer { try? FileManager.default.removeItem(atPath: storage.root) }
        _ = try Self.putContainer(storage, key: "a.des", files: 3)
        _ = try Self.putContainer(storage, key: "b.des", files: 6)
        let cache = MemoryIndexCache()
        let reader = StorageArchiveReader(storage: storage, cache: cache)
        let a = try await reader.versionedIndex(key: "a.des")
        let b = try await reader.versionedIndex(key: "b.des")
        let versionA = try #require(a.version)
        // A's entry in the cache now holds B's (valid) index.
        await cache.set(ArchiveIdentity(location: storage.location, key: "a.des", version: versionA), index: b.index, ttlSeconds: nil)
        #expect(try await reader.file(named: "f1", key: "a.des") == Array("body 1 of a.des".utf8))
        #expect(try await reader.file(named: "f5", key: "a.des") == nil)  // in B only
        let now = try #require(await cache.get(ArchiveIdentity(location: storage.location, key: "a.des", version: versionA)))
        #expect(now.count == 3 && now.origin == ArchiveIdentity(location: storage.location, key: "a.des", version: versionA).description)
    }

    @Test("shard_bits at its bound (16) packs 10 rows with at most 10 leases; 17 is refused")
    func shardBitsAtTheBound() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(10)
        _ = try await d.mark(shardBits: 16)
        let packer = try await d.packer(shardBits: 16)
        let totals = try await packer.run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == 10)
        let leases = try await d.metadata().leases()
        #expect(!leases.isEmpty && leases.count <= 10, "\(leases.count) lease rows for 10 files")
        #expect(try await d.audit().isOK)
        #expect(throws: NamingError.self) { try ShardAssignment(shardBits: 17) }
        #expect(ConfigLimits.shardBits.upperBound == 16)
    }

    @Test("A packer leases only shards with work, and a row named later in a new shard is still packed")
    func leasesFollowTheWork() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(7)
        _ = try await d.mark(shardBits: 12)
        let pending = try #require(try await d.sql("SELECT des_status FROM files WHERE id = 1").first?[0].text)
        _ = try await d.sql("UPDATE files SET des_status = 'HOLD' WHERE id > 3")
        let source = try d.connector()
        let work = try #require(try await source.shardsWithWork())
        #expect(!work.isEmpty && work.count <= 3)
        #expect(try await d.packer(shardBits: 12).run(shutdown: ShutdownSignal(), untilIdle: true).filesPacked == 3)
        #expect(try await source.shardsWithWork() == [])
        // The other rows become pending later, in other shards: the next run finds them.
        _ = try await d.sql("UPDATE files SET des_status = '\(pending)' WHERE des_status = 'HOLD'")
        #expect(try await source.shardsWithWork()?.isEmpty == false)
        #expect(try await d.packer(shardBits: 12).run(shutdown: ShutdownSignal(), untilIdle: true).filesPacked == 4)
        #expect(try await d.metadata().leases().count <= 7)
        #expect(try await d.audit().isOK)
        await source.close()
    }

    @Test("des get on a flipped byte exits 65 naming the container and entry, and writes no output file")
    func desGetFlippedByte() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(5)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        let container = try #require(try await d.metadata().containers(state: .uploaded, shard: nil, day: nil).first)
        let path = d.dir + "/archive/" + container.key
        let name = try #require(try DESArchiveReader(path: path).entries.first?.name)
        try Self.flipBodyByte(of: name, at: path)
        let config = try d.writeConfig(packer: "{work_dir: work, shard_bits: 2}")
        let (status, text) = try await Self.runDES(["get", name, "-c", config, "-o", d.dir + "/out.bin"], in: d.dir)
        #expect(status == 65, "\(text)")
        #expect(text.contains(container.key) && text.contains(name), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: d.dir + "/out.bin"))
    }

    @Test("A hung S3 server fails a read within storage.request_timeout (unavailable, not retried), and des get exits 69")
    func hungS3() async throws {
        let hole = try TCPBlackHole()
        var settings = S3Settings(
            endpoint: "http://127.0.0.1:\(hole.port)", region: "us-east-1", bucket: "b",
            credentials: .init(accessKey: "k", secretKey: "s"))
        settings.requestTimeoutSeconds = 1
        let client = S3Client(settings: settings)
        let reader = StorageArchiveReader(storage: S3Storage(client: client))
        do {
            _ = try await reader.file(named: "f", key: "c.des")
            Issue.record("a hung server answered")
        } catch let error as DESKitError {
            #expect(error.code == .unavailable && error.message.contains("request_timeout"), "\(error)")
        }
        // Sent once: a timed-out request is not retried (before, a 30 s stall was retried four times).
        #expect(client.requestCounts == ["GET": 1])

        // des get: the container is recorded; its storage is the hung server.
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(2)
        _ = try await d.mark(shardBits: 2)
        _ = try await d.packer(shardBits: 2).run(shutdown: ShutdownSignal(), untilIdle: true)
        let name = try #require(try await d.sql("SELECT des_name FROM files WHERE id = 1").first?[0].text)
        var config = try String(contentsOfFile: try d.writeConfig(packer: "{work_dir: work, shard_bits: 2}"), encoding: .utf8)
        config = config.replacingOccurrences(
            of: "storage: {type: local, root: archive, prefix: des}",
            with: "storage: {type: s3, bucket: b, endpoint: 'http://127.0.0.1:\(hole.port)', access_key: k, secret_key: s, prefix: des, request_timeout: 1}")
        try config.write(toFile: d.dir + "/hung.yaml", atomically: true, encoding: .utf8)
        // timeout(1) ends a des get that hangs (124): the bound is the OS's clock, not this busy process's.
        let (status, text) = try await Self.runDES(["get", name, "-c", d.dir + "/hung.yaml"], in: d.dir, killAfter: 30)
        #expect(status == 69, "\(text)")
        #expect(text.contains("request_timeout"), "\(text)")
    }

    /// Runs `des ARGS --log-level critical` under timeout(1) (killed after `killAfter` seconds); its
    /// exit status and stderr.
    static func runDES(_ args: [String], in dir: String, killAfter: Int = 120) async throws -> (Int32, String) {
        let result = try await DESEngineTests.runDES(args + ["--log-level", "critical"], config: "", in: dir, killAfter: killAfter)
        return (result.status, result.err)
    }
}
