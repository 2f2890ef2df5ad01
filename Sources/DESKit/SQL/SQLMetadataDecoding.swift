import DESFormat
import DESNaming
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
        // Minutes since the epoch, the offset applied, then back to a date in UTC.
        let total = (CivilDate.days(year: Int64(year), month: Int64(month), day: Int64(day)) * 1440 + Int64(hour * 60 + minute))
            - Int64(offsetMinutes)
        let dayNumber = total >= 0 ? total / 1440 : (total - 1439) / 1440
        let minuteOfDay = total - dayNumber * 1440
        let (y, m, d) = CivilDate.date(days: dayNumber)
        while fraction.hasSuffix("0") { fraction.removeLast() }
        let pad = CivilDate.pad
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(minuteOfDay / 60, 2)):\(pad(minuteOfDay % 60, 2)):\(pad(Int64(second), 2))"
            + (fraction.isEmpty ? "" : "." + fraction) + "Z"
    }
}
