import DESKit
import Logging

/// The names each uploaded container holds, as the metadata store records them
/// (``NameRange``): recorded when a container is uploaded, recovered, compacted or rebuilt,
/// and used by every lookup from a name to its container.
public enum NameRanges {
    /// Records the names `container` holds: their range, and a filter of them when that range
    /// overlaps another uploaded container of its (day, shard) — or one whose names were never
    /// recorded. A failure is logged, not thrown: a container without a range is still found,
    /// by opening it for every name of its (day, shard).
    public static func record(
        _ container: ContainerRecord, names: some Collection<String>, metadata: any MetadataStore, retry: RetryPolicy, logger: Logger
    ) async {
        guard var range = NameRange(names: names) else { return }
        do {
            let others = try await retry.run { try await metadata.containers(state: .uploaded, shard: container.shard, day: container.day) }
            if others.contains(where: { $0.id != container.id && ($0.nameRange.map { $0.overlaps(range) } ?? true) }) {
                range.filter = NameFilter(names: names)
            }
            let recorded = range
            try await retry.run { try await metadata.recordNameRange(containerID: container.id, range: recorded) }
        } catch {
            logger.warning(
                "the names of a container were not recorded; lookups open it for every name of its day and shard",
                metadata: ["key": "\(container.key)", "error": "\(error)"])
        }
    }

    /// Of `containers`, those that may hold `name` (their recorded names cover it and their
    /// filter does not rule it out, or nothing is recorded), newest first.
    public static func candidates(for name: String, among containers: some Sequence<ContainerRecord>) -> [ContainerRecord] {
        containers.filter { $0.nameRange?.mayHold(name) ?? true }.sorted { $0.id > $1.id }
    }
}
