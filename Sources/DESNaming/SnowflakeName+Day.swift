extension SnowflakeName {
    /// The day of a DES name as `YYYY-MM-DD` (as storage keys use it), or nil when `text` is not
    /// a DES name: what `try? SnowflakeName(parsing: text, verifyChecksum: false)` and then
    /// ``isoDay`` answer, from the same checks, without building the name (the packer asks this
    /// of every file it places).
    public static func isoDay(ofName text: String) -> String? {
        var text = text
        return text.withUTF8 { b -> String? in
            guard case .success(let shape) = Self.shape(of: b) else { return nil }
            let p = shape.prefixEnd
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

    /// A name's bytes that have a DES name's shape: where its prefix ends, and its value and
    /// checksum as written.
    struct Shape {
        var prefixEnd: Int
        var value: UInt64
        var checksum: UInt64

        /// The day, `YYYYMMDD`, of the bytes `b` this shape was found in.
        func day(_ b: UnsafeBufferPointer<UInt8>) -> String {
            String(decoding: b[(prefixEnd + 1)..<(prefixEnd + 9)], as: UTF8.self)
        }
    }

    /// The first thing wrong with a name's bytes, in the order parsing checks them.
    enum ShapeFlaw: Error {
        case tooLong, form, prefix, dayDigits, calendar(String), hex
    }

    /// Checks the bytes of a name: `PREFIX_YYYYMMDD_(FFFFFFFFFFFF_CC)`, the prefix ASCII letters
    /// and digits, the day a calendar day, F and CC uppercase hex (the checksum is not checked).
    static func shape(of b: UnsafeBufferPointer<UInt8>) -> Result<Shape, ShapeFlaw> {
        // Shape from the end: "_YYYYMMDD_(" + 12 hex + "_" + 2 hex + ")" = 27 bytes after the prefix.
        if b.count > maxLength { return .failure(.tooLong) }
        guard b.count > tailLength, b[b.count - 1] == UInt8(ascii: ")") else { return .failure(.form) }
        let p = b.count - tailLength
        guard b[p] == UInt8(ascii: "_"), b[p + 9] == UInt8(ascii: "_"), b[p + 10] == UInt8(ascii: "("),
            b[p + 23] == UInt8(ascii: "_")
        else { return .failure(.form) }
        guard b[..<p].allSatisfy(isAlnum) else { return .failure(.prefix) }
        var number = 0
        for i in (p + 1)..<(p + 9) {
            guard b[i] >= 0x30 && b[i] <= 0x39 else { return .failure(.dayDigits) }
            number = number * 10 + Int(b[i] - 0x30)
        }
        let (year, month, dom) = (number / 10_000, number / 100 % 100, number % 100)
        guard (1...12).contains(month), (1...daysInMonth(year: year, month: month)).contains(dom) else {
            return .failure(.calendar(String(decoding: b[(p + 1)..<(p + 9)], as: UTF8.self)))
        }
        guard let value = parseHex(b[(p + 11)..<(p + 23)]), let checksum = parseHex(b[(p + 24)..<(p + 26)]) else {
            return .failure(.hex)
        }
        return .success(Shape(prefixEnd: p, value: value, checksum: checksum))
    }
}
