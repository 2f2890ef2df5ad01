/// Who holds a lease: a stable pod identity plus this process's incarnation.
///
/// The instance is part of the lease: no instance ever takes a live lease from
/// another, even of the same pod. A restarted packer takes its dead predecessor's
/// leases at once only when it can prove the predecessor dead (same host, its
/// process gone: see ``ProcessIdentity``); otherwise it waits for them to expire.
public struct LeaseHolder: Sendable, Hashable, CustomStringConvertible {
    /// The pod's stable name.
    public var pod: String
    /// This process's unique incarnation id.
    public var instance: String
    /// Creates a holder.
    public init(pod: String, instance: String) {
        self.pod = pod
        self.instance = instance
    }
    /// `pod#instance`, the value stored in claim columns.
    public var description: String { "\(pod)#\(instance)" }
}

/// A granted shard lease.
public struct ShardLease: Sendable, Hashable {
    /// The shard.
    public var shard: Int
    /// The holder.
    public var holder: LeaseHolder
    /// The fencing token: bumped on every new grant, checked on every guarded write.
    public var token: Int64
    /// When the lease expires, in database time (seconds since the epoch).
    public var expiresAt: Double
    /// Whether this grant took the shard from someone (or from an earlier incarnation): run recovery.
    public var isNewGrant: Bool
    /// Creates a lease.
    public init(shard: Int, holder: LeaseHolder, token: Int64, expiresAt: Double, isNewGrant: Bool) {
        self.shard = shard
        self.holder = holder
        self.token = token
        self.expiresAt = expiresAt
        self.isNewGrant = isNewGrant
    }
}

/// The state of a container.
public enum ContainerState: String, Sendable, CaseIterable, Codable {
    /// Being written in a packer's work directory.
    case writing
    /// Uploaded, checked and recorded: its rows are (or will be) marked packed.
    case uploaded
    /// Abandoned (never uploaded); its rows went back to pending.
    case discarded
    /// Being written by `des compact` from the live entries of uploaded containers (never
    /// touched by a packer's recovery).
    case compacting
    /// Replaced by a compacted container; its object stays readable until `compaction.grace`
    /// has passed, then is deleted.
    case retired
    /// Retired, and its object deleted from storage.
    case deleted
}

/// A container as the metadata store records it.
public struct ContainerRecord: Sendable, Hashable, Codable {
    public var id: Int64
    /// `YYYY-MM-DD` of the names it holds.
    public var day: String
    public var shard: Int
    /// The storage key.
    public var key: String
    public var state: ContainerState
    /// `pod#instance` of the writer.
    public var holder: String
    /// The fencing token it was created under.
    public var token: Int64
    /// Files and bytes at the last checkpoint (final values once uploaded).
    public var fileCount: Int
    public var bytes: UInt64
    /// Object size and ETag once uploaded.
    public var size: UInt64?
    public var etag: String?
    /// Seconds since the record last changed (created, checkpointed, finished), in database time, when read.
    public var ageSeconds: Double?
    /// The compacted container that replaced this one (a retired container), when read.
    public var replacedBy: Int64?
    /// The names it holds (``NameRange``), when recorded and read.
    public var nameRange: NameRange?
    /// Creates a record.
    public init(
        id: Int64, day: String, shard: Int, key: String, state: ContainerState, holder: String, token: Int64,
        fileCount: Int, bytes: UInt64, size: UInt64?, etag: String?, ageSeconds: Double? = nil
    ) {
        self.ageSeconds = ageSeconds
        self.id = id
        self.day = day
        self.shard = shard
        self.key = key
        self.state = state
        self.holder = holder
        self.token = token
        self.fileCount = fileCount
        self.bytes = bytes
        self.size = size
        self.etag = etag
    }
}

/// A row that failed for good.
public struct DeadLetter: Sendable, Hashable, Codable {
    public var source: String
    public var rowID: String
    public var desName: String?
    /// `marker` or `packer`.
    public var stage: String
    public var reason: String
    /// Creates a dead letter.
    public init(source: String, rowID: String, desName: String?, stage: String, reason: String) {
        self.source = source
        self.rowID = rowID
        self.desName = desName
        self.stage = stage
        self.reason = reason
    }
}

