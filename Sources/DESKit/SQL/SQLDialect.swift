/// Identifier rules for names that come from the config.
public enum SQLIdentifier {
    /// Checks an identifier: a letter or `_`, then letters, digits, `_` or `$`, at most 128 characters.
    public static func validate(_ name: String, what: String) throws {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first, scalars.count <= 128 else {
            throw DESKitError(.configuration, "\(what): identifier '\(name)' must be 1–128 characters")
        }
        func isLetter(_ s: Unicode.Scalar) -> Bool { (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || s == "_" }
        guard isLetter(first), scalars.allSatisfy({ isLetter($0) || ($0 >= "0" && $0 <= "9") || $0 == "$" }) else {
            throw DESKitError(
                .configuration,
                "\(what): identifier '\(name)' may hold only letters, digits, '_' and '$' and must not start with a digit")
        }
    }
}

/// How one database claims, names, quotes and limits: the dialect half of a SQL plugin.
///
/// The generic ``SQLSourceConnector`` builds ordinary statements from the
/// dialect's quoting, placeholders and time expressions, and asks the dialect
/// for the two statements that differ most between databases: the claim and
/// the bulk name assignment.
public protocol SQLDialect: Sendable {
    /// The dialect's name, e.g. `sqlite`.
    var name: String { get }
    /// Whether every write transaction writes each page it touched again in full (SQLite's
    /// journal): then rows updated in one transaction should be many, even if they wait for it.
    /// Default false (a server database logs the rows, and marks are best spread over a run).
    var writesTouchedPagesAgain: Bool { get }
    /// Quotes an already validated identifier.
    func quoteIdentifier(_ identifier: String) -> String
    /// The placeholder for the `position`-th (1-based) bound value.
    func placeholder(_ position: Int) -> String
    /// SQL for the current database time, as stored in `claimed_at`.
    var currentTimestamp: String { get }
    /// A condition that is true when `column` is more than `seconds` in the past.
    func olderThan(_ column: String, seconds: Double) -> String
    /// Most bound values in one statement.
    var maxBindParameters: Int { get }
    /// Most items in one `IN (…)` or `VALUES` list (default 10,000; Oracle 1,000, ORA-01795).
    var maxListLength: Int { get }
    /// How a select is limited to n rows (default `LIMIT`).
    var rowLimit: SQLRowLimit { get }
    /// A statement that proves the connection works (default `SELECT 1`; Oracle: `SELECT 1 FROM DUAL`).
    var healthQuery: String { get }

    /// Reads the table's columns and types (and its indexes' columns) from the database's own
    /// catalog: PostgreSQL's `pg_catalog` (enums and domains resolved), MySQL's
    /// `information_schema.COLUMNS`, SQL Server's `sys.columns`, Oracle's `ALL_TAB_COLUMNS`,
    /// SQLite's `pragma table_xinfo`. A missing table reflects as no columns. Run once per
    /// connector, before its first statement.
    func reflectTable(in session: any SQLSession, schema: String?, table: String) throws -> SQLTableCatalog

    /// Whether quoted identifiers match the catalog's names only in their exact case
    /// (PostgreSQL, Oracle: true; default false).
    var identifiersCaseSensitive: Bool { get }

    /// The name under which the database stores an identifier of the config that DES quotes
    /// (default: as written; Oracle upper-cases a name written in lower case).
    func storedName(_ identifier: String) -> String

    /// Database time in the form a column of `kind` stores it: a timestamp (UTC for one with no
    /// zone) for the time kinds, epoch seconds (``currentTimestamp``) for numbers. Default: epoch seconds.
    func now(for kind: SQLColumnKind) -> String

    /// A condition that is true when `column`, of `kind`, is more than `seconds` in the past
    /// (negative `seconds`: earlier than that far in the future).
    /// Default: ``olderThan(_:seconds:)`` (epoch seconds).
    func olderThan(_ column: String, kind: SQLColumnKind, seconds: Double) -> String

    /// The column type `des catalog prepare` adds for a DES column of `role`.
    func ddlType(for role: SQLDESColumnRole) -> String

    /// `ALTER TABLE … ADD …` for one column (default `ALTER TABLE t ADD COLUMN c type`).
    func addColumn(table: String, column: String, type: String) -> String

