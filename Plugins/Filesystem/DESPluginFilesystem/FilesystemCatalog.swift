import DESFormat
import DESKit

/// The catalog DES keeps for `filesystem` sources: one table, `des_fs_files`, in the metadata
/// store's database, with a row per version of each file (every source's rows, told apart by
/// `source`). The scanner writes it; the stock marker and packer drain it through the generic
/// SQL source, as they drain any catalog.
///
/// A row's `status` moves `observed` (seen, not yet finished) → `new` (unchanged across two
/// scans and older than `min_age`) → `pending` (named by the marker) → `claimed` → `packed`;
/// `gone` when the file vanished before it was packed. A file that changes after it was packed
/// gets a new row with the next `version`; the packed one stays, `superseded` (as does a packed
/// one whose file vanished): its bytes are read back from its container, no longer from the tree.
///
/// A row made ready records its file's SHA-256 (`sha256`). One whose bytes an entry already
/// holds (another path, an earlier version, of the same source) is recorded `packed` straight
/// away, with that entry's name and container: a reference, read by either name or path, never
/// packed twice.
public enum FilesystemCatalog {
    /// The table's name.
    public static let table = "des_fs_files"
    /// The table of each source's roots by position (rows name their root by position).
    public static let rootsTable = "des_fs_roots"

    /// The words of the error a row fails with when its file is not the one its `stamp` records
    /// (``FilesystemBodyFetcher/fetch(_:)``). The next scan takes such a row again as its file is
    /// now, with a stamp made afresh: because the file changed, or because its stamp no longer
    /// describes the row's own columns (the stamp is what changed). It decides from those facts,
    /// not from these words (an error quotes the file's path, which can hold any words).
    public static let notTheScannedFileWords = "is not the file the scan accepted"

    /// A row's `stamp` column as the scan writes it: the file's ``FileStamp/text``, and once the
    /// row is made ready `#` and the SHA-256 the scan read.
    public static func stampColumn(_ stamp: FileStamp, digest: String) -> String { stamp.text + "#" + digest }

    /// A `stamp` column read back (``stampColumn(_:digest:)``): the file it records (nil when the
    /// text does not parse: it matches no file), that part's text, and the SHA-256 (nil when none).
    public static func parseStampColumn(_ recorded: String) -> (stamp: FileStamp?, text: Substring, digest: Substring?) {
        guard let mark = recorded.utf8.firstIndex(of: UInt8(ascii: "#")) else { return (FileStamp(text: recorded), recorded[...], nil) }
        let text = recorded[..<mark]
        let digest = recorded[recorded.utf8.index(after: mark)...]
        return (FileStamp(text: String(text)), text, digest.isEmpty ? nil : digest)
    }

    /// Statuses the scanner writes.
    public enum Status {
        public static let observed = "observed"
        public static let new = "new"
        public static let pending = "pending"
        public static let claimed = "claimed"
        public static let packed = "packed"
        public static let failed = "failed"
        public static let gone = "gone"
        /// A packed version whose file changed or vanished since: DES holds its only copy
        /// (the table's `status_source_deleted_value`, as for a body `des retire` deleted).
        public static let superseded = "superseded"
        /// A version deleted by name (`des delete`, `DELETE /files/…`): its bytes are no longer
        /// served, by name or by path; a later change of the file is a new version.
        public static let deleted = "deleted"
    }

    /// The table config of the source `name` (names are letters, digits, `_` and `-`: the loader checks).
    public static func tableConfig(source name: String) -> TableConfig {
        var columns = ColumnMapping()
        columns.id = "id"
        columns.s3Key = "body_key"
        // The file as the scan accepted it, handed to the body fetcher with the key: a file that
        // is not that file any more is not packed as this row.
        columns.bodyStamp = "stamp"
        columns.sizeBytes = "size_bytes"
        columns.status = "status"
        columns.metadata = [
            MetadataColumn(key: "path", column: "path"), MetadataColumn(key: "root", column: "root"),
            MetadataColumn(key: "version", column: "version"), MetadataColumn(key: "mtime_ns", column: "mtime_ns"),
            MetadataColumn(key: "tags", column: "tags"),
        ]
        columns.desName = "des_name"
        columns.desContainer = "des_container"
        columns.claimedBy = "des_claimed_by"
        columns.claimedAt = "des_claimed_at"
        columns.error = "des_error"
        columns.packedAt = "des_packed_at"
        var table = TableConfig(name: Self.table, columns: columns, whereClause: "source = '\(name)'")
        table.statusNewValue = Status.new
        table.statusPendingValue = Status.pending
        table.statusClaimedValue = Status.claimed
        table.statusPackedValue = Status.packed
        table.statusFailedValue = Status.failed
        table.statusSourceDeletedValue = Status.superseded
        table.statusDeletedValue = Status.deleted
        table.shardKeyColumn = "des_shard"
        return table
    }

    /// The collation that compares text byte for byte, trailing spaces included, on MySQL
    /// (`utf8mb4_0900_bin`, MySQL 8) and MariaDB (`utf8mb4_nopad_bin`); nil elsewhere (SQLite and
    /// PostgreSQL compare bytes already).
    public static func exactCollation(_ dialect: String) -> String? {
        switch dialect {
        case "mariadb": return "utf8mb4_nopad_bin"
        case "mysql": return "utf8mb4_0900_bin"
        default: return nil
        }
    }

