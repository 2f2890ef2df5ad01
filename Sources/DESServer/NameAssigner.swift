import DESNaming
import Synchronization

/// One name given by `/assign`.
public struct NameAssignment: Sendable, Equatable {
    /// The Snowflake name.
    public var name: String
    /// Its shard (the consistent hash of the name over the packer's shard bits).
    public var shardID: Int
    /// Its day, `YYYY-MM-DD` (UTC), as the metadata store records it.
    public var day: String

    /// The assignment as a JSON object (names are ASCII letters, digits, `_`, `(` and `)`: no escaping).
    var json: String { #"{"name":""# + name + #"","shard_id":"# + String(shardID) + #","day":""# + day + #""}"# }
}

/// Gives names from one generator per prefix, all of one node: every generator of a node
/// shares its (millisecond, sequence) state, so no two requests ever get the same name.
public final class NameAssigner: Sendable {
    /// The node of every name given.
    public let node: Int
    /// The packer's shard bits (the shard of each name).
    public let shardBits: Int
    private let generators = Mutex<[String: SnowflakeGenerator]>([:])
    /// Prefixes whose generators are kept (more are made for each request, same node, still unique).
    private static let keptPrefixes = 1_024

    /// An assigner for `node` and `shardBits`.
    public init(node: Int, shardBits: Int) {
        self.node = node
        self.shardBits = shardBits
    }

    /// `count` names with `prefix` (validated: ASCII letters and digits).
    public func assign(prefix: String, count: Int) async throws(NamingError) -> [NameAssignment] {
        let generator = try self.generator(prefix)
        return await generator.waitingNext(count: count).map { name in
            let text = name.description
            return NameAssignment(name: text, shardID: Int(consistentHash(text, bits: shardBits)), day: name.isoDay)
        }
    }

    private func generator(_ prefix: String) throws(NamingError) -> SnowflakeGenerator {
        if let g = generators.withLock({ $0[prefix] }) { return g }
        let g = try SnowflakeGenerator(configuration: .init(prefix: prefix, node: node))
        generators.withLock { map in
            if map.count < Self.keptPrefixes { map[prefix] = g }
        }
        return g
    }
}
