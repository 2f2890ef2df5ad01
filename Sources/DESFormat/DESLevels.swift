/// The two-level index of a large sealed archive: leaves of at most about 32 KiB, each
/// sorted by name and carrying a CRC-32C, and a small root that points to them, between
/// INDEX and the footer (where readers of the flat index, the original's included, look
/// at nothing). A reader over ranged storage finds a name with the root (in the first
/// suffix read) and one leaf, instead of the whole index. `docs/format.md` gives every byte.
///
/// ```
/// … INDEX | leaf 0 | leaf 1 | … | leaf n-1 | ROOT | TRAILER (32) | FOOTER (72)
/// ```
public struct DESLevels: Sendable, Equatable {
    /// One leaf as the root describes it.
    public struct Leaf: Sendable, Equatable {
        /// The smallest name in the leaf (byte order).
        public var firstName: String
        /// Where the leaf starts in the archive.
        public var offset: UInt64
        /// Its length in bytes, its CRC included.
        public var length: UInt64
        /// How many entries it holds.
        public var count: Int
    }

    /// The trailer's size in bytes.
    public static let trailerSize = 32
    /// The trailer's magic, ASCII `DESLVLS1`.
    public static let trailerMagic: [UInt8] = Array("DESLVLS1".utf8)
    /// The size a leaf is cut at.
    public static let leafTarget = 32 * 1024
    /// Archives whose META and INDEX together are smaller than this get no two-level index: their
    /// whole tail comes with the first 64 KiB suffix read anyway.
    public static let threshold = 48 * 1024

    /// Where the leaves start.
    public var levelsStart: UInt64
    /// Where the root starts.
    public var rootOffset: UInt64
    /// The root's length.
    public var rootLength: UInt64
    /// The leaves, sorted by first name.
    public var leaves: [Leaf]
    /// Entries across all leaves.
    public var entryCount: Int

    /// The leaf that would hold `name` (nil when the name sorts before every leaf).
    public func leaf(for name: String) -> Leaf? {
        var (low, high) = (0, leaves.count)  // first leaf whose first name is greater than `name`
        while low < high {
            let mid = (low + high) / 2
            if DESNameRules.precedes(name, leaves[mid].firstName) { high = mid } else { low = mid + 1 }
        }
        return low == 0 ? nil : leaves[low - 1]
    }

    /// Where the trailer and root sit in an archive of `archiveSize` bytes: the range a reader
    /// needs in hand to parse the root, known once the trailer is read.
    public static func trailerOffset(archiveSize: UInt64) -> UInt64? {
        let tail = UInt64(DESFormat.footerSize + trailerSize)
        return archiveSize >= UInt64(DESFormat.headerSize) + tail ? archiveSize - tail : nil
    }

    /// What the trailer says, checked (its CRC, bound to the footer, and where it puts the root
    /// and the leaves).
    public struct Trailer: Sendable, Equatable {
        public var levelsStart: UInt64
        public var rootOffset: UInt64
        public var rootLength: UInt64
        public var rootCRC: UInt32
        public var entryCount: Int
    }

    /// The trailer, from the archive's last bytes (`suffix`, reaching the end of the archive and
    /// holding at least the trailer and the footer). Nil when there is no trailer (no magic);
    /// throws `badLevels` when it fails its CRC or points outside the space between INDEX and
    /// the footer — checked before anything it points to is read.
    public static func trailer(suffix: UnsafeRawBufferPointer, footer: DESFooter, archiveSize: UInt64) throws -> Trailer? {
        guard let trailerAt = trailerOffset(archiveSize: archiveSize), UInt64(suffix.count) >= archiveSize - trailerAt else { return nil }
        let suffixStart = archiveSize - UInt64(suffix.count)
        let t = UnsafeRawBufferPointer(rebasing: suffix[Int(trailerAt - suffixStart)...].prefix(trailerSize))
        guard t.prefix(8).elementsEqual(trailerMagic) else { return nil }
        var fields: [UInt8] = Array(t.prefix(28))
        fields.append(contentsOf: footer.fieldBytes)
        guard CRC32C.checksum(fields) == t.loadLE(UInt32.self, at: 28) else {
            throw DESFormatError(.badLevels, "the two-level index's trailer fails its CRC-32C")
        }
        let levelsStart = t.loadLE(UInt64.self, at: 8)
        let rootLength = UInt64(t.loadLE(UInt32.self, at: 16))
        let entryCount = Int(t.loadLE(UInt32.self, at: 24))
        let indexEnd = footer.indexStart + footer.indexLength
        guard rootLength <= trailerAt, levelsStart >= indexEnd, levelsStart <= trailerAt - rootLength, UInt64(entryCount) <= footer.fileCount else {
            throw DESFormatError(.badLevels, "the two-level index's trailer points outside the space between INDEX and the footer")
        }
        return Trailer(
            levelsStart: levelsStart, rootOffset: trailerAt - rootLength, rootLength: rootLength, rootCRC: t.loadLE(UInt32.self, at: 20),
            entryCount: entryCount)
    }

