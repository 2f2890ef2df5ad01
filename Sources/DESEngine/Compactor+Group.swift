import DESFormat
import DESKit
import Foundation
import Metrics


extension Compactor {
    /// Compacts each shard's groups, `compaction.concurrency` shards at a time.
    func compactShards(_ groups: [Int: [Group]], totals: inout Totals, failed: inout Set<Int64>, shutdown: ShutdownSignal) async throws {
        var pending = groups.sorted(by: { $0.key < $1.key })[...]
        try await withThrowingTaskGroup(of: (Totals, Set<Int64>).self) { tasks in
            var running = 0
            func startNext() {
                guard !shutdown.isTriggered, let (shard, shardGroups) = pending.popFirst() else { return }
                running += 1
                tasks.addTask {
                    var (own, lost) = (Totals(), Set<Int64>())
                    try await compactShard(shard, groups: shardGroups, totals: &own, failed: &lost, shutdown: shutdown)
                    return (own, lost)
                }
            }
            for _ in 0..<max(1, config.compaction.concurrency) { startNext() }
            while running > 0, let (own, lost) = try await tasks.next() {
                running -= 1
                totals.add(own)
                failed.formUnion(lost)
                startNext()
            }
        }
    }

    /// Compacts `groups` of one shard under its compaction lease, renewed by a heartbeat (a third
    /// of its TTL) for as long as the groups take, however long one group is; first discards what
    /// a compactor that lost the lease (or died) left `compacting` there.
    func compactShard(_ shard: Int, groups: [Group], totals: inout Totals, failed: inout Set<Int64>, shutdown: ShutdownSignal) async throws {
        let ttl = config.compaction.leaseTTLSeconds
        let leaseShard = Self.leaseShard(of: shard)
        guard let lease = try await retry.run({ try await metadata.acquireLease(shard: leaseShard, holder: config.holder, ttlSeconds: ttl) })
        else {
            logger.info("another compactor holds the shard; tried again later", metadata: ["shard": "\(shard)"])
            totals.shardsSkipped += 1
            return
        }
        let book = LeaseBook()
        book.add(lease)
        let heartbeat = startHeartbeat(book, ttl: ttl)
        var outcome: Error?
        do {
            try await compactShard(shard, groups: groups, book: book, totals: &totals, failed: &failed, shutdown: shutdown)
        } catch {
            outcome = error
        }
        heartbeat.cancel()
        await heartbeat.value
        if let held = book.lease(leaseShard) { try? await metadata.releaseLease(held) }
        if let outcome { throw outcome }
    }

    /// Renews the leases of `book` every third of `ttl` until cancelled.
    private func startHeartbeat(_ book: LeaseBook, ttl: Double) -> Task<Void, Never> {
        let (metadata, logger) = (self.metadata, self.logger)
        return Task { await runHeartbeat(book: book, metadata: metadata, ttl: ttl, interval: ttl / 3, logger: logger, metrics: nil) }
    }

    private func compactShard(
        _ shard: Int, groups: [Group], book: LeaseBook, totals: inout Totals, failed: inout Set<Int64>, shutdown: ShutdownSignal
    ) async throws {
        for stale in try await retry.run({ try await metadata.containers(state: .compacting, shard: shard, day: nil) }) {
            try? await storage.delete(key: stale.key)
            _ = try await retry.run { try await metadata.abandonCompaction(containerID: stale.id) }
            logger.warning("an unfinished compacted container was discarded", metadata: ["key": "\(stale.key)", "holder": "\(stale.holder)"])
        }
        for group in groups where !shutdown.isTriggered {
            guard let current = book.lease(Self.leaseShard(of: shard)) else {
                logger.warning("the compaction lease was lost; the shard's other groups wait", metadata: ["shard": "\(shard)"])
                return
            }
            do {
                try await compact(group, lease: current, totals: &totals)
            } catch let error as DESKitError where error.code == .fenced {
                metrics.fencingRejections.increment()
                totals.groupsAbandoned += 1
                logger.warning("compaction fenced; the old containers stay", metadata: ["shard": "\(shard)", "error": "\(error.message)"])
                return
            } catch let error where !RetryPolicy.isTransient(error) && !(error is CancellationError) {
                // A damaged entry, an unreadable container: this group stays as it is, not tried
                // again by this process; the others go on.
                totals.groupsAbandoned += 1
                failed.formUnion(group.containers.map(\.id))
                logger.error(
                    "a group was not compacted; its containers stay",
                    metadata: ["containers": "\(group.containers.map(\.key))", "error": "\(error)"])
            }
        }
    }

