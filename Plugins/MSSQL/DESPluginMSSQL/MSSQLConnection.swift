import CFreeTDS
import DESKit
import Foundation
import Synchronization

/// A SQL Server connection over FreeTDS db-lib (the driver half of the `mssql` plugin).
///
/// db-lib has no bound parameters of its own: a statement with values is sent as the RPC
/// `sp_executesql` with its values as typed RPC parameters (`@P1 BIGINT`, `@P2 NVARCHAR(MAX)`, …),
/// never spliced into the SQL text; the dialect's `?{n}` placeholders become `@Pn`. Every
/// db-lib call runs on the connection's own thread. Results are decoded by column type
/// (integers, floating point, decimal and money, binary, text; NULL). Errors carry the server's
/// message number and text, or db-lib's — never the password.
///
/// Not verified against a live server here (none can run on this machine): the statements it
/// sends are checked exactly and parsed as T-SQL by the tests, and a refused connection is.
public final class MSSQLConnection: SQLConnection, @unchecked Sendable {
    /// How to reach the server.
    public struct Settings: Sendable {
        public var host: String = "127.0.0.1"
        public var port: Int = 1433
        public var user: String?
        public var password: String?
        public var database: String?
        public var loginTimeoutSeconds: Int = 10
        /// Longest wait for one statement's answer, in seconds (0: none).
        public var statementTimeoutSeconds: Int = 0
        /// The client character set FreeTDS converts to (`driver_options.charset`; default UTF-8).
        public var charset: String = "UTF-8"
        /// The TDS protocol's minor version, 7.1 to 7.4 (`driver_options.tds_version`; default 7.4).
        public var tdsMinorVersion: Int = 4
        /// Creates default settings.
        public init() {}
    }

    private let thread = DedicatedThread(name: "des-mssql")
    // Touched only on `thread`.
    private var process: OpaquePointer?
    private let broken = Mutex(false)
    /// Where the connection goes (no secrets), for messages.
    public let target: String

    /// db-lib is initialised once per process, with handlers that keep the last message of the
    /// calling thread (each connection has its own) instead of printing it.
    private static let ready: Bool = {
        guard dbinit() == cdes_SUCCEED else { return false }
        _ = dberrhandle { _, severity, dberr, _, text, _ in
            MSSQLConnection.note(severity: Int(severity), number: Int(dberr), text.map { String(cString: $0) } ?? "db-lib error")
            return cdes_INT_CANCEL
        }
        _ = dbmsghandle { _, number, _, severity, text, _, _, _ in
            // Severity 10 and below are informational (database changed, language set).
            if severity > 10 { MSSQLConnection.note(severity: Int(severity), number: Int(number), text.map { String(cString: $0) } ?? "") }
            return 0
        }
        return true
    }()

    private static let lastKey = "des.mssql.last-error"

    private static func note(severity: Int, number: Int, _ text: String) {
        Thread.current.threadDictionary[lastKey] = "\(text) (\(number), severity \(severity))"
    }

    private static func takeLast() -> String? {
        defer { Thread.current.threadDictionary.removeObject(forKey: lastKey) }
        return Thread.current.threadDictionary[lastKey] as? String
    }

    /// Connects.
    public static func connect(_ settings: Settings, target: String) async throws -> MSSQLConnection {
        let c = MSSQLConnection(target: target)
        try await c.thread.run { try c.connectOnThread(settings) }
        return c
    }

    private init(target: String) { self.target = target }

    deinit {
        if let process { dbclose(process) }
        thread.stop()
    }

    private func connectOnThread(_ s: Settings) throws {
        guard Self.ready, let login = dblogin() else {
            throw SQLError(code: "HY001", message: "cannot start FreeTDS db-lib")
        }
        defer { dbloginfree(login) }
        _ = Self.takeLast()
        if let user = s.user { dbsetlname(login, user, DBSETUSER) }
        if let password = s.password { dbsetlname(login, password, DBSETPWD) }
        dbsetlname(login, "des", DBSETAPP)
        dbsetlname(login, s.charset, DBSETCHARSET)
        if let database = s.database { dbsetlname(login, database, DBSETDBNAME) }
        _ = cdes_set_version_7x(login, Int32(s.tdsMinorVersion))
        dbsetlogintime(Int32(max(1, s.loginTimeoutSeconds)))
        if s.statementTimeoutSeconds > 0 { dbsettime(Int32(s.statementTimeoutSeconds)) }
        guard let dbproc = cdes_dbopen(login, "\(s.host):\(s.port)") else {
            let why = Self.takeLast() ?? "no answer"
            throw SQLError(code: "08001", message: "cannot connect to SQL Server at \(target): \(why)", isTransient: true)
        }
        process = dbproc
    }

