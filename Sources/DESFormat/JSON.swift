/// Writes JSON exactly as Python's `json.dumps(..., separators=(",", ":"))` does
/// with its default `ensure_ascii=True`.
enum JSONWriter {
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func write(object: DESMetadata, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        var first = true
        for (key, value) in object.pairs {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            write(string: key, into: &out)
            out.append(UInt8(ascii: ":"))
            write(value: value, into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    static func write(value: DESJSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i):
            if i < 0 { out.append(UInt8(ascii: "-")) }
            write(unsigned: i.magnitude, into: &out)
        case .double(let d):
            if d.isNaN {
                out.append(contentsOf: "NaN".utf8)
            } else if d.isInfinite {
                out.append(contentsOf: (d < 0 ? "-Infinity" : "Infinity").utf8)
            } else {
                out.append(contentsOf: d.description.utf8)
            }
        case .string(let s): write(string: s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(value: item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o): write(object: o, into: &out)
        }
    }

    static func write(string: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Fast path: printable ASCII with nothing to escape is copied as it is.
        var copy = string
        let plain = copy.withUTF8 { utf8 -> Bool in
            for b in utf8 where b < 0x20 || b > 0x7E || b == 0x22 || b == 0x5C { return false }
            out.append(contentsOf: utf8)
            return true
        }
        if !plain { writeEscaped(string, into: &out) }
        out.append(UInt8(ascii: "\""))
    }

    /// Writes a non-negative integer in decimal without going through `String`.
    static func write(unsigned value: UInt64, into out: inout [UInt8]) {
        let start = out.count
        var v = value
        repeat {
            out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10))
            v /= 10
        } while v > 0
        out[start...].reverse()
    }

    private static func writeEscaped(_ string: String, into out: inout [UInt8]) {
        for unit in string.utf16 {
            switch unit {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x20...0x7E: out.append(UInt8(unit))
            default:
                out.append(contentsOf: [0x5C, UInt8(ascii: "u")])
                out.append(hex[Int(unit >> 12) & 0xF])
                out.append(hex[Int(unit >> 8) & 0xF])
                out.append(hex[Int(unit >> 4) & 0xF])
                out.append(hex[Int(unit) & 0xF])
            }
        }
    }
}

/// A small strict JSON parser for META objects (RFC 8259 plus Python's
/// `NaN`/`Infinity`, which `json.dumps` can write).
struct JSONParser {
    private let bytes: UnsafeRawBufferPointer
    private var pos = 0
    private var depth = 0
    /// The first member name the top-level object had twice (escapes decoded), if any.
    private(set) var firstRepeatedTopLevelKey: String?

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func parseTopLevelObject() throws -> DESMetadata {
        skipSpace()
        guard peek() == UInt8(ascii: "{") else { throw fail("expected a JSON object") }
        guard case .object(let obj) = try parseValue() else { throw fail("expected a JSON object") }
        skipSpace()
        guard pos == bytes.count else { throw fail("trailing bytes after the JSON object") }
        return obj
    }

    private func fail(_ what: String) -> DESFormatError {
        DESFormatError(.badMetadata, "invalid META JSON at byte \(pos): \(what)")
    }

    private func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipSpace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private mutating func expect(_ literal: String) throws {
        for b in literal.utf8 {
            guard peek() == b else { throw fail("expected '\(literal)'") }
            pos += 1
        }
    }

