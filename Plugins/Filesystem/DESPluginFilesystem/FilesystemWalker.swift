import CDESFileSystem
import DESFormat
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A regular file the walk accepted, with what change detection compares (restic's and borg's
/// test: path, size, mtime, ctime and inode).
public struct ScannedFile: Sendable, Hashable {
    /// The index of its root in the source's `roots`.
    public var root: Int
    /// Its path relative to the root, `/`-separated.
    public var path: String
    /// Its size in bytes.
    public var size: UInt64
    /// Its modification time, in nanoseconds since the epoch.
    public var mtimeNanos: Int64
    /// Its status-change time, in nanoseconds since the epoch.
    public var ctimeNanos: Int64
    /// The device it is on.
    public var device: UInt64
    /// Its inode number.
    public var inode: UInt64

    /// What the catalog keeps of it to know it again.
    public var stamp: FileStamp { FileStamp(device: device, inode: inode, size: size, mtimeNanos: mtimeNanos, ctimeNanos: ctimeNanos) }

    /// A file as a walk reports it.
    public init(root: Int, path: String, size: UInt64, mtimeNanos: Int64, ctimeNanos: Int64, device: UInt64, inode: UInt64) {
        (self.root, self.path, self.size, self.mtimeNanos) = (root, path, size, mtimeNanos)
        (self.ctimeNanos, self.device, self.inode) = (ctimeNanos, device, inode)
    }
}

/// What a walk saw besides the files it accepted.
public struct WalkTotals: Sendable, Hashable {
    /// Directories read.
    public var directories = 0
    /// Regular files accepted (the globs let them in).
    public var accepted = 0
    /// Names left out by the globs (a directory left out counts once; its contents are not read).
    public var excluded = 0
    /// Symbolic links left alone (`follow_symlinks: false`), or followed to outside the root.
    public var links = 0
    /// FIFOs, devices and sockets.
    public var special = 0
    /// Directories on another file system left alone (`one_file_system`).
    public var otherFileSystems = 0
    /// Names that are not UTF-8 (a path in the catalog is text).
    public var invalidNames = 0
    /// Those names (their bytes decoded leniently), for the log.
    public var skippedNames: [String] = []
    /// Entries that vanished or could not be read during the walk (each is logged by the caller).
    public var unreadable: [String] = []
    /// Creates zero totals.
    public init() {}
}

/// Walks one root in parallel: directories are read by `threads` threads with `openat` and
/// `getdents` (through `readdir`) beneath the root's open descriptor, and only the names the
/// globs accept are `stat`ed. The walk never leaves the root: `..` is never followed, a symbolic
/// link is left alone unless `followSymlinks` (and then only if it resolves beneath the root,
/// which the kernel checks: `openat2` with `RESOLVE_BENEATH`), and with `oneFileSystem` a
/// directory on another device is not entered.
public struct FilesystemWalker: Sendable {
    /// Which names are taken.
    public struct Rules: Sendable, Hashable {
        /// A file is taken when one of these matches it (empty: every file).
        public var include: [PathGlob]
        /// A file or directory is left out when one of these matches it.
        public var exclude: [PathGlob]
        /// Whether symbolic links are followed (beneath the root only).
        public var followSymlinks: Bool
        /// Whether directories on other file systems than the root's are left alone.
        public var oneFileSystem: Bool
        /// Rules.
        public init(include: [PathGlob], exclude: [PathGlob], followSymlinks: Bool, oneFileSystem: Bool) {
            self.include = include
            self.exclude = exclude
            self.followSymlinks = followSymlinks
            self.oneFileSystem = oneFileSystem
        }
    }

    /// The rules.
    public let rules: Rules
    /// How many directories are read at once.
    public let threads: Int

    /// How many steps of nice value its threads run below the thread that walks (0: at its
    /// priority): a scan reads its catalog on one thread while the walk reads directories on
    /// ``threads`` threads, and cannot plan before both end; at equal priority the catalog read
    /// got a fifth of the machine until the walk ended, and then ran alone.
    public let yielding: Int32

    /// A walker.
    public init(rules: Rules, threads: Int = 4, yielding: Int32 = 0) {
        self.rules = rules
        self.threads = max(1, threads)
        self.yielding = max(0, min(19, yielding))
    }

    /// Walks `root` (its index `index` in the source's roots), calling `found` for every accepted
    /// regular file, from any of the walk's threads. Throws when the root itself cannot be opened.
    public func walk(root: String, index: Int, found: @escaping @Sendable (ScannedFile) -> Void) throws -> WalkTotals {
        try walkByDirectory(root: root, index: index) { files in files.forEach(found) }
    }

    /// Walks `root` as ``walk(root:index:found:)`` does, calling `found` once a
    /// directory with the accepted regular files directly in it (not for a directory with none):
    /// a caller that collects them takes its lock once a directory, not once a file (the walk's
    /// threads contend for it otherwise).
    public func walkByDirectory(root: String, index: Int, found: @escaping @Sendable ([ScannedFile]) -> Void) throws -> WalkTotals {
        let rootFD = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else {
            throw WalkError(root: root, problem: "cannot be opened: \(String(cString: strerror(errno)))")
        }
        defer { close(rootFD) }
        var st = stat()
        guard fstat(rootFD, &st) == 0 else { throw WalkError(root: root, problem: "cannot be read: \(String(cString: strerror(errno)))") }
        let work = WalkQueue(rootDevice: UInt64(st.st_dev))
        work.push("")
        let rules = self.rules
        let (threads, yielding) = (self.threads, self.yielding)
        let walkers = (0..<threads).map { _ in
            Thread {
                if yielding > 0 { Self.lowerPriority(by: yielding) }
                while let dir = work.pop() {
                    var local = WalkTotals()
                    let files = Self.read(dir, rootFD: rootFD, index: index, rules: rules, queue: work, totals: &local)
                    if !files.isEmpty { found(files) }
                    work.finished(local)
                }
            }
        }
        for t in walkers {
            t.stackSize = 1 << 20
            t.start()
        }
        return work.waitUntilDone()
    }

    /// Raises the calling thread's nice value by `steps` (Linux sets it per thread): a thread
    /// may always lower its own priority. Fails quietly (the walk runs as it would).
    static func lowerPriority(by steps: Int32) {
        #if os(Linux)
        errno = 0
        let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        guard errno == 0 else { return }
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, min(19, current + steps))
        #endif
    }

    /// Reads one directory (`relative` to the root; "" is the root), queues its subdirectories
    /// and returns the accepted regular files in it.
    static func read(
        _ relative: String, rootFD: Int32, index: Int, rules: Rules, queue: WalkQueue, totals: inout WalkTotals
    ) -> [ScannedFile] {
        var found: [ScannedFile] = []
        let fd = relative.isEmpty ? dup(rootFD) : cdes_open_beneath(rootFD, relative)
        guard fd >= 0 else {
            // A followed link that leads out of the root (or into a loop) is a link left alone,
            // not a part of the tree that could not be read.
            if errno == EXDEV || errno == ELOOP { totals.links += 1 } else { totals.unreadable.append("\(relative): \(String(cString: strerror(errno)))") }
            return []
        }
        var dirStat = stat()
        guard fstat(fd, &dirStat) == 0, (dirStat.st_mode & S_IFMT) == S_IFDIR, let dir = fdopendir(fd) else {
            totals.unreadable.append("\(relative): not a directory any more")
            close(fd)
            return []
        }
        defer { closedir(dir) }
        if rules.oneFileSystem, !relative.isEmpty, UInt64(dirStat.st_dev) != queue.rootDevice {
            totals.otherFileSystems += 1
            return []
        }
        // Followed links can lead back up the tree: each directory is read once.
        if rules.followSymlinks, !queue.firstVisit(device: UInt64(dirStat.st_dev), inode: UInt64(dirStat.st_ino)) {
            totals.links += 1
            return []
        }
        totals.directories += 1
        let listing: DirectoryListing
        do {
            listing = try DirectoryListing(dir, path: relative)
        } catch {
            totals.unreadable.append("\(relative): \(error)")
            return []
        }
        let dfd = dirfd(dir)
        listing.forEach { cName, raw, listedType in
            guard let name = String(validating: raw, as: UTF8.self) else {
                // A catalog path is text: the name is left out, and said (with its bytes shown as best they can be).
                totals.invalidNames += 1
                totals.skippedNames.append((relative.isEmpty ? "" : relative + "/") + String(decoding: raw, as: UTF8.self))
                return
            }
            let path = relative.isEmpty ? name : relative + "/" + name
            if rules.exclude.contains(where: { $0.matches(path) }) {
                totals.excluded += 1
                return
            }
            var type = listedType
            if type == UInt8(DT_UNKNOWN) || (type == UInt8(DT_LNK) && rules.followSymlinks) {
                var st = stat()
                let flags = type == UInt8(DT_LNK) ? 0 : AT_SYMLINK_NOFOLLOW
                guard fstatat(dfd, cName, &st, flags) == 0 else {
                    if type == UInt8(DT_LNK) { totals.links += 1 } else { totals.unreadable.append("\(path): \(String(cString: strerror(errno)))") }
                    return
                }
                type = Self.direntType(st.st_mode)
            }
            switch type {
            case UInt8(DT_DIR) where listedType == UInt8(DT_LNK):
                // A link to a directory is not walked: a followed link stays beneath the root, so
                // the walk reaches that directory by its own path, the one its files are
                // catalogued under (walked by both, whichever parallel reader came first would
                // win, and files would move between the two paths from scan to scan). Nor does
                // a link lead into a directory the globs leave out.
                totals.links += 1
            case UInt8(DT_DIR):
                queue.push(path)
            case UInt8(DT_REG):
                if !rules.include.isEmpty, !rules.include.contains(where: { $0.matches(path) }) {
                    totals.excluded += 1
                    return
                }
                if listedType == UInt8(DT_LNK), !Self.beneath(rootFD, path) {
                    totals.links += 1
                    return
                }
                var st = stat()
                guard fstatat(dfd, cName, &st, listedType == UInt8(DT_LNK) ? 0 : AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                    totals.unreadable.append("\(path): vanished or changed kind during the walk")
                    return
                }
                totals.accepted += 1
                let stamp = FileStamp(st)
                found.append(
                    ScannedFile(
                        root: index, path: path, size: stamp.size, mtimeNanos: stamp.mtimeNanos, ctimeNanos: stamp.ctimeNanos,
                        device: stamp.device, inode: stamp.inode))
            case UInt8(DT_LNK):
                totals.links += 1
            default:
                totals.special += 1
            }
        }
        return found
    }

    /// Whether `path` (a link) resolves beneath the root: the kernel resolves it with `RESOLVE_BENEATH`.
    static func beneath(_ rootFD: Int32, _ path: String) -> Bool {
        let fd = cdes_open_beneath(rootFD, path)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    static func direntType(_ mode: mode_t) -> UInt8 {
        switch mode & S_IFMT {
        case S_IFDIR: return UInt8(DT_DIR)
        case S_IFREG: return UInt8(DT_REG)
        case S_IFLNK: return UInt8(DT_LNK)
        default: return UInt8(DT_UNKNOWN)
        }
    }
}

/// A root that cannot be walked, naming it.
public struct WalkError: Error, Sendable, CustomStringConvertible {
    /// The root.
    public var root: String
    /// What went wrong.
    public var problem: String
    public var description: String { "scan root '\(root)' \(problem)" }
}

/// The directories still to read, shared by the walk's threads; done when none is queued and
/// none is being read.
final class WalkQueue: Sendable {
    private struct State {
        var pending: [String] = []
        var reading = 0
        var totals = WalkTotals()
        var visited: Set<[UInt64]> = []
    }
    let rootDevice: UInt64
    private let state = Mutex(State())
    private let changed = NSCondition()

    init(rootDevice: UInt64) { self.rootDevice = rootDevice }

    func push(_ dir: String) {
        changed.lock()
        state.withLock { $0.pending.append(dir) }
        changed.signal()
        changed.unlock()
    }

    /// The next directory to read, or nil once the walk is over.
    func pop() -> String? {
        changed.lock()
        defer { changed.unlock() }
        while true {
            let next: String?? = state.withLock { s in
                if let dir = s.pending.popLast() {
                    s.reading += 1
                    return .some(dir)
                }
                return s.reading == 0 ? .some(nil) : nil
            }
            if let next { return next }
            changed.wait()
        }
    }

    /// Whether the directory (device, inode) is seen for the first time.
    func firstVisit(device: UInt64, inode: UInt64) -> Bool {
        state.withLock { $0.visited.insert([device, inode]).inserted }
    }

    /// One directory read: its totals are added.
    func finished(_ local: WalkTotals) {
        changed.lock()
        state.withLock { s in
            s.reading -= 1
            s.totals.directories += local.directories
            s.totals.accepted += local.accepted
            s.totals.excluded += local.excluded
            s.totals.links += local.links
            s.totals.special += local.special
            s.totals.otherFileSystems += local.otherFileSystems
            s.totals.invalidNames += local.invalidNames
            s.totals.skippedNames += local.skippedNames
            s.totals.unreadable += local.unreadable
        }
        changed.broadcast()
        changed.unlock()
    }

    /// Blocks until every directory is read; the totals.
    func waitUntilDone() -> WalkTotals {
        changed.lock()
        defer { changed.unlock() }
        while !state.withLock({ $0.pending.isEmpty && $0.reading == 0 }) { changed.wait() }
        return state.withLock { $0.totals }
    }
}
