import DESFormat
import Foundation
import Testing

/// The two-level index: written between INDEX and the footer of large sealed archives, read
/// back leaf by leaf, every damaged byte of it refused with a typed error.
@Suite("Two-level index") struct LevelsTests {
    /// `count` files with names in a shuffled order, a few content types, bodies of `size` bytes.
    static func files(_ count: Int, size: Int = 8) -> [(String, [UInt8], DESMetadata)] {
        (0..<count).shuffled().map { i in
            let meta: DESMetadata = i % 3 == 0 ? [:] : ["content_type": .string(i % 3 == 1 ? "image/jpeg" : "text/plain"), "row": .int(Int64(i))]
            return (String(format: "DES_20261205_(%012X_%02X)", i * 131, i % 256), (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ i) }, meta)
        }
    }

    /// The archive's footer and its parsed root.
    static func root(_ bytes: [UInt8]) throws -> (DESFooter, DESLevels?) {
        let footer = try bytes.withUnsafeBytes { try DESFooter.decode(UnsafeRawBufferPointer(rebasing: $0.suffix(72))) }
        let levels = try bytes.withUnsafeBytes { try DESLevels.parse(suffix: $0, footer: footer, archiveSize: UInt64(bytes.count)) }
        return (footer, levels)
    }

    @Test("A sealed archive of 5,000 files gets a root and leaves of at most 32 KiB, sorted by name, each entry as the index and META have it; lookups find every name and no other; the flat index, the seal and verify are unchanged")
    func roundTrip() throws {
        try withTempDir { dir in
            let files = Self.files(5000)
            try writeArchive(at: dir + "/a.des", files)
            let bytes = try readFile(dir + "/a.des")
            let (footer, parsed) = try Self.root(bytes)
            let levels = try #require(parsed)
            #expect(levels.entryCount == 5000 && levels.leaves.count > 1)
            #expect(levels.levelsStart == footer.indexStart + footer.indexLength)
            #expect(levels.leaves.allSatisfy { $0.length <= UInt64(DESLevels.leafTarget) + 200 }, "\(levels.leaves.map(\.length).max() ?? 0)")
            #expect(levels.rootLength < 16 * 1024, "root of \(levels.rootLength) bytes")
            let reader = try DESArchiveReader(path: dir + "/a.des")
            let all = try reader.entries(of: levels)
            #expect(all.map(\.name) == files.map(\.0).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
            for entry in all {
                let position = try #require(reader.index.position(of: entry.name))
                #expect(reader.index.entries[position] == entry.indexEntry)
                #expect(entry.sha256Hex == reader.index.sha256(at: position))
                let meta = try reader.meta(named: entry.name)
                #expect(entry.contentType == meta["content_type"]?.stringValue)
            }
            // Every name is found through the root and its leaf; names between and around are not.
            for (name, body, _) in files.prefix(300) {
                let leaf = try #require(levels.leaf(for: name))
                let leafBytes = Array(bytes[Int(leaf.offset)..<Int(leaf.offset + leaf.length)])
                let entries = try leafBytes.withUnsafeBytes { try levels.entries(of: leaf, bytes: $0, footer: footer) }
                let entry = try #require(entries.first { $0.name == name })
                #expect(Array(bytes[Int(entry.dataOffset)..<Int(entry.dataOffset + entry.dataLength)]) == body)
            }
            #expect(levels.leaf(for: "A") == nil)
            #expect(try reader.verify().isOK && reader.isSealed)
        }
    }

    @Test("Names order by their UTF-8 bytes: prefixes first, bytes above 0x7F after ASCII, small and long strings alike")
    func byteOrder() {
        let long = String(repeating: "n", count: 40)
        let names = ["", "a", "a/", "a/b", "ab", "B", "é", "e\u{301}", "z", "\u{7F}", "\u{10FFFF}", long, long + "a", long + "é", "DES_1", "DES_10", "DES_2"]
        for a in names {
            for b in names {
                #expect(DESNameRules.precedes(a, b) == a.utf8.lexicographicallyPrecedes(b.utf8), "\(a.debugDescription) < \(b.debugDescription)")
            }
        }
        #expect(DESNameRules.precedes("z", "é") && !DESNameRules.precedes("é", "z") && DESNameRules.precedes(long, long + "a"))
    }

    @Test("Small sealed archives and unsealed archives of any size have no two-level index: their bytes are as before")
    func onlyWhereItPays() throws {
        try withTempDir { dir in
            try writeArchive(at: dir + "/small.des", Self.files(100))
            #expect(try Self.root(try readFile(dir + "/small.des")).1 == nil)
            try writeArchive(at: dir + "/plain.des", Self.files(5000), checksums: false)
            #expect(try Self.root(try readFile(dir + "/plain.des")).1 == nil)
        }
    }

    @Test("Leaves that overlap, repeat a name or drop one are problems, though every leaf is sound on its own")
    func comparedWithTheIndex() throws {
        try withTempDir { dir in
            try writeArchive(at: dir + "/a.des", Self.files(1000))
            let reader = try DESArchiveReader(path: dir + "/a.des")
            let levels = try #require(try reader.levels())
            let all = try reader.entries(of: levels)
            func problems(_ entries: [DESLevelEntry]) -> [String] {
                var out: [String] = []
                DESLevels.compare(entries, with: reader.index, meta: { try? reader.meta(named: $0) }) { name, message in out.append("\(name): \(message)") }
                return out
            }
            #expect(problems(all).isEmpty)
            var swapped = all
            swapped.swapAt(10, 11)
            #expect(problems(swapped).contains { $0.contains("overlap or repeat") })
            var repeated = all
            repeated[501] = repeated[500]
            #expect(!problems(repeated).isEmpty)
            #expect(problems(Array(all.dropLast())).contains { $0.contains("holds 999 entries") })
            var moved = all
            moved[3].indexEntry.dataOffset += 1
            #expect(problems(moved).contains { $0.contains("elsewhere") })
        }
    }

    @Test("A flipped byte anywhere in the trailer, the root or a leaf is a typed error (badLevels) from the parser and a problem for verify; the flat index still reads")
    func corruption() throws {
        try withTempDir { dir in
            try writeArchive(at: dir + "/a.des", Self.files(3000))
            let good = try readFile(dir + "/a.des")
            let (footer, parsed) = try Self.root(good)
            let levels = try #require(parsed)
            let trailerAt = Int(try #require(DESLevels.trailerOffset(archiveSize: UInt64(good.count))))
            let leaf = levels.leaves[levels.leaves.count / 2]
            let targets = [
                ("trailer magic", trailerAt + 3), ("trailer numbers", trailerAt + 10), ("trailer CRC", trailerAt + 29),
                ("root", Int(levels.rootOffset) + Int(levels.rootLength) / 2), ("leaf", Int(leaf.offset) + Int(leaf.length) / 2),
                ("leaf CRC", Int(leaf.offset + leaf.length) - 1),
            ]
            for (what, at) in targets {
                var bad = good
                bad[at] ^= 0x10
                if what == "leaf" || what == "leaf CRC" {
                    let e = formatError(Comment(rawValue: what)) {
                        _ = try Array(bad[Int(leaf.offset)..<Int(leaf.offset + leaf.length)]).withUnsafeBytes { try levels.entries(of: leaf, bytes: $0, footer: footer) }
                    }
                    #expect(e?.code == .badLevels, "\(what): \(String(describing: e))")
                } else if what == "trailer magic" {
                    #expect(try Self.root(bad).1 == nil, "a trailer without its magic is no trailer")
                } else {
                    let e = formatError(Comment(rawValue: what)) { _ = try Self.root(bad) }
                    #expect(e?.code == .badLevels, "\(what): \(String(describing: e))")
                }
                try writeFile(dir + "/bad.des", bad)
                let reader = try DESArchiveReader(path: dir + "/bad.des")  // the flat index and the seal do not cover LEVELS
                #expect(reader.entries.count == 3000)
                if what != "trailer magic" {
                    let report = try reader.verify()
                    #expect(!report.isOK && report.problems.contains { $0.name == "(two-level index)" }, "\(what): \(report.problems)")
                }
            }
            // A suffix that does not reach back to the root: truncated, with where to read from.
            let short = Array(good.suffix(72 + 32 + 10))
            let e = formatError { _ = try short.withUnsafeBytes { try DESLevels.parse(suffix: $0, footer: footer, archiveSize: UInt64(good.count)) } }
            #expect(e?.code == .truncated)
            #expect(try short.withUnsafeBytes { try DESLevels.trailer(suffix: $0, footer: footer, archiveSize: UInt64(good.count)) }?.rootOffset == levels.rootOffset)
        }
    }
}
