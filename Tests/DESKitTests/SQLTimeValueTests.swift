import Foundation
import Testing

@testable import DESKit

@Suite("Time values as databases return them (the oldest-pending gauge)")
struct SQLTimeValueTests {
    @Test("The text forms of PostgreSQL, MariaDB, SQLite and ODBC read as the same instant; zones are applied")
    func forms() throws {
        let instant = Date(timeIntervalSince1970: 1_796_547_600.25).timeIntervalSince1970  // 2026-12-06 09:00:00.25 UTC
        for text in [
            "2026-12-06 09:00:00.25", "2026-12-06T09:00:00.250000", "2026-12-06 09:00:00.25+00", "2026-12-06 09:00:00.25Z",
            "2026-12-06 10:00:00.25+01", "2026-12-06 10:30:00.25+01:30", "2026-12-06 04:00:00.25 -0500",
        ] {
            let seconds = try #require(SQLTimeValue.parse(text), "\(text)")
            #expect(abs(seconds - instant) < 1e-6, "\(text): \(seconds)")
        }
        #expect(SQLTimeValue.parse("1970-01-01 00:00:00") == 0)
        #expect(SQLTimeValue.parse("2000-02-29 00:00:00") == 951_782_400)
        #expect(SQLTimeValue.seconds(.int(1_700_000_000), kind: .integer) == 1_700_000_000)
        #expect(SQLTimeValue.seconds(.text("1700000000.5"), kind: .float) == 1_700_000_000.5)
    }

    @Test("Anything else is not a time: no guess, no crash")
    func refusals() {
        for text in ["", "yesterday", "2026-13-01 00:00:00", "2026-12-06", "2026-12-06 25:00:00", "2026-12-06 09:00:00+", "2026-12-06 09:00:00Zx",
            "2026-12-06 09:00:00+01:3", "２０２６-12-06 09:00:00"]
        {
            #expect(SQLTimeValue.parse(text) == nil, "\(text)")
        }
        #expect(SQLTimeValue.seconds(.null, kind: .timestamp) == nil)
        #expect(SQLTimeValue.seconds(.blob([1, 2]), kind: .timestamp) == nil)
    }
}
