/// `?{n}` placeholders (the n-th value, 1-based) rewritten as the positional `?` that MySQL's
/// prepared statements and ODBC take, with the values put in the order the placeholders appear: so that SQL shared by every
/// database may name a value twice or out of order. Text inside quotes ('…', "…", `…`) is left alone.
public enum NumberedPlaceholders {
    /// The rewritten SQL and its values; SQL without `?{` comes back as it is.
    public static func rewrite(_ sql: String, _ values: [SQLValue]) throws -> (String, [SQLValue]) {
        guard sql.contains("?{") else { return (sql, values) }
        var ordered: [SQLValue] = []
        let text = try replacing(sql, valueCount: values.count) { n in
            ordered.append(values[n - 1])
            return "?"
        }
        return (text, ordered)
    }

    /// Every `?{n}` outside quotes replaced by `render(n)` in one pass (SQL Server's `@Pn`);
    /// `n` is checked against `valueCount`.
    public static func replacing(_ sql: String, valueCount: Int, _ render: (Int) -> String) throws -> String {
        let bytes = Array(sql.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        var quote: UInt8? = nil
        while i < bytes.count {
            let b = bytes[i]
            if let q = quote {
                out.append(b)
                if b == UInt8(ascii: "\\"), q != UInt8(ascii: "`"), i + 1 < bytes.count {
                    out.append(bytes[i + 1])
                    i += 2
                    continue
                }
                if b == q { quote = nil }
                i += 1
                continue
            }
            switch b {
            case UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "`"):
                quote = b
                out.append(b)
                i += 1
            case UInt8(ascii: "?") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "{"):
                var j = i + 2
                var n = 0
                while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39 {
                    n = n * 10 + Int(bytes[j] - 0x30)
                    j += 1
                }
                guard j < bytes.count, bytes[j] == UInt8(ascii: "}"), j > i + 2 else {
                    throw SQLError(code: "07001", message: "malformed placeholder at offset \(i)", statement: String(sql.prefix(200)))
                }
                guard n >= 1, n <= valueCount else {
                    throw SQLError(
                        code: "07001", message: "placeholder ?{\(n)} but \(valueCount) values", statement: String(sql.prefix(200)))
                }
                out += Array(render(n).utf8)
                i = j + 1
            default:
                out.append(b)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `$n` (PostgreSQL) or `?n` (SQLite) placeholders written as `?{n}`, outside quotes, so that
    /// ``rewrite(_:_:)`` can order their values: how a dialect's SQL reaches a driver that takes `?`
    /// (ODBC). A marker after a letter, digit, `_` or `$` is part of a name (`a$1`) and stays.
    public static func bracing(_ sql: String, marker: Character) -> String {
        guard let m = marker.asciiValue, sql.utf8.contains(m) else { return sql }
        let bytes = Array(sql.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        var quote: UInt8? = nil
        var i = 0
        func isNameByte(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x24 || b >= 0x80
        }
        while i < bytes.count {
            let b = bytes[i]
            if let q = quote {
                out.append(b)
                if b == q { quote = nil }
                i += 1
                continue
            }
            if b == UInt8(ascii: "'") || b == UInt8(ascii: "\"") || b == UInt8(ascii: "`") {
                quote = b
                out.append(b)
                i += 1
                continue
            }
            if b == m, i + 1 < bytes.count, bytes[i + 1] >= 0x30, bytes[i + 1] <= 0x39, i == 0 || !isNameByte(bytes[i - 1]) {
                var j = i + 1
                while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39 { j += 1 }
                out += Array("?{".utf8) + bytes[(i + 1)..<j] + [UInt8(ascii: "}")]
                i = j
                continue
            }
            out.append(b)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
