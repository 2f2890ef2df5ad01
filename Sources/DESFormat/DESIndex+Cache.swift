/// A compact, self-checking encoding of a parsed index for index caches (Redis): the archive's
/// size, its footer and its INDEX region as on disk, under a CRC-32C — a damaged or foreign value
/// is refused (`badCacheEntry`), never half-read.
///
/// Layout: `DESC` · version 1 (u8) · CRC-32C of what follows (u32 LE) · archive size (u64 LE) ·
/// footer (64 bytes) · INDEX bytes.
extension DESIndex {
    static let cacheMagic: [UInt8] = Array("DESC".utf8)

    /// The index in its cache encoding.
    public func cacheEncoding() -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(8 + DESFormat.footerSize + Int(footer.indexLength))
        body.appendLE(archiveSize)
        body += footer.bytes
        for entry in entries { entry.encode(into: &body) }
        var out = Self.cacheMagic + [1]
        out.appendLE(CRC32C.checksum(body))
        return out + body
    }

    /// Decodes and validates a cache encoding: the CRC, the footer against the size, every entry's bounds.
    public init(cacheEncoding bytes: [UInt8]) throws {
        let head = Self.cacheMagic.count + 5
        guard bytes.count >= head + 8 + DESFormat.footerSize, Array(bytes.prefix(4)) == Self.cacheMagic, bytes[4] == 1 else {
            throw DESFormatError(.badIndexEntry, "not a cached DES index")
        }
        let body = Array(bytes[head...])
        let crc = bytes.withUnsafeBytes { $0.loadLE(UInt32.self, at: 5) }
        guard CRC32C.checksum(body) == crc else { throw DESFormatError(.badIndexEntry, "cached index fails its checksum") }
        let (size, footer) = try body.withUnsafeBytes { raw -> (UInt64, DESFooter) in
            let size = raw.loadLE(UInt64.self, at: 0)
            let footer = try DESFooter.decode(UnsafeRawBufferPointer(rebasing: raw[8..<(8 + DESFormat.footerSize)]))
            try footer.validate(archiveSize: size)
            return (size, footer)
        }
        let parsed = try body.withUnsafeBytes { raw in
            try DESIndex(indexBytes: UnsafeRawBufferPointer(rebasing: raw[(8 + DESFormat.footerSize)...]), footer: footer, archiveSize: size)
        }
        self = parsed
    }
}
