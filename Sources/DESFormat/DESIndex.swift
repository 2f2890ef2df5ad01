/// One entry of an archive's index.
public struct DESIndexEntry: Sendable, Equatable {
    /// The file's name within the archive.
    public var name: String
    /// Absolute offset of the body in the archive (0 for external entries).
    public var dataOffset: UInt64
    /// Length of the body (the real size for external entries).
    public var dataLength: UInt64
    /// Absolute offset of the entry's META JSON.
    public var metaOffset: UInt64
    /// Length of the entry's META JSON.
    public var metaLength: UInt64
    /// Flag bits.
    public var flags: DESEntryFlags

    /// Creates an entry.
    public init(
        name: String, dataOffset: UInt64, dataLength: UInt64, metaOffset: UInt64, metaLength: UInt64,
        flags: DESEntryFlags
    ) {
        self.name = name
        self.dataOffset = dataOffset
        self.dataLength = dataLength
        self.metaOffset = metaOffset
        self.metaLength = metaLength
        self.flags = flags
    }

    /// Whether the body is stored outside the archive.
    public var isExternal: Bool { flags.contains(.external) }

    /// Appends the entry's index bytes.
    func encode(into out: inout [UInt8]) {
        let nameBytes = Array(name.utf8)
        out.appendLE(UInt16(nameBytes.count))
        out.append(contentsOf: nameBytes)
        out.appendLE(dataOffset)
        out.appendLE(dataLength)
        out.appendLE(metaOffset)
        out.appendLE(metaLength)
        out.appendLE(flags.rawValue)
    }
}

/// A parsed, validated archive index: the footer plus every entry, with a hash
/// map from name to entry. This is what readers and index caches hold.
public struct DESIndex: Sendable {
    /// The archive's footer.
    public let footer: DESFooter
    /// The archive's total size in bytes.
    public let archiveSize: UInt64
    /// The entries, in index order.
    public let entries: [DESIndexEntry]
    /// Names that appear more than once (archives written by the original can have them; the last one wins).
    public let duplicateNames: [String]
    private let positions: NameTable
    /// The SHA-256 META records for each entry, 32 bytes an entry in index order (all zero where
    /// META records none); empty when META was not read (an unsealed archive's tail holds no META).
    var digests: [UInt8] = []
    /// The object this index was read from, as the reader that loaded it names it (storage
    /// location, key and version — ETag, or size and mtime): an index cache keeps it, and a
    /// reader uses a cached index only for the object it names. Nil when nobody said.
    public var origin: String?

    /// Whether the archive carries a seal (its footer, META and INDEX were checked against it).
    public var isSealed: Bool { footer.isSealed }

    /// Parses and validates the index from the archive's tail: the last `tail.count` bytes,
    /// starting at or before ``DESFooter/tailStart`` (META's start when sealed, so that the
    /// seal can be checked) and ending with the footer.
    ///
    /// - Parameters:
    ///   - tail: the end of the archive, footer included.
    ///   - footer: the archive's footer, already decoded and validated against `archiveSize`.
    ///   - archiveSize: the archive's total size.
    ///   - digests: whether to gather each entry's recorded SHA-256 from META (``sha256(at:)``).
    public init(tail: UnsafeRawBufferPointer, footer: DESFooter, archiveSize: UInt64, digests: Bool = true) throws {
        let tailOffset = archiveSize - UInt64(tail.count)
        guard tail.count >= DESFormat.footerSize, tailOffset <= footer.tailStart else {
            throw DESFormatError(
                .badIndexEntry, "the tail read (\(tail.count) bytes) does not reach back to offset \(footer.tailStart)")
        }
        func slice(_ start: UInt64, _ length: UInt64) -> UnsafeRawBufferPointer {
            let s = Int(start - tailOffset)
            return UnsafeRawBufferPointer(rebasing: tail[s..<(s + Int(length))])
        }
        let index = slice(footer.indexStart, footer.indexLength)
        // A sealed archive's tail starts at META (the seal covers it); an unsealed one's at INDEX.
        let meta = footer.isSealed ? slice(footer.metaStart, footer.metaLength) : nil
        if let meta { try footer.checkSeal(meta: meta, index: index) }
        try self.init(indexBytes: index, footer: footer, archiveSize: archiveSize)
        if let meta, digests { self.digests = Self.digests(of: entries, meta: meta, metaStart: footer.metaStart) }
    }

