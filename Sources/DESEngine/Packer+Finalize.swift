import DESFormat
import DESKit
import Foundation
import Logging

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

extension FinalizeOutcome {
    /// The outcome as the state machine takes it (without its values).
    var result: PackerStateMachine.FinalizeResult {
        switch self {
        case .uploaded: .uploaded
        case .storeFailed: .storeFailed
        case .fenced: .fenced
        case .recordFailed: .recordFailed
        }
    }
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
        guard machine.open[slot] != nil else { return }
        // Make room first: should an earlier finalization's failure surface here, this container
        // is still open, and is abandoned with the others.
        try await settleFinalizations(keeping: Self.finalizationsInFlight - 1)
        guard let step = machine.startFinalizing(slot) else { return }
        context.metrics.openContainers.record(machine.open.count)
        switch step {
        case .discardEmpty(let c):
            runState.files.removeValue(forKey: c.record.id)?.abort()
            try await retry.run { try await metadata.discardContainer(id: c.record.id) }
        case .store(let c, let withManifest):
            guard let file = runState.files[c.record.id] else {
                throw DESKitError(.invalidData, "container \(c.record.key) has no file in the work directory")
            }
            // claim_mode lease: the rows it holds are recorded with it, fenced, before the upload.
            let manifest = withManifest ? ContainerManifest(rows: c.rows) : nil
            let context = context
            runState.finalizations[c.record.id] = Task {
                let start = monotonicSeconds()
                let outcome = await Packer.closeAndStore(c, file: file, manifest: manifest, context: context)
                context.metrics.finalizeDuration.recordSeconds(monotonicSeconds() - start)
                return outcome
            }
        }
    }

    /// The background part of ``finalize(_:)``: it touches only the container it was handed.
    private static func closeAndStore(
        _ c: PackerStateMachine.Container, file: ContainerFile, manifest: ContainerManifest?, context: PackerContext
    ) async -> FinalizeOutcome {
        let (key, retry, metadata) = (c.record.key, context.retry, context.metadata)
        let info: ObjectInfo
        do {
            // Closing writes the index and syncs: blocking work, kept off the cooperative pool.
            let summary = try await context.closer.run { try file.close() }
            if let manifest {
                // Before the object exists: whoever finds it later finds its rows too.
                let recorded = try await retry.run { try await metadata.recordManifest(containerID: c.record.id, manifest: manifest, lease: c.lease) }
                if !recorded {
                    try? FileManager.default.removeItem(atPath: file.path)
                    return .fenced
                }
            }
            info = try await retry.run { try await context.storage.put(key: key, fromFile: file.path) }
            guard info.size == summary.archiveSize else {
                throw DESKitError(.storage, "uploaded '\(key)' is \(info.size) bytes, expected \(summary.archiveSize)")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: file.path)
            return .storeFailed(error)
        }
        try? FileManager.default.removeItem(atPath: file.path)
        do {
            let recorded = try await retry.run {
                try await metadata.markUploaded(
                    containerID: c.record.id, fileCount: c.fileCount, bytes: c.bytes, size: info.size, etag: info.etag, lease: c.lease)
            }
            if recorded { await NameRanges.record(c.record, names: file.names, metadata: metadata, retry: retry, logger: context.logger) }
            return recorded ? .uploaded(info) : .fenced
        } catch {
            return .recordFailed(error)
        }
    }

    /// Waits for the oldest finalizations until at most `keeping` run, acting on each outcome;
    /// every one waited for is acted on, and the first failure is passed on after.
    func settleFinalizations(keeping: Int = 0) async throws {
        var first: Error?
        while machine.finalizing.count > max(0, keeping), let oldest = machine.finalizing.first {
            do { try await settle(oldest.record.id) } catch { if first == nil { first = error } }
        }
        if let first { throw first }
    }

    /// Acts on the outcome of the finalization of container `id`, once its task has ended.
    private func settle(_ id: Int64) async throws {
        guard let task = runState.finalizations.removeValue(forKey: id) else {
            // Cannot happen (a task is started with every container taken out to be stored); if
            // it did, the container is given up like a failed upload, never left in the machine.
            if case .abandon(let c, _)? = machine.finalizeEnded(id, .storeFailed) {
                await abandon(c, objectMayExist: true, reason: "no finalization task")
            }
            throw DESKitError(.invalidData, "container \(id) was finalizing with no task")
        }
        let outcome = await task.value
        guard let after = machine.finalizeEnded(id, outcome.result) else { return }
        switch after {
        case .markPacked(let c):
            runState.files.removeValue(forKey: id)
            try await markPackedInBackground(c)
            runState.totals.filesPacked += c.fileCount
            runState.totals.bytesPacked += c.bytes
            runState.totals.containersUploaded += 1
            context.metrics.filesPacked.increment(by: c.fileCount)
            context.metrics.bytesPacked.increment(by: Int(c.bytes))
            context.metrics.containersUploaded.increment()
            if case .uploaded(let info) = outcome {
                context.metrics.bytesUploaded.increment(by: Int(info.size))
                logger.info("container uploaded", metadata: ["key": "\(c.record.key)", "files": "\(c.fileCount)", "bytes": "\(info.size)"])
            }
        case .abandon(let c, let loseLease):
            if loseLease {
                context.metrics.fencingRejections.increment()
                logger.warning("container upload fenced: lease lost", metadata: ["key": "\(c.record.key)"])
            }
            var reason = "upload fenced"
            if case .storeFailed(let error) = outcome { reason = "upload failed: \(error)" }
            await abandon(c, objectMayExist: true, reason: reason)
            if loseLease { book.lose(c.record.shard, token: c.lease.token) }
            if case .storeFailed(let error) = outcome { throw error }
        case .leaveForRecovery(let c):
            runState.files.removeValue(forKey: id)
            if case .recordFailed(let error) = outcome {
                logger.warning(
                    "recording an uploaded container failed; its rows stay claimed for recovery",
                    metadata: ["key": "\(c.record.key)", "error": "\(error)"])
                throw error
            }
        }
    }

    /// Finalizes every open container (shutdown, or idle in until-idle mode).
    /// Returns when they are uploaded and their rows marked packed too.
    func finalizeAll() async throws {
        for slot in machine.open.keys.sorted() { try await finalize(slot) }
        try await settleFinalizations()
        try await awaitMarking()
    }
}
