import DESFormat
import DESKit
import Foundation
import Logging

/// A full container handed to the background: closed, uploaded and recorded `uploaded` while
/// the packer goes on filling the others.
struct Finalization {
    let container: OpenContainer
    let task: Task<FinalizeOutcome, Never>
}

/// How the background part of one finalization ended; the packer acts on it in its own task.
enum FinalizeOutcome: Sendable {
    /// Stored and recorded `uploaded`: the rows are to be marked packed.
    case uploaded(ObjectInfo)
    /// Closing or storing failed (the object may exist): abandon the container, pass the error on.
    case storeFailed(any Error)
    /// Stored, but the record was refused under the container's fencing token: the lease was lost.
    case fenced
    /// Recording `uploaded` failed after retries: the outcome is unknown, so the rows stay
    /// claimed and the object stays, for recovery to adopt or discard.
    case recordFailed(any Error)
}

/// Moves an open container into the task that finalizes it. Sound because ownership moves
/// with it: the packer has taken the container out of ``Packer/open`` before the task starts,
/// and touches it again only after the task has ended (``Packer/settle(_:)``).
struct ContainerHandoff: @unchecked Sendable {
    let container: OpenContainer
}

extension Packer {
    /// Finalizations running at once; starting one more first waits for the oldest.
    static let finalizationsInFlight = 4

    /// Close, upload, check, record uploaded under the fencing token, then mark the rows packed.
    ///
    /// The close, the upload and the record run in the background (at most
    /// ``finalizationsInFlight`` at once) so that a slow store — seconds for a large object on
    /// S3, an `fsync` on a busy disk — does not stop the packing of every other shard; their
    /// outcome is acted on by ``settle(_:)``. A fenced upload (the lease was lost) abandons the
    /// container and gives its rows back, and the packer carries on. Any other failure abandons
    /// it too and is passed on — except when recording `uploaded` itself fails after retries:
    /// then the outcome is unknown, so the rows stay claimed and the object stays for recovery
    /// to adopt or discard.
    func finalize(_ slot: ContainerSlot) async throws {
        guard open[slot] != nil else { return }
        // Make room first: should an earlier finalization's failure surface here, this container
        // is still open, and is abandoned with the others.
        try await settleFinalizations(keeping: Self.finalizationsInFlight - 1)
        guard let c = open.removeValue(forKey: slot) else { return }
        metrics.openContainers.record(open.count)
        if c.fileCount == 0 {
            c.writer.abort()
            try await retry.run { try await parts.metadata.discardContainer(id: c.record.id) }
            return
        }
        let handoff = ContainerHandoff(container: c)
        // claim_mode lease: the rows it holds are recorded with it, fenced, before the upload.
        let manifest = config.claimMode == .lease ? ContainerManifest(rows: c.rows) : nil
        let storage = parts.storage
        let metadata = parts.metadata
        let retry = retry
        let closer = closer
        let metrics = metrics
        let task = Task {
            let start = monotonicSeconds()
            let outcome = await Packer.closeAndStore(
                handoff, manifest: manifest, storage: storage, metadata: metadata, retry: retry, closer: closer)
            metrics.finalizeDuration.recordSeconds(monotonicSeconds() - start)
            return outcome
        }
        finalizing.append(Finalization(container: c, task: task))
    }

    /// The background part of ``finalize(_:)``: it touches only the container it was handed.
    private static func closeAndStore(
        _ handoff: ContainerHandoff, manifest: ContainerManifest?, storage: any StorageBackend, metadata: any MetadataStore,
        retry: RetryPolicy, closer: DedicatedThread
    ) async -> FinalizeOutcome {
        let c = handoff.container
        let key = c.record.key
        let info: ObjectInfo
        do {
            // Closing writes the index and syncs: blocking work, kept off the cooperative pool.
            let summary = try await closer.run { try handoff.container.writer.close() }
            if let manifest {
                // Before the object exists: whoever finds it later finds its rows too.
                let recorded = try await retry.run { try await metadata.recordManifest(containerID: c.record.id, manifest: manifest, lease: c.lease) }
                if !recorded {
                    try? FileManager.default.removeItem(atPath: c.path)
                    return .fenced
                }
            }
            info = try await retry.run { try await storage.put(key: key, fromFile: c.path) }
            guard info.size == summary.archiveSize else {
                throw DESKitError(.storage, "uploaded '\(key)' is \(info.size) bytes, expected \(summary.archiveSize)")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: c.path)
            return .storeFailed(error)
        }
        try? FileManager.default.removeItem(atPath: c.path)
        do {
            let recorded = try await retry.run {
                try await metadata.markUploaded(
                    containerID: c.record.id, fileCount: c.fileCount, bytes: c.bytes, size: info.size, etag: info.etag, lease: c.lease)
            }
            return recorded ? .uploaded(info) : .fenced
        } catch {
            return .recordFailed(error)
        }
    }

    /// Waits for the oldest finalizations until at most `keeping` run, acting on each outcome;
    /// every one waited for is acted on, and the first failure is passed on after.
    func settleFinalizations(keeping: Int = 0) async throws {
        var first: Error?
        while finalizing.count > max(0, keeping) {
            let done = finalizing.removeFirst()
            do { try await settle(done) } catch { if first == nil { first = error } }
        }
        if let first { throw first }
    }

    /// Whether a finalization of `shard` is still running.
    func isFinalizing(shard: Int) -> Bool { finalizing.contains { $0.container.record.shard == shard } }

    /// Acts on the outcome of one finalization, once its task has ended.
    private func settle(_ done: Finalization) async throws {
        let c = done.container
        let key = c.record.key
        switch await done.task.value {
        case .uploaded(let info):
            try await markPackedInBackground(c.rows, key: key, containerID: c.record.id)
            totals.filesPacked += c.fileCount
            totals.bytesPacked += c.bytes
            totals.containersUploaded += 1
            metrics.filesPacked.increment(by: c.fileCount)
            metrics.bytesPacked.increment(by: Int(c.bytes))
            metrics.containersUploaded.increment()
            logger.info("container uploaded", metadata: ["key": "\(key)", "files": "\(c.fileCount)", "bytes": "\(info.size)"])
        case .storeFailed(let error):
            await abandon(c, objectMayExist: true, reason: "upload failed: \(error)")
            throw error
        case .fenced:
            logger.warning("container upload fenced: lease lost", metadata: ["key": "\(key)"])
            await abandon(c, objectMayExist: true, reason: "upload fenced")
            book.lose(c.record.shard, token: c.lease.token)
        case .recordFailed(let error):
            activity += 1
            logger.warning(
                "recording an uploaded container failed; its rows stay claimed for recovery",
                metadata: ["key": "\(key)", "error": "\(error)"])
            throw error
        }
    }

    /// Finalizes every open container (shutdown, or idle in until-idle mode).
    /// Returns when they are uploaded and their rows marked packed too.
    func finalizeAll() async throws {
        for slot in open.keys.sorted(by: { ($0.day, $0.shard) < ($1.day, $1.shard) }) { try await finalize(slot) }
        try await settleFinalizations()
        try await awaitMarking()
    }
}
