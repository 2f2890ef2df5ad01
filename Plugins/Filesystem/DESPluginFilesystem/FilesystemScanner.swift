import DESFormat
import DESKit
import Foundation
import Logging
import Synchronization

/// `des scan` for a filesystem source: walks its roots and brings its catalog up to date (see
/// ``ScanPlan``): new files and new versions are inserted, files left alone long enough become
/// ready for the marker, files that vanished before they were packed are marked gone.
public struct FilesystemScanner: SourceScanner {
    let source: SourceConfig
    let settings: FilesystemSourceConfiguration
    let roots: [String]
    /// The config file's directory, which relative roots resolve against.
    let baseDirectory: String
    let catalog: SQLSourceConnector
    let logger: Logger
    /// inotify's hints, on once a scanning service asks for them (``watchForChanges()``).
    let hints = ChangeHints()
    /// When this scanner was made (ns since the epoch): the start of its run, for ``ScanTotals/waitingFromBefore``.
    let runStart = Int64(Date().timeIntervalSince1970 * 1_000_000_000)

    /// A scanner of `source` (a `filesystem` source) writing to `catalog` (its connector, as the
    /// registry makes it), with its roots resolved against `baseDirectory`. The plugin registers
    /// it for `des scan` (``FilesystemPlugin/register(in:)``).
    public init(source: SourceConfig, catalog: any SourceConnector, baseDirectory: String, logger: Logger) throws {
        guard let settings = source.connection.settings?.value(as: FilesystemSourceConfiguration.self),
            let catalog = catalog as? SQLSourceConnector
        else {
            throw DESKitError(.configuration, "source '\(source.name)' is not a filesystem source")
        }
        self.source = source
        self.settings = settings
        self.roots = settings.resolvedRoots(baseDirectory: baseDirectory)
        self.baseDirectory = baseDirectory
        self.catalog = catalog
        self.logger = logger
    }

    public func ownPathProblems(_ paths: [(what: String, paths: [String])]) -> [String] {
        settings.ownPathProblems(paths, baseDirectory: baseDirectory).map(\.description)
    }

    /// Turns inotify hints on (a scanning service; a one-shot scan adds no watches).
    public func watchForChanges() { hints.start() }

    public var settleSeconds: Double { max(1, settings.minAgeSeconds) }

    /// Whether inotify saw a change in the root at `index` since its last scan began.
    public func hasChanged(part index: Int) -> Bool { hints.changed(root: index) }

    /// How long a scan service waits between walks.
    public var rescanSeconds: Double { settings.rescanSeconds }

    public var sourceName: String { source.name }

    /// The roots, as the config names them.
    public var parts: [String] { settings.roots }

    /// Walks the root at `index` once and applies what changed.
    public func scan(part index: Int) async throws -> ScanTotals {
        var totals = ScanTotals()
        guard roots.indices.contains(index) else { return totals }
        do {
            let root = roots[index]
            // This root's hint is taken before the walk: a change during it hints again.
            hints.take(root: index)
            // The catalog's rows are read (on the database's thread) while the tree is walked (on the walk's).
            let started = ContinuousClock.now
            async let catalogRows = latestRows(root: index)
            let (files, walk): ([ScannedFile], WalkTotals)
            do {
                (files, walk) = try await Self.walk(root: root, index: index, settings: settings)
            } catch let error as WalkError {
                // Not there (an unmounted volume?) or not a directory: said as such, exit 66, and nothing marked gone.
                throw DESKitError(.notFound, "source '\(source.name)': \(error)")
            }
            for problem in walk.unreadable { logger.warning("could not read during the scan", metadata: ["root": "\(root)", "entry": "\(problem)"]) }
            for name in walk.skippedNames {
                logger.warning("a name that is not UTF-8 is left out (a catalog path is text)", metadata: ["root": "\(root)", "name": "\(name)"])
            }
            // Hints from here on (when on): the directories this walk found files in, and the root.
            if hints.isOn {
                var directories: Set<String> = [root]
                for file in files {
                    if let slash = file.path.lastIndex(of: "/") { directories.insert(root + "/" + file.path[..<slash]) }
                }
                hints.watch(root: index, directories: directories)
            }
            let walked = ContinuousClock.now
            var (rows, suspects) = try await catalogRows
            if !suspects.isEmpty { await recheck(suspects, in: &rows, root: index) }
            let read = ContinuousClock.now
            let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
            var plan = ScanPlan.make(
                catalog: rows, found: files, now: now, minAgeSeconds: settings.minAgeSeconds, complete: walk.unreadable.isEmpty, runStart: runStart)
            // Only what is written is put in order (a rescan of an unchanged tree writes nothing).
            if settings.priorityRecent {
                // Written first, so read first by the marker and the packer (they go by row id).
                let day = now - 86_400 * 1_000_000_000
                plan.order { a, b in (a.mtimeNanos >= day ? 0 : 1, a.path) < (b.mtimeNanos >= day ? 0 : 1, b.path) }
            } else {
                plan.order { $0.path < $1.path }
            }
            if !plan.stuck.isEmpty {
                logger.warning(
                    "rows the scan leaves as they are: a status DES does not write, or a version with no next one",
                    metadata: ["root": "\(root)", "paths": "\(plan.stuck.count)", "first": "\(plan.stuck.prefix(5))"])
            }
            let planned = ContinuousClock.now
            let made = try await apply(plan, now: now)
            logger.debug(
                "root scanned",
                metadata: [
                    "root": "\(root)", "walk_seconds": "\(walked - started)", "catalog_wait_seconds": "\(read - walked)",
                    "plan_seconds": "\(planned - read)", "write_seconds": "\(ContinuousClock.now - planned)",
                ])
            var t = ScanTotals()
            t.seen = files.count
            t.inserted = plan.inserts.count
            t.versions = plan.inserts.filter { $0.version > 1 }.count
            t.updated = plan.updates.count
            t.changing = plan.changing
            t.ready = made.ready
            t.duplicates = made.duplicates
            t.read = made.read
            t.gone = plan.gone.count
            t.superseded = plan.superseded.count
            t.retaken = made.retaken.map(String.init)
            t.waiting = plan.waiting + made.waiting
            t.waitingFromBefore = plan.waitingFromBefore
            t.directories = walk.directories
            t.excluded = walk.excluded
            t.links = walk.links
            t.special = walk.special + walk.otherFileSystems
            t.unreadable = walk.unreadable.count + walk.invalidNames
            totals = totals.adding(t)
            // A row and a file per path (10^6 each for 10^6 files) are freed off the scan's path.
            Self.free((consume files, consume rows, consume plan))
        }
        return totals
    }

