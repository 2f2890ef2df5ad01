extension DESArchiveReader {
    /// The archive's two-level index, its root parsed and checked (nil when it has none).
    public func levels() throws -> DESLevels? {
        let size = index.archiveSize
        guard let trailerAt = DESLevels.trailerOffset(archiveSize: size), trailerAt >= index.footer.indexStart + index.footer.indexLength else {
            return nil
        }
        let end = try read(offset: trailerAt, length: size - trailerAt, countAsBody: false)
        guard let rootStart = end.withUnsafeBytes({ DESLevels.rootStart(suffix: $0, archiveSize: size) }), rootStart <= trailerAt else {
            return nil
        }
        let suffix = try read(offset: rootStart, length: size - rootStart, countAsBody: false)
        do {
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
        guard all.count == index.count - index.duplicateNames.count else {
            problem("(two-level index)", "holds \(all.count) entries, the index \(index.count)")
            return
        }
        var reported = 0
        for entry in all where reported < 8 {
            guard let position = index.position(of: entry.name) else {
                problem(entry.name, "is in the two-level index but not in the index")
                reported += 1
                continue
            }
            if index.entries[position] != entry.indexEntry {
                problem(entry.name, "the two-level index places it elsewhere than the index")
                reported += 1
            } else if entry.sha256Hex != index.sha256(at: position) {
                problem(entry.name, "the two-level index records another sha256 than its META")
                reported += 1
            } else if let meta = try? self.meta(named: entry.name), DESArchiveWriter.contentType(in: meta) != entry.contentType {
                problem(entry.name, "the two-level index records another content type than its META")
                reported += 1
            }
        }
    }
}
