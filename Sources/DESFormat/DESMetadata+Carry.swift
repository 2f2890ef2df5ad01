/// An entry's META record taken apart for copying the entry into another archive: the caller's
/// metadata (what a writer is given again) and DES's own keys (which the writer writes itself).
public struct DESCarriedMetadata: Sendable, Equatable {
    /// The caller's keys, in their order, without `size`, `sha256`, `is_external` and `external_key`.
    public var metadata: DESMetadata
    /// The recorded `sha256` as META holds it (nil when there is none).
    public var sha256: String?
    /// The recorded `external_key` (nil when there is none).
    public var externalKey: String?

    /// Splits a META record. A record of DES's own keys only, as DES writes it
    /// (`{"size":N}` or `{"size":N,"sha256":"<64 hex>"}`), is read without building a JSON
    /// object — the common record of a catalog that copies no columns into META; any other is
    /// parsed. Throws ``DESFormatError`` when the record is not a JSON object.
    public init(record raw: UnsafeRawBufferPointer) throws {
        if let digest = Self.ownKeysOnly(raw) {
            self.metadata = DESMetadata()
            self.sha256 = digest
            self.externalKey = nil
            return
        }
        var meta = try DESMetadata.parse(raw)
        self.sha256 = meta["sha256"]?.stringValue?.lowercased()  // as readers compare it
        self.externalKey = meta["external_key"]?.stringValue
        for key in DESArchiveWriter.reservedMetadataKeys { meta[key] = nil }
        self.metadata = meta
    }

    private static let sizeKey = Array(#"{"size":"#.utf8)
    private static let digestKey = Array(#","sha256":""#.utf8)

    /// The digest ("" for none) when `raw` is exactly `{"size":DIGITS}` or
    /// `{"size":DIGITS,"sha256":"<64 hex>"}`; nil for anything else.
    private static func ownKeysOnly(_ raw: UnsafeRawBufferPointer) -> String?? {
        guard raw.count > sizeKey.count + 1, raw.starts(with: sizeKey), raw[raw.count - 1] == UInt8(ascii: "}") else { return nil }
        var i = sizeKey.count
        let digitsStart = i
        while i < raw.count, raw[i] >= 0x30, raw[i] <= 0x39 { i += 1 }
        // 1 to 20 digits, no leading zero but for "0" itself: an integer JSON reads as one.
        let digits = i - digitsStart
        guard digits >= 1, digits <= 20, digits == 1 || raw[digitsStart] != 0x30 else { return nil }
        if i == raw.count - 1 { return .some(nil) }
        guard raw.count - i == digestKey.count + 64 + 2,
            raw[i..<(i + digestKey.count)].elementsEqual(digestKey),
            raw[raw.count - 2] == UInt8(ascii: "\"")
        else { return nil }
        let hex = raw[(i + digestKey.count)..<(raw.count - 2)]
        guard hex.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else { return nil }
        return .some(String(decoding: hex, as: UTF8.self))
    }
}
