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
///
/// ``Options`` add the original's `pool_recycle` (a connection older than that is closed
/// instead of being used again) and `pool_pre_ping` (an idle connection is tested before
/// it is handed out, and replaced when the test fails — a server restart or an idle
/// timeout on the server's side then costs nobody an error).
public final class SQLConnectionPool: Sendable {
    /// Opens one connection.
    public typealias Factory = @Sendable () async throws -> any SQLConnection

    /// How connections are kept.
    public struct Options: Sendable {
        /// Longest wait for a connection, in seconds (nil: no limit).
        public var waitTimeout: Double?
        /// Seconds after which a connection is replaced instead of used again (nil: never; `pool_recycle`).
        public var recycleSeconds: Double?
        /// Tests an idle connection before it is handed out; throwing means "replace it" (`pool_pre_ping`).
        public var prePing: (@Sendable (any SQLConnection) async throws -> Void)?
        /// Seconds on a monotonic clock (tests move it by hand).
        public var clock: @Sendable () -> Double

        /// Creates options.
        public init(
            waitTimeout: Double? = 60, recycleSeconds: Double? = nil,
            prePing: (@Sendable (any SQLConnection) async throws -> Void)? = nil,
            clock: @escaping @Sendable () -> Double = { ProcessInfo.processInfo.systemUptime }
        ) {
            self.waitTimeout = waitTimeout
            self.recycleSeconds = recycleSeconds
            self.prePing = prePing
            self.clock = clock
        }

        /// The options a `connection:` section asks for: `pool_recycle` (-1: never) and
        /// `pool_pre_ping`, which runs `healthQuery` (the dialect's).
        public static func from(_ connection: ConnectionConfig, healthQuery: String) -> Options {
            var options = Options()
            if connection.poolRecycleSeconds >= 0 { options.recycleSeconds = connection.poolRecycleSeconds }
            if connection.poolPrePing {
                options.prePing = { conn in _ = try await conn.withSession { try $0.query(healthQuery) } }
            }
            return options
        }
    }

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
        /// When each open connection was made.
        var born: [ObjectIdentifier: Double] = [:]
    }

    /// Most connections open at once.
    public let size: Int
    /// Longest wait for a connection, in seconds (nil: no limit).
    public var waitTimeout: Double? { options.waitTimeout }
    /// How connections are kept.
    public let options: Options
    private let factory: Factory
    private let state: Mutex<State>

    /// Creates a pool of at most `size` connections; a caller waits at most `waitTimeout` seconds.
    public convenience init(size: Int, waitTimeout: Double? = 60, factory: @escaping Factory) {
        self.init(size: size, options: Options(waitTimeout: waitTimeout), factory: factory)
    }

    /// Creates a pool of at most `size` connections kept as `options` say.
    public init(size: Int, options: Options, factory: @escaping Factory) {
        self.size = max(1, size)
        self.options = options
        self.factory = factory
        self.state = Mutex(State(machine: Machine(size: size)))
    }

    /// Opens a connection and records its birth.
    private func connect() async throws -> any SQLConnection {
        let connection = try await factory()
        let now = options.clock()
        state.withLock { $0.born[ObjectIdentifier(connection)] = now }
        return connection
    }

    /// Whether a connection has lived longer than `recycleSeconds`.
    private func isExpired(_ connection: any SQLConnection) -> Bool {
        guard let recycle = options.recycleSeconds else { return false }
        let born = state.withLock { $0.born[ObjectIdentifier(connection)] } ?? -Double.infinity
        return options.clock() - born >= recycle
    }

    /// Closes a connection the pool will not use again.
    private func closeConnection(_ connection: any SQLConnection) async {
        _ = state.withLock { $0.born.removeValue(forKey: ObjectIdentifier(connection)) }
        await connection.close()
    }

    /// Whether an idle connection may be handed out: young enough, and answering the pre-ping.
    /// One that may not is discarded (its slot goes to a waiter, or back to the count).
    private func usable(_ connection: any SQLConnection) async -> Bool {
        var fine = !isExpired(connection)
        if fine, let ping = options.prePing {
            fine = (try? await ping(connection)) != nil
        }
        if !fine {
            await perform(state.withLock { $0.machine.release(ConnectionBox(connection: connection), broken: true) })
        }
        return fine
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
        var id = 0
        var action = Machine.Action.none
        // An idle connection too old, or failing its pre-ping, is replaced: lease again.
        repeat {
            (id, action) = state.withLock { s -> (Int, Machine.Action) in
                s.nextWaiter += 1
                return (s.nextWaiter, s.machine.lease(s.nextWaiter))
            }
            switch action {
            case .use(let box):
                if await usable(box.connection) { return box.connection }
                continue
            case .failClosed: throw DESKitError(.closed, "connection pool is closed")
            case .open: return try await openForCaller()
            default: break  // .wait
            }
        } while !isWait(action)
        return try await wait(as: id)
    }

    /// Parks the caller `id` until a connection is handed to it, it times out, or it is cancelled.
    private func wait(as id: Int) async throws -> any SQLConnection {
        try await withTaskCancellationHandler {
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

    private func isWait(_ action: Machine.Action) -> Bool {
        if case .wait = action { return true }
        return false
    }

    /// Opens a connection for the caller that was told `.open`.
    private func openForCaller() async throws -> any SQLConnection {
        do {
            let connection = try await connect()
            let action = state.withLock { $0.machine.connected(ConnectionBox(connection: connection), for: nil) }
            if case .use = action { return connection }
            await perform(action)
            throw DESKitError(.closed, "connection pool is closed")
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
            let connection = try await connect()
            await perform(state.withLock { $0.machine.connected(ConnectionBox(connection: connection), for: waiter) })
        } catch {
            await perform(state.withLock { $0.machine.connectFailed(for: waiter) }, error: error)
            await perform(state.withLock { $0.machine.nextConnect() })
        }
    }

    private func release(_ connection: any SQLConnection) async {
        let retire = connection.isBroken || isExpired(connection)
        let action = state.withLock { $0.machine.release(ConnectionBox(connection: connection), broken: retire) }
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
            await closeConnection(box.connection)
        case .closeAndOpenFor(let box, let waiter):
            await closeConnection(box.connection)
            Task { await self.open(for: waiter) }
        case .fail(let waiters, let reason, let closing):
            let message: String
            switch reason {
            case .connectFailed: message = "could not connect: \(error.map { "\($0)" } ?? "unknown error")"
            case .timedOut: message = "no connection came free within \(waitTimeout.map { "\($0)" } ?? "?") s (pool of \(size))"
            case .closed: message = "connection pool is closed"
            }
            let failure: Error = reason == .connectFailed && error != nil
                ? error ?? DESKitError(.unavailable, message)
                : DESKitError(reason == .closed ? .closed : .unavailable, message, transient: reason != .closed)
            for waiter in waiters { deliver(.failure(failure), to: waiter) }
            for box in closing { await closeConnection(box.connection) }
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
