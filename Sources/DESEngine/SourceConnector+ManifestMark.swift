import DESKit
import Logging

extension SourceConnector {
    /// `claim_mode: lease`: marks packed into `container` this source's rows of a manifest —
    /// each row whose id is in `ids` and whose DES name is in `names` (the container's names; an
    /// id given to another row since marks nothing). When that changes fewer rows than `ids`
    /// names, a row whose id changed while it was in flight is pending under its new id: the
    /// rows are marked again by name (and `logger` says so). Returns how many rows changed; short
    /// of `ids.count` means rows gone from the catalog (or renamed).
    func markManifestRows(ids: [String], names: [String], container: String, retry: RetryPolicy, logger: Logger) async throws -> Int {
        let byID = try await retry.run { try await markPackedUnlessPacked(rowIDs: ids, names: names, container: container) }
        guard byID < ids.count else { return byID }
        let byName = try await retry.run { try await markPackedByName(names, container: container) }
        if byName > 0 {
            logger.warning(
                "rows whose id changed while they were packed were marked by name",
                metadata: ["container": "\(container)", "source": "\(name)", "rows": "\(byName)"])
        }
        return byID + byName
    }
}