    private mutating func parseValue() throws -> DESJSONValue {
        skipSpace()
        guard let c = peek() else { throw fail("unexpected end") }
        switch c {
        case UInt8(ascii: "{"):
            depth += 1
            guard depth < 512 else { throw fail("nesting too deep") }
            defer { depth -= 1 }
            pos += 1
            // Keys are placed through a hash table, so an object of n keys parses in O(n)
            // (a later duplicate replaces the earlier value in place, as Python's json does).
            var pairs: [(key: String, value: DESJSONValue)] = []
            // Names are told apart code point by code point (RFC 8259 §8.3), not by Unicode equivalence.
            var positions: [ExactText: Int] = [:]
            skipSpace()
            if peek() == UInt8(ascii: "}") { pos += 1; return .object(DESMetadata()) }
            while true {
                skipSpace()
                guard peek() == UInt8(ascii: "\"") else { throw fail("expected a key string") }
                let key = try parseString()
                skipSpace()
                try expect(":")
                let value = try parseValue()
                let exact = ExactText(key)
                if let i = positions[exact] {
                    if depth == 1 && firstRepeatedTopLevelKey == nil { firstRepeatedTopLevelKey = key }
                    pairs[i].value = value
                } else {
                    positions[exact] = pairs.count
                    pairs.append((key, value))
                }
                skipSpace()
                if peek() == UInt8(ascii: ",") { pos += 1; continue }
                if peek() == UInt8(ascii: "}") { pos += 1; return .object(DESMetadata(uniquePairs: pairs)) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            depth += 1
            guard depth < 512 else { throw fail("nesting too deep") }
            defer { depth -= 1 }
            pos += 1
            var items: [DESJSONValue] = []
            skipSpace()
            if peek() == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                items.append(try parseValue())
                skipSpace()
                if peek() == UInt8(ascii: ",") { pos += 1; continue }
                if peek() == UInt8(ascii: "]") { pos += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "N"): try expect("NaN"); return .double(.nan)
        case UInt8(ascii: "I"): try expect("Infinity"); return .double(.infinity)
        default: return try parseNumber()
        }
    }

    private mutating func parseNumber() throws -> DESJSONValue {
        let start = pos
        if peek() == UInt8(ascii: "-") {
            pos += 1
            if peek() == UInt8(ascii: "I") { try expect("Infinity"); return .double(-.infinity) }
        }
        var isInteger = true
        while let c = peek() {
            if c >= 0x30 && c <= 0x39 { pos += 1; continue }
            if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == UInt8(ascii: "+")
                || c == UInt8(ascii: "-")
            {
                isInteger = false
                pos += 1
                continue
            }
            break
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        if text.isEmpty || text == "-" { throw fail("unexpected character") }
        if isInteger, let i = Int64(text) { return .int(i) }
        if let d = Double(text) { return .double(d) }
        throw fail("bad number '\(text)'")
    }

    private mutating func parseHex4() throws -> UInt16 {
        guard pos + 4 <= bytes.count else { throw fail("short \\u escape") }
        var v: UInt16 = 0
        for _ in 0..<4 {
            let c = bytes[pos]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: throw fail("bad \\u escape")
            }
            v = v << 4 | UInt16(d)
            pos += 1
        }
        return v
    }

    private mutating func parseString() throws -> String {
        pos += 1  // opening quote
        // The common case, a string without escapes: made from its bytes in place.
        var end = pos
        while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 { end += 1 }
        if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
            guard let s = String(validating: UnsafeRawBufferPointer(rebasing: bytes[pos..<end]), as: UTF8.self) else {
                throw fail("string is not valid UTF-8")
            }
            pos = end + 1
            return s
        }
        var utf8: [UInt8] = []
        while true {
            guard let c = peek() else { throw fail("unterminated string") }
            pos += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") { utf8.append(c); continue }
            guard let e = peek() else { throw fail("unterminated escape") }
            pos += 1
            switch e {
            case UInt8(ascii: "\""): utf8.append(0x22)
            case UInt8(ascii: "\\"): utf8.append(0x5C)
            case UInt8(ascii: "/"): utf8.append(0x2F)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var units = [try parseHex4()]
                if (0xD800...0xDBFF).contains(units[0]), peek() == UInt8(ascii: "\\"), pos + 1 < bytes.count,
                    bytes[pos + 1] == UInt8(ascii: "u")
                {
                    pos += 2
                    units.append(try parseHex4())
                }
                utf8.append(contentsOf: String(decoding: units, as: UTF16.self).utf8)
            default: throw fail("bad escape")
            }
        }
        guard let s = String(validating: utf8, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return s
    }
}
