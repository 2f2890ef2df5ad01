import DESFormat

/// Where a file's body lives.
public struct BodyLocation: Sendable, Hashable, CustomStringConvertible {
    /// The bucket (S3) or nil for a path on local disk.
    public var bucket: String?
    /// The object key, or a path (relative to the source's body root, or absolute).
    public var key: String
    /// What the catalog recorded of the body when it was cataloged, for a fetcher that refuses
    /// a body that is no longer that (``ColumnMapping/bodyStamp``: the filesystem source's
    /// `device:inode:size:mtime:ctime`, and `#` and the SHA-256 the scan read); nil for most.
    public var stamp: String?

    /// Creates a location.
    public init(bucket: String?, key: String, stamp: String? = nil) {
        self.bucket = bucket
        self.key = key
        self.stamp = stamp
    }

    /// `s3://bucket/key`, or the key alone.
    public var description: String { bucket.map { "s3://\($0)/\(key)" } ?? key }
}

/// A catalog row claimed for packing.
public struct PendingFile: Sendable, Hashable {
    /// The source (its `name` in the config) the row came from.
    public var source: String
    /// The row's primary key, as text.
    public var rowID: String
    /// The DES name the marker gave the row.
    public var desName: String
    /// The row's shard.
    public var shard: Int
    /// The size recorded in the catalog, if any.
    public var size: UInt64?
    /// Where the body is.
    public var body: BodyLocation
    /// The metadata columns, in configured order (become the entry's META keys).
    public var metadata: DESMetadata
    /// Who holds the claim, as read (set by ``SourceConnector/staleClaims(shards:excludingHolder:olderThanSeconds:)``,
    /// so that recovery changes a row only while that same claim is still on it).
    public var claimedBy: String?

    /// Creates a pending file.
    public init(
        source: String, rowID: String, desName: String, shard: Int, size: UInt64?, body: BodyLocation,
        metadata: DESMetadata, claimedBy: String? = nil
    ) {
        self.claimedBy = claimedBy
        self.source = source
        self.rowID = rowID
        self.desName = desName
        self.shard = shard
        self.size = size
        self.body = body
        self.metadata = metadata
    }

    public static func == (a: PendingFile, b: PendingFile) -> Bool { a.source == b.source && a.rowID == b.rowID }
    public func hash(into h: inout Hasher) {
        h.combine(source)
        h.combine(rowID)
    }
}

/// A row that failed, and why.
public struct FailedRow: Sendable, Hashable {
    /// The row's primary key.
    public var rowID: String
    /// What went wrong (stored in the catalog and the dead-letter table).
    public var reason: String
    /// The DES name the row had when it was read, when known: ``SourceConnector/markFailedIfPending(_:)``
    /// then fails the row only while it still holds that name. (`claim_mode: lease` claims
    /// nothing: a row renamed since it was read — a filesystem source's row whose file changed —
    /// is not the row this failure is about.)
    public var desName: String?
    /// Creates a failed row.
    public init(rowID: String, reason: String, desName: String? = nil) {
        self.rowID = rowID
        self.reason = reason
        self.desName = desName
    }
}

/// Where ``SourceConnector/returnFailedRows(_:to:)`` sends failed rows.
public enum FailedRowTarget: String, Sendable, Hashable {
    /// Back to the marker: unnamed.
    case naming
    /// Back to the packer: pending.
    case packing
}

/// A name given to a row by the marker.
public struct NameAssignment: Sendable, Hashable {
    /// The row's primary key.
    public var rowID: String
    /// The DES name.
    public var desName: String
    /// The consistent hash of the name (hex), stored where the catalog has a column for it.
    public var hash: String
    /// The shard.
    public var shard: Int
    /// Creates an assignment.
    public init(rowID: String, desName: String, hash: String, shard: Int) {
        self.rowID = rowID
        self.desName = desName
        self.hash = hash
        self.shard = shard
    }
}

