import DESFormat
import Foundation

/// The names an uploaded container holds, as the metadata store records them: the first and
/// the last in byte order, and — when that range overlaps another container's of the same
/// (day, shard) — a Bloom filter of every name. A lookup then opens, in the common case, the
/// one container whose range (and filter) can hold the name, instead of every container of
/// its (day, shard). A container without a recorded range may hold anything.
public struct NameRange: Sendable, Hashable, Codable {
    /// The smallest name (UTF-8 byte order).
    public var first: String
    /// The largest name.
    public var last: String
    /// Every name, when the range overlaps another container's.
    public var filter: NameFilter?

    /// A range of `first…last` (byte order) with an optional filter.
    public init(first: String, last: String, filter: NameFilter? = nil) {
        self.first = first
        self.last = last
        self.filter = filter
    }

    /// The range of `names`; nil for none.
    public init?(names: some Sequence<String>) {
        var lowest: String?
        var highest: String?
        for name in names {
            if lowest.map({ DESNameRules.precedes(name, $0) }) ?? true { lowest = name }
            if highest.map({ DESNameRules.precedes($0, name) }) ?? true { highest = name }
        }
        guard let lowest, let highest else { return nil }
        self.init(first: lowest, last: highest)
    }


    /// Whether `name` lies within the range.
    public func covers(_ name: String) -> Bool { !DESNameRules.precedes(name, first) && !DESNameRules.precedes(last, name) }

    /// Whether the container may hold `name`: within the range and, with a filter, in it.
    public func mayHold(_ name: String) -> Bool { covers(name) && (filter?.mayContain(name) ?? true) }

    /// Whether the two ranges share any name.
    public func overlaps(_ other: NameRange) -> Bool { !DESNameRules.precedes(last, other.first) && !DESNameRules.precedes(other.last, first) }
}

/// A Bloom filter of names, about 1% false positives at 10 bits a name (7 hashes from a 64-bit
/// FNV-1a hash and its SplitMix64 mix). Encoded as `bloom1:HASHES:BASE64` for the metadata store.
public struct NameFilter: Sendable, Hashable, Codable {
    /// The filter's bits.
    public let bits: [UInt8]
    /// How many hash functions set and test a name.
    public let hashes: Int

    /// A filter holding `names`, `bitsPerName` bits each (at least 64 bits).
    public init(names: some Collection<String>, bitsPerName: Int = 10) {
        let count = max(64, names.count * max(1, bitsPerName))
        var bits = [UInt8](repeating: 0, count: (count + 7) / 8)
        let hashes = 7
        for name in names {
            for bit in Self.positions(of: name, hashes: hashes, bitCount: bits.count * 8) { bits[bit >> 3] |= 1 << UInt8(bit & 7) }
        }
        self.bits = bits
        self.hashes = hashes
    }

    private init(bits: [UInt8], hashes: Int) {
        self.bits = bits
        self.hashes = hashes
    }

    /// False only when `name` was certainly not added.
    public func mayContain(_ name: String) -> Bool {
        guard !bits.isEmpty else { return true }
        return Self.positions(of: name, hashes: hashes, bitCount: bits.count * 8).allSatisfy { bits[$0 >> 3] & (1 << UInt8($0 & 7)) != 0 }
    }

    /// `bloom1:HASHES:BASE64`.
    public var encoded: String { "bloom1:\(hashes):" + Data(bits).base64EncodedString() }

    /// Reads ``encoded``; nil for anything else (a filter it cannot read is no filter: the
    /// container is then opened for every name in its range).
    public init?(encoded text: String) {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "bloom1", let hashes = Int(parts[1]), (1...32).contains(hashes),
            let data = Data(base64Encoded: String(parts[2])), !data.isEmpty
        else { return nil }
        self.init(bits: [UInt8](data), hashes: hashes)
    }

    /// Decodes ``encoded``.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let filter = NameFilter(encoded: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a name filter"))
        }
        self = filter
    }

    /// Encodes as ``encoded``.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(encoded)
    }

    private static func positions(of name: String, hashes: Int, bitCount: Int) -> [Int] {
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 { h1 = (h1 ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        // The second hash: SplitMix64's finalizer of the first (odd, so it steps through every bit).
        var h2 = h1 &+ 0x9e37_79b9_7f4a_7c15
        h2 = (h2 ^ (h2 >> 30)) &* 0xbf58_476d_1ce4_e5b9
        h2 = (h2 ^ (h2 >> 27)) &* 0x94d0_49bb_1331_11eb
        h2 = (h2 ^ (h2 >> 31)) | 1
        let m = UInt64(bitCount)
        return (0..<hashes).map { Int((h1 &+ UInt64($0) &* h2) % m) }
    }
}
