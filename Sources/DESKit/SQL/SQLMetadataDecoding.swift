import DESFormat
import Foundation

/// How a catalog value becomes a META value, by its column's reflected kind.
///
/// - `json`/`jsonb`: the JSON value itself (an object stays an object), not a quoted string;
/// - timestamps: ISO 8601 in UTC (`2025-01-01T12:00:00.5Z`), as the original wrote them; a
///   value with no zone is taken as UTC, one with an offset is moved to UTC;
/// - numbers, booleans and NULL keep their kind;
/// - bytes: base64 text under the key with `_base64` appended (META is JSON text).
public enum SQLMetadataDecoding {
    /// The META key a column's value is stored under: binary columns get `_base64` appended.
    public static func key(_ name: String, kind: SQLColumnKind?) -> String {
        kind == .binary ? name + "_base64" : name
    }

    /// The META value of `value`, read from a column of `kind` (nil: not reflected, kept as read).
    public static func value(_ value: SQLValue, kind: SQLColumnKind?) -> DESJSONValue {
        switch value {
        case .null: return .null
        case .blob(let bytes): return .string(Data(bytes).base64EncodedString())
        case .int(let i):
            if kind == .boolean { return .bool(i != 0) }
            return .int(i)
        case .double(let d):
            if kind == .boolean { return .bool(d != 0) }
            if kind == .integer, d.rounded() == d, abs(d) < 9e18 { return .int(Int64(d)) }
            return .double(d)
        case .text(let s):
            switch kind {
            case .json?: return json(s) ?? .string(s)
            case .timestamp?, .timestampWithTimeZone?: return .string(iso8601UTC(s) ?? s)
            case .boolean?:
                switch s.lowercased() {
                case "t", "true", "1", "y", "yes": return .bool(true)
                case "f", "false", "0", "n", "no": return .bool(false)
                default: return .string(s)
                }
            case .integer?: return Int64(s).map(DESJSONValue.int) ?? .string(s)
            case .float?, .decimal?:
                if let i = Int64(s) { return .int(i) }
                return Double(s).map(DESJSONValue.double) ?? .string(s)
            case .binary?: return .string(Data(s.utf8).base64EncodedString())
            default: return .string(s)
            }
        }
    }

    /// A JSON text as a value (nil when it is not JSON).
    static func json(_ text: String) -> DESJSONValue? {
        guard let wrapped = try? DESMetadata.parse(Array("{\"v\":".utf8) + Array(text.utf8) + [UInt8(ascii: "}")]) else { return nil }
        return wrapped["v"]
    }

    /// `YYYY-MM-DD[ T]HH:MM[:SS[.fff…]][ ][Z|±HH[[:]MM]]` as ISO 8601 UTC
    /// (`YYYY-MM-DDTHH:MM:SS[.fff…]Z`, fraction as given less trailing zeros); nil when not such a text.
    public static func iso8601UTC(_ text: String) -> String? {
        let u = Array(text.trimmingCharacters(in: .whitespaces).utf8)
        var i = 0
        func digits(_ n: Int) -> Int? {
            guard i + n <= u.count else { return nil }
            var v = 0
            for k in 0..<n {
                let c = u[i + k]
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            i += n
            return v
        }
        func take(_ c: UInt8) -> Bool {
            if i < u.count, u[i] == c { i += 1; return true }
            return false
        }
        guard let year = digits(4), take(UInt8(ascii: "-")), let month = digits(2), take(UInt8(ascii: "-")), let day = digits(2),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        guard take(UInt8(ascii: " ")) || take(UInt8(ascii: "T")) else { return nil }
        guard let hour = digits(2), take(UInt8(ascii: ":")), let minute = digits(2), hour < 24, minute < 60 else { return nil }
        var second = 0
        var fraction = ""
        if take(UInt8(ascii: ":")) {
            guard let s = digits(2), s < 61 else { return nil }
            second = s
            if take(UInt8(ascii: ".")) {
                while i < u.count, u[i] >= 0x30, u[i] <= 0x39 {
                    fraction.append(Character(Unicode.Scalar(u[i])))
                    i += 1
                }
            }
        }
        _ = take(UInt8(ascii: " "))
        var offsetMinutes = 0
        if take(UInt8(ascii: "Z")) {
        } else if i < u.count, u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") {
            let sign = u[i] == UInt8(ascii: "-") ? -1 : 1
            i += 1
            guard let oh = digits(2) else { return nil }
            _ = take(UInt8(ascii: ":"))
            let om = digits(2) ?? 0
            offsetMinutes = sign * (oh * 60 + om)
        }
        guard i == u.count else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm), then back, to apply the offset.
        func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
            let y = m <= 2 ? y0 - 1 : y0
            let era = (y >= 0 ? y : y - 399) / 400
            let yoe = y - era * 400
            let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
            return era * 146_097 + doe - 719_468
        }
        func civil(_ z0: Int) -> (Int, Int, Int) {
            let z = z0 + 719_468
            let era = (z >= 0 ? z : z - 146_096) / 146_097
            let doe = z - era * 146_097
            let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
            let mp = (5 * doy + 2) / 153
            let d = doy - (153 * mp + 2) / 5 + 1
            let m = mp < 10 ? mp + 3 : mp - 9
            return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
        }
        let total = (daysFromCivil(year, month, day) * 1440 + hour * 60 + minute) - offsetMinutes
        let (y, m, d) = civil(Int((Double(total) / 1440).rounded(.down)))
        let minuteOfDay = total - Int((Double(total) / 1440).rounded(.down)) * 1440
        while fraction.hasSuffix("0") { fraction.removeLast() }
        func pad(_ v: Int, _ n: Int) -> String { String(repeating: "0", count: max(0, n - String(v).count)) + String(v) }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(minuteOfDay / 60, 2)):\(pad(minuteOfDay % 60, 2)):\(pad(second, 2))"
            + (fraction.isEmpty ? "" : "." + fraction) + "Z"
    }
}
