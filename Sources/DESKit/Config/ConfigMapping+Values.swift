import DESFormat
import Yams

/// Typed access to a mapping's values: scalars, collections, and how values are shown in errors.
extension ConfigMapping {
    // MARK: Scalars

    /// The scalar text of `key` after `${VAR}` expansion; nil when absent, null, or empty after substitution.
    func text(_ key: String, expected: String = "a string") throws -> String? {
        guard let value = node(key) else { return nil }
        guard case .scalar(let scalar) = value else {
            throw error(key, .wrongType, "expected \(expected), got \(Self.describe(value, secret: false))")
        }
        return try expand(scalar.string, key: key)
    }

    /// Expands `${VAR}` in a scalar of `key`; nil when a substitution leaves it empty.
    func expand(_ raw: String, key: String, path: String? = nil, mark: Mark? = nil) throws -> String? {
        let at = mark ?? position(of: key)
        let keyPath = path ?? childPath(key)
        let result: EnvironmentExpansion.Result
        do throws(EnvironmentExpansion.Failure) {
            result = try EnvironmentExpansion.expand(raw, environment: context.environment)
        } catch {
            switch error {
            case .missingVariable(let name):
                throw context.error(
                    .missingVariable, at: at, path: keyPath,
                    "environment variable '\(name)' is not set (set it, or write ${\(name):-default})")
            case .unterminated:
                throw context.error(
                    .badExpansion, at: at, path: keyPath, "'${' without a closing '}' (write '$${' for a literal '${')")
            case .badName(let inner):
                let what = secretKeys.contains(key) ? "a reference" : "'${\(inner)}'"
                throw context.error(
                    .badExpansion, at: at, path: keyPath,
                    "\(what) does not name a variable (expected ${NAME} or ${NAME:-default})")
            }
        }
        if result.substituted, result.text.isEmpty { return nil }
        return result.text
    }

    /// A string; empty strings are kept.
    func string(_ key: String) throws -> String? { try text(key) }

    /// A string that must be present and non-empty.
    func requiredString(_ key: String) throws -> String {
        guard let value = try text(key) else { throw missing(key) }
        guard !value.isEmpty else { throw error(key, .invalidValue, "must not be empty") }
        return value
    }

