import NIOCore
import Synchronization

/// The bodies of small files already read and checked against their sha256, kept in memory by
/// name within a byte budget (`server.body_cache_bytes`), so that a file asked for again is
/// answered without reading, hashing or copying it: the answer shares the cached buffer.
///
/// - **Only checked bytes:** a body enters only after it hashed to the sha256 its META (or leaf)
///   records, so what is served from here is exactly what a fresh read would have served.
/// - **Tied to where it was found:** an entry belongs to the ``ServedFile`` it was read through;
///   once the server forgets that location (its container replaced, compacted or deleted, a
///   checksum mismatch), the next lookup makes a new one and the old body is never served.
///   Deletes are checked before the cache is asked (410 as ever).
/// - **Bounded:** two generations of at most half the budget each. New and re-used bodies go
///   into the young one; when it is full it becomes the old one and the old one is dropped, so
///   a body asked for within the last half budget's worth of reads stays. Each body is charged
///   its bytes and ``entryOverhead`` (so a flood of empty files is bounded too).
/// - One body costs at most an eighth of the budget; a larger file is read each time.
final class BodyCache: Sendable {
    private struct Entry {
        let served: ServedFile
        let body: ByteBuffer
        /// What it is charged against the budget: its bytes and ``entryOverhead``.
        var cost: Int { body.readableBytes + BodyCache.entryOverhead }
    }

    /// What each kept body costs beyond its bytes: its name, the location it keeps alive
    /// (``ServedFile``: entry, META, headers) and the tables' slots. Empty files are not free:
    /// 64 MiB keeps at most 32,768 of them.
    static let entryOverhead = 2_048

    private struct State {
        var young: [String: Entry] = [:]
        var old: [String: Entry] = [:]
        var youngBytes = 0
        var oldBytes = 0
    }

    /// The most bytes the cached bodies take (0: nothing is cached).
    let budget: Int
    private let state = Mutex(State())

    /// A cache of at most `budget` bytes of bodies.
    init(budget: Int) { self.budget = max(0, budget) }

    /// Whether a body of `size` bytes may be cached at all: its cost at most an eighth of the budget.
    func admits(size: UInt64) -> Bool {
        budget > 0 && size <= UInt64(Int.max / 2) && Int(size) + Self.entryOverhead <= budget / 8
    }

    /// The cached body of `name`, if it was read through `served`.
    func body(of name: String, served: ServedFile) -> ByteBuffer? {
        guard budget > 0 else { return nil }
        let (found, dropped): (ByteBuffer?, [String: Entry]) = state.withLock { s in
            if let entry = s.young[name] { return (entry.served === served ? entry.body : nil, [:]) }
            guard let entry = s.old.removeValue(forKey: name) else { return (nil, [:]) }
            s.oldBytes -= entry.cost
            guard entry.served === served else { return (nil, [:]) }
            return (entry.body, Self.keep(name, entry, in: &s, budget: budget))
        }
        withExtendedLifetime(dropped) {}
        return found
    }

    /// Keeps `body`, checked, as the body of `name` read through `served`.
    func insert(_ name: String, served: ServedFile, body: ByteBuffer) {
        guard admits(size: UInt64(body.readableBytes)) else { return }
        let dropped: [String: Entry] = state.withLock { s in
            if let old = s.old.removeValue(forKey: name) { s.oldBytes -= old.cost }
            if let young = s.young.removeValue(forKey: name) { s.youngBytes -= young.cost }
            return Self.keep(name, Entry(served: served, body: body), in: &s, budget: budget)
        }
        withExtendedLifetime(dropped) {}  // the bodies dropped are freed outside the lock
    }

    /// Puts `entry` in the young generation; when it would pass half the budget, the young one
    /// becomes the old one first, and the old one is returned to be dropped: each generation stays
    /// within half the budget, the two within the budget.
    private static func keep(_ name: String, _ entry: Entry, in s: inout State, budget: Int) -> [String: Entry] {
        var dropped: [String: Entry] = [:]
        if s.youngBytes + entry.cost > budget / 2 {
            dropped = s.old
            s.old = s.young
            s.oldBytes = s.youngBytes
            s.young = [:]
            s.youngBytes = 0
        }
        s.young[name] = entry
        s.youngBytes += entry.cost
        return dropped
    }

    /// Forgets the body of `name`.
    func remove(_ name: String) {
        let dropped: [Entry] = state.withLock { s in
            var gone: [Entry] = []
            if let e = s.young.removeValue(forKey: name) {
                s.youngBytes -= e.cost
                gone.append(e)
            }
            if let e = s.old.removeValue(forKey: name) {
                s.oldBytes -= e.cost
                gone.append(e)
            }
            return gone
        }
        withExtendedLifetime(dropped) {}
    }

    /// What the cached bodies cost now (their bytes and ``entryOverhead`` each): at most the budget.
    var bytes: Int { state.withLock { $0.youngBytes + $0.oldBytes } }
    /// How many bodies are cached now.
    var count: Int { state.withLock { $0.young.count + $0.old.count } }
}
