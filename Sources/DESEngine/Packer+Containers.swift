import DESFormat
import DESKit
import Foundation
import Logging

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
            // With its name: in lease mode a row renamed since it was read is not failed by this.
            failed[file.source, default: []].append(FailedRow(rowID: file.rowID, reason: reason, desName: file.desName))
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
                // Readers find a name in its shard's containers: a row whose shard is not its
                // name's (renamed after marking, or marked with another shard_bits) would be
                // packed where no reader looks.
                let nameShard = context.assignment.shard(of: file.desName)
                guard nameShard == file.shard else {
                    fail(
                        file,
                        "the row's shard \(file.shard) is not its name's shard \(nameShard) (shard_bits \(context.assignment.shardBits)): "
                            + "renamed after it was marked, or marked with another shard_bits; readers would not find it")
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
                var openedAs: FileStamp?
                if let open = body.stampedOpener {
                    do {
                        (descriptor, openedAs) = try open()
                    } catch {
                        if RetryPolicy.isTransient(error) { throw error }
                        fail(file, "fetching the body from \(file.body) failed: \(error)")
                        continue
                    }
                }
                defer { if descriptor >= 0 { close(descriptor) } }
                let slot = ContainerSlot(day: dayOfName(file.desName), shard: file.shard)
                let container: ContainerFile
                do {
                    container = try await containerFile(slot, lease: lease)
                } catch let error as DESKitError where error.code == .fenced {
                    context.metrics.fencingRejections.increment()
                    logger.warning("lease lost while opening a container", metadata: ["shard": "\(file.shard)"])
                    book.lose(file.shard, token: lease.token)
                    giveBack.append(file)
                    continue
                }
                do {
                    let entry: DESIndexEntry
                    let stamp = try openedAs ?? Self.bodyStamp(body, descriptor: descriptor)
                    if let big = try await storeOutsideIfBig(file, body: body, descriptor: descriptor, stamp: stamp) {
                        entry = try container.addExternal(
                            name: file.desName, size: big.size, externalKey: big.key, sha256: big.sha256, metadata: file.metadata)
                    } else if descriptor >= 0 {
                        entry = try container.add(
                            name: file.desName, fileDescriptor: descriptor, stamp: stamp, path: body.path, metadata: file.metadata,
                            expectedSHA256: body.expectedSHA256)
                    } else {
                        entry = try container.add(name: file.desName, contentsOfFile: body.path, metadata: file.metadata)
                    }
                    let full = machine.placed(source: file.source, rowID: file.rowID, name: file.desName, bytes: entry.dataLength, in: slot)
                    placed = i + 1
                    if let size = file.size, size != entry.dataLength {
                        logger.warning(
                            "catalog size differs from the body", metadata: ["name": "\(file.desName)", "catalog": "\(size)", "body": "\(entry.dataLength)"])
                    }
                    if full { try await finalize(slot) }
                } catch let error as DESFormatError where error.code == .changedWhileRead {
                    // Being written while we read it: not packed torn, not failed either. It goes
                    // back to pending and is read again later (by then, perhaps, left alone).
                    logger.notice("a body changed while it was read; it goes back to pending", metadata: ["body": "\(file.body)"])
                    giveBack.append(file)
                } catch let error as DESFormatError where error.path != container.partialPath && error.code != .writerClosed {
                    fail(file, "cannot pack \(file.body): \(error)")
                }
            }
            placed = files.count
        } catch {
            await release(giveBack + files[placed...].filter { !isPlaced($0) }, reason: "batch stopped: \(error)")
            throw error
        }
        await release(giveBack, reason: "lease lost, or a body changed while it was read")
        if !letters.isEmpty {
            // The dead letter first: a crash between the two leaves a letter for a row that is
            // still claimed (recovered, and failed again), never a failed row without its letter.
            let batch = letters
            try await retry.run { try await metadata.addDeadLetters(batch) }
            for (name, rows) in failed {
                guard let connector = context.source(name)?.connector else { continue }
                if config.claimMode == .lease {
                    let changed = try await retry.run { try await connector.markFailedIfPending(rows) }
                    if changed < rows.count { try await closeLettersOfUnfailedRows(rows, source: name, connector: connector) }
                } else {
                    _ = try await retry.run { try await connector.markFailed(rows, holder: holder.description) }
                }
            }
            machine.failed(failed.mapValues { $0.map(\.rowID) })
            runState.totals.filesFailed += letters.count
            context.metrics.filesFailed.increment(by: letters.count)
            logger.warning("rows failed", metadata: ["count": "\(letters.count)", "first": "\(letters[0].reason)"])
        }
        try await checkpointDue()
    }

    /// `claim_mode: lease`: of `rows` just given dead letters, those the mark did not fail — no
    /// longer pending under the name they were read with (renamed: a filesystem row whose file
    /// changed, taken again by the scan; or packed meanwhile) — have their letters closed, so
    /// that the dead-letter table lists only rows that failed.
    private func closeLettersOfUnfailedRows(_ rows: [FailedRow], source: String, connector: any SourceConnector) async throws {
        struct Row: Hashable {
            var id: String
            var name: String?
        }
        let named = try await retry.run { try await connector.rowsNamed(rows.compactMap(\.desName)) }
        let failed = Set(named.filter { $0.state == .failed }.map { Row(id: $0.rowID, name: $0.desName) })
        let unfailed = rows.filter { !failed.contains(Row(id: $0.rowID, name: $0.desName)) }
        guard !unfailed.isEmpty else { return }
        let wanted = Set(unfailed.map { Row(id: $0.rowID, name: $0.desName) })
        var ids: [Int64] = []
        // (A dead-letter query takes at most 500 row ids.)
        for start in stride(from: 0, to: unfailed.count, by: 500) {
            let query = DeadLetterQuery(source: source, stage: "packer", rowIDs: unfailed[start..<min(start + 500, unfailed.count)].map(\.rowID))
            let letters = try await retry.run { try await metadata.deadLetters(matching: query) }
            ids += letters.filter { wanted.contains(Row(id: $0.letter.rowID, name: $0.letter.desName)) }.map(\.id)
        }
        guard !ids.isEmpty else { return }
        let closed = try await retry.run { try await metadata.resolveDeadLetters(ids: ids) }
        logger.notice(
            "dead letters closed: their rows were renamed or packed while in flight, not failed",
            metadata: ["source": "\(source)", "letters": "\(closed)"])
    }

    /// The body as one `fstat` of its open descriptor (or a `stat` of its path) sees it; it must
    /// be a regular file. Its size is what the container's writer reads up to and what decides a
    /// big file; the writer `fstat`s again at the end, and a body that changed meanwhile is not packed.
    static func bodyStamp(_ body: FetchedBody, descriptor: Int32) throws -> FileStamp {
        var st = stat()
        guard (descriptor >= 0 ? fstat(descriptor, &st) : stat(body.path, &st)) == 0 else {
            throw DESFormatError(.io, "cannot stat the body: \(String(cString: strerror(errno)))", path: body.path)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw DESFormatError(.io, "not a regular file", path: body.path) }
        return FileStamp(st)
    }

    /// A body at or above `big_file_threshold` is uploaded on its own, to
    /// `{prefix}/_bigFiles/{name}` (before its entry is recorded, so that an entry never points at
    /// nothing); returns where, its size and its SHA-256. Recovery never deletes these objects.
    ///
    /// What is stored is a copy in the work directory, read through the body's open descriptor
    /// with the checks a container's entry gets (its size, no change while read, the SHA-256 the
    /// source expects): storing the source's own file could hard-link it into a local store,
    /// where a later write to the source would change the archived bytes (and its link count,
    /// its ctime). Only a body DES downloaded itself (a temporary file) is stored as it is.
    func storeOutsideIfBig(_ file: PendingFile, body: FetchedBody, descriptor: Int32, stamp: FileStamp) async throws
        -> (key: String, size: UInt64, sha256: String)?
    {
        let size = stamp.size
        guard size >= config.bigFileThreshold else { return nil }
        let key = "\(context.keyPrefix)/_bigFiles/\(file.desName)"
        var stored = body.path
        let sha256: String
        if body.isTemporary {
            sha256 = try DESFileDigest.sha256(ofFile: body.path)
        } else {
            let fd = descriptor >= 0 ? descriptor : open(body.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            guard fd >= 0 else { throw DESFormatError(.io, "cannot open the body", path: body.path, errno: errno) }
            defer { if descriptor < 0 { close(fd) } }
            var stream = DESFileDescriptorStream(fileDescriptor: fd, path: body.path, expectedSize: size, unchangedSince: stamp)
            stored = (context.workDir as NSString).appendingPathComponent("big-\(UUID().uuidString).part")
            do {
                sha256 = try DESFileCopy.copy(&stream, to: stored)
            } catch let error as DESFormatError where error.path == stored {
                // The work directory's fault (full?), not the body's: the batch stops, nothing is failed.
                throw DESKitError(.storage, "cannot copy the big file \(body.path) into the work directory: \(error)")
            }
        }
        let copy = stored == body.path ? nil : stored
        defer { if let copy { try? FileManager.default.removeItem(atPath: copy) } }
        if let expected = body.expectedSHA256, expected.lowercased() != sha256 {
            throw DESArchiveWriter.unexpectedContent(name: file.desName, sha256: sha256, expected: expected, path: body.path)
        }
        let info = try await retry.run { try await context.storage.put(key: key, fromFile: stored) }
        guard info.size == size else {
            throw DESKitError(.storage, "uploaded '\(key)' is \(info.size) bytes, expected \(size)")
        }
        logger.info("big file stored outside its container", metadata: ["key": "\(key)", "bytes": "\(size)"])
        return (key, size, sha256)
    }

    /// Whether a claimed file is in one of the open containers.
    private func isPlaced(_ file: PendingFile) -> Bool {
        machine.holds(source: file.source, rowID: file.rowID, in: ContainerSlot(day: dayOfName(file.desName), shard: file.shard))
    }

    /// Lets go of rows in hand (``letGo(_:)``: claims returned to pending, best effort — a
    /// row left claimed is recovered later; in lease mode nothing to write).
    func release(_ files: [PendingFile], reason: String) async {
        guard !files.isEmpty else { return }
        var bySource: [String: [String]] = [:]
        for file in files { bySource[file.source, default: []].append(file.rowID) }
        await letGo(bySource)
        logger.notice("gave back rows in hand", metadata: ["rows": "\(files.count)", "reason": "\(reason)"])
    }

    /// The archive file of the open container of `slot`, opened (its record created under `lease`) when none is.
    private func containerFile(_ slot: ContainerSlot, lease: ShardLease) async throws -> ContainerFile {
        if let id = machine.open[slot]?.record.id {
            // One file per open container, always: a second container in the slot would strand the first's rows.
            guard let file = runState.files[id] else {
                throw DESKitError(.invalidData, "open container \(id) has no file in the work directory")
            }
            return file
        }
        let record = try await retry.run {
            try await metadata.createContainer(day: slot.day, shard: slot.shard, lease: lease, keyPrefix: context.keyPrefix)
        }
        let file = try ContainerFile(path: (context.workDir as NSString).appendingPathComponent("c\(record.id).des"))
        runState.files[record.id] = file
        machine.opened(PackerStateMachine.Container(record: record, lease: lease, now: monotonicSeconds()))
        context.metrics.openContainers.record(machine.open.count)
        return file
    }

    private func checkpointDue() async throws {
        let now = monotonicSeconds()
        for c in machine.checkpointsDue(now: now) {
            do {
                try await retry.run {
                    try await metadata.checkpoint(containerID: c.record.id, fileCount: c.fileCount, bytes: c.bytes, lease: c.lease)
                }
                machine.checkpointed(c.slot, id: c.record.id, files: c.fileCount, now: now)
            } catch let error as DESKitError where error.code == .fenced {
                context.metrics.fencingRejections.increment()
                book.lose(c.record.shard, token: c.lease.token)
            }
        }
        await dropLostShards()
    }

    /// Finalizes containers that are full, old enough, or of a closed day.
    func finalizeDue() async throws {
        let due = machine.finalizeDueCounting(now: monotonicSeconds(), today: dayOfName(""))
        if !runState.warnedClosedDayLimit, due.closedEarly > 0 {
            runState.warnedClosedDayLimit = true
            logger.warning(
                "more containers of earlier days are filling than the descriptor limit allows; the oldest are closed early, and small",
                metadata: [
                    "limit": "\(machine.limits.maxClosedDayContainers)",
                    "hint": "a backlog named on several days, read in mixed order: raise ulimit -n (a quarter of it is the limit, up to 1024)",
                ])
        }
        for slot in due.slots { try await finalize(slot) }
    }

    /// Abandons one container taken out of the machine: the writer is aborted, the record
    /// discarded, and — when the discard took (the container can then never be uploaded) — its
    /// object deleted and its rows given back. When someone else already adopted it as uploaded
    /// its rows stay claimed (their recovery marks them packed); when the store cannot be
    /// reached, nothing more is done and recovery sorts it out later.
    func abandon(_ c: PackerStateMachine.Container, objectMayExist: Bool, reason: String) async {
        runState.files.removeValue(forKey: c.record.id)?.abort()
        let fate = await discard(c, objectMayExist: objectMayExist)
        await giveBack(machine.abandoned(c, fate))
        switch fate {
        case .unknown: logger.warning("could not discard an abandoned container; recovery will", metadata: ["key": "\(c.record.key)"])
        case .adopted: logger.notice("abandoned container was adopted by another packer", metadata: ["key": "\(c.record.key)"])
        case .discarded:
            logger.warning("abandoned container", metadata: ["key": "\(c.record.key)", "files": "\(c.fileCount)", "reason": "\(reason)"])
        }
    }

    /// Discards an abandoned container's record and deletes any object of it; what became of it.
    private func discard(_ c: PackerStateMachine.Container, objectMayExist: Bool) async -> PackerStateMachine.AbandonFate {
        guard let discarded = try? await retry.run({ try await metadata.discardContainer(id: c.record.id) }) else { return .unknown }
        if !discarded {
            let state = try? await retry.run {
                try await metadata.containers(state: nil, shard: c.record.shard, day: c.record.day).first { $0.id == c.record.id }?.state
            }
            // Not discarded, and not by someone else's recovery (a final state): adopted as uploaded.
            guard state == .discarded else { return .adopted }
        }
        // An object we uploaded is garbage now.
        if objectMayExist { try? await retry.run { try await context.storage.delete(key: c.record.key) } }
        return .discarded
    }

    /// Abandons every open container of `shard`.
    func abandonShard(_ shard: Int, reason: String) async {
        for c in machine.removeOpen(shard: shard) { await abandon(c, objectMayExist: false, reason: reason) }
        context.metrics.openContainers.record(machine.open.count)
    }

    /// Drops every open container after an error: writers aborted, claims returned.
    func abandonAll(reason: String) async {
        for shard in machine.busyShards.sorted() { await abandonShard(shard, reason: reason) }
    }
}
