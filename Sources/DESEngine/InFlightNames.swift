/// The DES names of the rows a lease-mode packer has in flight (``PackerStateMachine/inFlightNames``),
/// as counts by the names' hash values, not as the names.
///
/// A run lands every row it took, and a set of strings pays for each removal by hashing again
/// the names that follow it in the table (a quarter of what the run loop spent on its in-flight
/// bookkeeping, measured on 200,000 rows); integers are cheap to hash again. Two names with
/// one hash (a 64-bit hash, seeded per process) only make ``contains(_:)`` say yes for a name
/// not in flight: a read then skips that row as a twin, and a later read, once the other has
/// landed, takes it. Counts keep a name in flight until every row taken with it has left.
package struct InFlightNames: Sendable {
    private var counts: [Int: Int] = [:]
    /// How many rows' names it holds.
    package private(set) var count = 0

    /// None.
    package init() {}

    /// Whether it holds none.
    package var isEmpty: Bool { count == 0 }

    /// Adds a row's name.
    package mutating func insert(_ name: String) {
        counts[name.hashValue, default: 0] += 1
        count += 1
    }

    /// Removes a row's name (one of the rows, when several were taken with it).
    package mutating func remove(_ name: String) {
        let key = name.hashValue
        guard let n = counts[key] else { return }
        if n <= 1 { counts.removeValue(forKey: key) } else { counts[key] = n - 1 }
        count -= 1
    }

    /// Whether a row in flight may have this name (see the type's note on hashes).
    package func contains(_ name: String) -> Bool { counts[name.hashValue] != nil }
}
