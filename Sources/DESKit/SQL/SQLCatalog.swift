import Foundation

/// What DES makes of a column's type: how it binds values to it and decodes values from it.
///
/// A dialect's reflection query reads each column's type from the database's own catalog
/// (``SQLDialect/reflectTable(in:schema:table:)``) and classifies it; from then on values are
/// bound and decoded by that kind, never by the look of a value (`'07'` stays text in a
/// `varchar` key, a `bigint` key binds as an integer).
public enum SQLColumnKind: String, Sendable, Hashable, Codable {
    /// Any integer type (`smallint` to `bigint`, `NUMBER(p,0)`, SQLite's INTEGER affinity).
    case integer
    /// Exact decimals (`numeric`, `decimal`, `NUMBER`, `money`).
    case decimal
    /// Binary floating point (`real`, `double precision`, `float`).
    case float
    /// Character data (`text`, `varchar`, `char`, `nvarchar`, `clob`, a MySQL `ENUM`).
    case text
    /// A UUID (`uuid`, `uniqueidentifier`).
    case uuid
    /// A PostgreSQL enum type: bound as its label with a cast to the type.
    case enumeration
    /// `boolean`, `bit`.
    case boolean
    /// A date and time with no zone (`timestamp`, `datetime`, `datetime2`): DES stores UTC in it.
    case timestamp
    /// A date and time with a zone (`timestamptz`, `datetimeoffset`, `TIMESTAMP WITH TIME ZONE`).
    case timestampWithTimeZone = "timestamptz"
    /// A calendar date.
    case date
    /// `json`, `jsonb`.
    case json
    /// Bytes (`bytea`, `blob`, `varbinary`, `RAW`).
    case binary
    /// Anything else (kept as the driver returns it).
    case other

    /// Classifies a type as most databases spell it (lower- or upper-case, with or without a
    /// length): the common part of every dialect's reflection. A dialect overrides what its own
    /// catalog says more precisely (PostgreSQL's enums and domains, Oracle's `NUMBER` scale).
    public static func classify(_ typeName: String) -> SQLColumnKind {
        let t = typeName.lowercased().trimmingCharacters(in: .whitespaces)
        let base = String(t.prefix { $0 != "(" }).trimmingCharacters(in: .whitespaces)
        if base.hasPrefix("enum") { return .text }  // MySQL/MariaDB ENUM('a','b'): compared as text
        // timestamptz, timestamp(6) with time zone, Oracle's … with local time zone, datetimeoffset
        if base == "timestamptz" || base == "datetimeoffset" || t.hasSuffix("with time zone") || t.hasSuffix("with local time zone") {
            return .timestampWithTimeZone
        }
        switch base {
        case "uuid", "uniqueidentifier": return .uuid
        case "json", "jsonb": return .json
        case "bool", "boolean", "bit": return .boolean
        case "date": return .date
        case "timestamp", "timestamp without time zone", "datetime", "datetime2", "smalldatetime": return .timestamp
        case "bytea", "blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary", "raw", "long raw", "image":
            return .binary
        case "real", "float", "float4", "float8", "double", "double precision", "binary_float", "binary_double": return .float
        case "numeric", "decimal", "number", "money", "smallmoney", "dec": return .decimal
        default: break
        }
        if base.hasPrefix("interval") { return .other }
        // int, integer, int4, bigint, smallint, tinyint, mediumint, serial, bigserial… (not point)
        if base.hasPrefix("int") || base.hasSuffix("serial")
            || ["bigint", "smallint", "tinyint", "mediumint"].contains(where: { base.hasPrefix($0) })
        {
            return .integer
        }
        if base.contains("char") || base.contains("text") || base.contains("clob") || base == "string" || base == "name"
            || base == "citext" || base == "xml"
        {
            return .text
        }
        return .other
    }
}

