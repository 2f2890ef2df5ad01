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
        var waiters: [CheckedContinuation<(any SQLConnection)?, Never>] = []
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
                state.withLock { $0.open -= 1 }
                throw error
            }
        case .wait:
            let c = await withCheckedContinuation { (cont: CheckedContinuation<(any SQLConnection)?, Never>) in
                let immediate: (any SQLConnection)?? = state.withLock { s in
                    if s.closed { return .some(nil) }
                    if let c = s.idle.popLast() { return .some(c) }
                    s.waiters.append(cont)
                    return nil
                }
                if let immediate { cont.resume(returning: immediate) }
            }
            guard let c else { throw DESKitError(.unavailable, "connection pool is closed") }
            return c
        }
    }

    private func release(_ connection: any SQLConnection) {
        let waiter: CheckedContinuation<(any SQLConnection)?, Never>? = state.withLock { s in
            if !s.waiters.isEmpty { return s.waiters.removeFirst() }
            s.idle.append(connection)
            return nil
        }
        waiter?.resume(returning: connection)
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
        for w in waiters { w.resume(returning: nil) }
        for c in idle { await c.close() }
    }
}
