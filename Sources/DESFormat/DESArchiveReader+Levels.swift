extension DESArchiveReader {
    /// The archive's two-level index, its root parsed and checked (nil when it has none).
    public func levels() throws -> DESLevels? {
        let size = index.archiveSize
        guard let trailerAt = DESLevels.trailerOffset(archiveSize: size), trailerAt >= index.footer.indexStart + index.footer.indexLength else {
            return nil
        }
        // The trailer first, checked, then only the root it points to (never more than lies
        // between INDEX and the footer, whatever a damaged trailer says).
        let end = try read(offset: trailerAt, length: size - trailerAt, countAsBody: false)
        do {
            guard let trailer = try end.withUnsafeBytes({ try DESLevels.trailer(suffix: $0, footer: index.footer, archiveSize: size) }) else { return nil }
            let suffix = try read(offset: trailer.rootOffset, length: size - trailer.rootOffset, countAsBody: false)
            return try suffix.withUnsafeBytes { try DESLevels.parse(suffix: $0, footer: index.footer, archiveSize: size) }
        } catch let error as DESFormatError {
            throw error.at(path)
        }
    }

    /// Every entry of `levels`, leaf by leaf, each leaf checked.
    public func entries(of levels: DESLevels) throws -> [DESLevelEntry] {
        var out: [DESLevelEntry] = []
        out.reserveCapacity(levels.entryCount)
        for leaf in levels.leaves {
            let bytes = try read(offset: leaf.offset, length: leaf.length, countAsBody: false)
            do {
                out += try bytes.withUnsafeBytes { try levels.entries(of: leaf, bytes: $0, footer: index.footer) }
            } catch let error as DESFormatError {
                throw error.at(path)
            }
        }
        return out
    }

    /// Compares the two-level index with the flat index and META: the same entries, each with
    /// its sha256 and content type. Calls `problem` for each difference (at most a few).
    func checkLevels(_ problem: (String, String) -> Void) {
        let size = index.archiveSize
        guard let trailerAt = DESLevels.trailerOffset(archiveSize: size), trailerAt >= index.footer.indexStart + index.footer.indexLength else { return }
        do {
            let end = try read(offset: trailerAt, length: size - trailerAt, countAsBody: false)
            guard let trailer = try end.withUnsafeBytes({ try DESLevels.trailer(suffix: $0, footer: index.footer, archiveSize: size) }) else { return }
            let region = try read(offset: trailer.levelsStart, length: size - trailer.levelsStart, countAsBody: false)
            region.withUnsafeBytes { DESLevels.check(suffix: $0, index: index, meta: { try? self.meta(named: $0) }, problem) }
        } catch {
            problem("(two-level index)", (error as? DESFormatError)?.message ?? "\(error)")
        }
    }
}

extension DESLevels {
    /// Checks the two-level index held in `suffix` (the archive's last bytes, from at least where
    /// the leaves start): its trailer, root and every leaf, then every entry against the flat
    /// `index` (see ``compare(_:with:meta:_:)``). Calls `problem` for what is wrong; nothing
    /// when the archive has no two-level index.
    public static func check(suffix: UnsafeRawBufferPointer, index: DESIndex, meta: (String) -> DESMetadata?, _ problem: (String, String) -> Void) {
        let (footer, size) = (index.footer, index.archiveSize)
        do {
            guard let levels = try parse(suffix: suffix, footer: footer, archiveSize: size) else { return }
            let suffixStart = size - UInt64(suffix.count)
            guard levels.levelsStart >= suffixStart else {
                throw DESFormatError(.truncated, "the leaves of the two-level index start before the bytes read")
            }
            var all: [DESLevelEntry] = []
            all.reserveCapacity(levels.entryCount)
            for leaf in levels.leaves {
                let start = Int(leaf.offset - suffixStart)
                all += try levels.entries(of: leaf, bytes: UnsafeRawBufferPointer(rebasing: suffix[start..<(start + Int(leaf.length))]), footer: footer)
            }
            compare(all, with: index, meta: meta, problem)
        } catch {
            problem("(two-level index)", (error as? DESFormatError)?.message ?? "\(error)")
        }
    }

    /// Compares every entry of a two-level index (`all`, leaf after leaf) with the flat `index`:
    /// names rising strictly across leaves (no overlap, none twice), as many as the index holds,
    /// each placed as the index places it, with the sha256 its META records and, when `meta`
    /// gives META, its content type. Calls `problem` for each difference (at most a few).
    public static func compare(
        _ all: [DESLevelEntry], with index: DESIndex, meta: (String) -> DESMetadata?, _ problem: (String, String) -> Void
    ) {
        guard all.count == index.count - index.duplicateNames.count else {
            problem("(two-level index)", "holds \(all.count) entries, the index \(index.count)")
            return
        }
        if let i = all.indices.dropFirst().first(where: { !DESNameRules.precedes(all[$0 - 1].name, all[$0].name) }) {
            problem(all[i].name, "the two-level index's leaves overlap or repeat a name (after \(DESNameRules.quoted(all[i - 1].name)))")
            return
        }
        var reported = 0
        for entry in all where reported < 8 {
            guard let position = index.position(of: entry.name) else {
                problem(entry.name, "is in the two-level index but not in the index")
                reported += 1
                continue
            }
            let recorded = meta(entry.name)
            if index.entries[position] != entry.indexEntry {
                problem(entry.name, "the two-level index places it elsewhere than the index")
                reported += 1
            } else if entry.sha256Hex != (index.sha256(at: position) ?? recorded?["sha256"]?.stringValue?.lowercased()) {
                problem(entry.name, "the two-level index records another sha256 than its META")
                reported += 1
            } else if let recorded, recorded.contentType != entry.contentType {
                problem(entry.name, "the two-level index records another content type than its META")
                reported += 1
            }
        }
    }
}
