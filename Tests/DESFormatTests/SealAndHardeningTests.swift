import DESFormat
import DESTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The seal, and every reading path checking what it reads (hostile archives).
@Suite("Seal and hardening")
struct SealAndHardeningTests {
    static let files: [(String, [UInt8], DESMetadata)] = [
        ("a.txt", Array("hello world\n".utf8), ["mime": "text/plain"]),
        ("dir/b.bin", SeededRNG(seed: 7).bytesArray(3000), [:]),
        ("c", [], [:]),
    ]

    /// Writes a sealed archive of `files` and returns its path and bytes.
    static func sealed(in dir: String) throws -> (String, [UInt8]) {
        let path = dir + "/sealed.des"
        try writeArchive(at: path, files)
        return (path, try readFile(path))
    }

    static func open(_ bytes: [UInt8], in dir: String, mode: DESArchiveReader.Mode = .positional) throws -> DESArchiveReader {
        let path = dir + "/x-\(UInt32.random(in: 0...UInt32.max)).des"
        try writeFile(path, bytes)
        return try DESArchiveReader(path: path, mode: mode)
    }

    @Test("CRC-32C: the standard check value, and the hardware path equals the table path")
    func crc32c() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        var rng = SeededRNG(seed: 42)
        for length in [1, 7, 8, 9, 63, 64, 65, 1000, 65_537] {
            let data = rng.bytes(length)
            #expect(CRC32C.checksum(data) == CRC32C.portableChecksum(data), "length \(length)")
        }
        // Chaining: two updates equal one over the concatenation.
        let a = rng.bytes(100), b = rng.bytes(57)
        let chained = b.withUnsafeBytes { rb in a.withUnsafeBytes { ra in CRC32C.update(CRC32C.update(0, ra), rb) } }
        #expect(chained == CRC32C.checksum(a + b))
    }

    @Test("An archive written with checksums is sealed; the seal covers META, INDEX and the footer values")
    func sealIsWritten() throws {
        try withTempDir { dir in
            let (path, bytes) = try Self.sealed(in: dir)
            let reader = try DESArchiveReader(path: path)
            #expect(reader.isSealed)
            #expect(try reader.stats().sealVersion == 1)
            let f = rawFooter(bytes)
            let covered = Array(bytes[Int(f.metaStart)..<Int(f.metaStart + f.metaLength)])
                + Array(bytes[Int(f.indexStart)..<Int(f.indexStart + f.indexLength)]) + Array(bytes[(bytes.count - 56)...])
            let crc = CRC32C.portableChecksum(covered)
            let footer = Array(bytes[(bytes.count - 72)...])
            #expect(footer[9] == 1)
            #expect(footer[10..<14].elementsEqual((0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * UInt32($0))) }))
            #expect(footer[14] == 0 && footer[15] == 0)
            let report = try reader.verify()
            #expect(report.isOK && report.sealed && report.checksummed == 3)
        }
    }

    /// Byte changes that switched checks off or renamed entries silently before the seal.
    static let tamperings: [(String, @Sendable (inout [UInt8]) -> Void)] = [
        ("a META \"sha256\" key renamed", { b in Self.replaceFirst(&b, "\"sha256\"", "\"sha257\"") }),
        ("a META \"size\" key renamed", { b in Self.replaceFirst(&b, "\"size\"", "\"sizf\"") }),
        ("a flipped byte in a name", { b in Self.replaceLast(&b, "dir/b.bin", "dir/c.bin") }),
        ("a flipped byte in a META value", { b in Self.replaceFirst(&b, "text/plain", "text/plaim") }),
        ("flags of an entry set to deleted", { b in b[rawIndexFieldOffset(b, entry: 1) + 32] = 0x08 }),
        ("a data_length changed", { b in b[rawIndexFieldOffset(b, entry: 1) + 8] ^= 0x01 }),
    ]

    static func replaceFirst(_ bytes: inout [UInt8], _ old: String, _ new: String) {
        let o = Array(old.utf8), n = Array(new.utf8)
        for i in 0...(bytes.count - o.count) where bytes[i..<(i + o.count)].elementsEqual(o) {
            bytes.replaceSubrange(i..<(i + o.count), with: n)
            return
        }
    }

    static func replaceLast(_ bytes: inout [UInt8], _ old: String, _ new: String) {
        let o = Array(old.utf8), n = Array(new.utf8)
        for i in stride(from: bytes.count - o.count, through: 0, by: -1) where bytes[i..<(i + o.count)].elementsEqual(o) {
            bytes.replaceSubrange(i..<(i + o.count), with: n)
            return
        }
    }

    @Test("Any change to a name, a META byte, a flag or a length breaks the seal", arguments: 0..<6)
    func tamperingBreaksTheSeal(which: Int) throws {
        let (label, tamper) = Self.tamperings[which]
        try withTempDir { dir in
            var (_, bytes) = try Self.sealed(in: dir)
            let before = bytes
            tamper(&bytes)
            #expect(bytes != before, "\(label) changed nothing")
            for mode in [DESArchiveReader.Mode.positional, .mapped] {
                let e = try #require(formatError { _ = try Self.open(bytes, in: dir, mode: mode) }, "\(label)")
                #expect(e.code == .sealMismatch, "\(label): \(e)")
                #expect(e.code.isCorruption)
                #expect(e.message.contains("seal"))
            }
            // A reader that gathers no digests (compaction reads META itself) checks the seal all the same.
            let path = dir + "/tampered.des"
            try writeFile(path, bytes)
            let e = try #require(formatError { _ = try DESArchiveReader(path: path, digests: false) }, "\(label)")
            #expect(e.code == .sealMismatch, "\(label): \(e)")
        }
    }

    @Test("A reader asked for no digests knows none, and reads every entry as one that does")
    func withoutDigests() throws {
        try withTempDir { dir in
            let (path, _) = try Self.sealed(in: dir)
            let (with, without) = (try DESArchiveReader(path: path), try DESArchiveReader(path: path, digests: false))
            #expect(with.index.sha256(at: 0) != nil)
            #expect(without.index.sha256(at: 0) == nil)
            #expect(with.entries == without.entries)
            for (name, body, _) in Self.files { #expect(try without.file(named: name) == body) }
        }
    }

    @Test("A forged seal (recomputed CRC) still cannot switch the checksum off: sha256 is required")
    func forgedSealWithoutChecksum() throws {
        try withTempDir { dir in
            var (_, bytes) = try Self.sealed(in: dir)
            Self.replaceFirst(&bytes, "\"sha256\"", "\"sha257\"")
            reseal(&bytes)
            let reader = try Self.open(bytes, in: dir)
            #expect(reader.isSealed)
            let e = try #require(formatError { _ = try reader.checkedFile(named: "a.txt") })
            #expect(e.code == .missingChecksum)
            let report = try reader.verify()
            #expect(!report.isOK)
            #expect(report.problems.first?.message.contains("sha256") == true)
            // unpack refuses it too, and writes nothing for it.
            let out = dir + "/out"
            #expect(formatError { _ = try reader.unpack(to: out) }?.code == .missingChecksum)
            #expect(!fileExists(out + "/a.txt"))
        }
    }

    @Test("Seal bytes: an unknown seal version, a cleared seal byte with a CRC left, non-zero padding")
    func malformedSealBytes() throws {
        try withTempDir { dir in
            let (_, good) = try Self.sealed(in: dir)
            let footer = good.count - 72
            var v2 = good
            v2[footer + 9] = 2
            #expect(formatError { _ = try Self.open(v2, in: dir) }?.code == .badSeal)
            var cleared = good
            cleared[footer + 9] = 0
            #expect(formatError { _ = try Self.open(cleared, in: dir) }?.code == .badSeal)
            var padding = good
            padding[footer + 15] = 1
            #expect(formatError { _ = try Self.open(padding, in: dir) }?.code == .badSeal)
            // Clearing all of it leaves an unsealed archive: it reads, and verify says it is unsealed.
            var unsealed = good
            unseal(&unsealed)
            let reader = try Self.open(unsealed, in: dir)
            #expect(!reader.isSealed)
            let report = try reader.verify()
            #expect(report.isOK && !report.sealed)
        }
    }

    @Test("Reserved flags 0x02/0x04 and unknown flag bits are refused, sealed or not", arguments: [UInt32(0x02), 0x04, 0x10, 0x8000_0000])
    func unsupportedFlags(flag: UInt32) throws {
        try withTempDir { dir in
            // An archive from the original layout (unsealed), with the flag on its only entry.
            let raw = buildRawArchive([RawEntry("x", [1, 2, 3], meta: #"{"size":3}"#, flags: flag)])
            let e = try #require(formatError { _ = try Self.open(raw, in: dir) })
            #expect(e.code == .unsupportedEntry)
            #expect(e.code.isCorruption)
            #expect(e.message.contains("\"x\""))
            // Sealed: set on an entry and resealed, so only the flag check can catch it.
            var (_, bytes) = try Self.sealed(in: dir)
            bytes.patchLE32(at: rawIndexFieldOffset(bytes, entry: 0) + 32, flag)
            reseal(&bytes)
            #expect(formatError { _ = try Self.open(bytes, in: dir) }?.code == .unsupportedEntry)
        }
    }

    @Test("External entries claiming more than 5 TiB are refused, and stat sums are checked")
    func externalLengthsAreBounded() throws {
        try withTempDir { dir in
            let huge = UInt64(1) << 63
            let raw = buildRawArchive([
                RawEntry("e1", [], meta: #"{"size":1,"is_external":true,"external_key":"k1"}"#, flags: 1, recordedLength: huge),
                RawEntry("e2", [], meta: #"{"size":1,"is_external":true,"external_key":"k2"}"#, flags: 1, recordedLength: huge),
            ])
            let e = try #require(formatError { _ = try Self.open(raw, in: dir) })
            #expect(e.code == .badIndexEntry)
            #expect(e.message.contains("5 TiB"))
            // At the limit, three entries still sum without overflow.
            let limit = DESFormat.maximumExternalLength
            let ok = buildRawArchive((1...3).map {
                RawEntry("e\($0)", [], meta: #"{"is_external":true,"external_key":"k"}"#, flags: 1, recordedLength: limit)
            })
            #expect(try Self.open(ok, in: dir).stats().totalFileBytes == 3 * limit)
        }
    }

    @Test("META parsing is linear: an object of 200,000 keys parses", .timeLimit(.minutes(3)))
    func metaParsingIsLinear() throws {
        var json = "{"
        for i in 0..<200_000 { json += (i == 0 ? "" : ",") + "\"k\(i)\":\(i)" }
        json += ",\"k5\":\"again\"}"
        let meta = try DESMetadata.parse(Array(json.utf8))
        #expect(meta.count == 200_000)
        #expect(meta["k5"] == .string("again"))  // a later duplicate replaces in place
        #expect(meta.keys[5] == "k5")
        #expect(meta["k199999"] == .int(199_999))
    }

    @Test("A file that shrinks under a positional reader is a typed error, never a signal")
    func shrinkingArchive() throws {
        try withTempDir { dir in
            let (path, bytes) = try Self.sealed(in: dir)
            let reader = try DESArchiveReader(path: path)  // positional by default
            #expect(reader.mode == .positional)
            #expect(truncate(path, 20) == 0)
            let e = try #require(formatError { _ = try reader.verify() })
            #expect(e.code == .truncated)
            #expect(e.message.contains("shrank"))
            #expect(formatError { _ = try reader.file(named: "dir/b.bin") }?.code == .truncated)
            #expect(formatError { _ = try reader.unpack(to: dir + "/out") }?.code == .truncated)
            // Opening it now is the usual structural error.
            #expect(formatError { _ = try DESArchiveReader(path: path) }?.code == .tooSmall)
            _ = bytes
        }
    }

    @Test("unpack checks every body: a corrupted entry stops it, exits non-zero, leaves no file for it")
    func unpackVerifies() throws {
        try withTempDir { dir in
            var (_, bytes) = try Self.sealed(in: dir)
            let entry = rawIndex(bytes)[1]
            bytes[Int(entry.dataOffset) + 10] ^= 0xFF  // DATA is not under the seal: the sha256 catches it
            let reader = try Self.open(bytes, in: dir)
            let out = dir + "/out"
            let e = try #require(formatError { _ = try reader.unpack(to: out) })
            #expect(e.code == .checksumMismatch)
            #expect(e.message.contains("dir/b.bin"))
            #expect(fileExists(out + "/a.txt"))  // entries before it were checked and written
            #expect(!fileExists(out + "/dir/b.bin"))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: out + "/dir")
            #expect(leftovers.isEmpty, "\(leftovers)")
            // --no-verify writes it as it is.
            let totals = try reader.unpack(to: dir + "/raw", verify: false)
            #expect(totals.files == 3)
            #expect(try readFile(dir + "/raw/dir/b.bin").count == 3000)
        }
    }

    @Test("Names are escaped for display: control, C1 and bidi characters and backslashes")
    func displayEscaping() {
        #expect(DESNameRules.escapedForDisplay("plain/name.txt") == "plain/name.txt")
        #expect(!DESNameRules.needsEscaping("café/ü"))
        #expect(DESNameRules.escapedForDisplay("a\nb") == "a\\nb")
        #expect(DESNameRules.escapedForDisplay("\u{1b}[31mred") == "\\x1b[31mred")
        #expect(DESNameRules.escapedForDisplay("x\u{202e}txt.exe") == "x\\u{202e}txt.exe")
        #expect(DESNameRules.escapedForDisplay("c1\u{85}") == "c1\\u{85}")
        #expect(DESNameRules.escapedForDisplay("back\\slash") == "back\\\\slash")
        #expect(DESNameRules.needsEscaping("tab\there"))
    }
}

extension SeededRNG {
    /// `count` pseudo-random bytes.
    func bytesArray(_ count: Int) -> [UInt8] {
        var copy = self
        return copy.bytes(count)
    }
}

extension Array where Element == UInt8 {
    mutating func patchLE32(at offset: Int, _ value: UInt32) {
        for k in 0..<4 { self[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(k))) }
    }
}
