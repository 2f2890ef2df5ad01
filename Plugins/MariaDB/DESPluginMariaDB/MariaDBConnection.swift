import CMariaDB
import DESKit
import Foundation
import Synchronization

/// A MySQL or MariaDB connection over MariaDB Connector/C (the driver half of the plugin).
///
/// Every client call runs on the connection's own thread, never on Swift's cooperative pool.
/// Statements with values are prepared and the values bound (`mysql_stmt_bind_param`), never
/// spliced into SQL; results are decoded by column type (integers, floating point and decimal,
/// binary strings as bytes, text; NULL). The session uses `utf8mb4` unless `charset` says
/// otherwise, `READ COMMITTED` (claims skip locked rows instead of waiting on gap locks), and
/// reports matched rows as changed (`CLIENT_FOUND_ROWS`, as PostgreSQL and SQLite do). Errors
/// carry the server's SQLSTATE, error number and message — never the password.
public final class MariaDBConnection: SQLConnection, @unchecked Sendable {
    /// How to reach the server.
    public struct Settings: Sendable {
        public var host: String = "127.0.0.1"
        public var port: Int = 3306
        public var user: String?
        public var password: String?
        public var database: String?
        public var unixSocket: String?
        public var charset: String = "utf8mb4"
        public var connectTimeoutSeconds: Int = 10
        /// Longest wait for the server's answer to one statement, in seconds (0: none).
        public var readTimeoutSeconds: Int = 0
        public var writeTimeoutSeconds: Int = 0
        /// `max_statement_time` of the session, in seconds (0: none; MariaDB only).
        public var statementTimeoutSeconds: Double = 0
        /// Whether TLS must verify the server's certificate (`driver_options.ssl_verify_cert`); nil: the library's default.
        public var verifyServerCertificate: Bool?
        /// Creates default settings.
        public init() {}
    }

    // `handle` is touched only on `thread`: that is the synchronisation.
    private let thread = DedicatedThread(name: "des-mariadb")
    private var handle: UnsafeMutablePointer<MYSQL>?
    private let broken = Mutex(false)
    /// Where the connection goes (host, port, database: no secrets), for messages.
    public let target: String

    private static let libraryReady: Bool = { mysql_server_init(0, nil, nil) == 0 }()

    /// Connects.
    public static func connect(_ settings: Settings, target: String) async throws -> MariaDBConnection {
        let connection = MariaDBConnection(target: target)
        try await connection.thread.run { try connection.connectOnThread(settings) }
        return connection
    }

    private init(target: String) { self.target = target }

    deinit {
        if let handle { mysql_close(handle) }
        thread.stop()
    }

