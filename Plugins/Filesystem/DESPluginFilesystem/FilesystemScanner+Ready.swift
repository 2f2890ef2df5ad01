import DESFormat
import DESKit
import DESStorage
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Files made ready: each is hashed once (it stopped changing, so this is the one read the scan
/// makes of it; an unchanged tree is never read again), and a file whose bytes DES already holds
/// for the source (another path, or an earlier version) is recorded as a reference to that entry
/// instead of being packed again.
extension FilesystemScanner {
    /// What becoming ready did.
    struct ReadyOutcome: Sendable, Equatable {
        /// Rows handed to the marker (or, named already, to the packer).
        var ready = 0
        /// Rows recorded as references to an entry holding the same bytes.
        var duplicates = 0
        /// Files opened to be hashed.
        var read = 0
        /// Rows left waiting: their file changed while it was hashed, or a row with the same
        /// bytes is on its way to being packed (they become references once it is).
        var waiting = 0
        /// Failed rows the scan's writes took out of failure (taken again as their file now is, or
        /// gone with it): read failed by the scan, or failed since; their letters are stale.
        var retaken: [Int64] = []
    }

    /// A ready file's SHA-256, read beneath its root, or nil when it cannot be read (the packer
    /// then meets the same error and dead-letters the row with its reason). `changed` when it is
    /// no longer the file the scan saw, before or after the read.
    enum Hashed: Sendable, Equatable {
        case sha256(String)
        case unreadable
        case changed
    }

    /// Hashes each file (on threads of their own: this blocks), in the order given.
    static func hash(_ files: [ScannedFile], roots: [String], threads: Int) async -> [Hashed] {
        guard !files.isEmpty else { return [] }
        let fetchers = roots.map { LocalBodyFetcher(root: $0) }
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let results = Mutex([Hashed](repeating: .unreadable, count: files.count))
                let lanes = max(1, min(threads, files.count))
                DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                    let hasher = DESFileHasher()
                    var i = lane
                    while i < files.count {
                        let h = hashOne(files[i], fetcher: fetchers[files[i].root], hasher: hasher)
                        results.withLock { $0[i] = h }
                        i += lanes
                    }
                }
                continuation.resume(returning: results.withLock { $0 })
            }
        }
    }

    static func hashOne(_ file: ScannedFile, fetcher: LocalBodyFetcher, hasher: DESFileHasher) -> Hashed {
        guard let fd = try? fetcher.open(file.path) else { return .unreadable }
        defer { _ = Glibc.close(fd) }
        guard let before = try? FileStamp(fileDescriptor: fd, path: file.path), before == file.stamp else { return .changed }
        guard let digest = try? hasher.sha256(ofFileDescriptor: fd, path: file.path) else { return .unreadable }
        guard let after = try? FileStamp(fileDescriptor: fd, path: file.path), after == before else { return .changed }
        return .sha256(digest)
    }

    /// A packed entry of this source holding some bytes: what a reference to it copies.
    struct HeldEntry: Sendable, Equatable {
        var name: String
        var container: String
        var shard: Int64?
    }

    /// What the catalog holds of some digests: entries that hold those bytes (packed or
    /// superseded rows), and the digests of rows on their way to being packed (new, pending,
    /// claimed), whose twins wait for them rather than being packed beside them.
    struct Known: Sendable, Equatable {
        var held: [String: HeldEntry] = [:]
        var inFlight: Set<String> = []
    }

    /// The rows of this source whose bytes have one of these digests.
    func known(sha256 digests: Set<String>) async throws -> Known {
        var known = Known()
        guard !digests.isEmpty else { return known }
        let d = catalog.dialect
        let held: Set<String> = [FilesystemCatalog.Status.packed, FilesystemCatalog.Status.superseded]
        let statuses = [
            FilesystemCatalog.Status.packed, FilesystemCatalog.Status.superseded, FilesystemCatalog.Status.new,
            FilesystemCatalog.Status.pending, FilesystemCatalog.Status.claimed,
        ]
        for chunk in Self.chunks(digests.sorted(), 500) {
            let rows = try await catalog.transaction { session in
                try session.query(
                    """
                    SELECT sha256, status, des_name, des_container, des_shard FROM \(FilesystemCatalog.table)
                    WHERE source = \(d.placeholder(1)) AND status IN (\(d.placeholders(statuses.count, from: 2)))
                    AND sha256 IN (\(d.placeholders(chunk.count, from: 2 + statuses.count)))
                    ORDER BY id
                    """,
                    [.text(source.name)] + statuses.map { SQLValue.text($0) } + chunk.map { SQLValue.text($0) })
            }
            for row in rows {
                guard let digest = row["sha256"].text, let status = row["status"].text else { continue }
                if held.contains(status), let name = row["des_name"].text, let container = row["des_container"].text {
                    if known.held[digest] == nil { known.held[digest] = HeldEntry(name: name, container: container, shard: row["des_shard"].int) }
                } else {
                    known.inFlight.insert(digest)
                }
            }
        }
        return known
    }

    /// Makes `ready` ready: hashes each file, records the digest with the row, and turns a row
    /// whose bytes an entry already holds into a packed reference to that entry.
    func makeReady(_ ready: [(id: Int64, named: Bool, file: ScannedFile, digest: String?)], now: Int64) async throws -> ReadyOutcome {
        var outcome = ReadyOutcome()
        guard !ready.isEmpty else { return outcome }
        // A row that waited for a twin kept the digest of its file as it still is: not read again.
        let unread = ready.indices.filter { ready[$0].digest == nil }
        let read = await Self.hash(unread.map { ready[$0].file }, roots: roots, threads: settings.scanThreads)
        outcome.read = read.count
        var digests = ready.map { $0.digest.map(Hashed.sha256) ?? .unreadable }
        for (i, hashed) in zip(unread, read) { digests[i] = hashed }
        var known = Set<String>()
        for case .sha256(let digest) in digests { known.insert(digest) }
        let catalogued = try await self.known(sha256: known)
        // A kept digest about to make a reference is read again first: the file may have changed
        // since without its timestamps moving, and a reference must name the bytes it has now.
        let recheck = ready.indices.filter { i in
            guard ready[i].digest != nil, !ready[i].named, case .sha256(let d) = digests[i] else { return false }
            return catalogued.held[d] != nil
        }
        if !recheck.isEmpty {
            let fresh = await Self.hash(recheck.map { ready[$0].file }, roots: roots, threads: settings.scanThreads)
            outcome.read += fresh.count
            for (i, hashed) in zip(recheck, fresh) { digests[i] = hashed }
        }
        // (id, new status, digest, stamp) and (id, digest, entry).
        var plain: [(Int64, String, SQLValue, String)] = []
        var references: [(Int64, String, HeldEntry)] = []
        // Rows that wait for a twin, with their digest kept for the next pass.
        var kept: [(Int64, String)] = []
        var first = Set<String>()
        for (row, hashed) in zip(ready, digests) {
            let status = row.named ? FilesystemCatalog.Status.pending : FilesystemCatalog.Status.new
            switch hashed {
            case .changed:
                outcome.waiting += 1
            case .unreadable:
                plain.append((row.id, status, .null, row.file.stamp.text))
            case .sha256(let digest):
                if !row.named, let entry = catalogued.held[digest] {
                    references.append((row.id, digest, entry))
                } else if !row.named && (catalogued.inFlight.contains(digest) || !first.insert(digest).inserted) {
                    outcome.waiting += 1
                    if row.digest == nil { kept.append((row.id, digest)) }
                } else {
                    // The packer packs the file only if its bytes still have this digest.
                    plain.append((row.id, status, .text(digest), FilesystemCatalog.stampColumn(row.file.stamp, digest: digest)))
                }
            }
        }
        let d = catalog.dialect
        let table = FilesystemCatalog.table
        let observed = FilesystemCatalog.Status.observed
        let setReady = """
            UPDATE \(table) SET status = \(d.placeholder(1)), sha256 = \(d.placeholder(2)), stamp = \(d.placeholder(3))
            WHERE id = \(d.placeholder(4)) AND status = \(d.placeholder(5))
            """
        for chunk in Self.chunks(plain, Self.rowsPerTransaction) {
            let written = try await catalog.transaction { session in
                try chunk.reduce(0) { n, r in n + (try session.execute(setReady, [.text(r.1), r.2, .text(r.3), .int(r.0), .text(observed)])) }
            }
            outcome.ready += written
        }
        let keep = "UPDATE \(table) SET sha256 = \(d.placeholder(1)) WHERE id = \(d.placeholder(2)) AND status = \(d.placeholder(3))"
        for chunk in Self.chunks(kept, Self.rowsPerTransaction) {
            _ = try await catalog.transaction { session in
                for (id, digest) in chunk { _ = try session.execute(keep, [.text(digest), .int(id), .text(observed)]) }
            }
        }
        let setReference = """
            UPDATE \(table) SET status = \(d.placeholder(1)), sha256 = \(d.placeholder(2)), des_name = \(d.placeholder(3)),
            des_container = \(d.placeholder(4)), des_shard = \(d.placeholder(5)), des_packed_at = \(d.placeholder(6))
            WHERE id = \(d.placeholder(7)) AND status = \(d.placeholder(8))
            AND EXISTS (SELECT 1 FROM (SELECT des_name FROM \(table) WHERE des_name = \(d.placeholder(9))
              AND status IN (\(d.placeholder(10)), \(d.placeholder(11)))) AS held)
            """
        let packedAt = Double(now) / 1e9
        for chunk in Self.chunks(references, Self.rowsPerTransaction) {
            let written = try await catalog.transaction { session in
                try chunk.reduce(0) { n, r in
                    n
                        + (try session.execute(
                            setReference,
                            [
                                .text(FilesystemCatalog.Status.packed), .text(r.1), .text(r.2.name), .text(r.2.container),
                                r.2.shard.map { SQLValue.int($0) } ?? .null, .double(packedAt), .int(r.0), .text(observed),
                                // Still held as the update runs (not deleted since it was looked up).
                                .text(r.2.name), .text(FilesystemCatalog.Status.packed), .text(FilesystemCatalog.Status.superseded),
                            ]))
                }
            }
            outcome.duplicates += written
        }
        return outcome
    }
}
