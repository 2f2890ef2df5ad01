import DESKit
import Logging

extension SourceConnector {
    /// `claim_mode: lease`: marks packed into `container` this source's rows of a manifest —
    /// each row whose id is in `ids` and whose DES name is in `names` (the container's names; an
    /// id given to another row since marks nothing). Returns how many rows changed; short of
    /// `ids.count` means rows gone from the catalog, renamed, or dead-lettered.
    ///
    /// When the mark by id changes fewer rows than `ids` names, a row whose id changed while it
    /// was in flight is pending under its new id, and is found by its name. A name is trusted
    /// only when exactly one row of the source holds it: a name shared by several rows (an
    /// application that writes DES's name column) cannot say whose bytes the container holds, so
    /// those rows that are still pending go to the dead-letter table with the reason, rather than
    /// being marked with another row's bytes or packed again under the same name.
    func markManifestRows(
        ids: [String], names: [String], container: String, metadata: any MetadataStore, retry: RetryPolicy, logger: Logger
    ) async throws -> Int {
        let byID = try await retry.run { try await markPackedUnlessPacked(rowIDs: ids, names: names, container: container) }
        return try await markShortfall(ids: ids, names: names, container: container, byID: byID, metadata: metadata, retry: retry, logger: logger)
            .changed
    }

    /// ``markManifestRows(ids:names:container:metadata:retry:logger:)`` for several containers:
    /// the marks by id in one batch (``SourceConnector/markPackedUnlessPacked(_:)``, one
    /// transaction where the source has them), then each container's shortfall as for one.
    /// Returns, per mark, how many rows changed, and the mark's names that no row of this source
    /// holds any more (`orphans`: deleted from the catalog, or renamed — a filesystem row whose
    /// file changed — while the container was open), found only when the mark fell short.
    func markManifestRows(_ marks: [ContainerMark], metadata: any MetadataStore, retry: RetryPolicy, logger: Logger) async throws
        -> [(changed: Int, orphans: [String])]
    {
        let byID = try await retry.run { try await markPackedUnlessPacked(marks) }
        var outcome: [(changed: Int, orphans: [String])] = []
        for (i, mark) in marks.enumerated() where i < byID.count {
            outcome.append(
                try await markShortfall(
                    ids: mark.rowIDs, names: mark.names, container: mark.container, byID: byID[i], metadata: metadata, retry: retry, logger: logger))
        }
        return outcome
    }

    /// After a mark by id changed `byID` rows of `ids`: when short, the rows found by name (see
    /// ``markManifestRows(ids:names:container:metadata:retry:logger:)``). Returns the rows changed
    /// in all, and the names of `names` no row of this source holds.
    private func markShortfall(
        ids: [String], names: [String], container: String, byID: Int, metadata: any MetadataStore, retry: RetryPolicy, logger: Logger
    ) async throws -> (changed: Int, orphans: [String]) {
        guard byID < ids.count else { return (byID, []) }
        let found = try await retry.run { try await rowsNamed(names) }
        var byName: [String: [NamedRow]] = [:]
        for row in found { byName[row.desName, default: []].append(row) }
        let orphans = names.filter { byName[$0] == nil }
        var unique: [NamedRow] = [], shared: [NamedRow] = []
        for (_, rows) in byName {
            // A row failed while in flight is marked too, as the mark by id marks it: its bytes are in the container.
            let open = rows.filter { $0.state == .pending || $0.state == .claimed || $0.state == .failed }
            if open.isEmpty { continue }
            if rows.count == 1 { unique += open } else { shared += open.filter { $0.state == .pending } }
        }
        var changed = byID
        if !unique.isEmpty {
            let (rowIDs, rowNames) = (unique.map(\.rowID), unique.map(\.desName))
            let marked = try await retry.run { try await markPackedUnlessPacked(rowIDs: rowIDs, names: rowNames, container: container) }
            changed += marked
            if marked > 0 {
                logger.warning(
                    "rows whose id changed while they were packed were found by name and marked",
                    metadata: ["container": "\(container)", "source": "\(name)", "rows": "\(marked)"])
            }
        }
        if !shared.isEmpty {
            let byName = byName
            let reason = { (row: NamedRow) in
                "DES name \(row.desName) is held by \(byName[row.desName]?.count ?? 2) rows of source '\(name)', and container "
                    + "\(container) holds one file under it: a name must be one row's. Give each row its own name, then set this row "
                    + "pending again"
            }
            let letters = shared.map { DeadLetter(source: name, rowID: $0.rowID, desName: $0.desName, stage: "packer", reason: reason($0)) }
            let rows = shared.map { FailedRow(rowID: $0.rowID, reason: reason($0)) }
            // The letter first, as everywhere: never a failed row without its letter.
            try await retry.run { try await metadata.addDeadLetters(letters) }
            let failed = try await retry.run { try await markFailedIfPending(rows) }
            logger.error(
                "rows sharing a DES name with a file in a container were dead-lettered",
                metadata: ["container": "\(container)", "source": "\(name)", "rows": "\(failed)", "first": "\(shared[0].desName)"])
        }
        return (changed, orphans)
    }
}