    private func connectOnThread(_ s: Settings) throws {
        guard Self.libraryReady, let mysql = mysql_init(nil) else {
            throw SQLError(code: "HY001", message: "cannot start the MariaDB client library", isTransient: false)
        }
        var timeout = UInt32(max(1, s.connectTimeoutSeconds))
        mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout)
        if s.readTimeoutSeconds > 0 {
            var t = UInt32(s.readTimeoutSeconds)
            mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &t)
        }
        if s.writeTimeoutSeconds > 0 {
            var t = UInt32(s.writeTimeoutSeconds)
            mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &t)
        }
        _ = s.charset.withCString { mysql_options(mysql, MYSQL_SET_CHARSET_NAME, $0) }
        if let verify = s.verifyServerCertificate {
            var flag: my_bool = verify ? 1 : 0
            mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &flag)
        }
        let flags = UInt(CLIENT_FOUND_ROWS)
        let connected = mysql_real_connect(
            mysql, s.host, s.user, s.password, s.database, UInt32(s.port), s.unixSocket, flags)
        guard connected != nil else {
            let (code, message) = (mysql_errno(mysql), String(cString: mysql_error(mysql)))
            mysql_close(mysql)
            if Self.authenticationErrors.contains(code) {
                // Not transient: the same credentials are refused again.
                throw SQLError(
                    code: "28000", message: "MariaDB/MySQL at \(target): authentication failed: \(message) (error \(code))", isTransient: false)
            }
            throw SQLError(
                code: "08001", message: "cannot connect to MariaDB/MySQL at \(target): \(message) (\(code))", isTransient: true)
        }
        handle = mysql
        // UTC sessions: TIMESTAMP columns read and written in UTC, so META gets UTC times.
        var setup = ["SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", "SET time_zone = '+00:00'"]
        if s.statementTimeoutSeconds > 0 { setup.append("SET SESSION max_statement_time = \(s.statementTimeoutSeconds)") }
        for statement in setup { _ = try textQuery(mysql, statement) }
    }

    /// Connection errors that are a refused login: access denied (1045; 1698 without a password),
    /// an authentication method the client cannot use (1251, 2059, 2061).
    static let authenticationErrors: Set<UInt32> = [1045, 1698, 1251, 2059, 2061]

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
            return try Session(connection: self, handle: handle).inTransaction(begin: "START TRANSACTION", body)
        }
    }

    public func close() async {
        _ = try? await thread.run { [self] in
            if let handle { mysql_close(handle) }
            handle = nil
        }
        thread.stop()
    }

    // MARK: On the connection's thread

    /// A statement without values, over the text protocol.
    fileprivate func textQuery(_ mysql: UnsafeMutablePointer<MYSQL>, _ sql: String, maxRows: Int = .max) throws -> ([SQLRow], Int) {
        let status = sql.withCString { mysql_real_query(mysql, $0, UInt(strlen($0))) }
        guard status == 0 else { throw error(mysql, sql) }
        guard let result = mysql_store_result(mysql) else {
            if mysql_field_count(mysql) > 0 { throw error(mysql, sql) }
            return ([], Int(clamping: mysql_affected_rows(mysql)))
        }
        defer { mysql_free_result(result) }
        let columns = Int(mysql_num_fields(result))
        let fields = Self.fields(mysql_fetch_fields(result), count: columns)
        var rows: [SQLRow] = []
        while rows.count < maxRows, let row = mysql_fetch_row(result) {
            guard let lengths = mysql_fetch_lengths(result) else { break }
            var values: [SQLValue] = []
            values.reserveCapacity(columns)
            for c in 0..<columns {
                guard let cell = row[c] else {
                    values.append(.null)
                    continue
                }
                values.append(Self.decode(UnsafeRawBufferPointer(start: cell, count: Int(lengths[c])), fields[c].kind))
            }
            rows.append(SQLRow(columns: fields.map(\.name), values: values))
        }
        return (rows, rows.count)
    }

    /// A statement with values: prepared, values bound, results bound as text and decoded by type.
    fileprivate func prepared(_ mysql: UnsafeMutablePointer<MYSQL>, _ sql: String, _ binds: [SQLValue], maxRows: Int = .max) throws
        -> ([SQLRow], Int)
    {
        guard let stmt = mysql_stmt_init(mysql) else { throw error(mysql, sql) }
        defer { mysql_stmt_close(stmt) }
        let prepared = sql.withCString { mysql_stmt_prepare(stmt, $0, UInt(strlen($0))) }
        guard prepared == 0 else { throw statementError(stmt, mysql, sql) }
        guard Int(mysql_stmt_param_count(stmt)) == binds.count else {
            throw SQLError(
                code: "07001", message: "statement has \(mysql_stmt_param_count(stmt)) placeholders, \(binds.count) values given",
                statement: String(sql.prefix(200)))
        }
        let params = ParameterBuffers(binds)
        defer { params.free() }
        if !binds.isEmpty, mysql_stmt_bind_param(stmt, params.binds) != 0 { throw statementError(stmt, mysql, sql) }
        guard mysql_stmt_execute(stmt) == 0 else { throw statementError(stmt, mysql, sql) }
        guard let meta = mysql_stmt_result_metadata(stmt) else {
            return ([], Int(clamping: mysql_stmt_affected_rows(stmt)))
        }
        defer { mysql_free_result(meta) }
        var update: my_bool = 1
        mysql_stmt_attr_set(stmt, STMT_ATTR_UPDATE_MAX_LENGTH, &update)
        guard mysql_stmt_store_result(stmt) == 0 else { throw statementError(stmt, mysql, sql) }
        let columns = Int(mysql_num_fields(meta))
        let fields = Self.fields(mysql_fetch_fields(meta), count: columns)
        let results = ResultBuffers(fields: fields)
        defer { results.free() }
        guard mysql_stmt_bind_result(stmt, results.binds) == 0 else { throw statementError(stmt, mysql, sql) }
        var rows: [SQLRow] = []
        while rows.count < maxRows {
            let status = mysql_stmt_fetch(stmt)
            if status == MYSQL_NO_DATA { break }
            guard status == 0 || status == MYSQL_DATA_TRUNCATED else { throw statementError(stmt, mysql, sql) }
            var values: [SQLValue] = []
            values.reserveCapacity(columns)
            for c in 0..<columns {
                if results.isNull[c] != 0 {
                    values.append(.null)
                    continue
                }
                let length = Int(results.lengths[c])
                if length > results.capacity[c] {
                    // Longer than max_length promised: fetch the column again into a buffer of its size.
                    let buffer = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 8)
                    defer { buffer.deallocate() }
                    let got = UnsafeMutablePointer<UInt>.allocate(capacity: 1)
                    defer { got.deallocate() }
                    var column = MYSQL_BIND()
                    column.buffer_type = MYSQL_TYPE_STRING
                    column.buffer = buffer
                    column.buffer_length = UInt(length)
                    column.length = got
                    guard mysql_stmt_fetch_column(stmt, &column, UInt32(c), 0) == 0 else { throw statementError(stmt, mysql, sql) }
                    values.append(Self.decode(UnsafeRawBufferPointer(start: buffer, count: length), fields[c].kind))
                } else {
                    values.append(Self.decode(UnsafeRawBufferPointer(start: results.buffers[c], count: length), fields[c].kind))
                }
            }
            rows.append(SQLRow(columns: fields.map(\.name), values: values))
        }
        return (rows, rows.count)
    }

    /// How a column's values are decoded.
    enum Kind { case integer, decimal, bytes, text }

    struct Field {
        let name: String
        let kind: Kind
        let maxLength: Int
    }

    static func fields(_ pointer: UnsafeMutablePointer<MYSQL_FIELD>?, count: Int) -> [Field] {
        guard let pointer else { return [] }
        return (0..<count).map { i in
            let f = pointer[i]
            let kind: Kind
            switch f.type {
            case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_INT24, MYSQL_TYPE_YEAR:
                kind = .integer
            case MYSQL_TYPE_FLOAT, MYSQL_TYPE_DOUBLE, MYSQL_TYPE_DECIMAL, MYSQL_TYPE_NEWDECIMAL:
                kind = .decimal
            case MYSQL_TYPE_BIT, MYSQL_TYPE_GEOMETRY:
                kind = .bytes
            case MYSQL_TYPE_BLOB, MYSQL_TYPE_TINY_BLOB, MYSQL_TYPE_MEDIUM_BLOB, MYSQL_TYPE_LONG_BLOB, MYSQL_TYPE_STRING,
                MYSQL_TYPE_VAR_STRING, MYSQL_TYPE_VARCHAR:
                kind = f.charsetnr == 63 ? .bytes : .text  // 63: the binary "character set"
            default:
                kind = .text  // dates and times as the server writes them
            }
            return Field(name: f.name.map { String(cString: $0) } ?? "", kind: kind, maxLength: Int(f.max_length))
        }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, _ kind: Kind) -> SQLValue {
        switch kind {
        case .bytes: return .blob(Array(bytes))
        case .integer:
            let text = String(decoding: bytes, as: UTF8.self)
            return Int64(text).map { .int($0) } ?? (UInt64(text).map { .int(Int64(bitPattern: $0)) } ?? .text(text))
        case .decimal:
            let text = String(decoding: bytes, as: UTF8.self)
            return Double(text).map { .double($0) } ?? .text(text)
        case .text: return .text(String(decoding: bytes, as: UTF8.self))
        }
    }

    private func error(_ mysql: UnsafeMutablePointer<MYSQL>, _ sql: String) -> SQLError {
        classify(
            number: mysql_errno(mysql), sqlstate: String(cString: mysql_sqlstate(mysql)), message: String(cString: mysql_error(mysql)),
            sql: sql)
    }

    private func statementError(_ stmt: UnsafeMutablePointer<MYSQL_STMT>, _ mysql: UnsafeMutablePointer<MYSQL>, _ sql: String) -> SQLError {
        let number = mysql_stmt_errno(stmt)
        guard number != 0 else { return error(mysql, sql) }
        return classify(
            number: number, sqlstate: String(cString: mysql_stmt_sqlstate(stmt)), message: String(cString: mysql_stmt_error(stmt)),
            sql: sql)
    }

    /// Server gone (2006), lost during a query (2013, 2055), connection killed (1927): the
    /// connection is broken. Those, can't connect (2002, 2003), too many connections (1040),
    /// shutdown in progress (1053), lock wait timeout (1205) and deadlock (1213) may pass.
    private func classify(number: UInt32, sqlstate: String, message: String, sql: String) -> SQLError {
        let lost: Set<UInt32> = [2006, 2013, 2055, 1927]
        if lost.contains(number) { broken.withLock { $0 = true } }
        let transient = lost.contains(number) || [2002, 2003, 1040, 1053, 1205, 1213].contains(number)
        return SQLError(
            code: sqlstate.isEmpty || sqlstate == "HY000" ? "\(sqlstate.isEmpty ? "HY000" : sqlstate)/\(number)" : sqlstate,
            message: "\(message) (error \(number))", statement: String(sql.prefix(200)), isTransient: transient)
    }

    fileprivate struct Session: SQLSession {
        let connection: MariaDBConnection
        let handle: UnsafeMutablePointer<MYSQL>
        func run(_ sql: String, _ binds: [SQLValue], maxRows: Int = .max) throws -> ([SQLRow], Int) {
            let (text, values) = try NumberedPlaceholders.rewrite(sql, binds)
            return values.isEmpty
                ? try connection.textQuery(handle, text, maxRows: maxRows) : try connection.prepared(handle, text, values, maxRows: maxRows)
        }
        func query(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] { try run(sql, binds).0 }
        func query(_ sql: String, _ binds: [SQLValue], maxRows: Int) throws -> [SQLRow] { try run(sql, binds, maxRows: maxRows).0 }
        func execute(_ sql: String, _ binds: [SQLValue]) throws -> Int { try run(sql, binds).1 }
    }
}

