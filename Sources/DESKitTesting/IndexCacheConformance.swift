import DESFormat
import DESKit
import Foundation

/// The behaviour the readers rely on from every ``IndexCache``, checked once here for all of
/// them: an index comes back whole under its exact version and under no other, entries expire at
/// their TTL, delete and clear drop what they name, hits and misses are counted, and the newest
/// version of a container is found without knowing it.
///
/// ```swift
/// @Test func conformance() async throws {
///     let report = await IndexCacheConformance.run { MyCache() }
///     #expect(report.isOK, "\(report)")
/// }
/// ```
///
/// `makeCache` returns a fresh cache for each check; caches that share a server must not share
/// entries with other users of it (give each run its own key prefix), since one check clears it.
public enum IndexCacheConformance {
    /// Runs every check.
    public static func run(makeCache: @escaping @Sendable () async throws -> any IndexCache) async -> ConformanceReport {
        var runner = CheckRunner()
        let run = UUID().uuidString.prefix(8).lowercased()
        func id(_ key: String, _ version: String = "v1") -> ArchiveIdentity {
            ArchiveIdentity(location: "conformance-\(run)", key: key, version: version)
        }

        await runner.run("an index comes back whole under its version, and under no other version or key") {
            let c = "an index comes back whole under its version, and under no other version or key"
            let cache = try await makeCache()
            defer { Task { await cache.close() } }
            let index = try makeIndex(files: 300, seed: 1)
            await cache.set(id("a.des"), index: index, ttlSeconds: nil)
            let back = await cache.get(id("a.des"))
            try require(back?.entries == index.entries && back?.archiveSize == index.archiveSize, c, "the index read back differs")
            try require(back?.entry(named: "f299")?.dataLength == index.entry(named: "f299")?.dataLength, c, "a lookup by name in the read-back index")
            try require(await cache.get(id("a.des", "v2")) == nil, c, "another version of the container was served")
            try require(await cache.get(id("b.des")) == nil, c, "another container was served")
        }

        await runner.run("hits and misses are counted") {
            let c = "hits and misses are counted"
            let cache = try await makeCache()
            defer { Task { await cache.close() } }
            let before = await cache.stats()
            await cache.set(id("s.des"), index: try makeIndex(files: 3, seed: 2), ttlSeconds: nil)
            _ = await cache.get(id("s.des"))
            _ = await cache.get(id("s.des"))
            _ = await cache.get(id("none.des"))
            let after = await cache.stats()
            try require(
                after.hits - before.hits == 2 && after.misses - before.misses == 1, c,
                "2 hits and 1 miss counted as \(after.hits - before.hits) and \(after.misses - before.misses)")
        }

        await runner.run("an entry expires at its TTL and is served until then") {
            let c = "an entry expires at its TTL and is served until then"
            let cache = try await makeCache()
            defer { Task { await cache.close() } }
            let set = Date()
            await cache.set(id("t.des"), index: try makeIndex(files: 3, seed: 3), ttlSeconds: 1)
            await cache.set(id("kept.des"), index: try makeIndex(files: 3, seed: 4), ttlSeconds: nil)
            let present = await cache.get(id("t.des")) != nil
            // Under a loaded run the first read may come late: it must find the entry only while it lives.
            try require(present || Date().timeIntervalSince(set) >= 1, c, "an entry was gone before its TTL")
            let deadline = max(Date(), set.addingTimeInterval(1)).addingTimeInterval(15)
            var gone = false
            repeat {
                gone = await cache.get(id("t.des")) == nil
                if !gone { try await Task.sleep(nanoseconds: 50_000_000) }
            } while !gone && Date() < deadline
            // A sleep on a starved machine can outlast the deadline: ask once more before judging.
            if !gone { gone = await cache.get(id("t.des")) == nil }
            try require(gone, c, "an entry outlived its TTL by 15 s")
            try require(await cache.get(id("kept.des")) != nil, c, "an entry without a TTL expired with it")
        }

        await runner.run("delete drops one entry, clear drops them all") {
            let c = "delete drops one entry, clear drops them all"
            let cache = try await makeCache()
            defer { Task { await cache.close() } }
            let index = try makeIndex(files: 5, seed: 5)
            for key in ["d1.des", "d2.des", "d3.des"] { await cache.set(id(key), index: index, ttlSeconds: nil) }
            await cache.delete(id("d2.des"))
            await cache.delete(id("never.des"))
            try require(await cache.get(id("d2.des")) == nil, c, "a deleted entry was served")
            let (one, three) = (await cache.get(id("d1.des")), await cache.get(id("d3.des")))
            try require(one != nil && three != nil, c, "delete dropped another entry")
            await cache.clear()
            for key in ["d1.des", "d3.des"] {
                try require(await cache.get(id(key)) == nil, c, "\(key) was served after clear")
            }
            await cache.set(id("d1.des"), index: index, ttlSeconds: nil)
            try require(await cache.get(id("d1.des")) != nil, c, "the cache holds nothing after clear")
        }

        await runner.run("the newest version set for a container is found without knowing it") {
            let c = "the newest version set for a container is found without knowing it"
            let cache = try await makeCache()
            defer { Task { await cache.close() } }
            try require(await cache.latest(location: "conformance-\(run)", key: "l.des") == nil, c, "a version of an unknown container")
            let (old, new) = (try makeIndex(files: 4, seed: 6), try makeIndex(files: 9, seed: 7))
            await cache.set(id("l.des", "v1"), index: old, ttlSeconds: nil)
            await cache.set(id("l.des", "v2"), index: new, ttlSeconds: nil)
            let latest = await cache.latest(location: "conformance-\(run)", key: "l.des")
            try require(latest?.version == "v2" && latest?.index.entries == new.entries, c, "latest is \(latest?.version ?? "none"), not v2")
            await cache.delete(id("l.des", "v2"))
            let afterDelete = await cache.latest(location: "conformance-\(run)", key: "l.des")
            try require(afterDelete?.version != "v2", c, "latest served a deleted version")
        }

        await runner.run("parts of a two-level index come back as stored, by version and name; the newest version of a part is found; delete drops one") {
            let c = "parts of a two-level index come back as stored, by version and name; the newest version of a part is found; delete drops one"
            let cache = try await makeCache()
            defer { Task { await cache.close() } }
            let root: [UInt8] = Array(0..<200).map { UInt8($0) }, leaf: [UInt8] = Array(repeating: 7, count: 33_000)
            await cache.setPart(id("p.des", "v1"), name: "root", part: IndexCachePart(bytes: root), newest: true, ttlSeconds: nil)
            await cache.setPart(id("p.des", "v1"), name: "leaf@100", part: IndexCachePart(bytes: leaf), newest: false, ttlSeconds: nil)
            try require(await cache.part(id("p.des", "v1"), name: "root")?.bytes == root, c, "the root did not come back")
            try require(await cache.part(id("p.des", "v1"), name: "leaf@100")?.bytes == leaf, c, "the leaf did not come back")
            try require(await cache.part(id("p.des", "v2"), name: "root") == nil, c, "a part served for another version")
            try require(await cache.part(id("p.des", "v1"), name: "leaf@200") == nil, c, "a part served under another name")
            try require(await cache.latestPart(location: "conformance-\(run)", key: "p.des", name: "leaf@100") == nil, c, "a leaf found as the newest")
            try require(await cache.get(id("p.des", "v1")) == nil, c, "a part served as a whole index")
            await cache.setPart(id("p.des", "v2"), name: "root", part: IndexCachePart(bytes: [1, 2, 3]), newest: true, ttlSeconds: nil)
            let latest = await cache.latestPart(location: "conformance-\(run)", key: "p.des", name: "root")
            try require(latest?.version == "v2" && latest?.part.bytes == [1, 2, 3], c, "the newest root is \(latest?.version ?? "none")")
            await cache.deletePart(id("p.des", "v1"), name: "leaf@100")
            try require(await cache.part(id("p.des", "v1"), name: "leaf@100") == nil, c, "a deleted part served")
        }
        return runner.report
    }

    /// A small sealed archive's index, `files` entries named `f0`…, different per `seed`.
    static func makeIndex(files: Int, seed: Int) throws -> DESIndex {
        let path = NSTemporaryDirectory() + "des-cache-conformance-\(UUID().uuidString).des"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try DESArchiveWriter(path: path)
        for i in 0..<files { _ = try writer.add(name: "f\(i)", bytes: Array("body \(i) of \(seed)".utf8)) }
        _ = try writer.close()
        return try DESArchiveReader(path: path).index
    }
}
