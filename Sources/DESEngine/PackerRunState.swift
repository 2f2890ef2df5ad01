import DESKit

/// What only a packer's run loop touches: its counts, its timers, the shards it targets, and
/// the tasks it has running in the background (the next batch, finalizations, marks).
struct PackerRunState {
    var totals = Packer.Totals()
    /// When leases were last tried for (-∞: never).
    var lastLeaseAttempt = -Double.infinity
    /// The owned shards with work as of the last look (``ShardsWithWork``), ascending: the shards
    /// this packer leases. Looked up again when ``Packer/workLookupIsDue``.
    var targets: [Int] = []
    /// When claims past their source's timeout were last looked for (-∞: never).
    var lastStaleClaimSweep = -Double.infinity
    /// When the shards with work were last looked up (-∞: never).
    var lastWorkLookup = -Double.infinity
    /// Whether the last claim filled its batch: the held shards keep the packer busy, so the
    /// shards with work (a scan of the catalog's pending rows) are looked up only once a minute.
    var saturated = false
    /// The next batch, being taken and fetched while the current one is written.
    var prefetch: Task<ClaimedBatch, Error>?
    /// Rows of uploaded containers being marked packed.
    var marking: [Task<Void, Error>] = []
    /// The background part of each finalization (``PackerStateMachine/finalizing``), by container id.
    var finalizations: [Int64: Task<FinalizeOutcome, Never>] = [:]
    /// The archive files of the open and finalizing containers, by container id.
    var files: [Int64: ContainerFile] = [:]
    /// Whether the run has said that containers of closed days were closed early, for want of
    /// descriptors (said once a run).
    var warnedClosedDayLimit = false
}
