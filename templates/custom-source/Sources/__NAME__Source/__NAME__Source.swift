import DESFormat
import DESKit
import Foundation

/// A catalog kept in a JSON-lines file: one object per line, one file per line.
///
/// The fields are named by the source's `table.columns` (`id`, `s3_key`, `size_bytes`,
/// `metadata_columns`), so a config reads exactly like a SQL source's:
///
/// ```json
/// {"id": 1, "path": "2025/report.pdf", "size": 48213, "kind": "report"}
/// ```
///
/// The catalog file is only read. What DES writes — names, shards, claims, statuses — goes to
/// a journal beside it (`<catalog>.des-journal`): one JSON line per change, flushed to disk
/// before the call returns, and replayed when the source opens, so a crash loses nothing that
/// was acknowledged. One process uses a catalog at a time (the journal is not shared).
public actor __NAME__Source: SourceConnector {
    /// What DES knows about one row.
    struct Row {
        let id: String
        let key: String
        let size: UInt64?
        let metadata: DESMetadata
        var status: Status
        var name: String?
        var shard: Int?
        var container: String?
        var claimedBy: String?
        var claimedAt: Double?
        var error: String?
    }

    enum Status: String, Codable { case unnamed, pending, claimed, packed, failed, sourceDeleted, deleted }

    /// One line of the journal.
    struct Change: Codable {
        var op: String
        var ids: [String]
        var names: [String]?
        var shards: [Int]?
        var holder: String?
        var at: Double?
        var container: String?
        var reasons: [String]?
    }

    public nonisolated let name: String
    private let journalPath: String
    private var rows: [Row]
    private let positions: [String: Int]
    private let journal: FileHandle

    /// Opens the catalog at `catalogPath` with the columns of `table`, replaying its journal.
    public init(name: String, catalogPath: String, table: TableConfig) throws {
        self.name = name
        guard let data = FileManager.default.contents(atPath: catalogPath) else {
            throw DESKitError(.notFound, "source '\(name)': catalog file '\(catalogPath)' does not exist or cannot be read")
        }
        let columns = table.columns
        var rows: [Row] = []
        var positions: [String: Int] = [:]
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            guard let object = try? JSONDecoder().decode([String: CatalogValue].self, from: Data(line)) else {
                throw DESKitError(.invalidData, "source '\(name)': \(catalogPath):\(lineNumber): not a JSON object")
            }
            guard let id = object[columns.id]?.text else {
                throw DESKitError(.invalidData, "source '\(name)': \(catalogPath):\(lineNumber): no '\(columns.id)'")
            }
            guard positions[id] == nil else {
                throw DESKitError(.invalidData, "source '\(name)': \(catalogPath):\(lineNumber): id \(id) appears twice")
            }
            var metadata = DESMetadata()
            for column in columns.metadata { metadata[column.key] = object[column.column]?.json ?? .null }
            var size: UInt64?
            if let column = columns.sizeBytes, case .int(let n)? = object[column] { size = UInt64(max(0, n)) }
            positions[id] = rows.count
            rows.append(
                Row(id: id, key: object[columns.s3Key]?.text ?? "", size: size, metadata: metadata, status: .unnamed))
        }
        let journalPath = catalogPath + ".des-journal"
        if !FileManager.default.fileExists(atPath: journalPath) {
            _ = FileManager.default.createFile(atPath: journalPath, contents: nil)
        }
        guard let handle = FileHandle(forUpdatingAtPath: journalPath) else {
            throw DESKitError(.storage, "source '\(name)': cannot open the journal '\(journalPath)'")
        }
        for line in handle.readDataToEndOfFile().split(separator: UInt8(ascii: "\n")) {
            // A line cut short by a crash is the only one that can fail to parse; it was never acknowledged.
            guard let change = try? JSONDecoder().decode(Change.self, from: Data(line)) else { continue }
            Self.apply(change, to: &rows, positions: positions)
        }
        self.rows = rows
        self.positions = positions
        self.journalPath = journalPath
        self.journal = handle
    }

    // MARK: The journal

    /// Applies one change: the same code replays the journal and serves the calls.
    @discardableResult
    private static func apply(_ c: Change, to rows: inout [Row], positions: [String: Int]) -> Int {
        var changed = 0
        for (n, id) in c.ids.enumerated() {
            guard let i = positions[id] else { continue }
            switch c.op {
            case "name":
                guard rows[i].status == .unnamed else { continue }
                rows[i].name = c.names?[n]
                rows[i].shard = c.shards?[n]
                rows[i].status = .pending
            case "claim":
                guard rows[i].status == .pending else { continue }
                rows[i].status = .claimed
                rows[i].claimedBy = c.holder
                rows[i].claimedAt = c.at
            case "packed":
                guard rows[i].status == .claimed, c.holder == nil || rows[i].claimedBy == c.holder else { continue }
                rows[i].status = .packed
                rows[i].container = c.container
                rows[i].error = nil
            case "failed":
                guard c.holder == nil || (rows[i].status == .claimed && rows[i].claimedBy == c.holder) else { continue }
                rows[i].status = .failed
                rows[i].error = c.reasons?[n]
            case "packed-from-manifest":  // claim_mode lease: the rows of a recorded container
                guard rows[i].status != .packed, rows[i].status != .unnamed else { continue }
                rows[i].status = .packed
                rows[i].container = c.container
                rows[i].error = nil
            case "failed-from-pending":
                guard rows[i].status == .pending else { continue }
                rows[i].status = .failed
                rows[i].error = c.reasons?[n]
            case "repoint":  // des compact moved the file
                guard rows[i].container == c.names?.first else { continue }
                rows[i].container = c.container
            case "deleted":  // des delete, retention
                guard rows[i].status == .packed || rows[i].status == .sourceDeleted else { continue }
                rows[i].status = .deleted
            case "source-deleted":  // des retire deleted the body
                guard rows[i].status == .packed else { continue }
                rows[i].status = .sourceDeleted
            case "return-to-naming":  // des dlq retry of the marker's failures
                guard rows[i].status == .failed, rows[i].name == nil else { continue }
                rows[i].status = .unnamed
                rows[i].error = nil
            case "return-to-packing":  // des dlq retry of the packer's failures
                guard rows[i].status == .failed, rows[i].name != nil else { continue }
                rows[i].status = .pending
                rows[i].error = nil
                rows[i].claimedBy = nil
                rows[i].claimedAt = nil
            case "release":
                guard rows[i].status == .claimed, c.holder == nil || rows[i].claimedBy == c.holder else { continue }
                rows[i].status = .pending
                rows[i].claimedBy = nil
                rows[i].claimedAt = nil
            default:
                continue
            }
            changed += 1
        }
        return changed
    }

    /// Applies a change and writes it to the journal first, synced to disk.
    private func record(_ change: Change) throws -> Int {
        var line = try JSONEncoder().encode(change)
        line.append(UInt8(ascii: "\n"))
        journal.seekToEndOfFile()
        try journal.write(contentsOf: line)
        try journal.synchronize()
        return Self.apply(change, to: &rows, positions: positions)
    }

    // MARK: SourceConnector

    public func claim(shards: [Int], limit: Int, holder: String) async throws -> [PendingFile] {
        let wanted = Set(shards)
        var picked: [Int] = []
        for (i, row) in rows.enumerated() where picked.count < limit {
            if row.status == .pending, let shard = row.shard, wanted.contains(shard) { picked.append(i) }
        }
        guard !picked.isEmpty else { return [] }
        let ids = picked.map { rows[$0].id }
        _ = try record(Change(op: "claim", ids: ids, holder: holder, at: Date().timeIntervalSince1970))
        return picked.map { pending(rows[$0]) }
    }

    private func pending(_ row: Row) -> PendingFile {
        var file = PendingFile(
            source: name, rowID: row.id, desName: row.name ?? "", shard: row.shard ?? 0, size: row.size,
            body: BodyLocation(bucket: nil, key: row.key), metadata: row.metadata)
        file.claimedBy = row.claimedBy
        return file
    }

    public func markPacked(rowIDs: [String], container: String, holder: String?) async throws -> Int {
        guard !rowIDs.isEmpty else { return 0 }
        return try record(Change(op: "packed", ids: rowIDs, holder: holder, container: container))
    }

    public func markFailed(_ failed: [FailedRow], holder: String?) async throws -> Int {
        guard !failed.isEmpty else { return 0 }
        return try record(Change(op: "failed", ids: failed.map(\.rowID), holder: holder, reasons: failed.map(\.reason)))
    }

    public func returnFailedRows(_ rowIDs: [String], to target: FailedRowTarget) async throws -> Int {
        guard !rowIDs.isEmpty else { return 0 }
        return try record(Change(op: target == .naming ? "return-to-naming" : "return-to-packing", ids: rowIDs))
    }

    public func releaseClaims(rowIDs: [String], holder: String?) async throws -> Int {
        guard !rowIDs.isEmpty else { return 0 }
        return try record(Change(op: "release", ids: rowIDs, holder: holder))
    }

    // MARK: claim_mode lease (optional: without these, the source runs in claim_mode row only)

    public func readPending(shards: [Int], afterRowID: String?, limit: Int) async throws -> [PendingFile] {
        let wanted = Set(shards)
        return rows.filter { row in
            guard row.status == .pending, let shard = row.shard, wanted.contains(shard) else { return false }
            return afterRowID.map { Self.idOrder($0, row.id) } ?? true
        }.sorted { Self.idOrder($0.id, $1.id) }.prefix(max(0, limit)).map(pending)
    }

    public func markPackedUnlessPacked(rowIDs: [String], names: [String], container: String) async throws -> Int {
        // Only rows whose id and DES name both match: an id given to another row marks nothing.
        let (ids, wanted) = (Set(rowIDs), Set(names))
        let matching = rows.filter { row in ids.contains(row.id) && (row.name.map(wanted.contains) ?? false) }.map(\.id)
        guard !matching.isEmpty else { return 0 }
        return try record(Change(op: "packed-from-manifest", ids: matching, container: container))
    }

    public func rowsNamed(_ names: [String]) async throws -> [NamedRow] {
        let wanted = Set(names)
        return rows.compactMap { row in
            guard let name = row.name, wanted.contains(name) else { return nil }
            let state: NamedRow.State
            switch row.status {
            case .pending: state = .pending
            case .claimed: state = .claimed
            case .packed: state = .packed
            case .failed: state = .failed
            case .unnamed, .sourceDeleted, .deleted: state = .other
            }
            return NamedRow(rowID: row.id, desName: name, state: state)
        }
    }

    public func markFailedIfPending(_ failed: [FailedRow]) async throws -> Int {
        guard !failed.isEmpty else { return 0 }
        return try record(Change(op: "failed-from-pending", ids: failed.map(\.rowID), reasons: failed.map(\.reason)))
    }

    public func staleClaims(shards: [Int]?, excludingHolder: String?, olderThanSeconds: Double?) async throws -> [PendingFile] {
        let wanted = shards.map(Set.init)
        let now = Date().timeIntervalSince1970
        return rows.filter { row in
            guard row.status == .claimed, wanted.map({ row.shard.map($0.contains) ?? false }) ?? true else { return false }
            if excludingHolder == nil && olderThanSeconds == nil { return true }
            if let excludingHolder, row.claimedBy != excludingHolder { return true }
            if let olderThanSeconds, (row.claimedAt ?? 0) < now - olderThanSeconds { return true }
            return false
        }.map(pending)
    }

    public func nameRows(limit: Int, assign: @escaping @Sendable ([UnnamedRow]) throws -> [NameAssignment]) async throws -> Int {
        let unnamed = rows.lazy.filter { $0.status == .unnamed }.prefix(limit).map {
            UnnamedRow(rowID: $0.id, key: $0.key, presetName: nil)
        }
        guard !unnamed.isEmpty else { return 0 }
        let names = try assign(Array(unnamed))
        guard !names.isEmpty else { return 0 }
        return try record(Change(op: "name", ids: names.map(\.rowID), names: names.map(\.desName), shards: names.map(\.shard)))
    }

    public func packedRows(afterRowID: String?, limit: Int) async throws -> [PackedRow] {
        let packed = rows.filter { $0.status == .packed || $0.status == .sourceDeleted }.sorted { Self.idOrder($0.id, $1.id) }
        let after = packed.filter { row in afterRowID.map { Self.idOrder($0, row.id) } ?? true }
        return after.prefix(limit).map {
            PackedRow(
                rowID: $0.id, desName: $0.name ?? "", container: $0.container ?? "", body: BodyLocation(bucket: nil, key: $0.key),
                bodyDeleted: $0.status == .sourceDeleted)
        }
    }

    public func repointContainer(from: String, to: String, names: [String]?) async throws -> Int {
        let wanted = names.map(Set.init)
        let ids = rows.filter { row in row.container == from && (wanted.map { row.name.map($0.contains) ?? false } ?? true) }.map(\.id)
        guard !ids.isEmpty else { return 0 }
        return try record(Change(op: "repoint", ids: ids, names: [from], container: to))
    }

    public func markDeleted(names: [String]) async throws -> Int {
        let wanted = Set(names)
        let ids = rows.filter { $0.name.map(wanted.contains) ?? false }.map(\.id)
        guard !ids.isEmpty else { return 0 }
        return try record(Change(op: "deleted", ids: ids))
    }

    public func markSourceDeleted(rowIDs: [String]) async throws -> Int {
        guard !rowIDs.isEmpty else { return 0 }
        return try record(Change(op: "source-deleted", ids: rowIDs))
    }

    public func rowsSharingBodies(keys: [String], excluding rowIDs: Set<String>) async throws -> [String: SharedBody] {
        let wanted = Set(keys)
        var found: [String: SharedBody] = [:]
        for row in rows where wanted.contains(row.key) && !rowIDs.contains(row.id) {
            var shared = found[row.key] ?? SharedBody(neededByUnpacked: false, retiredByAnother: false)
            switch row.status {
            case .sourceDeleted: shared.retiredByAnother = true
            case .packed, .deleted: break
            case .unnamed, .pending, .claimed, .failed: shared.neededByUnpacked = true
            }
            found[row.key] = shared
        }
        return found
    }

    public func bodiesNotYetPacked(afterRowID: String?, limit: Int) async throws -> [RowBody]? {
        let waiting = rows.filter { [.unnamed, .pending, .claimed, .failed].contains($0.status) }.sorted { Self.idOrder($0.id, $1.id) }
        let after = waiting.filter { row in afterRowID.map { Self.idOrder($0, row.id) } ?? true }
        return after.prefix(limit).map { RowBody(rowID: $0.id, body: BodyLocation(bucket: nil, key: $0.key)) }
    }

    public func stats() async throws -> SourceStats {
        var s = SourceStats()
        for row in rows {
            switch row.status {
            case .unnamed: s.unnamed += 1
            case .pending: s.pending += 1
            case .claimed: s.claimed += 1
            case .packed: s.packed += 1
            case .failed: s.failed += 1
            case .sourceDeleted: s.retired += 1
            case .deleted: s.deleted += 1
            }
        }
        return s
    }

    public func healthCheck() async throws {
        guard FileManager.default.fileExists(atPath: journalPath) else {
            throw DESKitError(.unavailable, "source '\(name)': the journal '\(journalPath)' is gone")
        }
    }

    public func close() async { try? journal.close() }

    // MARK: Values

    /// Numeric ids in numeric order, others as text.
    static func idOrder(_ a: String, _ b: String) -> Bool {
        if let x = Int64(a), let y = Int64(b) { return x < y }
        return a < b
    }

}

