import DESKit
import Logging

/// Gives back everything a packer holds without the packer's own task, which may be stuck in a
/// call that ignores cancellation (a fetch from a hung server, a read of a hung mount): used past
/// the drain deadline, just before the process exits.
///
/// First every lease is given back, which fences the packer: any container it records
/// `uploaded` afterwards is refused (the fencing token no longer holds). Then its shards are
/// recovered under a holder of their own, as `des recover` does: claimed rows found in an uploaded
/// container are marked packed, the others go back to pending, `writing` containers are
/// discarded or adopted. Nothing is lost and nothing is packed twice.
public struct PackerSurrender: Sendable {
    let book: LeaseBook
    let metadata: any MetadataStore
    let recovery: Recovery
    let holder: LeaseHolder
    let ttlSeconds: Double
    let logger: Logger

    /// Gives the leases back and recovers their shards; logs what it did.
    public func run() async {
        let leases = book.removeAll()
        logger.error(
            "drain deadline passed with work still in hand: giving it back and exiting",
            metadata: ["leases": "\(leases.count)", "holder": "\(holder)"])
        for lease in leases { try? await metadata.releaseLease(lease) }
        let recoverer = LeaseHolder(pod: holder.pod, instance: holder.instance + ".drain")
        do {
            // Only the shards: listing storage for stale temporaries is no work for a deadline.
            let report = try await recovery.recover(shards: leases.map(\.shard).sorted(), holder: recoverer, ttlSeconds: ttlSeconds)
            logger.notice(
                "work given back", metadata: ["rows_released": "\(report.rowsReleased)", "rows_packed": "\(report.rowsPacked)"])
        } catch {
            // What is left is recovered by the next packer to lease these shards.
            logger.error("could not recover every shard before exiting", metadata: ["error": "\(error)"])
        }
    }
}

extension Packer {
    /// What gives this packer's work back past its drain deadline (``PackerSurrender``).
    var surrender: PackerSurrender {
        PackerSurrender(
            book: book, metadata: metadata, recovery: context.recovery, holder: holder, ttlSeconds: config.leaseTTLSeconds, logger: logger)
    }
}
