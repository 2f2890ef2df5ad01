import DESKit
import Synchronization
import Foundation
import Logging

/// A batch claimed ahead: its rows, their bodies fetched, and the activity epoch it was claimed in.
struct ClaimedBatch: Sendable {
    var files: [PendingFile]
    var bodies: [Result<FetchedBody, Error>]
    /// The shards the claim covered.
    var shards: [Int]
    /// ``Packer/activity`` when the claim started: an empty batch proves idleness only if nothing moved since.
    var epoch: Int
    var claimSeconds: Double
    /// Whether some source filled its claim: the held shards keep the packer busy.
    var saturated: Bool
    /// `claim_mode: lease`: where each source's keyset read goes on after this batch (none: from the start).
    var cursors: [String: String] = [:]
    /// Whether every source was read from its first pending row (always, in row mode): only
    /// then does an empty batch show there is nothing left — rows below a cursor (named late,
    /// renumbered, out of flight since) are found when a read starts over.
    var fromStart = true
    /// `claim_mode: lease`: whether the read skipped a row only for sharing an id or a name with
    /// one in flight (``PackerStateMachine/ReadPlan/InFlight/twin``).
    var twins = false
}

/// Rows the background marks have marked packed (`claim_mode: lease`), handed to the packer's
/// own task, which drops them from its in-flight set.
final class MarkedRows: Sendable {
    private let rows = Mutex<[String: [String]]>([:])
    /// Adds rows of `source`.
    func add(_ ids: [String], source: String) { rows.withLock { $0[source, default: []] += ids } }
    /// Takes every row added so far.
    func take() -> [String: [String]] { rows.withLock { r in defer { r = [:] }; return r } }
}

/// The packer's two overlapping stages besides writing: the next batch is claimed and its
/// bodies fetched while the current one is written, and rows of uploaded containers are
/// marked packed in the background (a crash before that is covered: recovery adopts an
/// uploaded container and marks its rows).
extension Packer {
    /// Rows per claim, by source name: each source's `batch_size`, or `packer.batch_size`.
    var claimLimits: [String: Int] { context.claimLimits }

    /// Claims up to its limit (`limits`, by source name) of rows of `shards` from every source and fetches their bodies.
    ///
    /// Runs off the packer (it captures only sendable parts). When a source fails, the rows
    /// already claimed from the others are given back before the error is passed on.
    static func claimBatch(
        sources: [PackerSource], shards: [Int], limits: [String: Int], holder: String, fetchConcurrency: Int, epoch: Int,
        retry: RetryPolicy
    ) async throws -> ClaimedBatch {
        let start = monotonicSeconds()
        var taken: [(PendingFile, any BodyFetcher)] = []
        var claimed: [(PackerSource, [String])] = []
        var saturated = false
        do {
            for source in sources {
                let limit = limits[source.name] ?? 1
                let rows = try await retry.run { try await source.connector.claim(shards: shards, limit: limit, holder: holder) }
                saturated = saturated || rows.count >= limit
                claimed.append((source, rows.map(\.rowID)))
                taken += rows.map { ($0, source.fetcher) }
            }
        } catch {
            // Best effort: a row left claimed is recovered later.
            for (source, ids) in claimed where !ids.isEmpty {
                _ = try? await retry.run { try await source.connector.releaseClaims(rowIDs: ids, holder: holder) }
            }
            throw error
        }
        let claimSeconds = monotonicSeconds() - start
        let bodies = await fetchAll(taken, concurrency: fetchConcurrency)
        return ClaimedBatch(
            files: taken.map(\.0), bodies: bodies, shards: shards, epoch: epoch, claimSeconds: claimSeconds,
            saturated: saturated && !shards.isEmpty)
    }

