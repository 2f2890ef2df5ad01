import DESNaming
import Foundation
import Testing

/// `des name` and `des shard`, run as a real process.
@Suite("des name and shard")
struct CLINamingTests {
    /// The value after "key:" in the human-readable output.
    static func field(_ out: String, _ key: String) -> String? {
        for line in out.split(separator: "\n") where line.hasPrefix(key + ":") {
            return line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    @Test("name parse of the design's vector prints day 2025-01-01 and node 1")
    func parseVector() throws {
        try withTempDir { dir in
            let r = try runDES(["name", "parse", "TEST_20250101_(21BCAA000100_88)"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(Self.field(r.out, "prefix") == "TEST")
            #expect(Self.field(r.out, "day") == "2025-01-01")
            #expect(Self.field(r.out, "node") == "1")
            #expect(Self.field(r.out, "sequence") == "0")
            #expect(Self.field(r.out, "value") == "21BCAA000100")
            #expect(Self.field(r.out, "checksum") == "ok")

            let json = try runDES(["name", "parse", "TEST_20250101_(21BCAA000100_88)", "--json"], in: dir)
            let obj = try #require(try parseJSON(json.out) as? [String: Any])
            #expect(obj["day"] as? String == "2025-01-01")
            #expect(obj["node"] as? Int == 1)
            #expect(obj["value"] as? String == "21BCAA000100")
            #expect(obj["checksum_ok"] as? Bool == true)
        }
    }

    @Test("name parse of a bad name exits 65 with one error line")
    func parseBad() throws {
        try withTempDir { dir in
            for bad in ["TEST_20250101_(21BCAA000100_89)", "not-a-name"] {
                let r = try runDES(["name", "parse", bad], in: dir)
                #expect(r.status == 65, "\(bad)")
                expectCleanErrorLine(r)
                #expect(r.stdout.isEmpty)
            }
        }
    }

    @Test("shard test --bits 16 prints 40838")
    func shardVector() throws {
        try withTempDir { dir in
            let r = try runDES(["shard", "test", "--bits", "16"], in: dir)
            #expect(r.status == 0)
            #expect(r.out == "40838\n")
            #expect(try runDES(["shard", "test", "--bits", "8"], in: dir).out == "159\n")
            #expect(try runDES(["shard", "test", "--bits", "4"], in: dir).out == "9\n")
            // 159 mod 3 = 0.
            #expect(try runDES(["shard", "test", "--bits", "8", "--pods", "3"], in: dir).out == "159\tpod 0\n")
            // DES_SHARD_BITS is the default width.
            #expect(try runDES(["shard", "test_value"], in: dir, environment: ["DES_SHARD_BITS": "8"]).out == "79\n")
            let json = try #require(try parseJSON(try runDES(["shard", "test", "--bits", "16", "--json"], in: dir).out) as? [String: Any])
            #expect(json["shard"] as? Int == 40838)
        }
    }

    @Test("name --count 5 prints 5 distinct names that parse")
    func generateNames() throws {
        try withTempDir { dir in
            let r = try runDES(["name", "--count", "5"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            let lines = r.outLines
            #expect(lines.count == 5)
            #expect(Set(lines).count == 5)
            let names = try lines.map { try SnowflakeName(parsing: $0) }
            #expect(names.allSatisfy { $0.prefix == "DES" && $0.checksumIsValid })
            #expect(zip(names, names.dropFirst()).allSatisfy { $0.value < $1.value })
            // The day in each name is today's UTC day (give or take a midnight between the run and now).
            let now = UInt64(Date().timeIntervalSince1970 * 1000)
            let days = [utcDay(milliseconds: now - 60_000), utcDay(milliseconds: now)]
            #expect(names.allSatisfy { days.contains($0.day) })
        }
    }

    @Test("name honours --prefix, --node, DES_NODE_ID and --shard-bits")
    func generateOptions() throws {
        try withTempDir { dir in
            let r = try runDES(["name", "--prefix", "IMG", "--node", "3", "--count", "300"], in: dir)
            #expect(r.status == 0)
            let names = try r.outLines.map { try SnowflakeName(parsing: $0) }
            #expect(names.count == 300)
            #expect(Set(names).count == 300)
            #expect(names.allSatisfy { $0.prefix == "IMG" && $0.node == 3 })

            let env = try runDES(["name"], in: dir, environment: ["DES_NODE_ID": "7", "DES_NAME_PREFIX": "ENV"])
            let one = try SnowflakeName(parsing: try #require(env.outLines.first))
            #expect(one.node == 7)
            #expect(one.prefix == "ENV")

            let sharded = try runDES(["name", "--count", "3", "--shard-bits", "8"], in: dir)
            for line in sharded.outLines {
                let parts = line.split(separator: "\t").map(String.init)
                #expect(parts.count == 2)
                #expect(Int(parts[1]) == Int(consistentHash(parts[0], bits: 8)))
            }
        }
    }
}
