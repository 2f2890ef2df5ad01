import CDESChecksum

/// CRC-32C (Castagnoli), the checksum of the archive seal: hardware instructions where
/// the processor has them, a table otherwise (the same values either way).
public enum CRC32C {
    /// Continues `crc` (0 to start) over `bytes`; the result is the finished CRC and chains.
    @inline(__always)
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return des_crc32c(crc, base, bytes.count)
    }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { update(0, $0) }
    }

    /// The same computed with the table only (tests compare it with the hardware path).
    public static func portableChecksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress, raw.count > 0 else { return 0 }
            return des_crc32c_portable(0, base, raw.count)
        }
    }
}
