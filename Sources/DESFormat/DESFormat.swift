/// Constants of the DES v1 container format.
///
/// A DES v1 archive is, in order: a 16-byte header, the DATA region (file
/// bodies back to back), the META region (one compact JSON object per file),
/// the INDEX region (one entry per file) and a 72-byte footer. All integers are
/// little-endian. `docs/format.md` describes every byte, and the seal that
/// archives written with checksums carry in the footer's reserved bytes.
public enum DESFormat {
    /// The header magic, `DESHEAD1`.
    public static let headerMagic: [UInt8] = Array("DESHEAD1".utf8)
    /// The footer magic, `DESFOOT1`.
    public static let footerMagic: [UInt8] = Array("DESFOOT1".utf8)
    /// The only format version this module reads and writes.
    public static let version: UInt8 = 1
    /// Size of the header: magic, version byte, 7 zero bytes.
    public static let headerSize = 16
    /// Size of the footer: magic, version byte, 7 zero bytes, seven `u64`.
    public static let footerSize = 72
    /// Smallest possible archive (an empty one): header plus footer.
    public static let minimumArchiveSize = headerSize + footerSize
    /// Fixed part of an index entry after the name: four `u64` and one `u32`.
    public static let indexEntryFixedSize = 36
    /// Bytes in an index entry besides the name: the `u16` name length plus the fixed part.
    public static let indexEntryOverhead = 2 + indexEntryFixedSize
    /// Longest name, in UTF-8 bytes (the `u16` length field).
    public static let maximumNameLength = Int(UInt16.max)
    /// Default gap (1 MiB) under which neighbouring ranges of a batch read are merged.
    public static let defaultMaxGap = 1 << 20
    /// The seal version DES writes in the footer's first reserved byte (0 = unsealed).
    public static let sealVersion: UInt8 = 1
    /// The largest size an external entry may claim: 5 TiB, S3's largest object.
    public static let maximumExternalLength: UInt64 = 5 << 40
    /// The flag bits a reader accepts: external and deleted. Compressed and encrypted
    /// are reserved (this reader can decode neither); any other bit is unknown.
    public static let supportedFlags: DESEntryFlags = [.external, .deleted]
}

/// The per-entry flag bits stored in the index.
public struct DESEntryFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    /// Creates flags from their stored value.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The body is stored outside the archive; `data_offset` is 0 and
    /// `data_length` is the real size. META carries `external_key`.
    public static let external = DESEntryFlags(rawValue: 0x01)
    /// The body is compressed (reserved by the original; not written by DES v1).
    public static let compressed = DESEntryFlags(rawValue: 0x02)
    /// The body is encrypted (reserved by the original; not written by DES v1).
    public static let encrypted = DESEntryFlags(rawValue: 0x04)
    /// The entry is marked deleted.
    public static let deleted = DESEntryFlags(rawValue: 0x08)

    /// Human-readable names of the set bits, e.g. `["external"]`.
    public var names: [String] {
        var out: [String] = []
        if contains(.external) { out.append("external") }
        if contains(.compressed) { out.append("compressed") }
        if contains(.encrypted) { out.append("encrypted") }
        if contains(.deleted) { out.append("deleted") }
        let unknown = rawValue & ~UInt32(0x0F)
        if unknown != 0 { out.append("0x" + String(unknown, radix: 16)) }
        return out
    }
}
