import DESKit
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

    /// Starts claiming the next batch in the background.
    func startPrefetch(shards: [Int]) -> Task<ClaimedBatch, Error> {
        let (sources, fetchers, limits, holder) = (parts.sources, parts.fetchers, claimLimits, holder.description)
        let (concurrency, epoch, retry) = (config.fetchConcurrency, activity, retry)
        return Task {
            try await Packer.claimBatch(
                sources: sources, fetchers: fetchers, shards: shards, limits: limits, holder: holder,
                fetchConcurrency: concurrency, epoch: epoch, retry: retry)
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
    func markPackedInBackground(_ rows: [String: [String]], key: String) async throws {
        while marking.count >= 4 {
            try await marking.removeFirst().value
        }
        let sources = parts.sources
        let (holder, retry, logger) = (holder.description, retry, logger)
        marking.append(Task {
            for (name, ids) in rows {
                guard let connector = sources.first(where: { $0.name == name }) else { continue }
                let changed = try await retry.run { try await connector.markPacked(rowIDs: ids, container: key, holder: holder) }
                if changed != ids.count {
                    logger.warning(
                        "some rows were not marked packed", metadata: ["key": "\(key)", "expected": "\(ids.count)", "changed": "\(changed)"])
                }
            }
        })
    }

    /// Waits until every row of an uploaded container is marked packed; passes on the first failure.
    func awaitMarking() async throws {
        var first: Error?
        while !marking.isEmpty {
            do { try await marking.removeFirst().value } catch { if first == nil { first = error } }
        }
        if let first { throw first }
    }
}
