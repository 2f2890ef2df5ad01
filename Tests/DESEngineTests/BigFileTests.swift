import DESEngine
import DESFormat
import DESKit
import DESStorage
import Foundation
import Testing

@Suite("Big files") struct BigFileTests {
    @Test("A body at or above big_file_threshold is stored at {prefix}/_bigFiles/{name}, its entry external; readers fetch it; recovery keeps it")
    func bigFilesGoOutside() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        try await d.addRows(30, size: 64)
        // Five of them become big: 10,000 bytes against a threshold of 4 KiB.
        var big: [String: [UInt8]] = [:]
        for row in try await d.sql("SELECT id, body_path FROM files WHERE id % 6 = 0") {
            let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(row[0].int ?? 0)) }
            _ = FileManager.default.createFile(atPath: d.bodiesRoot + "/" + (row[1].text ?? ""), contents: Data(bytes))
            big[row[1].text ?? ""] = bytes
        }
        #expect(big.count == 5)
        _ = try await d.mark(shardBits: 1)
        var config = PackerConfig()
        config.workDir = d.dir + "/work"
        config.shardBits = 1
        config.bigFileThreshold = 4096
        let storage = try d.storage()
        let packer = try Packer(
            parts: .init(
                sources: [PackerSource(connector: try d.connector(), fetcher: LocalBodyFetcher(root: d.bodiesRoot))],
                metadata: try await d.metadata(), storage: storage, keyPrefix: "des"),
            config: config, logger: d.logger)
        let totals = try await packer.run(shutdown: ShutdownSignal(), untilIdle: true)
        #expect(totals.filesPacked == 30)
        let outside = try await storage.list(prefix: "des/_bigFiles/")
        #expect(outside.count == 5 && outside.allSatisfy { $0.size == 10_000 })
        // Each big row's entry is external and reads back, by name, from its own object.
        let reader = StorageArchiveReader(storage: storage)
        let rows = try await d.sql("SELECT body_path, des_name, des_container FROM files")
        for row in rows {
            let (path, name, container) = (row[0].text ?? "", row[1].text ?? "", row[2].text ?? "")
            let index = try await reader.index(key: container)
            let entry = try #require(index.entry(named: name))
            #expect(entry.isExternal == (big[path] != nil), "\(name)")
            let bytes = try await reader.file(named: name, key: container)
            if let expected = big[path] {
                #expect(bytes == expected)
                #expect(outside.contains { $0.key == "des/_bigFiles/\(name)" })
            }
        }
        // Stored as copies of their own: a source keeps one link, and a write to it in place
        // changes nothing stored (a hard link would share the inode, and the archived bytes).
        for (path, bytes) in big {
            var st = stat()
            #expect(stat(d.bodiesRoot + "/" + path, &st) == 0 && st.st_nlink == 1, "\(path) has \(st.st_nlink) links")
            let handle = try #require(FileHandle(forWritingAtPath: d.bodiesRoot + "/" + path))
            try handle.write(contentsOf: Data(repeating: 0x58, count: 100))
            try handle.close()
            let name = try #require(rows.first { $0[0].text == path }?[1].text)
            let stored = try await storage.list(prefix: "des/_bigFiles/\(name)")
            #expect(stored.count == 1)
            #expect(try await reader.file(named: name, key: try #require(rows.first { $0[0].text == path }?[2].text)) == bytes)
        }
        let leftovers = (FileManager.default.enumerator(atPath: d.dir + "/work")?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".part") }
        #expect(leftovers.isEmpty, "\(leftovers)")
        // Put the bodies back as they were, for the audit.
        for (path, bytes) in big { _ = FileManager.default.createFile(atPath: d.bodiesRoot + "/" + path, contents: Data(bytes)) }
        // The audit reads every row back (external ones included); recovery leaves the big objects alone.
        let report = try await d.audit()
        #expect(report.isOK, "\(report)")
        _ = try await Recovery(sources: [try d.connector()], metadata: try await d.metadata(), storage: storage, logger: d.logger)
            .removeTemporaries(prefix: "des", olderThanSeconds: 0)
        #expect(try await storage.list(prefix: "des/_bigFiles/").count == 5)
    }
}
