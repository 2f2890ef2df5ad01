import Synchronization

/// A small thread-safe map that forgets its oldest keys first once it holds `capacity`.
final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var values: [Key: Value] = [:]
        var order: [Key] = []  // insertion order, a ring from `head`
        var head = 0
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    subscript(key: Key) -> Value? {
        state.withLock { $0.values[key] }
    }

    func set(_ key: Key, _ value: Value) {
        state.withLock { s in
            if s.values.updateValue(value, forKey: key) != nil { return }
            if s.order.count < capacity {
                s.order.append(key)
            } else {
                s.values[s.order[s.head]] = nil
                s.order[s.head] = key
                s.head = (s.head + 1) % capacity
            }
        }
    }

    func remove(_ key: Key) {
        state.withLock { s in _ = s.values.removeValue(forKey: key) }  // its slot in `order` is reused in turn
    }

    var count: Int { state.withLock { $0.values.count } }
}
