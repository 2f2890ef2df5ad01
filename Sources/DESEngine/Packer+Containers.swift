import DESFormat
import DESKit
import Foundation
import Logging

/// The open container of one (day, shard).
struct ContainerSlot: Hashable {
    var day: String
    var shard: Int
}

/// A container being written in the work directory.
final class OpenContainer {
    let record: ContainerRecord
    let lease: ShardLease
    let writer: DESArchiveWriter
    let path: String
    let openedAt = monotonicSeconds()
    var rows: [String: [String]] = [:]
    var fileCount = 0
    var bytes: UInt64 = 0
    var checkpointFiles = 0
    var checkpointAt = monotonicSeconds()

    init(record: ContainerRecord, lease: ShardLease, writer: DESArchiveWriter, path: String) {
        self.record = record
        self.lease = lease
        self.writer = writer
        self.path = path
    }
}

extension Packer {
    /// Appends claimed files to their containers; failures go to the dead-letter table.
    ///
    /// Every claimed row ends in a container, failed, or given back: a row whose shard's lease
    /// was lost meanwhile is released at once, and when the batch stops on an error the rows
    /// not yet placed are released before the error is passed on.
    func pack(_ files: [PendingFile], bodies: [Result<FetchedBody, Error>]) async throws {
        var failed: [String: [FailedRow]] = [:]
        var letters: [DeadLetter] = []
        var giveBack: [PendingFile] = []
        func fail(_ file: PendingFile, _ reason: String) {
            failed[file.source, default: []].append(FailedRow(rowID: file.rowID, reason: reason))
            letters.append(DeadLetter(source: file.source, rowID: file.rowID, desName: file.desName, stage: "packer", reason: reason))
        }
        var placed = 0  // files[..<placed] are in a container, failed or given back
        do {
            for (i, (file, fetched)) in zip(files, bodies).enumerated() {
                placed = i
                guard let lease = book.lease(file.shard) else {
                    giveBack.append(file)  // lost meanwhile: the claim is ours to return
                    continue
                }
                let body: FetchedBody
                switch fetched {
                case .success(let b): body = b
                case .failure(let error):
                    if RetryPolicy.isTransient(error) { throw error }
                    fail(file, "fetching the body from \(file.body) failed: \(error)")
                    continue
                }
                defer { if body.isTemporary { try? FileManager.default.removeItem(atPath: body.path) } }
                // A body opened only now (local disk): its checks run here, with the same outcomes as a fetch's.
                var descriptor: Int32 = -1
                if let open = body.opener {
                    do {
                        descriptor = try open()
                    } catch {
                        if RetryPolicy.isTransient(error) { throw error }
                        fail(file, "fetching the body from \(file.body) failed: \(error)")
                        continue
                    }
                }
                defer { if descriptor >= 0 { close(descriptor) } }
                let container: OpenContainer
                do {
                    container = try await containerFor(file, lease: lease)
                } catch let error as DESKitError where error.code == .fenced {
                    logger.warning("lease lost while opening a container", metadata: ["shard": "\(file.shard)"])
                    book.lose(file.shard, token: lease.token)
                    giveBack.append(file)
                    continue
                }
                do {
                    let entry: DESIndexEntry
                    if let big = try await storeOutsideIfBig(file, body: body, descriptor: descriptor) {
                        entry = try container.writer.addExternal(
                            name: file.desName, size: big.size, externalKey: big.key, sha256: big.sha256, metadata: file.metadata)
                    } else if descriptor >= 0 {
                        entry = try container.writer.add(name: file.desName, fileDescriptor: descriptor, path: body.path, metadata: file.metadata)
                    } else {
                        entry = try container.writer.add(name: file.desName, contentsOfFile: body.path, metadata: file.metadata)
                    }
                    container.rows[file.source, default: []].append(file.rowID)
                    container.fileCount += 1
                    container.bytes += entry.dataLength
                    placed = i + 1
                    if let size = file.size, size != entry.dataLength {
                        logger.warning(
                            "catalog size differs from the body", metadata: ["name": "\(file.desName)", "catalog": "\(size)", "body": "\(entry.dataLength)"])
                    }
                    if container.bytes >= config.maxContainerBytes || container.fileCount >= config.maxContainerFiles {
                        try await finalize(ContainerSlot(day: container.record.day, shard: container.record.shard))
                    }
                } catch let error as DESFormatError where error.path != container.writer.partialPath && error.code != .writerClosed {
                    fail(file, "cannot pack \(file.body): \(error)")
                }
            }
            placed = files.count
        } catch {
            await release(giveBack + files[placed...].filter { !isPlaced($0) }, reason: "batch stopped: \(error)")
            throw error
        }
        await release(giveBack, reason: "lease lost")
        if !letters.isEmpty {
            // The dead letter first: a crash between the two leaves a letter for a row that is
            // still claimed (recovered, and failed again), never a failed row without its letter.
            let batch = letters
            try await retry.run { try await parts.metadata.addDeadLetters(batch) }
            for (source, rows) in failed {
                if config.claimMode == .lease {
                    _ = try await retry.run { try await sourceNamed(source)?.markFailedIfPending(rows) }
                    inFlight[source]?.subtract(rows.map(\.rowID))
                } else {
                    _ = try await retry.run { try await sourceNamed(source)?.markFailed(rows, holder: holder.description) }
                }
            }
            totals.filesFailed += letters.count
            metrics.filesFailed.increment(by: letters.count)
            logger.warning("rows failed", metadata: ["count": "\(letters.count)", "first": "\(letters[0].reason)"])
        }
        try await checkpointDue()
    }