/// One value of a catalog line.
enum CatalogValue: Decodable {
    case null, bool(Bool), int(Int64), double(Double), text(String), other

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .text(s) }
        else { self = .other }  // a list or an object: not a column value
    }

    /// As an id or key: text, or a number's digits.
    var text: String? {
        switch self {
        case .text(let s): return s
        case .int(let i): return String(i)
        default: return nil
        }
    }

    var json: DESJSONValue {
        switch self {
        case .null, .other: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .text(let s): return .string(s)
        }
    }
}

/// Registers `connection.type: __TYPE__`: `connection.database` is the catalog file (relative
/// to the config file's directory), and the section may say nothing else of its own.
public enum __NAME__Plugin {
    /// The connection type this source answers to.
    public static let type = "__TYPE__"

    /// Adds the source to `registry`.
    public static func register(in registry: PluginRegistry) {
        registry.registerSource(
            type: type, connection: __NAME__Connection.self,
            factory: { context in
                let file = context.source.connection.database ?? ""
                let path = file.hasPrefix("/") ? file : (context.baseDirectory as NSString).appendingPathComponent(file)
                return try __NAME__Source(name: context.source.name, catalogPath: path, table: context.source.table)
            })
    }
}

/// The `connection:` block of a `__TYPE__` source: no keys of its own besides the ones every
/// connection has (so `driver_options` is refused as an unknown key), and `database` required.
/// A source with settings of its own declares them in `keys` and reads them here; the factory
/// then finds the value in `context.source.connection.settings`.
public struct __NAME__Connection: PluginConfiguration {
    public static let keys: [ConfigKey] = []

    public init(from section: ConfigSection) throws {
        if try section.string("database") == nil {
            throw section.error("database", "source type '\(__NAME__Plugin.type)' needs 'database': the catalog file")
        }
    }
}