    /// Parses the root from the archive's last bytes (`suffix`, which must reach the end of the
    /// archive). Nil when the archive has no two-level index; throws `badLevels` when it has a
    /// damaged one, and `truncated` when `suffix` does not reach back to the root (the caller
    /// then reads from ``Trailer/rootOffset``).
    public static func parse(suffix: UnsafeRawBufferPointer, footer: DESFooter, archiveSize: UInt64) throws -> DESLevels? {
        guard let trailer = try trailer(suffix: suffix, footer: footer, archiveSize: archiveSize) else { return nil }
        let suffixStart = archiveSize - UInt64(suffix.count)
        let (levelsStart, rootLength, rootCRC, entryCount, rootOffset) = (trailer.levelsStart, trailer.rootLength, trailer.rootCRC, trailer.entryCount, trailer.rootOffset)
        let trailerAt = rootOffset + rootLength
        guard rootOffset >= suffixStart else {
            throw DESFormatError(.truncated, "the root of the two-level index starts at \(rootOffset), before the \(suffix.count) bytes read")
        }
        let root = UnsafeRawBufferPointer(rebasing: suffix[Int(rootOffset - suffixStart)..<Int(trailerAt - suffixStart)])
        guard CRC32C.update(0, root) == rootCRC else { throw DESFormatError(.badLevels, "the root of the two-level index fails its CRC-32C") }
        var reader = VarintReader(root, what: "root")
        let leafCount = try reader.count(max: entryCount)
        var leaves: [Leaf] = []
        leaves.reserveCapacity(leafCount)
        var offset = levelsStart
        var previous: [UInt8] = []
        var total = 0
        for _ in 0..<leafCount {
            let name = try reader.frontCoded(after: &previous)
            let length = try reader.varint()
            let count = try reader.count(max: entryCount - total)
            guard length >= 4, length <= rootOffset - offset, count > 0 else {
                throw DESFormatError(.badLevels, "a leaf of the two-level index lies outside its region or is empty")
            }
            if let last = leaves.last, !DESNameRules.precedes(last.firstName, name) {
                throw DESFormatError(.badLevels, "the root's leaves are not in name order")
            }
            leaves.append(Leaf(firstName: name, offset: offset, length: length, count: count))
            offset += length
            total += count
        }
        guard reader.isAtEnd, offset == rootOffset, total == entryCount else {
            throw DESFormatError(.badLevels, "the root of the two-level index does not account for its leaves and entries")
        }
        return DESLevels(levelsStart: levelsStart, rootOffset: rootOffset, rootLength: rootLength, leaves: leaves, entryCount: entryCount)
    }