    /// Compacts one group (steps 1–6 of ``Compactor``).
    func compact(_ group: Group, lease: ShardLease, totals: inout Totals) async throws {
        let olds = group.containers
        var phases: [(String, Double)] = []
        var mark = monotonicSeconds()
        func phase(_ name: String) {
            let now = monotonicSeconds()
            phases.append((name, now - mark))
            mark = now
        }
        var downloads: [String] = []
        defer { for path in downloads { try? FileManager.default.removeItem(atPath: path) } }
        // The old containers, read whole (one sequential read each), and their live entries.
        var readers: [(ContainerRecord, DESArchiveReader, [DESIndexEntry])] = []
        var dropped: [String: [String]] = [:]  // old key -> big-file objects of its deleted entries
        var (droppedFiles, droppedBytes) = (0, UInt64(0))
        for old in olds {
            // A container on local disk is read in place; any other is downloaded first.
            let path: String
            if let local = storage.localPath(of: old.key) {
                path = local
            } else {
                path = workDir + "/old-\(old.id)-\(UInt32.random(in: 0...UInt32.max)).des"
                downloads.append(path)
                try await download(old.key, to: path)
            }
            // Each entry's recorded sha256 comes from its META record as it is copied (write).
            let reader = try DESArchiveReader(path: path, digests: false)
            phase("open")
            let deleted = try await retry.run { try await metadata.tombstonedNames(among: reader.entries.map(\.name)) }
            phase("tombstones")
            var live: [DESIndexEntry] = []
            var seen = Set<String>()
            // The last of a repeated name is the one readers reach (archives of the original can repeat names).
            for entry in reader.entries.reversed() where seen.insert(entry.name).inserted {
                if deleted.contains(entry.name) {
                    droppedFiles += 1
                    droppedBytes += entry.dataLength
                    if entry.isExternal, let key = try reader.meta(named: entry.name)["external_key"]?.stringValue { dropped[old.key, default: []].append(key) }
                } else {
                    live.append(entry)
                }
            }
            readers.append((old, reader, live.reversed()))
        }
        let liveCount = readers.reduce(0) { $0 + $1.2.count }
        phase("read")
        var new: ContainerRecord?
        var summary: (files: Int, bytes: UInt64, size: UInt64, etag: String) = (0, 0, 0, "")
        if liveCount > 0 {
            new = try await retry.run { try await metadata.beginCompaction(day: group.day, shard: group.shard, lease: lease, keyPrefix: config.keyPrefix) }
        }
        // What replaces each old container, beside it (des rebuild reads these, and the removal
        // after grace) — written before the new container exists, so that no object of a
        // compaction is ever in storage without them: des rebuild after a crash at any step finds
        // either notes naming a container that is not there (ignored) or the new container with
        // every note that retires its sources.
        for old in olds {
            let note = CompactedRecord(replacedBy: new?.key, dropExternal: dropped[old.key] ?? [])
            try await putSmall(Self.compactedRecordKey(of: old.key), note.encoded())
        }
        phase("records")
        if let record = new {
            do {
                summary = try await write(record, from: readers)
                phase("write_upload_verify")
            } catch {
                try? await storage.delete(key: record.key)
                _ = try? await metadata.abandonCompaction(containerID: record.id)
                for old in olds { try? await storage.delete(key: Self.compactedRecordKey(of: old.key)) }
                throw error
            }
        }
        let finished = try await retry.run {
            try await metadata.finishCompaction(
                containerID: new?.id, fileCount: summary.files, bytes: summary.bytes, size: summary.size, etag: summary.etag,
                replacing: olds.map(\.id), lease: lease)
        }
        guard finished else {
            if let new {
                try? await storage.delete(key: new.key)
                _ = try? await metadata.abandonCompaction(containerID: new.id)
            }
            for old in olds { try? await storage.delete(key: Self.compactedRecordKey(of: old.key)) }
            throw DESKitError(.fenced, "the containers of \(group.day) shard \(group.shard) changed under compaction (or its lease was lost)")
        }
        phase("commit")
        if let new {
            let names = readers.flatMap { $0.2.map(\.name) }
            // Files deleted while this group was compacted were carried over: their tombstones
            // name an old container, so their bytes count as garbage of the new one instead.
            let deletedMeanwhile = try await retry.run { try await metadata.tombstonedNames(among: names) }
            if !deletedMeanwhile.isEmpty {
                let moved = Array(deletedMeanwhile)
                try await retry.run { try await metadata.assignTombstones(names: moved, toContainer: new.id) }
            }
            await NameRanges.record(new, names: names, metadata: metadata, retry: retry, logger: logger)
        }
        logger.debug(
            "compaction phases", metadata: ["seconds": "\(phases.map { "\($0.0)=\(String(format: "%.3f", $0.1))" }.joined(separator: " "))"])
        totals.containersRetired += olds.count
        totals.containersWritten += new == nil ? 0 : 1
        totals.liveFiles += summary.files
        totals.liveBytes += summary.bytes
        totals.droppedFiles += droppedFiles
        totals.droppedBytes += droppedBytes
        metrics.containersRetired.increment(by: olds.count)
        metrics.liveBytes.increment(by: Int(clamping: summary.bytes))
        metrics.droppedBytes.increment(by: Int(clamping: droppedBytes))
        logger.info(
            "containers compacted",
            metadata: [
                "old": "\(olds.map(\.key))", "new": "\(new?.key ?? "none")", "reason": "\(group.reason)", "live_files": "\(summary.files)",
                "dropped_files": "\(droppedFiles)",
            ])
    }

