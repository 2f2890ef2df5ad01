import CUnixODBC
import DESKit
import Foundation
import Synchronization

/// A connection through unixODBC to any database with an ODBC driver (the driver half of the
/// ODBC plugin; the dialect half is chosen by `connection.dialect`).
///
/// Every ODBC call runs on the connection's own thread, never on Swift's cooperative pool.
/// Statements are prepared and their values bound with their types (`SQLBindParameter`:
/// 64-bit integers, doubles, UTF-16 text, binary), never spliced into SQL; the dialect's
/// numbered placeholders (`$n`, `?n`, `?{n}`) become ODBC's `?` with the values in order.
/// Results are decoded by column type (integers, floating point and decimal, binary, text in
/// UTF-16; NULL). Transactions switch autocommit off and end with `SQLEndTran`. Errors carry
/// the driver's SQLSTATE, native code and message — never the password.
public final class ODBCConnection: SQLConnection, @unchecked Sendable {
    /// How the dialect writes placeholders.
    public enum PlaceholderStyle: Sendable {
        /// `$1` (PostgreSQL).
        case dollar
        /// `?1` (SQLite).
        case questionNumber
        /// `?{1}` (MySQL, MariaDB, SQL Server, Oracle here).
        case braced
    }

    // Handles are touched only on `thread`: that is the synchronisation.
    private let thread = DedicatedThread(name: "des-odbc")
    private var env: SQLHENV?
    private var dbc: SQLHDBC?
    private let broken = Mutex(false)
    private let style: PlaceholderStyle
    private let statementTimeoutSeconds: Int
    /// Where the connection goes (no secrets), for messages.
    public let target: String

    /// Connects with an ODBC connection string (`DRIVER=…;SERVER=…;UID=…;PWD=…`).
    public static func connect(
        connectionString: String, target: String, style: PlaceholderStyle, loginTimeoutSeconds: Int = 10,
        statementTimeoutSeconds: Int = 0
    ) async throws -> ODBCConnection {
        let c = ODBCConnection(target: target, style: style, statementTimeoutSeconds: statementTimeoutSeconds)
        try await c.thread.run { try c.connectOnThread(connectionString, loginTimeout: loginTimeoutSeconds) }
        return c
    }

    private init(target: String, style: PlaceholderStyle, statementTimeoutSeconds: Int) {
        self.target = target
        self.style = style
        self.statementTimeoutSeconds = statementTimeoutSeconds
    }

    deinit {
        if let dbc {
            SQLDisconnect(dbc)
            SQLFreeHandle(SQLSMALLINT(SQL_HANDLE_DBC), dbc)
        }
        if let env { SQLFreeHandle(SQLSMALLINT(SQL_HANDLE_ENV), env) }
        thread.stop()
    }

    private func connectOnThread(_ connectionString: String, loginTimeout: Int) throws {
        var env: SQLHENV?
        guard cdes_succeeded(SQLAllocHandle(SQLSMALLINT(SQL_HANDLE_ENV), nil, &env)) != 0, let env else {
            throw SQLError(code: "HY001", message: "cannot start the ODBC driver manager")
        }
        self.env = env
        _ = cdes_odbc3(env)
        var dbc: SQLHDBC?
        guard cdes_succeeded(SQLAllocHandle(SQLSMALLINT(SQL_HANDLE_DBC), env, &dbc)) != 0, let dbc else {
            throw SQLError(code: "HY001", message: "cannot allocate an ODBC connection")
        }
        _ = cdes_connect_attr(dbc, SQLINTEGER(SQL_ATTR_LOGIN_TIMEOUT), SQLULEN(max(1, loginTimeout)))
        var wide = Self.utf16(connectionString)
        let rc = SQLDriverConnectW(dbc, nil, &wide, SQLSMALLINT(wide.count - 1), nil, 0, nil, SQLUSMALLINT(SQL_DRIVER_NOPROMPT))
        guard cdes_succeeded(rc) != 0 else {
            let diagnostic = Self.diagnostic(SQLSMALLINT(SQL_HANDLE_DBC), dbc)
            SQLFreeHandle(SQLSMALLINT(SQL_HANDLE_DBC), dbc)
            // The driver's words only: the connection string (with its password) is never repeated.
            // A server that is down or restarting may come back; a refused login (28xxx) or a missing
            // driver (IM0xx) will not.
            let state = diagnostic.state
            throw SQLError(
                code: state.isEmpty ? "08001" : state,
                message: "cannot connect through ODBC to \(target): \(Self.scrub(diagnostic.message, connectionString))",
                isTransient: !state.hasPrefix("28") && !state.hasPrefix("IM"))
        }
        self.dbc = dbc
        // READ COMMITTED: claims skip locked rows instead of waiting on (or deadlocking over) gap
        // locks, and SQL Server's READPAST is allowed. A driver that cannot (SQLite's) keeps its own.
        _ = cdes_connect_attr(dbc, SQLINTEGER(SQL_ATTR_TXN_ISOLATION), SQLULEN(SQL_TXN_READ_COMMITTED))
    }

