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
        switch checksum {
        case .none: break
        case .hasher:
            meta.append(contentsOf: #","sha256":""#.utf8)
            hasher.finalizeHex(appendingTo: &meta)
            meta.append(UInt8(ascii: "\""))
        case .given(let hex):
            meta.append(contentsOf: #","sha256":"#.utf8)
            JSONWriter.write(string: hex, into: &meta)
        }
        meta.append(UInt8(ascii: "}"))
        let entry = DESIndexEntry(
            name: name, dataOffset: offset, dataLength: length, metaOffset: UInt64(metaOffset),
            metaLength: UInt64(meta.count - metaOffset), flags: flags)
        entries.append(entry)
        return entry
    }
}
