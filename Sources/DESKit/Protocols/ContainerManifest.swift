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

    /// The compact text stored in the metadata store.
    public var encoded: String {
        var object: [String: Any] = [:]
        for (source, ids) in rows {
            if let runs = Self.runs(ids) { object[source] = runs } else { object[source] = ids }
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
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
            guard let n = Int64(id), n >= 0, String(n) == id else { return nil }
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