    public var isBroken: Bool { broken.withLock { $0 } }

    public func withSession<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await thread.run { [self] in
            guard let dbc else { throw SQLError(code: "08003", message: "connection is closed") }
            return try body(Session(connection: self, dbc: dbc))
        }
    }

    public func withTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await thread.run { [self] in
            guard let dbc else { throw SQLError(code: "08003", message: "connection is closed") }
            try check(cdes_connect_attr(dbc, SQLINTEGER(SQL_ATTR_AUTOCOMMIT), SQLULEN(SQL_AUTOCOMMIT_OFF)), SQLSMALLINT(SQL_HANDLE_DBC), dbc, "autocommit off")
            defer { _ = cdes_connect_attr(dbc, SQLINTEGER(SQL_ATTR_AUTOCOMMIT), SQLULEN(SQL_AUTOCOMMIT_ON)) }
            do {
                let result = try body(Session(connection: self, dbc: dbc))
                try check(SQLEndTran(SQLSMALLINT(SQL_HANDLE_DBC), dbc, SQLSMALLINT(SQL_COMMIT)), SQLSMALLINT(SQL_HANDLE_DBC), dbc, "COMMIT")
                return result
            } catch {
                _ = SQLEndTran(SQLSMALLINT(SQL_HANDLE_DBC), dbc, SQLSMALLINT(SQL_ROLLBACK))
                throw error
            }
        }
    }

    public func close() async {
        _ = try? await thread.run { [self] in
            if let dbc {
                SQLDisconnect(dbc)
                SQLFreeHandle(SQLSMALLINT(SQL_HANDLE_DBC), dbc)
            }
            if let env { SQLFreeHandle(SQLSMALLINT(SQL_HANDLE_ENV), env) }
            dbc = nil
            env = nil
        }
        thread.stop()
    }

    // MARK: On the connection's thread

    fileprivate func run(_ dbc: SQLHDBC, _ sql: String, _ binds: [SQLValue], maxRows: Int = .max) throws -> ([SQLRow], Int) {
        let (text, values) = try rewrite(sql, binds)
        var stmt: SQLHSTMT?
        try check(SQLAllocHandle(SQLSMALLINT(SQL_HANDLE_STMT), dbc, &stmt), SQLSMALLINT(SQL_HANDLE_DBC), dbc, sql)
        guard let stmt else { throw SQLError(code: "HY001", message: "cannot allocate a statement") }
        defer { SQLFreeHandle(SQLSMALLINT(SQL_HANDLE_STMT), stmt) }
        if statementTimeoutSeconds > 0 {
            _ = cdes_statement_attr(stmt, SQLINTEGER(SQL_ATTR_QUERY_TIMEOUT), SQLULEN(statementTimeoutSeconds))
        }
        var wide = Self.utf16(text)
        try check(SQLPrepareW(stmt, &wide, SQLINTEGER(wide.count - 1)), SQLSMALLINT(SQL_HANDLE_STMT), stmt, sql)
        let params = Parameters(values)
        defer { params.free() }
        for i in 0..<values.count {
            let p = params.slots[i]
            try check(
                SQLBindParameter(
                    stmt, SQLUSMALLINT(i + 1), SQLSMALLINT(SQL_PARAM_INPUT), p.cType, p.sqlType, p.columnSize, 0, p.buffer, p.bufferLength,
                    params.indicators + i), SQLSMALLINT(SQL_HANDLE_STMT), stmt, sql)
        }
        let executed = SQLExecute(stmt)
        // SQL_NO_DATA: a searched UPDATE or DELETE (with or without RETURNING) that matched no row.
        if executed == SQLRETURN(SQL_NO_DATA) { return ([], 0) }
        try check(executed, SQLSMALLINT(SQL_HANDLE_STMT), stmt, sql)
        var columns: SQLSMALLINT = 0
        try check(SQLNumResultCols(stmt, &columns), SQLSMALLINT(SQL_HANDLE_STMT), stmt, sql)
        if columns == 0 {
            var count: SQLLEN = 0
            _ = SQLRowCount(stmt, &count)
            return ([], max(0, Int(count)))
        }
        var kinds: [Kind] = []
        var names: [String] = []
        for c in 1...Int(columns) {
            var name = [SQLWCHAR](repeating: 0, count: 256)
            var nameLength: SQLSMALLINT = 0
            var type: SQLSMALLINT = 0
            var size: SQLULEN = 0
            var digits: SQLSMALLINT = 0
            var nullable: SQLSMALLINT = 0
            try check(
                SQLDescribeColW(stmt, SQLUSMALLINT(c), &name, SQLSMALLINT(name.count), &nameLength, &type, &size, &digits, &nullable),
                SQLSMALLINT(SQL_HANDLE_STMT), stmt, sql)
            names.append(String(decoding: name.prefix(Int(min(nameLength, 255))), as: UTF16.self))
            kinds.append(Self.kind(type, digits: digits))
        }
        var rows: [SQLRow] = []
        while rows.count < maxRows {
            let fetched = SQLFetch(stmt)
            if fetched == SQLRETURN(SQL_NO_DATA) { break }
            try check(fetched, SQLSMALLINT(SQL_HANDLE_STMT), stmt, sql)
            var values: [SQLValue] = []
            values.reserveCapacity(kinds.count)
            for (i, kind) in kinds.enumerated() {
                values.append(try value(stmt, column: i + 1, kind: kind, sql: sql))
            }
            rows.append(SQLRow(columns: names, values: values))
        }
        return (rows, rows.count)
    }

    enum Kind { case integer, decimal, bytes, text }

    static func kind(_ type: SQLSMALLINT, digits: SQLSMALLINT) -> Kind {
        switch Int32(type) {
        case SQL_BIGINT, SQL_INTEGER, SQL_SMALLINT, SQL_TINYINT, SQL_BIT: return .integer
        case SQL_NUMERIC, SQL_DECIMAL: return digits == 0 ? .integer : .decimal  // Oracle's NUMBER(19) is an integer
        case SQL_DOUBLE, SQL_FLOAT, SQL_REAL: return .decimal
        case SQL_BINARY, SQL_VARBINARY, SQL_LONGVARBINARY: return .bytes
        default: return .text
        }
    }

    /// One column of the current row (long values are read in pieces).
    private func value(_ stmt: SQLHSTMT, column: Int, kind: Kind, sql: String) throws -> SQLValue {
        var indicator: SQLLEN = 0
        switch kind {
        case .integer:
            var v: Int64 = 0
            let rc = SQLGetData(stmt, SQLUSMALLINT(column), cdes_SQL_C_SBIGINT, &v, 8, &indicator)
            if cdes_succeeded(rc) == 0 {
                // Out of range for 64 bits (an unbounded NUMERIC): keep its text.
                return try textValue(stmt, column: column, sql: sql)
            }
            return indicator == cdes_SQL_NULL_DATA ? .null : .int(v)
        case .decimal:
            var v: Double = 0
            try check(SQLGetData(stmt, SQLUSMALLINT(column), cdes_SQL_C_DOUBLE, &v, 8, &indicator), SQLSMALLINT(SQL_HANDLE_STMT), stmt, sql)
            return indicator == cdes_SQL_NULL_DATA ? .null : .double(v)
        case .bytes:
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let rc = SQLGetData(stmt, SQLUSMALLINT(column), cdes_SQL_C_BINARY, &chunk, SQLLEN(chunk.count), &indicator)
                if rc == SQLRETURN(SQL_NO_DATA) { break }
                try check(rc, SQLSMALLINT(SQL_HANDLE_STMT), stmt, sql)
                if indicator == cdes_SQL_NULL_DATA { return .null }
                let got = indicator == cdes_SQL_NO_TOTAL || Int(indicator) > chunk.count ? chunk.count : Int(indicator)
                out += chunk[..<got]
                if rc == SQLRETURN(SQL_SUCCESS) { break }
            }
            return .blob(out)
        case .text:
            return try textValue(stmt, column: column, sql: sql)
        }
    }

    private func textValue(_ stmt: SQLHSTMT, column: Int, sql: String) throws -> SQLValue {
        var indicator: SQLLEN = 0
        var out: [SQLWCHAR] = []
        var chunk = [SQLWCHAR](repeating: 0, count: 32_768)
        let bytes = SQLLEN(chunk.count * MemoryLayout<SQLWCHAR>.size)
        while true {
            let rc = SQLGetData(stmt, SQLUSMALLINT(column), cdes_SQL_C_WCHAR, &chunk, bytes, &indicator)
            if rc == SQLRETURN(SQL_NO_DATA) { break }
            try check(rc, SQLSMALLINT(SQL_HANDLE_STMT), stmt, sql)
            if indicator == cdes_SQL_NULL_DATA { return .null }
            // Each piece is NUL-terminated: a full buffer holds count - 1 characters.
            let room = chunk.count - 1
            let got = indicator == cdes_SQL_NO_TOTAL ? room : min(room, Int(indicator) / MemoryLayout<SQLWCHAR>.size)
            out += chunk[..<got]
            if rc == SQLRETURN(SQL_SUCCESS) { break }
        }
        return .text(String(decoding: out, as: UTF16.self))
    }

    private func rewrite(_ sql: String, _ values: [SQLValue]) throws -> (String, [SQLValue]) {
        switch style {
        case .braced: return try NumberedPlaceholders.rewrite(sql, values)
        case .dollar: return try NumberedPlaceholders.rewrite(NumberedPlaceholders.bracing(sql, marker: "$"), values)
        case .questionNumber: return try NumberedPlaceholders.rewrite(NumberedPlaceholders.bracing(sql, marker: "?"), values)
        }
    }

    /// Throws the handle's diagnostic when `rc` is not a success.
    private func check(_ rc: SQLRETURN, _ type: SQLSMALLINT, _ handle: SQLHANDLE, _ sql: String) throws {
        guard cdes_succeeded(rc) == 0 else { return }
        let d = Self.diagnostic(type, handle)
        // Connection failures (08xxx) leave the connection unusable.
        let lost = d.state.hasPrefix("08")
        if lost { broken.withLock { $0 = true } }
        let transient = lost || ["40001", "40P01", "HYT00", "HYT01", "55P03"].contains(d.state) || [1205, 1213].contains(d.native)
        throw SQLError(
            code: d.state.isEmpty ? "HY000" : d.state, message: d.message + (d.native != 0 ? " (native \(d.native))" : ""),
            statement: String(sql.prefix(200)), isTransient: transient)
    }

    struct Diagnostic {
        var state = ""
        var native: Int32 = 0
        var message = "unknown ODBC error"
    }

    static func diagnostic(_ type: SQLSMALLINT, _ handle: SQLHANDLE) -> Diagnostic {
        var d = Diagnostic()
        var state = [SQLWCHAR](repeating: 0, count: 6)
        var native: SQLINTEGER = 0
        var message = [SQLWCHAR](repeating: 0, count: 2048)
        var length: SQLSMALLINT = 0
        let rc = SQLGetDiagRecW(type, handle, 1, &state, &native, &message, SQLSMALLINT(message.count), &length)
        if cdes_succeeded(rc) != 0 {
            d.state = String(decoding: state.prefix(5), as: UTF16.self)
            d.native = native
            d.message = String(decoding: message.prefix(Int(min(Int(length), message.count - 1))), as: UTF16.self)
        }
        return d
    }

    /// A message with anything of the connection string's values that a driver might echo removed.
    static func scrub(_ message: String, _ connectionString: String) -> String {
        var out = message
        for part in connectionString.split(separator: ";") {
            guard let eq = part.firstIndex(of: "="), part[..<eq].uppercased().contains("PWD") || part[..<eq].uppercased().contains("PASSWORD")
            else { continue }
            let value = String(part[part.index(after: eq)...]).trimmingCharacters(in: CharacterSet(charactersIn: "{}"))
            if !value.isEmpty { out = out.replacingOccurrences(of: value, with: "<redacted>") }
        }
        return out
    }

    static func utf16(_ s: String) -> [SQLWCHAR] { Array(s.utf16) + [0] }

    fileprivate struct Session: SQLSession {
        let connection: ODBCConnection
        let dbc: SQLHDBC
        func query(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] { try connection.run(dbc, sql, binds).0 }
        func query(_ sql: String, _ binds: [SQLValue], maxRows: Int) throws -> [SQLRow] { try connection.run(dbc, sql, binds, maxRows: maxRows).0 }
        func execute(_ sql: String, _ binds: [SQLValue]) throws -> Int { try connection.run(dbc, sql, binds).1 }
    }
}

