@testable import DESServer
import Foundation
import Synchronization
import Testing

@Suite("Log throttle") struct LogThrottleTests {
    @Test("A burst passes, then a line a second's share; the next line let through counts those held back")
    func throttles() {
        let now = Mutex(100.0)
        let throttle = LogThrottle(perSecond: 2, burst: 3, clock: { now.withLock { $0 } })
        #expect((0..<3).map { _ in throttle.admit() } == [0, 0, 0])
        #expect((0..<5).map { _ in throttle.admit() } == [nil, nil, nil, nil, nil])
        now.withLock { $0 += 0.5 }  // one line's worth
        #expect(throttle.admit() == 5, "the line after a hold-back says how many were held")
        #expect(throttle.admit() == nil)
        now.withLock { $0 += 10 }  // refills to the burst, no more
        #expect((0..<4).map { _ in throttle.admit() } == [1, 0, 0, nil])
    }
}
