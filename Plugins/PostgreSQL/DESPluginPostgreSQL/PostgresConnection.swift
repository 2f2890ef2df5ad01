import CLibPQ
import DESKit
import Foundation

/// A PostgreSQL connection over libpq (the driver half of the plugin).
///
/// Every libpq call runs on the connection's own thread, never on Swift's cooperative pool.
/// Values are always sent as typed parameters (`PQexecParams`), never spliced into SQL;
/// results are decoded by column type (integers, floating point and numeric, booleans,
/// bytea, text; NULL). Errors carry the server's SQLSTATE and message — never the password.
public final class PostgresConnection: SQLConnection, @unchecked Sendable {
    // `handle` is touched only on `thread`: that is the synchronisation.
    private let thread = DedicatedThread(name: "des-postgres")
    private var handle: OpaquePointer?
    private let broken = Mutex(false)
    /// Where the connection goes (host, port, database: no secrets), for messages.
    public let target: String

    /// The connection keywords this libpq knows (`sslmode`, `application_name`, …), asked of libpq.
    public static func libpqKeywords() -> Set<String> {
        guard let defaults = PQconndefaults() else { return [] }
        defer { PQconninfoFree(defaults) }
        var keywords: Set<String> = []
        var option = defaults
        while let keyword = option.pointee.keyword {
            keywords.insert(String(cString: keyword))
            option += 1
        }
        return keywords
    }

    /// Connects with a libpq connection string (`host=… port=… dbname=… user=… password=…`).
    public static func connect(conninfo: String, target: String) async throws -> PostgresConnection {
        let connection = PostgresConnection(target: target)
        try await connection.thread.run { try connection.connectOnThread(conninfo) }
        return connection
    }

    private init(target: String) { self.target = target }

    deinit {
        if let handle { PQfinish(handle) }
        thread.stop()
    }

    private func connectOnThread(_ conninfo: String) throws {
        guard let conn = PQconnectdb(conninfo) else {
            throw SQLError(code: "08001", message: "cannot connect to PostgreSQL at \(target): out of memory", isTransient: true)
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = Self.clean(String(cString: PQerrorMessage(conn)))
            let needsPassword = PQconnectionNeedsPassword(conn) == 1
            PQfinish(conn)
            if let sqlstate = Self.authenticationFailure(message, needsPassword: needsPassword) {
                // Not transient: the same credentials are refused again (and not retried for seconds).
                throw SQLError(code: sqlstate, message: "PostgreSQL at \(target): authentication failed: \(message)", isTransient: false)
            }
            throw SQLError(code: "08001", message: "cannot connect to PostgreSQL at \(target): \(message)", isTransient: true)
        }
        // Server notices (NOTICE, WARNING) are not printed to stderr as libpq would by default.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        handle = conn
    }

    /// The SQLSTATE of a connection the server refused to log in, from libpq's message (libpq
    /// keeps the server's SQLSTATE of a failed connection to itself): 28P01 for a wrong password,
    /// 28000 for another refusal (no password given, no such role, a role that may not log in,
    /// no pg_hba.conf entry, a failed ident, peer, SCRAM or certificate login); nil for anything else.
    static func authenticationFailure(_ message: String, needsPassword: Bool) -> String? {
        let m = message.lowercased()
        if m.contains("password authentication failed") { return "28P01" }
        let refusals = [
            "authentication failed", "no password supplied", "no pg_hba.conf entry", "is not permitted to log in",
            "pg_hba.conf rejects connection",
        ]
        if needsPassword || refusals.contains(where: m.contains) { return "28000" }
        if m.contains("role \"") && m.contains("\" does not exist") { return "28000" }
        return nil
    }

    /// libpq's message with its trailing newline and any echo of the connection string removed.
    static func clean(_ message: String) -> String {
        message.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    }

    public var isBroken: Bool { broken.withLock { $0 } }

