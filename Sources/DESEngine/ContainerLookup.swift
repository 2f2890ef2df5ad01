import DESFormat
import DESKit
import DESNaming

/// Finds the uploaded container that holds a name from the name alone, as readers do: its day
/// and shard select the candidates, whose indexes (from the cache, by their recorded version,
/// when the reader has one) say which holds it, newest first.
enum ContainerLookup {
    /// The day and shard a DES name belongs to; nil for what is not a DES name.
    static func dayShard(of name: String, shardBits: Int) -> (day: String, shard: Int)? {
        guard let parsed = try? SnowflakeName(parsing: name) else { return nil }
        return (parsed.isoDay, Int(consistentHash(name, bits: shardBits)))
    }

    /// The newest of `containers` of `name`'s (day, shard) whose index holds it, with its entry.
    ///
    /// A candidate missing from storage (`notFound`) stops the search, unless `lost` is given:
    /// then it is handed to `lost` and the search goes on.
    static func find(
        _ name: String, shardBits: Int, among containers: some Sequence<ContainerRecord>, reader: StorageArchiveReader,
        lost: ((ContainerRecord, DESKitError) -> Void)? = nil
    ) async throws -> (container: ContainerRecord, entry: DESIndexEntry)? {
        guard let (day, shard) = dayShard(of: name, shardBits: shardBits) else { return nil }
        for container in NameRanges.candidates(for: name, among: containers.filter { $0.day == day && $0.shard == shard }) {
            do {
                if let entry = try await reader.index(key: container.key, etag: container.etag).entry(named: name) { return (container, entry) }
            } catch let error as DESKitError where error.code == .notFound && lost != nil {
                lost?(container, error)
            }
        }
        return nil
    }
}
