/// The 72-byte footer: where each region starts and how long it is, the file count,
/// and — in archives DES writes with checksums — the seal.
///
/// The seal lives in the 7 bytes after the footer's version byte, which the
/// original implementation writes as zeros and ignores when reading: byte 9 is
/// the seal version (0 = unsealed), bytes 10–13 a CRC-32C (little-endian) over
/// META, INDEX and the footer's seven values, bytes 14–15 zero.
public struct DESFooter: Sendable, Equatable {
    /// Offset of the DATA region (16 in every archive written so far).
    public var dataStart: UInt64
    /// Length of the DATA region.
    public var dataLength: UInt64
    /// Offset of the META region.
    public var metaStart: UInt64
    /// Length of the META region.
    public var metaLength: UInt64
    /// Offset of the INDEX region.
    public var indexStart: UInt64
    /// Length of the INDEX region.
    public var indexLength: UInt64
    /// Number of entries in the index.
    public var fileCount: UInt64
    /// The seal version: 0 for an unsealed archive (the original's), ``DESFormat/sealVersion`` when sealed.
    public var sealVersion: UInt8
    /// The CRC-32C the seal records (0 when unsealed).
    public var sealCRC: UInt32

    /// Whether the footer carries a seal.
    public var isSealed: Bool { sealVersion != 0 }

    /// Creates a footer from its seven values (unsealed unless a seal is given).
    public init(
        dataStart: UInt64, dataLength: UInt64, metaStart: UInt64, metaLength: UInt64,
        indexStart: UInt64, indexLength: UInt64, fileCount: UInt64, sealVersion: UInt8 = 0, sealCRC: UInt32 = 0
    ) {
        self.sealVersion = sealVersion
        self.sealCRC = sealCRC
        self.dataStart = dataStart
        self.dataLength = dataLength
        self.metaStart = metaStart
        self.metaLength = metaLength
        self.indexStart = indexStart
        self.indexLength = indexLength
        self.fileCount = fileCount
    }

    /// The footer's 72 bytes.
    public var bytes: [UInt8] {
        var out = DESFormat.footerMagic
        out.reserveCapacity(DESFormat.footerSize)
        out.append(DESFormat.version)
        out.append(sealVersion)
        out.appendLE(sealCRC)
        out.append(contentsOf: [0, 0])
        out.append(contentsOf: fieldBytes)
        return out
    }