    /// Parses and validates an index region (the seal, if any, must already have been checked).
    init(indexBytes: UnsafeRawBufferPointer, footer: DESFooter, archiveSize: UInt64) throws {
        guard UInt64(indexBytes.count) == footer.indexLength else {
            throw DESFormatError(.badIndexEntry, "index region is \(indexBytes.count) bytes, footer says \(footer.indexLength)")
        }
        self.footer = footer
        self.archiveSize = archiveSize
        let count = Int(footer.fileCount)
        var entries: [DESIndexEntry] = []
        entries.reserveCapacity(count)
        var positions = NameTable(capacity: count)
        var duplicates: [String] = []
        let dataRange = footer.dataStart...(footer.dataStart + footer.dataLength)
        let metaRange = footer.metaStart...(footer.metaStart + footer.metaLength)
        var pos = 0
        for i in 0..<count {
            guard pos + 2 <= indexBytes.count else {
                throw DESFormatError(.badIndexEntry, "index entry \(i) starts past the end of the index region")
            }
            let nameLength = Int(indexBytes.loadLE(UInt16.self, at: pos))
            let fixed = pos + 2 + nameLength
            guard fixed + DESFormat.indexEntryFixedSize <= indexBytes.count else {
                throw DESFormatError(
                    .badIndexEntry,
                    "index entry \(i) (name length \(nameLength)) runs past the end of the index region")
            }
            guard
                let name = String(
                    validating: UnsafeRawBufferPointer(rebasing: indexBytes[(pos + 2)..<fixed]), as: UTF8.self)
            else {
                throw DESFormatError(.badIndexEntry, "index entry \(i): name is not valid UTF-8")
            }
            let entry = DESIndexEntry(
                name: name,
                dataOffset: indexBytes.loadLE(UInt64.self, at: fixed),
                dataLength: indexBytes.loadLE(UInt64.self, at: fixed + 8),
                metaOffset: indexBytes.loadLE(UInt64.self, at: fixed + 16),
                metaLength: indexBytes.loadLE(UInt64.self, at: fixed + 24),
                flags: DESEntryFlags(rawValue: indexBytes.loadLE(UInt32.self, at: fixed + 32)))
            try Self.checkFlags(entry)
            if entry.isExternal {
                if entry.dataLength > DESFormat.maximumExternalLength {
                    throw DESFormatError(
                        .badIndexEntry,
                        "entry \(DESNameRules.quoted(name)): external size \(entry.dataLength) exceeds the limit of \(DESFormat.maximumExternalLength) bytes (5 TiB)")
                }
            } else {
                let (end, overflow) = entry.dataOffset.addingReportingOverflow(entry.dataLength)
                if overflow || !dataRange.contains(entry.dataOffset) || !dataRange.contains(end) {
                    throw DESFormatError(
                        .regionOutOfBounds,
                        "entry \(DESNameRules.quoted(name)): data \(entry.dataOffset)+\(entry.dataLength) lies outside the DATA region \(footer.dataStart)+\(footer.dataLength)"
                    )
                }
            }
            let (metaEnd, metaOverflow) = entry.metaOffset.addingReportingOverflow(entry.metaLength)
            if metaOverflow || !metaRange.contains(entry.metaOffset) || !metaRange.contains(metaEnd) {
                throw DESFormatError(
                    .regionOutOfBounds,
                    "entry \(DESNameRules.quoted(name)): meta \(entry.metaOffset)+\(entry.metaLength) lies outside the META region \(footer.metaStart)+\(footer.metaLength)"
                )
            }
            if positions.insert(name, value: i, replace: true) != nil { duplicates.append(name) }
            entries.append(entry)
            pos = fixed + DESFormat.indexEntryFixedSize
        }
        guard pos == indexBytes.count else {
            throw DESFormatError(
                .badIndexEntry,
                "index region has \(indexBytes.count - pos) bytes after its \(count) entries (count or lengths are wrong)")
        }
        self.entries = entries
        self.positions = positions
        self.duplicateNames = duplicates
    }

