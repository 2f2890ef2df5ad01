import DESKit
import Foundation

/// The behaviour the engine relies on from every ``StorageBackend``, checked once here for all of
/// them: atomic puts, whole, ranged and suffix reads, `If-Match`, sorted listing past one page,
/// idempotent deletes, and the removal of what interrupted puts leave.
///
/// Every check writes under a prefix of its own (letters and digits only: some S3 servers refuse a
/// listed prefix holding `/`), so one bucket or directory can hold several runs.
///
/// ```swift
/// @Test func conformance() async throws {
///     let report = await StorageBackendConformance.run(fixture: .init(makeStorage: { try MyStorage() }))
///     #expect(report.isOK, "\(report)")
/// }
/// ```
public enum StorageBackendConformance {
    /// How the suite gets a backend, and what it cannot do through the protocol.
    public struct Fixture: Sendable {
        /// A backend to check (a fresh one for each check; they may share their storage).
        public var makeStorage: @Sendable () async throws -> any StorageBackend
        /// Leaves under `key` what a `put` killed half way leaves in this backend (a temporary
        /// file, an unfinished multipart upload), as a writer that is dead. Nil for a backend
        /// whose puts leave nothing; the check then asks that nothing is ever removed.
        public var leaveInterruptedPut: (@Sendable (any StorageBackend, String) async throws -> Void)?
        /// Creates a fixture.
        public init(
            makeStorage: @escaping @Sendable () async throws -> any StorageBackend,
            leaveInterruptedPut: (@Sendable (any StorageBackend, String) async throws -> Void)? = nil
        ) {
            self.makeStorage = makeStorage
            self.leaveInterruptedPut = leaveInterruptedPut
        }
    }

    /// Keys listed in the pagination check: more than the 1,000 an S3 page holds.
    public static let listedKeys = 1_050

    /// Runs every check.
    public static func run(fixture: Fixture) async -> ConformanceReport {
        var runner = CheckRunner()
        let run = UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
        let scratch = NSTemporaryDirectory() + "des-storage-conformance-\(run)"
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var files = 0
        func file(_ bytes: [UInt8]) throws -> String {
            files += 1
            let path = scratch + "/f\(files)"
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
                throw ConformanceFailure(check: "set-up", message: "cannot write \(path)")
            }
            return path
        }
        let bytesA = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let bytesB = (0..<6_000).map { UInt8(truncatingIfNeeded: $0 &* 17 &+ 3) }

        await runner.run("put stores the file whole and replaces; readers see one whole object or the other") {
            let c = "put stores the file whole and replaces; readers see one whole object or the other"
            let storage = try await fixture.makeStorage()
            defer { Task { await storage.close() } }
            let (a, b) = (try file(bytesA), try file(bytesB))
            let key = "sc\(run)put/2025-01-01/x.des"
            let first = try await storage.put(key: key, fromFile: a)
            try require(first.key == key && first.size == UInt64(bytesA.count) && !first.etag.isEmpty, c, "put answered \(first)")
            try require(try await storage.get(key: key) == bytesA, c, "the object read back differs from the file")
            let second = try await storage.put(key: key, fromFile: b)
            try require(second.etag != first.etag, c, "a replaced object kept its version \(first.etag)")
            try require(try await storage.head(key: key) == second, c, "head does not describe the replacement")
            // Replace again and again while others read: every read is one whole version.
            let reads = try await withThrowingTaskGroup(of: [[UInt8]].self) { group in
                group.addTask {
                    for i in 0..<12 { _ = try await storage.put(key: key, fromFile: i % 2 == 0 ? a : b) }
                    return []
                }
                for _ in 0..<2 {
                    group.addTask {
                        var seen: [[UInt8]] = []
                        for _ in 0..<12 { seen.append(try await storage.get(key: key)) }
                        return seen
                    }
                }
                var all: [[UInt8]] = []
                for try await seen in group { all += seen }
                return all
            }
            let torn = reads.filter { $0 != bytesA && $0 != bytesB }
            try require(torn.isEmpty, c, "\(torn.count) of \(reads.count) reads during puts saw neither version (sizes \(torn.map(\.count)))")
            try await storage.delete(key: key)
        }

        await runner.run("whole, ranged and suffix reads; a range past the end and a missing object are errors") {
            let c = "whole, ranged and suffix reads; a range past the end and a missing object are errors"
            let storage = try await fixture.makeStorage()
            defer { Task { await storage.close() } }
            let key = "sc\(run)read/o.des"
            let info = try await storage.put(key: key, fromFile: try file(bytesA))
            try require(try await storage.get(key: key, offset: 100, length: 50) == Array(bytesA[100..<150]), c, "bytes 100..<150")
            try require(try await storage.get(key: key, offset: 9_999, length: 1) == [bytesA[9_999]], c, "the last byte")
            try require(try await storage.get(key: key, offset: 0, length: 0) == [], c, "an empty range")
            let (tail, total) = try await storage.getSuffix(key: key, length: 64)
            try require(tail == Array(bytesA.suffix(64)) && total == 10_000, c, "a 64-byte suffix: \(tail.count) bytes of \(total)")
            let (whole, size) = try await storage.getSuffix(key: key, length: 1 << 20)
            try require(whole == bytesA && size == 10_000, c, "a suffix longer than the object: \(whole.count) bytes of \(size)")
            let versioned = try await storage.getSuffixVersioned(key: key, length: 16)
            try require(
                versioned.bytes == Array(bytesA.suffix(16)) && versioned.totalSize == 10_000 && versioned.version == info.etag, c,
                "a versioned suffix: \(versioned.bytes.count) bytes of \(versioned.totalSize), version \(versioned.version ?? "none") not \(info.etag)")
            var short: Int?
            do { short = try await storage.get(key: key, offset: 9_990, length: 20).count } catch {}
            try require(short == nil, c, "a range past the end answered \(short ?? 0) bytes, not an error")
            try require(try await storage.head(key: "sc\(run)read/none.des") == nil, c, "head of a missing object is not nil")
            do {
                _ = try await storage.get(key: "sc\(run)read/none.des")
                throw ConformanceFailure(check: c, message: "a missing object was read")
            } catch let error as DESKitError {
                try require(error.code == .notFound, c, "a missing object is \(error.code), not notFound: \(error)")
            }
            try await storage.delete(key: key)
        }

