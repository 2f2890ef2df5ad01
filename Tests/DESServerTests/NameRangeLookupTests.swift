import DESEngine
import DESKit
import DESNaming
import DESStorage
import Foundation
import Testing

@testable import DESServer

/// One container per lookup: the names each container holds, recorded in the metadata store,
/// narrow a name's (day, shard) to the container that holds it. Index reads are counted.
@Suite("Name ranges: one container per lookup") struct NameRangeLookupTests {
    /// A shelf of `count` names (two shards) in containers of `per` files, on counted storage;
    /// the names of shard 0.
    static func shelf(count: Int, per: Int, recordNames: Bool, interleave: Bool = false) async throws -> (Shelf, RequestCountingStorage, [String]) {
        var shelf = try await Shelf.make(shardBits: 1)
        let counting = RequestCountingStorage(base: shelf.storage)  // under the shelf's folder, removed with it
        shelf.storage = counting
        let names = try await shelf.pack(count, size: 16, contentType: nil, filesPerContainer: per, recordNames: recordNames, interleave: interleave)
        return (shelf, counting, names.filter { shelf.files[$0]?.shard == 0 })
    }

    /// Looks each name up cold (no index cache, a locator of its own: nothing a lookup before it
    /// read can answer it) and returns the index reads it cost.
    static func indexReads(_ names: [String], shelf: Shelf, storage: RequestCountingStorage) async throws -> [Int] {
        var reads: [Int] = []
        for name in names {
            let locator = FileLocator(
                metadata: shelf.metadata, reader: StorageArchiveReader(storage: storage), shardBits: 1, refreshSeconds: 3600, locatedCapacity: 16)
            storage.reset()
            let found = try await locator.locate(name, parsed: try SnowflakeName(parsing: name))?.located
            #expect(found?.key == shelf.files[name]?.container, "\(name)")
            reads.append(storage.requests["get_suffix"] ?? 0)
        }
        return reads
    }

    @Test("About 20 containers of one (day, shard) with names in runs: a name in any of them costs exactly one index read (without recorded names, one in the oldest costs one a container)")
    func disjointRanges() async throws {
        let (shelf, storage, names) = try await Self.shelf(count: 2000, per: 50, recordNames: true)
        defer { shelf.cleanup() }
        let records = try await shelf.metadata.containers(state: .uploaded, shard: 0, day: nil)
        #expect(records.count >= 18, "\(records.count) containers")
        #expect(records.allSatisfy { $0.nameRange != nil && $0.nameRange?.filter == nil }, "runs of names do not overlap: no filters")
        let sample = stride(from: 0, to: names.count, by: 25).map { names[$0] } + [names[1], names[names.count - 1]]
        let reads = try await Self.indexReads(sample, shelf: shelf, storage: storage)
        #expect(reads == Array(repeating: 1, count: sample.count), "\(reads) \(records.map { "\($0.id) \($0.nameRange.map { "\($0.first)…\($0.last)" } ?? "-")" })")

        let (bare, bareStorage, bareNames) = try await Self.shelf(count: 2000, per: 50, recordNames: false)
        defer { bare.cleanup() }
        let bareCount = try await bare.metadata.containers(state: .uploaded, shard: 0, day: nil).count
        #expect(try await Self.indexReads([bareNames[0]], shelf: bare, storage: bareStorage) == [bareCount])
    }

    @Test("10 containers whose names interleave: each range overlaps the others, so all but the first get a filter; lookups cost one index read but for the filter's rare false positives")
    func overlappingRanges() async throws {
        let (shelf, storage, names) = try await Self.shelf(count: 4000, per: 200, recordNames: true, interleave: true)
        defer { shelf.cleanup() }
        let records = try await shelf.metadata.containers(state: .uploaded, shard: 0, day: nil)
        #expect(records.count >= 9, "\(records.count) containers")
        #expect(records.filter { $0.nameRange?.filter != nil }.count == records.count - 1, "\(records.map { $0.nameRange?.filter != nil })")
        let sample = Array(names.prefix(300))
        let reads = try await Self.indexReads(sample, shelf: shelf, storage: storage)
        // The filters' false positives (about 1% each) are random with the names: no lookup reads
        // every container, nearly all read one, and all of them together about one each.
        #expect(reads.allSatisfy { $0 >= 1 && $0 < records.count }, "\(reads)")
        #expect(reads.filter { $0 == 1 }.count * 10 >= sample.count * 9, "\(reads)")
        #expect(reads.reduce(0, +) <= sample.count + sample.count / 10, "\(reads.reduce(0, +)) index reads for \(sample.count) lookups")
    }
}

/// ``NameRange`` and ``NameFilter`` on their own.
@Suite("Name ranges and filters") struct NameRangeUnitTests {
    @Test("A range covers its ends and what lies between in byte order; overlap is symmetric; the filter holds every name added and few others; its encoding round-trips and garbage decodes to none")
    func rangeAndFilter() throws {
        let names = (0..<5000).map { String(format: "DES_20261205_(%012X_00)", $0 * 7) }
        let range = try #require(NameRange(names: names.shuffled()))
        #expect(range.first == names.first && range.last == names.last)
        #expect(range.covers(names[2500]) && !range.covers("DES_20261204_(000000000000_00)") && !range.covers("DES_20261206"))
        let later = NameRange(first: names[4000], last: "DES_20261206")
        #expect(range.overlaps(later) && later.overlaps(range))
        #expect(!range.overlaps(NameRange(first: "A", last: "B")) && !NameRange(first: "A", last: "B").overlaps(range))
        #expect(NameRange(names: [String]()) == nil)
        // Byte order, not a locale's: "Z" (0x5A) sorts before "a" (0x61).
        #expect(NameRange(names: ["a", "Z"])?.first == "Z")

        let filter = NameFilter(names: names)
        #expect(names.allSatisfy { filter.mayContain($0) })
        let others = (0..<5000).map { String(format: "DES_20261205_(%012X_01)", $0 * 7) }
        let falsePositives = others.filter { filter.mayContain($0) }.count
        #expect(falsePositives < 150, "\(falsePositives) false positives in 5000")
        let decoded = try #require(NameFilter(encoded: filter.encoded))
        #expect(decoded == filter)
        for garbage in ["", "bloom1", "bloom1:7:", "bloom2:7:AAAA", "bloom1:0:AAAA", "bloom1:99:AAAA", "bloom1:7:!!!"] {
            #expect(NameFilter(encoded: garbage) == nil, "\(garbage)")
        }
    }
}
