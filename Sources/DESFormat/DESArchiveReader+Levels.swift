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
        let all: [DESLevelEntry]
        do {
            guard let found = try self.levels() else { return }
            all = try entries(of: found)
        } catch {
            problem("(two-level index)", (error as? DESFormatError)?.message ?? "\(error)")
            return
        }
        DESLevels.compare(all, with: index, meta: { try? self.meta(named: $0) }, problem)
    }
}

extension DESLevels {
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
        if let i = all.indices.dropFirst().first(where: { !DESLevelEntry.precedes(all[$0 - 1].name, all[$0].name) }) {
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
            } else if let recorded, DESArchiveWriter.contentType(in: recorded) != entry.contentType {
                problem(entry.name, "the two-level index records another content type than its META")
                reported += 1
            }
        }
    }
}