        await runner.run("If-Match: the version read is served; a replaced object is 'changed'") {
            let c = "If-Match: the version read is served; a replaced object is 'changed'"
            let storage = try await fixture.makeStorage()
            defer { Task { await storage.close() } }
            let key = "sc\(run)match/o.des"
            let first = try await storage.put(key: key, fromFile: try file(bytesA))
            try require(
                try await storage.get(key: key, offset: 10, length: 10, ifMatch: first.etag) == Array(bytesA[10..<20]), c, "a read of the current version")
            _ = try await storage.put(key: key, fromFile: try file(bytesB))
            do {
                let stale = try await storage.get(key: key, offset: 10, length: 10, ifMatch: first.etag)
                throw ConformanceFailure(check: c, message: "a read of a replaced version answered \(stale.count) bytes")
            } catch let error as DESKitError {
                try require(error.code == .changed, c, "a replaced version is \(error.code), not changed: \(error)")
            }
            try await storage.delete(key: key)
        }

        await runner.run("list: every key under the prefix, sorted, past one page of 1,000; no other prefix, no temporary") {
            let c = "list: every key under the prefix, sorted, past one page of 1,000; no other prefix, no temporary"
            let storage = try await fixture.makeStorage()
            defer { Task { await storage.close() } }
            let small = try file([1, 2, 3])
            let prefix = "sc\(run)list"
            let keys = (0..<listedKeys).map { "\(prefix)/2025-01-0\($0 % 3 + 1)/shard_\(String(format: "%02d", $0 % 7))_c\($0).des" }
            // A few puts at once, as a fleet of packers would make them.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in 0..<8 {
                    group.addTask {
                        for i in stride(from: lane, to: keys.count, by: 8) { _ = try await storage.put(key: keys[i], fromFile: small) }
                    }
                }
                try await group.waitForAll()
            }
            let other = "sc\(run)lisu/other.des"
            _ = try await storage.put(key: other, fromFile: small)
            let listed = try await storage.list(prefix: prefix)
            try require(listed.map(\.key) == keys.sorted(), c, "listed \(listed.count) of \(keys.count) keys, or not sorted")
            try require(listed.allSatisfy { $0.size == 3 && !$0.etag.isEmpty }, c, "a listed object lacks its size or version")
            let both = try await storage.list(prefix: "sc\(run)lis")
            try require(both.count == keys.count + 1, c, "prefix sc\(run)lis lists \(both.count), not \(keys.count + 1)")
            try require(try await storage.list(prefix: "sc\(run)none").isEmpty, c, "an empty prefix lists objects")
            for key in keys + [other] { try await storage.delete(key: key) }
            try require(try await storage.list(prefix: prefix).isEmpty, c, "objects left after deleting them all")
        }

        await runner.run("delete is idempotent, and a deleted object is gone for every read") {
            let c = "delete is idempotent, and a deleted object is gone for every read"
            let storage = try await fixture.makeStorage()
            defer { Task { await storage.close() } }
            let key = "sc\(run)delete/o.des"
            _ = try await storage.put(key: key, fromFile: try file(bytesA))
            try await storage.delete(key: key)
            try await storage.delete(key: key)
            try await storage.delete(key: "sc\(run)delete/never.des")
            try require(try await storage.head(key: key) == nil, c, "head finds a deleted object")
            do {
                _ = try await storage.get(key: key, offset: 0, length: 10)
                throw ConformanceFailure(check: c, message: "a ranged read of a deleted object answered bytes")
            } catch let error as DESKitError {
                try require(error.code == .notFound, c, "a deleted object is \(error.code), not notFound")
            }
        }

        await runner.run("what an interrupted put leaves is never listed, and is removed; finished objects never are") {
            let c = "what an interrupted put leaves is never listed, and is removed; finished objects never are"
            let storage = try await fixture.makeStorage()
            defer { Task { await storage.close() } }
            let prefix = "sc\(run)temp"
            let done = "\(prefix)/2025-01-01/done.des"
            _ = try await storage.put(key: done, fromFile: try file(bytesA))
            if let leave = fixture.leaveInterruptedPut {
                try await leave(storage, "\(prefix)/2025-01-01/cut.des")
                try require(try await storage.list(prefix: prefix).map(\.key) == [done], c, "an interrupted put is listed")
                try require(try await storage.head(key: "\(prefix)/2025-01-01/cut.des") == nil, c, "an interrupted put is an object")
                let removed = try await storage.removeStaleTemporaries(prefix: prefix, olderThanSeconds: 0)
                try require(removed >= 1, c, "nothing removed")
                try require(try await storage.removeStaleTemporaries(prefix: prefix, olderThanSeconds: 0) == 0, c, "a second removal found more")
            } else {
                try require(try await storage.removeStaleTemporaries(prefix: prefix, olderThanSeconds: 0) == 0, c, "removed something")
            }
            try require(try await storage.get(key: done) == bytesA, c, "a finished object was harmed")
            try await storage.delete(key: done)
        }
        return runner.report
    }
}
