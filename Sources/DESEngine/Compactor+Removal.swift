import DESKit

extension Compactor {
    /// Deletes the objects of containers retired at least `compaction.grace` ago: first the rows
    /// still naming one are repointed at its replacement (a crash may have come between the
    /// compaction and its repointing), then the big files of its deleted entries, its object,
    /// and last its `.compacted` record — so a crash part way leaves it `retired`, and the next
    /// pass does the rest.
    func removeRetired(totals: inout Totals) async throws {
        let due = try await retry.run { try await metadata.retiredContainers(olderThanSeconds: config.compaction.graceSeconds) }
        for old in due {
            let recordKey = Self.compactedRecordKey(of: old.key)
            var note: CompactedRecord?
            if try await retry.run({ try await storage.head(key: recordKey) }) != nil {
                note = try? CompactedRecord.decode(try await retry.run { try await storage.get(key: recordKey) })
            }
            if let replacement = old.replacedBy {
                let newKey = containerKey(prefix: config.keyPrefix, day: old.day, shard: old.shard, id: replacement)
                for source in sources { _ = try await retry.run { try await source.repointContainer(from: old.key, to: newKey, names: nil) } }
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
