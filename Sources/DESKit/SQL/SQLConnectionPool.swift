import Foundation
import Synchronization

/// A pool of at most `size` connections, opened lazily, whose every decision is made by
/// ``PoolStateMachine``: a caller takes an idle connection, opens a new one while fewer
/// than `size` exist, or waits in FIFO order — at most `waitTimeout` seconds.
///
/// A failed connect fails the caller it was for and gives the next waiter a connect of
/// its own (nobody waits for a connection that will not come); a broken connection is
/// closed instead of returning to idle; ``close()`` fails every waiter, closes idle
/// connections at once and those in use when they come back.
public final class SQLConnectionPool: Sendable {
    /// Opens one connection.
    public typealias Factory = @Sendable () async throws -> any SQLConnection

    private typealias Machine = PoolStateMachine<ConnectionBox, Int>
    /// Sendable wrapper (connections are Sendable; the box only gives the machine a concrete type).
    private struct ConnectionBox: Sendable {
        let connection: any SQLConnection
    }

    private struct State {
        var machine: Machine
        var continuations: [Int: CheckedContinuation<any SQLConnection, Error>] = [:]
        /// Outcomes that reached a waiter before it had parked its continuation.
        var early: [Int: Result<any SQLConnection, Error>] = [:]
        var nextWaiter = 0
    }

    /// Most connections open at once.
    public let size: Int
    /// Longest wait for a connection, in seconds (nil: no limit).
    public let waitTimeout: Double?
    private let factory: Factory
    private let state: Mutex<State>

    /// Creates a pool of at most `size` connections; a caller waits at most `waitTimeout` seconds.
    public init(size: Int, waitTimeout: Double? = 60, factory: @escaping Factory) {
        self.size = max(1, size)
        self.waitTimeout = waitTimeout
        self.factory = factory
        self.state = Mutex(State(machine: Machine(size: size)))
    }

    /// How many connections exist, how many of them are idle, and how many callers wait.
    public struct Stats: Sendable, Equatable {
        public var open: Int
        public var idle: Int
        public var waiting: Int
    }

    /// The pool's counts now.
    public var stats: Stats {
        state.withLock { Stats(open: $0.machine.open, idle: $0.machine.idle.count, waiting: $0.machine.waiters.count) }
    }

    /// Runs `body` with a connection of the pool.
    public func withConnection<T: Sendable>(_ body: (any SQLConnection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let result = try await body(connection)
            await release(connection)
            return result
        } catch {
            await release(connection)
            throw error
        }
    }

    private func acquire() async throws -> any SQLConnection {
        let (id, action) = state.withLock { s -> (Int, Machine.Action) in
            s.nextWaiter += 1
            return (s.nextWaiter, s.machine.lease(s.nextWaiter))
        }
        switch action {
        case .use(let box): return box.connection
        case .failClosed: throw DESKitError(.unavailable, "connection pool is closed")
        case .open: return try await openForCaller()
        default: break  // .wait
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<any SQLConnection, Error>) in
                let early = state.withLock { s -> Result<any SQLConnection, Error>? in
                    if let r = s.early.removeValue(forKey: id) { return r }
                    s.continuations[id] = cont
                    return nil
                }
                if let early {
                    cont.resume(with: early)
                    return
                }
                if let waitTimeout {
                    Task { [weak self] in
                        try? await Task.sleep(nanoseconds: UInt64(min(max(waitTimeout, 0), 86_400) * 1e9))
                        await self?.timeOut(id)
                    }
                }
            }
        } onCancel: {
            Task { [weak self] in await self?.timeOut(id) }
        }
    }

    /// Opens a connection for the caller that was told `.open`.
    private func openForCaller() async throws -> any SQLConnection {
        do {
            let connection = try await factory()
            let action = state.withLock { $0.machine.connected(ConnectionBox(connection: connection), for: nil) }
            if case .use = action { return connection }
            await perform(action)
            throw DESKitError(.unavailable, "connection pool is closed")
        } catch {
            let action = state.withLock { $0.machine.connectFailed(for: nil) }
            await perform(action)
            await perform(state.withLock { $0.machine.nextConnect() })
            throw error
        }
    }

    /// Opens a connection for a parked waiter.
    private func open(for waiter: Int) async {
        do {
            let connection = try await factory()
            await perform(state.withLock { $0.machine.connected(ConnectionBox(connection: connection), for: waiter) })
        } catch {
            await perform(state.withLock { $0.machine.connectFailed(for: waiter) }, error: error)
            await perform(state.withLock { $0.machine.nextConnect() })
        }
    }

    private func release(_ connection: any SQLConnection) async {
        let action = state.withLock { $0.machine.release(ConnectionBox(connection: connection), broken: connection.isBroken) }
        await perform(action)
    }

    private func timeOut(_ waiter: Int) async {
        await perform(state.withLock { $0.machine.timedOut(waiter) })
    }

    /// Carries out what the machine decided.
    private func perform(_ action: Machine.Action, error: Error? = nil) async {
        switch action {
        case .none, .use, .open, .wait, .failClosed:
            return
        case .hand(let box, let waiter):
            deliver(.success(box.connection), to: waiter)
        case .openFor(let waiter):
            Task { await self.open(for: waiter) }
        case .close(let box):
            await box.connection.close()
        case .closeAndOpenFor(let box, let waiter):
            await box.connection.close()
            Task { await self.open(for: waiter) }
        case .fail(let waiters, let reason, let closing):
            let message: String
            switch reason {
            case .connectFailed: message = "could not connect: \(error.map { "\($0)" } ?? "unknown error")"
            case .timedOut: message = "no connection came free within \(waitTimeout.map { "\($0)" } ?? "?") s (pool of \(size))"
            case .closed: message = "connection pool is closed"
            }
            let failure: Error = reason == .connectFailed && error != nil
                ? error ?? DESKitError(.unavailable, message) : DESKitError(.unavailable, message, transient: reason != .closed)
            for waiter in waiters { deliver(.failure(failure), to: waiter) }
            for box in closing { await box.connection.close() }
        }
    }

    /// Resumes a waiter, or keeps the outcome for it when it has not parked yet.
    private func deliver(_ outcome: Result<any SQLConnection, Error>, to waiter: Int) {
        let cont = state.withLock { s -> CheckedContinuation<any SQLConnection, Error>? in
            if let c = s.continuations.removeValue(forKey: waiter) { return c }
            s.early[waiter] = outcome
            return nil
        }
        cont?.resume(with: outcome)
    }

    /// Fails every waiter and closes idle connections now; connections in use close when they come back.
    public func close() async {
        await perform(state.withLock { $0.machine.close() })
    }
}
