import DESNaming
import Foundation
import Synchronization
import Testing

/// The Snowflake generator (docs/architecture.md).
@Suite("Snowflake generator")
struct SnowflakeGeneratorTests {
    static let t: UInt64 = 1_735_732_800_000  // 2025-01-01T12:00:00Z

    static func generator(node: Int = 1, wrapBits: Int = 32, prefix: String = "TEST", clock: ScriptedClock) throws
        -> SnowflakeGenerator
    {
        try SnowflakeGenerator(configuration: .init(prefix: prefix, node: node, wrapBits: wrapBits), clock: clock.clock)
    }

    @Test("The design's vector: TEST_20250101_(21BCAA000100_88), then …101_89")
    func vector() throws {
        let clock = ScriptedClock(fixed: Self.t)
        let g = try Self.generator(clock: clock)
        let first = g.next()
        #expect(first.description == "TEST_20250101_(21BCAA000100_88)")
        #expect(first.value == 0x21BC_AA00_0100)
        #expect(first.node == 1)
        #expect(first.sequence == 0)
        #expect(first.checksum == 0x88)
        let second = g.next()
        #expect(second.description == "TEST_20250101_(21BCAA000101_89)")
        #expect(second.sequence == 1)
        #expect(clock.callCount == 2)
    }

    @Test("The 257th name of one millisecond waits for the clock to reach the next one")
    func sequenceOverflowWaitsForTheClock() throws {
        // The clock stays at t for the first 300 reads: the generator must keep asking, not invent t+1.
        let clock = ScriptedClock { $0 < 300 ? Self.t : Self.t + 1 }
        let g = try Self.generator(clock: clock)
        let names = g.next(count: 257)
        for (i, name) in names.prefix(256).enumerated() {
            #expect(name.value == snowflakeValue(ms: Self.t, node: 1, seq: UInt64(i)))
        }
        #expect(names[256].value == snowflakeValue(ms: Self.t + 1, node: 1, seq: 0))
        #expect(names[256].description == "TEST_20250101_(21BCAA010100_89)")
        // 256 reads gave names; reads 256…299 returned t (full); read 300 returned t+1.
        #expect(clock.callCount == 301)
        #expect(Set(names).count == 257)
    }

    @Test("Overflow moves on as soon as the clock does")
    func sequenceOverflowAdvancesPromptly() throws {
        // The clock advances only when it is read a second time after the millisecond filled up.
        let clock = ScriptedClock { $0 <= 256 ? Self.t : Self.t + 1 }
        let g = try Self.generator(clock: clock)
        let names = g.next(count: 258)
        #expect(names[255].value == snowflakeValue(ms: Self.t, node: 1, seq: 255))
        #expect(names[256].value == snowflakeValue(ms: Self.t + 1, node: 1, seq: 0))
        #expect(names[257].value == snowflakeValue(ms: Self.t + 1, node: 1, seq: 1))
        #expect(clock.callCount == 259)
    }

