import DESFormat
import DESTestSupport
import Testing

/// Damaged archives: each kind of damage must give its own typed error with a
/// message that says what is wrong, in both reader modes.
@Suite("Corruption")
struct CorruptionTests {
    static let files: [(String, [UInt8], DESMetadata)] = {
        var rng = SeededRNG(seed: 0xC0FFEE)
        return [
            ("first.txt", Array("the first file\n".utf8), ["mime": "text/plain"]),
            ("dir/second.bin", rng.bytes(1000), ["n": 2]),
            ("third", [], [:]),
            ("fourth/ü.dat", rng.bytes(77), ["nested": .object(["a": .array([1, 2])])]),
        ]
    }()

    /// Writes the good archive and returns its bytes; unsealed, it keeps its checksums in META
    /// but has a footer with no seal (as an archive written before the seal would).
    static func goodArchive(in dir: String, sealed: Bool = false) throws -> [UInt8] {
        let path = dir + "/good.des"
        try writeArchive(at: path, files)
        if !sealed {
            var bytes = try readFile(path)
            unseal(&bytes)
            try writeFile(path, bytes)
        }
        return try readFile(path)
    }

    /// One way of damaging the archive and what the reader must say.
    struct Damage: Sendable, CustomTestStringConvertible {
        var label: String
        var code: DESFormatError.Code
        /// Words the message must contain (case-insensitive).
        var words: [String]
        var apply: @Sendable (inout [UInt8]) -> Void
        var testDescription: String { label }
    }

    static let damages: [Damage] = [
        Damage(label: "truncated to 87 bytes", code: .tooSmall, words: ["87", "88"]) { b in b = Array(b.prefix(87)) },
        Damage(label: "truncated to 10 bytes", code: .tooSmall, words: ["10", "88"]) { b in b = Array(b.prefix(10)) },
        Damage(label: "empty file", code: .tooSmall, words: ["0 bytes", "88"]) { b in b = [] },
        Damage(label: "header magic first byte flipped", code: .badHeaderMagic, words: ["header", "magic"]) { b in b[0] ^= 0x20 },
        Damage(label: "header magic last byte flipped", code: .badHeaderMagic, words: ["header", "magic"]) { b in b[7] ^= 0x01 },
        Damage(label: "header version 2", code: .badHeaderVersion, words: ["header", "version 2"]) { b in b[8] = 2 },
        Damage(label: "footer magic flipped", code: .badFooterMagic, words: ["footer", "magic"]) { b in b[b.count - 72 + 3] ^= 0xFF },
        Damage(label: "footer version 2", code: .badFooterVersion, words: ["footer", "version 2"]) { b in b[b.count - 72 + 8] = 2 },
        Damage(label: "file_count 2^40", code: .badFileCount, words: ["file count", "1099511627776"]) { b in
            b.patchLE64(at: b.count - 8, 1 << 40)
        },
        Damage(label: "file_count UInt64.max", code: .badFileCount, words: ["file count"]) { b in
            b.patchLE64(at: b.count - 8, .max)
        },
        Damage(label: "data_start beyond the file", code: .regionOutOfBounds, words: ["DATA"]) { b in
            b.patchLE64(at: footerValuesOffset(b.count), UInt64(b.count) + 100)
        },
        Damage(label: "data_start inside the header", code: .regionOutOfBounds, words: ["DATA"]) { b in
            b.patchLE64(at: footerValuesOffset(b.count), 3)
        },
        Damage(label: "index_start beyond the file", code: .regionOutOfBounds, words: ["INDEX"]) { b in
            b.patchLE64(at: footerValuesOffset(b.count) + 32, UInt64(b.count) * 2)
        },
        Damage(label: "meta_start before the end of DATA", code: .regionsOutOfOrder, words: ["DATA", "META"]) { b in
            let f = rawFooter(b)
            b.patchLE64(at: footerValuesOffset(b.count) + 16, f.dataStart + f.dataLength - 1)
        },
        Damage(label: "index_start before the end of META", code: .regionsOutOfOrder, words: ["META", "INDEX"]) { b in
            let f = rawFooter(b)
            b.patchLE64(at: footerValuesOffset(b.count) + 32, f.metaStart + f.metaLength - 1)
        },
        Damage(label: "DATA length overflows", code: .regionOutOfBounds, words: ["DATA", "overflow"]) { b in
            b.patchLE64(at: footerValuesOffset(b.count) + 8, .max - 3)
        },
        Damage(label: "index entry data_offset past DATA", code: .regionOutOfBounds, words: ["dir/second.bin", "DATA"]) { b in
            let f = rawFooter(b)
            b.patchLE64(at: rawIndexFieldOffset(b, entry: 1), f.dataStart + f.dataLength + 1)
        },
        Damage(label: "index entry data_offset before DATA", code: .regionOutOfBounds, words: ["first.txt", "DATA"]) { b in
            b.patchLE64(at: rawIndexFieldOffset(b, entry: 0), 2)
        },
        Damage(label: "index entry data_length runs past DATA", code: .regionOutOfBounds, words: ["dir/second.bin", "DATA"]) { b in
            b.patchLE64(at: rawIndexFieldOffset(b, entry: 1) + 8, 5000)
        },
        Damage(label: "index entry data_length overflows", code: .regionOutOfBounds, words: ["fourth/ü.dat"]) { b in
            b.patchLE64(at: rawIndexFieldOffset(b, entry: 3) + 8, .max - 1)
        },
        Damage(label: "index entry meta_offset outside META", code: .regionOutOfBounds, words: ["third", "META"]) { b in
            b.patchLE64(at: rawIndexFieldOffset(b, entry: 2) + 16, 16)
        },
        Damage(label: "index one byte shorter than its entries", code: .badIndexEntry, words: ["index entry"]) { b in
            let f = rawFooter(b)
            b.patchLE64(at: footerValuesOffset(b.count) + 40, f.indexLength - 1)
        },
        Damage(label: "file_count one less than the entries", code: .badIndexEntry, words: ["index"]) { b in
            let f = rawFooter(b)
            b.patchLE64(at: b.count - 8, f.fileCount - 1)
        },
        Damage(label: "last 3 bytes cut off", code: .badFooterMagic, words: ["footer", "magic"]) { b in b.removeLast(3) },
        Damage(label: "3 bytes appended", code: .badFooterMagic, words: ["footer", "magic"]) { b in b += [0, 0, 0] },
    ]

