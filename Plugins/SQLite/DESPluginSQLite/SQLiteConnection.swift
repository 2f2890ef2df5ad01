import CSQLite
import DESKit
import Foundation

/// A SQLite database connection (the embedded default's driver).
///
/// Every call runs on the connection's own thread. The connection uses WAL
/// mode and a busy timeout, and caches prepared statements.
public final class SQLiteConnection: SQLConnection, @unchecked Sendable {
    // `handle` and `statements` are touched only on `thread`: that is the synchronisation.
    private let thread: DedicatedThread
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    /// The database file.
    public let path: String

    /// Opens the database at `path` — creating it when `create` is set, and otherwise failing
    /// with an error naming the file when there is none.
    public static func open(path: String, create: Bool = true, busyTimeoutMilliseconds: Int32 = 10_000) async throws
        -> SQLiteConnection
    {
        let connection = SQLiteConnection(path: path)
        try await connection.thread.run { try connection.openOnThread(busyTimeout: busyTimeoutMilliseconds, create: create) }
        return connection
    }

    private init(path: String) {
        self.path = path
        self.thread = DedicatedThread(name: "des-sqlite")
    }

    deinit {
        for (_, s) in statements { sqlite3_finalize(s) }
        if let handle { sqlite3_close_v2(handle) }
        thread.stop()
    }

