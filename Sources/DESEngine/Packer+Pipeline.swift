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
    /// `claim_mode: lease`: where each source's keyset read goes on after this batch.
    var cursors: [String: String] = [:]
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
    var claimLimits: [String: Int] {
        Dictionary(
            parts.sources.map { ($0.name, parts.policies[$0.name]?.claimBatchSize ?? config.batchSize) },
            uniquingKeysWith: { first, _ in first })
    }

    /// Claims up to its limit (`limits`, by source name) of rows of `shards` from every source and fetches their bodies.
    ///
    /// Runs off the packer (it captures only sendable parts). When a source fails, the rows
    /// already claimed from the others are given back before the error is passed on.
    static func claimBatch(
        sources: [any SourceConnector], fetchers: [String: any BodyFetcher], shards: [Int], limits: [String: Int],
        holder: String, fetchConcurrency: Int, epoch: Int, retry: RetryPolicy
    ) async throws -> ClaimedBatch {
        let start = monotonicSeconds()
        var files: [PendingFile] = []
        var saturated = false
        do {
            for source in sources {
                let limit = limits[source.name] ?? 1
                let claimed = try await retry.run { try await source.claim(shards: shards, limit: limit, holder: holder) }
                saturated = saturated || claimed.count >= limit
                files += claimed
            }
        } catch {
            await giveBack(files, sources: sources, holder: holder, retry: retry)
            throw error
        }
        let claimed = monotonicSeconds()
        let bodies = await fetchAll(files, fetchers: fetchers, concurrency: fetchConcurrency)
        return ClaimedBatch(
            files: files, bodies: bodies, shards: shards, epoch: epoch, claimSeconds: claimed - start, saturated: saturated && !shards.isEmpty)
    }

    /// Returns claims to pending, best effort (a row left claimed is recovered later).
    static func giveBack(_ files: [PendingFile], sources: [any SourceConnector], holder: String, retry: RetryPolicy) async {
        var bySource: [String: [String]] = [:]
        for file in files { bySource[file.source, default: []].append(file.rowID) }
        for (name, ids) in bySource {
            guard let source = sources.first(where: { $0.name == name }) else { continue }
            _ = try? await retry.run { try await source.releaseClaims(rowIDs: ids, holder: holder) }
        }
    }

    /// Fetches bodies, at most `concurrency` at once (results in input order).
    static func fetchAll(
        _ files: [PendingFile], fetchers: [String: any BodyFetcher], concurrency: Int
    ) async -> [Result<FetchedBody, Error>] {
        @Sendable func fetch(_ file: PendingFile) async -> Result<FetchedBody, Error> {
            guard let fetcher = fetchers[file.source] else {
                return .failure(DESKitError(.configuration, "no body fetcher for source '\(file.source)'"))
            }
            do { return .success(try await fetcher.fetch(file.body)) } catch { return .failure(error) }
        }
        if concurrency <= 1 || files.count <= 1 {
            var out: [Result<FetchedBody, Error>] = []
            out.reserveCapacity(files.count)
            for file in files { out.append(await fetch(file)) }
            return out
        }
        return await withTaskGroup(of: (Int, Result<FetchedBody, Error>).self) { group in
            var out = [Result<FetchedBody, Error>?](repeating: nil, count: files.count)
            var next = 0
            // A sliding window: a new fetch starts as soon as any one ends.
            while next < min(files.count, concurrency) {
                let (i, file) = (next, files[next])
                group.addTask { (i, await fetch(file)) }
                next += 1
            }
            for await (i, result) in group {
                out[i] = result
                if next < files.count {
                    let (j, file) = (next, files[next])
                    group.addTask { (j, await fetch(file)) }
                    next += 1
                }
            }
            return out.map { $0 ?? .failure(DESKitError(.invalidData, "body was not fetched")) }
        }
    }

    /// Starts taking the next batch — claimed (`claim_mode: row`) or read (`lease`) — and fetching its bodies.
    func startTake(shards: [Int]) -> Task<ClaimedBatch, Error> {
        let (sources, fetchers, limits, holder) = (parts.sources, parts.fetchers, claimLimits, holder.description)
        let (concurrency, epoch, retry) = (config.fetchConcurrency, activity, retry)
        guard config.claimMode == .lease else {
            return Task {
                try await Packer.claimBatch(
                    sources: sources, fetchers: fetchers, shards: shards, limits: limits, holder: holder,
                    fetchConcurrency: concurrency, epoch: epoch, retry: retry)
            }
        }
        // Snapshots: no batch is absorbed while this one is taken, so the rows in flight stay these.
        let (inFlight, cursors) = (inFlight, shards == cursorShards ? cursors : [:])
        return Task {
            try await Packer.readBatch(
                sources: sources, fetchers: fetchers, shards: shards, limits: limits, inFlight: inFlight, cursors: cursors,
                fetchConcurrency: concurrency, epoch: epoch, retry: retry)
        }
    }

    /// `claim_mode: lease`: up to each source's limit of pending rows of `shards` that are not in
    /// flight, read after the source's cursor (pages of the limit, until enough are found or the
    /// read reaches the end and starts over next time); no row is written. Bodies fetched.
    static func readBatch(
        sources: [any SourceConnector], fetchers: [String: any BodyFetcher], shards: [Int], limits: [String: Int],
        inFlight: [String: Set<String>], cursors: [String: String], fetchConcurrency: Int, epoch: Int, retry: RetryPolicy
    ) async throws -> ClaimedBatch {
        let start = monotonicSeconds()
        var files: [PendingFile] = []
        var saturated = false
        var next: [String: String] = [:]
        for source in sources {
            let limit = limits[source.name] ?? 1
            let busy = inFlight[source.name] ?? []
            var cursor = cursors[source.name]
            var taken: [PendingFile] = []
            while taken.count < limit {
                let after = cursor
                let page = try await retry.run { try await source.readPending(shards: shards, afterRowID: after, limit: limit) }
                taken += page.lazy.filter { !busy.contains($0.rowID) }.prefix(limit - taken.count)
                if page.count < limit {
                    cursor = nil  // the end: the next read starts over (and finds rows named late)
                    break
                }
                cursor = page.last?.rowID
            }
            if let last = taken.last, taken.count >= limit { cursor = last.rowID }
            next[source.name] = cursor
            saturated = saturated || taken.count >= limit
            files += taken
        }
        let read = monotonicSeconds()
        let bodies = await fetchAll(files, fetchers: fetchers, concurrency: fetchConcurrency)
        return ClaimedBatch(
            files: files, bodies: bodies, shards: shards, epoch: epoch, claimSeconds: read - start, saturated: saturated && !shards.isEmpty,
            cursors: next.compactMapValues { $0 })
    }

    /// Takes a batch's rows into the packer's hands (`claim_mode: lease`: into the in-flight set,
    /// and the cursors on).
    func absorb(_ batch: ClaimedBatch) {
        guard config.claimMode == .lease else { return }
        for file in batch.files { inFlight[file.source, default: []].insert(file.rowID) }
        cursors = batch.cursors
        cursorShards = batch.shards
    }

    /// Drops from the in-flight set the rows marked packed in the background.
    func dropMarkedRows() {
        for (source, ids) in markedRows.take() { inFlight[source]?.subtract(ids) }
    }

    /// Lets go of rows in hand that will not be packed now: claims are returned (`row`), rows
    /// read are dropped from the in-flight set (`lease`: they are still pending, nothing to write).
    func letGo(_ rows: [String: [String]], reason: String) async {
        guard !rows.isEmpty else { return }
        activity += 1
        if config.claimMode == .lease {
            for (source, ids) in rows { inFlight[source]?.subtract(ids) }
            return
        }
        for (source, ids) in rows {
            _ = try? await retry.run { try await sourceNamed(source)?.releaseClaims(rowIDs: ids, holder: holder.description) }
        }
    }

    /// Waits for a batch claimed ahead and gives its rows back unpacked (shutdown, an error).
    func discardPrefetch(reason: String) async {
        guard let task = prefetch else { return }
        prefetch = nil
        guard let batch = try? await task.value else { return }
        for case .success(let body) in batch.bodies where body.isTemporary { try? FileManager.default.removeItem(atPath: body.path) }
        await release(batch.files, reason: reason)
    }

    /// Marks the rows of an uploaded container packed, in the background; at most a few run at
    /// once (the oldest is waited for first), and a failure surfaces at the next ``awaitMarking()``.
    func markPackedInBackground(_ rows: [String: [String]], key: String, containerID: Int64) async throws {
        while marking.count >= 4 {
            try await marking.removeFirst().value
        }
        let (sources, metadata, marked) = (parts.sources, parts.metadata, markedRows)
        let (holder, retry, logger, lease) = (holder.description, retry, logger, config.claimMode == .lease)
        marking.append(Task {
            for (name, ids) in rows {
                guard let connector = sources.first(where: { $0.name == name }) else { continue }
                let changed = try await retry.run {
                    lease
                        ? try await connector.markPackedUnlessPacked(rowIDs: ids, container: key)
                        : try await connector.markPacked(rowIDs: ids, container: key, holder: holder)
                }
                if lease { marked.add(ids, source: name) }
                if changed != ids.count {
                    logger.warning(
                        "some rows were not marked packed", metadata: ["key": "\(key)", "expected": "\(ids.count)", "changed": "\(changed)"])
                }
            }
            // Every row of the manifest is packed now: recovery need not mark them again.
            if lease { try await retry.run { try await metadata.manifestMarked(containerID: containerID) } }
        })
    }

    /// Waits until every row of an uploaded container is marked packed; passes on the first failure.
    func awaitMarking() async throws {
        var first: Error?
        while !marking.isEmpty {
            do { try await marking.removeFirst().value } catch { if first == nil { first = error } }
        }
        dropMarkedRows()
        if let first { throw first }
    }
}
