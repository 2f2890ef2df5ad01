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

// MARK: Seeded random numbers

/// SplitMix64: small, fast, and the same sequence on every platform for a given seed.
struct SeededRNG: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` pseudo-random bytes.
    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            var i = 0
            while i + 8 <= count {
                raw.storeBytes(of: next(), toByteOffset: i, as: UInt64.self)
                i += 8
            }
            if i < count {
                let last = next()
                for j in i..<count { raw[j] = UInt8(truncatingIfNeeded: last >> (8 * UInt64(j - i))) }
            }
        }
        return out
    }
}

// MARK: SHA-256 (a plain reference implementation, independent of the library's OpenSSL one)

func referenceSHA256Hex(_ message: [UInt8]) -> String {
    let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]
    var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    var msg = message
    let bitLength = UInt64(message.count) * 8
    msg.append(0x80)
    while msg.count % 64 != 56 { msg.append(0) }
    for i in (0..<8).reversed() { msg.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i)))) }
    func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
    var w = [UInt32](repeating: 0, count: 64)
    for chunk in stride(from: 0, to: msg.count, by: 64) {
        for i in 0..<16 {
            let b = chunk + 4 * i
            w[i] = UInt32(msg[b]) << 24 | UInt32(msg[b + 1]) << 16 | UInt32(msg[b + 2]) << 8 | UInt32(msg[b + 3])
        }
        for i in 16..<64 {
            let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
        for i in 0..<64 {
            let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
            let ch = (e & f) ^ (~e & g)
            let t1 = hh &+ s1 &+ ch &+ k[i] &+ w[i]
            let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
            let maj = (a & b) ^ (a & c) ^ (b & c)
            let t2 = s0 &+ maj
            (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
        }
        for (i, v) in [a, b, c, d, e, f, g, hh].enumerated() { h[i] = h[i] &+ v }
    }
    return h.map { v in
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 8 - s.count) + s
    }.joined()
}