    /// An integer within `range` (a finite range from ``ConfigLimits``).
    ///
    /// A value outside the range, or an integer too large to represent, is an
    /// `invalidValue` error stating the range and the value.
    func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = try text(key, expected: "an integer") else { return nil }
        guard let value = Self.parseInt(text) else {
            guard Self.isIntegerLiteral(text) else {
                throw error(key, .wrongType, "expected an integer, got \(shown(text, key: key))")
            }
            throw error(key, .invalidValue, "must be \(Self.bounds(range)), got \(shownNumber(text.trimmingSpaces, key: key))")
        }
        guard range.contains(value) else {
            throw error(key, .invalidValue, "must be \(Self.bounds(range)), got \(shownNumber(String(value), key: key))")
        }
        return value
    }

    /// A finite number (integer or decimal) within `range`; `unit` names the unit in errors (`seconds`).
    ///
    /// `.inf`, `.nan` (and `inf`, `nan`), numbers too large for a `Double` and values
    /// outside the range are `invalidValue` errors stating the range and the value.
    func double(_ key: String, in range: ClosedRange<Double>, unit: String = "seconds") throws -> Double? {
        guard let text = try text(key, expected: "a number") else { return nil }
        let cleaned = text.trimmingSpaces.replacing("_", with: "")
        guard let value = Self.parseDouble(cleaned) else {
            throw error(key, .wrongType, "expected a number, got \(shown(text, key: key))")
        }
        guard value.isFinite, range.contains(value) else {
            let got = value.isFinite ? Self.format(value) : cleaned
            throw error(key, .invalidValue, "must be \(Self.bounds(range, unit: unit)), got \(shownNumber(got, key: key))")
        }
        return value
    }

    /// A duration in seconds within `range`: one or more parts of a number and a unit — `ms`,
    /// `s`, `m`, `h`, `d`, `w` (`90s`, `15m`, `24h`, `1h30m`, `7d`, `0s`), each unit once, larger
    /// first. A bare number is refused (is `24` hours or seconds?), except `0`.
    func duration(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let text = try text(key, expected: "a duration") else { return nil }
        guard let seconds = Self.parseDuration(text.trimmingSpaces) else {
            throw error(key, .wrongType, "expected a duration (like 30s, 15m, 24h, 7d or 1h30m), got \(shown(text, key: key))")
        }
        guard seconds.isFinite, range.contains(seconds) else {
            throw error(key, .invalidValue, "must be \(Self.bounds(range, unit: "seconds")), got \(shownNumber(text.trimmingSpaces, key: key))")
        }
        return seconds
    }

    /// Seconds of `30s`, `1h30m`, `7d` (or `0`); nil when malformed or without a unit.
    static func parseDuration(_ text: String) -> Double? {
        if text == "0" { return 0 }
        // Larger units first, each once.
        let units: [(String, Double)] = [("w", 604_800), ("d", 86_400), ("h", 3_600), ("ms", 0.001), ("m", 60), ("s", 1)]
        let order = ["w", "d", "h", "m", "s", "ms"]
        var rest = Substring(text.lowercased())
        var total = 0.0
        var last = -1
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isNumber || $0 == "." }
            guard !digits.isEmpty, let value = Double(digits), value.isFinite else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.0) }), let position = order.firstIndex(of: unit.0), position > last else {
                return nil
            }
            last = position
            rest = rest.dropFirst(unit.0.count)
            total += value * unit.1
        }
        return total
    }

    /// `true`/`false` (also `yes`/`no`, `on`/`off`).
    func bool(_ key: String) throws -> Bool? {
        guard let text = try text(key, expected: "true or false") else { return nil }
        guard let value = ConfigSection.boolean(text) else {
            throw error(key, .wrongType, "expected true or false, got \(shown(text, key: key))")
        }
        return value
    }

    /// A byte count within `range`: an integer, optionally with a unit (`KB`, `MB`, `GB`, `TB` are powers of 1000; `KiB`, `MiB`, `GiB`, `TiB` of 1024).
    ///
    /// A count outside the range (or too large for 64 bits) is an `invalidValue` error stating the range and the value.
    func byteCount(_ key: String, in range: ClosedRange<UInt64>) throws -> UInt64? {
        guard let text = try text(key, expected: "a byte count") else { return nil }
        let value: UInt64
        switch Self.parseBytes(text) {
        case .malformed:
            throw error(key, .wrongType, "expected a byte count (like 1073741824 or 1GiB), got \(shown(text, key: key))")
        case .tooLarge:
            throw error(key, .invalidValue, "must be \(Self.byteBounds(range)), got \(shown(text, key: key))")
        case .bytes(let bytes):
            value = bytes
        }
        guard range.contains(value) else {
            let got = secretKeys.contains(key) ? "<redacted>" : Self.formatBytes(value)
            throw error(key, .invalidValue, "must be \(Self.byteBounds(range)), got \(got)")
        }
        return value
    }

    /// One of `choices` (compared without regard to case; the choice's spelling is returned).
    func choice(_ key: String, among choices: [String]) throws -> String? {
        guard let text = try text(key) else { return nil }
        if let match = choices.first(where: { $0.lowercased() == text.lowercased() }) { return match }
        let list = choices.count == 2 ? "\(choices[0]) or \(choices[1])" : choices.dropLast().joined(separator: ", ") + " or " + (choices.last ?? "")
        throw error(
            key, .invalidValue, "must be \(list), got \(shown(text, key: key))",
            suggestion: secretKeys.contains(key) ? nil : KeySuggestion.suggest(for: text, among: choices))
    }

    // MARK: Collections

    /// A list of non-empty strings.
    func stringList(_ key: String) throws -> [String]? {
        guard let items = try items(key) else { return nil }
        return try items.map { item in
            guard case .scalar(let scalar) = item.node else {
                throw context.error(.wrongType, at: item.node.mark, path: item.path, "expected a string, got \(Self.describe(item.node, secret: false))")
            }
            guard let text = try expand(scalar.string, key: key, path: item.path, mark: item.node.mark), !text.isEmpty else {
                throw context.error(.invalidValue, at: item.node.mark, path: item.path, "must not be empty")
            }
            return text
        }
    }

    /// A mapping of strings to strings (any scalar value is taken as its text).
    func stringMap(_ key: String) throws -> [String: String]? {
        guard let value = node(key) else { return nil }
        guard case .mapping(let mapping) = value else {
            throw error(key, .wrongType, "expected a mapping, got \(Self.describe(value, secret: secretKeys.contains(key)))")
        }
        var out: [String: String] = [:]
        for (k, v) in mapping {
            guard case .scalar(let name) = k else {
                throw context.error(.wrongType, at: k.mark, path: childPath(key), "keys must be plain words")
            }
            let itemPath = ConfigContext.join(childPath(key), name.string)
            if Self.isNull(v) { continue }
            guard case .scalar(let scalar) = v else {
                throw context.error(.wrongType, at: v.mark, path: itemPath, "expected a string, got \(Self.describe(v, secret: false))")
            }
            out[name.string] = try expand(scalar.string, key: key, path: itemPath, mark: v.mark) ?? ""
        }
        return out
    }

    /// `metadata_columns`: a mapping `meta_key: column` (the original's form) or a list of columns,
    /// each stored under its own name. Keys and columns must be non-empty strings, and no META key may repeat.
    func metadataColumns(_ key: String) throws -> [MetadataColumn]? {
        guard let value = node(key) else { return nil }
        var out: [MetadataColumn] = []
        var seen: [String: String] = [:]  // META key -> key path of its first use
        func add(_ field: MetadataColumn, path: String, mark: Mark?) throws {
            if let first = seen[field.key] {
                throw context.error(.duplicate, at: mark, path: path, "META key '\(field.key)' is already taken by \(first)")
            }
            // Keys DES writes into every entry's META itself: the packer would refuse every row.
            if DESArchiveWriter.reservedMetadataKeys.contains(field.key) {
                let reserved = DESArchiveWriter.reservedMetadataKeys.sorted().joined(separator: ", ")
                throw context.error(
                    .invalidValue, at: mark, path: path,
                    "META key '\(field.key)' is reserved: DES writes \(reserved) itself; give the column another key (metadata_columns: {\(field.key)_value: \(field.column)})")
            }
            seen[field.key] = path
            out.append(field)
        }
        switch value {
        case .sequence(let sequence):
            for (i, item) in sequence.enumerated() {
                let path = "\(childPath(key))[\(i)]"
                let column = try metadataText(item, key: key, path: path)
                try add(MetadataColumn(column), path: path, mark: item.mark)
            }
        case .mapping(let mapping):
            for (k, v) in mapping {
                guard case .scalar(let name) = k else {
                    throw context.error(.wrongType, at: k.mark, path: childPath(key), "META keys must be plain words, got \(Self.describe(k, secret: false))")
                }
                let path = ConfigContext.join(childPath(key), name.string)
                guard let metaKey = try expand(name.string, key: key, path: path, mark: k.mark), !metaKey.isEmpty else {
                    throw context.error(.invalidValue, at: k.mark, path: path, "a META key must not be empty")
                }
                let column = try metadataText(v, key: key, path: path)
                try add(MetadataColumn(key: metaKey, column: column), path: path, mark: k.mark)
            }
        default:
            throw error(key, .wrongType, "expected a mapping (meta_key: column) or a list of columns, got \(Self.describe(value, secret: false))")
        }
        return out
    }

    /// The column name of one `metadata_columns` entry: a non-empty scalar.
    private func metadataText(_ node: Node, key: String, path: String) throws -> String {
        guard case .scalar(let scalar) = node, !Self.isNull(node) else {
            let got = Self.isNull(node) ? "nothing" : Self.describe(node, secret: false)
            throw context.error(.wrongType, at: node.mark, path: path, "expected a column name, got \(got)")
        }
        guard let text = try expand(scalar.string, key: key, path: path, mark: node.mark), !text.isEmpty else {
            throw context.error(.invalidValue, at: node.mark, path: path, "must not be empty")
        }
        do { try SQLIdentifier.validate(text, what: "") } catch let error as DESKitError {
            throw context.error(.invalidValue, at: node.mark, path: path, error.message.replacingOccurrences(of: ": ", with: "", options: .anchored))
        }
        return text
    }

    /// The elements of a list, each with its key path.
    func items(_ key: String) throws -> [ConfigItem]? {
        guard let value = node(key) else { return nil }
        // A scalar that expands to nothing (`${TOKENS:-}`) leaves the default, as for every other key.
        if case .scalar(let scalar) = value, scalar.string.contains("${"), try expand(scalar.string, key: key) == nil { return nil }
        guard case .sequence(let sequence) = value else {
            throw error(key, .wrongType, "expected a list, got \(Self.describe(value, secret: secretKeys.contains(key)))")
        }
        return sequence.enumerated().map { ConfigItem(node: $1, path: "\(childPath(key))[\($0)]") }
    }

    /// A nested mapping checked against `allowed`.
    func mapping(_ key: String, allowed: [String], secretKeys: Set<String> = []) throws -> ConfigMapping? {
        guard let value = node(key) else { return nil }
        return try ConfigMapping(value, path: childPath(key), context: context, allowed: allowed, secretKeys: secretKeys)
    }

    // MARK: Helpers

    /// Whether a node is YAML null (an empty value, `~`, `null`).
    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// `a mapping`, `a list`, `'text'` or `<redacted>`.
    static func describe(_ node: Node, secret: Bool) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar): return secret ? "<redacted>" : quote(scalar.string)
        }
    }

    /// `'text'`, shortened to 40 characters.
    static func quote(_ text: String) -> String {
        text.count > 40 ? "'\(text.prefix(37))...'" : "'\(text)'"
    }

    static func parseInt(_ text: String) -> Int? {
        var t = text.trimmingSpaces.replacing("_", with: "")
        if t.hasPrefix("+") { t.removeFirst() }
        if t.lowercased().hasPrefix("0x") { return Int(t.dropFirst(2), radix: 16) }
        return Int(t)
    }

    /// Whether `text` is written as an integer (decimal, or hexadecimal with `0x`), however large.
    static func isIntegerLiteral(_ text: String) -> Bool {
        var t = Substring(text.trimmingSpaces.replacing("_", with: ""))
        if t.hasPrefix("+") || t.hasPrefix("-") { t = t.dropFirst() }
        if t.lowercased().hasPrefix("0x") {
            let digits = t.dropFirst(2)
            return !digits.isEmpty && digits.allSatisfy(\.isHexDigit)
        }
        return !t.isEmpty && t.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// A decimal number, or YAML's `.inf`, `-.inf` and `.nan`; nil for anything else (hexadecimal included).
    static func parseDouble(_ cleaned: String) -> Double? {
        let lower = cleaned.lowercased()
        switch lower {
        case ".inf", "+.inf": return .infinity
        case "-.inf": return -.infinity
        case ".nan": return .nan
        default: break
        }
        if lower.hasPrefix("0x") || lower.hasPrefix("+0x") || lower.hasPrefix("-0x") { return nil }
        return Double(cleaned)
    }

    /// How a byte count reads.
    enum ByteCount: Equatable {
        /// A count.
        case bytes(UInt64)
        /// Well formed, but more than 64 bits hold.
        case tooLarge
        /// Not a byte count.
        case malformed
    }

    static func parseBytes(_ text: String) -> ByteCount {
        let t = text.trimmingSpaces.replacing("_", with: "").replacing(" ", with: "")
        let digits = t.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return .malformed }
        let units: [String: UInt64] = [
            "": 1, "b": 1, "kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000, "tb": 1_000_000_000_000,
            "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
        ]
        guard let unit = units[t.dropFirst(digits.count).lowercased()] else { return .malformed }
        guard let number = UInt64(digits) else { return .tooLarge }
        let (value, overflow) = number.multipliedReportingOverflow(by: unit)
        return overflow ? .tooLarge : .bytes(value)
    }

    /// `between 1 and 100000`.
    static func bounds(_ range: ClosedRange<Int>) -> String {
        "between \(range.lowerBound) and \(range.upperBound)"
    }

    /// `between 0.1 and 3600 seconds` (no unit when `unit` is empty).
    static func bounds(_ range: ClosedRange<Double>, unit: String) -> String {
        "between \(format(range.lowerBound)) and \(format(range.upperBound))" + (unit.isEmpty ? "" : " " + unit)
    }

    /// `between 1KiB and 5TiB (1024 and 5497558138880 bytes)`.
    static func byteBounds(_ range: ClosedRange<UInt64>) -> String {
        let low = binaryUnits(range.lowerBound)
        let high = binaryUnits(range.upperBound)
        guard let low, let high else { return "between \(range.lowerBound) and \(range.upperBound) bytes" }
        return "between \(low) and \(high) (\(range.lowerBound) and \(range.upperBound) bytes)"
    }

    /// `100TiB (109951162777600 bytes)`, or `1000 bytes` when no binary unit divides it.
    static func formatBytes(_ value: UInt64) -> String {
        guard let units = binaryUnits(value) else { return "\(value) bytes" }
        return "\(units) (\(value) bytes)"
    }

    /// `5TiB`: the count in the largest binary unit not above it, when that unit divides it exactly
    /// (nil below 1KiB and for counts like 1500KiB).
    static func binaryUnits(_ value: UInt64) -> String? {
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            let size: UInt64 = 1 << UInt64(shift)
            guard value >= size else { continue }
            return value % size == 0 ? "\(value / size)\(unit)" : nil
        }
        return nil
    }

    /// `3600`, `0.1`, `1e+21`: whole numbers below 10^15 without a decimal point.
    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
