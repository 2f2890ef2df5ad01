import DESKit
import Foundation
import Synchronization

/// A connection that runs nothing: it records every statement and answers queries from a script,
/// so that the exact SQL a dialect emits (through the generic source connector) can be checked
/// for databases that cannot run here.
final class RecordingConnection: SQLConnection, @unchecked Sendable {
    struct Statement: Sendable, Equatable {
        var sql: String
        var binds: [SQLValue]
        var maxRows: Int?
    }

    let statements = Mutex<[Statement]>([])
    /// Rows for a query, by a word its SQL contains (first match wins).
    let answers: [(contains: String, rows: [SQLRow])]

    init(answers: [(contains: String, rows: [SQLRow])] = []) { self.answers = answers }

    struct Session: SQLSession {
        let connection: RecordingConnection
        func record(_ sql: String, _ binds: [SQLValue], _ maxRows: Int?) -> [SQLRow] {
            connection.statements.withLock { $0.append(Statement(sql: sql, binds: binds, maxRows: maxRows)) }
            return connection.answers.first { sql.contains($0.contains) }?.rows ?? []
        }
        func query(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] { record(sql, binds, nil) }
        func query(_ sql: String, _ binds: [SQLValue], maxRows: Int) throws -> [SQLRow] { record(sql, binds, maxRows) }
        func execute(_ sql: String, _ binds: [SQLValue]) throws -> Int { record(sql, binds, nil).count }
    }

    func withSession<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try body(Session(connection: self))
    }

    func withTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try body(Session(connection: self))
    }

    func close() async {}

    /// The catalog table's columns and their types as the database would report them.
    static let defaultTypes: [(String, String)] = [
        ("id", "bigint"), ("body_path", "varchar"), ("size_bytes", "bigint"), ("mime", "varchar"), ("des_status", "varchar"),
        ("des_name", "varchar"), ("des_shard", "int"), ("des_hash", "varchar"), ("des_container", "varchar"),
        ("des_claimed_by", "varchar"), ("des_claimed_at", "float"), ("des_error", "varchar"),
    ]

    /// The answer to `dialect`'s reflection query for a table of `types` (name, type; a type
    /// `nil` leaves the column out), in the rows its catalog returns.
    static func reflection(_ dialect: any SQLDialect, _ types: [(String, String?)]) -> (contains: String, rows: [SQLRow]) {
        let present = types.compactMap { name, type in type.map { (name, $0) } }
        if dialect.name == "oracle" {
            return ("ALL_TAB_COLUMNS", present.map { name, type in
                let number = type.hasPrefix("NUMBER")
                return SQLRow(
                    columns: ["column_name", "data_type", "data_precision", "data_scale", "nullable"],
                    values: [.text(dialect.storedName(name)), .text(number ? "NUMBER" : type), number ? .int(19) : .null, number ? .int(0) : .null, .text("Y")])
            })
        }
        return ("sys.columns", present.map { name, type in
            SQLRow(columns: ["name", "type", "max_length", "precision", "scale", "is_nullable"],
                   values: [.text(name), .text(type), .int(0), .int(0), .int(0), .int(1)])
        })
    }

    /// Runs every statement the source connector sends, over `dialect`, and returns them in order
    /// (the table reflected as `types`, by default ``defaultTypes``).
    static func everyStatement(
        dialect: any SQLDialect, answers: [(contains: String, rows: [SQLRow])], types: [(String, String?)]? = nil,
        statuses: (pending: String, claimed: String, packed: String, failed: String)? = nil
    ) async throws -> [Statement] {
        let catalog = reflection(dialect, types ?? defaultTypes.map { ($0.0, $0.1) })
        let recorder = RecordingConnection(answers: [catalog] + answers)
        var columns = ColumnMapping()
        columns.s3Key = "body_path"
        columns.sizeBytes = "size_bytes"
        columns.desHash = "des_hash"
        columns.metadataColumns = ["mime"]
        var table = TableConfig(name: "files", schema: "dbo", columns: columns)
        if let statuses {
            table.statusPendingValue = statuses.pending
            table.statusClaimedValue = statuses.claimed
            table.statusPackedValue = statuses.packed
            table.statusFailedValue = statuses.failed
        }
        let source = SourceConfig(name: "catalog", connection: ConnectionConfig(type: dialect.name), table: table)
        let pool = SQLConnectionPool(size: 1) { recorder }
        let connector = try SQLSourceConnector(config: source, dialect: dialect, pool: pool)
        _ = try await connector.claim(shards: [0, 1], limit: 1000, holder: "pod-1#a")
        _ = try await connector.nameRows(limit: 500) { rows in
            rows.map { NameAssignment(rowID: $0.rowID, desName: "N" + $0.rowID, hash: "ab", shard: 1) }
        }
        _ = try await connector.markPacked(rowIDs: ["1", "2"], container: "des/2025-01-01/shard_01_c000001.des", holder: "pod-1#a")
        _ = try await connector.releaseClaims(rowIDs: ["3"], holder: "pod-1#a")
        _ = try await connector.markFailed([FailedRow(rowID: "4", reason: "no body")], holder: "pod-1#a")
        _ = try await connector.staleClaims(shards: [0, 1], excludingHolder: "pod-1#a", olderThanSeconds: 600)
        _ = try await connector.packedRows(afterRowID: "10", limit: 100)
        // claim_mode lease: a keyset read and the marks from pending.
        _ = try await connector.readPending(shards: [0, 1], afterRowID: "10", limit: 500)
        _ = try await connector.markPackedUnlessPacked(
            rowIDs: ["5", "6"], names: ["DES_20250101_(5)", "DES_20250101_(6)"], container: "des/2025-01-01/shard_01_c000002.des")
        _ = try await connector.rowsNamed(["DES_20250101_(1)", "DES_20250101_(2)"])
        _ = try await connector.markFailedIfPending([FailedRow(rowID: "7", reason: "no body")])
        _ = try await connector.stats()
        try await connector.healthCheck()
        return recorder.statements.withLock { $0 }
    }
}

/// Parses statements with sqlglot (PyPI) in a dialect, as an independent check of their syntax.
enum SQLGlot {
    /// The statements sqlglot refuses, with its message (empty: all parsed).
    /// Runs python off the cooperative pool: its start takes seconds on a loaded machine, and a
    /// pool thread blocked that long stalls every other test of the process.
    static func refused(_ statements: [String], dialect: String) async throws -> [String] {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<[String], any Error>) in
            DispatchQueue.global().async { c.resume(with: Result { try refusedBlocking(statements, dialect: dialect) }) }
        }
    }

    private static func refusedBlocking(_ statements: [String], dialect: String) throws -> [String] {
        let input = try JSONSerialization.data(withJSONObject: statements)
        let script = """
            import json, sys, sqlglot
            out = []
            for s in json.load(sys.stdin):
                try:
                    sqlglot.parse_one(s, read=sys.argv[1], error_level=sqlglot.ErrorLevel.RAISE)
                except Exception as e:
                    out.append(s + "  <-  " + str(e).splitlines()[0])
            print(json.dumps(out))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, dialect]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        p.standardError = stderr
        try p.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0, let list = try JSONSerialization.jsonObject(with: data) as? [String] else {
            throw DESKitError(.unavailable, "sqlglot did not run (pip install sqlglot; make test does): \(errors)")
        }
        return list
    }
}
