import Foundation

/// A value bound to or read from a SQL statement.
public enum SQLValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])

    /// The value as text (numbers formatted), or nil for NULL and blobs.
    public var text: String? {
        switch self {
        case .text(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .null, .blob: return nil
        }
    }

    /// The value as an integer when it is one (or numeric text).
    public var int: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d): return d.rounded() == d && abs(d) < 9e18 ? Int64(d) : nil
        case .text(let s): return Int64(s.trimmingCharacters(in: .whitespaces))
        case .null, .blob: return nil
        }
    }

    /// The value as a double when numeric.
    public var double: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .text(let s): return Double(s)
        case .null, .blob: return nil
        }
    }

    /// Whether the value is NULL.
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    public var description: String {
        switch self {
        case .null: return "NULL"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .text(let s): return "'\(s)'"
        case .blob(let b): return "<\(b.count) bytes>"
        }
    }
}

/// One result row: values by column position, and a name lookup.
public struct SQLRow: Sendable, Hashable {
    /// Column names, in result order (lowercased for lookup).
    public let columns: [String]
    /// Values, in result order.
    public let values: [SQLValue]

    /// Creates a row.
    public init(columns: [String], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    /// The value of a column (case-insensitive), or NULL when absent.
    public subscript(_ column: String) -> SQLValue {
        // The exact spelling first (the common case, no copy), then ignoring ASCII case (a
        // database that reports names upper-cased), then any case.
        if let i = columns.firstIndex(of: column) { return values[i] }
        if let i = columns.firstIndex(where: { Self.equalIgnoringASCIICase($0, column) }) { return values[i] }
        let lower = column.lowercased()
        if let i = columns.firstIndex(where: { $0.lowercased() == lower }) { return values[i] }
        return .null
    }

    /// Whether `a` and `b` are equal once ASCII letters are folded to lower case (no copies).
    static func equalIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        for (x, y) in zip(a.utf8, b.utf8) where x != y {
            let lx = x >= 65 && x <= 90 ? x | 0x20 : x
            let ly = y >= 65 && y <= 90 ? y | 0x20 : y
            if lx != ly { return false }
        }
        return true
    }

    /// The value at a position.
    public subscript(_ position: Int) -> SQLValue { values[position] }
}
