import Foundation
import Testing

import DESFormat

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: Temporary directories

/// Runs `body` with a fresh, empty directory that is removed afterwards (whatever happens).
func withTempDir<R>(_ body: (String) throws -> R) throws -> R {
    let dir = try makeTempDir()
    defer { removeTree(dir) }
    return try body(dir)
}

/// Creates a unique empty directory under the system temporary directory.
func makeTempDir() throws -> String {
    let base = FileManager.default.temporaryDirectory.path
    var template = Array((base + "/des-tests-XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { buf -> String? in
        guard let p = mkdtemp(buf.baseAddress!) else { return nil }
        return String(cString: p)
    }
    return try #require(made, "mkdtemp failed: errno \(errno)")
}

/// Removes a directory tree (symbolic links are removed, never followed).
func removeTree(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

// MARK: Files

func readFile(_ path: String) throws -> [UInt8] {
    let data = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
    return [UInt8](data)
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func fileExists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}

/// Byte-for-byte equality through `memcmp` (fast even in debug builds).
func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    if a.isEmpty { return true }
    return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in memcmp(pa.baseAddress!, pb.baseAddress!, a.count) == 0 } }
}

// MARK: Little-endian integers

extension Array where Element == UInt8 {
    mutating func putLE<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }

    func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var v: T = 0
        for i in (0..<(T.bitWidth / 8)).reversed() { v = v << 8 | T(self[offset + i]) }
        return v
    }

    mutating func patchLE64(at offset: Int, _ value: UInt64) {
        for i in 0..<8 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
}

// MARK: Raw archives, built and read by hand (independent of the library's writer and reader)

/// One entry of a hand-built archive.
struct RawEntry {
    var name: String
    var body: [UInt8]
    var meta: [UInt8]
    var flags: UInt32 = 0
    /// The index's data_length when it is not the body's length (external entries record the real size).
    var recordedLength: UInt64?

    init(_ name: String, _ body: [UInt8], meta: String, flags: UInt32 = 0, recordedLength: UInt64? = nil) {
        self.name = name
        self.body = body
        self.meta = Array(meta.utf8)
        self.flags = flags
        self.recordedLength = recordedLength
    }
}

/// The seven footer values in order.
struct RawFooter: Equatable {
    var dataStart, dataLength, metaStart, metaLength, indexStart, indexLength, fileCount: UInt64
    var values: [UInt64] { [dataStart, dataLength, metaStart, metaLength, indexStart, indexLength, fileCount] }
}

/// One index entry as decoded by hand.
struct RawIndexEntry: Equatable {
    var name: String
    var dataOffset, dataLength, metaOffset, metaLength: UInt64
    var flags: UInt32
}

/// The bytes of one index entry: name_len u16, name, data_offset, data_length, meta_offset, meta_length u64, flags u32.
func rawIndexEntryBytes(name: String, dataOffset: UInt64, dataLength: UInt64, metaOffset: UInt64, metaLength: UInt64, flags: UInt32)
    -> [UInt8]
{
    var out: [UInt8] = []
    let n = Array(name.utf8)
    out.putLE(UInt16(n.count))
    out += n
    out.putLE(dataOffset)
    out.putLE(dataLength)
    out.putLE(metaOffset)
    out.putLE(metaLength)
    out.putLE(flags)
    return out
}

/// Builds a DES v1 archive byte by byte, as the original Python writer lays it out.
/// External entries (flag 0x01) get data_offset 0 and no bytes in DATA.
func buildRawArchive(_ entries: [RawEntry]) -> [UInt8] {
    var out = Array("DESHEAD1".utf8) + [1] + [UInt8](repeating: 0, count: 7)
    var dataOffsets: [UInt64] = []
    for e in entries {
        if e.flags & 1 != 0 {
            dataOffsets.append(0)
        } else {
            dataOffsets.append(UInt64(out.count))
            out += e.body
        }
    }
    let dataEnd = UInt64(out.count)
    var metaOffsets: [UInt64] = []
    for e in entries {
        metaOffsets.append(UInt64(out.count))
        out += e.meta
    }
    let metaEnd = UInt64(out.count)
    for (i, e) in entries.enumerated() {
        out += rawIndexEntryBytes(
            name: e.name, dataOffset: dataOffsets[i], dataLength: e.recordedLength ?? UInt64(e.body.count), metaOffset: metaOffsets[i],
            metaLength: UInt64(e.meta.count), flags: e.flags)
    }
    let indexEnd = UInt64(out.count)
    out += Array("DESFOOT1".utf8) + [1] + [UInt8](repeating: 0, count: 7)
    for v in [16, dataEnd - 16, dataEnd, metaEnd - dataEnd, metaEnd, indexEnd - metaEnd, UInt64(entries.count)] {
        out.putLE(v)
    }
    return out
}

