/// Which shard a name belongs to, and which pod owns which shards (docs/architecture.md).
///
/// A file's shard is `consistentHash(desName, shardBits)`; pod `i` of `N` owns
/// the shards `s` with `s mod N == i`.
public struct ShardAssignment: Sendable, Hashable {
    /// Bits of the shard number (shards are `0 ..< 2^shardBits`).
    public var shardBits: Int
    /// This pod's index, `0 ..< podCount`.
    public var podIndex: Int
    /// Number of pods sharing the shards.
    public var podCount: Int

    /// The shard bits a packer works with: 2 to 65,536 shards. Beyond that every (day, shard)
    /// container holds a handful of files, and each claim names every shard it covers.
    public static let shardBitsRange: ClosedRange<Int> = 1...16

    /// Creates an assignment, checking its numbers.
    public init(shardBits: Int, podIndex: Int = 0, podCount: Int = 1) throws(NamingError) {
        guard Self.shardBitsRange.contains(shardBits) else {
            throw NamingError(
                .invalidConfiguration,
                "shard bits \(shardBits) is outside \(Self.shardBitsRange.lowerBound)…\(Self.shardBitsRange.upperBound)")
        }
        guard podCount >= 1 else { throw NamingError(.invalidConfiguration, "pod count \(podCount) must be at least 1") }
        guard (0..<podCount).contains(podIndex) else {
            throw NamingError(.invalidConfiguration, "pod index \(podIndex) is outside 0…\(podCount - 1)")
        }
        self.shardBits = shardBits
        self.podIndex = podIndex
        self.podCount = podCount
    }

    /// Number of shards, `2^shardBits`.
    public var shardCount: Int { 1 << shardBits }

    /// The shard of a DES name.
    public func shard(of name: String) -> Int { Int(consistentHash(name, bits: shardBits)) }

    /// The pod that owns `shard`.
    public func owner(of shard: Int) -> Int { shard % podCount }

    /// Whether this pod owns `shard`.
    public func owns(_ shard: Int) -> Bool { owner(of: shard) == podIndex }

    /// The shards this pod owns, ascending.
    public var ownedShards: [Int] { Array(stride(from: podIndex, to: shardCount, by: podCount)) }

    /// How many shards this pod owns (without listing them).
    public var ownedShardCount: Int { shardCount > podIndex ? (shardCount - podIndex + podCount - 1) / podCount : 0 }
}
