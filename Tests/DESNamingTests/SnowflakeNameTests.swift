import DESNaming
import Foundation
import DESTestSupport
import Testing

/// Parsing DES names and the UTC day in them.
@Suite("Snowflake names")
struct SnowflakeNameTests {
    static let vector = "TEST_20250101_(21BCAA000100_88)"

    @Test("The vector parses into its parts")
    func parseVector() throws {
        let n = try SnowflakeName(parsing: Self.vector)
        #expect(n.prefix == "TEST")
        #expect(n.day == "20250101")
        #expect(n.isoDay == "2025-01-01")
        #expect(n.value == 0x21BC_AA00_0100)
        #expect(n.node == 1)
        #expect(n.sequence == 0)
        #expect(n.wrappedMilliseconds == 1_735_732_800_000 % (1 << 32))
        #expect(n.checksum == 0x88)
        #expect(n.checksumIsValid)
        #expect(n.description == Self.vector)
        #expect(n == SnowflakeName(prefix: "TEST", day: "20250101", value: 0x21BC_AA00_0100))
    }

    @Test("The checksum is the sum of F's six big-endian bytes mod 256")
    func checksum() {
        #expect(SnowflakeName.checksum(of: 0x21BC_AA00_0100) == 0x88)
        #expect(SnowflakeName.checksum(of: 0x21BC_AA00_0101) == 0x89)
        #expect(SnowflakeName.checksum(of: 0) == 0)
        #expect(SnowflakeName.checksum(of: 0xFFFF_FFFF_FFFF) == UInt8((6 * 255) % 256))
        #expect(SnowflakeName.checksum(of: 0x0100_0000_00FF) == 0x00)  // 1 + 255 wraps
    }

    @Test("Generated names parse back to the same parts")
    func roundTrip() throws {
        var rng = SeededRNG(seed: 99)
        for _ in 0..<2_000 {
            let ms = UInt64.random(in: 0...4_102_444_800_000, using: &rng)
            let node = Int.random(in: 0...255, using: &rng)
            let wrap = Int.random(in: 1...32, using: &rng)
            let prefix = ["A", "DES", "img2024", "Zz9"].randomElement(using: &rng)!
            let g = try SnowflakeGenerator(configuration: .init(prefix: prefix, node: node, wrapBits: wrap), clock: { ms })
            for name in g.next(count: 3) {
                let text = name.description
                #expect(text.utf8.count == prefix.utf8.count + 27)
                let back = try SnowflakeName(parsing: text)
                #expect(back == name)
                #expect(back.description == text)
                #expect(Int(back.node) == node)
                #expect(back.day == utcDay(milliseconds: ms))
            }
        }
    }

    @Test("A wrong checksum is badChecksum, unless checking is turned off")
    func badChecksum() throws {
        let text = "TEST_20250101_(21BCAA000100_89)"
        let e = namingError { _ = try SnowflakeName(parsing: text) }
        #expect(e?.code == .badChecksum)
        #expect(e?.message.contains("89") == true)
        #expect(e?.message.contains("88") == true)  // says what it should have been
        let lenient = try SnowflakeName(parsing: text, verifyChecksum: false)
        #expect(!lenient.checksumIsValid)
        #expect(lenient.checksum == 0x89)
        #expect(lenient.description == text)
    }

    @Test(
        "Malformed names are malformedName",
        arguments: [
            "", "TEST", "TEST_20250101", "_20250101_(21BCAA000100_88)", "TEST_20250101_(21BCAA000100_88", "TEST_20250101_(21bcaa000100_88)",
            "TEST_20250101_(21BCAA000100_8g)", "TEST_2025010_(21BCAA000100_88)", "TEST_202501011_(21BCAA00010_88)",
            "TE-ST_20250101_(21BCAA000100_88)", "TÉST_20250101_(21BCAA000100_88)", "TEST-20250101_(21BCAA000100_88)",
            "TEST_20250101-(21BCAA000100_88)", "TEST_20250101_[21BCAA000100_88)", "TEST_20250101_(21BCAA000100-88)",
            "TEST_2025A101_(21BCAA000100_88)", "TEST_20251301_(21BCAA000100_88)", "TEST_20250100_(21BCAA000100_88)",
            "TEST_20250132_(21BCAA000100_88)", "TEST_20250101_(21BCAA000100_88) ", " TEST_20250101_(21BCAA000100_88)",
            "TEST_20250101_(+1BCAA000100_88)",
        ])
    func malformed(text: String) {
        let e = namingError { _ = try SnowflakeName(parsing: text, verifyChecksum: false) }
        #expect(e?.code == .malformedName)
        #expect(e?.message.isEmpty == false)
    }

