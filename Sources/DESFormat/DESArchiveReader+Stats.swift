/// Figures about an archive, computed from its footer and index.
public struct DESArchiveStats: Sendable, Codable, Equatable {
    /// Total size of the archive in bytes.
    public var archiveSize: UInt64
    /// Number of index entries.
    public var fileCount: Int
    /// Entries whose bodies live outside the archive.
    public var externalCount: Int
    /// Entries flagged deleted.
    public var deletedCount: Int
    /// Sum of all entries' sizes (external ones included).
    public var totalFileBytes: UInt64
    /// The largest entry's size.
    public var largestFile: UInt64
    /// Offset and length of the DATA region.
    public var dataStart: UInt64, dataLength: UInt64
    /// Offset and length of the META region.
    public var metaStart: UInt64, metaLength: UInt64
    /// Offset and length of the INDEX region.
    public var indexStart: UInt64, indexLength: UInt64
    /// Format version.
    public var version: Int
    /// Seal version (0 when the archive is unsealed).
    public var sealVersion: Int
}

extension DESArchiveReader {
    /// Figures about the archive (no file bodies are read). Sums are checked: a total
    /// that does not fit 64 bits (only a hostile index can claim one) is a typed error.
    public func stats() throws -> DESArchiveStats {
        var external = 0, deleted = 0
        var total: UInt64 = 0, largest: UInt64 = 0
        for e in index.entries {
            if e.isExternal { external += 1 }
            if e.flags.contains(.deleted) { deleted += 1 }
            let (sum, overflow) = total.addingReportingOverflow(e.dataLength)
            if overflow {
                throw DESFormatError(
                    .badIndexEntry, "the entries' sizes add up to more than 2^64 bytes (at \(DESNameRules.quoted(e.name)))", path: path)
            }
            total = sum
            largest = max(largest, e.dataLength)
        }
        let f = index.footer
        return DESArchiveStats(
            archiveSize: index.archiveSize, fileCount: index.count, externalCount: external, deletedCount: deleted,
            totalFileBytes: total, largestFile: largest, dataStart: f.dataStart, dataLength: f.dataLength,
            metaStart: f.metaStart, metaLength: f.metaLength, indexStart: f.indexStart, indexLength: f.indexLength,
            version: Int(DESFormat.version), sealVersion: Int(f.sealVersion))
    }
}