    /// Drops `value` (the last reference to it) on a background thread: freeing the strings
    /// of every file and row of a large root took a rescan of 100,000 files some 15 ms, which a
    /// one-shot scan then waited for before it could exit.
    static func free<T: Sendable>(_ value: consuming T) {
        let box = Mutex<T?>(consume value)
        DispatchQueue.global(qos: .background).async { box.withLock { $0 = nil } }
    }

    /// The walk of one root on threads of its own (it blocks), its files collected.
    static func walk(root: String, index: Int, settings: FilesystemSourceConfiguration) async throws -> ([ScannedFile], WalkTotals) {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                let found = Mutex<[ScannedFile]>([])
                continuation.resume(
                    with: Result {
                        let totals = try FilesystemWalker(rules: settings.rules, threads: settings.scanThreads, yielding: Self.walkYielding).walkByDirectory(root: root, index: index) { files in
                            found.withLock { $0 += files }
                        }
                        return (found.withLock { $0 }, totals)
                    })
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// How far below the scan's priority its walk runs (``FilesystemWalker/yielding``): the
    /// catalog is read on one thread beside the walk's several, and the plan waits for both.
    static let walkYielding: Int32 = 5

    /// A failed row that may have failed because its file's bytes changed without its size or
    /// times moving: its id and path, and the SHA-256 the scan read and the packer expected.
    struct Suspect: Sendable {
        var id: Int64
        var path: String
        var digest: String
    }

    /// The latest row of each path of root `index`, and the failed rows whose files are read again
    /// before they are compared (``recheck(_:in:found:)``).
    ///
    /// Whether a failed row is taken again although its file did not change is decided from
    /// facts, never from the words of its error (which quotes its path, and so can say anything):
    /// its `stamp` no longer describes its own columns (the stamp is what changed: taken again),
    /// or its error is the packer's "bytes differ" (then the file is hashed again, and taken
    /// again only when its bytes are not those the scan read).
    func latestRows(root index: Int) async throws -> (ScanCatalog, [Suspect]) {
        let (d, name) = (catalog.dialect, source.name)
        // Outside a transaction: on SQLite the read (seconds, for millions of rows) then holds no
        // write lock, and the packer and marker write on meanwhile.
        return try await catalog.session { session in
            // Sized first, from a count (a table grown row by row places every row again each
            // time it doubles; collecting the rows first would hold them twice).
            let count = try session.query(
                "SELECT COUNT(*) FROM \(FilesystemCatalog.table) WHERE source = \(d.placeholder(1)) AND root = \(d.placeholder(2))",
                [.text(name), .int(Int64(index))]
            ).first?.values.first?.int ?? 0
            var latest = ScanCatalog(capacity: Int(min(max(count, 0), 1 << 26)))
            var suspects: [Suspect] = []
            let unexpected = DESArchiveWriter.unexpectedContentWords
            // Streamed (a driver that can does not hold every row's values at once), each row
            // read by position, in the SELECT's order (a lookup by name per column is a string
            // search per value); whether a row is named, its digest only while it is observed,
            // and its stamp and error only while it is failed are worked out by the database (a
            // string fewer to make per row, or three).
            try session.forEachRow(
                """
                SELECT id, path, version, size_bytes, mtime_ns, ctime_ns, device, inode, status,
                  CASE WHEN des_name IS NULL THEN 0 ELSE 1 END, CASE WHEN status = \(d.placeholder(4)) THEN des_error END,
                  CASE WHEN status = \(d.placeholder(3)) THEN sha256 END, CASE WHEN status = \(d.placeholder(4)) THEN stamp END
                FROM \(FilesystemCatalog.table)
                WHERE source = \(d.placeholder(1)) AND root = \(d.placeholder(2))
                """, [.text(name), .int(Int64(index)), .text(FilesystemCatalog.Status.observed), .text(FilesystemCatalog.Status.failed)]
            ) { row in
                guard row.count == 13, let path = row[1].text else { return }
                var kept = ScanPlan.Row(
                    id: row[0].int ?? 0, path: path, version: Int(row[2].int ?? 1), size: UInt64(max(0, row[3].int ?? 0)),
                    mtimeNanos: row[4].int ?? 0, ctimeNanos: row[5].int ?? 0,
                    device: UInt64(bitPattern: row[6].int ?? 0), inode: UInt64(bitPattern: row[7].int ?? 0),
                    status: row[8].text ?? "", named: row[9].int == 1, digest: row[11].text)
                if let stamp = row[12].text {
                    let recorded = FilesystemCatalog.parseStampColumn(stamp)
                    if recorded.stamp != kept.stamp {
                        kept.rehash = true
                    } else if let error = row[10].text, error.contains(unexpected), let digest = recorded.digest {
                        suspects.append(Suspect(id: kept.id, path: path, digest: String(digest)))
                    }
                }
                // (In any order: of a path's versions, the latest stays.)
                latest.keep(kept)
            }
            return (latest, suspects)
        }
    }

    /// Reads again the files of `suspects` (those still their path's latest row), and marks to
    /// be taken again (``ScanPlan/Row/rehash``) the rows whose files, unchanged since the row was
    /// written, now have other bytes than the scan read. A file that changed (the hash checks
    /// its stamp first) is taken again anyway; one that cannot be read is left failed.
    func recheck(_ suspects: [Suspect], in catalog: inout ScanCatalog, root: Int) async {
        let rows = suspects.compactMap { suspect in catalog[suspect.path].flatMap { $0.id == suspect.id ? ($0, suspect.digest) : nil } }
        let files = rows.map { row, _ in
            ScannedFile(
                root: root, path: row.path, size: row.size, mtimeNanos: row.mtimeNanos, ctimeNanos: row.ctimeNanos, device: row.device,
                inode: row.inode)
        }
        let hashed = await Self.hash(files, roots: roots, threads: settings.scanThreads)
        for ((row, digest), now) in zip(rows, hashed) {
            if case .sha256(let read) = now, read != digest { catalog.markRehash(path: row.path) }
        }
    }

    /// Writes `plan`, in transactions of at most ``rowsPerTransaction`` rows.
    func apply(_ plan: ScanPlan, now: Int64) async throws -> ReadyOutcome {
        let d = catalog.dialect
        let (name, table, observedAt) = (source.name, FilesystemCatalog.table, Double(now) / 1e9)
        let observed = FilesystemCatalog.Status.observed
        let settings = self.settings
        @Sendable func values(_ f: ScannedFile) -> [SQLValue] {
            [
                .int(Int64(bitPattern: f.size)), .int(f.mtimeNanos), .int(f.ctimeNanos), .int(Int64(bitPattern: f.device)),
                .int(Int64(bitPattern: f.inode)), Self.tagsValue(settings.tags(of: f.path)), .double(observedAt),
                .text(f.stamp.text),
            ]
        }
        let insert = """
            INSERT INTO \(table) (size_bytes, mtime_ns, ctime_ns, device, inode, tags, observed_at, stamp, source, root, path, body_key, version, status)
            VALUES (\(d.placeholders(14)))
            """
        // A row is taken again as its file is now only while it waits, not yet packed: one the
        // packer claimed or marked packed since the catalog was read is left alone (a packed
        // one's change is the next scan's new version). It loses the name it had: a packer with
        // `claim_mode: lease` claims nothing, so the row may be in a container that packer has
        // open, with the bytes it had; that container's mark names the row by id and name and no
        // longer finds it, and the marker names it afresh. Tried as a waiting row first, then as
        // a failed one (it may have failed since the read), whose letter the scan then closes.
        func restamp(_ statuses: Int) -> String {
            """
            UPDATE \(table) SET size_bytes = \(d.placeholder(1)), mtime_ns = \(d.placeholder(2)), ctime_ns = \(d.placeholder(3)),
            device = \(d.placeholder(4)), inode = \(d.placeholder(5)), tags = \(d.placeholder(6)), observed_at = \(d.placeholder(7)),
            stamp = \(d.placeholder(8)), status = \(d.placeholder(9)), sha256 = NULL, des_name = NULL, des_shard = NULL
            WHERE id = \(d.placeholder(10)) AND status IN (\(d.placeholders(statuses, from: 11)))
            """
        }
        let (update, updateFailed) = (restamp(4), restamp(1))
        let waiting: [SQLValue] = [observed, FilesystemCatalog.Status.new, FilesystemCatalog.Status.pending, FilesystemCatalog.Status.gone]
            .map { .text($0) }
        let failedStatus = SQLValue.text(FilesystemCatalog.Status.failed)
        // Superseded first (the table's status_source_deleted_value: the generic mark, packed rows
        // only), then the new versions: a scan killed in between leaves a superseded latest row,
        // which the next scan follows with the new version. (The other order would leave a packed
        // row behind a newer version, never superseded, its file no longer what it holds.)
        // (Not called with none: an empty list only probes, in a write transaction of its own.)
        if !plan.superseded.isEmpty { _ = try await catalog.markSourceDeleted(rowIDs: plan.superseded.map(String.init)) }
        for chunk in Self.chunks(plan.inserts, Self.rowsPerTransaction) {
            _ = try await catalog.transaction { session in
                for (file, version) in chunk {
                    _ = try session.execute(
                        insert,
                        values(file) + [
                            .text(name), .int(Int64(file.root)), .text(file.path), .text("\(file.root)/\(file.path)"), .int(Int64(version)),
                            .text(observed),
                        ])
                }
            }
        }
        // Failed rows the writes below take back: read failed by the scan, or failed since.
        var retaken: [Int64] = []
        for chunk in Self.chunks(plan.updates, Self.rowsPerTransaction) {
            retaken += try await catalog.transaction { session in
                var changed: [Int64] = []
                for (id, file) in chunk {
                    let row = values(file) + [.text(observed), .int(id)]
                    if try session.execute(update, row + waiting) > 0 { continue }
                    if try session.execute(updateFailed, row + [failedStatus]) > 0 { changed.append(id) }
                }
                return changed
            }
        }
        var made = try await makeReady(plan.ready, now: now)
        func markGone(_ statuses: Int) -> String {
            "UPDATE \(table) SET status = \(d.placeholder(1)) WHERE id = \(d.placeholder(2)) AND status IN (\(d.placeholders(statuses, from: 3)))"
        }
        let (goneWaiting, goneFailed) = (markGone(3), markGone(1))
        for chunk in Self.chunks(plan.gone, Self.rowsPerTransaction) {
            retaken += try await catalog.transaction { session in
                var changed: [Int64] = []
                for id in chunk {
                    let row: [SQLValue] = [.text(FilesystemCatalog.Status.gone), .int(id)]
                    if try session.execute(goneWaiting, row + Array(waiting.prefix(3))) > 0 { continue }
                    if try session.execute(goneFailed, row + [failedStatus]) > 0 { changed.append(id) }
                }
                return changed
            }
        }
        made.retaken = retaken
        return made
    }

    /// A file's tags as the catalog keeps them: a JSON array, or NULL when it has none.
    static func tagsValue(_ tags: [String]) -> SQLValue {
        guard !tags.isEmpty, let data = try? JSONSerialization.data(withJSONObject: tags), let text = String(data: data, encoding: .utf8) else {
            return .null
        }
        return .text(text)
    }

    /// Rows a scan writes per transaction. Large on purpose: a file's row is updated where it
    /// lies, and its digest lands at a random place in the `(source, sha256)` index, so a
    /// transaction of a thousand rows rewrote most of that index's pages (a SQLite catalog's WAL
    /// took 362 MB for a first scan of 100,000 files). Making 10^6 rows ready on SQLite took
    /// 14.6 s in transactions of 20,000 rows, 9.6 s in transactions of 100,000 (9.3 s in one;
    /// 4.1 s without the index): each holds the write lock for about a second, well inside the
    /// 10 s that other writers wait for it.
    static let rowsPerTransaction = 100_000

    static func chunks<T>(_ items: [T], _ size: Int) -> [[T]] {
        stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min($0 + size, items.count)]) }
    }
}
