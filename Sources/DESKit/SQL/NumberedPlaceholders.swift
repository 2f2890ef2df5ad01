/// `?{n}` placeholders (the n-th value, 1-based) rewritten as the positional `?` that MySQL's
/// prepared statements and ODBC take, with the values put in the order the placeholders appear: so that SQL shared by every
/// database may name a value twice or out of order. Text inside quotes ('…', "…", `…`) is left alone.
public enum NumberedPlaceholders {
    /// The rewritten SQL and its values; SQL without `?{` comes back as it is.
    public static func rewrite(_ sql: String, _ values: [SQLValue]) throws -> (String, [SQLValue]) {
        guard sql.contains("?{") else { return (sql, values) }
        let bytes = Array(sql.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var ordered: [SQLValue] = []
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
                guard n >= 1, n <= values.count else {
                    throw SQLError(
                        code: "07001", message: "placeholder ?{\(n)} but \(values.count) values", statement: String(sql.prefix(200)))
                }
                ordered.append(values[n - 1])
                out.append(UInt8(ascii: "?"))
                i = j + 1
            default:
                out.append(b)
                i += 1
            }
        }
        return (String(decoding: out, as: UTF8.self), ordered)
    }
}
