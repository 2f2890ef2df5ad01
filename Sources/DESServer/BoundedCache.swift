import Synchronization

/// A small thread-safe map that forgets its oldest keys first once it holds `capacity`.
final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        /// Each value with the slot of `order` that stands for it.
        var values: [Key: (value: Value, slot: Int)] = [:]
        /// Keys in insertion order, a ring from `head`; a slot whose key was removed (or
        /// inserted again elsewhere) is stale and frees nothing when its turn comes.
        var order: [Key] = []
        var head = 0
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    subscript(key: Key) -> Value? {
        state.withLock { $0.values[key]?.value }
    }

    func set(_ key: Key, _ value: Value) {
        state.withLock { s in
            if let slot = s.values[key]?.slot {
                s.values[key] = (value, slot)
                return
            }
            if s.order.count < capacity {
                s.order.append(key)
                s.values[key] = (value, s.order.count - 1)
                return
            }
            let slot = s.head
            let old = s.order[slot]
            if s.values[old]?.slot == slot { s.values[old] = nil }  // only the key this slot still stands for
            s.order[slot] = key
            s.values[key] = (value, slot)
            s.head = (slot + 1) % capacity
        }
    }

    func remove(_ key: Key) {
        state.withLock { s in _ = s.values.removeValue(forKey: key) }
    }

    /// Removes the entries `shouldRemove` picks; returns their values.
    @discardableResult
    func removeAll(where shouldRemove: (Key, Value) -> Bool) -> [Value] {
        state.withLock { s in
            var removed: [Value] = []
            s.values = s.values.filter { key, entry in
                guard shouldRemove(key, entry.value) else { return true }
                removed.append(entry.value)
                return false
            }
            return removed
        }
    }

    /// Removes every entry.
    func removeAll() {
        state.withLock { $0 = State() }
    }

    var count: Int { state.withLock { $0.values.count } }
}