/// A deleted file: from then on it is never served (410 Gone), and compaction drops its bytes.
public struct Tombstone: Sendable, Hashable {
    /// The store's order of deletes (servers poll for those above the last they saw).
    public var seq: Int64
    /// The file's DES name.
    public var name: String
    /// Why it was deleted (a ticket, "retention 30d").
    public var reason: String
    /// `delete` (by a person or a program), `retention`, or `unmarked` (an entry whose row was
    /// deleted or renamed while its container was open, in `claim_mode: lease`).
    public var origin: String
    /// When (seconds since 1970, the store's clock).
    public var deletedAt: Double
    /// The container that held it when it was deleted, and its size there.
    public var containerID: Int64?
    public var bytes: UInt64
    /// Creates a tombstone (`seq` and `deletedAt` are set by the store when it is added).
    public init(name: String, reason: String, origin: String, containerID: Int64?, bytes: UInt64, seq: Int64 = 0, deletedAt: Double = 0) {
        self.seq = seq
        self.name = name
        self.reason = reason
        self.origin = origin
        self.deletedAt = deletedAt
        self.containerID = containerID
        self.bytes = bytes
    }
}

/// A dead letter as stored: its id, when it was written, and when it was closed.
public struct DeadLetterRecord: Sendable, Hashable {
    /// The letter's id in the dead-letter table.
    public var id: Int64
    /// What failed, and why.
    public var letter: DeadLetter
    /// When it was written (seconds since 1970, the store's clock).
    public var createdAt: Double
    /// When it was closed; nil while it is open.
    public var resolvedAt: Double?
    /// Creates a record.
    public init(id: Int64, letter: DeadLetter, createdAt: Double, resolvedAt: Double?) {
        self.id = id
        self.letter = letter
        self.createdAt = createdAt
        self.resolvedAt = resolvedAt
    }
}

/// Which dead letters ``MetadataStore/deadLetters(matching:)`` lists.
public struct DeadLetterQuery: Sendable, Hashable {
    /// Only this source's letters.
    public var source: String?
    /// Only this stage's letters (`marker`, `packer`, `retire`).
    public var stage: String?
    /// Only these letters.
    public var ids: [Int64]?
    /// Only the letters of these rows (catalog row ids; at most 500 at once).
    public var rowIDs: [String]?
    /// Closed letters too.
    public var includeResolved = false
    /// At most this many (oldest first).
    public var limit = 1_000
    /// Creates a query; every filter is optional.
    public init(
        source: String? = nil, stage: String? = nil, ids: [Int64]? = nil, rowIDs: [String]? = nil, includeResolved: Bool = false,
        limit: Int = 1_000
    ) {
        self.source = source
        self.stage = stage
        self.ids = ids
        self.rowIDs = rowIDs
        self.includeResolved = includeResolved
        self.limit = limit
    }
}

/// Shard leases, containers, dead letters and the schema version.
///
/// PostgreSQL in production; SQLite as the embedded default. Every time
/// comparison uses database time, never the caller's clock.
public protocol MetadataStore: Sendable {
    /// Creates or upgrades the tables; returns the schema version.
    @discardableResult
    func migrate() async throws -> Int

    /// Takes the shard when it is free, expired, or already held by this very holder
    /// (pod and instance), in one statement; a new grant (anything but the renewal of a
    /// live lease of this holder) bumps the fencing token. Nil when another holder has a live lease.
    func acquireLease(shard: Int, holder: LeaseHolder, ttlSeconds: Double) async throws -> ShardLease?

    /// Ends, at once, the lease `holder` has on `shard` (if it still has it), so that the next
    /// ``acquireLease(shard:holder:ttlSeconds:)`` may take it: for a holder known to be dead.
    /// Returns whether a lease was ended.
    @discardableResult
    func expireLease(shard: Int, holder: LeaseHolder) async throws -> Bool

    /// Extends a lease still held with this token; nil when it was lost.
    func renewLease(_ lease: ShardLease, ttlSeconds: Double) async throws -> ShardLease?

    /// Gives a lease up (only when still held with this token).
    func releaseLease(_ lease: ShardLease) async throws

    /// Every lease row (for status).
    func leases() async throws -> [ShardLease]

    /// Records a new `writing` container for (day, shard) under a lease; its key is
    /// `{prefix}/{day}/shard_{NN}_c{id}.des`. Fails when the lease no longer holds.
    func createContainer(day: String, shard: Int, lease: ShardLease, keyPrefix: String) async throws -> ContainerRecord

    /// Records progress of a `writing` container (guarded by the lease's token).
    func checkpoint(containerID: Int64, fileCount: Int, bytes: UInt64, lease: ShardLease) async throws