/// A column of the catalog table as the database's own catalog reports it.
public struct SQLCatalogColumn: Sendable, Hashable, Codable {
    /// The column's name as stored (case as the database keeps it).
    public var name: String
    /// The type in the database's own words (`timestamp with time zone`, `file_state`, `varchar(64)`).
    public var type: String
    /// What DES makes of it.
    public var kind: SQLColumnKind
    /// The type a bound value is cast to (`CAST(? AS type)`), for a column whose values are sent
    /// as text but compare in a type of their own: a PostgreSQL enum, `uuid` or domain. Nil: none.
    public var bindCast: String?
    /// Whether the column may hold NULL.
    public var nullable: Bool
    /// The only values the column's type allows (a PostgreSQL enum's labels, a MySQL `ENUM`'s
    /// members), in order; nil when the type allows any value of its kind.
    public var labels: [String]?

    /// Creates a column description.
    public init(
        name: String, type: String, kind: SQLColumnKind? = nil, bindCast: String? = nil, nullable: Bool = true, labels: [String]? = nil
    ) {
        self.name = name
        self.type = type
        self.kind = kind ?? SQLColumnKind.classify(type)
        self.bindCast = bindCast
        self.nullable = nullable
        self.labels = labels
    }

    /// The members of a MySQL/MariaDB `enum('a','b''c')` type as `COLUMN_TYPE` spells it (nil for another type).
    public static func mysqlEnumLabels(_ type: String) -> [String]? {
        guard type.lowercased().hasPrefix("enum("), type.hasSuffix(")") else { return nil }
        var labels: [String] = []
        var current = ""
        var inQuote = false
        var chars = Array(type.dropFirst(5).dropLast())[...]
        while let c = chars.popFirst() {
            if inQuote {
                if c == "'" {
                    if chars.first == "'" {
                        current.append("'")
                        chars = chars.dropFirst()
                    } else {
                        inQuote = false
                        labels.append(current)
                        current = ""
                    }
                } else if c == "\\", let next = chars.popFirst() {
                    current.append(next)
                } else {
                    current.append(c)
                }
            } else if c == "'" {
                inQuote = true
            }
        }
        return labels
    }
}

/// The catalog table as reflected at connect: its columns and the leading columns of its indexes.
public struct SQLTableCatalog: Sendable, Hashable, Codable {
    /// The columns, in table order.
    public var columns: [SQLCatalogColumn]
    /// Each index's columns in order (for `des catalog check`'s recommended indexes).
    public var indexes: [[String]]

    /// Creates a catalog description.
    public init(columns: [SQLCatalogColumn], indexes: [[String]] = []) {
        self.columns = columns
        self.indexes = indexes
    }

    /// Whether the table exists (a reflection of a missing table finds no column).
    public var exists: Bool { !columns.isEmpty }

    /// The column named `stored` (the name as the dialect stores the config's identifier), matched
    /// exactly where identifiers are case-sensitive, else ignoring case.
    public func column(_ stored: String, caseSensitive: Bool) -> SQLCatalogColumn? {
        if let exact = columns.first(where: { $0.name == stored }) { return exact }
        guard !caseSensitive else { return nil }
        let lower = stored.lowercased()
        return columns.first { $0.name.lowercased() == lower }
    }

    /// Index columns from rows of (index name, column name) ordered by index and key position, as
    /// the catalogs that list one row per index column return them.
    public static func indexes(fromRows rows: [SQLRow]) -> [[String]] {
        var byName: [String: [String]] = [:]
        for row in rows {
            guard let index = row[0].text, let column = row[1].text else { continue }
            byName[index, default: []].append(column)
        }
        return byName.keys.sorted().compactMap { byName[$0] }
    }

    /// Whether some index starts with `column` (compared ignoring case).
    public func hasIndex(leadingWith column: String) -> Bool {
        indexes.contains { $0.first?.lowercased() == column.lowercased() }
    }

    /// The closest real column name to `name`, for "did you mean".
    public func suggestion(for name: String) -> String? {
        KeySuggestion.suggest(for: name, among: columns.map(\.name))
    }
}