    /// Refuses flags this reader cannot honour: compressed and encrypted (reserved) and unknown bits.
    private static func checkFlags(_ entry: DESIndexEntry) throws {
        let unsupported = entry.flags.subtracting(DESFormat.supportedFlags)
        guard unsupported.isEmpty else {
            throw DESFormatError(
                .unsupportedEntry,
                "entry \(DESNameRules.quoted(entry.name)) has flags \(unsupported.names.joined(separator: ", ")) (0x\(String(entry.flags.rawValue, radix: 16))), which this reader does not support")
        }
    }

    /// The SHA-256 META records for the entry at `position` (64 lowercase hex digits), nil when
    /// the index does not know it (an unsealed archive, or META with no `sha256`).
    public func sha256(at position: Int) -> String? {
        guard digests.count == entries.count * 32, position >= 0, position < entries.count else { return nil }
        let digest = digests[(position * 32)..<(position * 32 + 32)]
        guard digest.contains(where: { $0 != 0 }) else { return nil }
        return Self.hex(digest)
    }

    /// Whether the index holds the recorded SHA-256 of its entries (it was read with META: sealed).
    public var knowsDigests: Bool { !digests.isEmpty || entries.isEmpty }

    /// The entry with this name, if any.
    @inline(__always)
    public func entry(named name: String) -> DESIndexEntry? {
        guard let i = positions.value(for: name) else { return nil }
        return entries[i]
    }

    /// The position in ``entries`` of the entry with this name, if any.
    @inline(__always)
    public func position(of name: String) -> Int? { positions.value(for: name) }

    /// Whether an entry has this name.
    public func contains(_ name: String) -> Bool { positions.value(for: name) != nil }

    /// Number of entries (including shadowed duplicates).
    public var count: Int { entries.count }

    /// Reads and validates the header, footer and index of a whole archive held in memory.
    public static func parse(archive: UnsafeRawBufferPointer, digests: Bool = true) throws -> DESIndex {
        let size = UInt64(archive.count)
        try validateHeader(UnsafeRawBufferPointer(rebasing: archive.prefix(min(archive.count, DESFormat.headerSize))), archiveSize: size)
        let footer = try DESFooter.decode(UnsafeRawBufferPointer(rebasing: archive.suffix(DESFormat.footerSize)))
        try footer.validate(archiveSize: size)
        return try DESIndex(
            tail: UnsafeRawBufferPointer(rebasing: archive[Int(footer.tailStart)...]), footer: footer, archiveSize: size, digests: digests)
    }

    /// Checks the archive size and the 16-byte header (the first checks of docs/format.md).
    public static func validateHeader(_ header: UnsafeRawBufferPointer, archiveSize: UInt64) throws {
        guard archiveSize >= UInt64(DESFormat.minimumArchiveSize) else {
            throw DESFormatError(
                .tooSmall,
                "archive is \(archiveSize) bytes; a DES archive is at least \(DESFormat.minimumArchiveSize) (header + footer)")
        }
        guard header.count >= DESFormat.headerSize, header.prefix(8).elementsEqual(DESFormat.headerMagic) else {
            throw DESFormatError(
                .badHeaderMagic,
                "bad header magic \(printable(header.prefix(8))) (expected \"DESHEAD1\"): not a DES archive")
        }
        guard header[8] == DESFormat.version else {
            throw DESFormatError(.badHeaderVersion, "unsupported header version \(header[8]) (this reader knows version 1)")
        }
    }
}
