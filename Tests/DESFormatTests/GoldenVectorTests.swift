import DESFormat
import DESTestSupport
import Testing

/// The byte-exact vectors of docs/format.md: what the original Python writer produces.
@Suite("Golden vectors")
struct GoldenVectorTests {
    static let header: [UInt8] = [0x44, 0x45, 0x53, 0x48, 0x45, 0x41, 0x44, 0x31, 1, 0, 0, 0, 0, 0, 0, 0]  // "DESHEAD1",1,0×7
    static let footerPrefix: [UInt8] = [0x44, 0x45, 0x53, 0x46, 0x4F, 0x4F, 0x54, 0x31, 1, 0, 0, 0, 0, 0, 0, 0]  // "DESFOOT1",1,0×7

    static func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

    /// The two-file vector: `a.txt` = "hello" with {"mime":"text/plain"}, then `b` = empty.
    static func writeTwoFileVector(at path: String, checksums: Bool) throws {
        let writer = try DESArchiveWriter(path: path, options: writerOptions(checksums: checksums))
        try writer.add(name: "a.txt", bytes: Array("hello".utf8), metadata: ["mime": "text/plain"])
        try writer.add(name: "b", bytes: [])
        try writer.close()
    }

    @Test("An empty archive is exactly 88 bytes, every byte as specified")
    func emptyArchive() throws {
        try withTempDir { dir in
            let path = dir + "/empty.des"
            let summary = try DESArchiveWriter(path: path, options: writerOptions(checksums: false)).close()
            let bytes = try readFile(path)
            var expected = Self.header + Self.footerPrefix
            for v: UInt64 in [16, 0, 16, 0, 16, 0, 0] { expected += Self.le64(v) }
            #expect(expected.count == 88)
            #expect(bytes.count == 88)
            #expect(bytes == expected)
            #expect(summary.archiveSize == 88)
            #expect(summary.fileCount == 0)

            // With checksums on an empty archive is the same but for the seal in footer bytes 9–15:
            // seal version 1, then the CRC-32C of the seven footer values (0xBFF19811, computed by an
            // independent implementation of the CRC), then two zero bytes.
            let path2 = dir + "/empty2.des"
            try DESArchiveWriter(path: path2, options: writerOptions(checksums: true)).close()
            var sealed = expected
            sealed.replaceSubrange((16 + 9)..<(16 + 16), with: [0x01, 0x11, 0x98, 0xF1, 0xBF, 0x00, 0x00])
            #expect(try readFile(path2) == sealed)
            #expect(try DESArchiveReader(path: path2).isSealed)
            #expect(try !DESArchiveReader(path: path).isSealed)

            for mode in [DESArchiveReader.Mode.mapped, .positional] {
                let reader = try DESArchiveReader(path: path, mode: mode)
                #expect(reader.entries.isEmpty)
                #expect(reader.index.footer == DESFooter(dataStart: 16, dataLength: 0, metaStart: 16, metaLength: 0, indexStart: 16, indexLength: 0, fileCount: 0))
                #expect(try reader.verify().isOK)
            }
        }
    }

