import DESFormat
import DESKit
import DESNaming
import Foundation
import Logging

/// Deletes files by name (`des delete`, `DELETE /files/{name}`, retention): a tombstone in the
/// metadata store for each name an uploaded container holds — from then on no server serves it
/// (410 Gone), `des get` refuses it and compaction drops its bytes — then the rows holding those
/// names get `status_deleted_value` in every source that can write it.
public struct FileDeleter: Sendable {
    /// What a delete did.
    public struct Outcome: Sendable, Equatable {
        /// Names tombstoned now.
        public var deleted: [String] = []
        /// Names tombstoned before (left as they were).
        public var alreadyDeleted: [String] = []
        /// Names no uploaded container holds (not deleted: nothing to delete).
        public var notFound: [String] = []
        /// Catalog rows given the deleted status.
        public var rowsMarked = 0
        /// Sources whose rows could not be marked, with why (the tombstone stands regardless).
        public var rowProblems: [String] = []
        /// Creates an empty outcome.
        public init() {}
    }

    let sources: [any SourceConnector]
    let metadata: any MetadataStore
    let reader: StorageArchiveReader
    let shardBits: Int
    let logger: Logger

    /// A deleter over the metadata store and storage; `sources` are the catalogs whose rows get
    /// the deleted status (none: tombstones only, as the HTTP service records them).
    public init(sources: [any SourceConnector], metadata: any MetadataStore, storage: any StorageBackend, cache: (any IndexCache)?, shardBits: Int, logger: Logger) {
        self.sources = sources
        self.metadata = metadata
        self.reader = StorageArchiveReader(storage: storage, cache: cache)
        self.shardBits = shardBits
        self.logger = logger
    }

    /// The uploaded container holding `name` and its size there, newest container first; nil
    /// when none holds it (or it is not a DES name).
    ///
    /// A candidate container lost from storage cannot say whether it held the name: when a
    /// source has a row packed under the name, the name is taken as that container's (its size
    /// unknown, 0), so that an operator can still delete a file whose container is lost (were
    /// it restored from a backup, it stays deleted). Otherwise the loss is passed on.
    public func locate(_ name: String) async throws -> (container: ContainerRecord, bytes: UInt64)? {
        guard let (day, shard) = ContainerLookup.dayShard(of: name, shardBits: shardBits) else { return nil }
        let candidates = try await metadata.containers(state: .uploaded, shard: shard, day: day)
        var lost: (container: ContainerRecord, error: DESKitError)?
        if let found = try await ContainerLookup.find(name, shardBits: shardBits, among: candidates, reader: reader, lost: { lost = lost ?? ($0, $1) }) {
            return (found.container, found.entry.dataLength)
        }
        guard let lost else { return nil }
        for source in sources {
            let rows = (try? await source.rowsNamed([name])) ?? []
            if rows.contains(where: { $0.desName == name && ($0.state == .packed || $0.state == .other) }) {  // packed, or retired
                logger.warning("deleting a file whose container is not in storage", metadata: ["name": "\(name)", "container": "\(lost.container.key)"])
                return (lost.container, 0)
            }
        }
        throw lost.error
    }

    /// What is wrong with `reason` (`des delete --reason`, `DELETE /files?reason=`), or nil: it
    /// must say something, in at most 2,000 bytes, of printable text (it is kept with the
    /// tombstone and written to logs, where a line break would forge a line).
    public static func reasonProblem(_ reason: String) -> String? {
        if reason.trimmingCharacters(in: .whitespaces).isEmpty { return "is empty: say why" }
        if reason.utf8.count > 2_000 { return "is \(reason.utf8.count) bytes; at most 2,000" }
        if reason.unicodeScalars.contains(where: { [.control, .lineSeparator, .paragraphSeparator].contains($0.properties.generalCategory) }) {
            return "holds a control character (a line break, a tab, an escape, NUL…): say why in printable text"
        }
        return nil
    }

    /// Deletes `names` with `reason` (`origin`: `delete` or `retention`); a reason
    /// ``reasonProblem(_:)`` refuses is an `invalidData` error, and nothing is deleted.
    public func delete(names: [String], reason: String, origin: String = "delete") async throws -> Outcome {
        if let problem = Self.reasonProblem(reason) { throw DESKitError(.invalidData, "the reason \(problem)") }
        var outcome = Outcome()
        var stones: [Tombstone] = []
        let unique = Array(Set(names)).sorted()
        let before = try await metadata.tombstonedNames(among: unique)
        for name in unique {
            if before.contains(name) {
                outcome.alreadyDeleted.append(name)
                continue
            }
            guard let (container, bytes) = try await locate(name) else {
                outcome.notFound.append(name)
                continue
            }
            stones.append(Tombstone(name: name, reason: reason, origin: origin, containerID: container.id, bytes: bytes))
        }
        // Only the names this call tombstoned are deleted by it: one tombstoned meanwhile by
        // another process (a delete of the same name at the same moment) was already deleted.
        let added = stones.isEmpty ? [] : Set(try await metadata.addTombstonesNamingAdded(stones))
        for stone in stones {
            if added.contains(stone.name) { outcome.deleted.append(stone.name) } else { outcome.alreadyDeleted.append(stone.name) }
        }
        let marked = try await markRows(names: outcome.deleted + outcome.alreadyDeleted)
        outcome.rowsMarked = marked.rows
        outcome.rowProblems = marked.problems
        if !outcome.deleted.isEmpty {
            logger.notice("files deleted", metadata: ["count": "\(outcome.deleted.count)", "origin": "\(origin)", "reason": "\(reason)"])
        }
        return outcome
    }

    /// Gives the rows of deleted names the deleted status, in every source; a source that cannot
    /// (no such status label) is reported, never fatal: the tombstone already keeps the file deleted.
    public func markRows(names: [String]) async throws -> (rows: Int, problems: [String]) {
        guard !names.isEmpty else { return (0, []) }
        var rows = 0
        var problems: [String] = []
        for source in sources {
            do {
                rows += try await source.markDeleted(names: names)
            } catch let error as DESKitError where error.code == .catalog || error.code == .configuration {
                problems.append("\(source.name): \(error.message)")
            }
        }
        return (rows, problems)
    }
}