    /// Records a container `uploaded` — only while `lease` still holds with its token.
    /// Returns false when fenced (the lease was lost). Idempotent: a retry of a call that
    /// committed (its answer lost with the connection) returns true, as the first would have.
    func markUploaded(containerID: Int64, fileCount: Int, bytes: UInt64, size: UInt64, etag: String, lease: ShardLease)
        async throws -> Bool

    /// Records the rows a `writing` container holds (`claim_mode: lease`) — only while `lease`
    /// still holds with its token, and before the container is recorded uploaded. Returns false
    /// when fenced.
    func recordManifest(containerID: Int64, manifest: ContainerManifest, lease: ShardLease) async throws -> Bool

    /// Uploaded containers of `shard` (nil: every shard) whose manifest is recorded and whose
    /// rows are not yet recorded as marked, oldest first.
    func unmarkedManifests(shard: Int?) async throws -> [UnmarkedManifest]

    /// Records that an uploaded container's manifest rows are marked packed in their catalogs.
    func manifestMarked(containerID: Int64) async throws

    /// Recovery: records a `writing` container whose object exists and verifies as `uploaded`.
    func recoverUploaded(containerID: Int64, fileCount: Int, size: UInt64, etag: String) async throws

    /// Marks a `writing` container `discarded` (a final state: it can never become uploaded).
    /// Returns false when the container was not `writing` (already uploaded or discarded).
    @discardableResult
    func discardContainer(id: Int64) async throws -> Bool

    /// Records the names an uploaded container holds (its first and last, and a filter when
    /// given); lookups then skip it for names outside them. Read back by ``containers(state:shard:day:)``.
    func recordNameRange(containerID: Int64, range: NameRange) async throws

    /// Records that the tombstones of `names` count against `containerID` (the container that
    /// now holds those files' bytes: compaction carried them over while they were deleted).
    func assignTombstones(names: [String], toContainer containerID: Int64) async throws

    /// Records an uploaded container whose object is not in storage (`des rebuild` against a
    /// metadata store restored from an older backup) as deleted, so lookups pass it over. Returns
    /// whether it was uploaded.
    func forgetMissingContainer(id: Int64) async throws -> Bool

    /// Containers, filtered by state, shard and day, each with the container that replaced it
    /// (``ContainerRecord/replacedBy``) when compaction retired it, and the names it holds
    /// (``ContainerRecord/nameRange``) when recorded.
    func containers(state: ContainerState?, shard: Int?, day: String?) async throws -> [ContainerRecord]

    /// Records a container found in storage (`des rebuild`), under its own id, as given
    /// (normally `uploaded`), unless a container with that id or key is recorded already.
    /// Returns whether it was added. Later containers get ids above every imported one.
    func importContainer(_ record: ContainerRecord) async throws -> Bool

    /// Adds rows to the dead-letter table.
    func addDeadLetters(_ letters: [DeadLetter]) async throws

    /// `des compact`: creates the record of a container being compacted (state `compacting`) in
    /// (`day`, `shard`), under `lease` — the compaction lease of that shard, whose fencing token
    /// every compaction write checks. Throws `fenced` when the lease is lost.
    func beginCompaction(day: String, shard: Int, lease: ShardLease, keyPrefix: String) async throws -> ContainerRecord

    /// `des compact`: in one transaction, records the compacted container uploaded and each of
    /// `replacing` retired (replaced by it) — only if the lease still holds and every one of
    /// `replacing` is still uploaded; otherwise nothing changes and it returns false.
    /// `containerID` nil: every file of `replacing` was deleted, and they are retired with no
    /// replacement.
    func finishCompaction(
        containerID: Int64?, fileCount: Int, bytes: UInt64, size: UInt64, etag: String, replacing: [Int64], lease: ShardLease
    ) async throws -> Bool

    /// Gives up a compacted container never finished (`compacting` → `discarded`).
    func abandonCompaction(containerID: Int64) async throws -> Bool

    /// Retired containers retired at least `seconds` ago (their objects may go).
    func retiredContainers(olderThanSeconds seconds: Double) async throws -> [ContainerRecord]

    /// Records a retired container's object deleted (`retired` → `deleted`).
    func containerObjectDeleted(id: Int64) async throws

    /// Files and bytes deleted (tombstoned) out of each of `containerIDs`, by the container the
    /// tombstone names.
    func tombstonedBytes(containerIDs: [Int64]) async throws -> [Int64: (files: Int, bytes: UInt64)]