    /// The indexes the marker, the packer and recovery find rows by. Where the database has
    /// partial indexes (SQLite, PostgreSQL), only the rows in flight are indexed, as
    /// docs/operations.md recommends for any catalog: a row made ready enters the unnamed index,
    /// leaves it for the pending one when named, and leaves that when packed — a packed row, the
    /// bulk of the table, is in none of them. The pending rows are indexed by id, with the shard
    /// beside it: a packer's keyset read and claim walk it in order and stop at the limit,
    /// skipping other shards' rows in the index alone. (An index led by the shard would make
    /// every batch the marker names write one page of it per shard.) Every one leads with the
    /// source, which each statement names, so that SQLite's planner prefers them to the
    /// `(source, sha256)` index. An earlier release's full `(status, des_shard)` index is
    /// dropped. MySQL and MariaDB keep that full index.
    static func statusIndexes(dialect: String, ifNotExists: String) -> [String] {
        guard dialect == "sqlite" || dialect == "postgresql" else {
            return ["CREATE INDEX \(ifNotExists)des_fs_files_status ON \(table) (status, des_shard)"]
        }
        return [
            "DROP INDEX IF EXISTS des_fs_files_status",
            "CREATE INDEX IF NOT EXISTS des_fs_files_unnamed ON \(table) (source, id) WHERE status = '\(Status.new)' AND des_name IS NULL",
            "CREATE INDEX IF NOT EXISTS des_fs_files_pending ON \(table) (source, id, des_shard) WHERE status = '\(Status.pending)' AND des_name IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS des_fs_files_claimed ON \(table) (source, des_shard) WHERE status = '\(Status.claimed)'",
        ]
    }

    /// The DDL that creates the table and its indexes when missing, in `dialect` (`sqlite`,
    /// `postgresql`, `mysql` or `mariadb`); nil for a database DES keeps no metadata in.
    public static func ddl(dialect: String) -> [String]? {
        let (id, big, float, text, key): (String, String, String, String, String)
        switch dialect {
        case "sqlite": (id, big, float, text, key) = ("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER", "REAL", "TEXT", "TEXT")
        case "postgresql": (id, big, float, text, key) = ("BIGSERIAL PRIMARY KEY", "BIGINT", "DOUBLE PRECISION", "TEXT", "TEXT")
        case "mysql", "mariadb":
            (id, big, float, text, key) = ("BIGINT AUTO_INCREMENT PRIMARY KEY", "BIGINT", "DOUBLE", "TEXT", "VARCHAR(768)")
        default: return nil
        }
        let short = dialect == "sqlite" || dialect == "postgresql" ? "TEXT" : "VARCHAR(128)"
        // MySQL and MariaDB compare text by the table's collation, often case- and accent-blind
        // (utf8mb4_general_ci), and even utf8mb4_bin ignores trailing spaces: paths are compared
        // byte for byte, as the file system names them (`a.txt` and `a.txt ` are two files).
        let options = exactCollation(dialect).map { " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=\($0)" } ?? ""
        let create = """
            CREATE TABLE IF NOT EXISTS \(table) (
              id \(id),
              source \(short) NOT NULL,
              root INTEGER NOT NULL,
              path \(key) NOT NULL,
              body_key \(text) NOT NULL,
              stamp \(text) NOT NULL,
              version INTEGER NOT NULL,
              size_bytes \(big) NOT NULL,
              mtime_ns \(big) NOT NULL,
              ctime_ns \(big) NOT NULL,
              device \(big) NOT NULL,
              inode \(big) NOT NULL,
              tags \(text),
              sha256 \(short),
              observed_at \(float) NOT NULL,
              status \(short) NOT NULL,
              des_name \(short),
              des_shard INTEGER,
              des_claimed_by \(short),
              des_claimed_at \(float),
              des_container \(text),
              des_error \(text),
              des_packed_at \(float)
            )\(options)
            """
        let ifNotExists = dialect == "mysql" ? "" : "IF NOT EXISTS "
        // A table made before stamps and digests were kept (an earlier release) gets the columns,
        // nullable there: a row with no stamp is opened unchecked until its file changes. Columns
        // already there are left alone (MySQL and SQLite have no IF NOT EXISTS: the opener skips
        // their "duplicate column").
        let addColumns = [("stamp", text), ("sha256", short)].map { column, type in
            dialect == "postgresql"
                ? "ALTER TABLE \(table) ADD COLUMN IF NOT EXISTS \(column) \(type)" : "ALTER TABLE \(table) ADD COLUMN \(column) \(type)"
        }
        let roots = """
            CREATE TABLE IF NOT EXISTS \(rootsTable) (
              source \(short) NOT NULL,
              place INTEGER NOT NULL,
              root \(text) NOT NULL,
              PRIMARY KEY (source, place)
            )\(options)
            """
        return [
            create,
            roots,
        ] + addColumns + [
            // One row per version of a path: two scans at once cannot both insert it.
            dialect == "mysql" || dialect == "mariadb"
                ? "CREATE UNIQUE INDEX \(ifNotExists)des_fs_files_version ON \(table) (source(64), root, path(700), version)"
                : "CREATE UNIQUE INDEX \(ifNotExists)des_fs_files_version ON \(table) (source, root, path, version)",
        ] + statusIndexes(dialect: dialect, ifNotExists: ifNotExists) + [
            "CREATE INDEX \(ifNotExists)des_fs_files_name ON \(table) (des_name)",
            // Bytes DES already holds, found by their digest (a duplicate is recorded, not packed again).
            dialect == "mysql" || dialect == "mariadb"
                ? "CREATE INDEX \(ifNotExists)des_fs_files_sha256 ON \(table) (source(64), sha256(64))"
                : "CREATE INDEX \(ifNotExists)des_fs_files_sha256 ON \(table) (source, sha256)",
        ]
    }
}