/// The buffers of a statement's bound values (freed by `free()`).
private final class Parameters {
    struct Slot {
        var cType: SQLSMALLINT
        var sqlType: SQLSMALLINT
        var columnSize: SQLULEN
        var buffer: UnsafeMutableRawPointer?
        var bufferLength: SQLLEN
    }
    var slots: [Slot] = []
    let indicators: UnsafeMutablePointer<SQLLEN>
    private let count: Int

    init(_ values: [SQLValue]) {
        count = max(1, values.count)
        indicators = .allocate(capacity: count)
        indicators.initialize(repeating: 0, count: count)
        for (i, value) in values.enumerated() {
            switch value {
            case .null:
                indicators[i] = cdes_SQL_NULL_DATA
                slots.append(Slot(cType: cdes_SQL_C_CHAR, sqlType: SQLSMALLINT(SQL_VARCHAR), columnSize: 1, buffer: nil, bufferLength: 0))
            case .int(let v):
                let p = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                p.storeBytes(of: v, as: Int64.self)
                indicators[i] = 8
                slots.append(Slot(cType: cdes_SQL_C_SBIGINT, sqlType: SQLSMALLINT(SQL_BIGINT), columnSize: 19, buffer: p, bufferLength: 8))
            case .double(let v):
                let p = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                p.storeBytes(of: v, as: Double.self)
                indicators[i] = 8
                slots.append(Slot(cType: cdes_SQL_C_DOUBLE, sqlType: SQLSMALLINT(SQL_DOUBLE), columnSize: 15, buffer: p, bufferLength: 8))
            case .text(let s):
                let units = Array(s.utf16)
                let bytes = units.count * MemoryLayout<SQLWCHAR>.size
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(2, bytes), alignment: 8)
                units.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: bytes) } }
                indicators[i] = SQLLEN(bytes)
                let long = units.count > 4_000
                slots.append(
                    Slot(
                        cType: cdes_SQL_C_WCHAR, sqlType: SQLSMALLINT(long ? SQL_WLONGVARCHAR : SQL_WVARCHAR),
                        columnSize: SQLULEN(max(1, units.count)), buffer: p, bufferLength: SQLLEN(bytes)))
            case .blob(let b):
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, b.count), alignment: 8)
                b.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: b.count) } }
                indicators[i] = SQLLEN(b.count)
                slots.append(
                    Slot(
                        cType: cdes_SQL_C_BINARY, sqlType: SQLSMALLINT(b.count > 8_000 ? SQL_LONGVARBINARY : SQL_VARBINARY),
                        columnSize: SQLULEN(max(1, b.count)), buffer: p, bufferLength: SQLLEN(b.count)))
            }
        }
    }

    func free() {
        for slot in slots { slot.buffer?.deallocate() }
        indicators.deallocate()
    }
}
