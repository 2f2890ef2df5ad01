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
                events: {poll_seconds: 0.5, retain: 5000, publish: {type: redis, url: "redis://:pw-secret@127.0.0.1:6379", stream: des-ev}}
                """.write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
            let r = try runDES(["config", "check", "c.yaml"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            // -c, as every other command takes the config, says the same; both at once, or neither, is a usage error.
            #expect(try runDES(["config", "check", "-c", "c.yaml"], in: dir).out == r.out)
            #expect(try runDES(["config", "check", "-c", "c.yaml", "c.yaml"], in: dir).status == 64)
            #expect(try runDES(["config", "check"], in: dir).status == 64)
            #expect(r.out.contains("storage:  s3, prefix des, bucket archive, path_style yes, part_size 32MiB, secret_key ***, access_key ***"), "\(r.out)")
            #expect(r.out.contains("cache:    redis, url ***"), "\(r.out)")
            #expect(
                r.out.contains(
                    "events:   followed (outbox read every 0.5 s or on a wake-up), outbox keeps 5,000, published by des relay to redis (url ***, stream des-ev)"),
                "\(r.out)")
            #expect(!r.out.contains("hunter2") && !r.out.contains("pw-secret"))
            let j = try runDES(["config", "check", "c.yaml", "--json"], in: dir)
            #expect(j.out.contains("\"part_size\":\"32MiB\"") || j.out.contains("\"part_size\" : \"32MiB\""), "\(j.out)")
            #expect(!j.out.contains("hunter2") && !j.out.contains("pw-secret"))
            let events = try #require((try JSONSerialization.jsonObject(with: Data(j.out.utf8)) as? [String: Any])?["events"] as? [String: Any])
            #expect(events["retain"] as? Int == 5000 && events["follow"] as? Bool == true && events["poll_seconds"] as? Double == 0.5)
            #expect((events["publish"] as? [String: Any])?["stream"] as? String == "des-ev")
        }
    }
}

/// `des sample` refuses what would lose data or memory.
@Suite("des sample, hostile")
struct CLISampleHostileTests {
    static let config = """
        sources:
          - name: catalog
            connection: {type: sqlite, database: catalog.sqlite}
            table: {name: files, columns: {s3_key: body_path, size_bytes: size_bytes}}
            bodies: {type: local, root: bodies}
        storage: {type: local, root: archive}
        metadata: {connection: {type: sqlite, database: metadata.sqlite}}
        """

    @Test("A second sample whose bodies would differ from the first's (same seed, other size) is refused before any row is added; absurd counts are usage errors")
    func sampleRefusals() throws {
        try withTempDir { dir in
            try Self.config.write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            #expect(try runDES(["sample", "-c", "des.yaml", "--files", "20"], in: dir).status == 0)
            let again = try runDES(["sample", "-c", "des.yaml", "--files", "5", "--size", "100"], in: dir)
            #expect(again.status != 0 && again.stderr.contains("pass another --seed"), "\(again.stderr)")
            // The same options again write the same bytes: harmless, accepted.
            #expect(try runDES(["sample", "-c", "des.yaml", "--files", "20"], in: dir).status == 0)
            #expect(try runDES(["sample", "-c", "des.yaml", "--files", "5", "--size", "100", "--seed", "2"], in: dir).status == 0)
            #expect(try runDES(["marker", "run", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            #expect(try runDES(["packer", "run", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            let check = try runDES(["check", "-c", "des.yaml"], in: dir)
            #expect(check.status == 0, "\(check.out)\(check.stderr)")
            for files in ["9223372036854775807", "-1", "10000001"] {
                #expect(try runDES(["sample", "-c", "des.yaml", "--files", files], in: dir).status == 64, "\(files)")
            }
            #expect(try runDES(["sample", "-c", "des.yaml", "--size", "99999999999"], in: dir).status == 64)
        }
    }

    @Test("A sample into an existing table of another shape is refused before any body is written")
    func existingTableOfAnotherShape() throws {
        try withTempDir { dir in
            try Self.config.write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            let made = try runProcess(
                "/usr/bin/env", ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE files (noid TEXT)'); c.commit()", dir + "/catalog.sqlite"])
            #expect(made.status == 0, "\(made.stderr)")
            let r = try runDES(["sample", "-c", "des.yaml", "--files", "10"], in: dir)
            #expect(r.status == 78 && r.stderr.contains("files"), "\(r.stderr)")
            let bodies = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/bodies")) ?? []
            #expect(bodies.isEmpty, "\(bodies)")
        }
    }
}

@Suite("des catalog check, one source down")
struct CLICatalogDownTests {
    @Test("A source whose server is down is reported beside the others, not instead of them; the exit code is the outage's (69)")
    func oneSourceDown() throws {
        try withTempDir { dir in
            try """
                sources:
                  - name: local
                    connection: {type: sqlite, database: catalog.sqlite}
                    table: {name: files, columns: {s3_key: body_path}}
                    bodies: {type: local, root: bodies}
                  - name: gone
                    connection: {type: postgresql, host: 127.0.0.1, port: 1, database: d, username: u, password: pw-not-shown, driver_options: {connect_timeout: 2}}
                    table: {name: files}
                metadata: {connection: {type: sqlite, database: metadata.sqlite}}
                """.write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            #expect(try runDES(["sample", "-c", "des.yaml", "--files", "3"], in: dir).status == 0)
            let r = try runDES(["catalog", "check", "-c", "des.yaml"], in: dir)
            #expect(r.status == 69, "\(r.out)\(r.stderr)")
            #expect(r.out.contains("source local (sqlite), table files: can run"), "\(r.out)")
            #expect(r.out.contains("source gone (postgresql): cannot check:"), "\(r.out)")
            let j = try runDES(["catalog", "check", "-c", "des.yaml", "--json"], in: dir)
            let entries = try #require(try JSONSerialization.jsonObject(with: Data(j.out.utf8)) as? [[String: Any]])
            #expect(entries.count == 2 && entries[0]["can_run"] as? Bool == true && entries[1]["can_run"] as? Bool == false)
            #expect(entries[1]["error"] is String)
            #expect(!(r.out + r.stderr + j.out + j.stderr).contains("pw-not-shown"))
        }
    }
}
