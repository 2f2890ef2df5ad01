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

    /// Where the links from a container lead.
    public enum Resolution: Sendable, Equatable {
        /// To this uploaded container.
        case current(ContainerRecord)
        /// Nowhere: the key is not recorded (a store rebuilt after its object went).
        case unrecorded
        /// To a retired or deleted container replaced by nothing: every file it held was
        /// deleted, or its object was found missing (`des rebuild`).
        case ended
        /// Nowhere it should: a link to an unrecorded id, a loop, or a container neither
        /// uploaded nor retired. The reason, in words.
        case broken(String)
    }

    /// Follows the links from `key` (see ``Resolution``).
    public func resolve(_ key: String) -> Resolution {
        guard var record = byKey[key] else { return .unrecorded }
        var visited: Set<Int64> = []
        while true {
            if record.state == .uploaded { return .current(record) }
            guard record.state == .retired || record.state == .deleted else { return .broken("leads to \(record.key), which is \(record.state.rawValue)") }
            guard let next = record.replacedBy else { return .ended }
            guard visited.insert(record.id).inserted else { return .broken("leads around a loop of replacements") }
            guard let found = byID[next] else { return .broken("leads to container \(next), which is not recorded") }
            record = found
        }
    }

    /// The uploaded container that `key` is, or that replaced it through one or more
    /// compactions. Returns nil when `key` isn't recorded, when every file it held was deleted,
    /// or when the links lead nowhere uploaded.
    public func current(of key: String) -> ContainerRecord? {
        if case .current(let record) = resolve(key) { return record }
        return nil
    }
}