/// Offset of the footer's first u64 (data_start) in an archive of `size` bytes.
func footerValuesOffset(_ size: Int) -> Int { size - 72 + 16 }

/// Decodes the footer's seven values by hand.
func rawFooter(_ archive: [UInt8]) -> RawFooter {
    let o = footerValuesOffset(archive.count)
    let v = (0..<7).map { archive.readLE(UInt64.self, at: o + 8 * $0) }
    return RawFooter(
        dataStart: v[0], dataLength: v[1], metaStart: v[2], metaLength: v[3], indexStart: v[4], indexLength: v[5],
        fileCount: v[6])
}

/// Decodes the index by hand.
func rawIndex(_ archive: [UInt8]) -> [RawIndexEntry] {
    let f = rawFooter(archive)
    var pos = Int(f.indexStart)
    var out: [RawIndexEntry] = []
    for _ in 0..<f.fileCount {
        let n = Int(archive.readLE(UInt16.self, at: pos))
        let name = String(decoding: archive[(pos + 2)..<(pos + 2 + n)], as: UTF8.self)
        let fixed = pos + 2 + n
        out.append(
            RawIndexEntry(
                name: name, dataOffset: archive.readLE(UInt64.self, at: fixed),
                dataLength: archive.readLE(UInt64.self, at: fixed + 8), metaOffset: archive.readLE(UInt64.self, at: fixed + 16),
                metaLength: archive.readLE(UInt64.self, at: fixed + 24), flags: archive.readLE(UInt32.self, at: fixed + 32)))
        pos = fixed + 36
    }
    return out
}

/// Absolute offset of entry `i`'s data_offset field in the index.
func rawIndexFieldOffset(_ archive: [UInt8], entry i: Int) -> Int {
    var pos = Int(rawFooter(archive).indexStart)
    for _ in 0..<i { pos += 2 + Int(archive.readLE(UInt16.self, at: pos)) + 36 }
    return pos + 2 + Int(archive.readLE(UInt16.self, at: pos))
}

// MARK: Writing archives

/// Writer options with the checksum switched on or off.
func writerOptions(checksums: Bool = true, bufferSize: Int = 1 << 20) -> DESArchiveWriter.Options {
    var o = DESArchiveWriter.Options()
    o.checksums = checksums
    o.syncOnClose = false
    o.bufferSize = bufferSize
    return o
}

/// Writes an archive of `files` (name, body, metadata) at `path`.
@discardableResult
func writeArchive(
    at path: String, _ files: [(String, [UInt8], DESMetadata)], checksums: Bool = true
) throws -> DESArchiveSummary {
    let writer = try DESArchiveWriter(path: path, options: writerOptions(checksums: checksums))
    for (name, body, meta) in files { try writer.add(name: name, bytes: body, metadata: meta) }
    return try writer.close()
}

/// The error thrown by `body`, or nil (recorded as a test failure) when it does not throw a DESFormatError.
func formatError(_ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void)
    -> DESFormatError?
{
    do {
        try body()
        Issue.record("expected a DESFormatError, nothing was thrown. \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch let e as DESFormatError {
        return e
    } catch {
        Issue.record("expected a DESFormatError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

extension DESArchiveReader.Mode: CustomTestStringConvertible {
    public var testDescription: String { self == .mapped ? "mapped" : "positional" }
}


/// Clears an archive's seal (footer bytes 9–13), leaving an unsealed archive whose META still carries checksums.
func unseal(_ bytes: inout [UInt8]) {
    for i in (bytes.count - 72 + 9)..<(bytes.count - 72 + 14) { bytes[i] = 0 }
}

/// Recomputes an archive's seal after a deliberate change (as a forger who knows the format would).
func reseal(_ bytes: inout [UInt8]) {
    let f = rawFooter(bytes)
    let meta = Array(bytes[Int(f.metaStart)..<Int(f.metaStart + f.metaLength)])
    let index = Array(bytes[Int(f.indexStart)..<Int(f.indexStart + f.indexLength)])
    let fields = Array(bytes[(bytes.count - 56)...])
    let crc = CRC32C.portableChecksum(meta + index + fields)
    bytes[bytes.count - 72 + 9] = 1
    for k in 0..<4 { bytes[bytes.count - 72 + 10 + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
}
