import DESFormat

/// A path compared byte for byte (``ExactText``): `café` precomposed and decomposed are two
/// names to a file system, two files, and two rows of the catalog.
public typealias ScanPath = ExactText

/// What one scan of a root changes in the catalog, worked out from the rows it holds and the
/// files the walk found (a pure function: the scanner applies it).
public struct ScanPlan: Sendable {
    /// The latest row of a path, as the catalog holds it.
    public struct Row: Sendable, Equatable {
        public var id: Int64
        public var path: String
        public var version: Int
        public var size: UInt64
        public var mtimeNanos: Int64
        public var ctimeNanos: Int64
        public var device: UInt64
        public var inode: UInt64
        public var status: String
        public var named: Bool
        /// A failed row whose file the packer read with other bytes than the scan hashed (it
        /// changed without its timestamps moving), or found to be another file than its stamp
        /// records (the stamp itself may be what changed): it is taken again, and hashed again.
        public var rehash: Bool
        /// The SHA-256 a pass read of the file as it is now (a row waiting for a twin with the
        /// same bytes keeps it, so it is not read again), or nil.
        public var digest: String?
        /// A row.
        public init(
            id: Int64, path: String, version: Int, size: UInt64, mtimeNanos: Int64, ctimeNanos: Int64, device: UInt64, inode: UInt64,
            status: String, named: Bool, rehash: Bool = false, digest: String? = nil
        ) {
            (self.id, self.path, self.version, self.size, self.mtimeNanos) = (id, path, version, size, mtimeNanos)
            (self.ctimeNanos, self.device, self.inode, self.status, self.named) = (ctimeNanos, device, inode, status, named)
            (self.rehash, self.digest) = (rehash, digest)
        }
        /// Whether `file` is the same version: path, size, mtime, ctime, device and inode all equal.
        func same(_ file: ScannedFile) -> Bool {
            size == file.size && mtimeNanos == file.mtimeNanos && ctimeNanos == file.ctimeNanos && device == file.device && inode == file.inode
        }
    }

    /// New rows: a file seen for the first time (version 1), or a packed one that changed (the next version).
    public var inserts: [(file: ScannedFile, version: Int)] = []
    /// Rows not yet packed whose file changed: their values are replaced and they wait again.
    public var updates: [(id: Int64, file: ScannedFile)] = []
    /// Rows seen again unchanged and old enough: ready to be named (`new`) or, named already, to be packed (`pending`).
    public var ready: [(id: Int64, named: Bool, file: ScannedFile, digest: String?)] = []
    /// Rows whose file is gone before it was packed.
    public var gone: [Int64] = []
    /// Packed rows whose file is no longer what they hold (it changed: a new version is
    /// inserted; or it vanished): the source no longer has their bytes, which only DES keeps now.
    public var superseded: [Int64] = []
    /// Rows still waiting (changed too recently, or seen once).
    public var waiting = 0
    /// Among ``updates``, rows that were already waiting and changed again: files still being
    /// written (a scan that only sees these has nothing new to hand on).
    public var changing = 0
    /// Among ``waiting``, rows of files that last changed before `runStart`
    /// (``make(rows:found:now:minAgeSeconds:complete:runStart:)``): an until-idle run scans
    /// again only for these; files made or changed while it runs are the next run's.
    public var waitingFromBefore = 0