    @Test("Two files without checksums give the original's 215 bytes")
    func twoFileVector() throws {
        try withTempDir { dir in
            let path = dir + "/two.des"
            try Self.writeTwoFileVector(at: path, checksums: false)
            let bytes = try readFile(path)
            #expect(bytes.count == 215)

            // Header.
            #expect(Array(bytes[0..<16]) == Self.header)
            // DATA: "hello" then nothing for b.
            #expect(Array(bytes[16..<21]) == Array("hello".utf8))
            // META, exactly.
            let expectedMeta = #"{"mime":"text/plain","size":5}{"size":0}"#
            #expect(String(decoding: bytes[21..<61], as: UTF8.self) == expectedMeta)
            #expect(Array(bytes[21..<61]) == Array(expectedMeta.utf8))

            // INDEX, built by hand.
            var expectedIndex: [UInt8] = []
            expectedIndex += [5, 0] + Array("a.txt".utf8)  // name_len u16 LE, name
            expectedIndex += Self.le64(16) + Self.le64(5) + Self.le64(21) + Self.le64(30) + [0, 0, 0, 0]
            expectedIndex += [1, 0] + Array("b".utf8)
            expectedIndex += Self.le64(21) + Self.le64(0) + Self.le64(51) + Self.le64(10) + [0, 0, 0, 0]
            #expect(expectedIndex.count == 82)
            #expect(Array(bytes[61..<143]) == expectedIndex)

            // Footer: 16 / 5 / 21 / 40 / 61 / 82 / 2.
            #expect(Array(bytes[143..<159]) == Self.footerPrefix)
            var expectedValues: [UInt8] = []
            for v: UInt64 in [16, 5, 21, 40, 61, 82, 2] { expectedValues += Self.le64(v) }
            #expect(Array(bytes[159..<215]) == expectedValues)

            // The whole file equals the hand-built archive of the same content.
            let raw = buildRawArchive([
                RawEntry("a.txt", Array("hello".utf8), meta: #"{"mime":"text/plain","size":5}"#),
                RawEntry("b", [], meta: #"{"size":0}"#),
            ])
            #expect(bytes == raw)
        }
    }

    @Test("The reader sees the two-file vector as written", arguments: [DESArchiveReader.Mode.mapped, .positional])
    func twoFileVectorReads(mode: DESArchiveReader.Mode) throws {
        try withTempDir { dir in
            let path = dir + "/two.des"
            try Self.writeTwoFileVector(at: path, checksums: false)
            let reader = try DESArchiveReader(path: path, mode: mode)
            #expect(reader.index.footer == DESFooter(dataStart: 16, dataLength: 5, metaStart: 21, metaLength: 40, indexStart: 61, indexLength: 82, fileCount: 2))
            #expect(reader.entries.map(\.name) == ["a.txt", "b"])
            #expect(reader.entries[0] == DESIndexEntry(name: "a.txt", dataOffset: 16, dataLength: 5, metaOffset: 21, metaLength: 30, flags: []))
            #expect(reader.entries[1] == DESIndexEntry(name: "b", dataOffset: 21, dataLength: 0, metaOffset: 51, metaLength: 10, flags: []))
            #expect(try reader.file(named: "a.txt") == Array("hello".utf8))
            #expect(try reader.file(named: "b") == [])
            #expect(try reader.meta(named: "a.txt") == ["mime": "text/plain", "size": 5])
            #expect(try reader.meta(named: "b") == ["size": 0])
            #expect(try reader.rawMeta(named: "a.txt") == Array(#"{"mime":"text/plain","size":5}"#.utf8))

            // No checksum was recorded: verify still checks bounds and META, and says so.
            let report = try reader.verify()
            #expect(report.isOK)
            #expect(report.entries == 2)
            #expect(report.checksummed == 0)
            #expect(report.withoutChecksum == 2)
        }
    }

    @Test("With checksums on (the default), META carries sha256 after size")
    func checksumVector() throws {
        try withTempDir { dir in
            let path = dir + "/sum.des"
            // Default options: checksums on.
            #expect(DESArchiveWriter.Options().checksums == true)
            let writer = try DESArchiveWriter(path: path)
            try writer.add(name: "a.txt", bytes: Array("hello".utf8), metadata: ["mime": "text/plain"])
            try writer.add(name: "b", bytes: [])
            try writer.close()

            let helloHash = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
            let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            // The reference implementation agrees with the published digests.
            #expect(referenceSHA256Hex(Array("hello".utf8)) == helloHash)
            #expect(referenceSHA256Hex([]) == emptyHash)

            let metaA = #"{"mime":"text/plain","size":5,"sha256":"\#(helloHash)"}"#
            let metaB = #"{"size":0,"sha256":"\#(emptyHash)"}"#
            let bytes = try readFile(path)
            let footer = rawFooter(bytes)
            #expect(footer.values == [16, 5, 21, UInt64(metaA.utf8.count + metaB.utf8.count), 21 + UInt64(metaA.utf8.count + metaB.utf8.count), 82, 2])
            #expect(String(decoding: bytes[21..<Int(footer.indexStart)], as: UTF8.self) == metaA + metaB)
            // Apart from META (and the offsets that follow it) the archive is the original's layout,
            // plus the seal: version 1 and CRC-32C 0x6392C308 (from an independent implementation).
            var raw = buildRawArchive([
                RawEntry("a.txt", Array("hello".utf8), meta: metaA),
                RawEntry("b", [], meta: metaB),
            ])
            raw.replaceSubrange((raw.count - 72 + 9)..<(raw.count - 72 + 16), with: [0x01, 0x08, 0xC3, 0x92, 0x63, 0x00, 0x00])
            #expect(bytes.count == 367)
            #expect(bytes == raw)

            let reader = try DESArchiveReader(path: path)
            #expect(try reader.meta(named: "a.txt")["sha256"] == .string(helloHash))
            #expect(try reader.meta(named: "a.txt").keys == ["mime", "size", "sha256"])
            let report = try reader.verify()
            #expect(report.isOK)
            #expect(report.checksummed == 2)
            #expect(report.withoutChecksum == 0)
            #expect(try reader.checkedFile(named: "a.txt") == Array("hello".utf8))
        }
    }

    @Test("Archives hand-built like the original's read back, including external entries")
    func handBuiltArchiveReads() throws {
        try withTempDir { dir in
            let path = dir + "/orig.des"
            let raw = buildRawArchive([
                RawEntry("x/1", [1, 2, 3], meta: #"{"k":"v","size":3}"#),
                RawEntry("ext", [], meta: #"{"size":1000,"is_external":true,"external_key":"b/k"}"#, flags: 1, recordedLength: 1000),
                RawEntry("x/2", [9], meta: #"{"size":1}"#),
            ])
            try writeFile(path, raw)
            for mode in [DESArchiveReader.Mode.mapped, .positional] {
                let reader = try DESArchiveReader(path: path, mode: mode)
                #expect(try reader.file(named: "x/1") == [1, 2, 3])
                #expect(try reader.file(named: "x/2") == [9])
                #expect(reader.entry(named: "ext")?.isExternal == true)
                #expect(reader.entry(named: "ext")?.dataLength == 1000)
                #expect(reader.entry(named: "ext")?.dataOffset == 0)
                #expect(formatError { _ = try reader.file(named: "ext") }?.code == .externalEntry)
                let report = try reader.verify()
                #expect(report.isOK)
                #expect(report.external == 1)
                #expect(report.withoutChecksum == 2)
                #expect(report.checksummed == 0)
            }
        }
    }
}