/// A row that needs a name, as the marker sees it.
public struct UnnamedRow: Sendable, Hashable {
    /// The row's primary key.
    public var rowID: String
    /// The body's key (used by naming strategies that derive names from it).
    public var key: String
    /// The value of the name column, for strategies that take the name from the catalog.
    public var presetName: String?
    /// Creates an unnamed row.
    public init(rowID: String, key: String, presetName: String? = nil) {
        self.rowID = rowID
        self.key = key
        self.presetName = presetName
    }
}

/// How the other rows pointing at one body stand (``SourceConnector/rowsSharingBodies(keys:excluding:)``).
public struct SharedBody: Sendable, Hashable {
    /// Some other row is not packed yet (unnamed, pending, claimed, failed): it still needs the body.
    public var neededByUnpacked: Bool
    /// Some other row's body was retired: `des retire` deleted this body for that row.
    public var retiredByAnother: Bool

    /// A body's sharers as described.
    public init(neededByUnpacked: Bool, retiredByAnother: Bool) {
        self.neededByUnpacked = neededByUnpacked
        self.retiredByAnother = retiredByAnother
    }
}

/// A row's id and where its body is.
public struct RowBody: Sendable, Hashable {
    /// The row's primary key.
    public var rowID: String
    /// Where its body is.
    public var body: BodyLocation

    /// A row and its body.
    public init(rowID: String, body: BodyLocation) {
        self.rowID = rowID
        self.body = body
    }
}

/// A packed row: where its body came from and which container holds it.
public struct PackedRow: Sendable, Hashable {
    public var rowID: String
    public var desName: String
    /// The container's storage key.
    public var container: String
    public var body: BodyLocation
    /// Whether `des retire` deleted the body (the row's status is `status_source_deleted_value`).
    public var bodyDeleted: Bool
    /// Creates a packed row.
    public init(rowID: String, desName: String, container: String, body: BodyLocation, bodyDeleted: Bool = false) {
        self.rowID = rowID
        self.desName = desName
        self.container = container
        self.body = body
        self.bodyDeleted = bodyDeleted
    }
}

/// The rows one container holds, to be marked packed into it (``SourceConnector/markPacked(_:holder:)``,
/// ``SourceConnector/markPackedUnlessPacked(_:)``).
public struct ContainerMark: Sendable, Hashable {
    /// The container's storage key (written in the rows' container column).
    public var container: String
    /// The rows' primary keys.
    public var rowIDs: [String]
    /// The DES names the container holds for those rows (used by the lease-mode mark only).
    public var names: [String]
    /// Creates a mark.
    public init(container: String, rowIDs: [String], names: [String] = []) {
        self.container = container
        self.rowIDs = rowIDs
        self.names = names
    }
}

/// A catalog row found by its DES name (``SourceConnector/rowsNamed(_:)``), with where it stands.
public struct NamedRow: Sendable, Hashable {
    /// A row's status, as the source's configured status labels say.
    public enum State: String, Sendable, Hashable {
        case pending, claimed, packed, failed
        /// A status that is none of the four (a label of the application's own).
        case other
    }
    public var rowID: String
    public var desName: String
    public var state: State
    /// Creates a named row.
    public init(rowID: String, desName: String, state: State) {
        self.rowID = rowID
        self.desName = desName
        self.state = state
    }
}

/// Row counts by status.
public struct SourceStats: Sendable, Equatable, Codable {
    /// Rows that have no DES name yet.
    public var unnamed: Int = 0
    /// Rows waiting to be packed.
    public var pending: Int = 0
    /// Rows claimed by a packer.
    public var claimed: Int = 0
    /// Rows packed.
    public var packed: Int = 0
    /// Rows that failed.
    public var failed: Int = 0
    /// Rows packed whose bodies `des retire` has deleted.
    public var retired: Int = 0
    /// Rows whose files were deleted (`des delete`, retention).
    public var deleted: Int = 0
    /// Rows in any other status.
    public var other: Int = 0
    /// Creates zero counts.
    public init() {}
}

/// A catalog of files to pack: one upstream table, in any database.
///
/// Implement this to bring an unusual source; for SQL databases implement a
/// ``SQLConnection`` and a ``SQLDialect`` instead and let ``SQLSourceConnector``
/// do the rest. All methods may be called concurrently.
public protocol SourceConnector: Sendable {
    /// The source's name (from the config).
    var name: String { get }

