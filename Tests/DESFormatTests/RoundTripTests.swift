import DESFormat
import Foundation
import DESTestSupport
import Testing

/// 10,000 files with random names, sizes and metadata, written through all three
/// add paths and read back every way the reader offers. Seeded: a failure
/// reproduces with the same seed.
@Suite("Round trip")
struct RoundTripTests {
    static let seed: UInt64 = 0xDE5_0001
    static let fileCount = 10_000

    enum AddPath: CaseIterable { case bytes, file, stream }

    struct Item {
        var name: String
        var body: [UInt8]
        var meta: DESMetadata
        var path: AddPath
    }

    /// A stream handing out its bytes in random-sized pieces (1 byte up to 9,000), to cross buffer edges.
    struct ChunkyStream: DESByteStream {
        let bytes: [UInt8]
        var position = 0
        var rng: SeededRNG
        mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            let left = bytes.count - position
            if left == 0 { return 0 }
            let n = min(buffer.count, left, Int.random(in: 1...9000, using: &rng))
            bytes.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
            }
            position += n
            return n
        }
    }

    static let nameAlphabet: [String] = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_. +=,;'!@#$%&()[]{}~").map(String.init)
        + ["é", "ß", "ü", "Ω", "ж", "日", "本", "語", "😀", "🇫🇷", "\u{301}"]

    static func randomName(_ i: Int, _ rng: inout SeededRNG) -> String {
        let segments = Int.random(in: 1...4, using: &rng)
        var parts: [String] = []
        for s in 0..<segments {
            let long = i % 1000 == 999 && s == 0
            let length = long ? 700 : Int.random(in: 1...10, using: &rng)
            var seg = (0..<length).map { _ in nameAlphabet.randomElement(using: &rng)! }.joined()
            if seg.allSatisfy({ $0 == "." }) { seg += "d" }
            parts.append(seg)
        }
        parts[parts.count - 1] += "~\(i)"  // unique
        return parts.joined(separator: "/")
    }

    static let stringPool: [String] = [
        "", "plain", "quote\"d", "back\\slash", "new\nline", "tab\t", "ctl\u{1}\u{1F}\u{7F}", "café", "日本語", "😀🇫🇷",
        "slash/ok", "{\"not\":\"json\"}",
    ]

    static func randomValue(_ rng: inout SeededRNG, depth: Int = 0) -> DESJSONValue {
        switch Int.random(in: 0..<(depth < 2 ? 8 : 6), using: &rng) {
        case 0: return .string(stringPool.randomElement(using: &rng)!)
        case 1: return .int([Int64.min, Int64.max, 0, -1, Int64.random(in: -1_000_000...1_000_000, using: &rng)].randomElement(using: &rng)!)
        case 2: return .bool(Bool.random(using: &rng))
        case 3: return .null
        case 4: return .double(Double(Int.random(in: -100_000...100_000, using: &rng)) / 64 + 0.5)
        case 5: return .string("s\(rng.next())")
        case 6: return .array((0..<Int.random(in: 0...3, using: &rng)).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            var o = DESMetadata()
            for k in 0..<Int.random(in: 0...3, using: &rng) { o["k\(k)\(stringPool.randomElement(using: &rng)!)"] = randomValue(&rng, depth: depth + 1) }
            return .object(o)
        }
    }

    static let metaKeys = ["mime", "owner", "tags", "n", "flag", "nested", "ratio", "note", "ünïcode", "k\"q", "sizes", "id"]

    static func randomMeta(_ rng: inout SeededRNG) -> DESMetadata {
        var meta = DESMetadata()
        for _ in 0..<Int.random(in: 0...4, using: &rng) {
            meta[metaKeys.randomElement(using: &rng)!] = randomValue(&rng)
        }
        return meta
    }

    /// The items, with large files at a few fixed positions (one exactly 5 MiB).
    static func makeItems() -> [Item] {
        var rng = SeededRNG(seed: seed)
        let pool = rng.bytes(1 << 20)
        let large: [Int: Int] = [17: 5 << 20, 1234: 1 << 20, 3000: 3_333_333, 4567: 4_999_999, 7001: 2 << 20, 9998: 1_048_577]
        var items: [Item] = []
        items.reserveCapacity(fileCount)
        for i in 0..<fileCount {
            let size: Int
            if let big = large[i] {
                size = big
            } else {
                switch Int.random(in: 0..<100, using: &rng) {
                case 0..<5: size = 0
                case 5..<95: size = Int.random(in: 1...4096, using: &rng)
                default: size = Int.random(in: 4097...65536, using: &rng)
                }
            }
            var body: [UInt8] = []
            body.reserveCapacity(size)
            while body.count < size {
                let n = min(size - body.count, 65536)
                let start = Int.random(in: 0...(pool.count - n), using: &rng)
                body += pool[start..<(start + n)]
            }
            // Make every non-trivial body unique, so a misplaced read cannot pass.
            for (j, b) in withUnsafeBytes(of: UInt32(i).littleEndian, Array.init).enumerated() where j < size { body[j] = b }
            let path = AddPath.allCases[i % 3]
            items.append(Item(name: randomName(i, &rng), body: body, meta: randomMeta(&rng), path: path))
        }
        return items
    }

    static func writeItems(_ items: [Item], dir: String) throws -> String {
        let archive = dir + "/round.des"
        try FileManager.default.createDirectory(atPath: dir + "/src", withIntermediateDirectories: true)
        let writer = try DESArchiveWriter(path: archive, options: writerOptions(bufferSize: 64 * 1024))
        var rng = SeededRNG(seed: seed ^ 0xFFFF)
        for (i, item) in items.enumerated() {
            #expect(DESNameRules.isValid(item.name), "generated an invalid name: \(item.name)")
            let entry: DESIndexEntry
            switch item.path {
            case .bytes:
                entry = try writer.add(name: item.name, bytes: item.body, metadata: item.meta)
            case .file:
                let src = dir + "/src/\(i)"
                try writeFile(src, item.body)
                entry = try writer.add(name: item.name, contentsOfFile: src, metadata: item.meta)
            case .stream:
                var stream = ChunkyStream(bytes: item.body, rng: SeededRNG(seed: rng.next()))
                entry = try writer.add(name: item.name, from: &stream, metadata: item.meta)
            }
            #expect(entry.dataLength == UInt64(item.body.count))
        }
        let summary = try writer.close()
        #expect(summary.fileCount == items.count)
        #expect(summary.dataLength == UInt64(items.map(\.body.count).reduce(0, +)))
        return archive
    }

    @Test("10,000 random files round-trip through every add path and both reader modes")
    func tenThousandFiles() throws {
        let items = Self.makeItems()
        let total = items.map(\.body.count).reduce(0, +)
        #expect(total < 300 << 20)
        #expect(items.contains { $0.body.count == 5 << 20 })
        #expect(Set(items.map(\.name)).count == items.count)
        #expect(items.contains { $0.name.unicodeScalars.contains { !$0.isASCII } })
        #expect(items.contains { $0.name.contains("/") })

        try withTempDir { dir in
            let archive = try Self.writeItems(items, dir: dir)
            var rng = SeededRNG(seed: Self.seed ^ 0xBEEF)
            for mode in [DESArchiveReader.Mode.mapped, .positional] {
                let reader = try DESArchiveReader(path: archive, mode: mode)
                #expect(reader.entries.map(\.name) == items.map(\.name))
                for (i, item) in items.enumerated() {
                    let before = reader.bodyReadCount
                    let body = try reader.file(named: item.name)
                    #expect(sameBytes(body, item.body), "body of #\(i) \(item.name) differs (\(mode))")
                    // One read per non-empty file in positional mode; none for empty files or when mapped.
                    #expect(reader.bodyReadCount - before == (mode == .positional && !item.body.isEmpty ? 1 : 0))

                    var expected = item.meta
                    expected["size"] = .int(Int64(item.body.count))
                    let meta = try reader.meta(named: item.name)
                    #expect(meta.keys == expected.keys + ["sha256"], "#\(i)")
                    if i % 10 == 0 || item.body.count > 1 << 20 {
                        // Spot-check the checksum with the independent implementation (it is slow in debug builds).
                        expected["sha256"] = .string(referenceSHA256Hex(item.body))
                    } else {
                        expected["sha256"] = meta["sha256"]
                    }
                    #expect(meta == expected, "META of #\(i) \(item.name) differs (\(mode))")
                }
                // withFile hands out the same bytes.
                for item in items.prefix(200) {
                    #expect(try reader.withFile(named: item.name) { sameBytes(Array($0), item.body) })
                }

                let report = try reader.verify()
                #expect(report.isOK, "\(report.problems.prefix(5))")
                #expect(report.entries == items.count)
                #expect(report.checksummed == items.count)
                #expect(report.bytesChecked == UInt64(total))

                try Self.checkBatchReads(reader: reader, items: items, rng: &rng)
            }
        }
    }

    /// Batch reads return the right bytes; in positional mode they cost exactly the merged reads planned.
    static func checkBatchReads(reader: DESArchiveReader, items: [Item], rng: inout SeededRNG) throws {
        let byName = Dictionary(uniqueKeysWithValues: items.map { ($0.name, $0.body) })
        for round in 0..<40 {
            var names = (0..<Int.random(in: 1...300, using: &rng)).map { _ in items.randomElement(using: &rng)!.name }
            if round % 4 == 0 {
                // A contiguous run of entries.
                let start = Int.random(in: 0..<(items.count - 100), using: &rng)
                names = items[start..<(start + 100)].map(\.name)
            }
            names.append("not/in/the/archive~\(round)")
            let maxGap = [0, 1, 4096, 65536, DESFormat.defaultMaxGap, Int.max][round % 6]
            let entries = names.compactMap { reader.entry(named: $0) }.filter { $0.dataLength > 0 }
            let planned = DESRangePlanner.plan(entries.map { ($0.dataOffset, $0.dataLength) }, maxGap: UInt64(maxGap))

            let before = reader.bodyReadCount
            let result = try reader.files(named: names, maxGap: maxGap)
            let reads = reader.bodyReadCount - before
            #expect(reads == (reader.mode == .positional ? planned.count : 0), "round \(round), maxGap \(maxGap)")
            #expect(Set(result.keys) == Set(names.filter { byName[$0] != nil }))
            for (name, body) in result {
                #expect(sameBytes(body, byName[name]!), "batch read of \(name) differs")
            }
            // Independent predictions: one read when the gap allowance covers everything, and
            // no merging at all for maxGap 0 when the ranges are pairwise separated.
            if maxGap == Int.max && !entries.isEmpty { #expect(planned.count == 1) }
            if round % 4 == 0 && maxGap == 0 {
                // Entries of a contiguous run sit back to back in DATA: adjacent ranges merge even with no gap allowed.
                #expect(planned.count == (entries.isEmpty ? 0 : 1))
            }
        }
    }

    @Test("The range planner merges neighbours within maxGap and skips empty ranges")
    func rangePlanner() {
        let ranges: [(offset: UInt64, length: UInt64)] = [(100, 10), (16, 5), (21, 0), (21, 4), (30, 10), (200, 1), (105, 2)]
        func shape(_ reads: [DESRangePlanner.Read]) -> [String] { reads.map { "\($0.offset)+\($0.length):\($0.members)" } }
        #expect(shape(DESRangePlanner.plan(ranges, maxGap: 0)) == ["16+9:[1, 3]", "30+10:[4]", "100+10:[0, 6]", "200+1:[5]"])
        #expect(shape(DESRangePlanner.plan(ranges, maxGap: 5)) == ["16+24:[1, 3, 4]", "100+10:[0, 6]", "200+1:[5]"])
        #expect(shape(DESRangePlanner.plan(ranges, maxGap: 90)) == ["16+185:[1, 3, 4, 0, 6, 5]"])  // the gap 110…200 is exactly 90
        #expect(shape(DESRangePlanner.plan(ranges, maxGap: 89)) == ["16+94:[1, 3, 4, 0, 6]", "200+1:[5]"])
        #expect(shape(DESRangePlanner.plan(ranges, maxGap: 1000)) == ["16+185:[1, 3, 4, 0, 6, 5]"])
        #expect(DESRangePlanner.plan([], maxGap: 10).isEmpty)
        #expect(DESRangePlanner.plan([(50, 0)], maxGap: 10).isEmpty)
    }
}
