/// The checksums META records, kept with the index so that a reader checks a body without
/// reading its META again: read once, from the META region a sealed archive's tail holds.
extension DESIndex {
    /// `"sha256":"` — DES writes its own keys last, so a META it wrote ends with this, 64 hex
    /// digits and `"}`.
    private static let digestKey: [UInt8] = Array("\"sha256\":\"".utf8)

    /// 32 bytes an entry: the SHA-256 its META records, zeros where it records none.
    static func digests(of entries: [DESIndexEntry], meta: UnsafeRawBufferPointer, metaStart: UInt64) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: entries.count * 32)
        for (i, entry) in entries.enumerated() {
            let start = Int(entry.metaOffset - metaStart)
            let raw = UnsafeRawBufferPointer(rebasing: meta[start..<(start + Int(entry.metaLength))])
            guard let hex = recordedDigest(raw) else { continue }
            for j in 0..<32 {
                out[i * 32 + j] = (nibble(hex[2 * j]) << 4) | nibble(hex[2 * j + 1])
            }
        }
        return out
    }

    /// The 64 hex digits of META's `sha256`: from its end when META ends as DES writes it
    /// (`{…,"sha256":"<64 hex>"}`), else from the parsed object. Nil when there is none.
    private static func recordedDigest(_ raw: UnsafeRawBufferPointer) -> [UInt8]? {
        let tail = digestKey.count + 64 + 2
        if raw.count > tail {
            let keyAt = raw.count - tail
            let before = raw[keyAt - 1]
            if before == UInt8(ascii: ","), raw[raw.count - 2] == UInt8(ascii: "\""), raw[raw.count - 1] == UInt8(ascii: "}"),
                raw[keyAt..<(keyAt + digestKey.count)].elementsEqual(digestKey)
            {
                let hex = Array(raw[(keyAt + digestKey.count)..<(raw.count - 2)])
                if hex.allSatisfy(isHexDigit) { return hex }
            }
        }
        guard let meta = try? DESMetadata.parse(raw), let hex = try? meta.recordedSHA256(entry: "") else { return nil }
        return Array(hex.utf8)
    }

    private static func nibble(_ b: UInt8) -> UInt8 { b <= 0x39 ? b - 0x30 : b - 0x61 + 10 }

    /// Lowercase hex of bytes.
    static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
