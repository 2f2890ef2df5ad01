import DESKit

/// Where a packer fills one container: the day of its files' names and their shard.
package struct ContainerSlot: Hashable, Sendable, Comparable {
    /// The day of the names (`YYYYMMDD`).
    package var day: String
    /// The shard.
    package var shard: Int

    /// A slot.
    package init(day: String, shard: Int) {
        self.day = day
        self.shard = shard
    }

    /// By day, then shard.
    package static func < (a: Self, b: Self) -> Bool { (a.day, a.shard) < (b.day, b.shard) }
}

/// The packer's decisions, as a value with no I/O: which containers are open and what they
/// hold, which are being finalized, which rows are in the packer's hands, and where each
/// source's keyset read goes on (`claim_mode: lease`). Every event of the run loop — a batch
/// taken, a file placed, a finalization ended, rows failed, let go or marked, a lease lost —
/// goes in, and what the packer must do comes out. Tested on its own, as ``PoolStateMachine`` is.
///
/// Invariants:
/// - a container is open in at most one slot, or finalizing, or neither (closed for good);
/// - in lease mode, every row of an open or finalizing container is in the in-flight set until
///   it is marked packed, failed, let go, or its container is adopted by someone else;
/// - ``activity`` grows whenever rows may have gone back to pending or the leases changed, so an
///   empty batch proves idleness only when nothing moved since it was started.
package struct PackerStateMachine: Sendable {
    /// When containers are full, due or checkpointed (from `packer:`).
    package struct Limits: Sendable, Equatable {
        package var maxFiles: Int
        package var maxBytes: UInt64
        package var maxAgeSeconds: Double
        package var checkpointEveryFiles: Int
        package var checkpointEverySeconds: Double
        /// How many containers of closed days stay open at most, filling from a backlog; beyond
        /// it the oldest are due. Each keeps a descriptor and up to a write buffer of memory.
        package var maxClosedDayContainers = Limits.closedDayContainers

        /// The limits of a packer config.
        package init(_ config: PackerConfig) {
            self.init(
                maxFiles: config.maxContainerFiles, maxBytes: config.maxContainerBytes, maxAgeSeconds: config.maxContainerAgeSeconds,
                checkpointEveryFiles: config.checkpointEveryFiles, checkpointEverySeconds: config.checkpointEverySeconds)
        }

        /// ``maxClosedDayContainers`` by default: 1,024, or a quarter of the descriptor limit when
        /// that is less (256 under `ulimit -n 1024`). A backlog named on several days, read in an
        /// order that mixes them (a catalog keyed by uuid), keeps one container per (day, shard)
        /// open: 768 for two days and today at 256 shards.
        package static var closedDayContainers: Int {
            guard let soft = DescriptorBudget.softLimit else { return 1_024 }
            return max(16, min(1_024, soft / 4))
        }

        /// Limits given one by one.
        package init(maxFiles: Int, maxBytes: UInt64, maxAgeSeconds: Double, checkpointEveryFiles: Int, checkpointEverySeconds: Double) {
            self.maxFiles = maxFiles
            self.maxBytes = maxBytes
            self.maxAgeSeconds = maxAgeSeconds
            self.checkpointEveryFiles = checkpointEveryFiles
            self.checkpointEverySeconds = checkpointEverySeconds
        }
    }

    /// One container's bookkeeping: its record, the lease it was opened under, and its rows.
    package struct Container: Sendable, Equatable {
        package let record: ContainerRecord
        package let lease: ShardLease
        package let openedAt: Double
        /// The rows it holds, by source.
        package var rows: [String: [String]] = [:]
        /// Their DES names, by source, in the order of ``rows``.
        package var names: [String: [String]] = [:]
        package var fileCount = 0
        package var bytes: UInt64 = 0
        /// The file count last checkpointed, and when.
        package var checkpointFiles = 0
        package var checkpointAt: Double

        /// A container just opened at `now`.
        package init(record: ContainerRecord, lease: ShardLease, now: Double) {
            self.record = record
            self.lease = lease
            self.openedAt = now
            self.checkpointAt = now
        }

        /// Its slot.
        package var slot: ContainerSlot { ContainerSlot(day: record.day, shard: record.shard) }
    }

    /// What to do with a container taken out of its slot to be finalized.
    package enum FinalizeStep: Sendable, Equatable {
        /// Nothing was written to it: abort it and discard its record.
        case discardEmpty(Container)
        /// Close it, record its manifest first when `manifest` (lease mode), upload it and record it uploaded.
        case store(Container, manifest: Bool)
    }

    /// How the background part of a finalization ended.
    package enum FinalizeResult: Sendable, Equatable {
        /// Stored and recorded `uploaded`.
        case uploaded
        /// Closing or storing failed; the object may exist.
        case storeFailed
        /// The record was refused under the container's fencing token: the lease was lost.
        case fenced
        /// Recording `uploaded` failed after retries: the outcome is unknown.
        case recordFailed
    }

    /// What to do once a finalization has ended.
    package enum AfterFinalize: Sendable, Equatable {
        /// Mark its rows packed (in the background) and count it.
        case markPacked(Container)
        /// Abandon it (its object may exist); when `loseLease`, its lease is lost too.
        case abandon(Container, loseLease: Bool)
        /// Leave its rows and object for recovery: the record's outcome is unknown.
        case leaveForRecovery(Container)
    }

    /// How abandoning a container ended in the metadata store.
    package enum AbandonFate: Sendable, Equatable {
        /// The store could not be reached: nothing is known, recovery sorts it out later.
        case unknown
        /// Someone else's recovery recorded it uploaded: its rows are theirs to mark.
        case adopted
        /// Discarded for good: its rows are to be packed again.
        case discarded
    }

    /// Which claim mode the rows are taken in.
    package let mode: ClaimMode
    /// When containers are full, due or checkpointed.
    package let limits: Limits
    /// The containers being filled.
    package private(set) var open: [ContainerSlot: Container] = [:]
    /// The containers being finalized, oldest first.
    package private(set) var finalizing: [Container] = []
    /// `claim_mode: lease`: the rows read and not yet marked packed, failed or let go, by source
    /// (a keyset read skips them: they are still pending in the catalog), each with its DES name.
    package private(set) var inFlightRows: [String: [String: String]] = [:]
    /// `claim_mode: lease`: the DES names of the rows in flight. A keyset read skips these too: a
    /// row whose id changed while it was in flight is pending under its new id, and is the same file.
    package private(set) var inFlightNames = InFlightNames()

    /// `claim_mode: lease`: where each source's keyset read goes on, for ``cursorShards``.
    package private(set) var cursors: [String: String] = [:]
    /// The shards the cursors are for (another set of shards starts the reads over).
    package private(set) var cursorShards: [Int] = []
    /// Grows whenever rows may have gone back to pending or the leases changed.
    package private(set) var activity = 0

    /// A machine with nothing in hand.
    package init(mode: ClaimMode, limits: Limits) {
        self.mode = mode
        self.limits = limits
    }

    // MARK: Taking rows

    /// What a read of pending rows must skip, and where it goes on (`claim_mode: lease`); the
    /// cursors hold only while the same shards are read.
    package func readPlan(shards: [Int]) -> ReadPlan {
        ReadPlan(rows: inFlightRows, names: inFlightNames, cursors: shards == cursorShards ? cursors : [:])
    }

    /// What a keyset read skips and where it goes on (``readPlan(shards:)``).
    package struct ReadPlan: Sendable {
        /// The rows in flight by source, id to name.
        package var rows: [String: [String: String]]
        /// The names of the rows in flight.
        package var names: InFlightNames
        /// Where each source's read goes on.
        package var cursors: [String: String]

        /// Whether a row read is in flight already: `.same` (its id, with its name), `.twin` (its
        /// id with another name, or its name under another id: a row renumbered, swapped or
        /// renamed in flight), or nil.
        package func inFlight(source: String, rowID: String, name: String) -> InFlight? {
            inFlight(held: rows[source] ?? [:], rowID: rowID, name: name)
        }

        /// ``inFlight(source:rowID:name:)`` with the source's rows in flight (`rows[source]`)
        /// looked up once for a page of rows.
        package func inFlight(held: [String: String], rowID: String, name: String) -> InFlight? {
            if let heldName = held[rowID] { return heldName == name ? .same : .twin }
            return names.contains(name) ? .twin : nil
        }

        /// How a row read is in flight.
        package enum InFlight: Sendable { case same, twin }
    }

    /// Whether the last read skipped a row only for sharing an id or a name with one in flight
    /// (``ReadPlan/InFlight/twin``): until a read finds none, rows leaving flight are activity.
    package private(set) var twinsSkipped = false

    /// Whether the last batch taken was short (fewer rows than asked for: every pending row of
    /// the shards read is in hand), and the days of the containers its files were placed in: a
    /// container of a closed day stays open while full batches bring files of its day (a backlog
    /// of that day), and is due once one does not (``finalizeDue(now:today:)``).
    package private(set) var drained = true
    package private(set) var lastDays: Set<String> = []

    /// A batch was taken: in lease mode its rows are in flight now, and the cursors move on;
    /// `twins`: whether its read skipped a twin of a row in flight; `saturated`: whether it came
    /// full (``drained``).
    package mutating func taken(
        rows: [(source: String, rowID: String, name: String)], shards: [Int], cursors next: [String: String], twins: Bool = false,
        saturated: Bool = false
    ) {
        drained = !saturated
        lastDays = []
        guard mode == .lease else { return }
        twinsSkipped = twins
        // A run of rows of one source at a time: its table is looked up once, not once a row.
        var i = rows.startIndex
        while i < rows.endIndex {
            let source = rows[i].source
            var held = inFlightRows.removeValue(forKey: source) ?? [:]
            while i < rows.endIndex, rows[i].source == source {
                // (A row taken again, which a read never does, replaces its name: every name in
                // flight stays one row's.)
                if let replaced = held.updateValue(rows[i].name, forKey: rows[i].rowID) { inFlightNames.remove(replaced) }
                inFlightNames.insert(rows[i].name)
                i += 1
            }
            inFlightRows[source] = held
        }
        cursors = next
        cursorShards = shards
    }

    /// Takes rows out of flight (lease mode), their names with them. Activity when any left while
    /// the last read skipped a twin: that row (renumbered, swapped or renamed in flight) can be
    /// read now, so an earlier empty read proves nothing. (Otherwise no: a bump per container
    /// would keep `--until-idle` from seeing quiet.)
    private mutating func land(_ rows: [String: [String]]) {
        var landed = false
        for (source, ids) in rows {
            guard var held = inFlightRows.removeValue(forKey: source) else { continue }
            for id in ids {
                if let name = held.removeValue(forKey: id) {
                    inFlightNames.remove(name)
                    landed = true
                }
            }
            inFlightRows[source] = held
        }
        if landed && twinsSkipped { activity += 1 }
    }

    /// Something changed that an idle check must see (leases taken or lost, rows recovered).
    package mutating func noteActivity() { activity += 1 }

    // MARK: Filling containers

    /// A container was opened in its slot.
    package mutating func opened(_ container: Container) { open[container.slot] = container }

    /// A file of `source`'s row `rowID`, `bytes` long, was written to the container of `slot`;
    /// whether the container is now full and is to be finalized.
    package mutating func placed(source: String, rowID: String, name: String, bytes: UInt64, in slot: ContainerSlot) -> Bool {
        // In place: a copy of the container would copy its rows, once a file.
        // (Through one inout access: reading a field back through `open.values[i]` copied the
        // whole container, retaining each of its fields, once a file.)
        guard let i = open.index(forKey: slot) else { return false }
        lastDays.insert(slot.day)
        return Self.place(source: source, rowID: rowID, name: name, bytes: bytes, in: &open.values[i], limits: limits)
    }

    private static func place(source: String, rowID: String, name: String, bytes: UInt64, in c: inout Container, limits: Limits) -> Bool {
        c.rows[source, default: []].append(rowID)
        c.names[source, default: []].append(name)
        c.fileCount += 1
        c.bytes += bytes
        return c.bytes >= limits.maxBytes || c.fileCount >= limits.maxFiles
    }

    /// Whether `source`'s row `rowID` is in the open container of `slot`.
    package func holds(source: String, rowID: String, in slot: ContainerSlot) -> Bool {
        open[slot]?.rows[source]?.contains(rowID) == true
    }

    /// The open containers due to be checkpointed at `now`.
    package func checkpointsDue(now: Double) -> [Container] {
        open.values.filter {
            $0.fileCount - $0.checkpointFiles >= limits.checkpointEveryFiles
                || ($0.fileCount > $0.checkpointFiles && now - $0.checkpointAt >= limits.checkpointEverySeconds)
        }.sorted { $0.slot < $1.slot }
    }

    /// The container `id` was checkpointed at `files` files, at `now`.
    package mutating func checkpointed(_ slot: ContainerSlot, id: Int64, files: Int, now: Double) {
        guard open[slot]?.record.id == id else { return }
        open[slot]?.checkpointFiles = files
        open[slot]?.checkpointAt = now
    }

    /// The slots whose containers are full, older than the age limit, or of a day before `today`
    /// that the last batch brought no row of, or once the pending rows are drained (the last
    /// batch came short); and the oldest of the rest of closed days beyond
    /// ``Limits/maxClosedDayContainers``. No name of a closed day is made any more, but a backlog of them
    /// may still be pending: a container of such a day fills while full batches bring rows of
    /// its day, instead of being closed after every batch with the few files each batch brings
    /// each of its shards.
    package func finalizeDue(now: Double, today: String) -> [ContainerSlot] { finalizeDueCounting(now: now, today: today).slots }

    /// ``finalizeDue(now:today:)``, and how many of its slots are closed early for
    /// ``Limits/maxClosedDayContainers`` (0: none).
    package func finalizeDueCounting(now: Double, today: String) -> (slots: [ContainerSlot], closedEarly: Int) {
        var due: [ContainerSlot] = []
        var backlog: [(slot: ContainerSlot, openedAt: Double)] = []
        for (slot, c) in open {
            if c.bytes >= limits.maxBytes || c.fileCount >= limits.maxFiles || now - c.openedAt >= limits.maxAgeSeconds
                || (slot.day < today && (drained || !lastDays.contains(slot.day)))
            {
                due.append(slot)
            } else if slot.day < today {
                backlog.append((slot, c.openedAt))
            }
        }
        let early = max(0, backlog.count - limits.maxClosedDayContainers)
        if early > 0 {
            backlog.sort { ($0.openedAt, $0.slot) < ($1.openedAt, $1.slot) }
            due += backlog.prefix(early).map(\.slot)
        }
        return (due.sorted(), early)
    }

    // MARK: Finalizing

    /// Takes the container of `slot` out to be finalized (nil: none is open there).
    package mutating func startFinalizing(_ slot: ContainerSlot) -> FinalizeStep? {
        guard let c = open.removeValue(forKey: slot) else { return nil }
        if c.fileCount == 0 { return .discardEmpty(c) }
        finalizing.append(c)
        return .store(c, manifest: mode == .lease)
    }

    /// The finalization of container `id` ended with `result` (nil: it is not finalizing).
    package mutating func finalizeEnded(_ id: Int64, _ result: FinalizeResult) -> AfterFinalize? {
        guard let i = finalizing.firstIndex(where: { $0.record.id == id }) else { return nil }
        let c = finalizing.remove(at: i)
        switch result {
        case .uploaded: return .markPacked(c)
        case .storeFailed: return .abandon(c, loseLease: false)
        case .fenced: return .abandon(c, loseLease: true)
        case .recordFailed:
            activity += 1
            return .leaveForRecovery(c)
        }
    }

    /// Whether a container of `shard` is being finalized.
    package func isFinalizing(shard: Int) -> Bool { finalizing.contains { $0.record.shard == shard } }

    /// The shards with an open or finalizing container: work in hand, whose leases are kept.
    package var busyShards: Set<Int> { Set(open.keys.map(\.shard)).union(finalizing.map(\.record.shard)) }

    // MARK: Rows leaving the packer's hands

    /// The rows of an uploaded container were marked packed.
    package mutating func marked(_ rows: [String: [String]]) { land(rows) }

    /// Rows went to the dead-letter table (lease mode: marked failed, so they are no longer pending).
    package mutating func failed(_ rows: [String: [String]]) {
        guard mode == .lease else { return }
        land(rows)
    }

    /// Rows in hand will not be packed now; returns the claims to give back (row mode; in lease
    /// mode they only leave the in-flight set, to be read again).
    package mutating func letGo(_ rows: [String: [String]]) -> [String: [String]] {
        let rows = rows.filter { !$0.value.isEmpty }
        guard !rows.isEmpty else { return [:] }
        activity += 1
        guard mode == .lease else { return rows }
        land(rows)
        return [:]
    }

    /// Takes every open container of `shard` out, to be abandoned.
    package mutating func removeOpen(shard: Int) -> [Container] {
        let slots = open.keys.filter { $0.shard == shard }.sorted()
        return slots.compactMap { open.removeValue(forKey: $0) }
    }

    /// The shards to stop work on: those whose leases were `lost`, and those with an open
    /// container opened under another lease than the one held now (`held`: token by shard).
    package mutating func lostShards(lost: Set<Int>, held: [Int: Int64]) -> [Int] {
        var shards = lost
        for (slot, c) in open where held[slot.shard] != c.lease.token { shards.insert(slot.shard) }
        if !shards.isEmpty { activity += 1 }
        return shards.sorted()
    }

    /// An abandoned container's fate is known; returns the claims to give back (row mode,
    /// discarded). Activity either way: the container's rows may be pending again.
    package mutating func abandoned(_ c: Container, _ fate: AbandonFate) -> [String: [String]] {
        activity += 1
        switch fate {
        case .unknown: return [:]  // rows stay in hand: recovery decides
        case .adopted:
            // Its rows are the adopter's to mark (in lease mode, from the manifest it recovered).
            if mode == .lease { land(c.rows) }
            return [:]
        case .discarded:
            guard mode == .lease else { return c.rows.filter { !$0.value.isEmpty } }
            land(c.rows)
            return [:]
        }
    }
}
