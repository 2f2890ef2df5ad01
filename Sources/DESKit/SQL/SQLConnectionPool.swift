import Synchronization

/// A fixed-size pool of connections, opened lazily.
///
/// State machine: a caller takes an idle connection, or opens a new one while
/// fewer than `size` exist, or waits in FIFO order for one to be returned.
public final class SQLConnectionPool: Sendable {
    /// Opens one connection.
    public typealias Factory = @Sendable () async throws -> any SQLConnection

    private struct State {
        var idle: [any SQLConnection] = []
        var open = 0
        var waiters: [CheckedContinuation<Handoff, Never>] = []
        var closed = false
    }

    /// Most connections open at once.
    public let size: Int
    private let factory: Factory
    private let state = Mutex(State())

    /// Creates a pool of at most `size` connections.
    public init(size: Int, factory: @escaping Factory) {
        self.size = max(1, size)
        self.factory = factory
    }

    private enum Lease { case use(any SQLConnection), openNew, wait, closed }
    /// What a waiter is woken with: a connection, the pool's end, or a free slot to open one in
    /// (after a failed connect, so that a waiter is never left waiting for a connection that will not come).
    private enum Handoff: @unchecked Sendable { case connection(any SQLConnection), closed, retry }

    /// Runs `body` with a connection of the pool.
    public func withConnection<T: Sendable>(_ body: (any SQLConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    private func acquire() async throws -> any SQLConnection {
        while true {
            if let c = try await acquireOnce() { return c }
        }
    }

    /// A connection, or nil when woken to retry (a slot was freed by a failed connect).
    private func acquireOnce() async throws -> (any SQLConnection)? {
        let decision: Lease = state.withLock { s in
            if s.closed { return .closed }
            if let c = s.idle.popLast() { return .use(c) }
            if s.open < size {
                s.open += 1
                return .openNew
            }
            return .wait
        }
        switch decision {
        case .use(let c): return c
        case .closed: throw DESKitError(.unavailable, "connection pool is closed")
        case .openNew:
            do {
                return try await factory()
            } catch {
                let waiter = state.withLock { s -> CheckedContinuation<Handoff, Never>? in
                    s.open -= 1
                    return s.waiters.isEmpty ? nil : s.waiters.removeFirst()
                }
                waiter?.resume(returning: .retry)
                throw error
            }
        case .wait:
            let handoff = await withCheckedContinuation { (cont: CheckedContinuation<Handoff, Never>) in
                let immediate: Handoff? = state.withLock { s in
                    if s.closed { return .closed }
                    if let c = s.idle.popLast() { return .connection(c) }
                    if s.open < size { return .retry }
                    s.waiters.append(cont)
                    return nil
                }
                if let immediate { cont.resume(returning: immediate) }
            }
            switch handoff {
            case .connection(let c): return c
            case .closed: throw DESKitError(.unavailable, "connection pool is closed")
            case .retry: return nil
            }
        }
    }

    private func release(_ connection: any SQLConnection) {
        let waiter: CheckedContinuation<Handoff, Never>? = state.withLock { s in
            if !s.waiters.isEmpty { return s.waiters.removeFirst() }
            s.idle.append(connection)
            return nil
        }
        waiter?.resume(returning: .connection(connection))
    }

    /// Closes every idle connection; connections in use close when returned... after which the pool refuses new work.
    public func close() async {
        let (idle, waiters) = state.withLock { s in
            s.closed = true
            let r = (s.idle, s.waiters)
            s.idle = []
            s.waiters = []
            return r
        }
        for w in waiters { w.resume(returning: .closed) }
        for c in idle { await c.close() }
    }
}
