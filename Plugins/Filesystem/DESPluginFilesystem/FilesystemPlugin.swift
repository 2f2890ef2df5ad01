import DESFormat
import DESKit
import DESStorage
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Registers the `filesystem` source: directory trees scanned by `des scan` into a catalog that
/// DES keeps in the metadata store's database, drained by the stock marker and packer.
public enum FilesystemPlugin {
    /// The `connection.type` this plugin answers to.
    public static let type = "filesystem"

    /// Adds the filesystem source and its body fetcher to `registry`.
    public static func register(in registry: PluginRegistry) {
        registry.registerSource(type: type, connection: FilesystemSourceConfiguration.self, catalog: FilesystemCatalog.tableConfig) { context in
            try await openCatalog(context)
        }
        registry.registerBodyFetcher(type: type, configuration: NoConfiguration.self) { _, source, base in
            try FilesystemBodyFetcher(source: source, baseDirectory: base)
        }
        registry.registerScanner(type: type) { source, connector, base, logger in
            try FilesystemScanner(source: source, catalog: connector, baseDirectory: base, logger: logger)
        }
        registry.registerPathIndex(type: type) { source, connector, _ in
            try FilesystemPathIndex(source: source, catalog: connector)
        }
    }

    /// The source's catalog: the generic SQL source over the metadata store's database (made by
    /// the plugin registered for that database's type), its table created when missing.
    static func openCatalog(_ context: SourcePluginContext) async throws -> SQLSourceConnector {
        let what = "source '\(context.source.name)'"
        guard let metadata = context.metadata, let registry = context.registry else {
            throw DESKitError(.configuration, "\(what): a filesystem source keeps its catalog in the metadata store, which was not given")
        }
        var catalog = context.source
        catalog.connection = metadata
        let made = try await registry.makeSource(SourcePluginContext(source: catalog, baseDirectory: context.baseDirectory))
        guard let connector = made as? SQLSourceConnector, let ddl = FilesystemCatalog.ddl(dialect: connector.dialect.name) else {
            await made.close()
            throw DESKitError(
                .configuration,
                "\(what): the metadata store's database (\(metadata.type)) cannot hold a filesystem catalog: use SQLite, PostgreSQL or MySQL/MariaDB")
        }
        do {
            try await connector.transaction { session in
                for statement in ddl {
                    do {
                        _ = try session.execute(statement, [])
                    } catch let error as SQLError where statement.contains(" INDEX ") && error.message.lowercased().contains("duplicate") {
                        continue  // MySQL has no CREATE INDEX IF NOT EXISTS: the index is there
                    } catch let error as SQLError where statement.hasPrefix("ALTER") && error.message.lowercased().contains("duplicate column") {
                        continue  // SQLite and MySQL have no ADD COLUMN IF NOT EXISTS: the column is there
                    }
                }
            }
            try await checkCollation(context, connector: connector)
            try await checkRoots(context, connector: connector)
        } catch {
            await connector.close()
            throw error
        }
        return connector
    }

    /// On MySQL and MariaDB, a catalog whose paths compare by a collation that is not byte for
    /// byte (made by an earlier release: the database's default, `utf8mb4_general_ci`, or
    /// `utf8mb4_bin`, which pads with spaces) is refused: `A.txt` and `a.txt`, `a.txt` and
    /// `a.txt `, or two spellings of `é` would be one path to it, and the second file's row would
    /// fail the whole scan or stand for the first.
    static func checkCollation(_ context: SourcePluginContext, connector: SQLSourceConnector) async throws {
        guard let exact = FilesystemCatalog.exactCollation(connector.dialect.name) else { return }
        let (table, d) = (FilesystemCatalog.table, connector.dialect)
        let rows = try await connector.transaction { session in
            try session.query(
                "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = \(d.placeholder(1)) AND COLUMN_NAME = 'path'",
                [.text(table)])
        }
        guard let collation = rows.first?[0].text, ![exact, "binary"].contains(collation) else { return }
        throw DESKitError(
            .configuration,
            "source '\(context.source.name)': \(table).path compares by \(collation), which takes paths that differ in case, accents or trailing spaces for one; convert the table (ALTER TABLE \(table) CONVERT TO CHARACTER SET utf8mb4 COLLATE \(exact)) and scan again")
    }

