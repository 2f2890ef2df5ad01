import DESFormat
import DESKit
import Foundation

/// A column type of a catalog shape, which each database spells its own way
/// (``CatalogShapesFixture/columnType(_:table:)``).
public enum CatalogColumnType: Sendable, Hashable {
    /// A 64-bit integer key (`bigint`).
    case bigint
    /// A 32-bit integer.
    case integer
    /// Short text (`varchar(64)`, `text`).
    case varchar
    /// Long text.
    case text
    /// A UUID (PostgreSQL `uuid`, MariaDB `UUID`; text where there is none).
    case uuid
    /// An enum of these labels (PostgreSQL `CREATE TYPE … AS ENUM`, MySQL `ENUM(…)`; text where there is none).
    case enumeration([String])
    /// A timestamp with a zone (`timestamptz`; MariaDB `TIMESTAMP(6)`; SQLite `TIMESTAMP`).
    case timestampWithTimeZone
    /// A timestamp without a zone (`timestamp`, `DATETIME(6)`).
    case timestamp
    /// Epoch seconds (`double precision`, `DOUBLE`, `REAL`).
    case epochSeconds
    /// JSON (`jsonb`, `JSON`).
    case json
}

/// One catalog as users have them: its columns (name and type), mapping and status values.
public struct CatalogShape: Sendable {
    /// What the shape is, for reports.
    public var name: String
    /// Columns in table order: name and type. The first is the key.
    public var columns: [(name: String, type: CatalogColumnType)]
    /// The table name (quoted as written, so mixed case survives).
    public var table: String
    /// The column mapping (names as in `columns`).
    public var mapping: ColumnMapping
    /// Status values: pending, claimed, packed, failed (labels or integer codes).
    public var statuses: (pending: String, claimed: String, packed: String, failed: String)
    /// The row ids, as text.
    public var ids: [String]
    /// Per row: the values of the columns after the key, body key and status (same order as
    /// `columns` with those three left out), for inserts.
    public var extra: @Sendable (String) -> [SQLValue]
    /// Checks a claimed file's META (throws ``ConformanceFailure``).
    public var checkMeta: @Sendable (PendingFile) throws -> Void

    /// The table config DES is given for this shape.
    public func tableConfig(schema: String?) -> TableConfig {
        var t = TableConfig(name: table, schema: schema, columns: mapping)
        t.statusPendingValue = statuses.pending
        t.statusClaimedValue = statuses.claimed
        t.statusPackedValue = statuses.packed
        t.statusFailedValue = statuses.failed
        return t
    }
}

/// What a SQL plugin provides to run ``CatalogShapes``: its types, a way to run DDL and inserts,
/// and a connector over a table it made.
public protocol CatalogShapesFixture: Sendable {
    /// The dialect (placeholders and quoting for the kit's DDL and inserts).
    var dialect: any SQLDialect { get }
    /// The schema the tables go in (nil: the connection's default).
    var schema: String? { get }
    /// The database's spelling of `type` for a column of `table` (PostgreSQL names an enum type
    /// after the table and creates it in ``prelude(for:type:)``).
    func columnType(_ type: CatalogColumnType, table: String) -> String
    /// Statements to run before `CREATE TABLE` for a column of `type` (PostgreSQL's `CREATE TYPE`).
    func prelude(for table: String, type: CatalogColumnType) -> [String]
    /// Runs statements with their binds, in order, in one transaction.
    func execute(_ statements: [(sql: String, binds: [SQLValue])]) async throws
    /// A connector (``SQLSourceConnector``) over `table`.
    func makeConnector(table: TableConfig) async throws -> any SourceConnector
}

extension CatalogShapesFixture {
    public func prelude(for table: String, type: CatalogColumnType) -> [String] { [] }
}

