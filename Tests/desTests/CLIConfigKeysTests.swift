import DESTestSupport
import Foundation
import Testing

/// `des config keys`: the plugins' own key tables, which docs/configuration.md embeds.
@Suite("des config keys")
struct CLIConfigKeysTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test("docs/configuration.md's plugin key tables are exactly des config keys --markdown")
    func docsMatchTheTables() throws {
        try withTempDir { dir in
            let r = try runDES(["config", "keys", "--markdown"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            let docs = try String(contentsOfFile: Self.root + "/docs/configuration.md", encoding: .utf8)
            let begin = "<!-- BEGIN des config keys --markdown -->\n", end = "<!-- END des config keys -->"
            let start = try #require(docs.range(of: begin)), stop = try #require(docs.range(of: end))
            let block = String(docs[start.upperBound..<stop.lowerBound])
            #expect(block == r.out, "regenerate the block with: des config keys --markdown")
            // Every stock plugin is there, each key with its kind and bounds.
            for title in ["`storage:` type `s3`", "`cache:` type `redis`", "`bodies:` type `local`", "source types `mariadb`, `mysql`"] {
                #expect(block.contains(title), "\(title)")
            }
            #expect(block.contains("| `part_size` | bytes 5MiB…5GiB | `16MiB` |"))
        }
    }

    @Test("--json lists each kind's types and keys; --kind narrows it; --markdown with --json is a usage error")
    func jsonAndKind() throws {
        try withTempDir { dir in
            let r = try runDES(["config", "keys", "--kind", "cache", "--json"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            let groups = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]])
            #expect(groups.allSatisfy { $0["kind"] as? String == "cache" })
            #expect(Set(groups.flatMap { $0["types"] as? [String] ?? [] }) == ["memory", "none", "redis"])
            let redis = try #require(groups.first { ($0["types"] as? [String]) == ["redis"] })
            let names = (redis["keys"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(names == ["url", "ttl_seconds", "key_prefix", "timeout_seconds"])
            #expect(try runDES(["config", "keys", "--json", "--markdown"], in: dir).status == 64)
            #expect(try runDES(["config", "keys", "--kind", "tape"], in: dir).status == 64)
        }
    }

    @Test("des config check shows what a plugin section wrote, secrets as ***")
    func checkShowsPluginSections() throws {
        try withTempDir { dir in
            try """
                storage: {type: s3, bucket: archive, path_style: yes, part_size: 32MiB, secret_key: hunter2-secret-key, access_key: AK}
                cache: {type: redis, url: "redis://:pw-secret@127.0.0.1:6379"}
                """.write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
            let r = try runDES(["config", "check", "c.yaml"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.out.contains("storage:  s3, prefix des, bucket archive, path_style yes, part_size 32MiB, secret_key ***, access_key ***"), "\(r.out)")
            #expect(r.out.contains("cache:    redis, url ***"), "\(r.out)")
            #expect(!r.out.contains("hunter2") && !r.out.contains("pw-secret"))
            let j = try runDES(["config", "check", "c.yaml", "--json"], in: dir)
            #expect(j.out.contains("\"part_size\":\"32MiB\"") || j.out.contains("\"part_size\" : \"32MiB\""), "\(j.out)")
            #expect(!j.out.contains("hunter2"))
        }
    }
}
