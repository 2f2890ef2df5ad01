/// A parsed DES name: `{PREFIX}_{YYYYMMDD}_({F as 12 hex}_{CC as 2 hex})`.
///
/// F is the 48-bit Snowflake value `((epoch_ms mod 2^wrap_bits) << 16) | (node << 8) | seq`
/// and CC the sum of F's six big-endian bytes mod 256.
public struct SnowflakeName: Sendable, Hashable, CustomStringConvertible {
    /// The prefix (ASCII letters and digits).
    public var prefix: String
    /// The UTC day, as `YYYYMMDD`.
    public var day: String
    /// The 48-bit Snowflake value.
    public var value: UInt64
    /// The checksum as written in the name.
    public var checksum: UInt8

    /// The node id (bits 8–15 of F).
    public var node: UInt8 { UInt8(truncatingIfNeeded: value >> 8) }
    /// The sequence number within the millisecond (bits 0–7 of F).
    public var sequence: UInt8 { UInt8(truncatingIfNeeded: value) }
    /// The (wrapped) milliseconds (bits 16–47 of F).
    public var wrappedMilliseconds: UInt64 { value >> 16 }
    /// The day as `YYYY-MM-DD`, as used in storage keys.
    public var isoDay: String {
        // On the UTF-8 bytes: the packer asks this of every file it places.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(10)
        for (i, b) in day.utf8.enumerated() {
            if i == 4 || i == 6 { bytes.append(UInt8(ascii: "-")) }
            bytes.append(b)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
    /// Whether the written checksum matches F.
    public var checksumIsValid: Bool { checksum == Self.checksum(of: value) }

    /// The longest prefix a name may have: the marker's `name_prefix`, the generator and the
    /// parser (and so `GET /files`) share this one limit.
    public static let maxPrefixLength = 64
    /// The bytes of a name after its prefix: `_YYYYMMDD_(` + 12 hex + `_` + 2 hex + `)`.
    static let tailLength = 27
    /// The longest name: ``maxPrefixLength`` plus the fixed tail.
    public static let maxLength = maxPrefixLength + tailLength

    /// Whether `prefix` is a valid name prefix: 1…``maxPrefixLength`` ASCII letters and digits.
    public static func isValidPrefix(_ prefix: String) -> Bool {
        !prefix.isEmpty && prefix.utf8.count <= maxPrefixLength && prefix.utf8.allSatisfy(isAlnum)
    }

    /// The name's text.
    public var description: String {
        "\(prefix)_\(day)_(\(hex(value, digits: 12))_\(hex(UInt64(checksum), digits: 2)))"
    }

    /// Creates a name from its parts; the checksum is computed.
    public init(prefix: String, day: String, value: UInt64) {
        self.prefix = prefix
        self.day = day
        self.value = value & 0xFFFF_FFFF_FFFF
        self.checksum = Self.checksum(of: self.value)
    }

    /// The checksum of a Snowflake value: the sum of its six big-endian bytes mod 256.
    public static func checksum(of value: UInt64) -> UInt8 {
        var sum: UInt64 = 0
        for shift in stride(from: 40, through: 0, by: -8) { sum += (value >> UInt64(shift)) & 0xFF }
        return UInt8(sum & 0xFF)
    }

    /// Parses a name. Throws ``NamingError`` saying which part is wrong; a wrong
    /// checksum is an error unless `verifyChecksum` is false.
    public init(parsing text: String, verifyChecksum: Bool = true) throws(NamingError) {
        var utf8 = text
        let parts: Result<(prefix: String, day: String, value: UInt64, checksum: UInt64), NamingError> = utf8.withUTF8 { b in
            switch Self.shape(of: b) {
            case .success(let s):
                return .success((String(decoding: b[..<s.prefixEnd], as: UTF8.self), s.day(b), s.value, s.checksum))
            case .failure(let flaw):
                return .failure(Self.error(flaw, text: text, bytes: b))
            }
        }
        let (prefix, day, f, cc) = try parts.get()
        self.prefix = prefix
        self.day = day
        self.value = f
        self.checksum = UInt8(cc)
        if verifyChecksum && !checksumIsValid {
            throw NamingError(
                .badChecksum,
                "'\(text)': checksum \(hex(cc, digits: 2)) does not match the value (expected \(hex(UInt64(Self.checksum(of: f)), digits: 2)))"
            )
        }
    }

    /// What is wrong with a name's bytes, as ``init(parsing:verifyChecksum:)`` says it.
    private static func error(_ flaw: ShapeFlaw, text: String, bytes: UnsafeBufferPointer<UInt8>) -> NamingError {
        switch flaw {
        case .tooLong:
            return NamingError(
                .malformedName, "a DES name is at most \(maxLength) bytes (a prefix of at most \(maxPrefixLength)); this one is \(bytes.count)")
        case .form: return NamingError(.malformedName, "'\(text)' is not a DES name (expected PREFIX_YYYYMMDD_(FFFFFFFFFFFF_CC))")
        case .prefix: return NamingError(.malformedName, "'\(text)': prefix must be ASCII letters and digits")
        case .dayDigits: return NamingError(.malformedName, "'\(text)': day must be 8 digits YYYYMMDD")
        case .calendar(let day): return NamingError(.malformedName, "'\(text)': day \(day) is not a calendar day")
        case .hex: return NamingError(.malformedName, "'\(text)': Snowflake value and checksum must be uppercase hex")
        }
    }
}

/// Days in a month of the proleptic Gregorian calendar.
func daysInMonth(year: Int, month: Int) -> Int {
    switch month {
    case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
}

@inline(__always)
func isAlnum(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
}

func parseHex(_ bytes: some Collection<UInt8>) -> UInt64? {
    var v: UInt64 = 0
    for b in bytes {
        let d: UInt8
        switch b {
        case 0x30...0x39: d = b - 0x30
        case 0x41...0x46: d = b - 0x41 + 10
        default: return nil
        }
        v = v << 4 | UInt64(d)
    }
    return v
}

/// Uppercase hex, zero-padded to `digits`.
func hex(_ v: UInt64, digits: Int) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return s.count >= digits ? s : String(repeating: "0", count: digits - s.count) + s
}

/// An error from naming: a malformed name, a bad checksum, or a bad setting.
public struct NamingError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The kind of failure.
    public enum Code: String, Sendable { case malformedName, badChecksum, invalidConfiguration }
    /// The kind of failure.
    public var code: Code
    /// What is wrong.
    public var message: String
    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}