/// Catalogs shaped as users have them, not as DES would design them — timestamp claim times, enum
/// and integer statuses, uuid, text and zero-padded string ids, ids near 2^63, a table without the
/// optional DES columns, JSON metadata, mixed-case names — each driven through the protocol the
/// marker and the packer use (name, claim, give back, claim again, mark packed, audit), checking
/// that every row is named, claimed and packed exactly once and that META keeps each value's kind.
public enum CatalogShapes {
    /// Every shape, built for tables whose names start with `prefix`.
    public static func shapes(prefix: String = "des_shape") -> [CatalogShape] {
        let statuses = ("DES_TODO", "DES_CLAIMED", "DES_PACKED", "DES_FAILED")
        var all: [CatalogShape] = []
        func desColumns(claimTime: CatalogColumnType?) -> [(String, CatalogColumnType)] {
            var c: [(String, CatalogColumnType)] = [("des_name", .varchar), ("des_shard", .integer), ("des_claimed_by", .varchar)]
            if let claimTime { c += [("des_claimed_at", claimTime), ("des_container", .text), ("des_error", .text)] }
            return c
        }
        let labels = ["NEW", "DES_TODO", "DES_CLAIMED", "DES_PACKED", "DES_FAILED"]

        // 1. Mixed-case quoted names, an enum status and a timestamptz claim time.
        var mixed = ColumnMapping()
        mixed.id = "FileId"
        mixed.s3Key = "ObjectKey"
        mixed.status = "State"
        mixed.metadataColumns = ["Title"]
        all.append(CatalogShape(
            name: "timestamptz claim time, enum status, mixed-case names",
            columns: [("FileId", .bigint), ("ObjectKey", .varchar), ("State", .enumeration(labels)), ("Title", .varchar)]
                + desColumns(claimTime: .timestampWithTimeZone),
            table: prefix + "_Mixed", mapping: mixed, statuses: statuses, ids: (1...40).map(String.init),
            extra: { id in [.text("title \(id)")] },
            checkMeta: { f in try require(f.metadata["Title"] == .string("title \(f.rowID)"), "meta", "Title of \(f.rowID): \(String(describing: f.metadata["Title"]))") }))

        // 2. Integer status codes and a timestamp (no zone) / DATETIME(6) claim time.
        var coded = ColumnMapping()
        coded.s3Key = "path"
        coded.status = "state"
        all.append(CatalogShape(
            name: "integer status codes, timestamp/datetime(6) claim time",
            columns: [("id", .bigint), ("path", .varchar), ("state", .integer)] + desColumns(claimTime: .timestamp),
            table: prefix + "_coded", mapping: coded, statuses: ("1", "2", "3", "9"), ids: (1...40).map(String.init),
            extra: { _ in [] }, checkMeta: { _ in }))

        // 3. uuid ids.
        var uuids = ColumnMapping()
        uuids.s3Key = "path"
        let uuidIDs = (1...40).map { String(format: "00000000-0000-4000-8000-%012d", $0) }
        all.append(CatalogShape(
            name: "uuid ids",
            columns: [("id", .uuid), ("path", .varchar), ("des_status", .varchar)] + desColumns(claimTime: .epochSeconds),
            table: prefix + "_uuid", mapping: uuids, statuses: statuses, ids: uuidIDs, extra: { _ in [] }, checkMeta: { _ in }))

        // 4. Zero-padded string ids: '7' and '07' are two rows.
        var padded = ColumnMapping()
        padded.s3Key = "path"
        let paddedIDs = (1...100).map(String.init) + (1...100).map { "0\($0)" }
        all.append(CatalogShape(
            name: "zero-padded varchar ids ('7' and '07' in one table)",
            columns: [("id", .varchar), ("path", .varchar), ("des_status", .varchar)] + desColumns(claimTime: .epochSeconds),
            table: prefix + "_padded", mapping: padded, statuses: statuses, ids: paddedIDs, extra: { _ in [] }, checkMeta: { _ in }))

        // 5. bigint ids near 2^63.
        var big = ColumnMapping()
        big.s3Key = "path"
        all.append(CatalogShape(
            name: "bigint ids near 2^63",
            columns: [("id", .bigint), ("path", .varchar), ("des_status", .varchar)] + desColumns(claimTime: .epochSeconds),
            table: prefix + "_big", mapping: big, statuses: statuses, ids: (0..<40).map { String(Int64.max - 39 + $0) },
            extra: { _ in [] }, checkMeta: { _ in }))

        // 6. None of the optional DES columns (no claim time, container or error column).
        var bare = ColumnMapping()
        bare.s3Key = "path"
        all.append(CatalogShape(
            name: "no optional DES columns",
            columns: [("id", .bigint), ("path", .varchar), ("des_status", .varchar)] + desColumns(claimTime: nil),
            table: prefix + "_bare", mapping: bare, statuses: statuses, ids: (1...40).map(String.init), extra: { _ in [] }, checkMeta: { _ in }))

        // 7. JSON metadata and a created_at timestamp copied into META.
        var json = ColumnMapping()
        json.s3Key = "path"
        json.metadataColumns = ["doc"]
        json.createdAt = "created"
        all.append(CatalogShape(
            name: "JSON metadata and created_at",
            columns: [("id", .bigint), ("path", .varchar), ("des_status", .varchar), ("doc", .json), ("created", .timestampWithTimeZone)]
                + desColumns(claimTime: .epochSeconds),
            table: prefix + "_json", mapping: json, statuses: statuses, ids: (1...40).map(String.init),
            extra: { id in [.text("{\"n\":\(id),\"tags\":[\"a\",\"b\"],\"ok\":true}"), .text("2025-01-0\(Int(id)! % 9 + 1) 12:30:00")] },
            checkMeta: { f in
                guard case .object(let doc)? = f.metadata["doc"] else {
                    throw ConformanceFailure(check: "meta", message: "doc of \(f.rowID) is not a JSON object: \(String(describing: f.metadata["doc"]))")
                }
                try require(doc["n"] == .int(Int64(f.rowID)!) && doc["ok"] == .bool(true), "meta", "doc of \(f.rowID): \(doc)")
                let day = Int(f.rowID)! % 9 + 1
                try require(
                    f.metadata["created_at"] == .string("2025-01-0\(day)T12:30:00Z"), "meta",
                    "created_at of \(f.rowID): \(String(describing: f.metadata["created_at"]))")
            }))
        return all
    }