    /// The plan for `found` (one walk of a root, in the order to write them) against `rows` (the
    /// latest row of each path of that root), at `now` (ns since the epoch); `complete` is
    /// false when part of the tree could not be read (then nothing is taken as gone); `runStart`
    /// (ns since the epoch) is when the scanning run began (``waitingFromBefore``).
    public static func make(
        rows: [ScanPath: Row], found: [ScannedFile], now: Int64, minAgeSeconds: Double, complete: Bool, runStart: Int64 = .max
    ) -> ScanPlan {
        var plan = ScanPlan()
        let minAge = Int64(minAgeSeconds * 1_000_000_000)
        var matched = 0  // files of `found` that have a row (a walk finds each path once)
        for file in found {
            guard let row = rows[ScanPath(file.path)] else {
                plan.inserts.append((file, 1))
                plan.wait(file, before: runStart, now: now)
                continue
            }
            matched += 1
            switch row.status {
            case FilesystemCatalog.Status.claimed:
                continue  // the packer has it; its own check before and after reading catches a change
            case FilesystemCatalog.Status.failed where !row.same(file) || row.rehash:
                // Never packed (refused as changed since the scan, or unreadable): it waits again as it is now.
                plan.updates.append((row.id, file))
                plan.wait(file, before: runStart, now: now)
            case FilesystemCatalog.Status.packed, FilesystemCatalog.Status.failed, FilesystemCatalog.Status.superseded,
                FilesystemCatalog.Status.deleted:
                // (A deleted version is never packed again under its name: a change is a new version.)
                if !row.same(file) || row.status == FilesystemCatalog.Status.superseded {
                    plan.inserts.append((file, row.version + 1))
                    if row.status == FilesystemCatalog.Status.packed { plan.superseded.append(row.id) }
                    plan.wait(file, before: runStart, now: now)
                }
            case FilesystemCatalog.Status.observed, FilesystemCatalog.Status.gone:
                if row.same(file) && row.status == FilesystemCatalog.Status.observed && now - Self.changedAt(file, now: now) >= minAge {
                    plan.ready.append((row.id, row.named, file, row.digest))
                } else {
                    if !row.same(file) || row.status == FilesystemCatalog.Status.gone { plan.updates.append((row.id, file)) }
                    if !row.same(file) && row.status == FilesystemCatalog.Status.observed { plan.changing += 1 }
                    plan.wait(file, before: runStart, now: now)
                }
            default:  // new, pending: ready; changed since, it waits again
                if !row.same(file) {
                    plan.updates.append((row.id, file))
                    plan.wait(file, before: runStart, now: now)
                }
            }
        }
        // Rows the walk did not find: none when every row was matched (an unchanged tree), else
        // those whose path is not among the files found.
        if complete && matched != rows.count {
            var seen = Set<ScanPath>(minimumCapacity: found.count)
            for file in found { seen.insert(ScanPath(file.path)) }
            for (path, row) in rows where !seen.contains(path) {
                // (A failed row's file was never packed: gone too, and out of the packer's way.)
                if [FilesystemCatalog.Status.observed, FilesystemCatalog.Status.new, FilesystemCatalog.Status.pending, FilesystemCatalog.Status.failed]
                    .contains(row.status)
                {
                    plan.gone.append(row.id)
                } else if row.status == FilesystemCatalog.Status.packed {
                    plan.superseded.append(row.id)
                }
            }
            plan.gone.sort()
            plan.superseded.sort()
        }
        return plan
    }

    /// Counts `file` as waiting (and as waiting from before the run when it last changed before `runStart`).
    mutating func wait(_ file: ScannedFile, before runStart: Int64, now: Int64) {
        waiting += 1
        if Self.changedAt(file, now: now) < runStart { waitingFromBefore += 1 }
    }

    /// Puts what is written in the order `areInIncreasingOrder` gives its files (``make(rows:found:now:minAgeSeconds:complete:)``
    /// keeps the walk's order; sorting after it sorts only the files that are written).
    public mutating func order(by areInIncreasingOrder: (ScannedFile, ScannedFile) -> Bool) {
        inserts.sort { areInIncreasingOrder($0.file, $1.file) }
        updates.sort { areInIncreasingOrder($0.file, $1.file) }
        ready.sort { areInIncreasingOrder($0.file, $1.file) }
    }

    /// When the file last changed: the later of its mtime and ctime, an mtime in the future
    /// (a client's skewed clock, an unpacked archive) set aside for its ctime, which only the
    /// kernel sets.
    static func changedAt(_ file: ScannedFile, now: Int64) -> Int64 {
        max(file.mtimeNanos > now ? file.ctimeNanos : file.mtimeNanos, file.ctimeNanos)
    }

}