    @Test("A clock that steps back keeps the last millisecond; names keep increasing")
    func clockStepsBack() throws {
        let script: [UInt64] = [Self.t, Self.t, Self.t - 5, Self.t - 5, Self.t - 86_400_000, Self.t + 2, Self.t + 1, Self.t + 3]
        let clock = ScriptedClock { script[min($0, script.count - 1)] }
        let g = try Self.generator(clock: clock)
        let names = g.next(count: 9)
        let expected: [(UInt64, UInt64)] = [
            (Self.t, 0), (Self.t, 1), (Self.t, 2), (Self.t, 3), (Self.t, 4), (Self.t + 2, 0), (Self.t + 2, 1), (Self.t + 3, 0),
            (Self.t + 3, 1),
        ]
        for (name, (ms, seq)) in zip(names, expected) {
            #expect(name.value == snowflakeValue(ms: ms, node: 1, seq: seq), "\(name)")
        }
        // The day comes from the kept millisecond, not the stepped-back clock (which read the day before).
        #expect(names.allSatisfy { $0.day == "20250101" })
        for (a, b) in zip(names, names.dropFirst()) { #expect(a.value < b.value) }
    }

    @Test("A clock stuck behind after the millisecond filled up still gives unique, increasing names")
    func clockBehindAndFull() throws {
        let clock = ScriptedClock { $0 == 0 ? Self.t : Self.t - 5 }
        let g = try Self.generator(clock: clock)
        let names = g.next(count: 700)
        for (a, b) in zip(names, names.dropFirst()) { #expect(a.value < b.value) }
        #expect(Set(names.map(\.description)).count == 700)
        #expect(names[256].value == snowflakeValue(ms: Self.t + 1, node: 1, seq: 0))
        #expect(names[699].value == snowflakeValue(ms: Self.t + 2, node: 1, seq: 699 - 512))
        #expect(clock.callCount == 700)  // it never had to wait
    }

    @Test("Wrap bits keep only the low bits of the milliseconds")
    func wrapBits() throws {
        for bits in [1, 8, 16, 31, 32] {
            let g = try Self.generator(node: 7, wrapBits: bits, clock: ScriptedClock(fixed: Self.t))
            let name = g.next()
            #expect(name.value == snowflakeValue(ms: Self.t, node: 7, seq: 0, wrapBits: UInt64(bits)), "wrap \(bits)")
            #expect(name.day == "20250101")  // the day is from the full time
            #expect(name.checksumIsValid)
        }
    }

    @Test("Bad configurations are refused with invalidConfiguration")
    func badConfiguration() {
        let bad: [SnowflakeGenerator.Configuration] = [
            .init(prefix: "", node: 0), .init(prefix: "TE-ST"), .init(prefix: "TÉST"), .init(prefix: "A B"),
            .init(prefix: "A_B"), .init(node: -1), .init(node: 256), .init(wrapBits: 0), .init(wrapBits: 33),
        ]
        for config in bad {
            let e = namingError { _ = try SnowflakeGenerator(configuration: config, clock: { 0 }) }
            #expect(e?.code == .invalidConfiguration, "\(config)")
            #expect(e?.message.isEmpty == false)
        }
        #expect(throws: Never.self) { _ = try SnowflakeGenerator(configuration: .init(prefix: "Ab9", node: 255, wrapBits: 1)) }
    }

    @Test("50,000 names from one shared generator on many threads are all different")
    func concurrentThreads() throws {
        let g = try SnowflakeGenerator.shared(configuration: .init(prefix: "CONC", node: 201))
        let threads = 10, perThread = 5_000
        let results = Mutex<[[SnowflakeName]]>(Array(repeating: [], count: threads))
        DispatchQueue.concurrentPerform(iterations: threads) { i in
            var mine: [SnowflakeName] = []
            mine.reserveCapacity(perThread)
            for _ in 0..<perThread { mine.append(g.next()) }
            results.withLock { $0[i] = mine }
        }
        let all = results.withLock { $0 }
        let names = all.flatMap { $0 }
        #expect(names.count == threads * perThread)
        #expect(Set(names.map(\.description)).count == names.count)
        #expect(names.allSatisfy { $0.node == 201 && $0.checksumIsValid })
        // Each thread sees its own names in increasing order.
        for list in all {
            #expect(zip(list, list.dropFirst()).allSatisfy { $0.value < $1.value })
        }
    }

    @Test("Generators sharing a node id share one sequence: tasks on two instances never collide")
    func concurrentTasksTwoInstances() async throws {
        let a = try SnowflakeGenerator(configuration: .init(prefix: "TWO", node: 202))
        let b = try SnowflakeGenerator.shared(configuration: .init(prefix: "TWO", node: 202))
        let names = await withTaskGroup(of: [String].self) { group in
            for i in 0..<8 {
                let g = i % 2 == 0 ? a : b
                group.addTask { (0..<2_500).map { _ in g.next().description } }
            }
            var all: [String] = []
            for await part in group { all += part }
            return all
        }
        #expect(names.count == 20_000)
        #expect(Set(names).count == 20_000)
    }

    @Test("Concurrent use with a scripted clock: every name unique, the sequence never skips")
    func concurrentScriptedClock() throws {
        // The clock advances one millisecond every 100 reads.
        let clock = ScriptedClock { Self.t + UInt64($0 / 100) }
        let g = try Self.generator(node: 3, clock: clock)
        let collected = Mutex<[UInt64]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let mine = (0..<2_000).map { _ in g.next().value }
            collected.withLock { $0 += mine }
        }
        let values = collected.withLock { $0 }.sorted()
        #expect(values.count == 16_000)
        #expect(Set(values).count == 16_000)
        // Within each millisecond the sequence numbers used are 0, 1, 2, … with no gaps.
        var perMs: [UInt64: [UInt64]] = [:]
        for v in values { perMs[v >> 16, default: []].append(v & 0xFF) }
        for (_, seqs) in perMs { #expect(seqs == Array(0..<UInt64(seqs.count))) }
    }
}