    /// Fetches bodies, each with its source's fetcher, at most `concurrency` at once (results in input order).
    static func fetchAll(_ files: [(PendingFile, any BodyFetcher)], concurrency: Int) async -> [Result<FetchedBody, Error>] {
        @Sendable func fetch(_ file: PendingFile, _ fetcher: any BodyFetcher) async -> Result<FetchedBody, Error> {
            do { return .success(try await fetcher.fetch(file.body)) } catch { return .failure(error) }
        }
        if concurrency <= 1 || files.count <= 1 {
            var out: [Result<FetchedBody, Error>] = []
            out.reserveCapacity(files.count)
            for (file, fetcher) in files { out.append(await fetch(file, fetcher)) }
            return out
        }
        return await withTaskGroup(of: (Int, Result<FetchedBody, Error>).self) { group in
            var out = [Result<FetchedBody, Error>?](repeating: nil, count: files.count)
            var next = 0
            // A sliding window: a new fetch starts as soon as any one ends.
            while next < min(files.count, concurrency) {
                let (i, (file, fetcher)) = (next, files[next])
                group.addTask { (i, await fetch(file, fetcher)) }
                next += 1
            }
            for await (i, result) in group {
                out[i] = result
                if next < files.count {
                    let (j, (file, fetcher)) = (next, files[next])
                    group.addTask { (j, await fetch(file, fetcher)) }
                    next += 1
                }
            }
            return out.map { $0 ?? .failure(DESKitError(.invalidData, "body was not fetched")) }
        }
    }

    /// Starts taking the next batch — claimed (`claim_mode: row`) or read (`lease`) — and fetching its bodies.
    func startTake(shards: [Int]) -> Task<ClaimedBatch, Error> {
        let (sources, limits, holder) = (context.sources, claimLimits, holder.description)
        let (concurrency, epoch, retry) = (config.fetchConcurrency, machine.activity, retry)
        guard config.claimMode == .lease else {
            return Task {
                try await Packer.claimBatch(
                    sources: sources, shards: shards, limits: limits, holder: holder, fetchConcurrency: concurrency, epoch: epoch,
                    retry: retry)
            }
        }
        // Snapshots: no batch is taken in while this one is read, so the rows in flight stay these.
        let plan = machine.readPlan(shards: shards)
        return Task {
            try await Packer.readBatch(
                sources: sources, shards: shards, limits: limits, plan: plan, fetchConcurrency: concurrency, epoch: epoch, retry: retry)
        }
    }

    /// `claim_mode: lease`: up to each source's limit of pending rows of `shards` that are not in
    /// flight (by id, or by name: a row whose id changed in flight), read after the source's
    /// cursor in `plan` (pages of the limit, until enough are found or the read reaches the end
    /// and starts over next time); no row is written. Bodies fetched.
    static func readBatch(
        sources: [PackerSource], shards: [Int], limits: [String: Int], plan: PackerStateMachine.ReadPlan,
        fetchConcurrency: Int, epoch: Int, retry: RetryPolicy
    ) async throws -> ClaimedBatch {
        let start = monotonicSeconds()
        var files: [(PendingFile, any BodyFetcher)] = []
        var saturated = false
        var next: [String: String] = [:]
        var twins = false
        for source in sources {
            let limit = limits[source.name] ?? 1
            var cursor = plan.cursors[source.name]
            let held = plan.rows[source.name] ?? [:]
            var taken: [PendingFile] = []
            // A read that starts over while rows are in flight meets them all again (they stay
            // pending until marked): it reads ids and names first where the source can, and whole
            // rows only of those not in flight.
            let keysFirst = cursor == nil && !held.isEmpty
            // Whether a row read is not in flight (a twin of one that is is noted).
            func isFresh(_ rowID: String, _ name: String) -> Bool {
                switch plan.inFlight(held: held, rowID: rowID, name: name) {
                case nil: return true
                case .same?: return false
                case .twin?:
                    twins = true
                    return false
                }
            }
            while taken.count < limit {
                let (after, connector) = (cursor, source.connector)
                let (count, last): (Int, String?)
                var fresh: [PendingFile] = []
                if keysFirst, let keys = try await retry.run({ try await connector.readPendingNames(shards: shards, afterRowID: after, limit: limit) }) {
                    (count, last) = (keys.count, keys.last?.rowID)
                    let wanted = keys.filter { isFresh($0.rowID, $0.desName) }.map(\.rowID)
                    // Checked again whole: a name may have changed between the two reads.
                    if !wanted.isEmpty {
                        fresh = try await retry.run { try await connector.readPending(rowIDs: wanted, shards: shards) }.filter { isFresh($0.rowID, $0.desName) }
                    }
                } else {
                    let page = try await retry.run { try await connector.readPending(shards: shards, afterRowID: after, limit: limit) }
                    (count, last) = (page.count, page.last?.rowID)
                    fresh = page.filter { isFresh($0.rowID, $0.desName) }
                }
                taken += fresh.prefix(limit - taken.count)
                if count < limit {
                    cursor = nil  // the end: the next read starts over (and finds rows named late)
                    break
                }
                cursor = last
            }
            if let last = taken.last, taken.count >= limit { cursor = last.rowID }
            next[source.name] = cursor
            saturated = saturated || taken.count >= limit
            files += taken.map { ($0, source.fetcher) }
        }
        let readSeconds = monotonicSeconds() - start
        let bodies = await fetchAll(files, concurrency: fetchConcurrency)
        return ClaimedBatch(
            files: files.map(\.0), bodies: bodies, shards: shards, epoch: epoch, claimSeconds: readSeconds,
            saturated: saturated && !shards.isEmpty, cursors: next, fromStart: sources.allSatisfy { plan.cursors[$0.name] == nil },
            twins: twins)
    }

