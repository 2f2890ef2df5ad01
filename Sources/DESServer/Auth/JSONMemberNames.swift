/// The member names of a JSON object, as a JWT's header and claims need them checked: RFC 7515
/// §4 and RFC 7519 §4 require names to be unique, and a parser that silently keeps one of two
/// (`JSONDecoder` keeps the first) could read a different token than the issuer meant. A token
/// whose header or claims name a member twice is refused.
enum JSONMemberNames {
    /// The first name the top-level object of `bytes` has twice (escapes decoded, so `"exp"`
    /// and `"\u0065xp"` are the same name), or nil: none repeats, or `bytes` is not an object
    /// this scanner can read (the JSON decoder then refuses it on its own).
    static func firstDuplicate(in bytes: [UInt8]) -> String? {
        var scanner = Scanner(bytes: bytes)
        guard scanner.skipSpace(), scanner.take(UInt8(ascii: "{")) else { return nil }
        var seen = Set<String>()
        if scanner.skipSpace(), scanner.take(UInt8(ascii: "}")) { return nil }
        while true {
            guard scanner.skipSpace(), let name = scanner.string(), scanner.skipSpace(), scanner.take(UInt8(ascii: ":")),
                scanner.skipSpace(), scanner.skipValue(depth: 0)
            else { return nil }
            if !seen.insert(name).inserted { return name }
            guard scanner.skipSpace() else { return nil }
            if scanner.take(UInt8(ascii: ",")) { continue }
            return nil  // "}" (the end) or not JSON: no duplicate either way
        }
    }

    /// A cursor over JSON text.
    struct Scanner {
        let bytes: [UInt8]
        var at = 0
        /// How deep nested values may go before the scanner gives up (the decoder has its own limit).
        static let maximumDepth = 64

        /// Moves past white space; false at the end of the text.
        mutating func skipSpace() -> Bool {
            while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
            return at < bytes.count
        }

        /// Moves past `byte` when it is next.
        mutating func take(_ byte: UInt8) -> Bool {
            guard at < bytes.count, bytes[at] == byte else { return false }
            at += 1
            return true
        }

        /// A string's value, escapes decoded; nil when the next thing is no valid string.
        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            var out: [UInt8] = []
            while at < bytes.count {
                let b = bytes[at]
                at += 1
                switch b {
                case UInt8(ascii: "\""): return String(validating: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard at < bytes.count else { return nil }
                    let e = bytes[at]
                    at += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard var scalar = hex4() else { return nil }
                        if (0xD800...0xDBFF).contains(scalar) {
                            // A high surrogate must be followed by an escaped low one.
                            guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let s = Unicode.Scalar(scalar) else { return nil }
                        out += Array(String(Character(s)).utf8)
                    default: return nil
                    }
                default:
                    guard b >= 0x20 else { return nil }  // control characters must be escaped
                    out.append(b)
                }
            }
            return nil
        }

        /// Four hex digits of a `\u` escape.
        mutating func hex4() -> UInt32? {
            guard at + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for b in bytes[at..<(at + 4)] {
                guard let d = PercentDecoding.hexValue(b) else { return nil }
                value = value << 4 | UInt32(d)
            }
            at += 4
            return value
        }

        /// Moves past one value (object, array, string, number, true, false or null).
        mutating func skipValue(depth: Int) -> Bool {
            guard depth < Self.maximumDepth, at < bytes.count else { return false }
            switch bytes[at] {
            case UInt8(ascii: "\""): return string() != nil
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let close = bytes[at] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                let object = close == UInt8(ascii: "}")
                at += 1
                guard skipSpace() else { return false }
                if take(close) { return true }
                while true {
                    if object {
                        guard string() != nil, skipSpace(), take(UInt8(ascii: ":")), skipSpace() else { return false }
                    }
                    guard skipValue(depth: depth + 1), skipSpace() else { return false }
                    if take(UInt8(ascii: ",")) {
                        guard skipSpace() else { return false }
                        continue
                    }
                    return take(close)
                }
            default:
                // A number or a literal: the run of characters that may make one.
                let start = at
                while at < bytes.count, !",}] \t\r\n".utf8.contains(bytes[at]) { at += 1 }
                return at > start
            }
        }
    }
}
