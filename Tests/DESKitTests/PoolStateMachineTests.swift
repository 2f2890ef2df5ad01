import DESKit
import Foundation
import Synchronization
import Testing

/// The connection pool's decisions, one event at a time, and the pool itself over fake connections.
@Suite("Pool state machine")
struct PoolStateMachineTests {
    typealias Machine = PoolStateMachine<String, Int>

    @Test("Lease: idle first, then open up to the size, then wait in FIFO order")
    func leaseOrder() {
        var m = Machine(size: 2)
        guard case .open = m.lease(1), case .open = m.lease(2), case .wait = m.lease(3), case .wait = m.lease(4) else {
            Issue.record("expected open, open, wait, wait")
            return
        }
        #expect(m.open == 2 && m.waiters == [3, 4])
        guard case .use("a") = m.connected("a", for: nil) else { Issue.record("expected use"); return }
        guard case .hand("a", to: 3) = m.release("a", broken: false) else { Issue.record("expected hand to 3"); return }
        guard case .hand("a", to: 4) = m.release("a", broken: false) else { Issue.record("expected hand to 4"); return }
        guard case .none = m.release("a", broken: false) else { Issue.record("expected idle"); return }
        guard case .use("a") = m.lease(5) else { Issue.record("expected the idle connection"); return }
        #expect(m.open == 2 && m.waiters.isEmpty)
    }

    @Test("A failed connect fails the waiter it was for and gives the next waiter a connect of its own")
    func connectFailedWakesWaiters() {
        var m = Machine(size: 1)
        guard case .open = m.lease(1), case .wait = m.lease(2), case .wait = m.lease(3) else { Issue.record("setup"); return }
        guard case .none = m.connectFailed(for: nil) else { Issue.record("the caller gets the error itself"); return }
        #expect(m.open == 0)
        guard case .openFor(2) = m.nextConnect() else { Issue.record("waiter 2 must get a connect"); return }
        guard case .fail([2], reason: .connectFailed, closing: []) = m.connectFailed(for: 2) else { Issue.record("2 fails"); return }
        guard case .openFor(3) = m.nextConnect() else { Issue.record("waiter 3 must get a connect"); return }
        guard case .hand("c", to: 3) = m.connected("c", for: 3) else { Issue.record("3 gets it"); return }
        #expect(m.open == 1 && m.waiters.isEmpty)
    }

    @Test("A broken connection is discarded, and a waiter gets a new one")
    func brokenConnectionDiscarded() {
        var m = Machine(size: 1)
        _ = m.lease(1)
        _ = m.connected("a", for: nil)
        guard case .close("a") = m.release("a", broken: true) else { Issue.record("close a"); return }
        #expect(m.open == 0 && m.idle.isEmpty)
        _ = m.lease(2)
        guard case .wait = m.lease(3) else { Issue.record("3 waits"); return }
        guard case .closeAndOpenFor("b", 3) = m.release("b", broken: true) else { Issue.record("replace for 3"); return }
        #expect(m.open == 1)
    }

    @Test("close(): every waiter fails, idle closes, in use closes on return, nothing is handed out after")
    func closeFlow() {
        var m = Machine(size: 1)
        _ = m.lease(1)
        _ = m.connected("a", for: nil)
        guard case .wait = m.lease(2) else { Issue.record("2 waits"); return }
        guard case .fail([2], reason: .closed, closing: []) = m.close() else { Issue.record("2 fails on close"); return }
        guard case .close("a") = m.release("a", broken: false) else { Issue.record("a closes on return"); return }
        guard case .failClosed = m.lease(3) else { Issue.record("no lease after close"); return }
        #expect(m.open == 0)
        // A connect that finishes after close is closed, its waiter failed.
        var n = Machine(size: 1)
        _ = n.lease(1)
        _ = n.close()
        guard case .close("late") = n.connected("late", for: nil) else { Issue.record("late connect closed"); return }
    }

