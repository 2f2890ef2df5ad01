import DESKit
import Foundation
import Synchronization
import Testing

/// `pool_recycle` and `pool_pre_ping` over fake connections and a clock moved by hand.
@Suite("Connection pool: recycle and pre-ping")
struct PoolRecycleTests {
    final class Clock: Sendable {
        let now = Mutex(0.0)
        func advance(_ seconds: Double) { now.withLock { $0 += seconds } }
    }

    /// The connections a pool made, in order.
    final class Made: Sendable {
        let list = Mutex<[FakeConnection]>([])
        func withLock<T>(_ body: (inout [FakeConnection]) -> T) -> T { list.withLock { body(&$0) } }
    }

    /// A pool of one whose connections are numbered in the order they are made.
    static func pool(_ options: SQLConnectionPool.Options, made: Made) -> SQLConnectionPool {
        SQLConnectionPool(size: 1, options: options) {
            made.withLock { m -> FakeConnection in
                let c = FakeConnection(id: m.count)
                m.append(c)
                return c
            }
        }
    }

    static func id(_ pool: SQLConnectionPool) async throws -> Int {
        try await pool.withConnection { ($0 as? FakeConnection)?.id ?? -1 }
    }

    @Test("A connection older than pool_recycle is closed and replaced, whether idle or just returned")
    func recycle() async throws {
        let clock = Clock()
        let made = Made()
        let pool = Self.pool(.init(recycleSeconds: 60, clock: { clock.now.withLock { $0 } }), made: made)
        #expect(try await Self.id(pool) == 0)
        clock.advance(30)
        #expect(try await Self.id(pool) == 0)  // young enough: reused
        clock.advance(31)
        #expect(try await Self.id(pool) == 1)  // 61 s old while idle: replaced
        #expect(made.withLock { $0[0].closes.withLock { $0 } } == 1)
        // Aging while in use: not returned to idle.
        try await pool.withConnection { _ in clock.advance(61) }
        #expect(made.withLock { $0[1].closes.withLock { $0 } } == 1)
        #expect(try await Self.id(pool) == 2)
        #expect(pool.stats.open == 1)
    }

    @Test("Without pool_recycle a connection lives on")
    func noRecycle() async throws {
        let clock = Clock()
        let made = Made()
        let pool = Self.pool(.init(clock: { clock.now.withLock { $0 } }), made: made)
        #expect(try await Self.id(pool) == 0)
        clock.advance(1e6)
        #expect(try await Self.id(pool) == 0)
    }

    @Test("pool_pre_ping tests an idle connection before handing it out and replaces one that fails")
    func prePing() async throws {
        let pings = Mutex(0)
        let dead = Mutex<Set<Int>>([])
        let made = Made()
        let options = SQLConnectionPool.Options(prePing: { conn in
            pings.withLock { $0 += 1 }
            let id = (conn as? FakeConnection)?.id ?? -1
            if dead.withLock({ $0.contains(id) }) { throw SQLError(code: "08006", message: "server closed the connection") }
        })
        let pool = Self.pool(options, made: made)
        #expect(try await Self.id(pool) == 0)
        #expect(pings.withLock { $0 } == 0)  // a new connection is not pinged
        #expect(try await Self.id(pool) == 0)
        #expect(pings.withLock { $0 } == 1)
        dead.withLock { _ = $0.insert(0) }  // the server dropped it while idle
        #expect(try await Self.id(pool) == 1)
        #expect(made.withLock { $0[0].closes.withLock { $0 } } == 1)
        #expect(pool.stats.open == 1)
    }
}