    /// Which of `names` are tombstoned.
    func tombstonedNames(among names: [String]) async throws -> Set<String>

    /// `des retire`: records, before their bodies are deleted, the rows whose bodies it deletes
    /// (so that after a crash a missing body is known to be its own doing, not a volume that is
    /// not mounted).
    func addRetireIntents(source: String, rowIDs: [String]) async throws

    /// Which of `rowIDs` of `source` have a retire intent.
    func retireIntents(source: String, rowIDs: [String]) async throws -> Set<String>

    /// Drops the intents of rows that are marked.
    func clearRetireIntents(source: String, rowIDs: [String]) async throws

    /// Records deletes (`des delete`, `DELETE /files/{name}`, retention): each name once — a
    /// name tombstoned already keeps its first tombstone. Their `seq` and `deletedAt` are the
    /// store's. Returns how many were added.
    func addTombstones(_ tombstones: [Tombstone]) async throws -> Int

    /// As ``addTombstones(_:)``, returning the names tombstoned now: not a name tombstoned
    /// before, nor one another process tombstoned at the same moment (of two deletes of a name,
    /// exactly one is told it deleted it). Default: one ``addTombstones(_:)`` per name.
    func addTombstonesNamingAdded(_ tombstones: [Tombstone]) async throws -> [String]

    /// Tombstones with `seq` above `afterSeq`, in `seq` order, up to `limit`: how servers learn
    /// of deletes (they poll with the last `seq` they saw).
    func tombstones(afterSeq: Int64, limit: Int) async throws -> [Tombstone]

    /// The tombstone of `name`, if it was deleted.
    func tombstone(named name: String) async throws -> Tombstone?

    /// The newest dead letters.
    func deadLetters(limit: Int) async throws -> [DeadLetter]

    /// Dead letters as stored (with their ids and times), oldest first, as `query` selects them.
    func deadLetters(matching query: DeadLetterQuery) async throws -> [DeadLetterRecord]

    /// Closes the open letters among `ids` (`des dlq resolve`, and `retry` once the rows are
    /// back): a row that fails again afterwards gets a new letter. Returns how many closed.
    func resolveDeadLetters(ids: [Int64]) async throws -> Int

    /// Checks that the store answers and that its tables are there and readable (a store whose
    /// tables are missing is unhealthy, as one that cannot be reached).
    func healthCheck() async throws

    /// Closes connections.
    func close() async

    // MARK: Events (the outbox)

    /// The events written after `afterSeq`, in `seq` order, at most `limit`.
    func events(afterSeq: Int64, limit: Int) async throws -> [StoreEvent]

    /// The first and last `seq` the outbox holds (nil when it is empty). A follower whose last
    /// event is before `first - 1` missed events that were pruned.
    func eventBounds() async throws -> (first: Int64, last: Int64)?

    /// Waits until events may have been written (a wake-up from the database) or
    /// `timeoutSeconds` passed; true when woken. A store with no wake-ups just waits.
    func waitForEvents(timeoutSeconds: Double) async throws -> Bool
}

extension MetadataStore {
    public func addTombstonesNamingAdded(_ tombstones: [Tombstone]) async throws -> [String] {
        var added: [String] = []
        for tombstone in tombstones where try await addTombstones([tombstone]) > 0 { added.append(tombstone.name) }
        return added
    }

    /// Every tombstone with `seq` above `afterSeq`, in `seq` order, read 10,000 a query.
    public func tombstones(afterSeq: Int64) async throws -> [Tombstone] {
        var all: [Tombstone] = []
        var seq = afterSeq
        while true {
            let page = try await tombstones(afterSeq: seq, limit: 10_000)
            all += page
            guard let last = page.last, page.count == 10_000 else { return all }
            seq = last.seq
        }
    }
}

/// The storage key of a container: `{prefix}/{YYYY-MM-DD}/shard_{NN}_c{id}.des`
/// (NN at least two digits, id at least six).
public func containerKey(prefix: String, day: String, shard: Int, id: Int64) -> String {
    func pad(_ v: Int64, _ n: Int) -> String {
        let s = String(v)
        return s.count >= n ? s : String(repeating: "0", count: n - s.count) + s
    }
    let base = "\(day)/shard_\(pad(Int64(shard), 2))_c\(pad(id, 6)).des"
    return prefix.isEmpty ? base : "\(prefix)/\(base)"
}