    @Test("A waiter times out only while it still waits")
    func waiterTimeout() {
        var m = Machine(size: 1)
        _ = m.lease(1)
        _ = m.lease(2)
        guard case .fail([2], reason: .timedOut, closing: []) = m.timedOut(2) else { Issue.record("2 times out"); return }
        guard case .none = m.timedOut(2) else { Issue.record("only once"); return }
        #expect(m.waiters.isEmpty)
    }
}

/// A connection that counts closes and can be told to report itself broken.
final class FakeConnection: SQLConnection, @unchecked Sendable {
    let id: Int
    let closes = Mutex(0)
    let broken = Mutex(false)
    init(id: Int) { self.id = id }
    func withSession<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        throw SQLError(code: "FAKE", message: "no session")
    }
    func withTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        throw SQLError(code: "FAKE", message: "no session")
    }
    func close() async { closes.withLock { $0 += 1 } }
    var isBroken: Bool { broken.withLock { $0 } }
}

@Suite("Connection pool")
struct SQLConnectionPoolTests {
    @Test("A failed connect reaches a waiter as an error instead of leaving it waiting", .timeLimit(.minutes(3)))
    func failedConnectFailsWaiter() async throws {
        let attempts = Mutex(0)
        let gate = AsyncGate()
        let pool = SQLConnectionPool(size: 1, waitTimeout: 30) {
            let n = attempts.withLock { a -> Int in
                a += 1
                return a
            }
            if n == 1 { await gate.wait() }  // hold the first connect until a second caller waits
            throw SQLError(code: "08001", message: "server down", isTransient: true)
        }
        async let first: Void = { _ = try? await pool.withConnection { _ in 1 } }()
        while attempts.withLock({ $0 }) == 0 { await Task.yield() }
        async let second: Result<Int, Error> = { do { return .success(try await pool.withConnection { _ in 2 }) } catch { return .failure(error) } }()
        while pool.stats.waiting == 0 { await Task.yield() }  // the second caller has parked
        await gate.open()
        await first
        let outcome = await second
        guard case .failure(let error) = outcome else { Issue.record("the waiter must fail"); return }
        #expect("\(error)".contains("server down"))
        #expect(attempts.withLock { $0 } == 2)  // the waiter got a connect of its own
    }

    @Test("A broken connection is closed, not handed out again; close() closes what comes back")
    func brokenAndClose() async throws {
        let made = Mutex<[FakeConnection]>([])
        let pool = SQLConnectionPool(size: 1) {
            made.withLock { m -> FakeConnection in
                let c = FakeConnection(id: m.count)
                m.append(c)
                return c
            }
        }
        let firstID = try await pool.withConnection { c -> Int in
            let fake = c as? FakeConnection
            fake?.broken.withLock { $0 = true }
            return fake?.id ?? -1
        }
        #expect(firstID == 0)
        #expect(made.withLock { $0[0].closes.withLock { $0 } } == 1)
        let secondID = try await pool.withConnection { ($0 as? FakeConnection)?.id ?? -1 }
        #expect(secondID == 1)
        // In use while closing: closed when it returns.
        try await pool.withConnection { c in
            await pool.close()
            #expect((c as? FakeConnection)?.closes.withLock { $0 } == 0)
        }
        #expect(made.withLock { $0[1].closes.withLock { $0 } } == 1)
        await #expect(throws: DESKitError.self) { try await pool.withConnection { _ in 0 } }
    }

    @Test("A waiter gives up after waitTimeout with a clear error", .timeLimit(.minutes(3)))
    func waiterTimesOut() async throws {
        let pool = SQLConnectionPool(size: 1, waitTimeout: 0.2) { FakeConnection(id: 0) }
        let gate = AsyncGate()
        async let holder: Void = { try? await pool.withConnection { _ in await gate.wait() } }()
        while pool.stats.open == 0 || pool.stats.idle > 0 { await Task.yield() }  // the holder has the connection
        do {
            _ = try await pool.withConnection { _ in 1 }
            Issue.record("expected a timeout")
        } catch {
            #expect("\(error)".contains("no connection came free"))
        }
        await gate.open()
        await holder
    }
}

/// A one-shot gate: `wait()` suspends until `open()`.
actor AsyncGate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }
    func open() {
        isOpen = true
        for w in waiters { w.resume() }
        waiters = []
    }
}
