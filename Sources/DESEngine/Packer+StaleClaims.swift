import DESKit

/// Claims past their source's timeout (`sources[].claim_timeout_seconds`, else
/// `packer.claim_timeout_seconds`).
///
/// A lease grant recovers every claim of its shard, so a dead packer's claims return as soon
/// as its lease lapses. What a grant cannot reach is a claim made on a shard *while* this
/// packer holds it — by a paused worker that resumed after losing its lease, and claims before
/// noticing. Such a worker can never record its container (the fencing token refuses it), so
/// its claims would sit until the shard's lease changes hands. The sweep returns them once they
/// are older than their source's timeout: a row whose name is already in an uploaded container
/// is marked packed, any other goes back to pending. This packer's own claims are never touched.
extension Packer {
    /// Seconds between sweeps: half the shortest claim timeout, between 1 s and a minute.
    var staleClaimSweepSeconds: Double {
        min(max((context.sources.map { context.claimTimeout($0.name) }.min() ?? config.claimTimeoutSeconds) / 2, 1), 60)
    }

    /// Runs ``returnStaleClaims()`` when a sweep is due.
    func returnStaleClaimsIfDue() async throws {
        guard monotonicSeconds() - runState.lastStaleClaimSweep >= staleClaimSweepSeconds else { return }
        try await returnStaleClaims()
    }

    /// Returns the claims of others on the shards this packer holds that are older than their
    /// source's claim timeout; how many rows were settled.
    @discardableResult
    func returnStaleClaims() async throws -> Recovery.Report {
        runState.lastStaleClaimSweep = monotonicSeconds()
        let report = try await context.recovery.returnStaleClaims(
            shards: book.held.keys.sorted(), excludingHolder: holder.description, timeout: context.claimTimeout)
        if report.rowsPacked + report.rowsReleased > 0 {
            runState.totals.recovery.add(report)
            machine.noteActivity()
        }
        try await warnOfRowClaims()
        try await discardStrayContainers()
        return report
    }

    /// `claim_mode: lease`: a lease-mode packer never claims, so a claim on a shard it holds was
    /// made by a row-mode packer running beside it (which every packer of a catalog must not do:
    /// docs/operations.md). Says so, with the count, and counts it in `des_packer_errors_total`;
    /// returns the count (0 in row mode).
    @discardableResult
    func warnOfRowClaims() async throws -> Int {
        guard config.claimMode == .lease else { return 0 }
        let claimed = try await claimsOn(book.held.keys.sorted())
        guard claimed > 0 else { return 0 }
        context.metrics.error("mixed_claim_mode")
        logger.warning(
            "rows of shards this lease-mode packer holds are claimed: a packer in claim_mode row runs on the same catalog; run every packer of a catalog in one claim mode",
            metadata: ["rows": "\(claimed)"])
        return claimed
    }
}
