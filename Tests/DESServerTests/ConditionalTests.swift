@testable import DESPluginS3
@testable import DESServer
import DESKit
import DESNaming
import DESTestSupport
import Foundation
import Testing

@Suite("Conditional requests (RFC 9110)") struct ConditionalTests {
    @Test("If-None-Match: lists, *, weak tags, field lines; malformed values are not conditions")
    func ifNoneMatchParsing() {
        let a = EntityTag(strong: "aaa")
        #expect(EntityTagList.parse(["\"aaa\""]) == .tags([a]))
        #expect(EntityTagList.parse(["\"x\", \"aaa\""]) == .tags([EntityTag(strong: "x"), a]))
        #expect(EntityTagList.parse([" W/\"aaa\" ,, \"b\" "]) == .tags([EntityTag(opaque: "aaa", weak: true), EntityTag(strong: "b")]))
        #expect(EntityTagList.parse(["*"]) == .any)
        #expect(EntityTagList.parse([" * "]) == .any)
        #expect(EntityTagList.parse(["\"x\"", "\"aaa\""]) == .tags([EntityTag(strong: "x"), a]))  // two field lines
        #expect(EntityTagList.parse(["\"\""]) == .tags([EntityTag(strong: "")]))
        for bad in ["aaa", "\"aaa", "w/\"aaa\"", "\"a\" \"b\"", "*, \"a\"", "\"a b\"", "", " , "] {
            #expect(EntityTagList.parse([bad]) == nil, "\(bad)")
        }
        #expect(EntityTagList.parse(["\"x\", W/\"aaa\""])?.matches(a) == true)  // weak comparison
        #expect(EntityTagList.parse(["\"x\", \"y\""])?.matches(a) == false)
        #expect(EntityTagList.any.matches(a) && EntityTagList.any.matches(nil))
        #expect(EntityTagList.parse(["\"aaa\""])?.matches(nil) == false)
    }

    @Test("If-Range: only a strong tag equal to the file's lets a Range through")
    func ifRangeParsing() {
        let etag = EntityTag(strong: "aaa")
        #expect(IfRange.allowsRange(nil, etag: etag))
        #expect(IfRange.allowsRange("\"aaa\"", etag: etag))
        #expect(IfRange.allowsRange(" \"aaa\" ", etag: etag))
        #expect(!IfRange.allowsRange("\"bbb\"", etag: etag))
        #expect(!IfRange.allowsRange("W/\"aaa\"", etag: etag))  // a weak tag never matches
        #expect(!IfRange.allowsRange("Wed, 21 Oct 2015 07:28:00 GMT", etag: etag))  // no Last-Modified: no date matches
        #expect(!IfRange.allowsRange("\"aaa\", \"bbb\"", etag: etag))
        #expect(!IfRange.allowsRange("\"aaa\"", etag: nil))
        #expect(!IfRange.allowsRange("", etag: etag))
    }

    @Test("over HTTP: If-None-Match lists, * and W/ give 304; If-Range that does not match gives 200 and the whole file")
    func overHTTP() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(1, size: 1000)
        let plain = try await shelf.pack(1, prefix: "RAW", size: 100, checksums: false)
        try await withServer(shelf) { server, client in
            let url = server.base + "/files/" + path(names[0])
            let bytes = try #require(shelf.files[names[0]]?.bytes)
            let etag = try #require(try await client.send("GET", url).headers["etag"])
            let weak = "W/" + etag
            for header in [etag, "\"nope\", " + etag, weak, "\"nope\", " + weak, "*"] {
                let r = try await client.send("GET", url, headers: ["If-None-Match": header])
                #expect(r.status == 304 && r.body.isEmpty && r.headers["etag"] == etag, "\(header)")
                let h = try await client.send("HEAD", url, headers: ["If-None-Match": header])
                #expect(h.status == 304, "HEAD \(header)")
            }
            for header in ["\"nope\"", "\"nope\", W/\"other\"", "garbage"] {
                let r = try await client.send("GET", url, headers: ["If-None-Match": header])
                #expect(r.status == 200 && r.body == bytes, "\(header)")
            }
            // If-Range: a match honours the Range; a wrong, weak or date validator gives the whole file.
            let matching = try await client.send("GET", url, headers: ["Range": "bytes=10-19", "If-Range": etag])
            #expect(matching.status == 206 && matching.body == Array(bytes[10...19]))
            for validator in ["\"nope\"", weak, "Wed, 21 Oct 2015 07:28:00 GMT"] {
                let r = try await client.send("GET", url, headers: ["Range": "bytes=10-19", "If-Range": validator])
                #expect(r.status == 200 && r.body == bytes && r.headers["content-range"] == nil, "\(validator)")
            }
            // Past the end but If-Range does not match: the Range is ignored, so 200, not 416.
            let past = try await client.send("GET", url, headers: ["Range": "bytes=5000-", "If-Range": "\"nope\""])
            #expect(past.status == 200 && past.body == bytes)
            // A file with no sha256 has no ETag: only * matches, and no If-Range does.
            let rawURL = server.base + "/files/" + path(plain[0])
            #expect(try await client.send("GET", rawURL, headers: ["If-None-Match": "*"]).status == 304)
            #expect(try await client.send("GET", rawURL, headers: ["If-None-Match": "\"x\""]).status == 200)
            let rawRange = try await client.send("GET", rawURL, headers: ["Range": "bytes=0-9", "If-Range": "\"x\""])
            #expect(rawRange.status == 200 && rawRange.body.count == 100)
        }
    }

    @Test("If-Match: * or a strongly equal tag passes; a weak, other or malformed one does not")
    func ifMatchParsing() {
        let etag = EntityTag(strong: "aaa")
        #expect(EntityTagList.ifMatchAllows([], etag: etag) && EntityTagList.ifMatchAllows([], etag: nil))
        for passes in ["\"aaa\"", "\"x\", \"aaa\"", "*", " * "] {
            #expect(EntityTagList.ifMatchAllows([passes], etag: etag), "\(passes)")
        }
        #expect(EntityTagList.ifMatchAllows(["\"x\"", "\"aaa\""], etag: etag))  // two field lines
        for fails in ["W/\"aaa\"", "\"x\"", "aaa", "\"aaa", "", "*, \"aaa\""] {
            #expect(!EntityTagList.ifMatchAllows([fails], etag: etag), "\(fails)")
        }
        #expect(EntityTagList.ifMatchAllows(["*"], etag: nil) && !EntityTagList.ifMatchAllows(["\"aaa\""], etag: nil))
    }

    @Test("over HTTP: If-Match that no tag of the file satisfies is 412 with its ETag, before If-None-Match; DELETE with If-Match deletes only that file")
    func ifMatchOverHTTP() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(3, size: 1000)
        let plain = try await shelf.pack(1, prefix: "RAW", size: 100, checksums: false)
        let auth = ["authorization": "Bearer s3cret"]
        try await withServer(shelf, edit: { $0.tokens = [Secret("s3cret")] }) { server, client in
            let url = server.base + "/files/" + path(names[0])
            let bytes = try #require(shelf.files[names[0]]?.bytes)
            let etag = try #require(try await client.send("GET", url, headers: auth).headers["etag"])
            for header in [etag, "\"nope\", " + etag, "*"] {
                let r = try await client.send("GET", url, headers: auth.merging(["If-Match": header]) { a, _ in a })
                #expect(r.status == 200 && r.body == bytes, "\(header)")
            }
            let ranged = try await client.send("GET", url, headers: auth.merging(["If-Match": etag, "Range": "bytes=0-9"]) { a, _ in a })
            #expect(ranged.status == 206 && ranged.body == Array(bytes[0...9]))
            for header in ["W/" + etag, "\"nope\"", "garbage"] {
                for method in ["GET", "HEAD"] {
                    let r = try await client.send(method, url, headers: auth.merging(["If-Match": header]) { a, _ in a })
                    #expect(r.status == 412 && r.headers["etag"] == etag && r.headers["cache-control"] == "no-store", "\(method) \(header)")
                    if method == "GET" { #expect(client.errorCode(r) == "precondition_failed" && !r.body.starts(with: bytes)) }
                }
            }
            // If-Match is evaluated first: a failing one is 412 even when If-None-Match would be 304.
            let both = try await client.send("GET", url, headers: auth.merging(["If-Match": "\"nope\"", "If-None-Match": etag]) { a, _ in a })
            #expect(both.status == 412)
            let cached = try await client.send("GET", url, headers: auth.merging(["If-Match": etag, "If-None-Match": etag]) { a, _ in a })
            #expect(cached.status == 304)
            // No sha256, no ETag: only * passes. A name that is not there stays 404.
            let rawURL = server.base + "/files/" + path(plain[0])
            #expect(try await client.send("GET", rawURL, headers: auth.merging(["If-Match": "*"]) { a, _ in a }).status == 200)
            #expect(try await client.send("GET", rawURL, headers: auth.merging(["If-Match": "\"x\""]) { a, _ in a }).status == 412)
            let never = try SnowflakeGenerator(configuration: .init(prefix: "SRV", node: 9)).next(count: 1)[0].description
            let missing = try await client.send("GET", server.base + "/files/" + never, headers: auth.merging(["If-Match": "*"]) { a, _ in a })
            #expect(missing.status == 404 && missing.headers["cache-control"] == "no-store", "a name not there yet may be there later: \(missing.headers)")
            let badName = try await client.send("GET", server.base + "/files/not-a-name", headers: auth)
            #expect(badName.status == 400 && badName.headers["cache-control"] == "no-store")
            // DELETE: a wrong tag deletes nothing; the right one deletes; then nothing matches, not even *.
            let victim = server.base + "/files/" + path(names[1])
            let victimTag = try #require(try await client.send("GET", victim, headers: auth).headers["etag"])
            let wrong = try await client.send("DELETE", victim + "?reason=x", headers: auth.merging(["If-Match": etag]) { a, _ in a })
            #expect(wrong.status == 412 && wrong.headers["etag"] == victimTag)
            #expect(try await client.send("GET", victim, headers: auth).status == 200, "a failed If-Match deleted the file")
            let right = try await client.send("DELETE", victim + "?reason=x", headers: auth.merging(["If-Match": victimTag]) { a, _ in a })
            #expect(right.status == 200)
            #expect(try await client.send("GET", victim, headers: auth).status == 410)
            let after = try await client.send("DELETE", victim + "?reason=x", headers: auth.merging(["If-Match": "*"]) { a, _ in a })
            #expect(after.status == 412 && client.errorCode(after) == "precondition_failed")
            #expect(try await client.send("DELETE", victim + "?reason=x", headers: auth).status == 200, "without If-Match, deleting again is still 200")
            // Eight conditional deletes of one file at once: exactly one deletes it; the others find it gone (412).
            let raced = server.base + "/files/" + path(names[2])
            let racedTag = try #require(try await client.send("GET", raced, headers: auth).headers["etag"])
            let answers = try await withThrowingTaskGroup(of: (Int, Bool?).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let c = Client()
                        defer { Task { await c.close() } }
                        let r = try await c.send("DELETE", raced + "?reason=race", headers: auth.merging(["If-Match": racedTag]) { a, _ in a })
                        return (r.status, (try? c.json(r) as? [String: Any])??["already_deleted"] as? Bool)
                    }
                }
                return try await group.reduce(into: [(Int, Bool?)]()) { $0.append($1) }
            }
            #expect(answers.filter { $0.0 == 200 }.count == 1 && answers.filter { $0.0 == 412 }.count == 7, "\(answers)")
            #expect(answers.first { $0.0 == 200 }?.1 == false, "the one delete that won was told it deleted the file")
        }
    }
}