    public func withSession<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await thread.run { [self] in
            guard let handle else { throw SQLError(code: "08003", message: "connection is closed") }
            return try body(Session(connection: self, handle: handle))
        }
    }

    public func withTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await thread.run { [self] in
            guard let handle else { throw SQLError(code: "08003", message: "connection is closed") }
            return try Session(connection: self, handle: handle).inTransaction(body)
        }
    }

    public func close() async {
        _ = try? await thread.run { [self] in
            if let handle { PQfinish(handle) }
            handle = nil
        }
        thread.stop()
    }

    // MARK: On the connection's thread

    fileprivate func run(_ handle: OpaquePointer, _ sql: String, _ binds: [SQLValue], maxRows: Int = .max) throws -> ([SQLRow], Int) {
        var types: [Oid] = []
        var texts: [String?] = []
        for value in binds {
            switch value {
            case .null: types.append(0); texts.append(nil)
            case .int(let i): types.append(20); texts.append(String(i))  // int8
            case .double(let d): types.append(701); texts.append(d.isFinite ? String(d) : (d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity")))
            case .text(let s): types.append(25); texts.append(s)  // text
            case .blob(let b): types.append(17); texts.append("\\x" + b.map { String(format: "%02x", $0) }.joined())  // bytea
            }
        }
        let cStrings = texts.map { $0.flatMap { strdup($0) } }
        defer { for p in cStrings { free(p) } }
        var pointers = cStrings.map { UnsafePointer<CChar>($0) }
        let result = pointers.withUnsafeMutableBufferPointer { values in
            types.withUnsafeBufferPointer { oids in
                PQexecParams(handle, sql, Int32(binds.count), oids.baseAddress, values.baseAddress, nil, nil, 0)
            }
        }
        guard let result else {
            broken.withLock { $0 = PQstatus(handle) != CONNECTION_OK }
            throw SQLError(code: "08006", message: Self.clean(String(cString: PQerrorMessage(handle))), statement: String(sql.prefix(200)), isTransient: true)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            throw error(result, handle, sql)
        }
        let changed = Int(String(cString: PQcmdTuples(result))) ?? 0
        guard status == PGRES_TUPLES_OK else { return ([], changed) }
        let rowCount = min(Int(PQntuples(result)), maxRows)
        let columnCount = Int(PQnfields(result))
        let names = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))).lowercased() }
        let oids = (0..<columnCount).map { PQftype(result, Int32($0)) }
        var rows: [SQLRow] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<Int32(rowCount) {
            var values: [SQLValue] = []
            values.reserveCapacity(columnCount)
            for c in 0..<Int32(columnCount) {
                if PQgetisnull(result, r, c) == 1 {
                    values.append(.null)
                    continue
                }
                let length = Int(PQgetlength(result, r, c))
                let raw = PQgetvalue(result, r, c)
                let text = raw.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self) } ?? ""
                values.append(Self.decode(text, oid: oids[Int(c)]))
            }
            rows.append(SQLRow(columns: names, values: values))
        }
        return (rows, changed)
    }

    /// A value in PostgreSQL's text format, by its column's type.
    static func decode(_ text: String, oid: Oid) -> SQLValue {
        switch oid {
        case 20, 21, 23, 26: return Int64(text).map { .int($0) } ?? .text(text)  // int8, int2, int4, oid
        case 700, 701, 1700: return Double(text).map { .double($0) } ?? .text(text)  // float4, float8, numeric
        case 16: return .int(text == "t" ? 1 : 0)  // bool
        case 17:  // bytea, hex format
            guard text.hasPrefix("\\x") else { return .blob(Array(text.utf8)) }
            var bytes: [UInt8] = []
            bytes.reserveCapacity((text.utf8.count - 2) / 2)
            var high: UInt8?
            for c in text.utf8.dropFirst(2) {
                let v: UInt8
                switch c {
                case 0x30...0x39: v = c - 0x30
                case 0x61...0x66: v = c - 0x61 + 10
                case 0x41...0x46: v = c - 0x41 + 10
                default: continue
                }
                if let h = high { bytes.append(h << 4 | v); high = nil } else { high = v }
            }
            return .blob(bytes)
        default: return .text(text)
        }
    }

    private func error(_ result: OpaquePointer, _ handle: OpaquePointer, _ sql: String) -> SQLError {
        func field(_ code: Int32) -> String? { PQresultErrorField(result, code).map { String(cString: $0) } }
        let lost = PQstatus(handle) != CONNECTION_OK
        // A connection the server closed may report no SQLSTATE at all: it is a connection failure.
        let sqlstate = field(Int32(UInt8(ascii: "C"))) ?? (lost ? "08006" : "XX000")
        let message = field(Int32(UInt8(ascii: "M"))) ?? Self.clean(String(cString: PQerrorMessage(handle)))
        if lost { broken.withLock { $0 = true } }
        // Retry may help: a lost connection (on a new one), serialization failure, deadlock, lock not
        // available, connection classes, administrator shutdown, too many connections.
        let transient = lost || sqlstate.hasPrefix("08")
            || ["40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"].contains(sqlstate)
        return SQLError(code: sqlstate, message: message, statement: String(sql.prefix(200)), isTransient: transient)
    }

    fileprivate struct Session: SQLSession {
        let connection: PostgresConnection
        let handle: OpaquePointer
        func query(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] { try connection.run(handle, sql, binds).0 }
        func query(_ sql: String, _ binds: [SQLValue], maxRows: Int) throws -> [SQLRow] {
            try connection.run(handle, sql, binds, maxRows: maxRows).0
        }
        func execute(_ sql: String, _ binds: [SQLValue]) throws -> Int { try connection.run(handle, sql, binds).1 }
    }
}

import Synchronization