    /// Writes the live entries into the new container — read straight from the downloaded old
    /// containers into the writer's two-thread pipeline, hashed once — checks each entry's new
    /// sha256 against the one its old META recorded, uploads the container and reads its index back.
    func write(_ record: ContainerRecord, from readers: [(ContainerRecord, DESArchiveReader, [DESIndexEntry])]) async throws
        -> (files: Int, bytes: UInt64, size: UInt64, etag: String)
    {
        let path = workDir + "/new-\(record.id).des"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var options = DESArchiveWriter.Options()
        // Not synced here: the storage backend's put makes the container durable where it is
        // kept, once (an upload to S3 reads it from the page cache).
        options.syncOnClose = false
        let writer = try DESArchiveWriter(path: path, options: options)
        var (files, bytes) = (0, UInt64(0))
        // Each entry written, in the order written (the index keeps it), with the sha256 its old META recorded.
        var written: [(name: String, sha256: String?)] = []
        do {
            var externals: [(String, UInt64, String, String?, DESMetadata)] = []
            try writer.addFiles(concurrently: true) { feed in
                for (old, reader, live) in readers {
                    // Entries and their META records are read in index order: one read a window.
                    let (data, metas) = (try WindowedFile(path: reader.path), try WindowedFile(path: reader.path))
                    for entry in live {
                        let carried = try metas.withBytes(offset: entry.metaOffset, length: Int(entry.metaLength)) { raw in
                            do {
                                return try DESCarriedMetadata(record: raw)
                            } catch {
                                throw DESKitError(.invalidData, "\(old.key): the META of \(entry.name) is unreadable: \(error)")
                            }
                        }
                        let (meta, digest, external) = (carried.metadata, carried.sha256, carried.externalKey)
                        if entry.isExternal {
                            guard let external else { throw DESKitError(.invalidData, "\(old.key): \(entry.name) is external but names no object") }
                            externals.append((entry.name, entry.dataLength, external, digest, meta))
                        } else {
                            written.append((entry.name, digest))
                            var stream = RangeStream(file: data, offset: entry.dataOffset, length: entry.dataLength)
                            try feed.add(name: entry.name, from: &stream, metadata: meta)
                        }
                        files += 1
                        bytes += entry.dataLength
                    }
                }
            }
            for (name, size, external, digest, meta) in externals {
                written.append((name, digest))
                _ = try writer.addExternal(name: name, size: size, externalKey: external, sha256: digest, metadata: meta)
            }
            _ = try writer.close()
        } catch {
            writer.abort()
            throw error
        }
        let info = try await retry.run { try await storage.put(key: record.key, fromFile: path) }
        // Read back as readers will: the seal holds, every live name is there, and each entry's
        // sha256 (computed once, by the writer) is the one its old META recorded — so only bytes
        // that still match are ever carried over.
        let index = try await StorageArchiveReader(storage: storage).index(key: record.key, etag: info.etag)
        guard index.count == files, index.count == written.count else {
            throw DESKitError(.storage, "\(record.key): the uploaded container does not hold the \(files) files written")
        }
        for (position, entry) in index.entries.enumerated() {
            guard entry.name == written[position].name else {
                throw DESKitError(.storage, "\(record.key): entry \(position) of the uploaded container is not the file written there")
            }
            if let want = written[position].sha256, index.sha256(at: position) != want {
                throw DESKitError(.invalidData, "\(entry.name) does not match its sha256 in its old container; the group is left as it is")
            }
        }
        return (files, bytes, info.size, info.etag)
    }

    /// Downloads an object in 8 MiB ranges (no whole object in memory).
    func download(_ key: String, to path: String) async throws {
        guard let info = try await retry.run({ try await storage.head(key: key) }) else {
            throw DESKitError(.notFound, "container \(key) is not in storage")
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw DESKitError(.storage, "cannot write \(path)")
        }
        defer { try? handle.close() }
        var offset: UInt64 = 0
        while offset < info.size {
            let length = min(8 << 20, info.size - offset)
            let chunk = try await retry.run { try await storage.get(key: key, offset: offset, length: length, ifMatch: info.etag) }
            try handle.write(contentsOf: chunk)
            offset += length
        }
    }

    /// Stores a small object (through a temporary file: storage puts files).
    func putSmall(_ key: String, _ bytes: [UInt8]) async throws {
        let path = workDir + "/small-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw DESKitError(.storage, "cannot write \(path)") }
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try await retry.run { try await storage.put(key: key, fromFile: path) }
    }
}

/// What `{key}.compacted` records beside a replaced container.
public struct CompactedRecord: Codable, Sendable, Equatable {
    /// The key of the container holding its live files (nil: every file was deleted).
    public var replacedBy: String?
    /// Big-file objects of its deleted entries, removed with it after the grace period.
    public var dropExternal: [String]

    enum CodingKeys: String, CodingKey {
        case replacedBy = "replaced_by"
        case dropExternal = "drop_external"
    }

    /// The JSON bytes.
    public func encoded() throws -> [UInt8] { Array(try JSONEncoder().encode(self)) }

    /// Parses the JSON bytes.
    public static func decode(_ bytes: [UInt8]) throws -> CompactedRecord { try JSONDecoder().decode(CompactedRecord.self, from: Data(bytes)) }
}