    /// Whether indexes may hold only the rows matching a predicate (PostgreSQL, SQLite, SQL
    /// Server's filtered indexes: true; default false).
    var partialIndexes: Bool { get }

    /// Whether the client library reads `numeric`/`decimal` values as doubles (PostgreSQL,
    /// MySQL/MariaDB: true; default false), so that a key column of that type is accepted only
    /// while every key fits a double exactly (``SQLTableShape/maxDecimalKeyDigits``).
    var readsDecimalsAsDoubles: Bool { get }

    /// `CREATE INDEX …` over `columns` of `table`, restricted to rows matching `predicate` (given
    /// only where ``partialIndexes``). Default: `CREATE INDEX name ON t (cols)`.
    func createIndex(name: String, table: String, columns: [String], predicate: String?) -> String

    /// Whether DDL runs inside a transaction that a failure rolls back (PostgreSQL, SQLite, SQL
    /// Server: true; MySQL/MariaDB and Oracle commit each DDL statement: false, the default).
    var transactionalDDL: Bool { get }

    /// Claims up to `limit` pending rows of `shards` for `holder` inside the
    /// current transaction, skipping rows locked by others, and returns them
    /// with the columns of ``SQLTableShape/claimSelectList``.
    func claim(in session: any SQLSession, table: SQLTableShape, shards: [Int], limit: Int, holder: String) throws -> [SQLRow]

    /// Selects up to `limit` rows needing a name (id, key, name columns),
    /// locking them where the database can (`FOR UPDATE SKIP LOCKED`).
    func selectUnnamed(in session: any SQLSession, table: SQLTableShape, limit: Int) throws -> [SQLRow]

    /// Writes names, hashes, shards and the pending status for many rows in one statement.
    func assignNames(in session: any SQLSession, table: SQLTableShape, _ assignments: [NameAssignment]) throws -> Int

    /// The condition "the row's id is one of `ids`", its bound values appended to `binds`
    /// (placeholders continue from `binds.count + 1`); used by the packer's batch updates (mark
    /// packed, give back) and reads by id. Default `id IN (…)`, a value per id; a dialect whose
    /// planner would scan the table for a long list writes it so that the key's index is used.
    func idMatches(in session: any SQLSession, table: SQLTableShape, ids: [String], binds: inout [SQLValue]) throws -> String

    /// The condition "`column` holds one of `values`" for a text column (DES names), its bound
    /// values appended to `binds`. Default `column IN (…)`, a value each.
    func textMatches(_ column: String, values: [String], binds: inout [SQLValue]) -> String

    /// A source's `where_clause` as written into a statement whose rows a list of names or keys
    /// finds, so that the planner looks them up by that list's column rather than by an index
    /// the filter's columns lead (SQLite, with no statistics, takes any equality on an index's
    /// first column for a selective one). Default: the filter unchanged.
    func listLookupFilter(_ filter: String) -> String
}

/// The ways databases limit a select to n rows.
public enum SQLRowLimit: Sendable, Equatable {
    /// `SELECT … LIMIT n` (PostgreSQL, MySQL/MariaDB, SQLite).
    case limit
    /// `SELECT TOP (n) …` (SQL Server).
    case top
    /// `SELECT … FETCH FIRST n ROWS ONLY` (Oracle 12c and later, DB2, standard SQL).
    case fetchFirst
    /// No limit in the SQL: the cursor is fetched n rows (``SQLSession/query(_:_:maxRows:)``).
    case cursor
}

/// The DES columns `des catalog prepare` can add, each with a type per dialect.
public enum SQLDESColumnRole: String, Sendable {
    /// The status (text).
    case status
    /// The DES name (text, up to 255).
    case desName
    /// The shard (integer).
    case shard
    /// The name's hash (text).
    case desHash
    /// The container's key (text).
    case container
    /// The claimer (text).
    case claimedBy
    /// The claim time (a timestamp).
    case claimedAt
    /// The failure reason (long text).
    case error
    /// When packed (a timestamp).
    case packedAt
}

extension SQLDialect {
    public var writesTouchedPagesAgain: Bool { false }
    public var rowLimit: SQLRowLimit { .limit }
    public var healthQuery: String { "SELECT 1" }
    public var identifiersCaseSensitive: Bool { false }
    public func storedName(_ identifier: String) -> String { identifier }
    public func now(for kind: SQLColumnKind) -> String { currentTimestamp }
    public func olderThan(_ column: String, kind: SQLColumnKind, seconds: Double) -> String { olderThan(column, seconds: seconds) }
    public var transactionalDDL: Bool { false }
    public var partialIndexes: Bool { false }
    public var readsDecimalsAsDoubles: Bool { false }
    public var maxListLength: Int { 10_000 }