    @Test("Each kind of damage gives its typed error (unsealed), or fails the seal (sealed)",
        arguments: damages, [DESArchiveReader.Mode.mapped, .positional])
    func damagedArchive(damage: Damage, mode: DESArchiveReader.Mode) throws {
        try checkDamage(damage, mode: mode, sealed: false)
        try checkDamage(damage, mode: mode, sealed: true)
    }

    func checkDamage(_ damage: Damage, mode: DESArchiveReader.Mode, sealed: Bool) throws {
        try withTempDir { dir in
            var bytes = try Self.goodArchive(in: dir, sealed: sealed)
            // The undamaged archive opens and verifies.
            #expect(try DESArchiveReader(path: dir + "/good.des", mode: mode).verify().isOK)
            damage.apply(&bytes)
            let path = dir + "/bad.des"
            try writeFile(path, bytes)
            let error = formatError { _ = try DESArchiveReader(path: path, mode: mode) }
            let e = try #require(error)
            #expect(e.code.isCorruption)
            #expect(!e.message.isEmpty)
            #expect(e.path == path)
            if sealed && e.code == .sealMismatch { return }  // damage the structural checks let through
            #expect(e.code == damage.code, "\(e)")
            for word in damage.words {
                #expect(e.message.lowercased().contains(word.lowercased()), "message \"\(e.message)\" should mention \"\(word)\"")
            }
        }
    }

    @Test("A flipped DATA byte opens, then verify and checkedFile catch it", arguments: [DESArchiveReader.Mode.mapped, .positional])
    func flippedDataByte(mode: DESArchiveReader.Mode) throws {
        try withTempDir { dir in
            var bytes = try Self.goodArchive(in: dir)
            let entry = rawIndex(bytes)[1]
            #expect(entry.name == "dir/second.bin")
            bytes[Int(entry.dataOffset) + 500] ^= 0x01
            let path = dir + "/bad.des"
            try writeFile(path, bytes)

            let reader = try DESArchiveReader(path: path, mode: mode)
            let report = try reader.verify()
            #expect(!report.isOK)
            #expect(report.problemCount == 1)
            let problem = try #require(report.problems.first)
            #expect(problem.name == "dir/second.bin")
            #expect(problem.message.contains("checksum mismatch"))
            #expect(report.checksummed == 3)

            let e = try #require(formatError { _ = try reader.checkedFile(named: "dir/second.bin") })
            #expect(e.code == .checksumMismatch)
            #expect(e.message.contains("dir/second.bin"))
            // The unchecked read returns the damaged bytes as they are; the other entries are fine.
            let body = try reader.file(named: "dir/second.bin")
            #expect(body.count == 1000)
            #expect(body != Self.files[1].1)
            #expect(try reader.checkedFile(named: "first.txt") == Self.files[0].1)
            #expect(try reader.checkedFile(named: "third") == [])
        }
    }

