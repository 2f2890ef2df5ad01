import DESEngine
import DESKit
import Testing

/// The packer's decisions on their own: no catalog, no store, no files.
@Suite("Packer state machine") struct PackerStateMachineTests {
    static let limits = PackerStateMachine.Limits(
        maxFiles: 3, maxBytes: 1000, maxAgeSeconds: 60, checkpointEveryFiles: 2, checkpointEverySeconds: 5)

    static func container(id: Int64, day: String = "20261205", shard: Int, token: Int64 = 1, now: Double = 0) -> PackerStateMachine.Container {
        let record = ContainerRecord(
            id: id, day: day, shard: shard, key: "des/\(day)/\(shard)/c\(id).des", state: .writing, holder: "h", token: token,
            fileCount: 0, bytes: 0, size: nil, etag: nil)
        let lease = ShardLease(shard: shard, holder: LeaseHolder(pod: "p", instance: "i"), token: token, expiresAt: 0, isNewGrant: false)
        return PackerStateMachine.Container(record: record, lease: lease, now: now)
    }

    static func slot(_ shard: Int, day: String = "20261205") -> ContainerSlot { ContainerSlot(day: day, shard: shard) }

    @Test("lease mode: rows taken are in flight, skipped by the next read; the cursors hold only for the same shards")
    func readPlan() {
        var m = PackerStateMachine(mode: .lease, limits: Self.limits)
        m.taken(rows: [("a", "1", "n1"), ("a", "2", "n2"), ("b", "x", "nx")], shards: [0, 1], cursors: ["a": "2"])
        #expect(m.inFlight == ["a": ["1", "2"], "b": ["x"]])
        let plan = m.readPlan(shards: [0, 1])
        #expect(plan.inFlight(source: "a", rowID: "1", name: "n1") == .same && plan.inFlight(source: "b", rowID: "1", name: "other") == nil)
        #expect(plan.inFlight(source: "b", rowID: "999", name: "nx") == .twin, "a row whose id changed in flight is known by its name")
        #expect(plan.inFlight(source: "a", rowID: "1", name: "other") == .twin, "an id in flight now held by another row")
        #expect(m.readPlan(shards: [0, 1]).cursors == ["a": "2"])
        #expect(m.readPlan(shards: [0]).cursors.isEmpty, "another set of shards starts over")
        var row = PackerStateMachine(mode: .row, limits: Self.limits)
        row.taken(rows: [("a", "1", "n1")], shards: [0], cursors: ["a": "1"])
        #expect(row.inFlight.isEmpty && row.readPlan(shards: [0]).cursors.isEmpty, "row mode keeps no in-flight set")
    }

    @Test("names in flight are counted: a name taken with two rows stays until both leave; removing one not held changes nothing")
    func inFlightNameCounts() {
        var names = InFlightNames()
        names.insert("DES_A")
        names.insert("DES_A")
        names.insert("DES_B")
        #expect(names.count == 3 && names.contains("DES_A") && names.contains("DES_B") && !names.contains("DES_C"))
        names.remove("DES_A")
        #expect(names.contains("DES_A") && names.count == 2, "one row with the name is still in flight")
        names.remove("DES_A")
        names.remove("DES_C")
        #expect(!names.contains("DES_A") && names.count == 1 && !names.isEmpty)
        names.remove("DES_B")
        #expect(names.isEmpty && !names.contains("DES_B"))
        var m = PackerStateMachine(mode: .lease, limits: Self.limits)
        m.taken(rows: [("a", "1", "DES_X"), ("a", "1", "DES_Y")], shards: [0], cursors: [:])
        #expect(m.inFlightNames.count == 1 && m.inFlightNames.contains("DES_Y") && !m.inFlightNames.contains("DES_X"), "a row taken again keeps one name")
    }

    @Test("a container is full at max files or max bytes; a placement in a slot with no container changes nothing")
    func full() {
        var m = PackerStateMachine(mode: .row, limits: Self.limits)
        m.opened(Self.container(id: 1, shard: 0))
        let fills = [("a", "1"), ("a", "2"), ("b", "3")].map { m.placed(source: $0.0, rowID: $0.1, name: "n" + $0.1, bytes: 10, in: Self.slot(0)) }
        #expect(fills == [false, false, true])
        #expect(m.open[Self.slot(0)]?.rows == ["a": ["1", "2"], "b": ["3"]])
        #expect(m.open[Self.slot(0)]?.fileCount == 3 && m.open[Self.slot(0)]?.bytes == 30)
        #expect(m.holds(source: "b", rowID: "3", in: Self.slot(0)) && !m.holds(source: "a", rowID: "3", in: Self.slot(0)))
        m.opened(Self.container(id: 2, shard: 1))
        let byBytes = m.placed(source: "a", rowID: "9", name: "n9", bytes: 1000, in: Self.slot(1))
        #expect(byBytes, "max bytes")
        let nowhere = m.placed(source: "a", rowID: "10", name: "n10", bytes: 1, in: Self.slot(7))
        #expect(!nowhere)
        #expect(m.open[Self.slot(7)] == nil)
    }

