import DESKit

/// Where a catalog row's recorded container is now.
///
/// A row's container column names the container it was packed into. Compaction doesn't
/// rewrite that column: rewriting it would cost the user's catalog one write per live file.
/// Instead, the metadata store records which container replaced each retired one
/// (``ContainerRecord/replacedBy``), and this follows those links to the uploaded container
/// that holds the row's file now.
public struct ContainerChain: Sendable {
    /// The uploaded containers, by key.
    public let uploaded: [String: ContainerRecord]
    private let byKey: [String: ContainerRecord]
    private let byID: [Int64: ContainerRecord]

    /// A chain over every container the metadata store records, in any state.
    public init(records: [ContainerRecord]) {
        byKey = Dictionary(records.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        uploaded = byKey.filter { $0.value.state == .uploaded }
    }

    /// Reads every container record from `metadata`.
    public static func load(from metadata: any MetadataStore) async throws -> ContainerChain {
        ContainerChain(records: try await metadata.containers(state: nil, shard: nil, day: nil))
    }

    /// Whether the metadata store records a container of that key, in any state.
    public func isRecorded(_ key: String) -> Bool { byKey[key] != nil }

    /// The uploaded container that `key` is, or that replaced it through one or more
    /// compactions. Returns nil when `key` isn't recorded, when every file it held was deleted,
    /// or when the links lead nowhere uploaded.
    public func current(of key: String) -> ContainerRecord? {
        var record = byKey[key]
        var hops = 0
        while let current = record, hops <= byID.count {
            if current.state == .uploaded { return current }
            guard current.state == .retired || current.state == .deleted, let next = current.replacedBy else { return nil }
            record = byID[next]
            hops += 1
        }
        return nil
    }
}
