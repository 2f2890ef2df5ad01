/// A compact, self-checking encoding of a parsed index for index caches (Redis): the object it
/// was read from (``DESIndex/origin``), the archive's size, its footer, its INDEX region as on
/// disk and the checksums META records, under a CRC-32C. A damaged value, one of an older
/// encoding, or one read from another object is refused (`badIndexEntry`), never half-read.
///
/// Layout: `DESC` · version 2 (u8) · CRC-32C of what follows (u32 LE) · origin length (u16 LE) ·
/// origin (UTF-8) · archive size (u64 LE) · footer (72 bytes) · INDEX bytes · 32 bytes of
/// SHA-256 an entry, or nothing when the index holds none.
extension DESIndex {
    static let cacheMagic: [UInt8] = Array("DESC".utf8)
    static let cacheVersion: UInt8 = 2

    /// The index in its cache encoding, with its ``origin``.
    public func cacheEncoding() -> [UInt8] {
        let originBytes = Array((origin ?? "").utf8.prefix(Int(UInt16.max)))
        var body: [UInt8] = []
        body.reserveCapacity(2 + originBytes.count + 8 + DESFormat.footerSize + Int(footer.indexLength) + digests.count)
        body.appendLE(UInt16(originBytes.count))
        body += originBytes
        body.appendLE(archiveSize)
        body += footer.bytes
        for entry in entries { entry.encode(into: &body) }
        body += digests
        var out = Self.cacheMagic + [Self.cacheVersion]
        out.appendLE(CRC32C.checksum(body))
        return out + body
    }

    /// Decodes and validates a cache encoding: the CRC, the origin (when `origin` is given, the
    /// value must have been read from that object), the footer against the size, every entry's bounds.
    public init(cacheEncoding bytes: [UInt8], origin expected: String? = nil) throws {
        let head = Self.cacheMagic.count + 5
        guard bytes.count >= head + 2, Array(bytes.prefix(4)) == Self.cacheMagic else {
            throw DESFormatError(.badIndexEntry, "not a cached DES index")
        }
        guard bytes[4] == Self.cacheVersion else {
            throw DESFormatError(.badIndexEntry, "a cached DES index of encoding \(bytes[4]) (this reader writes \(Self.cacheVersion))")
        }
        let body = Array(bytes[head...])
        let crc = bytes.withUnsafeBytes { $0.loadLE(UInt32.self, at: 5) }
        guard CRC32C.checksum(body) == crc else { throw DESFormatError(.badIndexEntry, "cached index fails its checksum") }
        let originLength = body.withUnsafeBytes { Int($0.loadLE(UInt16.self, at: 0)) }
        let at = 2 + originLength
        guard body.count >= at + 8 + DESFormat.footerSize else { throw DESFormatError(.badIndexEntry, "cached index is cut short") }
        let origin = String(decoding: body[2..<at], as: UTF8.self)
        if let expected, origin != expected {
            throw DESFormatError(.badIndexEntry, "cached index was read from \(origin), not \(expected)")
        }
        let (size, footer) = try body.withUnsafeBytes { raw -> (UInt64, DESFooter) in
            let size = raw.loadLE(UInt64.self, at: at)
            let footer = try DESFooter.decode(UnsafeRawBufferPointer(rebasing: raw[(at + 8)..<(at + 8 + DESFormat.footerSize)]))
            try footer.validate(archiveSize: size)
            return (size, footer)
        }
        let indexStart = at + 8 + DESFormat.footerSize
        guard UInt64(body.count - indexStart) >= footer.indexLength else {
            throw DESFormatError(.badIndexEntry, "cached index is cut short")
        }
        let indexEnd = indexStart + Int(footer.indexLength)
        var parsed = try body.withUnsafeBytes { raw in
            try DESIndex(indexBytes: UnsafeRawBufferPointer(rebasing: raw[indexStart..<indexEnd]), footer: footer, archiveSize: size)
        }
        let digests = Array(body[indexEnd...])
        guard digests.isEmpty || digests.count == parsed.entries.count * 32 else {
            throw DESFormatError(.badIndexEntry, "cached index holds \(digests.count) bytes of checksums for \(parsed.entries.count) entries")
        }
        parsed.digests = digests
        parsed.origin = origin.isEmpty ? nil : origin
        self = parsed
    }
}