    /// A body at or above `big_file_threshold` is uploaded on its own, to
    /// `{prefix}/_bigFiles/{name}` (before its entry is recorded, so that an entry never points at
    /// nothing); returns where, its size and its SHA-256. Recovery never deletes these objects.
    func storeOutsideIfBig(_ file: PendingFile, body: FetchedBody, descriptor: Int32) async throws
        -> (key: String, size: UInt64, sha256: String)?
    {
        var st = stat()
        let ok = descriptor >= 0 ? fstat(descriptor, &st) == 0 : stat(body.path, &st) == 0
        guard ok, UInt64(max(0, st.st_size)) >= config.bigFileThreshold else { return nil }
        let size = UInt64(st.st_size)
        let key = "\(parts.keyPrefix)/_bigFiles/\(file.desName)"
        let sha256 = try DESFileDigest.sha256(ofFile: body.path)
        let info = try await retry.run { try await parts.storage.put(key: key, fromFile: body.path) }
        guard info.size == size else {
            throw DESKitError(.storage, "uploaded '\(key)' is \(info.size) bytes, expected \(size)")
        }
        logger.info("big file stored outside its container", metadata: ["key": "\(key)", "bytes": "\(size)"])
        return (key, size, sha256)
    }

    /// Whether a claimed file is in one of the open containers.
    private func isPlaced(_ file: PendingFile) -> Bool {
        let slot = ContainerSlot(day: dayOfName(file.desName), shard: file.shard)
        return open[slot]?.rows[file.source]?.contains(file.rowID) == true
    }

    /// Lets go of rows in hand (``letGo(_:reason:)``: claims returned to pending, best effort — a
    /// row left claimed is recovered later; in lease mode nothing to write).
    func release(_ files: [PendingFile], reason: String) async {
        guard !files.isEmpty else { return }
        var bySource: [String: [String]] = [:]
        for file in files { bySource[file.source, default: []].append(file.rowID) }
        await letGo(bySource, reason: reason)
        logger.notice("gave back rows in hand", metadata: ["rows": "\(files.count)", "reason": "\(reason)"])
    }

