@testable import DESPluginS3
import DESNaming
import DESServer
import Foundation
import Synchronization
import Testing

@Suite("POST /assign") struct AssignTests {
    @Test("one name, a batch, and the 400s of a bad prefix, count or body; 413 past the size limit")
    func singleBatchAndErrors() async throws {
        let shelf = try await Shelf.make(shardBits: 4)
        defer { shelf.cleanup() }
        try await withServer(shelf, edit: { $0.maxRequestBytes = 1024 }) { server, client in

        let one = try await client.send("POST", server.base + "/assign", body: #"{"prefix": "IMG"}"#)
        #expect(one.status == 200 && one.headers["content-type"] == "application/json")
        let object = try #require(try client.json(one) as? [String: Any])
        let name = try #require(object["name"] as? String)
        let parsed = try SnowflakeName(parsing: name)
        #expect(parsed.prefix == "IMG")
        #expect(object["shard_id"] as? Int == Int(consistentHash(name, bits: 4)))
        #expect(object["day"] as? String == parsed.isoDay)

        let batch = try await client.send("POST", server.base + "/assign", body: #"{"prefix": "DOC", "count": 25}"#)
        let list = try #require(try client.json(batch) as? [[String: Any]])
        #expect(list.count == 25 && Set(list.compactMap { $0["name"] as? String }).count == 25)
        #expect(list.allSatisfy { ($0["name"] as? String)?.hasPrefix("DOC_") == true })

        let empty = try await client.send("POST", server.base + "/assign")
        let emptyName = (try client.json(empty) as? [String: Any])?["name"] as? String
        #expect(empty.status == 200 && emptyName?.hasPrefix("DES_") == true)

        let bad: [(String, String)] = [
            (#"{"prefix": "I-G"}"#, "bad_prefix"), (#"{"prefix": ""}"#, "bad_prefix"), (#"{"prefix": 7}"#, "bad_prefix"),
            (#"{"prefix": "\#(String(repeating: "A", count: 33))"}"#, "bad_prefix"), (#"{"count": 0}"#, "bad_count"),
            (#"{"count": 10001}"#, "bad_count"), (#"{"count": 2.5}"#, "bad_count"), (#"{"count": "3"}"#, "bad_count"),
            (#"{"prefix": "IMG", "cuont": 3}"#, "bad_body"), ("not json", "bad_body"), ("[1, 2]", "bad_body"),
            // A key twice, even spelled with an escape: refused, not one of the two picked.
            (#"{"count": 1, "count": 10}"#, "bad_body"), (#"{"prefix": "A", "pr\u0065fix": "B"}"#, "bad_body"),
        ]
        for (body, code) in bad {
            let r = try await client.send("POST", server.base + "/assign", body: body)
            #expect(r.status == 400, "\(body)")
            #expect(client.errorCode(r) == code, "\(body): \(String(decoding: r.body, as: UTF8.self))")
        }
        let big = try await client.send("POST", server.base + "/assign", body: #"{"prefix": "IMG", "x": ""# + String(repeating: "x", count: 2000) + #""}"#)
        #expect(big.status == 413 && client.errorCode(big) == "too_large")
        }
    }

    @Test("10,000 names from concurrent requests: all unique, all parsable, shards and days right")
    func tenThousandConcurrent() async throws {
        let shelf = try await Shelf.make(shardBits: 8)
        defer { shelf.cleanup() }
        try await withServer(shelf) { server, client in
        // 2,000 single requests and 80 batches of 100, all at once (16 connections).
        struct Given: Sendable {
            var name: String
            var shard: Int?
            var day: String?
        }
        let names = try await withThrowingTaskGroup(of: [Given].self) { group in
            for i in 0..<2_080 {
                group.addTask {
                    let body = i < 2_000 ? #"{"prefix": "CC"}"# : #"{"prefix": "CC", "count": 100}"#
                    let r = try await client.send("POST", server.base + "/assign", body: body)
                    guard r.status == 200 else { throw TestFailure("status \(r.status)") }
                    let parsed = try JSONSerialization.jsonObject(with: Data(r.body))
                    let objects = (parsed as? [[String: Any]]) ?? [(parsed as? [String: Any]) ?? [:]]
                    return objects.map { Given(name: $0["name"] as? String ?? "", shard: $0["shard_id"] as? Int, day: $0["day"] as? String) }
                }
            }
            var all: [Given] = []
            for try await part in group { all += part }
            return all
        }
        #expect(names.count == 10_000)
        #expect(Set(names.map(\.name)).count == 10_000)
        for entry in names {
            let parsed = try SnowflakeName(parsing: entry.name)
            #expect(entry.shard == Int(consistentHash(entry.name, bits: 8)) && entry.day == parsed.isoDay)
        }
        }
    }
}