    private func openOnThread(busyTimeout: Int32, create: Bool) throws {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw SQLError(code: "SQLITE_\(rc)", message: "cannot open SQLite database '\(path)': \(message)")
        }
        handle = db
        // Waits for another connection's write lock in short steps (SQLite's own handler sleeps
        // 1 to 100 ms a time: two writers of one file, the packer's metadata and a filesystem
        // catalog, then spent most of their time asleep), up to the same timeout.
        sqlite3_busy_handler(db, sqliteShortBusyWait, UnsafeMutableRawPointer(bitPattern: Int(max(busyTimeout, 1))))
        sqlite3_extended_result_codes(db, 1)
        let session = Session(connection: self)
        // Switching a fresh database to WAL takes an exclusive lock and does not always wait on
        // the busy handler: several processes opening one new database at once retry here.
        let deadline = monotonicNow() + Double(busyTimeout) / 1000
        while true {
            do {
                _ = try session.query("PRAGMA journal_mode=WAL")
                break
            } catch let error as SQLError where error.isTransient && monotonicNow() < deadline {
                usleep(UInt32.random(in: 2_000...20_000))
            } catch var error as SQLError {
                error.message = "\(path): \(error.message)"
                throw error
            }
        }
        try session.execute("PRAGMA synchronous=NORMAL")
        try session.execute("PRAGMA foreign_keys=ON")
        // Pages read through a mapping rather than a pread each, and a page cache of 64 MiB: the
        // default 2 MiB re-reads a catalog of some 100,000 rows on every claim, and a batch of
        // marks whose dirty pages outgrow the cache spills them to the WAL and writes them twice.
        try session.execute("PRAGMA mmap_size=268435456")
        try session.execute("PRAGMA cache_size=-65536")
        // Statement journals and sorts in memory, not in files under /var/tmp: an UPDATE of many
        // rows inside a transaction (a container's mark, a claim) journals every page it touches
        // so that it alone can be undone, and in files that came to more bytes than the WAL.
        try session.execute("PRAGMA temp_store=MEMORY")
        // A checkpoint once the WAL holds 10,000 pages (40 MiB), not 1,000: the catalog's hot
        // pages (claimed, then marked; named, then claimed) are written to the WAL many times
        // between two checkpoints and copied into the database once each. The WAL file is cut
        // back to 64 MiB after a checkpoint, so it does not keep the size of its busiest moment.
        try session.execute("PRAGMA wal_autocheckpoint=10000")
        try session.execute("PRAGMA journal_size_limit=67108864")
    }

    private func monotonicNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public func withSession<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await thread.run { [self] in
            guard handle != nil else { throw SQLError(code: "SQLITE_MISUSE", message: "connection is closed") }
            return try body(Session(connection: self))
        }
    }

    public func withTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await thread.run { [self] in
            guard handle != nil else { throw SQLError(code: "SQLITE_MISUSE", message: "connection is closed") }
            return try Session(connection: self).inTransaction(begin: "BEGIN IMMEDIATE", body)
        }
    }

    public func close() async {
        _ = try? await thread.run { [self] in
            for (_, s) in statements { sqlite3_finalize(s) }
            statements = [:]
            if let handle { sqlite3_close_v2(handle) }
            handle = nil
        }
        thread.stop()
    }

    // MARK: On the connection's thread

    fileprivate func error(_ rc: Int32, _ sql: String?) -> SQLError {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "no connection"
        let primary = rc & 0xFF
        return SQLError(
            code: "SQLITE_\(rc)", message: message, statement: sql,
            isTransient: primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
    }

    fileprivate func prepare(_ sql: String) throws -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql) }
        if statements.count > 256 {
            for (_, s) in statements { sqlite3_finalize(s) }
            statements = [:]
        }
        statements[sql] = stmt
        return stmt
    }

    fileprivate func bind(_ stmt: OpaquePointer, _ binds: [SQLValue], _ sql: String) throws {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
        for (i, value) in binds.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .int(let v): rc = sqlite3_bind_int64(stmt, index, v)
            case .double(let v): rc = sqlite3_bind_double(stmt, index, v)
            case .text(let s):
                rc = s.utf8.withContiguousStorageIfAvailable { buf in
                    buf.withMemoryRebound(to: CChar.self) { des_sqlite3_bind_text(stmt, index, $0.baseAddress, Int32($0.count)) }
                } ?? des_sqlite3_bind_text(stmt, index, s, -1)
            case .blob(let b):
                rc = b.withUnsafeBytes { des_sqlite3_bind_blob(stmt, index, $0.baseAddress, Int32($0.count)) }
            }
            guard rc == SQLITE_OK else { throw error(rc, sql) }
        }
    }

    fileprivate func run(_ sql: String, _ binds: [SQLValue], collect: Bool, maxRows: Int = .max) throws -> ([SQLRow], Int) {
        var rows: [SQLRow] = []
        var names: [String] = []
        let changed = try step(sql, binds, decode: collect, maxRows: maxRows) { stmt, values in
            if names.isEmpty { names = (0..<sqlite3_column_count(stmt)).map { String(cString: sqlite3_column_name(stmt, $0)) } }
            rows.append(SQLRow(columns: names, values: values))
        }
        return (rows, changed)
    }

    /// Runs `sql`, handing each row (its values decoded when `decode`) to `row`, for at most
    /// `maxRows` rows; returns the number of rows the statement changed.
    fileprivate func step(
        _ sql: String, _ binds: [SQLValue], decode: Bool, maxRows: Int = .max, row: (OpaquePointer, [SQLValue]) throws -> Void
    ) throws -> Int {
        let stmt = try prepare(sql)
        defer { sqlite3_reset(stmt) }
        try bind(stmt, binds, sql)
        let count = sqlite3_column_count(stmt)
        var seen = 0
        // One array for every row, emptied in place: a body that keeps it copies it (copy on
        // write), one that only reads it costs no allocation per row.
        var values: [SQLValue] = []
        values.reserveCapacity(Int(count))
        while seen < maxRows {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            guard decode else { continue }
            seen += 1
            values.removeAll(keepingCapacity: true)
            for c in 0..<count {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(stmt, c)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(stmt, c)))
                case SQLITE_TEXT:
                    if let p = sqlite3_column_text(stmt, c) {
                        values.append(.text(String(cString: p)))
                    } else {
                        values.append(.null)
                    }
                case SQLITE_BLOB:
                    let n = Int(sqlite3_column_bytes(stmt, c))
                    if let p = sqlite3_column_blob(stmt, c), n > 0 {
                        values.append(.blob([UInt8](UnsafeRawBufferPointer(start: p, count: n))))
                    } else {
                        values.append(.blob([]))
                    }
                default: values.append(.null)
                }
            }
            try row(stmt, values)
        }
        return Int(sqlite3_changes(handle))
    }

    private struct Session: SQLSession {
        let connection: SQLiteConnection
        func query(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow] {
            try connection.run(sql, binds, collect: true).0
        }
        func query(_ sql: String, _ binds: [SQLValue], maxRows: Int) throws -> [SQLRow] {
            try connection.run(sql, binds, collect: true, maxRows: maxRows).0
        }
        func execute(_ sql: String, _ binds: [SQLValue]) throws -> Int {
            try connection.run(sql, binds, collect: false).1
        }
        func forEachRow(_ sql: String, _ binds: [SQLValue], _ body: ([SQLValue]) throws -> Void) throws {
            _ = try connection.step(sql, binds, decode: true) { _, values in try body(values) }
        }
    }
}

/// The busy handler of every connection: after `count` earlier waits, sleeps 100 µs (the first
/// 10), 500 µs (to the 100th), then 2 ms, and gives up (the statement fails as busy) once the
/// sleeps add up to the timeout in milliseconds that `context` carries as its address.
private func sqliteShortBusyWait(_ context: UnsafeMutableRawPointer?, _ count: Int32) -> Int32 {
    let timeoutMicros = Int(bitPattern: context) * 1_000
    let c = Int(count)
    let slept = c < 10 ? c * 100 : c < 100 ? 1_000 + (c - 10) * 500 : 46_000 + (c - 100) * 2_000
    if slept >= timeoutMicros { return 0 }
    usleep(c < 10 ? 100 : c < 100 ? 500 : 2_000)
    return 1
}
