extension DESArchiveWriter {
    /// Where an entry's `sha256` comes from.
    enum Checksum {
        /// No checksum (the original writer's META).
        case none
        /// The digest of the bytes just streamed through the writer's hasher.
        case hasher
        /// A digest the caller already has, as hex.
        case given(String)
    }

    /// Appends the entry's META and its index entry. META is written straight into the META buffer in the
    /// order docs/format.md fixes: the caller's keys in the caller's order, `size`, then DES's own keys.
    func record(
        name: String, offset: UInt64, length: UInt64, metadata: DESMetadata, externalKey: String? = nil,
        checksum: Checksum, flags: DESEntryFlags
    ) -> DESIndexEntry {
        let metaOffset = meta.count
        meta.append(UInt8(ascii: "{"))
        for (key, value) in metadata.pairs {
            JSONWriter.write(string: key, into: &meta)
            meta.append(UInt8(ascii: ":"))
            JSONWriter.write(value: value, into: &meta)
            meta.append(UInt8(ascii: ","))
        }
        meta.append(contentsOf: #""size":"#.utf8)
        JSONWriter.write(unsigned: length, into: &meta)
        if let externalKey {
            meta.append(contentsOf: #","is_external":true,"external_key":"#.utf8)
            JSONWriter.write(string: externalKey, into: &meta)
        }
        var digest: [UInt8]?
        switch checksum {
        case .none: break
        case .hasher:
            meta.append(contentsOf: #","sha256":""#.utf8)
            digest = hasher.finalizeHex(appendingTo: &meta)
            meta.append(UInt8(ascii: "\""))
        case .given(let hex):
            meta.append(contentsOf: #","sha256":"#.utf8)
            JSONWriter.write(string: hex, into: &meta)
            digest = Self.bytes(ofHex: Array(hex.utf8)[...])
        }
        meta.append(UInt8(ascii: "}"))
        levelItems.append((digest, metadata.contentType))
        let entry = DESIndexEntry(
            name: name, dataOffset: offset, dataLength: length, metaOffset: UInt64(metaOffset),
            metaLength: UInt64(meta.count - metaOffset), flags: flags)
        entries.append(entry)
        return entry
    }

    /// 32 bytes from 64 hex digits (nil for anything else).
    static func bytes(ofHex hex: ArraySlice<UInt8>) -> [UInt8]? {
        guard hex.count == 64 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(32)
        var i = hex.startIndex
        while i < hex.endIndex {
            guard let high = nibble(hex[i]), let low = nibble(hex[i + 1]) else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

}