    /// Rows name their root by its position in `roots`: the roots recorded for the source must
    /// be the configured ones, in the same places (new roots are recorded at the end). A list
    /// reordered, or with a root removed or changed, is refused: each root's rows would be read
    /// as another's.
    static func checkRoots(_ context: SourcePluginContext, connector: SQLSourceConnector) async throws {
        guard let settings = context.source.connection.settings?.value(as: FilesystemSourceConfiguration.self) else { return }
        let configured = settings.roots.map(FilesystemSourceConfiguration.normalizedRoot)
        // The same directory under two names (a link, `..`): the config check compares the text only.
        let real = settings.resolvedRoots(baseDirectory: context.baseDirectory).map(FilesystemSourceConfiguration.realPath)
        for i in real.indices {
            for j in real.indices where j > i {
                guard let a = real[i], let b = real[j] else { continue }
                if FilesystemSourceConfiguration.overlap(a, b) {
                    throw DESKitError(
                        .configuration,
                        "source '\(context.source.name)': roots '\(settings.roots[i])' and '\(settings.roots[j])' are \(a == b ? "the same directory" : "one inside the other") once links are followed (\(a), \(b)): every file there would be cataloged twice")
                }
            }
        }
        let (d, name, table) = (connector.dialect, context.source.name, FilesystemCatalog.rootsTable)
        try await connector.transaction { session in
            let rows = try session.query(
                "SELECT place, root FROM \(table) WHERE source = \(d.placeholder(1)) ORDER BY place", [.text(name)])
            var recorded: [Int: String] = [:]
            for row in rows { if let p = row["place"].int, let r = row["root"].text { recorded[Int(p)] = r } }
            for (position, root) in recorded.sorted(by: { $0.key < $1.key }) {
                guard position < configured.count else {
                    throw DESKitError(
                        .configuration,
                        "source '\(name)': its catalog has rows of root \(position + 1), '\(root)', which is no longer in roots: rows name their root by its place in the list; put it back (roots may only be added at the end)")
                }
                guard configured[position] == root else {
                    throw DESKitError(
                        .configuration,
                        "source '\(name)': root \(position + 1) is '\(configured[position])', but its catalog's rows there are of '\(root)': rows name their root by its place in roots; keep the list's order (add new roots at the end)")
                }
            }
            // Two processes starting at once may both record a new root: the second's insert does
            // nothing, and what is recorded is compared again.
            let mysql = d.name == "mysql" || d.name == "mariadb"
            let insert =
                mysql
                ? "INSERT IGNORE INTO \(table) (source, place, root) VALUES (\(d.placeholders(3)))"
                : "INSERT INTO \(table) (source, place, root) VALUES (\(d.placeholders(3))) ON CONFLICT (source, place) DO NOTHING"
            var added = false
            for position in configured.indices where recorded[position] == nil {
                _ = try session.execute(insert, [.text(name), .int(Int64(position)), .text(configured[position])])
                added = true
            }
            if added {
                let again = try session.query(
                    "SELECT place, root FROM \(table) WHERE source = \(d.placeholder(1)) ORDER BY place", [.text(name)])
                for row in again {
                    if let p = row["place"].int, let r = row["root"].text, Int(p) < configured.count, configured[Int(p)] != r {
                        throw DESKitError(
                            .configuration,
                            "source '\(name)': root \(p + 1) is '\(configured[Int(p)])', but another process recorded '\(r)' there at the same moment: the processes run different roots lists")
                    }
                }
            }
        }
    }
}

/// Reads a filesystem source's bodies: a row's key is `{root index}/{path beneath the root}`,
/// opened beneath that root (`openat2` with `RESOLVE_BENEATH`: nothing a row says leads outside).
public struct FilesystemBodyFetcher: BodyFetcher {
    let roots: [LocalBodyFetcher]

    /// The fetcher of `source` (a `filesystem` source), its roots resolved against `baseDirectory`.
    public init(source: SourceConfig, baseDirectory: String) throws {
        guard let settings = source.connection.settings?.value(as: FilesystemSourceConfiguration.self) else {
            throw DESKitError(.configuration, "source '\(source.name)': its filesystem connection settings are missing")
        }
        roots = settings.resolvedRoots(baseDirectory: baseDirectory).map { LocalBodyFetcher(root: $0) }
    }

    /// The root index and the path beneath it, of a key.
    func split(_ key: String) throws -> (LocalBodyFetcher, String) {
        guard let slash = key.firstIndex(of: "/"), let index = Int(key[..<slash]), roots.indices.contains(index) else {
            throw DESKitError(.invalidData, "'\(key)' is not a filesystem source's body key ({root}/{path})")
        }
        return (roots[index], String(key[key.index(after: slash)...]))
    }

    /// The body, opened beneath its root only when the packer appends it, and only if it is
    /// still the file the scan accepted (`location.stamp`, the row's stamp): device, inode,
    /// size, mtime and ctime all equal; and packed only if its bytes have the SHA-256 the scan
    /// read (after the stamp, behind a `#`), which catches a write that moved no timestamp.
    /// Anything else (rewritten since, replaced by another file, its root swapped for a link) is
    /// refused, and the next scan takes the new version.
    public func fetch(_ location: BodyLocation) async throws -> FetchedBody {
        let (root, path) = try split(location.key)
        let opened = try await root.fetch(BodyLocation(bucket: nil, key: path))
        guard let recorded = location.stamp, let open = opened.stampedOpener else { return opened }
        // Compared as numbers (no text made per file); a stamp that does not parse matches no file.
        let (scanned, expected, digest) = FilesystemCatalog.parseStampColumn(recorded)
        let shown = opened.path
        var body = FetchedBody(path: shown, stampedOpener: {
            let (fd, stamp) = try open()
            let now: FileStamp
            do {
                // The root's opener `fstat`s the body as it opens it: that look is the one compared.
                now = try stamp ?? FileStamp(fileDescriptor: fd, path: shown)
            } catch {
                _ = Glibc.close(fd)
                throw error
            }
            guard now == scanned else {
                _ = Glibc.close(fd)
                throw DESKitError(
                    .invalidData,
                    "'\(shown)' \(FilesystemCatalog.notTheScannedFileWords) (device:inode:size:mtime:ctime \(now.text), scanned \(expected)): not packed; the next scan takes it as it is now")
            }
            return (fd, now)
        })
        if let digest { body.expectedSHA256 = String(digest) }
        return body
    }

    public func version(of location: BodyLocation) async throws -> BodyVersion? {
        let (root, path) = try split(location.key)
        return try await root.version(of: BodyLocation(bucket: nil, key: path))
    }

    public func delete(_ locations: [BodyLocation]) async throws -> [BodyLocation: String] {
        var refused: [BodyLocation: String] = [:]
        for location in locations {
            let (root, path) = try split(location.key)
            for (_, why) in try await root.delete([BodyLocation(bucket: nil, key: path)]) { refused[location] = why }
        }
        return refused
    }
}
