import DESFormat
import DESKit
import DESNaming
import Logging

/// `des rebuild`: recreates the metadata store's container records from the containers in
/// storage, after the store was lost.
///
/// Every object under `{prefix}/` whose key is a container key (`{prefix}/{day}/shard_{NN}_c{id}.des`)
/// is read with the suffix read readers use — footer, index and, for a sealed container, META,
/// checked against the seal — and recorded `uploaded` under its own id, unless the store has that
/// id or key already. Objects that cannot be used are reported, never recorded. Big files stored
/// beside the containers (`{prefix}/_bigFiles/…`) are bodies, not containers: counted, skipped.
///
/// What storage cannot give back: tombstones, dead letters and leases live only in the
/// metadata store (docs/operations.md says how to back it up).
public struct Rebuild: Sendable {
    /// What a rebuild found and did.
    public struct Report: Sendable, Equatable {
        /// Containers recorded now (or, in a dry run, that would be).
        public var recorded = 0
        /// Containers already recorded (by id or key): left as they are.
        public var alreadyRecorded = 0
        /// Files in the containers recorded.
        public var files = 0
        /// Objects under `{prefix}/_bigFiles/`.
        public var bigFiles = 0
        /// Of the recorded containers, those a compaction had replaced (recorded retired).
        public var retired = 0
        /// Objects not used, with why (`key: reason`).
        public var unusable: [String] = []
        /// Compaction notes passed over: they name a container that is not in storage (a
        /// compaction that died before uploading it, or whose unfinished container was discarded).
        public var ignoredNotes: [String] = []
        /// Containers recorded uploaded (or retired) whose objects are not in storage — a metadata
        /// store restored from an older backup — now recorded deleted, so lookups pass them over.
        public var missing: [String] = []
        /// Names two usable, not replaced containers of one (day, shard) both hold (`name is in
        /// A and B`), at most ``maxDuplicatesListed``: a copy of a container under another id, or
        /// another deployment's containers under the same prefix. Both are recorded, as they are
        /// in storage; `des check` then reports each such name until one copy is gone.
        public var duplicates: [String] = []
        /// How many names are held twice, listed or not.
        public var duplicateCount = 0
        /// The most duplicates ``duplicates`` lists.
        public static let maxDuplicatesListed = 100
        /// Creates an empty report.
        public init() {}
    }

    let metadata: any MetadataStore
    let storage: any StorageBackend
    let keyPrefix: String
    let shardBits: Int
    let logger: Logger

    /// A rebuild of `metadata`'s containers from `storage` under `keyPrefix`; `shardBits` checks
    /// that every name a container holds belongs to the (day, shard) its key says.
    public init(metadata: any MetadataStore, storage: any StorageBackend, keyPrefix: String, shardBits: Int, logger: Logger) {
        self.metadata = metadata
        self.storage = storage
        self.keyPrefix = keyPrefix
        self.shardBits = shardBits
        self.logger = logger
    }

    /// Where a container key says it belongs: its day, shard and id; nil for any other key.
    public static func parse(key: String, prefix: String) -> (day: String, shard: Int, id: Int64)? {
        let head = prefix.isEmpty ? "" : prefix + "/"
        guard key.hasPrefix(head) else { return nil }
        let parts = key.dropFirst(head.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].hasPrefix("shard_"), parts[1].hasSuffix(".des") else { return nil }
        let day = String(parts[0])
        let fields = parts[1].dropFirst("shard_".count).dropLast(".des".count).split(separator: "_", omittingEmptySubsequences: false)
        guard fields.count == 2, fields[1].hasPrefix("c"), let shard = Int(fields[0]), shard >= 0, let id = Int64(fields[1].dropFirst()), id > 0,
            isDay(day)
        else { return nil }
        // Only the key DES itself would write for these values (no "+7", no other padding).
        guard containerKey(prefix: prefix, day: day, shard: shard, id: id) == key else { return nil }
        return (day, shard, id)
    }