    /// Decodes `leaf` (its bytes, CRC last), checking it against the root and the footer's regions.
    public func entries(of leaf: Leaf, bytes: UnsafeRawBufferPointer, footer: DESFooter) throws -> [DESLevelEntry] {
        guard UInt64(bytes.count) == leaf.length, bytes.count >= 4 else {
            throw DESFormatError(.badLevels, "a leaf of the two-level index is \(bytes.count) bytes, the root says \(leaf.length)")
        }
        let body = UnsafeRawBufferPointer(rebasing: bytes.prefix(bytes.count - 4))
        guard CRC32C.update(0, body) == bytes.loadLE(UInt32.self, at: bytes.count - 4) else {
            throw DESFormatError(.badLevels, "a leaf of the two-level index fails its CRC-32C")
        }
        var reader = VarintReader(body, what: "leaf")
        let count = try reader.count(max: leaf.count)
        let typeCount = try reader.count(max: count)
        var types: [String] = []
        for _ in 0..<typeCount { types.append(try reader.string()) }
        var out: [DESLevelEntry] = []
        out.reserveCapacity(count)
        var previous: [UInt8] = []
        let dataEnd = footer.dataStart + footer.dataLength
        let metaEnd = footer.metaStart + footer.metaLength
        for _ in 0..<count {
            let name = try reader.frontCoded(after: &previous)
            let dataOffset = try reader.varint(), dataLength = try reader.varint()
            let metaOffset = try reader.varint(), metaLength = try reader.varint()
            let rawFlags = try reader.varint()
            guard rawFlags <= UInt64(UInt32.max) else { throw reader.fail() }
            let flags = DESEntryFlags(rawValue: UInt32(rawFlags))
            let hasDigest = try reader.byte()
            guard hasDigest <= 1 else { throw DESFormatError(.badLevels, "a leaf entry's sha256 marker is neither 0 nor 1") }
            let digest: [UInt8]? = hasDigest == 0 ? nil : try reader.bytes(32)
            let type = try reader.varint()
            guard type <= UInt64(types.count) else { throw DESFormatError(.badLevels, "a leaf entry names a content type the leaf does not hold") }
            guard flags.isSubset(of: DESFormat.supportedFlags) else {
                throw DESFormatError(.unsupportedEntry, "\(DESNameRules.quoted(name)) has unsupported flags 0x\(String(flags.rawValue, radix: 16))")
            }
            let external = flags.contains(.external)
            guard external ? dataLength <= DESFormat.maximumExternalLength
                : dataOffset >= footer.dataStart && dataOffset <= dataEnd && dataLength <= dataEnd - dataOffset,
                metaOffset >= footer.metaStart, metaOffset <= metaEnd, metaLength <= metaEnd - metaOffset
            else {
                throw DESFormatError(.regionOutOfBounds, "\(DESNameRules.quoted(name)) in the two-level index points outside its region")
            }
            if let last = out.last, !DESNameRules.precedes(last.name, name) {
                throw DESFormatError(.badLevels, "a leaf of the two-level index is not in name order")
            }
            let entry = DESIndexEntry(name: name, dataOffset: dataOffset, dataLength: dataLength, metaOffset: metaOffset, metaLength: metaLength, flags: flags)
            out.append(DESLevelEntry(indexEntry: entry, sha256: digest, contentType: type == 0 ? nil : types[Int(type) - 1]))
        }
        guard reader.isAtEnd, out.count == leaf.count, out.first?.name == leaf.firstName else {
            throw DESFormatError(.badLevels, "a leaf of the two-level index does not match what the root says of it")
        }
        return out
    }
}

/// One entry of a leaf: enough to serve the file without reading its META.
public struct DESLevelEntry: Sendable, Equatable {
    /// The entry as the flat index has it.
    public var indexEntry: DESIndexEntry
    /// The SHA-256 of the body (32 bytes), as META records it.
    public var sha256: [UInt8]?
    /// The content type META records (`content_type`, `content-type`, `mime_type` or `mime`).
    public var contentType: String?

    /// An entry as a leaf holds it.
    public init(indexEntry: DESIndexEntry, sha256: [UInt8]?, contentType: String?) {
        self.indexEntry = indexEntry
        self.sha256 = sha256
        self.contentType = contentType
    }

    public var name: String { indexEntry.name }
    public var dataOffset: UInt64 { indexEntry.dataOffset }
    public var dataLength: UInt64 { indexEntry.dataLength }
    public var flags: DESEntryFlags { indexEntry.flags }

    /// The digest as lowercase hex.
    public var sha256Hex: String? { sha256.map(DESIndex.hex) }

}

/// Reads LEB128 varints and the region's other fields, every read bounds-checked.
struct VarintReader {
    let bytes: UnsafeRawBufferPointer
    let what: String
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer, what: String) {
        self.bytes = bytes
        self.what = what
    }

    var isAtEnd: Bool { position == bytes.count }

    func fail() -> DESFormatError { DESFormatError(.badLevels, "the two-level index's \(what) ends early or holds a malformed number") }

    mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw fail() }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, through: 63, by: 7) {
            let b = try byte()
            let bits = UInt64(b & 0x7F)
            guard shift < 63 || bits <= 1 else { throw fail() }
            value |= bits << UInt64(shift)
            if b & 0x80 == 0 { return value }
        }
        throw fail()
    }

    mutating func count(max: Int) throws -> Int {
        let v = try varint()
        guard v <= UInt64(Swift.max(0, max)) else { throw fail() }
        return Int(v)
    }

    mutating func bytes(_ n: Int) throws -> [UInt8] {
        guard n >= 0, n <= bytes.count - position else { throw fail() }
        defer { position += n }
        return Array(bytes[position..<(position + n)])
    }

    mutating func string() throws -> String {
        let raw = try bytes(try count(max: bytes.count - position))
        guard let s = String(validating: raw, as: UTF8.self) else { throw DESFormatError(.badLevels, "a string of the two-level index is not UTF-8") }
        return s
    }

    /// A name stored as (bytes shared with `previous`, the rest), which becomes the next `previous`.
    mutating func frontCoded(after previous: inout [UInt8]) throws -> String {
        let shared = try count(max: previous.count)
        let rest = try bytes(try count(max: bytes.count - position))
        previous = Array(previous.prefix(shared)) + rest
        guard !previous.isEmpty, let name = String(validating: previous, as: UTF8.self) else {
            throw DESFormatError(.badLevels, "a name in the two-level index is empty or not UTF-8")
        }
        return name
    }
}

