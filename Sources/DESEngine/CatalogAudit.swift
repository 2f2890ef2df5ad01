import DESFormat
import DESKit
import DESNaming
import Foundation
import Logging

/// Reads every packed row back by its name and compares it with its body; checks
/// that every name is in exactly one uploaded container, and that no work is
/// stranded: rows claimed for longer than the lease TTL and `writing` containers
/// untouched for longer than it are problems (`des check`).
public struct CatalogAudit: Sendable {
    /// What the audit found.
    public struct Report: Sendable, Equatable {
        /// Packed rows read back.
        public var rowsChecked = 0
        /// Bytes read back.
        public var bytesChecked: UInt64 = 0
        /// Uploaded containers.
        public var containers = 0
        /// Entries across uploaded containers.
        public var entries = 0
        /// Packed rows whose bodies `des retire` deleted (their bytes checked against META's sha256 only).
        public var rowsRetired = 0
        /// Files deleted (tombstones), whether or not a container still holds their bytes.
        public var filesDeleted = 0
        /// Rows not packed, by status, per source.
        public var unpacked: [String: SourceStats] = [:]
        /// Problems (mismatches, missing or duplicated entries), at most 100.
        public var problems: [String] = []
        /// Whether everything checked out.
        public var isOK: Bool { problems.isEmpty }
        /// Creates an empty report.
        public init() {}
    }

    let sources: [any SourceConnector]
    let fetchers: [String: any BodyFetcher]
    let metadata: any MetadataStore
    let storage: any StorageBackend
    let staleAfterSeconds: Double
    let shardBits: Int?
    let desNamesOnly: Bool

    /// Creates an audit over these parts; claims and `writing` containers older than
    /// `staleAfterSeconds` (the lease TTL) are reported as stranded. With `shardBits`, a file
    /// found in a container of another day or shard than its name's is a problem too (lookups
    /// by name would not find it there). With `desNamesOnly` (the marker names rows with
    /// `snowflake`), a row packed under a name that is not a DES name is a problem too: `des get`
    /// and `GET /files/{name}` refuse such a name, so only `des cat` reaches its bytes.
    public init(
        sources: [any SourceConnector], fetchers: [String: any BodyFetcher], metadata: any MetadataStore,
        storage: any StorageBackend, staleAfterSeconds: Double = 30, shardBits: Int? = nil, desNamesOnly: Bool = false
    ) {
        self.shardBits = shardBits
        self.desNamesOnly = desNamesOnly
        self.sources = sources
        self.fetchers = fetchers
        self.metadata = metadata
        self.storage = storage
        self.staleAfterSeconds = staleAfterSeconds
    }