    public var isBroken: Bool { broken.withLock { $0 } }

    public func withSession<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await thread.run { [self] in
            guard let process else { throw SQLError(code: "08003", message: "connection is closed") }
            return try body(Session(connection: self, process: process))
        }
    }

    public func withTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await thread.run { [self] in
            guard let process else { throw SQLError(code: "08003", message: "connection is closed") }
            return try Session(connection: self, process: process).inTransaction(begin: "BEGIN TRANSACTION", body)
        }
    }

    public func close() async {
        _ = try? await thread.run { [self] in
            if let process { dbclose(process) }
            process = nil
        }
        thread.stop()
    }

    // MARK: On the connection's thread

    /// The RPC's parameter declaration and the text with `?{n}` as `@Pn`.
    static func rpc(_ sql: String, _ values: [SQLValue]) throws -> (text: String, declaration: String) {
        let text = try NumberedPlaceholders.replacing(sql, valueCount: values.count) { "@P\($0)" }
        let declaration = values.enumerated().map { i, v -> String in
            let type: String
            switch v {
            case .int: type = "BIGINT"
            case .double: type = "FLOAT"
            case .blob: type = "VARBINARY(MAX)"
            case .text, .null: type = "NVARCHAR(MAX)"
            }
            return "@P\(i + 1) \(type)"
        }.joined(separator: ", ")
        return (text, declaration)
    }

    fileprivate func run(_ dbproc: OpaquePointer, _ sql: String, _ values: [SQLValue], maxRows: Int = .max) throws -> ([SQLRow], Int) {
        _ = Self.takeLast()
        if values.isEmpty {
            guard dbcmd(dbproc, sql) == cdes_SUCCEED, dbsqlexec(dbproc) == cdes_SUCCEED else { throw failure(dbproc, sql) }
        } else {
            let (text, declaration) = try Self.rpc(sql, values)
            guard dbrpcinit(dbproc, "sp_executesql", 0) == cdes_SUCCEED else { throw failure(dbproc, sql) }
            var keep: [[UInt8]] = []
            func param(_ name: String?, _ type: Int32, _ bytes: [UInt8]?) throws {
                keep.append(bytes ?? [])
                let ok = keep[keep.count - 1].withUnsafeMutableBufferPointer { buffer -> Bool in
                    let length = bytes == nil ? 0 : Int32(buffer.count)
                    return dbrpcparam(dbproc, name, 0, type, -1, length, buffer.baseAddress) == cdes_SUCCEED
                }
                if !ok { throw failure(dbproc, sql) }
            }
            try param(nil, Int32(SYBVARCHAR), Array(text.utf8))
            try param(nil, Int32(SYBVARCHAR), Array(declaration.utf8))
            for (i, v) in values.enumerated() {
                let name = "@P\(i + 1)"
                switch v {
                case .null: try param(name, Int32(SYBVARCHAR), nil)
                case .int(let x): try param(name, Int32(SYBINT8), withUnsafeBytes(of: x.littleEndian) { Array($0) })
                case .double(let x): try param(name, Int32(SYBFLT8), withUnsafeBytes(of: x) { Array($0) })
                case .text(let s): try param(name, Int32(SYBVARCHAR), Array(s.utf8))
                case .blob(let b): try param(name, Int32(SYBVARBINARY), b)
                }
            }
            guard dbrpcsend(dbproc) == cdes_SUCCEED, dbsqlok(dbproc) == cdes_SUCCEED else { throw failure(dbproc, sql) }
        }
        var rows: [SQLRow] = []
        var changed = 0
        while true {
            let status = dbresults(dbproc)
            if status == NO_MORE_RESULTS { break }
            guard status == cdes_SUCCEED else { throw failure(dbproc, sql) }
            let columns = Int(dbnumcols(dbproc))
            let names = (0..<columns).map { dbcolname(dbproc, Int32($0 + 1)).map { String(cString: $0) } ?? "" }
            while true {
                let next = dbnextrow(dbproc)
                if next == NO_MORE_ROWS { break }
                guard next == REG_ROW else {
                    if next == cdes_FAIL { throw failure(dbproc, sql) }
                    continue  // a compute row: not used by DES
                }
                if rows.count < maxRows {
                    rows.append(SQLRow(columns: names, values: (0..<columns).map { value(dbproc, column: Int32($0 + 1)) }))
                }
            }
            let count = Int(dbcount(dbproc))
            if count > 0 { changed += count }
        }
        return (rows, rows.isEmpty ? changed : rows.count)
    }

    private func value(_ dbproc: OpaquePointer, column: Int32) -> SQLValue {
        let length = Int(dbdatlen(dbproc, column))
        guard let data = dbdata(dbproc, column) else { return .null }
        let type = dbcoltype(dbproc, column)
        let bytes = UnsafeRawBufferPointer(start: data, count: length)
        switch type {
        case Int32(SYBINT1): return .int(Int64(bytes.load(as: UInt8.self)))
        case Int32(SYBINT2): return .int(Int64(bytes.loadUnaligned(as: Int16.self)))
        case Int32(SYBINT4): return .int(Int64(bytes.loadUnaligned(as: Int32.self)))
        case Int32(SYBINT8): return .int(bytes.loadUnaligned(as: Int64.self))
        case Int32(SYBBIT): return .int(Int64(bytes.load(as: UInt8.self)))
        case Int32(SYBFLT8): return .double(bytes.loadUnaligned(as: Double.self))
        case Int32(SYBREAL): return .double(Double(bytes.loadUnaligned(as: Float.self)))
        case Int32(SYBBINARY), Int32(SYBVARBINARY), Int32(SYBIMAGE): return .blob(Array(bytes))
        case Int32(SYBCHAR), Int32(SYBVARCHAR), Int32(SYBTEXT):
            return .text(String(decoding: bytes, as: UTF8.self))
        case Int32(SYBDECIMAL), Int32(SYBNUMERIC), Int32(SYBMONEY), Int32(SYBMONEY4):
            var d: Double = 0
            let n = withUnsafeMutableBytes(of: &d) { out in
                dbconvert(dbproc, type, data, Int32(length), Int32(SYBFLT8), out.baseAddress?.assumingMemoryBound(to: UInt8.self), 8)
            }
            return n > 0 ? .double(d) : .null
        default:
            // Dates, times, unique identifiers: as db-lib writes them in text.
            var out = [UInt8](repeating: 0, count: 256)
            let n = dbconvert(dbproc, type, data, Int32(length), Int32(SYBCHAR), &out, Int32(out.count))
            return n >= 0 ? .text(String(decoding: out.prefix(Int(n)), as: UTF8.self).trimmingCharacters(in: .whitespaces)) : .null
        }
    }

    private func failure(_ dbproc: OpaquePointer, _ sql: String) -> SQLError {
        let dead = dbdead(dbproc) != 0
        if dead { broken.withLock { $0 = true } }
        let message = Self.takeLast() ?? "the statement failed"
        // Deadlock victim (1205), lock timeout (1222), a dropped connection: retry may help.
        let transient = dead || message.contains("(1205,") || message.contains("(1222,")
        dbcancel(dbproc)
        return SQLError(code: dead ? "08S01" : "HY000", message: message, statement: String(sql.prefix(200)), isTransient: transient)
    }

    fileprivate struct Session: SQLSession {
        let connection: MSSQLConnection
        let process: OpaquePointer
        func query(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] { try connection.run(process, sql, binds).0 }
        func query(_ sql: String, _ binds: [SQLValue], maxRows: Int) throws -> [SQLRow] {
            try connection.run(process, sql, binds, maxRows: maxRows).0
        }
        func execute(_ sql: String, _ binds: [SQLValue]) throws -> Int { try connection.run(process, sql, binds).1 }
    }
}