/// Builds the two-level index of an archive's entries.
struct DESLevelsBuilder {
    struct Item {
        var entry: DESIndexEntry
        var sha256: [UInt8]?
        var contentType: String?
    }

    /// The LEVELS region (leaves, root, trailer) for `items`, to be written at `levelsStart`,
    /// just before a footer whose field bytes are `footerFields`.
    static func build(_ items: [Item], levelsStart: UInt64, footerFields: [UInt8]) -> [UInt8] {
        let sorted = items.sorted { DESNameRules.precedes($0.entry.name, $1.entry.name) }
        var region: [UInt8] = []
        var root: [UInt8] = []
        var leafCount = 0
        var previousFirst: [UInt8] = []
        var start = 0
        while start < sorted.count {
            // Grow a leaf until the next entry would pass the target (each leaf holds at least one).
            var end = start
            var size = 16
            var types: [String: Int] = [:]
            while end < sorted.count {
                let item = sorted[end]
                let cost = item.entry.name.utf8.count + 40 + (item.sha256 == nil ? 0 : 32)
                    + (item.contentType.map { types[$0] == nil ? $0.utf8.count + 2 : 0 } ?? 0)
                if end > start && size + cost > DESLevels.leafTarget { break }
                size += cost
                if let type = item.contentType, types[type] == nil { types[type] = types.count + 1 }
                end += 1
            }
            let leaf = encodeLeaf(sorted[start..<end])
            region += leaf
            let first = Array(sorted[start].entry.name.utf8)
            appendFrontCoded(first, after: previousFirst, into: &root)
            previousFirst = first
            appendVarint(UInt64(leaf.count), into: &root)
            appendVarint(UInt64(end - start), into: &root)
            leafCount += 1
            start = end
        }
        var rootBytes: [UInt8] = []
        appendVarint(UInt64(leafCount), into: &rootBytes)
        rootBytes += root
        region += rootBytes
        var trailer: [UInt8] = DESLevels.trailerMagic
        trailer.appendLE(levelsStart)
        trailer.appendLE(UInt32(rootBytes.count))
        trailer.appendLE(CRC32C.checksum(rootBytes))
        trailer.appendLE(UInt32(sorted.count))
        trailer.appendLE(CRC32C.checksum(trailer + footerFields))
        return region + trailer
    }

    private static func encodeLeaf(_ items: ArraySlice<Item>) -> [UInt8] {
        var types: [String] = []
        var typeIndex: [String: Int] = [:]
        for item in items { if let t = item.contentType, typeIndex[t] == nil { types.append(t); typeIndex[t] = types.count } }
        var out: [UInt8] = []
        appendVarint(UInt64(items.count), into: &out)
        appendVarint(UInt64(types.count), into: &out)
        for t in types {
            appendVarint(UInt64(t.utf8.count), into: &out)
            out += Array(t.utf8)
        }
        var previous: [UInt8] = []
        for item in items {
            let name = Array(item.entry.name.utf8)
            appendFrontCoded(name, after: previous, into: &out)
            previous = name
            for v in [item.entry.dataOffset, item.entry.dataLength, item.entry.metaOffset, item.entry.metaLength] { appendVarint(v, into: &out) }
            appendVarint(UInt64(item.entry.flags.rawValue), into: &out)
            if let digest = item.sha256, digest.count == 32 {
                out.append(1)
                out += digest
            } else {
                out.append(0)
            }
            appendVarint(UInt64(item.contentType.flatMap { typeIndex[$0] } ?? 0), into: &out)
        }
        out.appendLE(CRC32C.checksum(out))
        return out
    }

    private static func appendFrontCoded(_ name: [UInt8], after previous: [UInt8], into out: inout [UInt8]) {
        var shared = 0
        while shared < name.count, shared < previous.count, name[shared] == previous[shared] { shared += 1 }
        appendVarint(UInt64(shared), into: &out)
        appendVarint(UInt64(name.count - shared), into: &out)
        out += name[shared...]
    }

    static func appendVarint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }
}
