import DESFormat

/// The latest catalog row of each path of one root, as a scan compares its walk against them:
/// the rows in one array, found by path through an open-addressing table of row indices.
///
/// A rescan of an unchanged tree does little else than build this and look every file up in
/// it, so it is built for that: a `[ScanPath: Row]` dictionary moved each 100-byte row into its
/// buckets, retained and released its path, and compared paths through a generic walk of their
/// UTF-8 views; here a slot is four bytes, a row is stored once, and a lookup compares the
/// path's 64-bit hash before its bytes (``ExactText/bytesEqual(_:_:)``). Paths are hashed with
/// Swift's per-process random seed, so names made to collide cannot be chosen in advance.
public struct ScanCatalog: Sendable {
    /// The rows, each the latest version of its path, in the order they were first kept.
    public private(set) var rows: [ScanPlan.Row] = []
    /// `hashes[i]` is the hash of `rows[i].path`.
    private var hashes: [Int] = []
    /// Row indices (-1: empty), at `hash & (slots.count - 1)` or the next free slot after it.
    private var slots: [Int32]

    /// An empty catalog sized for `capacity` paths (it grows past them).
    public init(capacity: Int = 0) {
        slots = Array(repeating: -1, count: Self.slotCount(for: capacity))
        rows.reserveCapacity(max(0, capacity))
        hashes.reserveCapacity(max(0, capacity))
    }

    /// The catalog of `rows` (keyed by their paths; each row's own `path` is what is used).
    public init(_ rows: [ScanPath: ScanPlan.Row]) {
        self.init(capacity: rows.count)
        for row in rows.values { keep(row) }
    }

    /// How many paths it holds.
    public var count: Int { rows.count }

    /// Keeps `row` as its path's latest row unless a row of a later version is already kept.
    public mutating func keep(_ row: ScanPlan.Row) {
        if (rows.count + 1) * 2 > slots.count { grow() }
        let hash = Self.hash(row.path)
        switch probe(row.path, hash: hash) {
        case .found(let index):
            if row.version >= rows[index].version { rows[index] = row }
        case .free(let slot):
            slots[slot] = Int32(rows.count)
            rows.append(row)
            hashes.append(hash)
        }
    }

    /// The index in ``rows`` of the row of `path`, or nil.
    public func index(of path: String) -> Int? {
        if case .found(let index) = probe(path, hash: Self.hash(path)) { return index }
        return nil
    }

    private enum Probe {
        case found(Int)
        case free(Int)
    }

    /// The row of `path` (whose hash is `hash`), or the free slot where it would go.
    private func probe(_ path: String, hash: Int) -> Probe {
        var slot = hash & (slots.count - 1)
        while slots[slot] >= 0 {
            let index = Int(slots[slot])
            if hashes[index] == hash, ExactText.bytesEqual(rows[index].path, path) { return .found(index) }
            slot = (slot + 1) & (slots.count - 1)
        }
        return .free(slot)
    }

    /// The row of `path`, or nil.
    public subscript(path: String) -> ScanPlan.Row? { index(of: path).map { rows[$0] } }

    /// Marks the row of `path` to be taken again and hashed afresh (``ScanPlan/Row/rehash``).
    public mutating func markRehash(path: String) {
        if let index = index(of: path) { rows[index].rehash = true }
    }

    /// Doubles the table and places every row again (from its kept hash).
    private mutating func grow() {
        slots = Array(repeating: -1, count: slots.count * 2)
        for (index, hash) in hashes.enumerated() {
            var slot = hash & (slots.count - 1)
            while slots[slot] >= 0 { slot = (slot + 1) & (slots.count - 1) }
            slots[slot] = Int32(index)
        }
    }

    /// A power of two at least twice `capacity` (at least 16): the table is at most half full.
    private static func slotCount(for capacity: Int) -> Int {
        var n = 16
        while n < min(max(0, capacity), 1 << 29) * 2 { n *= 2 }
        return n
    }

    /// The hash of `path`'s UTF-8 bytes.
    static func hash(_ path: String) -> Int {
        var hasher = Hasher()
        ExactText(path).hash(into: &hasher)
        return hasher.finalize()
    }
}