    @Test("Containers of closed days filling from a backlog: at most maxClosedDayContainers stay open, the oldest are due beyond it")
    func closedDayCap() {
        var limits = Self.limits
        limits.maxClosedDayContainers = 40
        var m = PackerStateMachine(mode: .lease, limits: limits)
        let limit = limits.maxClosedDayContainers
        #expect(PackerStateMachine.Limits.closedDayContainers >= 16 && PackerStateMachine.Limits.closedDayContainers <= 1_024)
        for i in 0..<(limit + 3) { m.opened(Self.container(id: Int64(i + 1), day: "20261204", shard: i, now: 100 + Double(i) / 1000)) }
        m.opened(Self.container(id: 9_999, day: "20261205", shard: 0, now: 100))
        m.taken(rows: [], shards: [], cursors: [:], saturated: true)
        for i in 0..<(limit + 3) { _ = m.placed(source: "a", rowID: "\(i)", name: "n\(i)", bytes: 1, in: Self.slot(i, day: "20261204")) }
        let due = m.finalizeDueCounting(now: 101, today: "20261205")
        #expect(due.closedEarly == 3 && due.slots == (0..<3).map { Self.slot($0, day: "20261204") })
    }

    @Test("due: full, past the age limit, or of a closed day and left out of the last batch; checkpoints every N files or S seconds")
    func due() {
        var m = PackerStateMachine(mode: .row, limits: Self.limits)
        m.opened(Self.container(id: 1, shard: 0, now: 100))
        m.opened(Self.container(id: 2, day: "20261204", shard: 1, now: 100))
        m.opened(Self.container(id: 3, shard: 2, now: 100))
        #expect(m.finalizeDue(now: 120, today: "20261205") == [Self.slot(1, day: "20261204")], "nothing more pending: a closed day's container is due")
        var backlog = m
        backlog.taken(rows: [("a", "7", "n7")], shards: [0, 1, 2], cursors: [:], saturated: true)
        _ = backlog.placed(source: "a", rowID: "7", name: "n7", bytes: 1, in: Self.slot(1, day: "20261204"))
        #expect(backlog.finalizeDue(now: 120, today: "20261205").isEmpty, "a full batch of its day: a backlog of that day may be behind it")
        var moved = backlog
        moved.taken(rows: [("a", "8", "n8")], shards: [0, 1, 2], cursors: [:], saturated: true)
        _ = moved.placed(source: "a", rowID: "8", name: "n8", bytes: 1, in: Self.slot(0))
        #expect(moved.finalizeDue(now: 120, today: "20261205") == [Self.slot(1, day: "20261204")], "the read moved on past its day")
        backlog.taken(rows: [("a", "9", "n9")], shards: [0, 1, 2], cursors: [:], saturated: false)
        _ = backlog.placed(source: "a", rowID: "9", name: "n9", bytes: 1, in: Self.slot(1, day: "20261204"))
        #expect(backlog.finalizeDue(now: 120, today: "20261205") == [Self.slot(1, day: "20261204")], "a short batch: drained")
        #expect(m.finalizeDue(now: 161, today: "20261205").count == 3)
        _ = m.placed(source: "a", rowID: "1", name: "n1", bytes: 1, in: Self.slot(0))
        #expect(m.checkpointsDue(now: 101).isEmpty)
        #expect(m.checkpointsDue(now: 106).map(\.record.id) == [1], "one file, past 5 s")
        _ = m.placed(source: "a", rowID: "2", name: "n2", bytes: 1, in: Self.slot(0))
        #expect(m.checkpointsDue(now: 101).map(\.record.id) == [1], "two files")
        m.checkpointed(Self.slot(0), id: 1, files: 2, now: 101)
        #expect(m.checkpointsDue(now: 200).isEmpty)
        m.checkpointed(Self.slot(0), id: 99, files: 0, now: 0)
        #expect(m.open[Self.slot(0)]?.checkpointFiles == 2, "a checkpoint of another container is ignored")
    }