/// The `MYSQL_BIND`s of a statement's values and the memory they point to (freed by `free()`).
private final class ParameterBuffers {
    let binds: UnsafeMutablePointer<MYSQL_BIND>
    private var owned: [UnsafeMutableRawPointer] = []
    private let count: Int

    init(_ values: [SQLValue]) {
        count = max(1, values.count)
        binds = .allocate(capacity: count)
        binds.initialize(repeating: MYSQL_BIND(), count: count)
        for (i, value) in values.enumerated() {
            switch value {
            case .null:
                binds[i].buffer_type = MYSQL_TYPE_NULL
            case .int(let v):
                let p = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                p.storeBytes(of: v, as: Int64.self)
                owned.append(p)
                binds[i].buffer_type = MYSQL_TYPE_LONGLONG
                binds[i].buffer = p
            case .double(let v):
                let p = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                p.storeBytes(of: v, as: Double.self)
                owned.append(p)
                binds[i].buffer_type = MYSQL_TYPE_DOUBLE
                binds[i].buffer = p
            case .text(let s):
                set(i, bytes: Array(s.utf8), type: MYSQL_TYPE_STRING)
            case .blob(let b):
                set(i, bytes: b, type: MYSQL_TYPE_BLOB)
            }
        }
    }

    private func set(_ i: Int, bytes: [UInt8], type: enum_field_types) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
        bytes.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: bytes.count) } }
        owned.append(p)
        binds[i].buffer_type = type
        binds[i].buffer = p
        binds[i].buffer_length = UInt(bytes.count)
        binds[i].length_value = UInt(bytes.count)  // used when `length` is not set
    }

    func free() {
        for p in owned { p.deallocate() }
        binds.deinitialize(count: count)
        binds.deallocate()
    }
}