    /// Claims up to `limit` pending rows of the given shards for `holder`, atomically:
    /// rows locked by other claimers are skipped, never waited on. The shard filter
    /// is applied before the limit.
    func claim(shards: [Int], limit: Int, holder: String) async throws -> [PendingFile]

    /// Marks rows packed into `container` — only rows still claimed by `holder`
    /// (`holder` nil: regardless of claimer, for recovery). Returns how many changed.
    func markPacked(rowIDs: [String], container: String, holder: String?) async throws -> Int

    /// ``markPacked(rowIDs:container:holder:)`` for several containers at once, in one
    /// transaction where the source has them: a catalog whose rows of one container lie
    /// scattered over its pages (a container holds one shard's rows) then writes each page once
    /// per batch, not once per container. Returns, per mark, how many rows changed. Default: one
    /// call per container.
    func markPacked(_ marks: [ContainerMark], holder: String?) async throws -> [Int]

    /// Marks rows failed with their reasons. Returns how many changed.
    func markFailed(_ rows: [FailedRow], holder: String?) async throws -> Int

    /// Returns claimed rows to pending (`holder` nil: regardless of claimer). Returns how many changed.
    func releaseClaims(rowIDs: [String], holder: String?) async throws -> Int

    /// Pending rows of the given shards in row-id order after `afterRowID`, up to `limit`: a
    /// plain read that takes no lock and writes nothing (`packer.claim_mode: lease`, where the
    /// shard's fenced lease is the claim).
    func readPending(shards: [Int], afterRowID: String?, limit: Int) async throws -> [PendingFile]

    /// The rows ``readPending(shards:afterRowID:limit:)`` would return, in the same order, with
    /// only their ids and names (state `pending`); nil when the source has no such read (the
    /// default). A read that starts over from the first pending row while rows are in flight
    /// meets every one of them again (in `claim_mode: lease` they stay pending until their
    /// container is marked): the packer then reads ids and names first, and whole rows only for
    /// rows not in flight (``readPending(rowIDs:shards:)``).
    func readPendingNames(shards: [Int], afterRowID: String?, limit: Int) async throws -> [NamedRow]?

    /// How many rows the packer lets gather before it marks them packed in one batch, when
    /// nothing hurries it (at most a second): 1 marks each uploaded container at once (while one
    /// batch runs the next gathers, so marks follow the packing and overlap it); a database that
    /// writes every page a transaction touched again wants many (a container's rows lie
    /// scattered). Default 1.
    var markBatchRows: Int { get }

    /// The rows among `rowIDs` that ``readPending(shards:afterRowID:limit:)`` would return (still
    /// pending, of `shards`), in row-id order; ids of rows no longer pending are left out. Needed
    /// only where ``readPendingNames(shards:afterRowID:limit:)`` answers.
    func readPending(rowIDs: [String], shards: [Int]) async throws -> [PendingFile]

    /// Marks rows packed into `container` unless they are packed already (`claim_mode: lease`):
    /// the rows of a container recorded under the lease are the holder's, whatever a packer that
    /// lost the shard wrote on them meanwhile (a claim, a failure). Only a row whose id is in
    /// `rowIDs` *and* whose DES name is in `names` (the names the container holds) is marked: an
    /// id that now belongs to another row (renumbered, swapped, reused) marks nothing. Returns how
    /// many changed.
    func markPackedUnlessPacked(rowIDs: [String], names: [String], container: String) async throws -> Int

    /// ``markPackedUnlessPacked(rowIDs:names:container:)`` for several containers at once (see
    /// ``markPacked(_:holder:)``). Returns, per mark, how many rows changed. Default: one call
    /// per container.
    func markPackedUnlessPacked(_ marks: [ContainerMark]) async throws -> [Int]

    /// Every row (within the source's `where`) whose DES name is one of `names`, whatever its
    /// status (`claim_mode: lease`): a read, used when a manifest's mark by id changed fewer rows
    /// than it names, to find a row whose id changed while it was in flight by the name its
    /// container holds — and to see when a name is shared by several rows.
    func rowsNamed(_ names: [String]) async throws -> [NamedRow]

