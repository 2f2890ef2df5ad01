import DESKit

/// A dialect as spoken through ODBC: the database's own SQL, in statements of at most
/// ``maxValues`` bound values. ODBC drivers are narrower than their servers (psqlODBC loses
/// its protocol state past some tens of thousands of parameters, where PostgreSQL takes 65,535),
/// so the generic layer's batches (``SQLDialect/chunkSize(valuesPerRow:fixed:)``) stay short.
public struct ODBCBoundedDialect: SQLDialect {
    /// The database's dialect.
    public let base: any SQLDialect
    /// Most values one statement carries through ODBC.
    public static let maxValues = 2_000

    /// Wraps `base`.
    public init(_ base: any SQLDialect) { self.base = base }

    public var name: String { base.name }
    public func quoteIdentifier(_ identifier: String) -> String { base.quoteIdentifier(identifier) }
    public func placeholder(_ position: Int) -> String { base.placeholder(position) }
    public var currentTimestamp: String { base.currentTimestamp }
    public func olderThan(_ column: String, seconds: Double) -> String { base.olderThan(column, seconds: seconds) }
    public var maxBindParameters: Int { min(base.maxBindParameters, Self.maxValues) }
    public var maxListLength: Int { base.maxListLength }
    public var identifiersCaseSensitive: Bool { base.identifiersCaseSensitive }
    public func storedName(_ identifier: String) -> String { base.storedName(identifier) }
    public func now(for kind: SQLColumnKind) -> String { base.now(for: kind) }
    public func olderThan(_ column: String, kind: SQLColumnKind, seconds: Double) -> String {
        base.olderThan(column, kind: kind, seconds: seconds)
    }
    public func ddlType(for role: SQLDESColumnRole) -> String { base.ddlType(for: role) }
    public func addColumn(table: String, column: String, type: String) -> String { base.addColumn(table: table, column: column, type: type) }
    public func createIndex(name: String, table: String, columns: [String], predicate: String?) -> String {
        base.createIndex(name: name, table: table, columns: columns, predicate: predicate)
    }
    public var transactionalDDL: Bool { base.transactionalDDL }
    public var partialIndexes: Bool { base.partialIndexes }
    public func reflectTable(in session: any SQLSession, schema: String?, table: String) throws -> SQLTableCatalog {
        try base.reflectTable(in: session, schema: schema, table: table)
    }
    public var rowLimit: SQLRowLimit { base.rowLimit }
    public var healthQuery: String { base.healthQuery }

    public func claim(in session: any SQLSession, table: SQLTableShape, shards: [Int], limit: Int, holder: String) throws -> [SQLRow] {
        try base.claim(in: session, table: table, shards: shards, limit: limit, holder: holder)
    }

    public func selectUnnamed(in session: any SQLSession, table: SQLTableShape, limit: Int) throws -> [SQLRow] {
        try base.selectUnnamed(in: session, table: table, limit: limit)
    }

    public func assignNames(in session: any SQLSession, table: SQLTableShape, _ assignments: [NameAssignment]) throws -> Int {
        try base.assignNames(in: session, table: table, assignments)
    }

    public func textMatches(_ column: String, values: [String], binds: inout [SQLValue]) -> String {
        base.textMatches(column, values: values, binds: &binds)
    }

    public func idMatches(in session: any SQLSession, table: SQLTableShape, ids: [String], binds: inout [SQLValue]) throws -> String {
        try base.idMatches(in: session, table: table, ids: ids, binds: &binds)
    }
}