    static func isDay(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-") else { return false }
        return b.enumerated().allSatisfy { i, c in i == 4 || i == 7 || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) }
    }

    /// Lists the prefix, reads every container's index, and records the usable ones.
    public func run(dryRun: Bool) async throws -> Report {
        var report = Report()
        // (The listed prefix has no '/': some S3 servers refuse a listing whose prefix holds one.)
        let objects = try await storage.list(prefix: keyPrefix)
        let head = keyPrefix.isEmpty ? "" : keyPrefix + "/"
        let reader = StorageArchiveReader(storage: storage)
        // What is recorded already (a dry run says what a run would add without asking per object).
        let recorded = dryRun ? try await metadata.containers(state: nil, shard: nil, day: nil) : []
        let (recordedIDs, recordedKeys) = (Set(recorded.map(\.id)), Set(recorded.map(\.key)))
        // Containers a compaction replaced: recorded retired (their objects go after the grace
        // period), never uploaded beside the container that holds their live files.
        var replaced: [String: CompactedRecord] = [:]
        for object in objects where object.key.hasPrefix(head) && object.key.hasSuffix(".compacted") {
            let container = String(object.key.dropLast(".compacted".count))
            do {
                replaced[container] = try CompactedRecord.decode(try await storage.get(key: object.key))
            } catch {
                report.unusable.append("\(object.key): not a compaction record (\(error))")
            }
        }
        let stored = Set(objects.map(\.key))
        for (container, note) in replaced {
            if let target = note.replacedBy, !stored.contains(target) {
                report.ignoredNotes.append("\(container).compacted names \(target), which is not in storage (a compaction that did not finish)")
            }
        }
        // Containers in (day, shard, id) order: a name belongs to one (day, shard), so the names
        // held by one (day, shard)'s containers are all a duplicate can be looked for among.
        let ordered = objects.filter { $0.key.hasPrefix(head) }.map { ($0, Self.parse(key: $0.key, prefix: keyPrefix)) }
            .sorted { a, b in
                guard let x = a.1, let y = b.1 else { return a.1 == nil && b.1 != nil }
                return (x.day, x.shard, x.id) < (y.day, y.shard, y.id)
            }
        var group: (day: String, shard: Int)?
        var holders: [String: String] = [:]
        for (object, parsed) in ordered {
            if object.key.hasPrefix(head + "_bigFiles/") {
                report.bigFiles += 1
                continue
            }
            if object.key.hasSuffix(".compacted") { continue }
            guard let (day, shard, id) = parsed else {
                report.unusable.append("\(object.key): not a container key ({prefix}/{YYYY-MM-DD}/shard_{NN}_c{id}.des)")
                continue
            }
            let index: DESIndex
            do {
                index = try await reader.index(key: object.key)
            } catch {
                report.unusable.append("\(object.key): \(error)")
                continue
            }
            // A container holds only names of its key's (day, shard): a copy under another key is not one.
            if let stray = index.entries.first(where: { entry in
                guard let (nameDay, nameShard) = ContainerLookup.dayShard(of: entry.name, shardBits: shardBits) else { return false }
                return nameDay != day || nameShard != shard
            }) {
                report.unusable.append("\(object.key): holds \(stray.name), which belongs to another day or shard than its key says")
                continue
            }
            if !index.isSealed {
                logger.warning("a container without a seal is recorded; its entries carry no checksums", metadata: ["key": "\(object.key)"])
            }
            var record = ContainerRecord(
                id: id, day: day, shard: shard, key: object.key, state: .uploaded, holder: "rebuild", token: 0, fileCount: index.count,
                bytes: index.entries.reduce(0) { $0 + $1.dataLength }, size: object.size, etag: object.etag)
            // A note counts only when what it names is in storage: a compaction that died before its
            // new container was uploaded (or whose unfinished container was discarded since) left
            // notes naming nothing, and its sources hold the only copy of their files.
            if let note = replaced[object.key], note.replacedBy.map({ stored.contains($0) }) ?? true {
                record.state = .retired
                record.replacedBy = note.replacedBy.flatMap { Self.parse(key: $0, prefix: keyPrefix)?.id }
                report.retired += 1
            } else {
                if group?.day != day || group?.shard != shard { (group, holders) = ((day, shard), [:]) }
                for entry in index.entries {
                    guard let first = holders.updateValue(object.key, forKey: entry.name) else { continue }
                    holders[entry.name] = first
                    report.duplicateCount += 1
                    if report.duplicates.count < Report.maxDuplicatesListed { report.duplicates.append("\(entry.name) is in \(first) and \(object.key)") }
                }
            }
            if dryRun {
                if recordedIDs.contains(id) || recordedKeys.contains(object.key) { report.alreadyRecorded += 1 } else { report.recorded += 1; report.files += index.count }
                continue
            }
            if try await metadata.importContainer(record) {
                await NameRanges.record(record, names: index.entries.map(\.name), metadata: metadata, retry: RetryPolicy(), logger: logger)
                report.recorded += 1
                report.files += index.count
            } else {
                report.alreadyRecorded += 1
            }
        }
        // What the store records as in storage, under this prefix, but is not there. A listing
        // with no container at all changes nothing (a wrong bucket or prefix is likelier than
        // every container gone).
        let containerKeys = Set(objects.map(\.key).filter { Self.parse(key: $0, prefix: keyPrefix) != nil })
        for record in try await metadata.containers(state: nil, shard: nil, day: nil)
        where (record.state == .uploaded || record.state == .retired) && record.key.hasPrefix(head) && !containerKeys.contains(record.key) {
            report.missing.append(record.key)
            if dryRun || containerKeys.isEmpty { continue }
            if record.state == .uploaded {
                _ = try await metadata.forgetMissingContainer(id: record.id)
            } else {
                try await metadata.containerObjectDeleted(id: record.id)
            }
            logger.warning("a recorded container is not in storage; recorded deleted", metadata: ["key": "\(record.key)"])
        }
        if report.duplicateCount > 0 {
            logger.warning(
                "names held by two containers of their (day, shard); both are recorded, and des check reports each",
                metadata: ["names": "\(report.duplicateCount)", "first": "\(report.duplicates.first ?? "")"])
        }
        logger.info(
            "rebuild done",
            metadata: ["recorded": "\(report.recorded)", "already": "\(report.alreadyRecorded)", "unusable": "\(report.unusable.count)"])
        return report
    }
}