    @Test(
        "utcDay gives the UTC calendar day",
        arguments: [
            (0, "19700101"), (86_399_999, "19700101"), (86_400_000, "19700102"),
            (951_782_400_000, "20000229"), (1_709_164_800_000, "20240229"), (1_709_251_199_999, "20240229"),
            (1_709_251_200_000, "20240301"), (1_735_689_599_999, "20241231"), (1_735_689_600_000, "20250101"),
            (1_735_732_800_000, "20250101"), (4_107_542_399_999, "21000228"), (4_107_542_400_000, "21000301"),
        ] as [(UInt64, String)])
    func utcDays(ms: UInt64, day: String) {
        #expect(utcDay(milliseconds: ms) == day)
    }

    @Test("utcDay agrees with Foundation's Gregorian calendar in UTC")
    func utcDayAgainstFoundation() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        var rng = SeededRNG(seed: 2024)
        for _ in 0..<3_000 {
            let ms = UInt64.random(in: 0...(300 * 365 * 86_400_000), using: &rng)
            let date = Date(timeIntervalSince1970: Double(ms / 1000))
            let c = calendar.dateComponents([.year, .month, .day], from: date)
            let expected = String(format: "%04d%02d%02d", c.year!, c.month!, c.day!)
            #expect(utcDay(milliseconds: ms) == expected, "ms \(ms)")
        }
    }
}

@Test("parsing rejects days that are not on the calendar")
func impossibleDays() throws {
    for bad in ["20250231", "20250431", "20230229", "20251301"] {
        #expect(throws: NamingError.self) { try SnowflakeName(parsing: "T_\(bad)_(21BCAA000100_88)", verifyChecksum: false) }
    }
    #expect(try SnowflakeName(parsing: "T_20240229_(21BCAA000100_88)").isoDay == "2024-02-29")
}

@Test("One prefix limit: a 64-character prefix is made, parsed and fits the longest name; 65 is refused by all")
func prefixLimit() throws {
    let longest = String(repeating: "P", count: SnowflakeName.maxPrefixLength)
    let g = try SnowflakeGenerator(configuration: .init(prefix: longest, node: 1), clock: { 1_735_732_800_000 })
    let name = g.next().description
    #expect(name.utf8.count == SnowflakeName.maxLength)
    #expect(try SnowflakeName(parsing: name).prefix == longest)
    let tooLong = longest + "P"
    #expect(throws: NamingError.self) { try SnowflakeGenerator(configuration: .init(prefix: tooLong, node: 1)) }
    #expect(throws: NamingError.self) { try SnowflakeName(parsing: tooLong + "_20250101_(21BCAA000100_88)") }
    #expect(!SnowflakeName.isValidPrefix(tooLong) && SnowflakeName.isValidPrefix(longest))
}

@Test("The day of a name, read byte by byte, is the parsed name's day; anything parsing refuses has none")
func dayOfNameAgreesWithParsing() {
    func parsedDay(_ text: String) -> String? { (try? SnowflakeName(parsing: text, verifyChecksum: false))?.isoDay }
    var texts = [
        SnowflakeNameTests.vector, "A_20240229_(000000000000_00)", "A_20230229_(000000000000_00)", "A_20241301_(000000000000_00)",
        "A_20240100_(000000000000_00)", "A_20241231_(FFFFFFFFFFFF_FF)", "A_20241231_(FFFFFFFFFFFF_ff)", "_20240101_(000000000000_00)",
        "", ")", String(repeating: "P", count: SnowflakeName.maxPrefixLength) + "_20240101_(000000000000_00)",
        String(repeating: "P", count: SnowflakeName.maxPrefixLength + 1) + "_20240101_(000000000000_00)", "Ä_20240101_(000000000000_00)",
    ]
    // Every byte of the vector replaced by each of a set of bytes (digits, hex, the separators, others).
    let vector = Array(SnowflakeNameTests.vector.utf8)
    for i in vector.indices {
        for c in "09AFGaf_()-Z ".utf8 where c != vector[i] {
            var mutated = vector
            mutated[i] = c
            texts.append(String(decoding: mutated, as: UTF8.self))
        }
    }
    var agreed = 0
    for text in texts {
        #expect(SnowflakeName.isoDay(ofName: text) == parsedDay(text), "\(text)")
        if parsedDay(text) != nil { agreed += 1 }
    }
    #expect(SnowflakeName.isoDay(ofName: SnowflakeNameTests.vector) == "2025-01-01")
    #expect(agreed > 20)  // the mutations include names that still parse (another digit, another prefix letter)
}
