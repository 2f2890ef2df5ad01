import DESEngine
import DESFormat
import DESKit
import DESStorage
import Foundation
import Testing

/// Reading one file through a container's two-level index, each storage request counted.
@Suite("Two-level index: requests per read") struct LevelsReadTests {
    /// A container of `count` 16-byte files under `key`, in local storage behind a request counter.
    static func container(_ count: Int, dir: String) throws -> (RequestCountingStorage, [(String, [UInt8])], String) {
        let files = (0..<count).map { i in (String(format: "DES_20261205_(%012X_%02X)", i * 977, i % 200), (0..<16).map { UInt8(truncatingIfNeeded: $0 &* 3 &+ i) }) }
        let key = "des/2026-12-05/shard_00_c000001.des"
        let path = dir + "/archive/" + key
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var options = DESArchiveWriter.Options()
        options.syncOnClose = false
        let writer = try DESArchiveWriter(path: path, options: options)
        for (i, (name, body)) in files.enumerated() {
            _ = try writer.add(name: name, bytes: body, metadata: i % 2 == 0 ? ["content_type": "image/png"] : [:])
        }
        _ = try writer.close()
        return (RequestCountingStorage(base: try LocalDiskStorage(root: dir + "/archive")), files, key)
    }

    /// The requests `body` makes.
    static func requests(_ storage: RequestCountingStorage, _ body: () async throws -> Void) async rethrows -> [String: Int] {
        storage.reset()
        try await body()
        return storage.requests
    }

    @Test("100,000 entries: a cold read is 3 requests (the suffix with the root, the leaf, the body) and no HEAD; 2 once the root is cached; 1 once the leaf is; locate needs no META read; every body is checked")
    func coldAndWarm() async throws {
        let dir = NSTemporaryDirectory() + "des-levels-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (storage, files, key) = try Self.container(100_000, dir: dir)
        let reader = StorageArchiveReader(storage: storage, cache: MemoryIndexCache())
        let (a, b) = (files[12_345], files[87_654])

        var got: [UInt8]?
        #expect(try await Self.requests(storage) { got = try await reader.file(named: a.0, key: key) } == ["get_suffix": 1, "get_range": 2])
        #expect(got == a.1)
        #expect(try await Self.requests(storage) { got = try await reader.file(named: b.0, key: key) } == ["get_range": 2])
        #expect(got == b.1)
        #expect(try await Self.requests(storage) { got = try await reader.file(named: b.0, key: key) } == ["get_range": 1])
        #expect(got == b.1)
        #expect(try await Self.requests(storage) { got = try await reader.file(named: "DES_20261205_(000000000001_00)", key: key) }.values.reduce(0, +) <= 1)
        #expect(got == nil)

        // The server's path: the leaf gives size, sha256 and content type; no META read.
        let cold = StorageArchiveReader(storage: storage, cache: MemoryIndexCache())
        var located: LocatedEntry?
        #expect(try await Self.requests(storage) { located = try await cold.locate(a.0, key: key) } == ["get_suffix": 1, "get_range": 1])
        let entry = try #require(located)
        #expect(entry.size == 16 && entry.contentType == nil && entry.sha256 == BodyDigest.hex(of: a.1))
        let even = try #require(try await cold.locate(files[2].0, key: key))
        #expect(even.contentType == "image/png")
        #expect(try await cold.read(entry, offset: 0, length: 16) == a.1)

        // Without a cache every read is cold: 3 requests, never the whole index.
        let bare = StorageArchiveReader(storage: storage)
        #expect(try await Self.requests(storage) { got = try await bare.file(named: files[99_999].0, key: key) } == ["get_suffix": 1, "get_range": 2])
        #expect(got == files[99_999].1)
    }

    @Test("A container whose whole tail fits the first read stays at 2 requests through its flat index; a damaged leaf is read around through the flat index (right bytes), and the audit's check of the two-level index names it")
    func smallAndDamaged() async throws {
        let dir = NSTemporaryDirectory() + "des-levels-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (storage, files, key) = try Self.container(200, dir: dir)
        let reader = StorageArchiveReader(storage: storage, cache: MemoryIndexCache())
        var got: [UInt8]?
        #expect(try await Self.requests(storage) { got = try await reader.file(named: files[50].0, key: key) } == ["get_suffix": 1, "get_range": 1])
        #expect(got == files[50].1)

        let big = dir + "/big"
        let (bigStorage, bigFiles, bigKey) = try Self.container(20_000, dir: big)
        let path = big + "/archive/" + bigKey
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let footer = try bytes.withUnsafeBytes { try DESFooter.decode(UnsafeRawBufferPointer(rebasing: $0.suffix(72))) }
        let levels = try #require(try bytes.withUnsafeBytes { try DESLevels.parse(suffix: $0, footer: footer, archiveSize: UInt64(bytes.count)) })
        let leaf = levels.leaves[3]
        bytes[Int(leaf.offset) + 40] ^= 0x20
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let victim = try #require(bigFiles.map(\.0).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.first { levels.leaf(for: $0) == leaf })
        let reader2 = StorageArchiveReader(storage: bigStorage)
        #expect(try await reader2.file(named: victim, key: bigKey) == bigFiles.first { $0.0 == victim }?.1)
        #expect(try await reader2.locate(victim, key: bigKey)?.sha256 == BodyDigest.hex(of: bigFiles.first { $0.0 == victim }?.1 ?? []))
        let problems = try await reader2.checkedIndex(key: bigKey).levelsProblems
        #expect(problems.contains { $0.contains("CRC-32C") }, "\(problems)")
    }
}
