#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A hash table from names (compared as UTF-8 bytes) to entry numbers: the
/// writer's duplicate check and the reader's lookup by name.
///
/// `Set<String>` and `[String: Int]` keep no hashes, so every occupied bucket
/// a probe passes costs a full string comparison, and archive names share long
/// prefixes (`photos/2024/…`). Here each slot holds a 24-bit tag of the hash,
/// the key number and where the key's bytes are in one arena, so a lookup
/// touches one slot and the bytes it compares, and compares only when the tags
/// agree. The hash is seeded per process, so names cannot be chosen to collide.
struct NameTable {
    private struct Slot {
        /// `0` is empty; otherwise the top 24 bits are a tag of the hash and the low 40 bits key number + 1.
        var tagAndKey: UInt64
        /// The key's start in `arena` (high 48 bits) and its length (low 16 bits).
        var span: UInt64
    }

    private var slots: [Slot]
    private var mask: Int
    /// Every key's UTF-8 bytes, back to back.
    private var arena: [UInt8] = []
    /// Per key: the value stored for it.
    private var values: [Int] = []

    private static let keyBits: UInt64 = 40
    private static let keyMask: UInt64 = (1 << keyBits) - 1

    /// Number of distinct names.
    var count: Int { values.count }

    /// An empty table sized for about `capacity` names.
    init(capacity: Int = 0) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Slot](repeating: Slot(tagAndKey: 0, span: 0), count: size)
        mask = size - 1
        values.reserveCapacity(capacity)
    }

    /// The value stored for `name`, if any.
    func value(for name: String) -> Int? {
        var name = name
        return name.withUTF8 { bytes in
            let h = NameHash.hash(UnsafeRawBufferPointer(bytes))
            guard let key = find(bytes, hash: h).key else { return nil }
            return values[key]
        }
    }

    /// Stores `value` for `name` when the name is new and returns nil; when it is
    /// already there, returns its value and, with `replace`, stores the new one.
    @discardableResult
    mutating func insert(_ name: String, value: Int, replace: Bool = false) -> Int? {
        var name = name
        return name.withUTF8 { bytes in
            let h = NameHash.hash(UnsafeRawBufferPointer(bytes))
            let (key, slot) = find(bytes, hash: h)
            if let key {
                let old = values[key]
                if replace { values[key] = value }
                return old
            }
            let number = UInt64(values.count)
            let span = UInt64(arena.count) << 16 | UInt64(bytes.count)
            arena.append(contentsOf: bytes)
            values.append(value)
            slots[slot] = Slot(tagAndKey: (h >> Self.keyBits) << Self.keyBits | (number + 1), span: span)
            if values.count * 2 > slots.count { grow() }
            return nil
        }
    }

    /// Removes `name` if it is the most recently inserted name (how a writer undoes a failed add).
    mutating func removeLast(_ name: String) {
        var name = name
        name.withUTF8 { bytes in
            let h = NameHash.hash(UnsafeRawBufferPointer(bytes))
            let (key, i) = find(bytes, hash: h)
            guard let key, key == values.count - 1 else { return }
            // Open addressing with linear probing: empty the slot, then re-place the rest of its cluster.
            slots[i].tagAndKey = 0
            var j = (i + 1) & mask
            while slots[j].tagAndKey != 0 {
                let moved = slots[j]
                slots[j].tagAndKey = 0
                place(moved)
                j = (j + 1) & mask
            }
            arena.removeLast(bytes.count)
            values.removeLast()
        }
    }

    /// Finds `bytes`: its key number when present, and the slot where it is or would go.
    private func find(_ bytes: UnsafeBufferPointer<UInt8>, hash h: UInt64) -> (key: Int?, slot: Int) {
        let tag = h >> Self.keyBits
        var i = Int(truncatingIfNeeded: h) & mask
        return arena.withUnsafeBufferPointer { arena in
            while true {
                let s = slots[i]
                if s.tagAndKey == 0 { return (nil, i) }
                if s.tagAndKey >> Self.keyBits == tag && Int(s.span & 0xFFFF) == bytes.count
                    && Self.equal(arena, at: Int(s.span >> 16), bytes)
                {
                    return (Int(s.tagAndKey & Self.keyMask) - 1, i)
                }
                i = (i + 1) & mask
            }
        }
    }

    @inline(__always)
    private static func equal(_ arena: UnsafeBufferPointer<UInt8>, at start: Int, _ bytes: UnsafeBufferPointer<UInt8>)
        -> Bool
    {
        guard let a = arena.baseAddress, let b = bytes.baseAddress else { return bytes.isEmpty }
        return memcmp(a + start, b, bytes.count) == 0
    }

    /// Puts an occupied slot where a probe for its key starts looking.
    private mutating func place(_ slot: Slot) {
        let start = Int(slot.span >> 16)
        let h = arena.withUnsafeBytes { raw in
            NameHash.hash(UnsafeRawBufferPointer(rebasing: raw[start..<(start + Int(slot.span & 0xFFFF))]))
        }
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i].tagAndKey != 0 { i = (i + 1) & mask }
        slots[i] = slot
    }

    private mutating func grow() {
        let old = slots
        slots = [Slot](repeating: Slot(tagAndKey: 0, span: 0), count: old.count * 2)
        mask = slots.count - 1
        for s in old where s.tagAndKey != 0 { place(s) }
    }
}

/// A fast seeded 64-bit hash of bytes (multiply-and-fold mixing, 8 bytes a step).
enum NameHash {
    /// One random seed per process.
    static let seed: UInt64 = {
        var g = SystemRandomNumberGenerator()
        return g.next() | 1
    }()

    @inline(__always)
    private static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let r = a.multipliedFullWidth(by: b)
        return r.high ^ r.low
    }

    /// The hash of `bytes`.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h = seed ^ (UInt64(bytes.count) &* 0x9E37_79B9_7F4A_7C15)
        let n = bytes.count
        var i = 0
        while i + 8 <= n {
            h = fold(h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self), 0xBF58_476D_1CE4_E5B9)
            i += 8
        }
        if i < n {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                tail |= UInt64(bytes[i]) << shift
                shift += 8
                i += 1
            }
            h = fold(h ^ tail, 0x94D0_49BB_1331_11EB)
        }
        return fold(h, 0x2545_F491_4F6C_DD1D)
    }
}