    private func containerFor(_ file: PendingFile, lease: ShardLease) async throws -> OpenContainer {
        let slot = ContainerSlot(day: dayOfName(file.desName), shard: file.shard)
        if let existing = open[slot] { return existing }
        let record = try await retry.run {
            try await parts.metadata.createContainer(day: slot.day, shard: slot.shard, lease: lease, keyPrefix: parts.keyPrefix)
        }
        let path = (workDir as NSString).appendingPathComponent("c\(record.id).des")
        var options = DESArchiveWriter.Options()
        options.overwrite = true
        // Not synced here: the work directory is never read after a crash (recovery works from the
        // metadata store and the storage). The storage backend's put makes the container durable
        // where it is kept, once.
        options.syncOnClose = false
        let writer = try DESArchiveWriter(path: path, options: options)
        let container = OpenContainer(record: record, lease: lease, writer: writer, path: path)
        open[slot] = container
        metrics.openContainers.record(open.count)
        return container
    }

    private func checkpointDue() async throws {
        let now = monotonicSeconds()
        for (slot, c) in open
        where c.fileCount - c.checkpointFiles >= config.checkpointEveryFiles
            || (c.fileCount > c.checkpointFiles && now - c.checkpointAt >= config.checkpointEverySeconds)
        {
            do {
                try await retry.run {
                    try await parts.metadata.checkpoint(containerID: c.record.id, fileCount: c.fileCount, bytes: c.bytes, lease: c.lease)
                }
                c.checkpointFiles = c.fileCount
                c.checkpointAt = now
            } catch let error as DESKitError where error.code == .fenced {
                book.lose(slot.shard, token: c.lease.token)
            }
        }
        await dropLostShards()
    }

    /// Finalizes containers that are full, old enough, or of a closed day.
    func finalizeDue() async throws {
        let today = dayOfName("")
        let now = monotonicSeconds()
        for (slot, c) in open {
            let due = c.bytes >= config.maxContainerBytes || c.fileCount >= config.maxContainerFiles
                || now - c.openedAt >= config.maxContainerAgeSeconds || slot.day < today
            if due { try await finalize(slot) }
        }
    }

    /// Abandons one container: the writer is aborted, the record discarded, and — when the
    /// discard took (the container can then never be uploaded) — its object deleted and its
    /// rows given back. When someone else already adopted it as uploaded its rows stay
    /// claimed (their recovery marks them packed); when the store cannot be reached, nothing
    /// more is done and recovery sorts it out later.
    func abandon(_ c: OpenContainer, objectMayExist: Bool, reason: String) async {
        activity += 1
        c.writer.abort()
        guard let discarded = try? await retry.run({ try await parts.metadata.discardContainer(id: c.record.id) }) else {
            logger.warning("could not discard an abandoned container; recovery will", metadata: ["key": "\(c.record.key)"])
            return
        }
        if !discarded {
            let state = try? await retry.run {
                try await parts.metadata.containers(state: nil, shard: c.record.shard, day: c.record.day).first { $0.id == c.record.id }?.state
            }
            guard state == .discarded else {
                // Its rows are the adopter's to mark (in lease mode, from the manifest it recovered).
                if config.claimMode == .lease { for (source, ids) in c.rows { inFlight[source]?.subtract(ids) } }
                logger.notice("abandoned container was adopted by another packer", metadata: ["key": "\(c.record.key)"])
                return
            }
            // Discarded by someone else's recovery (a final state): an object we uploaded is garbage.
            if objectMayExist { try? await retry.run { try await parts.storage.delete(key: c.record.key) } }
        } else if objectMayExist {
            try? await retry.run { try await parts.storage.delete(key: c.record.key) }
        }
        // Discarded for good: its rows go back (row mode), or out of hand to be read again (lease).
        await letGo(c.rows, reason: reason)
        logger.warning("abandoned container", metadata: ["key": "\(c.record.key)", "files": "\(c.fileCount)", "reason": "\(reason)"])
    }

    /// Abandons every open container of `shard`.
    func abandonShard(_ shard: Int, reason: String) async {
        for slot in open.keys.filter({ $0.shard == shard }) {
            guard let c = open.removeValue(forKey: slot) else { continue }
            await abandon(c, objectMayExist: false, reason: reason)
        }
        metrics.openContainers.record(open.count)
    }

    /// Drops every open container after an error: writers aborted, claims returned.
    func abandonAll(reason: String) async {
        for shard in Set(open.keys.map(\.shard)).sorted() { await abandonShard(shard, reason: reason) }
    }
}