    /// The seven values as stored (footer bytes 16–71): the part of the footer the seal covers.
    public var fieldBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(56)
        for v in [dataStart, dataLength, metaStart, metaLength, indexStart, indexLength, fileCount] {
            out.appendLE(v)
        }
        return out
    }

    /// Where a reader's tail read must start to load and check the index: META's start when the
    /// archive is sealed (the seal covers META), INDEX's start otherwise. Valid after ``validate(archiveSize:)``.
    public var tailStart: UInt64 { isSealed ? metaStart : indexStart }

    /// Decodes a footer, checking its magic and version.
    public static func decode(_ raw: UnsafeRawBufferPointer) throws -> DESFooter {
        guard raw.count == DESFormat.footerSize else {
            throw DESFormatError(.tooSmall, "footer must be \(DESFormat.footerSize) bytes, got \(raw.count)")
        }
        guard raw.prefix(8).elementsEqual(DESFormat.footerMagic) else {
            throw DESFormatError(
                .badFooterMagic,
                "bad footer magic \(printable(raw.prefix(8))) (expected \"DESFOOT1\"): the archive is truncated, unfinished or not a DES archive"
            )
        }
        guard raw[8] == DESFormat.version else {
            throw DESFormatError(.badFooterVersion, "unsupported footer version \(raw[8]) (this reader knows version 1)")
        }
        let seal = raw[9]
        let crc = raw.loadLE(UInt32.self, at: 10)
        if seal == 0 {
            guard raw[10..<16].allSatisfy({ $0 == 0 }) else {
                throw DESFormatError(
                    .badSeal,
                    "footer bytes 10–15 are not zero in an unsealed archive: the seal byte was cleared or the footer is damaged")
            }
        } else {
            guard seal == DESFormat.sealVersion else {
                throw DESFormatError(.badSeal, "unknown seal version \(seal) in the footer (this reader knows seal version \(DESFormat.sealVersion))")
            }
            guard raw[14] == 0, raw[15] == 0 else {
                throw DESFormatError(.badSeal, "footer bytes 14–15 are not zero in a sealed archive")
            }
        }
        return DESFooter(
            dataStart: raw.loadLE(UInt64.self, at: 16), dataLength: raw.loadLE(UInt64.self, at: 24),
            metaStart: raw.loadLE(UInt64.self, at: 32), metaLength: raw.loadLE(UInt64.self, at: 40),
            indexStart: raw.loadLE(UInt64.self, at: 48), indexLength: raw.loadLE(UInt64.self, at: 56),
            fileCount: raw.loadLE(UInt64.self, at: 64), sealVersion: seal, sealCRC: crc)
    }

    /// The CRC-32C a seal records: over META, then INDEX, then the footer's seven values.
    public static func sealCRC(meta: UnsafeRawBufferPointer, index: UnsafeRawBufferPointer, fields: [UInt8]) -> UInt32 {
        var crc = CRC32C.update(0, meta)
        crc = CRC32C.update(crc, index)
        return fields.withUnsafeBytes { CRC32C.update(crc, $0) }
    }

    /// Checks the seal against META and INDEX as read (does nothing for an unsealed footer).
    public func checkSeal(meta: UnsafeRawBufferPointer, index: UnsafeRawBufferPointer) throws {
        guard isSealed else { return }
        let got = Self.sealCRC(meta: meta, index: index, fields: fieldBytes)
        guard got == sealCRC else {
            throw DESFormatError(
                .sealMismatch,
                "seal check failed: META, INDEX and footer hash to CRC-32C \(hex32(got)), the seal says \(hex32(sealCRC)) (a name, META, flag or offset was changed)")
        }
    }

    /// Checks the footer against the archive's total size, in the order docs/format.md gives:
    /// file count against index length, each region start inside the file, then region order.
    public func validate(archiveSize: UInt64) throws {
        let footerStart = archiveSize - UInt64(DESFormat.footerSize)
        let (need, overflow) = fileCount.multipliedReportingOverflow(by: UInt64(DESFormat.indexEntryOverhead))
        if overflow || need > indexLength {
            throw DESFormatError(
                .badFileCount,
                "file count \(fileCount) needs at least \(overflow ? "more than 2^64" : String(need)) index bytes but the index is \(indexLength) bytes"
            )
        }
        let regions: [(String, UInt64, UInt64)] = [
            ("DATA", dataStart, dataLength), ("META", metaStart, metaLength), ("INDEX", indexStart, indexLength),
        ]
        for (name, start, _) in regions where start < UInt64(DESFormat.headerSize) || start > footerStart {
            throw DESFormatError(
                .regionOutOfBounds,
                "\(name) region starts at \(start), outside \(DESFormat.headerSize)…\(footerStart) (archive is \(archiveSize) bytes)"
            )
        }
        func end(_ start: UInt64, _ length: UInt64, _ name: String) throws -> UInt64 {
            let (e, o) = start.addingReportingOverflow(length)
            if o { throw DESFormatError(.regionOutOfBounds, "\(name) region length \(length) overflows") }
            return e
        }
        let dataEnd = try end(dataStart, dataLength, "DATA")
        let metaEnd = try end(metaStart, metaLength, "META")
        let indexEnd = try end(indexStart, indexLength, "INDEX")
        if dataEnd > metaStart {
            throw DESFormatError(.regionsOutOfOrder, "DATA region (\(dataStart)+\(dataLength)) runs past META start \(metaStart)")
        }
        if metaEnd > indexStart {
            throw DESFormatError(.regionsOutOfOrder, "META region (\(metaStart)+\(metaLength)) runs past INDEX start \(indexStart)")
        }
        if indexEnd > footerStart {
            throw DESFormatError(
                .regionsOutOfOrder, "INDEX region (\(indexStart)+\(indexLength)) runs past the footer at \(footerStart)")
        }
    }
}

/// `0x` and eight hex digits.
func hex32(_ v: UInt32) -> String {
    let digits = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}

/// Bytes shown as a quoted ASCII string with non-printables escaped.
func printable(_ bytes: some Sequence<UInt8>) -> String {
    var s = "\""
    for b in bytes {
        if b >= 0x20 && b < 0x7F && b != 0x22 && b != 0x5C {
            s.append(Character(Unicode.Scalar(b)))
        } else {
            s += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16)
        }
    }
    return s + "\""
}