    @Test("finalizing: an empty container is discarded, a full one stored (with a manifest in lease mode) and busy until it ends")
    func finalizing() {
        for mode in [ClaimMode.row, .lease] {
            var m = PackerStateMachine(mode: mode, limits: Self.limits)
            m.opened(Self.container(id: 1, shard: 0))
            let empty = m.startFinalizing(Self.slot(0))
            #expect(empty == .discardEmpty(Self.container(id: 1, shard: 0)))
            #expect(m.finalizing.isEmpty && m.busyShards.isEmpty)
            m.opened(Self.container(id: 2, shard: 0))
            m.taken(rows: [("a", "1", "n1")], shards: [0], cursors: [:])
            _ = m.placed(source: "a", rowID: "1", name: "n1", bytes: 5, in: Self.slot(0))
            guard case .store(let c, let manifest) = m.startFinalizing(Self.slot(0)) else {
                Issue.record("not stored")
                continue
            }
            #expect(manifest == (mode == .lease) && c.rows == ["a": ["1"]])
            let again = m.startFinalizing(Self.slot(0))
            #expect(again == nil, "taken out of its slot once")
            #expect(m.isFinalizing(shard: 0) && m.busyShards == [0] && m.open.isEmpty)
            let ended = m.finalizeEnded(2, .uploaded)
            #expect(ended == .markPacked(c))
            let twice = m.finalizeEnded(2, .uploaded)
            #expect(!m.isFinalizing(shard: 0) && twice == nil)
            // Uploaded but not yet marked: still in flight (a read would find the row pending).
            #expect((m.inFlight["a"]?.contains("1") ?? false) == (mode == .lease))
            m.marked(["a": ["1"]])
            #expect(m.inFlight["a"]?.isEmpty ?? true)
        }
    }

