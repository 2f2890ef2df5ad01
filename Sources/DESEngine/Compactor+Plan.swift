import DESKit

extension Compactor {
    /// Containers of one (day, shard) compacted together into one new container.
    struct Group: Sendable {
        var day: String
        var shard: Int
        var containers: [ContainerRecord]
        /// Deleted bytes the group holds, by the tombstones.
        var garbageBytes: UInt64
        /// `garbage` or `small`.
        var reason: String
    }

    /// What to compact now: each uploaded container whose deleted bytes reach the garbage ratio,
    /// alone; and the small containers of a (day, shard), two or more at a time, up to the
    /// container limits. A container whose manifest is not yet marked (claim_mode lease) waits:
    /// its rows are still to be marked from it.
    func plan() async throws -> [Group] {
        let uploaded = try await retry.run { try await metadata.containers(state: .uploaded, shard: nil, day: nil) }
        let unmarked = Set(try await retry.run { try await metadata.unmarkedManifests(shard: nil) }.map(\.container.id))
        let eligible = uploaded.filter { !unmarked.contains($0.id) }
        let garbage = try await retry.run { try await metadata.tombstonedBytes(containerIDs: eligible.map(\.id)) }
        var groups: [Group] = []
        let byDayShard = Dictionary(grouping: eligible) { "\($0.day)/\($0.shard)" }
        for key in byDayShard.keys.sorted() {
            guard let list = byDayShard[key]?.sorted(by: { $0.id < $1.id }), let first = list.first else { continue }
            var taken = Set<Int64>()
            for c in list {
                guard let g = garbage[c.id], g.bytes > 0 || g.files > 0 else { continue }
                let ratio = Double(g.bytes) / Double(max(c.bytes, 1))
                // A container every file of which was deleted goes whatever its size.
                if ratio >= config.compaction.garbageRatio || g.files >= c.fileCount || config.erase {
                    groups.append(Group(day: c.day, shard: c.shard, containers: [c], garbageBytes: g.bytes, reason: "garbage"))
                    taken.insert(c.id)
                }
            }
            let small = list.filter { !taken.contains($0.id) && ($0.size ?? $0.bytes) < config.compaction.smallContainerBytes }
            var bin: [ContainerRecord] = []
            var (binBytes, binFiles): (UInt64, Int) = (0, 0)
            func close() {
                if bin.count >= 2 {
                    let dropped = bin.reduce(UInt64(0)) { $0 + (garbage[$1.id]?.bytes ?? 0) }
                    groups.append(Group(day: first.day, shard: first.shard, containers: bin, garbageBytes: dropped, reason: "small"))
                }
                bin = []
                (binBytes, binFiles) = (0, 0)
            }
            for c in small {
                if !bin.isEmpty && (binBytes + c.bytes > config.maxContainerBytes || binFiles + c.fileCount > config.maxContainerFiles) { close() }
                bin.append(c)
                binBytes += c.bytes
                binFiles += c.fileCount
            }
            close()
        }
        return groups
    }
}