    /// Marks rows failed with their reasons, only rows still pending — and, for a row given with
    /// its ``FailedRow/desName``, only while it still holds that name. Returns how many changed.
    func markFailedIfPending(_ rows: [FailedRow]) async throws -> Int

    /// `des retire`: marks packed rows whose bodies were deleted — `status_source_deleted_value`,
    /// and `source_deleted_at` where the table has the column — only rows still packed. An empty
    /// list writes nothing and only checks that the status can be written to this table (a
    /// catalog error otherwise, before any body is deleted). Returns how many changed.
    func markSourceDeleted(rowIDs: [String]) async throws -> Int

    /// `des retire`: how the rows of this source other than `excluding` that point at the same
    /// body keys as given stand, by key (keys no other row points at may be left out). A catalog
    /// may list one body under several rows; retire keeps a body another row still needs, and
    /// takes one that another row's retire deleted as retired, not as gone missing.
    func rowsSharingBodies(keys: [String], excluding rowIDs: Set<String>) async throws -> [String: SharedBody]

    /// `des retire`: the bodies of rows not yet packed (unnamed, pending, claimed, failed, or a
    /// status DES did not write), after `afterRowID` in id order, up to `limit`; nil when this
    /// source cannot list them. Retire resolves each to the file it reaches, and keeps that file
    /// whatever spelling a packed row gives it.
    func bodiesNotYetPacked(afterRowID: String?, limit: Int) async throws -> [RowBody]?

    /// Deletes (`des delete`, retention): marks the rows holding `names` with
    /// `status_deleted_value` — only rows packed (or packed with their body retired). An empty
    /// list only checks that the status can be written here. Returns how many changed.
    func markDeleted(names: [String]) async throws -> Int

    /// Sends failed rows back (`des dlq retry`): to naming (a row the marker failed: unnamed
    /// again, its status the table's "new" value or NULL) or to packing (a named row the packer
    /// failed: pending again, no claim). Only rows that are failed, and of that kind, change;
    /// their error column is cleared. Returns how many changed.
    func returnFailedRows(_ rowIDs: [String], to target: FailedRowTarget) async throws -> Int

    /// Claimed rows of the given shards whose claim is held by someone other than
    /// `excludingHolder`, or is older than `olderThanSeconds` (negative: a time in the future), each
    /// with its ``PendingFile/claimedBy``.
    func staleClaims(shards: [Int]?, excludingHolder: String?, olderThanSeconds: Double?) async throws -> [PendingFile]

    /// Rows needing a name, up to `limit`, locked for the duration of `assign`
    /// (skipping rows locked by others); the names `assign` returns are written
    /// in one statement. Returns the number of rows named.
    func nameRows(limit: Int, assign: @escaping @Sendable ([UnnamedRow]) throws -> [NameAssignment]) async throws -> Int

    /// Packed rows with their container, in row-id order after `afterRowID` (for audits and
    /// `des retire`): rows packed, and rows packed whose bodies retire has deleted
    /// (``PackedRow/bodyDeleted``).
    func packedRows(afterRowID: String?, limit: Int) async throws -> [PackedRow]

    /// Row counts by status.
    func stats() async throws -> SourceStats

    /// Rows of each of `statuses`, each count stopping at `cap`, and the age of the oldest pending
    /// row: for the backlog gauges, refreshed on an interval. Nil when the source cannot tell.
    func backlog(cap: Int, statuses: Set<SourceBacklog.Status>) async throws -> SourceBacklog?

    /// The shards that have work for a packer: named rows that are pending or claimed (a claim
    /// may be a dead packer's, which only the shard's lease holder recovers). A packer leases
    /// only these, so its leases follow the work, not `2^shard_bits`. One query; nil when the
    /// source cannot tell, and then every shard counts as having work (the default).
    func shardsWithWork() async throws -> Set<Int>?

    /// Checks that the source answers (for health checks).
    func healthCheck() async throws

