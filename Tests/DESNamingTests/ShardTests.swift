import DESNaming
import DESTestSupport
import Testing

/// consistent_hash and shard ownership (docs/architecture.md).
@Suite("Consistent hash and shards")
struct ShardTests {
    @Test(
        "The design's consistent_hash vectors",
        arguments: [("", 8, 227), ("test", 8, 159), ("test", 16, 40838), ("test", 4, 9), ("test_value", 8, 79)] as [(String, Int, UInt64)])
    func vectors(value: String, bits: Int, expected: UInt64) {
        #expect(consistentHash(value, bits: bits) == expected)
    }

    /// The top `bits` bits of a SHA-256 given as hex.
    static func topBits(_ hex: String, _ bits: Int) -> UInt64 {
        let top = UInt64(hex.prefix(16), radix: 16)!
        return bits == 64 ? top : top >> UInt64(64 - bits)
    }

    @Test("consistentHash is the top bits of SHA-256, read big-endian, for any input and width")
    func matchesReferenceSHA256() {
        var rng = SeededRNG(seed: 5)
        let samples = ["", "a", "test", "test_value", "日本語", "😀", "TEST_20250101_(21BCAA000100_88)", String(repeating: "x", count: 1000)]
            + (0..<200).map { "name-\($0)-\(rng.next())" }
        for value in samples {
            let hex = referenceSHA256Hex(Array(value.utf8))
            for bits in [1, 2, 3, 4, 7, 8, 12, 16, 20, 24, 31, 32, 48, 63, 64] {
                #expect(consistentHash(value, bits: bits) == Self.topBits(hex, bits), "\(value.prefix(20)) bits \(bits)")
            }
        }
    }

    @Test("ShardAssignment.shard is consistentHash of the name")
    func shardOfName() throws {
        let a = try ShardAssignment(shardBits: 16)
        #expect(a.shard(of: "test") == 40838)
        #expect(a.shardCount == 65536)
        let b = try ShardAssignment(shardBits: 8)
        #expect(b.shard(of: "TEST_20250101_(21BCAA000100_88)") == Int(consistentHash("TEST_20250101_(21BCAA000100_88)", bits: 8)))
    }

    @Test("Pod i of N owns exactly the shards s with s mod N == i; together the pods cover every shard once")
    func ownership() throws {
        for bits in [1, 2, 5, 8, 10] {
            for pods in [1, 2, 3, 4, 7, 16, 33] {
                let shardCount = 1 << bits
                var owners = [Int](repeating: 0, count: shardCount)
                for i in 0..<pods {
                    let a = try ShardAssignment(shardBits: bits, podIndex: i, podCount: pods)
                    #expect(a.shardCount == shardCount)
                    let owned = a.ownedShards
                    #expect(owned == (0..<shardCount).filter { $0 % pods == i })
                    #expect(owned == owned.sorted())
                    for s in 0..<shardCount {
                        #expect(a.owns(s) == (s % pods == i))
                        #expect(a.owner(of: s) == s % pods)
                    }
                    for s in owned { owners[s] += 1 }
                }
                #expect(owners.allSatisfy { $0 == 1 }, "bits \(bits), pods \(pods)")
            }
        }
    }

    @Test("Every name is owned by exactly one pod")
    func namesHaveOneOwner() throws {
        let pods = 5
        let assignments = try (0..<pods).map { try ShardAssignment(shardBits: 8, podIndex: $0, podCount: pods) }
        for i in 0..<500 {
            let name = "DES_20250101_(\(i))"
            let shard = assignments[0].shard(of: name)
            #expect(assignments.filter { $0.owns(shard) }.count == 1)
        }
    }

    @Test("Bad assignments are refused with invalidConfiguration")
    func badAssignments() {
        for (bits, index, count) in [(0, 0, 1), (25, 0, 1), (8, 0, 0), (8, -1, 2), (8, 2, 2), (8, 5, 3)] {
            let e = namingError { _ = try ShardAssignment(shardBits: bits, podIndex: index, podCount: count) }
            #expect(e?.code == .invalidConfiguration, "bits \(bits) pod \(index)/\(count)")
        }
    }
}
