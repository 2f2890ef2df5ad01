/// The decisions of ``SQLConnectionPool``, as a value with no I/O: every event (a lease
/// asked for, a connection returned, a connect that succeeded or failed, a waiter's
/// timeout, the pool closed) goes in, and an action comes out for the pool to carry out.
/// Tested on its own, in the manner of postgres-nio's `PoolStateMachine`.
///
/// Invariants: `open` counts connections that exist or are being opened and never exceeds
/// `size`; a waiter is in `waiters` until exactly one action names it; a closed pool hands
/// out nothing and closes every connection that comes back.
public struct PoolStateMachine<Connection, Waiter: Hashable>: Sendable where Connection: Sendable, Waiter: Sendable {
    /// What the pool must do now.
    public enum Action: Sendable {
        /// Nothing.
        case none
        /// Give this idle connection to the caller that asked.
        case use(Connection)
        /// Open a new connection for the caller that asked.
        case open
        /// Park the caller (it is now a waiter).
        case wait
        /// Fail the caller that asked: the pool is closed.
        case failClosed
        /// Hand a connection to a waiter.
        case hand(Connection, to: Waiter)
        /// Open a new connection on behalf of a waiter (a slot came free).
        case openFor(Waiter)
        /// Close this connection (broken, or returned to a closed pool).
        case close(Connection)
        /// Close this connection and open a new one for a waiter.
        case closeAndOpenFor(Connection, Waiter)
        /// Fail these waiters (a connect failed for them, they timed out, or the pool closed),
        /// and close these connections.
        case fail([Waiter], reason: FailReason, closing: [Connection])
    }

    /// Why waiters are failed.
    public enum FailReason: Sendable, Equatable {
        /// The connect made for the waiter failed.
        case connectFailed
        /// The waiter waited longer than it would.
        case timedOut
        /// The pool was closed.
        case closed
    }

    /// Most connections at once.
    public let size: Int
    /// Idle connections, most recently returned last.
    public private(set) var idle: [Connection] = []
    /// Connections that exist or are being opened.
    public private(set) var open = 0
    /// Callers waiting for a connection, first come first served.
    public private(set) var waiters: [Waiter] = []
    /// Whether the pool is closed.
    public private(set) var isClosed = false

    /// A pool of at most `size` connections (at least 1).
    public init(size: Int) { self.size = max(1, size) }

    /// A caller asks for a connection.
    public mutating func lease(_ waiter: Waiter) -> Action {
        if isClosed { return .failClosed }
        if let c = idle.popLast() { return .use(c) }
        if open < size {
            open += 1
            return .open
        }
        waiters.append(waiter)
        return .wait
    }

    /// A connection comes back; `broken` when its session failed in a way that leaves it unusable.
    public mutating func release(_ connection: Connection, broken: Bool) -> Action {
        if isClosed || broken {
            open -= 1
            if !isClosed, let waiter = takeFirstWaiter() {
                open += 1
                return .closeAndOpenFor(connection, waiter)
            }
            return .close(connection)
        }
        if let waiter = takeFirstWaiter() { return .hand(connection, to: waiter) }
        idle.append(connection)
        return .none
    }

    /// A connect finished for `waiter` (nil: for the caller that got `.open`).
    public mutating func connected(_ connection: Connection, for waiter: Waiter?) -> Action {
        if isClosed {
            open -= 1
            if let waiter { return .fail([waiter], reason: .closed, closing: [connection]) }
            return .close(connection)
        }
        if let waiter { return .hand(connection, to: waiter) }
        return .use(connection)
    }

    /// A connect failed (for `waiter`, or for the caller that got `.open`, which gets the error itself):
    /// its slot comes free and the waiter it was for is failed. The pool then calls ``nextConnect()``,
    /// so that a parked waiter gets a connect of its own instead of waiting for one that will not come.
    public mutating func connectFailed(for waiter: Waiter?) -> Action {
        open -= 1
        guard let waiter else { return .none }
        return .fail([waiter], reason: .connectFailed, closing: [])
    }

    /// After a failed connect: a waiter still parked and a free slot → open a connection for it.
    public mutating func nextConnect() -> Action {
        guard !isClosed, open < size, let next = takeFirstWaiter() else { return .none }
        open += 1
        return .openFor(next)
    }

    /// A waiter's time is up: it is failed if still waiting, otherwise nothing (it was served).
    public mutating func timedOut(_ waiter: Waiter) -> Action {
        guard let i = waiters.firstIndex(of: waiter) else { return .none }
        waiters.remove(at: i)
        return .fail([waiter], reason: .timedOut, closing: [])
    }

    /// The pool closes: every waiter fails, idle connections close now, those in use when they come back.
    public mutating func close() -> Action {
        guard !isClosed else { return .none }
        isClosed = true
        let (w, c) = (waiters, idle)
        waiters = []
        idle = []
        open -= c.count
        return .fail(w, reason: .closed, closing: c)
    }

    private mutating func takeFirstWaiter() -> Waiter? {
        waiters.isEmpty ? nil : waiters.removeFirst()
    }
}