    /// Closes connections.
    func close() async
}

extension SourceConnector {
    public func shardsWithWork() async throws -> Set<Int>? { nil }

    /// A source without keyset reads cannot run under `claim_mode: lease`.
    public func readPending(shards: [Int], afterRowID: String?, limit: Int) async throws -> [PendingFile] {
        throw DESKitError(.configuration, "source '\(name)' cannot run with packer.claim_mode lease: it has no keyset read of pending rows")
    }

    /// No read of ids and names alone: the packer reads whole rows.
    public func readPendingNames(shards: [Int], afterRowID: String?, limit: Int) async throws -> [NamedRow]? { nil }

    /// Each uploaded container is marked at once.
    public var markBatchRows: Int { 1 }

    /// See ``readPendingNames(shards:afterRowID:limit:)``.
    public func readPending(rowIDs: [String], shards: [Int]) async throws -> [PendingFile] {
        throw DESKitError(.configuration, "source '\(name)' has no read of pending rows by id, yet answered readPendingNames")
    }

    /// See ``readPending(shards:afterRowID:limit:)``.
    public func markPackedUnlessPacked(rowIDs: [String], names: [String], container: String) async throws -> Int {
        throw DESKitError(.configuration, "source '\(name)' cannot run with packer.claim_mode lease: it cannot mark a manifest's rows")
    }

    /// One ``markPackedUnlessPacked(rowIDs:names:container:)`` per mark, in order.
    public func markPackedUnlessPacked(_ marks: [ContainerMark]) async throws -> [Int] {
        var changed: [Int] = []
        for mark in marks { changed.append(try await markPackedUnlessPacked(rowIDs: mark.rowIDs, names: mark.names, container: mark.container)) }
        return changed
    }

    /// One ``markPacked(rowIDs:container:holder:)`` per mark, in order.
    public func markPacked(_ marks: [ContainerMark], holder: String?) async throws -> [Int] {
        var changed: [Int] = []
        for mark in marks { changed.append(try await markPacked(rowIDs: mark.rowIDs, container: mark.container, holder: holder)) }
        return changed
    }

    /// See ``readPending(shards:afterRowID:limit:)``.
    public func rowsNamed(_ names: [String]) async throws -> [NamedRow] {
        throw DESKitError(.configuration, "source '\(name)' cannot run with packer.claim_mode lease: it cannot find rows by name")
    }

    /// A source that cannot list its rows by body key: nothing known to share a body. A source
    /// whose rows may share one should implement ``rowsSharingBodies(keys:excluding:)``, or
    /// `des retire` may delete a body that a row not yet packed still needs.
    public func rowsSharingBodies(keys: [String], excluding rowIDs: Set<String>) async throws -> [String: SharedBody] { [:] }

    /// A source that cannot list its rows not yet packed: retire compares keys only.
    public func bodiesNotYetPacked(afterRowID: String?, limit: Int) async throws -> [RowBody]? { nil }

    /// A source that cannot record retired bodies: `des retire` says so before deleting anything.
    public func markSourceDeleted(rowIDs: [String]) async throws -> Int {
        throw DESKitError(.configuration, "source '\(name)' cannot record deleted bodies, so des retire cannot run on it")
    }

    /// A source that cannot record deletes in its rows: the tombstone alone keeps the file deleted.
    public func markDeleted(names: [String]) async throws -> Int {
        throw DESKitError(.configuration, "source '\(name)' cannot record deleted files in its rows")
    }

    /// A source that cannot send rows back: `des dlq retry` says so (`resolve` still works).
    public func returnFailedRows(_ rowIDs: [String], to target: FailedRowTarget) async throws -> Int {
        throw DESKitError(.configuration, "source '\(name)' cannot send failed rows back (des dlq retry); fix them by hand, then des dlq resolve")
    }

    /// See ``readPending(shards:afterRowID:limit:)``.
    public func markFailedIfPending(_ rows: [FailedRow]) async throws -> Int {
        throw DESKitError(.configuration, "source '\(name)' cannot run with packer.claim_mode lease: it cannot mark rows from pending")
    }
}