    @Test("a fenced upload abandons and loses the lease; a failed store abandons; an unknown record is left for recovery and is activity")
    func finalizeOutcomes() {
        var m = PackerStateMachine(mode: .lease, limits: Self.limits)
        for (id, shard) in [(Int64(1), 0), (2, 1), (3, 2)] {
            m.opened(Self.container(id: id, shard: shard))
            _ = m.placed(source: "a", rowID: "\(id)", name: "n\(id)", bytes: 1, in: Self.slot(shard))
            _ = m.startFinalizing(Self.slot(shard))
        }
        let before = m.activity
        guard case .abandon(_, true) = m.finalizeEnded(1, .fenced) else { return #expect(Bool(false), "fenced") }
        guard case .abandon(_, false) = m.finalizeEnded(2, .storeFailed) else { return #expect(Bool(false), "store failed") }
        #expect(m.activity == before)
        guard case .leaveForRecovery(let c) = m.finalizeEnded(3, .recordFailed) else { return #expect(Bool(false), "record failed") }
        #expect(c.record.id == 3 && m.activity == before + 1 && m.finalizing.isEmpty)
    }

    @Test("letting go: row mode returns the claims, lease mode only drops them from flight; either is activity, nothing is not")
    func letGo() {
        var row = PackerStateMachine(mode: .row, limits: Self.limits)
        let none = row.letGo(["a": []])
        #expect(none.isEmpty && row.activity == 0)
        let claims = row.letGo(["a": ["1", "2"]])
        #expect(claims == ["a": ["1", "2"]] && row.activity == 1)
        var lease = PackerStateMachine(mode: .lease, limits: Self.limits)
        lease.taken(rows: [("a", "1", "n1"), ("a", "2", "n2"), ("a", "3", "n3")], shards: [0], cursors: [:])
        let dropped = lease.letGo(["a": ["1"]])
        #expect(dropped.isEmpty && lease.activity > 0)
        #expect(lease.inFlight == ["a": ["2", "3"]])
        let quiet = lease.activity
        lease.marked(["a": ["3"]])
        #expect(lease.activity == quiet, "rows marked are no activity while no read skipped a twin of them")
        lease.taken(rows: [], shards: [0], cursors: [:], twins: true)
        let beforeFailing = lease.activity
        lease.failed(["a": ["2"]])
        #expect(lease.inFlight == ["a": []] && lease.inFlightNames.isEmpty)
        #expect(lease.activity > beforeFailing, "after a read skipped a twin, a row out of flight may let the next read find it")
        let beforeMarking = lease.activity
        lease.marked(["a": ["2"]])
        #expect(lease.activity == beforeMarking, "nothing left flight")
    }

    @Test("abandoned: unknown keeps the rows in hand; adopted leaves them to the adopter; discarded gives them back")
    func abandoned() {
        var c = Self.container(id: 1, shard: 0)
        c.rows = ["a": ["1", "2"]]
        for mode in [ClaimMode.row, .lease] {
            var m = PackerStateMachine(mode: mode, limits: Self.limits)
            m.taken(rows: [("a", "1", "n1"), ("a", "2", "n2")], shards: [0], cursors: [:])
            var activity = m.activity
            let unknown = m.abandoned(c, .unknown)
            #expect(m.activity > activity, "every abandonment is activity")
            activity = m.activity
            #expect(unknown.isEmpty)
            #expect(m.inFlight["a"]?.count == (mode == .lease ? 2 : nil), "unknown: still in hand")
            var adopted = m
            let theirs = adopted.abandoned(c, .adopted)
            #expect(theirs.isEmpty, "the adopter's recovery marks them")
            #expect(adopted.inFlight["a"]?.isEmpty ?? true)
            let back = m.abandoned(c, .discarded)
            #expect(back == (mode == .row ? ["a": ["1", "2"]] : [:]))
            #expect(m.inFlight["a"]?.isEmpty ?? true)
            #expect(m.activity > activity, "every abandonment is activity")
        }
    }

    @Test("lost shards: those lost, and those whose open container was opened under another lease")
    func lostShards() {
        var m = PackerStateMachine(mode: .row, limits: Self.limits)
        m.opened(Self.container(id: 1, shard: 0, token: 5))
        m.opened(Self.container(id: 2, shard: 1, token: 6))
        let none = m.lostShards(lost: [], held: [0: 5, 1: 6])
        #expect(none.isEmpty && m.activity == 0)
        let lost = m.lostShards(lost: [3], held: [0: 5, 1: 7])
        #expect(lost == [1, 3] && m.activity == 1)
        let removed = m.removeOpen(shard: 1).map(\.record.id)
        let again = m.removeOpen(shard: 1)
        #expect(removed == [2] && again.isEmpty)
        let gone = m.lostShards(lost: [], held: [:])
        #expect(gone == [0], "a lease no longer held at all")
    }

    @Test("lease mode, 2,000 random events: every row of an open or finalizing container stays in flight until it leaves the packer's hands")
    func inFlightInvariant() {
        var rng = SplitMix(state: 20)
        var m = PackerStateMachine(mode: .lease, limits: Self.limits)
        var nextRow = 0
        var nextID: Int64 = 1
        var loose: [String] = []  // taken, not yet placed
        var uploaded: [[String: [String]]] = []  // awaiting their mark
        for _ in 0..<2000 {
            switch rng.next() % 7 {
            case 0:
                let rows = (0..<Int(rng.next() % 4)).map { _ in nextRow += 1; return String(nextRow) }
                m.taken(rows: rows.map { ("a", $0, "n" + $0) }, shards: [0, 1], cursors: [:])
                loose += rows
            case 1, 2:
                guard let row = loose.popLast() else { break }
                let shard = Int(rng.next() % 2)
                if m.open[Self.slot(shard)] == nil {
                    m.opened(Self.container(id: nextID, shard: shard))
                    nextID += 1
                }
                if m.placed(source: "a", rowID: row, name: "n" + row, bytes: 1, in: Self.slot(shard)) { _ = m.startFinalizing(Self.slot(shard)) }
            case 3:
                guard let c = m.finalizing.first else { break }
                let results: [PackerStateMachine.FinalizeResult] = [.uploaded, .uploaded, .fenced, .storeFailed]
                switch m.finalizeEnded(c.record.id, results[Int(rng.next() % 4)]) {
                case .markPacked(let c): uploaded.append(c.rows)
                case .abandon(let c, _): _ = m.abandoned(c, rng.next() % 2 == 0 ? .discarded : .adopted)
                default: break
                }
            case 4:
                if !uploaded.isEmpty { m.marked(uploaded.removeFirst()) }
            case 5:
                if let row = loose.popLast() { m.failed(["a": [row]]) }
            default:
                for c in m.removeOpen(shard: Int(rng.next() % 2)) { _ = m.abandoned(c, .discarded) }
            }
            let held = Set(m.open.values.flatMap { $0.rows["a"] ?? [] } + m.finalizing.flatMap { $0.rows["a"] ?? [] })
            let awaiting = Set(uploaded.flatMap { $0["a"] ?? [] } + loose)
            #expect(held.union(awaiting) == m.inFlight["a"] ?? [], "in flight is exactly what is in hand")
            let names = m.inFlightRows.values.flatMap(\.values)
            #expect(names.allSatisfy(m.inFlightNames.contains) && m.inFlightNames.count == names.count, "the names in flight are those of the rows in flight")
            if held.union(awaiting) != m.inFlight["a"] ?? [] { return }
        }
    }
}

extension PackerStateMachine {
    /// The ids of the rows in flight, by source.
    var inFlight: [String: Set<String>] { inFlightRows.mapValues { Set($0.keys) } }
}
