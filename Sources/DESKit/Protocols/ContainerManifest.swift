import Foundation

/// The rows a container holds, per source: recorded with the container in the metadata store,
/// under the shard's fencing token, before the container is recorded `uploaded`
/// (`packer.claim_mode: lease`). From it, the rows are marked packed in one statement per
/// source — by the packer, or by whoever recovers the shard next.
///
/// Encoded compactly: a source's ids that are all canonical integers (no sign, no leading zero)
/// become runs (`1-500,502,510-600`); any other ids a JSON list of strings (so `'07'` stays `'07'`).
public struct ContainerManifest: Sendable, Hashable {
    /// Row ids by source name.
    public var rows: [String: [String]]

    /// A manifest of `rows`.
    public init(rows: [String: [String]]) { self.rows = rows }

    /// How many rows it names.
    public var count: Int { rows.values.reduce(0) { $0 + $1.count } }

    /// The compact text stored in the metadata store: a JSON object, sources in order, each
    /// mapped to its runs (a string) or its list of ids. Written by hand, not through
    /// `JSONSerialization`: a lease-mode packer encodes one for every container it records.
    public var encoded: String {
        var out = "{"
        for (i, source) in rows.keys.sorted().enumerated() {
            if i > 0 { out += "," }
            Self.appendJSON(source, to: &out)
            out += ":"
            let ids = rows[source] ?? []
            if let runs = Self.runs(ids) {
                Self.appendJSON(runs, to: &out)
            } else {
                out += "["
                for (j, id) in ids.enumerated() {
                    if j > 0 { out += "," }
                    Self.appendJSON(id, to: &out)
                }
                out += "]"
            }
        }
        return out + "}"
    }

    /// Appends `text` as a JSON string: `"` and `\` escaped, control characters as `\uXXXX`.
    static func appendJSON(_ text: String, to out: inout String) {
        out += "\""
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
            out += text
            out += "\""
            return
        }
        let hex = Array("0123456789abcdef")
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20:
                out += "\\u00"
                out.append(hex[Int(scalar.value >> 4)])
                out.append(hex[Int(scalar.value & 0xF)])
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// Decodes ``encoded`` text; anything else, or more than `maxRows` ids, is an `invalidData` error.
    public init(encoded text: String, maxRows: Int = 100_000_000) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw DESKitError(.invalidData, "container manifest is not a JSON object")
        }
        var rows: [String: [String]] = [:]
        for (source, value) in object {
            if let list = value as? [String] {
                rows[source] = list
            } else if let runs = value as? String, let count = Self.count(ofRuns: runs) {
                // Counted before any id is made: a damaged range cannot take the memory.
                guard count <= maxRows else { throw DESKitError(.invalidData, "container manifest names more than \(maxRows) rows") }
                rows[source] = Self.ids(ofRuns: runs)
            } else {
                throw DESKitError(.invalidData, "container manifest: the ids of source '\(source)' are neither runs nor a list")
            }
        }
        guard rows.values.reduce(0, { $0 + $1.count }) <= maxRows else {
            throw DESKitError(.invalidData, "container manifest names more than \(maxRows) rows")
        }
        self.rows = rows
    }

    /// `1-3,5` for canonical integer ids (sorted, duplicates dropped); nil when one is not.
    static func runs(_ ids: [String]) -> String? {
        var numbers: [Int64] = []
        numbers.reserveCapacity(ids.count)
        for id in ids {
            guard let n = canonicalInteger(id) else { return nil }
            numbers.append(n)
        }
        numbers.sort()
        var parts: [String] = []
        var i = 0
        while i < numbers.count {
            var j = i
            while j + 1 < numbers.count, numbers[j + 1] <= numbers[j] + 1 { j += 1 }
            parts.append(numbers[i] == numbers[j] ? String(numbers[i]) : "\(numbers[i])-\(numbers[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    /// `id` as a number when it is one written canonically: digits only, no sign, no leading
    /// zero, within `Int64` (so that the number written back is `id` again); nil otherwise.
    static func canonicalInteger(_ id: String) -> Int64? {
        var value: Int64 = 0
        var digits = 0
        for byte in id.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), !(digits == 1 && value == 0) else { return nil }
            let (shifted, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = shifted.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = sum
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// How many ids `1-3,5` names (nil when malformed).
    static func count(ofRuns text: String) -> Int? {
        if text.isEmpty { return 0 }
        var total: Int64 = 0
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = Int64(bounds[0]), low >= 0 else { return nil }
            guard let high = bounds.count == 2 ? Int64(bounds[1]) : low, high >= low else { return nil }
            let (sum, overflow) = total.addingReportingOverflow(high - low + 1)
            guard !overflow, sum <= Int64(Int32.max) else { return nil }
            total = sum
        }
        return Int(total)
    }

    /// The ids of runs ``count(ofRuns:)`` has checked.
    static func ids(ofRuns text: String) -> [String] {
        var out: [String] = []
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-").compactMap { Int64($0) }
            guard let low = bounds.first, let high = bounds.last, high >= low else { continue }
            for n in low...high { out.append(String(n)) }
        }
        return out
    }
}

/// An uploaded container whose manifest's rows are not yet marked packed.
public struct UnmarkedManifest: Sendable, Hashable {
    /// The container.
    public var container: ContainerRecord
    /// The rows it holds.
    public var manifest: ContainerManifest
    /// Creates one.
    public init(container: ContainerRecord, manifest: ContainerManifest) {
        self.container = container
        self.manifest = manifest
    }
}