    @Test("A broken META object is reported by verify and meta(named:)", arguments: [DESArchiveReader.Mode.mapped, .positional])
    func brokenMeta(mode: DESArchiveReader.Mode) throws {
        try withTempDir { dir in
            var bytes = try Self.goodArchive(in: dir)
            let entry = rawIndex(bytes)[0]
            #expect(bytes[Int(entry.metaOffset)] == UInt8(ascii: "{"))
            bytes[Int(entry.metaOffset)] = UInt8(ascii: "X")
            let path = dir + "/bad.des"
            try writeFile(path, bytes)

            let reader = try DESArchiveReader(path: path, mode: mode)
            let report = try reader.verify()
            #expect(report.problemCount == 1)
            #expect(report.problems.first?.name == "first.txt")
            #expect(report.problems.first?.message.contains("META") == true)
            let e = try #require(formatError { _ = try reader.meta(named: "first.txt") })
            #expect(e.code == .badMetadata)
            #expect(e.message.contains("first.txt"))
            // The body itself is intact.
            #expect(try reader.file(named: "first.txt") == Self.files[0].1)
        }
    }

    @Test("A META size that disagrees with the index is reported", arguments: [DESArchiveReader.Mode.mapped, .positional])
    func metaSizeMismatch(mode: DESArchiveReader.Mode) throws {
        try withTempDir { dir in
            var bytes = try Self.goodArchive(in: dir)
            let entry = rawIndex(bytes)[1]
            let meta = Array(bytes[Int(entry.metaOffset)..<Int(entry.metaOffset + entry.metaLength)])
            let text = String(decoding: meta, as: UTF8.self)
            let range = try #require(text.range(of: #""size":1000"#))
            let at = Int(entry.metaOffset) + text.utf8.distance(from: text.startIndex, to: range.upperBound) - 1
            bytes[at] = UInt8(ascii: "7")  // "size":1007
            let path = dir + "/bad.des"
            try writeFile(path, bytes)

            let report = try DESArchiveReader(path: path, mode: mode).verify()
            #expect(report.problemCount == 1)
            let problem = try #require(report.problems.first)
            #expect(problem.name == "dir/second.bin")
            #expect(problem.message.contains("1007"))
            #expect(problem.message.contains("1000"))
        }
    }

    @Test("A damaged sha256 in META is reported even though the body is intact")
    func damagedChecksumText() throws {
        try withTempDir { dir in
            var bytes = try Self.goodArchive(in: dir)
            let entry = rawIndex(bytes)[3]
            let text = String(decoding: bytes[Int(entry.metaOffset)..<Int(entry.metaOffset + entry.metaLength)], as: UTF8.self)
            let range = try #require(text.range(of: #""sha256":""#))
            let at = Int(entry.metaOffset) + text.utf8.distance(from: text.startIndex, to: range.upperBound)
            bytes[at] = bytes[at] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")  // still hex, now wrong
            try writeFile(dir + "/bad.des", bytes)
            let report = try DESArchiveReader(path: dir + "/bad.des").verify()
            #expect(report.problemCount == 1)
            #expect(report.problems.first?.name == "fourth/ü.dat")
            #expect(report.problems.first?.message.contains("checksum mismatch") == true)

            // A sha256 that is not 64 hex digits is its own problem.
            try writeFile(dir + "/short.des", buildRawArchive([RawEntry("s", [1], meta: #"{"size":1,"sha256":"abc"}"#)]))
            let short = try DESArchiveReader(path: dir + "/short.des").verify()
            #expect(short.problemCount == 1)
            #expect(short.problems.first?.message.contains("64-digit hex") == true)
        }
    }

    @Test("Opening something that is not an archive gives a typed I/O error")
    func notAnArchive() throws {
        try withTempDir { dir in
            let missing = try #require(formatError { _ = try DESArchiveReader(path: dir + "/nope.des") })
            #expect(missing.code == .io)
            #expect(!missing.code.isCorruption)
            #expect(missing.message.contains("no such file"))
            let directory = try #require(formatError { _ = try DESArchiveReader(path: dir) })
            #expect(directory.code == .io)
            #expect(directory.message.contains("not a regular file"))
        }
    }

    @Test("Duplicate names in an archive from the original: the last wins and verify reports it")
    func duplicateNamesFromOriginal() throws {
        try withTempDir { dir in
            let path = dir + "/dup.des"
            try writeFile(path, buildRawArchive([
                RawEntry("same", [1], meta: #"{"size":1}"#),
                RawEntry("same", [2, 2], meta: #"{"size":2}"#),
            ]))
            let reader = try DESArchiveReader(path: path)
            #expect(reader.index.duplicateNames == ["same"])
            #expect(try reader.file(named: "same") == [2, 2])
            let report = try reader.verify()
            #expect(report.problemCount == 1)
            #expect(report.problems.first?.message.contains("more than once") == true)
        }
    }
}
