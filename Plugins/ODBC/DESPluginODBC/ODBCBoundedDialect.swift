import DESKit

/// A dialect as spoken through ODBC: the database's own SQL, in statements of at most
/// ``maxValues`` bound values. ODBC drivers are narrower than their servers (psqlODBC loses
/// its protocol state past some tens of thousands of parameters, where PostgreSQL takes 65,535),
/// so name assignments go in batches of ``namesPerStatement`` rows and id lists stay short.
public struct ODBCBoundedDialect: SQLDialect {
    /// The database's dialect.
    public let base: any SQLDialect
    /// Most values one statement carries through ODBC.
    public static let maxValues = 2_000
    /// Rows per name-assignment statement (four values each).
    public static let namesPerStatement = 400

    /// Wraps `base`.
    public init(_ base: any SQLDialect) { self.base = base }

    public var name: String { base.name }
    public func quoteIdentifier(_ identifier: String) -> String { base.quoteIdentifier(identifier) }
    public func placeholder(_ position: Int) -> String { base.placeholder(position) }
    public var currentTimestamp: String { base.currentTimestamp }
    public func olderThan(_ column: String, seconds: Double) -> String { base.olderThan(column, seconds: seconds) }
    public var maxBindParameters: Int { min(base.maxBindParameters, Self.maxValues) }
    public var rowLimit: SQLRowLimit { base.rowLimit }
    public var healthQuery: String { base.healthQuery }

    public func claim(in session: any SQLSession, table: SQLTableShape, shards: [Int], limit: Int, holder: String) throws -> [SQLRow] {
        try base.claim(in: session, table: table, shards: shards, limit: limit, holder: holder)
    }

    public func selectUnnamed(in session: any SQLSession, table: SQLTableShape, limit: Int) throws -> [SQLRow] {
        try base.selectUnnamed(in: session, table: table, limit: limit)
    }

    public func assignNames(in session: any SQLSession, table: SQLTableShape, _ assignments: [NameAssignment]) throws -> Int {
        var changed = 0
        for start in stride(from: 0, to: assignments.count, by: Self.namesPerStatement) {
            let chunk = Array(assignments[start..<min(assignments.count, start + Self.namesPerStatement)])
            changed += try base.assignNames(in: session, table: table, chunk)
        }
        return changed
    }

    public func idMatches(in session: any SQLSession, table: SQLTableShape, count: Int, firstBind: Int) throws -> String {
        try base.idMatches(in: session, table: table, count: count, firstBind: firstBind)
    }
}
