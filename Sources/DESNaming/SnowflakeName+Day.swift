extension SnowflakeName {
    /// The day of a DES name as `YYYY-MM-DD` (as storage keys use it), or nil when `text` is not
    /// a DES name: what `try? SnowflakeName(parsing: text, verifyChecksum: false)` and then
    /// ``isoDay`` answer, checked byte by byte without building the name (the packer asks this of
    /// every file it places).
    public static func isoDay(ofName text: String) -> String? {
        var text = text
        return text.withUTF8 { b -> String? in
            guard b.count > tailLength, b.count <= maxLength, b[b.count - 1] == UInt8(ascii: ")") else { return nil }
            let p = b.count - tailLength
            guard b[p] == UInt8(ascii: "_"), b[p + 9] == UInt8(ascii: "_"), b[p + 10] == UInt8(ascii: "("),
                b[p + 23] == UInt8(ascii: "_")
            else { return nil }
            for i in 0..<p where !isAlnum(b[i]) { return nil }
            var number = 0
            for i in (p + 1)..<(p + 9) {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                number = number * 10 + Int(b[i] - 0x30)
            }
            let (year, month, dom) = (number / 10_000, number / 100 % 100, number % 100)
            guard (1...12).contains(month), (1...daysInMonth(year: year, month: month)).contains(dom) else { return nil }
            for i in (p + 11)..<(p + 26) where i != p + 23 {
                guard (b[i] >= 0x30 && b[i] <= 0x39) || (b[i] >= 0x41 && b[i] <= 0x46) else { return nil }
            }
            return String(unsafeUninitializedCapacity: 10) { out in
                for i in 0..<4 { out[i] = b[p + 1 + i] }
                out[4] = UInt8(ascii: "-")
                out[5] = b[p + 5]
                out[6] = b[p + 6]
                out[7] = UInt8(ascii: "-")
                out[8] = b[p + 7]
                out[9] = b[p + 8]
                return 10
            }
        }
    }
}