    /// Runs the audit; `compareBodies` false checks only names and containers.
    public func run(compareBodies: Bool = true) async throws -> Report {
        var report = Report()
        func problem(_ text: String) { if report.problems.count < 100 { report.problems.append(text) } }
        let reader = StorageArchiveReader(storage: storage)
        // Deleted files: counted as deleted, never as missing or orphaned.
        let deleted = Set(try await metadata.tombstones(afterSeq: 0).map(\.name))
        report.filesDeleted = deleted.count
        var indexes: [String: StorageArchiveReader.VersionedIndex] = [:]
        var seen: [String: String] = [:]
        // Uploaded containers whose index could not be read (lost from storage, corrupt): reported once, and their rows say so.
        var unreadable: Set<String> = []
        let chain = try await ContainerChain.load(from: metadata)
        for container in chain.uploaded.values.sorted(by: { $0.id < $1.id }) {
            let versioned: StorageArchiveReader.VersionedIndex
            let levelsProblems: [String]
            do {
                (versioned, levelsProblems) = try await reader.checkedIndex(key: container.key)
            } catch let error where (error as? DESKitError)?.code == .notFound || error is DESFormatError {
                // A recorded container lost from storage, or garbage, is what an audit is for: reported, and the audit goes on.
                report.containers += 1
                unreadable.insert(container.key)
                problem(
                    "container \(container.key) "
                        + (error is DESFormatError ? "cannot be read: \(error)" : "is recorded uploaded (\(container.fileCount) files) but is not in storage"))
                continue
            }
            let index = versioned.index
            indexes[container.key] = versioned
            report.containers += 1
            report.entries += index.count
            if index.count != container.fileCount {
                problem("container \(container.key): index has \(index.count) entries, metadata says \(container.fileCount)")
            }
            for entry in index.entries {
                if let other = seen.updateValue(container.key, forKey: entry.name) {
                    problem("\(entry.name) is in two uploaded containers: \(other) and \(container.key)")
                }
            }
            // Its two-level index, which single reads go through, must agree with its flat index.
            for text in levelsProblems.prefix(3) {
                problem("container \(container.key): two-level index: \(text)")
            }
            // The names recorded for it must hold every name it holds, or lookups would miss one.
            if let range = container.nameRange, let missed = index.entries.first(where: { !range.mayHold($0.name) }) {
                problem("container \(container.key): its recorded names (\(range.first) to \(range.last)) leave out \(missed.name); lookups would miss it")
            }
        }
        var packedNames = Set<String>()
        // Retired rows by container, read back in one batch per container (neighbouring files in one read).
        var retired: [String: [String]] = [:]
        for source in sources {
            var after: String?
            while true {
                let rows = try await source.packedRows(afterRowID: after, limit: 1000)
                if rows.isEmpty { break }
                after = rows.last?.rowID
                for row in rows {
                    // A deleted file whose row was not marked yet (a delete through the HTTP service).
                    if deleted.contains(row.desName) { continue }
                    report.rowsChecked += 1
                    packedNames.insert(row.desName)
                    if desNamesOnly, (try? SnowflakeName(parsing: row.desName)) == nil {
                        problem(
                            "\(source.name) row \(row.rowID): packed under \(DESNameRules.escapedForDisplay(row.desName)), which is not a DES name: des get and GET /files refuse it (des cat reads it from \(row.container))")
                    }
                    // The row's container, or the one compaction moved its file to; when the links end
                    // (a store rebuilt after the replaced object went), the one holding its name.
                    var resolved: String?
                    if indexes[row.container] != nil {
                        resolved = row.container
                    } else {
                        switch chain.resolve(row.container) {
                        case .current(let record): resolved = record.key
                        case .unrecorded, .ended: resolved = seen[row.desName]
                        case .broken(let why):
                            problem("\(source.name) row \(row.rowID): the links from its container \(row.container) \(why)")
                            continue
                        }
                    }
                    if let key = resolved, unreadable.contains(key) {
                        problem("\(source.name) row \(row.rowID): \(row.desName) is in \(key), which cannot be read (above)")
                        continue
                    }
                    guard let key = resolved, let versioned = indexes[key] else {
                        problem("\(source.name) row \(row.rowID): container \(row.container) is not an uploaded container, and none holds \(row.desName)")
                        continue
                    }
                    if let bits = shardBits, let record = chain.uploaded[key], let (day, shard) = ContainerLookup.dayShard(of: row.desName, shardBits: bits),
                        record.day != day || record.shard != shard
                    {
                        problem("\(source.name) row \(row.rowID): \(row.desName) is in \(key), a container of another day or shard than its name's; lookups by name would miss it")
                        continue
                    }
                    guard versioned.index.contains(row.desName) else {
                        problem("\(source.name) row \(row.rowID): \(row.desName) is not in \(key)\(key == row.container ? "" : ", where the links from \(row.container) lead")")
                        continue
                    }
                    // A retired row's body is gone by design: the container holds the only copy, so its
                    // bytes are checked against the sha256 its META records.
                    if row.bodyDeleted {
                        report.rowsRetired += 1
                        if compareBodies { retired[key, default: []].append(row.desName) }
                        continue
                    }
                    guard compareBodies else { continue }
                    // Read as readers read it (des get, /files): checked against the sha256 its META
                    // records, so an entry readers refuse (a META that is not JSON, a digest that does
                    // not match) is a problem here too, not a pass.
                    let packed: [UInt8]
                    do {
                        packed = try await reader.files(named: [row.desName], key: key, in: versioned)[0] ?? []
                    } catch {
                        problem("\(source.name) row \(row.rowID): \(row.desName) in \(key) does not read back: \(error)")
                        continue
                    }
                    report.bytesChecked += UInt64(packed.count)
                    guard let fetcher = fetchers[source.name] else { continue }
                    // Read as the packer reads it: confined to the body root, and for a filesystem
                    // source only if it is still the file the scan accepted (never through a link
                    // out of the root, which would make the check an oracle on what lies outside).
                    let original: [UInt8]
                    do {
                        original = try await fetcher.bytes(of: row.body)
                    } catch let error as DESKitError where !error.isTransient {
                        problem("\(source.name) row \(row.rowID): the body of \(row.desName) cannot be read as packed: \(error.message)")
                        continue
                    }
                    if original != packed {
                        problem("\(source.name) row \(row.rowID): packed bytes of \(row.desName) differ from the body at \(row.body)")
                    }
                }
            }
            let stats = try await source.stats()
            if stats.pending + stats.claimed + stats.failed + stats.unnamed + stats.other > 0 {
                report.unpacked[source.name] = stats
            }
        }
        // (Each row's entry was found in its container's index above.)
        for (key, names) in retired.sorted(by: { $0.key < $1.key }) {
            do {
                guard let versioned = indexes[key] else { continue }
                report.bytesChecked += try await reader.files(named: names, key: key, in: versioned).reduce(0) { $0 + UInt64($1?.count ?? 0) }
            } catch {
                problem("\(key): the files of rows whose bodies were retired do not read back: \(error)")
            }
        }
        for container in try await metadata.containers(state: .writing, shard: nil, day: nil)
        where (container.ageSeconds ?? 0) > staleAfterSeconds {
            problem(
                "container \(container.key) has been writing for \(Int(container.ageSeconds ?? 0)) s without progress (more than the lease TTL of \(Int(staleAfterSeconds)) s): run des recover")
        }
        for source in sources {
            let stale = try await source.staleClaims(shards: nil, excludingHolder: nil, olderThanSeconds: staleAfterSeconds)
            if !stale.isEmpty {
                problem(
                    "\(source.name): \(stale.count) rows claimed for more than the lease TTL of \(Int(staleAfterSeconds)) s (first: row \(stale[0].rowID)): run des recover")
            }
        }
        for name in seen.keys where !packedNames.contains(name) && !deleted.contains(name) {
            problem("\(name) is in container \(seen[name] ?? "?") but no packed row has that name")
        }
        return report
    }
}