    /// Runs every shape against `fixture`.
    public static func run(fixture: any CatalogShapesFixture, prefix: String = "des_shape") async -> ConformanceReport {
        var runner = CheckRunner()
        for shape in shapes(prefix: prefix) {
            await runner.run(shape.name) { try await check(shape, fixture) }
        }
        return runner.report
    }

    /// Creates the shape's table, fills it and drives it through naming, claims, give-backs and marks.
    static func check(_ shape: CatalogShape, _ fixture: any CatalogShapesFixture) async throws {
        let d = fixture.dialect
        let c = shape.name
        let table = (fixture.schema.map { d.quoteIdentifier($0) + "." } ?? "") + d.quoteIdentifier(shape.table)
        var ddl: [(sql: String, binds: [SQLValue])] = []
        for column in shape.columns {
            ddl += fixture.prelude(for: shape.table, type: column.type).map { ($0, []) }
        }
        let defs = shape.columns.enumerated().map { i, col in
            d.quoteIdentifier(col.name) + " " + fixture.columnType(col.type, table: shape.table) + (i == 0 ? " PRIMARY KEY" : "")
        }
        ddl.append(("CREATE TABLE \(table) (\(defs.joined(separator: ", ")))", []))
        // Inserts: key, body key, status (pending as NULL: rows still to be named), then the extras.
        let extraNames = shape.columns.dropFirst(3).map(\.name).filter { !$0.hasPrefix("des_") }
        let insertColumns = shape.columns.prefix(2).map(\.name) + extraNames
        for id in shape.ids {
            let values: [SQLValue] = [shape.columns[0].type == .bigint ? .int(Int64(id)!) : .text(id), .text("k/\(id)")] + shape.extra(id)
            let placeholders = values.indices.map { i -> String in
                let p = d.placeholder(i + 1)
                guard let type = shape.columns.first(where: { $0.name == insertColumns[i] })?.type else { return p }
                return typedPlaceholder(p, type, fixture.columnType(type, table: shape.table), d)
            }
            ddl.append((
                "INSERT INTO \(table) (\(insertColumns.map(d.quoteIdentifier).joined(separator: ", "))) VALUES (\(placeholders.joined(separator: ", ")))",
                values
            ))
        }
        try await fixture.execute(ddl)
        let source = try await fixture.makeConnector(table: shape.tableConfig(schema: fixture.schema))
        defer { Task { await source.close() } }
        let expected = Set(shape.ids.map { $0.lowercased() })

        // Naming: the name carries the row id, so two rows conflated would show.
        var named = 0
        while true {
            let n = try await source.nameRows(limit: 64) { rows in
                rows.map { NameAssignment(rowID: $0.rowID, desName: "N_" + $0.rowID.lowercased(), hash: "00", shard: Int(UInt(bitPattern: $0.rowID.hashValue) % 4)) }
            }
            if n == 0 { break }
            named += n
        }
        try require(named == shape.ids.count, c, "named \(named) rows of \(shape.ids.count)")
        var stats = try await source.stats()
        try require(stats.pending == shape.ids.count && stats.unnamed == 0, c, "after naming: \(stats)")
        // The backlog gauges: bounded counts by the column's own status values, and the oldest
        // pending row's age by the database's clock (created 2025-01-01 12:30 UTC at the oldest).
        if let backlog = try await source.backlog(cap: 1_000, statuses: [.unnamed, .pending]) {
            try require(backlog.rows[.pending] == shape.ids.count && backlog.rows[.unnamed] == 0, c, "backlog after naming: \(backlog.rows)")
            if shape.mapping.createdAt != nil {
                let expectedAge = Date().timeIntervalSince1970 - 1_735_734_600
                let age = backlog.oldestPendingSeconds ?? -1
                try require(abs(age - expectedAge) < 300, c, "the oldest pending row is \(age) s old, not about \(Int(expectedAge))")
            }
        }

        // Claim everything in two rounds; give half back; claim again.
        let first = try await source.claim(shards: [0, 1, 2, 3], limit: 10_000, holder: "h1")
        let firstIDs = first.map { $0.rowID.lowercased() }
        try require(Set(firstIDs) == expected && firstIDs.count == expected.count, c, "claimed \(firstIDs.count) rows, \(Set(firstIDs).count) distinct, of \(expected.count)")
        for f in first {
            try require(f.desName == "N_" + f.rowID.lowercased(), c, "row \(f.rowID) came back with name \(f.desName)")
            try require(f.body.key == "k/\(f.rowID)" || f.body.key.lowercased() == "k/\(f.rowID.lowercased())", c, "row \(f.rowID) has key \(f.body.key)")
            try shape.checkMeta(f)
        }
        if shape.columns.contains(where: { $0.name == shape.mapping.claimedAt }) {
            // Claim times are database time in the column's own type: claims made just now are not a
            // minute old, and are older than a minute from now (a claim time written in another
            // zone, or compared as text against a number, fails one of the two).
            let old = try await source.staleClaims(shards: nil, excludingHolder: nil, olderThanSeconds: 60)
            try require(old.isEmpty, c, "\(old.count) claims made just now count as a minute old")
            let future = try await source.staleClaims(shards: nil, excludingHolder: nil, olderThanSeconds: -60)
            try require(future.count == expected.count, c, "\(future.count) of \(expected.count) claims are older than a minute from now")
        }
        let half = Array(first.prefix(first.count / 2)).map(\.rowID)
        let released = try await source.releaseClaims(rowIDs: half, holder: "h1")
        try require(released == half.count, c, "gave back \(released) of \(half.count)")
        let notMine = try await source.releaseClaims(rowIDs: Array(first.suffix(3)).map(\.rowID), holder: "someone-else")
        try require(notMine == 0, c, "another holder gave back \(notMine) of h1's claims")
        let second = try await source.claim(shards: [0, 1, 2, 3], limit: 10_000, holder: "h1")
        try require(Set(second.map(\.rowID)) == Set(half), c, "claimed again \(second.count) rows, not the \(half.count) given back")

        // Mark packed: every row once, in one container.
        let packed = try await source.markPacked(rowIDs: first.map(\.rowID), container: "des/c1.des", holder: "h1")
        try require(packed == expected.count, c, "marked \(packed) of \(expected.count) packed")
        let again = try await source.markPacked(rowIDs: first.map(\.rowID), container: "des/c2.des", holder: "h1")
        try require(again == 0, c, "a second mark changed \(again) rows")
        stats = try await source.stats()
        try require(stats.packed == expected.count && stats.pending == 0 && stats.claimed == 0, c, "after marking: \(stats)")
        var audited: [String] = []
        var after: String?
        while true {
            let page = try await source.packedRows(afterRowID: after, limit: 50)
            if page.isEmpty { break }
            for row in page {
                try require(row.desName == "N_" + row.rowID.lowercased(), c, "packed row \(row.rowID) has name \(row.desName)")
                if shape.columns.contains(where: { $0.name == shape.mapping.desContainer }) {
                    try require(row.container == "des/c1.des", c, "packed row \(row.rowID) records container \(row.container)")
                }
            }
            audited += page.map { $0.rowID.lowercased() }
            after = page.last?.rowID
        }
        try require(audited.count == expected.count && Set(audited) == expected, c, "the audit read \(audited.count) packed rows of \(expected.count)")
    }

    /// A placeholder for text inserted into a column of `type`: PostgreSQL takes text for uuid,
    /// json and timestamps only with a cast (the kit's own inserts; DES casts by reflection).
    static func typedPlaceholder(_ placeholder: String, _ type: CatalogColumnType, _ spelled: String, _ d: any SQLDialect) -> String {
        switch type {
        case .bigint, .integer, .varchar, .text, .epochSeconds: return placeholder
        default: return d.name == "postgresql" ? "CAST(\(placeholder) AS \(spelled))" : placeholder
        }
    }
}
