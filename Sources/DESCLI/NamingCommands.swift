import ArgumentParser
import DESNaming
import Foundation

/// An integer setting from the environment (DES_NODE_ID, DES_SHARD_BITS).
func environmentInt(_ name: String) -> Int? {
    ProcessInfo.processInfo.environment[name].flatMap { Int($0) }
}

struct NameCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "name",
        abstract: "Make DES names, or parse one.",
        discussion: """
            A DES name is PREFIX_YYYYMMDD_(FFFFFFFFFFFF_CC): a 48-bit Snowflake \
            value F (milliseconds, node id, sequence) in hex and its checksum CC.

            Examples:
              des name --prefix IMG --node 3 --count 5
              des name parse 'TEST_20250101_(21BCAA000100_88)'
            """,
        subcommands: [GenerateNames.self, ParseName.self],
        defaultSubcommand: GenerateNames.self
    )
}

struct GenerateNames: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Make new DES names (the default).",
        discussion: "Defaults come from DES_NAME_PREFIX and DES_NODE_ID when set."
    )

    @Option(help: "Name prefix, ASCII letters and digits (default DES_NAME_PREFIX or DES).") var prefix: String?
    @Option(help: "Node id 0–255 (default DES_NODE_ID or 0).") var node: Int?
    @Option(help: "How many names.") var count = 1
    @Option(help: "Bits of epoch milliseconds kept, 1–32.") var wrapBits = 32
    @Option(help: "Also print each name's shard for this many shard bits.") var shardBits: Int?
    @Flag(help: "Print JSON lines: {name, day, shard?}.") var json = false

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            let env = ProcessInfo.processInfo.environment
            let config = SnowflakeGenerator.Configuration(
                prefix: prefix ?? env["DES_NAME_PREFIX"] ?? "DES", node: node ?? environmentInt("DES_NODE_ID") ?? 0,
                wrapBits: wrapBits)
            let generator = try SnowflakeGenerator(configuration: config)
            let assignment = try shardBits.map { try ShardAssignment(shardBits: $0) }
            var out = ""
            for name in generator.next(count: count) {
                let text = name.description
                if json {
                    var obj: [String: Any] = ["name": text, "day": name.isoDay]
                    if let assignment { obj["shard"] = assignment.shard(of: text) }
                    out += Terminal.json(obj) + "\n"
                } else if let assignment {
                    out += "\(text)\t\(assignment.shard(of: text))\n"
                } else {
                    out += text + "\n"
                }
            }
            Terminal.out(out)
        }
    }
}

struct ParseName: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Split a DES name into its parts and check its checksum.",
        discussion: "Exits 65 when the name is malformed or its checksum is wrong."
    )

    @Argument(help: "The name.") var name: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingErrors {
            let n = try SnowflakeName(parsing: name)
            if json {
                Terminal.out(
                    Terminal.json([
                        "prefix": n.prefix, "day": n.isoDay, "value": hexValue(n.value), "node": Int(n.node),
                        "sequence": Int(n.sequence), "wrapped_ms": n.wrappedMilliseconds, "checksum_ok": true,
                    ]) + "\n")
            } else {
                Terminal.out(
                    """
                    prefix:     \(n.prefix)
                    day:        \(n.isoDay)
                    value:      \(hexValue(n.value))
                    node:       \(n.node)
                    sequence:   \(n.sequence)
                    wrapped ms: \(n.wrappedMilliseconds)
                    checksum:   ok

                    """)
            }
        }
    }

    private func hexValue(_ v: UInt64) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 12 - s.count)) + s
    }
}

struct ShardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shard",
        abstract: "Print the shard of a name: the top BITS bits of its SHA-256.",
        discussion: """
            With --pods N also prints which pod (shard mod N) owns it. Defaults to \
            DES_SHARD_BITS when --bits is not given.

            Examples:
              des shard 'IMG_20250101_(21BCAA000100_88)' --bits 8
              des shard 'IMG_20250101_(21BCAA000100_88)' --bits 8 --pods 3
            """
    )

    @Argument(help: "The name (any string hashes; DES names are the usual input).") var name: String
    @Option(help: "Shard bits, 1–24 (default DES_SHARD_BITS or 8).") var bits: Int?
    @Option(help: "Number of pods sharing the shards.") var pods: Int?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingErrors {
            let assignment = try ShardAssignment(
                shardBits: bits ?? environmentInt("DES_SHARD_BITS") ?? 8, podIndex: 0, podCount: pods ?? 1)
            let shard = assignment.shard(of: name)
            if json {
                var obj: [String: Any] = ["name": name, "shard": shard, "bits": assignment.shardBits]
                if pods != nil { obj["pod"] = assignment.owner(of: shard) }
                Terminal.out(Terminal.json(obj) + "\n")
            } else if pods != nil {
                Terminal.out("\(shard)\tpod \(assignment.owner(of: shard))\n")
            } else {
                Terminal.out("\(shard)\n")
            }
        }
    }
}
