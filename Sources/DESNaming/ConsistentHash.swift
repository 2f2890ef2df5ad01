import CDESCrypto

/// The top `bits` bits of SHA-256 of the UTF-8 of `value`, read big-endian (docs/architecture.md).
///
/// Vectors: `("", 8) = 227`, `("test", 8) = 159`, `("test", 16) = 40838`,
/// `("test", 4) = 9`, `("test_value", 8) = 79`. `bits` must be 1–64.
public func consistentHash(_ value: String, bits: Int) -> UInt64 {
    precondition((1...64).contains(bits), "consistentHash bits must be 1…64, got \(bits)")
    var digest = [UInt8](repeating: 0, count: 32)
    var utf8 = value.utf8.map { $0 }
    _ = utf8.withUnsafeMutableBufferPointer { input in
        digest.withUnsafeMutableBufferPointer { out in
            SHA256(input.baseAddress, input.count, out.baseAddress)
        }
    }
    var top: UInt64 = 0
    for i in 0..<8 { top = top << 8 | UInt64(digest[i]) }
    return top >> UInt64(64 - bits)
}
