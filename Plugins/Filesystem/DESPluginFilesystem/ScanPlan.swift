import DESFormat
import Dispatch
import Synchronization

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
        /// The file as this row records it.
        var stamp: FileStamp { FileStamp(device: device, inode: inode, size: size, mtimeNanos: mtimeNanos, ctimeNanos: ctimeNanos) }
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
    /// Paths whose latest row the scan cannot move on and leaves as it is: a status DES does not
    /// write, or a version with no next one (the largest integer). The scanner names them.
    public var stuck: [String] = []
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
        make(catalog: ScanCatalog(rows), found: found, now: now, minAgeSeconds: minAgeSeconds, complete: complete, runStart: runStart)
    }

    /// The plan for `found` against `catalog` (the latest row of each path of that root); the
    /// rest as ``make(rows:found:now:minAgeSeconds:complete:runStart:)``.
    ///
    /// A large walk is compared in slices on several threads (each file is one lookup and a few
    /// comparisons, and nothing else runs then: the walk and the catalog read are over); the
    /// slices' plans are joined in the walk's order, so the plan is the same as one thread's.
    public static func make(
        catalog: ScanCatalog, found: [ScannedFile], now: Int64, minAgeSeconds: Double, complete: Bool, runStart: Int64 = .max
    ) -> ScanPlan {
        let minAge = Int64(minAgeSeconds * 1_000_000_000)
        let slices = found.count >= 2 * minimumSlice ? min(maximumSlices, found.count / minimumSlice) : 1
        let results = Mutex([(plan: ScanPlan, matched: [Int32])](repeating: (ScanPlan(), []), count: slices))
        let step = (found.count + slices - 1) / slices
        DispatchQueue.concurrentPerform(iterations: slices) { slice in
            let range = min(found.count, slice * step)..<min(found.count, (slice + 1) * step)
            let part = compare(found[range], catalog: catalog, now: now, minAge: minAge, runStart: runStart)
            results.withLock { $0[slice] = part }
        }
        let parts = results.withLock { $0 }
        var plan = ScanPlan()
        let rows = catalog.rows
        var matched = 0  // rows whose path the walk found (it finds each path once)
        var wasFound = [Bool](repeating: false, count: rows.count)
        for part in parts {
            plan.join(part.plan)
            for index in part.matched where !wasFound[Int(index)] {
                wasFound[Int(index)] = true
                matched += 1
            }
        }
        // Rows the walk did not find: none when every row was matched (an unchanged tree), else
        // those whose path is not among the files found.
        if complete && matched != rows.count {
            for (index, row) in rows.enumerated() where !wasFound[index] {
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

    /// Files of a walk compared in one slice: at most this many slices, of at least this many files.
    static let (maximumSlices, minimumSlice) = (4, 16_384)

    /// The plan of the files `found` that have no row or a row that changes (``make(catalog:found:now:minAgeSeconds:complete:runStart:)``
    /// without what rows the walk did not find), and the indices of the rows they matched.
    static func compare(
        _ found: ArraySlice<ScannedFile>, catalog: ScanCatalog, now: Int64, minAge: Int64, runStart: Int64
    ) -> (plan: ScanPlan, matched: [Int32]) {
        var plan = ScanPlan()
        var matched: [Int32] = []
        matched.reserveCapacity(found.count)
        for file in found {
            guard let index = catalog.index(of: file.path) else {
                plan.inserts.append((file, 1))
                plan.wait(file, before: runStart, now: now)
                continue
            }
            let row = catalog.rows[index]
            matched.append(Int32(index))
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
                    guard row.version < Int.max else {
                        plan.stuck.append(file.path)  // (a version no scan wrote: there is no next one)
                        continue
                    }
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
            case FilesystemCatalog.Status.new, FilesystemCatalog.Status.pending:  // ready; changed since, it waits again
                if !row.same(file) {
                    plan.updates.append((row.id, file))
                    plan.wait(file, before: runStart, now: now)
                }
            default:
                // A status no DES wrote (set by hand, or by a later release): the row is left as
                // it is, and the file with it (taken as new, it could be packed again under the
                // name it already has).
                plan.stuck.append(file.path)
            }
        }
        return (plan, matched)
    }

    /// Adds `other`'s writes after this plan's, and its counts to these.
    mutating func join(_ other: ScanPlan) {
        inserts += other.inserts
        updates += other.updates
        ready += other.ready
        gone += other.gone
        superseded += other.superseded
        stuck += other.stuck
        waiting += other.waiting
        changing += other.changing
        waitingFromBefore += other.waitingFromBefore
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