    /// Hands the rows the background marks have marked packed to the machine.
    func dropMarkedRows() {
        let rows = markedRows.take()
        if !rows.isEmpty { machine.marked(rows) }
    }

    /// Lets go of rows in hand that will not be packed now: claims are returned (`row`), rows
    /// read only leave the in-flight set (`lease`: they are still pending, nothing to write).
    func letGo(_ rows: [String: [String]]) async {
        await giveBack(machine.letGo(rows))
    }

    /// Returns claims to pending, best effort (a row left claimed is recovered later).
    func giveBack(_ claims: [String: [String]]) async {
        for (name, ids) in claims {
            guard let source = context.source(name) else { continue }
            _ = try? await retry.run { try await source.connector.releaseClaims(rowIDs: ids, holder: holder.description) }
        }
    }

    /// Waits for a batch claimed ahead and gives its rows back unpacked (shutdown, an error).
    func discardPrefetch(reason: String) async {
        guard let task = runState.prefetch else { return }
        runState.prefetch = nil
        guard let batch = try? await task.value else { return }
        for case .success(let body) in batch.bodies where body.isTemporary { try? FileManager.default.removeItem(atPath: body.path) }
        // Never taken in: in lease mode these rows are not in flight, so nothing to drop.
        if config.claimMode == .row { await release(batch.files, reason: reason) }
    }

    /// Marks the rows of an uploaded container packed, in the background, batched with the other
    /// containers waiting (``MarkQueue``): at most ``MarkQueue/concurrency`` batches run at a
    /// time, and whatever was uploaded meanwhile goes in the next, in one transaction per source. A container's rows lie
    /// scattered over the catalog (it holds one shard's), so each mark alone would write most of
    /// a SQLite catalog's pages again; a batch writes each once. A crash before the mark is
    /// covered: recovery adopts an uploaded container and marks its rows. Waits while more than
    /// ``MarkQueue/waitingLimit`` containers wait.
    func markPackedInBackground(_ container: PackerStateMachine.Container) async throws {
        if markQueue.add(container) {
            // The tasks that have ended: their outcome is taken now, after the next one has
            // started, so a failure of their batch cannot strand this container. A task still
            // running is left to run.
            let ended = runState.marking.filter(\.hasEnded)
            runState.marking.removeAll(where: \.hasEnded)
            startMarking()
            for marking in ended { try await marking.task.value }
        }
        if markQueue.waiting > MarkQueue.waitingLimit, !runState.marking.isEmpty {
            markQueue.flush()
            while !runState.marking.isEmpty { try await runState.marking.removeFirst().task.value }
        }
    }

    /// Starts a task that marks the waiting containers, batch after batch until none wait.
    private func startMarking() {
        let (context, marked, queue) = (context, markedRows, markQueue)
        let ended = MarkingTask.EndFlag()
        let task = Task {
            defer { ended.set() }
            do {
                while let batch = await queue.next() { try await Packer.mark(batch, context: context, marked: marked) }
            } catch {
                queue.stopped()
                throw error
            }
        }
        runState.marking.append(MarkingTask(task: task, ended: ended))
    }

