import DESFormat
import DESKit
import DESNaming
import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension Retirer {
    /// A row whose body may go: the version seen before its bytes were compared (nil: the body
    /// was already gone, as after a crash between a delete and its mark), and its size.
    struct Ready {
        var row: PackedRow
        var version: BodyVersion?
        var bytes: Int
    }

    /// Checks a batch of packed rows and retires those that pass every check.
    func retireBatch(
        _ rows: [PackedRow], of source: Source, lettered: Set<String>, needed: Set<String>, containers: inout ContainerChain,
        totals: inout Totals
    ) async throws {
        let name = source.connector.name
        var skipped: [String: Int] = [:]
        func skip(_ reason: String, _ count: Int = 1) { if count > 0 { skipped[reason, default: 0] += count } }
        defer {
            for (reason, count) in skipped {
                if totals.passes == 0 { totals.skipped[reason, default: 0] += count }
                metrics.skipped(reason, count: count)
            }
        }
        // 1–2: each row's uploaded container, old enough.
        let reader = StorageArchiveReader(storage: storage, cache: cache)
        var byContainer: [String: [PackedRow]] = [:]
        var refreshed = false
        for row in rows {
            if lettered.contains(row.rowID) {
                skip("dead_lettered")
                continue
            }
            var record = await container(of: row, in: containers, reader: reader, evenUnrecorded: refreshed)
            if record == nil, !refreshed {
                // Packed (or compacted) after this pass listed the containers: list them again, once a batch.
                containers = try await uploadedContainers()
                refreshed = true
                record = await container(of: row, in: containers, reader: reader, evenUnrecorded: true)
            }
            guard let record else {
                skip("container_not_uploaded")
                continue
            }
            // Only a container where lookups by name find the file: of its name's day and shard, and
            // whose recorded names include it.
            guard let (day, shard) = ContainerLookup.dayShard(of: row.desName, shardBits: config.shardBits), record.day == day, record.shard == shard,
                record.nameRange?.mayHold(row.desName) ?? true
            else {
                skip("container_mismatch")
                continue
            }
            guard (record.ageSeconds ?? 0) >= source.delaySeconds else {
                skip("too_young")
                continue
            }
            byContainer[record.key, default: []].append(row)
        }
        // 3–4: the packed bytes against META's sha256, then the body against the packed bytes.
        var ready: [Ready] = []
        var letters: [DeadLetter] = []
        /// Keeps a row's body for good: a dead letter with `message`, counted under `reason`.
        func keep(_ row: PackedRow, _ reason: String, _ message: String) {
            letters.append(letter(row, of: name, message))
            skip(reason)
        }
        for (key, group) in byContainer.sorted(by: { $0.key < $1.key }) {
            let index: DESIndex
            do {
                let etag = containers.uploaded[key]?.etag
                index = try await retry.run { try await reader.index(key: key, etag: etag) }
            } catch {
                logger.error("a container's index cannot be read; its bodies are kept", metadata: ["container": "\(key)", "error": "\(error)"])
                skip("container_unreadable", group.count)
                continue
            }
            guard index.isSealed else {
                skip("no_checksum", group.count)
                continue
            }
            // The group's packed copies in one read of the index and of neighbouring ranges; when
            // one of them is bad, row by row, so that each bad copy is named.
            let copies: [[UInt8]?]? = try? await retry.run { try await reader.files(named: group.map(\.desName), key: key) }
            for (position, row) in group.enumerated() {
                let packed: [UInt8]?
                do {
                    if let copies {
                        packed = copies[position]
                    } else {
                        packed = try await retry.run { try await reader.file(named: row.desName, key: key) }
                    }
                } catch {
                    // The body may be the only good copy left: kept, and an operator told.
                    keep(row, "packed_copy_bad", "the packed copy in \(key) does not read back (\(error)); the body is kept")
                    continue
                }
                guard let packed else {
                    skip("not_in_container")  // des check reports the row
                    continue
                }
                do {
                    guard let version = try await source.fetcher.version(of: row.body) else {
                        ready.append(Ready(row: row, version: nil, bytes: packed.count))
                        continue
                    }
                    guard version.size == UInt64(packed.count), try await source.fetcher.bytes(of: row.body) == packed else {
                        keep(
                            row, "body_changed",
                            "the body at \(row.body) changed since it was packed (now \(version.size) bytes, packed "
                                + "\(packed.count), or the same size with other bytes); it is kept")
                        continue
                    }
                    ready.append(Ready(row: row, version: version, bytes: packed.count))
                } catch let error as DESKitError where error.code == .notFound {
                    ready.append(Ready(row: row, version: nil, bytes: packed.count))
                } catch let error as DESKitError where error.code == .invalidData {
                    // Not a regular file beneath the root (a directory, a FIFO, a link leading out): for good.
                    keep(row, "not_a_regular_body", "the body at \(row.body) cannot be retired: \(error.message); it is kept")
                } catch {
                    logger.warning("a body cannot be checked; kept for now", metadata: ["source": "\(name)", "row": "\(row.rowID)", "error": "\(error)"])
                    skip("body_unreadable")
                }
            }
        }
        // The other rows of the source listing the bodies still in the running (a catalog may list
        // one body twice), read only for those: a body a row not yet packed still needs is kept —
        // deleted, that row could never be packed — and one that another row's retire deleted is
        // retired, not gone missing.
        let sharing = ready.isEmpty ? [:] : try await retry.run { [ready] in
            try await source.connector.rowsSharingBodies(keys: ready.map(\.row.body.key), excluding: Set(rows.map(\.rowID)))
        }
        ready.removeAll { item in
            guard sharing[item.row.body.key]?.neededByUnpacked == true else { return false }
            skip("body_needed_by_unpacked_row")
            return true
        }
        // A body already gone counts as retired only when this worker was deleting it (its intent
        // is recorded): otherwise it vanished by other means — a volume not mounted, a wrong root —
        // and the row stays packed, dead-lettered, so that nothing is marked deleted that is not.
        let missing = ready.filter { $0.version == nil }.map(\.row.rowID)
        var intended = missing.isEmpty ? [] : try await retry.run { try await metadata.retireIntents(source: name, rowIDs: missing) }
        // Deleted by the retire of another row listing the same body: ours too.
        for item in ready where item.version == nil && sharing[item.row.body.key]?.retiredByAnother == true { intended.insert(item.row.rowID) }
        for item in ready where item.version == nil && !intended.contains(item.row.rowID) {
            keep(
                item.row, "body_missing",
                "the body at \(item.row.body) is missing, and des retire did not delete it (is the volume mounted, bodies.root right?); "
                    + "the row stays packed")
        }
        ready.removeAll { $0.version == nil && !intended.contains($0.row.rowID) }
        if !letters.isEmpty {
            if !config.dryRun {
                let batch = letters
                try await retry.run { try await metadata.addDeadLetters(batch) }
                logger.warning("bodies kept and dead-lettered", metadata: ["source": "\(name)", "count": "\(batch.count)", "first": "\(batch[0].reason)"])
            }
        }
        // 5: the version again, just before the delete.
        var deleting: [Ready] = [], gone: [Ready] = []
        for item in ready {
            guard let before = item.version else {
                gone.append(item)
                continue
            }
            let now = try? await source.fetcher.version(of: item.row.body)
            if now == before {
                deleting.append(item)
            } else if now == nil {
                gone.append(item)
            } else {
                skip("body_changing")
            }
        }
        // 6: the file each body reaches, however its key spells it (`./`, `//`, `..`, links): kept
        // when a row not yet packed reaches it (`needed`, resolved for this pass), or a row of this
        // batch that keeps its body does.
        let leaving = Set((deleting + gone).map(\.row.rowID))
        let kept = deleting.isEmpty ? [] : rows.filter { !leaving.contains($0.rowID) }
        let keptKeys = Set(kept.map(\.body.key))
        var keptFiles: Set<String> = []
        if source.fetcher.locationsMayAlias {
            for row in kept { if let file = try? await source.fetcher.identity(of: row.body) { keptFiles.insert(file) } }
        }
        var files: [String: String] = [:]  // row id -> the file its body reaches
        for item in deleting { files[item.row.rowID] = try? await source.fetcher.identity(of: item.row.body) }
        deleting = deleting.filter { item in
            let file = files[item.row.rowID]
            if let file, needed.contains(file) {
                skip("body_needed_by_unpacked_row")
                return false
            }
            if keptKeys.contains(item.row.body.key) || file.map(keptFiles.contains) == true {
                skip("body_needed_by_kept_row")
                return false
            }
            return true
        }
        if config.dryRun {
            totals.deleted += deleting.count
            totals.bytes += deleting.reduce(0) { $0 + UInt64($1.bytes) }
            totals.wouldDelete += deleting.map { "\(name) \($0.row.rowID) \($0.row.body)" }
            skip("already_gone", gone.count)
            return
        }
        // The intent first: after a crash past the delete, the missing body is known to be ours.
        if !deleting.isEmpty {
            let ids = deleting.map(\.row.rowID)
            try await retry.run { try await metadata.addRetireIntents(source: name, rowIDs: ids) }
        }
        // Each body once, however many rows of the batch list it.
        var bodies: [BodyLocation] = []
        var listed: Set<BodyLocation> = []
        for item in deleting where listed.insert(item.row.body).inserted { bodies.append(item.row.body) }
        let failures = bodies.isEmpty ? [:] : try await retry.run { try await source.fetcher.delete(bodies) }
        for (location, reason) in failures.prefix(5) {
            logger.warning("a body could not be deleted; its row stays packed", metadata: ["body": "\(location)", "error": "\(reason)"])
        }
        skip("delete_failed", failures.count)
        let deleted = deleting.filter { failures[$0.row.body] == nil }
        let done = deleted + gone
        if !done.isEmpty {
            let ids = done.map(\.row.rowID)
            do {
                _ = try await retry.run { try await source.connector.markSourceDeleted(rowIDs: ids) }
            } catch {
                // The bodies are gone and the rows still say packed: said loudly, with a letter each
                // (their intents stay, so that once the cause is fixed and the letters retried, the rows are marked).
                let reason = "the body was deleted but the row could not be marked retired: \(error)"
                try? await metadata.addDeadLetters(done.map { letter($0.row, of: name, reason) })
                throw error
            }
            try await retry.run { try await metadata.clearRetireIntents(source: name, rowIDs: ids) }
        }
        skip("already_gone", gone.count)
        let bytes = deleted.reduce(0) { $0 + UInt64($1.bytes) }
        totals.deleted += deleted.count
        totals.bytes += bytes
        metrics.deleted.increment(by: deleted.count)
        metrics.bytes.increment(by: Int(clamping: bytes))
        if !done.isEmpty {
            logger.info("bodies retired", metadata: ["source": "\(name)", "deleted": "\(deleted.count)", "bytes": "\(bytes)", "already_gone": "\(gone.count)"])
        }
    }

    func letter(_ row: PackedRow, of source: String, _ reason: String) -> DeadLetter {
        DeadLetter(source: source, rowID: row.rowID, desName: row.desName, stage: "retire", reason: reason)
    }
}

extension Retirer {
    /// The uploaded container holding `row`'s file: the one its container column names, or the
    /// one compaction moved it to; for a table without that column (or a row naming a container
    /// no longer recorded, when `evenUnrecorded`), the one whose index holds its name.
    func container(of row: PackedRow, in containers: ContainerChain, reader: StorageArchiveReader, evenUnrecorded: Bool) async -> ContainerRecord? {
        if !row.container.isEmpty {
            if let record = containers.current(of: row.container) { return record }
            // Not recorded: most likely uploaded after the containers were listed (the caller lists
            // them again first); else a metadata store rebuilt after the object was removed.
            if !containers.isRecorded(row.container), !evenUnrecorded { return nil }
        }
        return (try? await ContainerLookup.find(row.desName, shardBits: config.shardBits, among: containers.uploaded.values, reader: reader))?
            .container
    }
}
