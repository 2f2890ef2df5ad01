import Logging

/// What a source plugin runs for `des scan`: it brings its source's catalog up to date with
/// where the files live (the `filesystem` source walks its roots). A plugin registers one with
/// ``PluginRegistry/registerScanner(type:factory:)``.
public protocol SourceScanner: Sendable {
    /// The source scanned.
    var sourceName: String { get }
    /// The parts of the source that scans on several machines split between them under leases
    /// (the `filesystem` source's roots, as the config names them); each is scanned on its own.
    var parts: [String] { get }
    /// Scans the part at `index` of ``parts`` once and writes what changed into the catalog.
    func scan(part index: Int) async throws -> ScanTotals
    /// How long a scanning service waits between scans.
    var rescanSeconds: Double { get }
    /// How soon to look again when a scan left files waiting to settle (the filesystem source:
    /// its `min_age`, at least 1 s).
    var settleSeconds: Double { get }
    /// Whether the source hints that the part at `index` changed since it was last scanned (the
    /// filesystem source: inotify): a scanning service then scans soon, not after ``rescanSeconds``.
    func hasChanged(part index: Int) -> Bool
    /// Starts gathering those hints (a scanning service calls it once; a one-shot scan does not).
    func watchForChanges()
    /// Of DES's own paths (absolute, in groups: `what` names each — `storage.root`, the
    /// metadata database with its journals, …), those a part of the source holds and does not
    /// leave out, each as a sentence saying how to leave it out. `des scan` refuses to start
    /// while there is one: it would pack DES's own files (default: none).
    func ownPathProblems(_ paths: [(what: String, paths: [String])]) -> [String]
}

extension SourceScanner {
    public var settleSeconds: Double { rescanSeconds }
    public func hasChanged(part index: Int) -> Bool { false }
    public func watchForChanges() {}
    public func ownPathProblems(_ paths: [(what: String, paths: [String])]) -> [String] { [] }

    /// Scans every part once.
    public func scan() async throws -> ScanTotals {
        var totals = ScanTotals()
        for index in parts.indices { totals = totals.adding(try await scan(part: index)) }
        return totals
    }
}

/// What one scan did.
public struct ScanTotals: Sendable, Hashable {
    /// Files seen.
    public var seen = 0
    /// Rows inserted (first versions and new versions).
    public var inserted = 0
    /// New versions among them (files that changed after they were packed).
    public var versions = 0
    /// Rows not yet packed whose file changed.
    public var updated = 0
    /// Among ``updated``, rows already waiting whose file changed again: still being written.
    public var changing = 0
    /// Rows handed to the marker (unchanged, old enough).
    public var ready = 0
    /// Files read (each is read once, when it becomes ready, to hash it; never on a rescan of
    /// an unchanged tree).
    public var read = 0
    /// Rows whose bytes DES already held (another path, an earlier version): recorded as
    /// references to that entry, not packed again.
    public var duplicates = 0
    /// Rows whose file vanished before it was packed.
    public var gone = 0
    /// Packed rows whose file changed or vanished since.
    public var superseded = 0
    /// Ids of failed rows the scan took out of failure (taken again, or gone with their file):
    /// the coordinator closes their open dead letters once the scan has written them.
    public var retaken: [String] = []
    /// Rows still waiting for their file to be left alone.
    public var waiting = 0
    /// Among ``waiting``, rows of files that last changed before this scanning run began: an
    /// until-idle run scans again only while some wait (files made or changed while it runs are
    /// the next run's, so that a directory that never stops receiving files cannot keep it
    /// running). A scanner that does not set it leaves it equal to ``waiting``.
    public var waitingFromBefore: Int {
        get { counted ?? waiting }
        set { counted = newValue }
    }
    private var counted: Int?
    /// Directories read.
    public var directories = 0
    /// Names the globs left out.
    public var excluded = 0
    /// Symbolic links left alone.
    public var links = 0
    /// FIFOs, devices, sockets.
    public var special = 0
    /// Entries that could not be read.
    public var unreadable = 0
    /// Zero totals.
    public init() {}

    /// Rows the scan wrote.
    public var changed: Int { inserted + updated + ready + duplicates + gone + superseded }

    /// Whether the scan moved anything on: rows written other than those of files still being
    /// written (a file appended to without end keeps changing, and is no progress).
    public var progressed: Bool { changed > changing }

    /// These totals and `other`'s, added.
    public func adding(_ other: ScanTotals) -> ScanTotals {
        var t = self
        t.seen += other.seen
        t.inserted += other.inserted
        t.versions += other.versions
        t.updated += other.updated
        t.changing += other.changing
        t.ready += other.ready
        t.duplicates += other.duplicates
        t.read += other.read
        t.gone += other.gone
        t.superseded += other.superseded
        t.retaken += other.retaken
        t.waiting += other.waiting
        t.waitingFromBefore = waitingFromBefore + other.waitingFromBefore
        t.directories += other.directories
        t.excluded += other.excluded
        t.links += other.links
        t.special += other.special
        t.unreadable += other.unreadable
        return t
    }
}
