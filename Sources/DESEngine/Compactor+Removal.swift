import DESKit

extension Compactor {
    /// Deletes the objects of containers retired at least `compaction.grace` ago: the big files
    /// of its deleted entries, its object, and last its `.compacted` record — so a crash part
    /// way leaves it `retired`, and the next pass does the rest. Its record stays (`deleted`),
    /// with the link to its replacement that rows naming it are resolved through.
    func removeRetired(totals: inout Totals) async throws {
        let due = try await retry.run { try await metadata.retiredContainers(olderThanSeconds: config.compaction.graceSeconds) }
        for old in due {
            let recordKey = Self.compactedRecordKey(of: old.key)
            var note: CompactedRecord?
            do {
                let bytes = try await retry.run { try await storage.get(key: recordKey) }
                note = try? CompactedRecord.decode(bytes)
            } catch let error as DESKitError where error.code == .notFound {
                note = nil  // removed already, by a pass a crash cut short
            }
            for external in note?.dropExternal ?? [] { try await retry.run { try await storage.delete(key: external) } }
            try await retry.run { try await storage.delete(key: old.key) }
            try await retry.run { try await storage.delete(key: recordKey) }
            try await retry.run { try await metadata.containerObjectDeleted(id: old.id) }
            totals.objectsDeleted += 1
            metrics.objectsDeleted.increment()
        }
        if !due.isEmpty { logger.info("replaced containers deleted after the grace period", metadata: ["count": "\(due.count)"]) }
    }
}