    /// Marks the rows of `batch` packed: per source, every container's rows in one call; then,
    /// in lease mode, each manifest is recorded marked.
    private static func mark(_ batch: [PackerStateMachine.Container], context: PackerContext, marked: MarkedRows) async throws {
        let lease = context.config.claimMode == .lease
        var bySource: [String: [ContainerMark]] = [:]
        for container in batch {
            for (name, ids) in container.rows {
                bySource[name, default: []].append(ContainerMark(container: container.record.key, rowIDs: ids, names: container.names[name] ?? []))
            }
        }
        for (name, marks) in bySource.sorted(by: { $0.key < $1.key }) {
            guard let connector = context.source(name)?.connector else { continue }
            let changed: [Int]
            if lease {
                let outcome = try await connector.markManifestRows(marks, metadata: context.metadata, retry: context.retry, logger: context.logger)
                changed = outcome.map(\.changed)
                marked.add(marks.flatMap(\.rowIDs), source: name)
                try await tombstoneOrphans(marks: marks, orphans: outcome.map(\.orphans), source: name, batch: batch, context: context)
            } else {
                let holder = context.holder.description
                changed = try await context.retry.run { try await connector.markPacked(marks, holder: holder) }
            }
            for (mark, count) in zip(marks, changed) where count != mark.rowIDs.count {
                context.logger.warning(
                    "the mark changed fewer rows than the container holds: packed already (a retry after an answer lost with the connection, or recovery marked them), gone from the catalog, or changed; des check tells which",
                    metadata: ["key": "\(mark.container)", "source": "\(name)", "expected": "\(mark.rowIDs.count)", "changed": "\(count)"])
            }
        }
        context.logger.debug("rows marked packed", metadata: ["containers": "\(batch.count)", "files": "\(batch.reduce(0) { $0 + $1.fileCount })"])
        // Every row of these manifests is packed now: recovery need not mark them again.
        if lease {
            for container in batch {
                try await context.retry.run { try await context.metadata.manifestMarked(containerID: container.record.id) }
            }
        }
    }

    /// `claim_mode: lease`: entries of just-marked containers whose names no row of their source
    /// holds any more — the row deleted from the catalog, or renamed (a filesystem source's row
    /// whose file changed) while the container was open — are tombstoned: never served, dropped
    /// by compaction, and not orphans to `des check`. Their names were never marked packed.
    private static func tombstoneOrphans(
        marks: [ContainerMark], orphans: [[String]], source: String, batch: [PackerStateMachine.Container], context: PackerContext
    ) async throws {
        let ids = Dictionary(batch.map { ($0.record.key, $0.record.id) }, uniquingKeysWith: { a, _ in a })
        let stones = zip(marks, orphans).flatMap { mark, names in
            names.map { name in
                Tombstone(
                    name: name, reason: "never marked packed: no row of source '\(source)' holds the name any more (deleted, or renamed as its file changed, while the container was open)",
                    origin: "unmarked", containerID: ids[mark.container], bytes: 0)
            }
        }
        guard !stones.isEmpty else { return }
        _ = try await context.retry.run { try await context.metadata.addTombstones(stones) }
        context.logger.notice(
            "entries whose rows were gone or renamed while their container was open are tombstoned",
            metadata: ["source": "\(source)", "count": "\(stones.count)", "first": "\(stones[0].name)"])
    }

    /// Waits until every row of an uploaded container is marked packed; passes on the first failure.
    func awaitMarking() async throws {
        markQueue.flush()
        var first: Error?
        while true {
            while !runState.marking.isEmpty {
                do { try await runState.marking.removeFirst().task.value } catch { if first == nil { first = error } }
            }
            // Containers a failed batch left waiting are marked now, unless it failed this time
            // (then recovery marks them: their containers are recorded uploaded).
            guard first == nil, markQueue.restart() else { break }
            startMarking()
        }
        dropMarkedRows()
        if let first { throw first }
    }
}
