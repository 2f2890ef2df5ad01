import CDESCrypto

/// The top `bits` bits of SHA-256 of the UTF-8 of `value`, read big-endian (docs/architecture.md).
///
/// Vectors: `("", 8) = 227`, `("test", 8) = 159`, `("test", 16) = 40838`,
/// `("test", 4) = 9`, `("test_value", 8) = 79`. `bits` must be 1–64.
public func consistentHash(_ value: String, bits: Int) -> UInt64 {
    precondition((1...64).contains(bits), "consistentHash bits must be 1…64, got \(bits)")
    var text = value
    let top: UInt64 = text.withUTF8 { utf8 in
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digest in
            cdes_sha256(utf8.baseAddress, utf8.count, digest.baseAddress)
            var top: UInt64 = 0
            for i in 0..<8 { top = top << 8 | UInt64(digest[i]) }
            return top
        }
    }
    return bits == 64 ? top : top >> UInt64(64 - bits)
}