/// The `MYSQL_BIND`s results are fetched into: every column as text of its longest value's size.
private final class ResultBuffers {
    let binds: UnsafeMutablePointer<MYSQL_BIND>
    let buffers: [UnsafeMutableRawPointer]
    let capacity: [Int]
    let lengths: UnsafeMutablePointer<UInt>
    let isNull: UnsafeMutablePointer<my_bool>
    let errors: UnsafeMutablePointer<my_bool>
    private let count: Int

    init(fields: [MariaDBConnection.Field]) {
        count = max(1, fields.count)
        binds = .allocate(capacity: count)
        binds.initialize(repeating: MYSQL_BIND(), count: count)
        lengths = .allocate(capacity: count)
        lengths.initialize(repeating: 0, count: count)
        isNull = .allocate(capacity: count)
        isNull.initialize(repeating: 0, count: count)
        errors = .allocate(capacity: count)
        errors.initialize(repeating: 0, count: count)
        var buffers: [UnsafeMutableRawPointer] = []
        var capacity: [Int] = []
        for (i, field) in fields.enumerated() {
            let size = max(field.maxLength, 64) + 1
            let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
            buffers.append(p)
            capacity.append(size)
            binds[i].buffer_type = MYSQL_TYPE_STRING
            binds[i].buffer = p
            binds[i].buffer_length = UInt(size)
            binds[i].length = lengths + i
            binds[i].is_null = isNull + i
            binds[i].error = errors + i
        }
        self.buffers = buffers
        self.capacity = capacity
    }

    func free() {
        for p in buffers { p.deallocate() }
        binds.deinitialize(count: count)
        binds.deallocate()
        lengths.deallocate()
        isNull.deallocate()
        errors.deallocate()
    }
}
