/// A JSON value as stored in an entry's META.
public indirect enum DESJSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([DESJSONValue])
    case object(DESMetadata)

    /// The string, when this is a string.
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    /// The integer, when this is an integer (or a double with no fraction).
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e18: return Int64(d)
        default: return nil
        }
    }
    /// The boolean, when this is a boolean.
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
}

extension DESJSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(nilLiteral: ()) { self = .null }
}

/// An entry's metadata: a JSON object whose keys keep the order they were given in.
///
/// The writer stores the caller's keys in the caller's order, then `size`, then
/// DES's own keys (`sha256`; `is_external` and `external_key` for external files).
public struct DESMetadata: Sendable, Equatable, ExpressibleByDictionaryLiteral, Sequence {
    /// The key/value pairs, in order.
    public private(set) var pairs: [(key: String, value: DESJSONValue)]

    /// An empty object.
    public init() { pairs = [] }

    /// An object with these pairs, in this order (a later duplicate key replaces the earlier value in place).
    public init(_ pairs: [(String, DESJSONValue)]) {
        var unique: [(key: String, value: DESJSONValue)] = []
        var positions: [String: Int] = [:]
        for (k, v) in pairs {
            if let i = positions[k] {
                unique[i].value = v
            } else {
                positions[k] = unique.count
                unique.append((k, v))
            }
        }
        self.pairs = unique
    }

    /// Pairs whose keys are already unique (the parser's result).
    init(uniquePairs: [(key: String, value: DESJSONValue)]) { self.pairs = uniquePairs }

    public init(dictionaryLiteral elements: (String, DESJSONValue)...) { self.init(elements) }

    /// The value for a key; setting appends a new key at the end or replaces in place.
    public subscript(key: String) -> DESJSONValue? {
        get { pairs.first(where: { $0.key == key })?.value }
        set {
            if let i = pairs.firstIndex(where: { $0.key == key }) {
                if let newValue { pairs[i].value = newValue } else { pairs.remove(at: i) }
            } else if let newValue {
                pairs.append((key, newValue))
            }
        }
    }

    /// The keys, in order.
    public var keys: [String] { pairs.map(\.key) }
    /// Whether there are no keys.
    public var isEmpty: Bool { pairs.isEmpty }
    /// The number of keys.
    public var count: Int { pairs.count }

    public func makeIterator() -> IndexingIterator<[(key: String, value: DESJSONValue)]> { pairs.makeIterator() }

    public static func == (lhs: DESMetadata, rhs: DESMetadata) -> Bool {
        lhs.pairs.count == rhs.pairs.count
            && zip(lhs.pairs, rhs.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    /// Compact JSON bytes (no spaces), non-ASCII escaped as `\uXXXX` — what
    /// Python's `json.dumps(obj, separators=(",", ":"))` writes.
    public var jsonBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32 + pairs.count * 24)
        JSONWriter.write(object: self, into: &out)
        return out
    }

    /// Parses a JSON object (the META of one entry).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> DESMetadata {
        var parser = JSONParser(bytes)
        return try parser.parseTopLevelObject()
    }

    /// Parses a JSON object from a byte array.
    public static func parse(_ bytes: [UInt8]) throws -> DESMetadata {
        try bytes.withUnsafeBytes { raw in try parse(raw) }
    }

    /// The first member name the JSON object `bytes` names twice at its top level (escapes
    /// decoded: `"exp"` and `"\u0065xp"` are one name), or nil: none twice, or `bytes` is not a
    /// JSON object (``parse(_:)`` keeps the last of two; a JWT must not be read either way, RFC 7519 §4).
    public static func firstRepeatedKey(inJSON bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { raw in
            var parser = JSONParser(raw)
            guard (try? parser.parseTopLevelObject()) != nil else { return nil }
            return parser.firstRepeatedTopLevelKey
        }
    }
}

extension DESMetadata {
    /// The content type the metadata records (`content_type`, `content-type`, `mime_type` or
    /// `mime`, the first non-empty), as servers answer it and the two-level index keeps it.
    public var contentType: String? {
        for key in ["content_type", "content-type", "mime_type", "mime"] {
            if let v = self[key]?.stringValue, !v.isEmpty { return v }
        }
        return nil
    }
}
