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
            var taken: [PendingFile] = []
            while taken.count < limit {
                let after = cursor
                let page = try await retry.run { try await source.connector.readPending(shards: shards, afterRowID: after, limit: limit) }
                var fresh: [PendingFile] = []
                for row in page {
                    switch plan.inFlight(source: source.name, rowID: row.rowID, name: row.desName) {
                    case nil: fresh.append(row)
                    case .same?: break
                    case .twin?: twins = true
                    }
                }
                taken += fresh.prefix(limit - taken.count)
                if page.count < limit {
                    cursor = nil  // the end: the next read starts over (and finds rows named late)
                    break
                }
                cursor = page.last?.rowID
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

    /// Marks the rows of an uploaded container packed, in the background; at most a few run at
    /// once (beyond that the oldest is waited for), and a failure surfaces at the next wait. This
    /// container's marks start first, so an older one's failure never leaves them unstarted.
    func markPackedInBackground(_ container: PackerStateMachine.Container) async throws {
        let (context, marked, rows, names) = (context, markedRows, container.rows, container.names)
        let (key, containerID, lease) = (container.record.key, container.record.id, context.config.claimMode == .lease)
        runState.marking.append(Task {
            let holder = context.holder.description
            for (name, ids) in rows {
                guard let connector = context.source(name)?.connector else { continue }
                let changed: Int
                if lease {
                    changed = try await connector.markManifestRows(
                        ids: ids, names: names[name] ?? [], container: key, metadata: context.metadata, retry: context.retry,
                        logger: context.logger)
                    marked.add(ids, source: name)
                } else {
                    changed = try await context.retry.run { try await connector.markPacked(rowIDs: ids, container: key, holder: holder) }
                }
                if changed != ids.count {
                    context.logger.warning(
                        "some rows were not marked packed (gone from the catalog, or changed)",
                        metadata: ["key": "\(key)", "expected": "\(ids.count)", "changed": "\(changed)"])
                }
            }
            // Every row of the manifest is packed now: recovery need not mark them again.
            if lease { try await context.retry.run { try await context.metadata.manifestMarked(containerID: containerID) } }
        })
        while runState.marking.count > 4 {
            try await runState.marking.removeFirst().value
        }
    }

    /// Waits until every row of an uploaded container is marked packed; passes on the first failure.
    func awaitMarking() async throws {
        var first: Error?
        while !runState.marking.isEmpty {
            do { try await runState.marking.removeFirst().value } catch { if first == nil { first = error } }
        }
        dropMarkedRows()
        if let first { throw first }
    }
}
