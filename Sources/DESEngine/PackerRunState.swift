import DESKit
import Synchronization

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
    /// Rows of uploaded containers being marked packed (at most ``MarkQueue/concurrency`` tasks
    /// running; an ended one stays until its outcome is taken).
    var marking: [MarkingTask] = []
    /// The background part of each finalization (``PackerStateMachine/finalizing``), by container id.
    var finalizations: [Int64: Task<FinalizeOutcome, Never>] = [:]
    /// The archive files of the open and finalizing containers, by container id.
    var files: [Int64: ContainerFile] = [:]
    /// Whether the run has said that containers of closed days were closed early, for want of
    /// descriptors (said once a run).
    var warnedClosedDayLimit = false
}

/// A task marking rows packed (``Packer/markPackedInBackground(_:)``), and whether it has ended.
struct MarkingTask {
    /// Set once, when the task's body returns or throws.
    final class EndFlag: Sendable {
        private let flag = Atomic<Bool>(false)
        func set() { flag.store(true, ordering: .releasing) }
        var isSet: Bool { flag.load(ordering: .acquiring) }
    }
    let task: Task<Void, Error>
    let ended: EndFlag
    /// Whether the task has ended (its value is then there without waiting).
    var hasEnded: Bool { ended.isSet }
}