    /// How many rows of `valuesPerRow` bound values one statement carries, beside `fixed` other
    /// values: under ``maxBindParameters`` and ``maxListLength``. The generic SQL layer splits
    /// every list by it, so a dialect renders one chunk.
    public func chunkSize(valuesPerRow: Int, fixed: Int = 8) -> Int {
        max(1, min(maxListLength, (maxBindParameters - fixed) / max(1, valuesPerRow)))
    }

    public func ddlType(for role: SQLDESColumnRole) -> String {
        switch role {
        case .status, .claimedBy, .desName, .desHash: return "VARCHAR(255)"
        case .container: return "VARCHAR(1024)"
        case .shard: return "INTEGER"
        case .claimedAt, .packedAt: return "TIMESTAMP"
        case .error: return "VARCHAR(4000)"
        }
    }

    public func addColumn(table: String, column: String, type: String) -> String {
        "ALTER TABLE \(table) ADD COLUMN \(column) \(type)"
    }

    public func createIndex(name: String, table: String, columns: [String], predicate: String?) -> String {
        "CREATE INDEX \(quoteIdentifier(name)) ON \(table) (\(columns.joined(separator: ", ")))"
    }

    public func textMatches(_ column: String, values: [String], binds: inout [SQLValue]) -> String {
        "\(column) IN (\(placeholders(binding: values.map { .text($0) }, to: &binds)))"
    }

    public func listLookupFilter(_ filter: String) -> String { filter }

    public func idMatches(in session: any SQLSession, table: SQLTableShape, ids: [String], binds: inout [SQLValue]) throws -> String {
        "\(table.id) IN (\(placeholders(binding: ids.map(table.idValue), to: &binds) { table.idParam(self, $0) }))"
    }

    /// `SELECT columns FROM rest` limited to `limit` rows in this dialect's form; `limit` is bound at
    /// placeholder `bind`. Returns the SQL, the bind value (nil when the limit is not in the SQL) and
    /// the number of rows to fetch.
    public func limitedSelect(_ columns: String, from rest: String, limit: Int, bind: Int) -> (sql: String, bind: SQLValue?, maxRows: Int) {
        let n = SQLValue.int(Int64(limit))
        switch rowLimit {
        case .limit: return ("SELECT \(columns) FROM \(rest) LIMIT \(placeholder(bind))", n, limit)
        case .top: return ("SELECT TOP (\(placeholder(bind))) \(columns) FROM \(rest)", n, limit)
        case .fetchFirst: return ("SELECT \(columns) FROM \(rest) FETCH FIRST \(placeholder(bind)) ROWS ONLY", n, limit)
        case .cursor: return ("SELECT \(columns) FROM \(rest)", nil, limit)
        }
    }

    /// `?, ?, ?` starting at `start` (1-based) for `count` values.
    public func placeholders(_ count: Int, from start: Int = 1) -> String {
        (0..<count).map { placeholder(start + $0) }.joined(separator: ", ")
    }

    /// Appends `values` to `binds` and returns their placeholders, comma-separated: each
    /// position as `each` writes it (default the plain placeholder; a cast around it, say).
    public func placeholders(binding values: [SQLValue], to binds: inout [SQLValue], each: ((Int) -> String)? = nil) -> String {
        let first = binds.count + 1
        binds += values
        return (first..<first + values.count).map { each?($0) ?? placeholder($0) }.joined(separator: ", ")
    }

    /// `id IN (…)` over shard numbers, inlined as integers (they are ours, not input).
    public func shardList(_ shards: [Int]) -> String {
        shards.map(String.init).joined(separator: ", ")
    }
}
