/// A synchronous view of a database connection, valid only inside
/// ``SQLConnection/withSession(_:)`` or ``SQLConnection/withTransaction(_:)``
/// on the driver's own thread. Statements use the dialect's placeholders.
public protocol SQLSession {
    /// Runs a statement that returns rows.
    func query(_ sql: String, _ binds: [SQLValue]) throws -> [SQLRow]
    /// Runs a statement that returns rows and stops after `maxRows` of them (a cursor fetched
    /// n rows: how Oracle limits a `FOR UPDATE SKIP LOCKED` select). Drivers that can stop the
    /// fetch early do; the default fetches all and keeps the first `maxRows`.
    func query(_ sql: String, _ binds: [SQLValue], maxRows: Int) throws -> [SQLRow]
    /// Runs a statement and returns the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ binds: [SQLValue]) throws -> Int
    /// Runs a statement that returns rows and hands `body` each row's values, in result order,
    /// as they come: for a read of a whole table, which then keeps only what it builds from
    /// them. Drivers that can stream do (SQLite); the default runs ``query(_:_:)`` first.
    func forEachRow(_ sql: String, _ binds: [SQLValue], _ body: ([SQLValue]) throws -> Void) throws
}

extension SQLSession {
    /// Runs `body` between `begin` and `COMMIT`, rolling back when it throws: how a driver's
    /// ``SQLConnection/withTransaction(_:)`` is usually built.
    public func inTransaction<T>(begin: String = "BEGIN", _ body: (any SQLSession) throws -> T) throws -> T {
        try execute(begin)
        do {
            let result = try body(self)
            try execute("COMMIT")
            return result
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    public func query(_ sql: String, _ binds: [SQLValue], maxRows: Int) throws -> [SQLRow] {
        Array(try query(sql, binds).prefix(max(0, maxRows)))
    }

    public func forEachRow(_ sql: String, _ binds: [SQLValue], _ body: ([SQLValue]) throws -> Void) throws {
        for row in try query(sql, binds) { try body(row.values) }
    }

    /// Runs a statement with no binds.
    @discardableResult
    public func execute(_ sql: String) throws -> Int { try execute(sql, []) }
    /// Runs a query with no binds.
    public func query(_ sql: String) throws -> [SQLRow] { try query(sql, []) }
}

/// A connection to one database: the driver half of a SQL plugin.
///
/// Blocking C calls never run on Swift's cooperative thread pool: a driver runs
/// them on its own thread (see ``DedicatedThread``) and exposes `async` entry
/// points. Errors are ``SQLError``s carrying the server's SQLSTATE or code.
public protocol SQLConnection: AnyObject, Sendable {
    /// Runs `body` with the connection, outside any explicit transaction.
    func withSession<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T

    /// Runs `body` in a transaction (SQLite: `BEGIN IMMEDIATE`), committing when it
    /// returns and rolling back when it throws.
    func withTransaction<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T

    /// Closes the connection; later calls fail.
    func close() async

    /// Whether the connection can no longer be used (the server went away, the session is lost):
    /// the pool then discards it instead of handing it out again. Default: false.
    var isBroken: Bool { get }
}

extension SQLConnection {
    /// A connection that never reports itself broken.
    public var isBroken: Bool { false }
}

/// A database error with the server's code.
public struct SQLError: Error, Sendable, CustomStringConvertible {
    /// SQLSTATE (PostgreSQL, MySQL, ODBC) or the server's numeric code as text.
    public var code: String
    /// The server's message.
    public var message: String
    /// The statement, shortened, for context (never contains bound values).
    public var statement: String?
    /// Whether retrying may help (busy, locked, deadlock, connection lost).
    public var isTransient: Bool

    /// Creates an error.
    public init(code: String, message: String, statement: String? = nil, isTransient: Bool = false) {
        self.code = code
        self.message = message
        self.statement = statement.map { $0.count > 160 ? String($0.prefix(160)) + "…" : $0 }
        self.isTransient = isTransient
    }

    /// Whether the server refused the login (SQLSTATE class 28: a wrong password, an unknown
    /// user): the message names the server and the user, never the password.
    public var isAuthenticationFailure: Bool { code.hasPrefix("28") }

    public var description: String {
        var s = "database error \(code): \(message)"
        if let statement { s += " (in: \(statement))" }
        return s
    }
}
