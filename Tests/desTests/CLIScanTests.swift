import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A filesystem source end to end: `des scan` writes the tree into the catalog DES keeps, the
/// stock marker and packer drain it, every version of a file stays readable by its name.
@Suite("des scan: a filesystem source")
struct CLIScanTests {
    static func config(minAge: Int) -> String {
        """
        sources:
          - name: share
            connection:
              type: filesystem
              roots: [tree]
              include: ["*.txt", "*.pdf"]
              min_age: \(minAge)
              routing: {"*.pdf": document, "sub/**": deep}
        storage: {type: local, root: des-data/archive}
        packer: {work_dir: des-data/work}
        """
    }

    static func write(_ dir: String, _ files: [String: String]) throws {
        for (path, text) in files {
            let full = dir + "/tree/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: full))
        }
    }

    static func json(_ r: RunResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(r.out) \(r.stderr)")
    }

    /// Rows of the catalog, by path and version: (status, name).
    static func rows(_ dir: String) throws -> [String: (status: String, name: String?, container: String?)] {
        let text = try CLIScanTreeTests.python(
            "import sqlite3,sys,json; print(json.dumps([list(x) for x in sqlite3.connect(sys.argv[1]).execute('select path, version, status, des_name, des_container from des_fs_files')]))",
            [dir + "/des-data/metadata.sqlite"])
        let data = Data(text.utf8)
        let list = try #require(try JSONSerialization.jsonObject(with: data) as? [[Any]])
        var out: [String: (String, String?, String?)] = [:]
        for row in list { out["\(row[0])@\(row[1])"] = ("\(row[2])", row[3] as? String, row[4] as? String) }
        return out
    }

    static func drain(_ dir: String) throws {
        for args in [["marker", "run", "-c", "des.yaml", "--until-idle"], ["packer", "run", "-c", "des.yaml", "--until-idle"]] {
            let r = try runDES(args, in: dir)
            #expect(r.status == 0, "\(args): \(r.stderr)")
        }
    }

    @Test("Scan, mark, pack and read back by name; a changed file is a new version, the old one still reads; a vanished one is gone")
    func endToEnd() throws {
        try withTempDir { dir in
            try Self.config(minAge: 0).write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try Self.write(dir, ["a.txt": "alpha", "b.txt": "bravo", "sub/c.pdf": "charlie", "x.tmp": "temp", ".hidden.txt": "no", "notes.md": "no"])
            try FileManager.default.createSymbolicLink(atPath: dir + "/tree/out.txt", withDestinationPath: "/etc/hostname")

            let summary = try runDES(["config", "check", "des.yaml"], in: dir)
            #expect(summary.status == 0 && summary.out.contains("options:   roots [tree]"), "\(summary.out)")
            let first = try runDES(["scan", "-c", "des.yaml", "--until-idle", "--json"], in: dir)
            #expect(first.status == 0, "\(first.stderr)")
            let t = try Self.json(first)
            #expect(t["inserted"] as? Int == 3 && t["ready"] as? Int == 3 && t["waiting"] as? Int == 0, "\(t)")
            #expect(t["links"] as? Int == 1 && t["excluded"] as? Int == 3, "\(t)")
            try Self.drain(dir)
            var rows = try Self.rows(dir)
            #expect(rows.count == 3 && rows.values.allSatisfy { $0.status == "packed" && $0.name != nil }, "\(rows)")

            let pdf = try #require(rows["sub/c.pdf@1"]?.name)
            let got = try runDES(["get", "-c", "des.yaml", pdf, "-o", "c.pdf"], in: dir)
            #expect(got.status == 0, "\(got.stderr)")
            #expect(try String(contentsOfFile: dir + "/c.pdf", encoding: .utf8) == "charlie")
            let container = try #require(rows["sub/c.pdf@1"]?.container)
            let meta = try runDES(["meta", "des-data/archive/" + container, pdf], in: dir)
            #expect(meta.out.contains("sub/c.pdf") && meta.out.contains("document") && meta.out.contains("deep"), "\(meta.out) \(meta.stderr)")

            // a.txt changes after it was packed, b.txt vanishes, d.txt appears and vanishes before it is packed.
            let oldA = try #require(rows["a.txt@1"]?.name)
            try Self.write(dir, ["a.txt": "alpha, second edition"])
            try FileManager.default.removeItem(atPath: dir + "/tree/b.txt")
            try Self.write(dir, ["d.txt": "delta"])
            let second = try runDES(["scan", "-c", "des.yaml", "--until-idle", "--json"], in: dir)
            #expect(second.status == 0, "\(second.stderr)")
            try FileManager.default.removeItem(atPath: dir + "/tree/d.txt")
            let third = try runDES(["scan", "-c", "des.yaml", "--until-idle", "--json"], in: dir)
            #expect(third.status == 0, "\(third.stderr)")
            try Self.drain(dir)
            rows = try Self.rows(dir)
            #expect(rows["a.txt@1"]?.status == "superseded" && rows["a.txt@2"]?.status == "packed", "\(rows)")
            #expect(rows["b.txt@1"]?.status == "superseded", "\(rows)")
            #expect(rows["d.txt@1"]?.status == "gone" && rows["d.txt@1"]?.name == nil, "vanished before it was named: \(rows)")
            let check = try runDES(["check", "-c", "des.yaml"], in: dir)
            #expect(check.status == 0, "\(check.out) \(check.stderr)")

            // Both versions of a.txt read back by their names.
            let newA = try #require(rows["a.txt@2"]?.name)
            #expect(try runDES(["get", "-c", "des.yaml", oldA, "-o", "a1"], in: dir).status == 0)
            #expect(try runDES(["get", "-c", "des.yaml", newA, "-o", "a2"], in: dir).status == 0)
            #expect(try String(contentsOfFile: dir + "/a1", encoding: .utf8) == "alpha")
            #expect(try String(contentsOfFile: dir + "/a2", encoding: .utf8) == "alpha, second edition")
        }
    }

    @Test("A file replaced after the scan is not packed as the scanned row (another file's bytes, a rewrite); the next scan takes it as it is")
    func replacedAfterScan() throws {
        try withTempDir { dir in
            try Self.config(minAge: 0).write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try Self.write(dir, ["a.txt": "scanned", "b.txt": "kept"])
            #expect(try runDES(["scan", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            #expect(try runDES(["marker", "run", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            // Between the scan and the packer: a.txt becomes another file (a hard link to one outside the tree).
            try Data("outside secret".utf8).write(to: URL(fileURLWithPath: dir + "/outside.txt"))
            try FileManager.default.removeItem(atPath: dir + "/tree/a.txt")
            try FileManager.default.linkItem(atPath: dir + "/outside.txt", toPath: dir + "/tree/a.txt")
            let packer = try runDES(["packer", "run", "-c", "des.yaml", "--until-idle"], in: dir)
            #expect(packer.status == 0, "\(packer.stderr)")
            var rows = try Self.rows(dir)
            #expect(rows["a.txt@1"]?.status == "failed" && rows["b.txt@1"]?.status == "packed", "\(rows)")
            // The next scan takes a.txt as it is now, in the same row, and it is packed as that.
            #expect(try runDES(["scan", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            try Self.drain(dir)
            rows = try Self.rows(dir)
            let a = try #require(rows["a.txt@1"])
            #expect(a.status == "packed" && rows.count == 2, "\(rows)")
            #expect(try runDES(["get", "-c", "des.yaml", try #require(a.name), "-o", "a"], in: dir).status == 0)
            #expect(try String(contentsOfFile: dir + "/a", encoding: .utf8) == "outside secret", "what the tree holds now, scanned as such")

            // des check reads a body as the packer does: a packed file replaced by a link out of the
            // root is a problem named as such, never read (no oracle on what lies outside).
            try FileManager.default.removeItem(atPath: dir + "/tree/b.txt")
            try FileManager.default.createSymbolicLink(atPath: dir + "/tree/b.txt", withDestinationPath: "/etc/hostname")
            let check = try runDES(["check", "-c", "des.yaml"], in: dir)
            #expect(check.status != 0 && check.stderr.contains("cannot be read as packed"), "\(check.stderr)")
            #expect(!check.stderr.contains("differ from the body"), "\(check.stderr)")
        }
    }

    @Test("A missing root is named, exit 66, and nothing is marked gone")
    func missingRoot() throws {
        try withTempDir { dir in
            try Self.config(minAge: 0).write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try Self.write(dir, ["a.txt": "alpha"])
            #expect(try runDES(["scan", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            try FileManager.default.moveItem(atPath: dir + "/tree", toPath: dir + "/unmounted")
            let r = try runDES(["scan", "-c", "des.yaml", "--until-idle"], in: dir)
            #expect(r.status == 66 && r.stderr.contains("scan root") && r.stderr.contains("cannot be opened"), "\(r.status) \(r.stderr)")
            let row = try #require(try Self.rows(dir)["a.txt@1"])
            #expect(row.status == "new", "ready before, still ready: not marked gone (\(row.status))")
        }
    }

    @Test("A root holding DES's own files (containers, work directory, metadata database, config) is refused, naming each and its exclude; excluded, it scans only the tree")
    func rootHoldingDESData() throws {
        try withTempDir { dir in
            try Self.write(dir, ["a.txt": "alpha"])
            func config(_ exclude: String) -> String {
                """
                sources:
                  - name: here
                    connection: {type: filesystem, roots: [.], min_age: 0\(exclude)}
                storage: {type: local, root: des-data/archive}
                packer: {work_dir: des-data/work}
                """
            }
            try config("").write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            let r = try runDES(["scan", "-c", "des.yaml", "--until-idle"], in: dir)
            #expect(r.status == 65, "\(r.status) \(r.stderr)")
            for named in ["storage.root ('des-data/archive')", "packer.work_dir ('des-data/work')", "the config file ('des.yaml')",
                "the metadata database ('des-data/metadata.sqlite*')"] {
                #expect(r.stderr.contains(named), "\(named): \(r.stderr)")
            }
            #expect(try Self.rows(dir).isEmpty, "rows written before the refusal")
            // A directory on the way excludes what is beneath it.
            try config(", exclude: [des-data, des.yaml, '.*']").write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            let ok = try runDES(["scan", "-c", "des.yaml", "--until-idle"], in: dir)
            #expect(ok.status == 0, "\(ok.stderr)")
            let keys = Set(try Self.rows(dir).keys)
            #expect(keys == ["tree/a.txt@1"], "\(keys.sorted())")
        }
    }

    @Test("A directory the walk cannot read (a path past the kernel's 4,096 bytes) is said in the summary, not only in the log")
    func partialWalkSaid() throws {
        try withTempDir { dir in
            try Self.config(minAge: 0).write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try Self.write(dir, ["top.txt": "top"])
            // 22 nested directories of 200 bytes each, made one by one (each relative to the last).
            _ = try CLIScanTreeTests.python(
                "import os,sys\nos.chdir(sys.argv[1])\nfor _ in range(22):\n  os.mkdir('d'*200); os.chdir('d'*200)\nopen('deep.txt','w').write('x')",
                [dir + "/tree"])
            let r = try runDES(["scan", "-c", "des.yaml", "--until-idle", "--log-level", "error"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.contains("could not be read") && r.stderr.contains("nothing in them was marked gone"), "\(r.stderr)")
            #expect(try Self.rows(dir)["top.txt@1"] != nil)
            // (A tree past PATH_MAX is removed by descriptor, as Python's rmtree does; the temporary directory's own removal could not.)
            _ = try CLIScanTreeTests.python("import shutil,sys\nshutil.rmtree(sys.argv[1])", [dir + "/tree/" + String(repeating: "d", count: 200)])
        }
    }

    @Test("A file not yet min_age old waits: no row is handed to the marker")
    func youngFilesWait() throws {
        try withTempDir { dir in
            try Self.config(minAge: 3600).write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try Self.write(dir, ["a.txt": "alpha", "b.pdf": "bravo"])
            let r = try runDES(["scan", "-c", "des.yaml", "--until-idle", "--json"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            let t = try Self.json(r)
            #expect(t["inserted"] as? Int == 2 && t["ready"] as? Int == 0 && t["waiting"] as? Int == 2, "\(t)")
            let marker = try runDES(["marker", "run", "-c", "des.yaml", "--until-idle"], in: dir)
            #expect(marker.status == 0 && marker.out.contains("marked 0 rows"), "\(marker.out) \(marker.stderr)")
            #expect(try Self.rows(dir).values.allSatisfy { $0.status == "observed" })
        }
    }

    @Test("Bad filesystem sources are refused at their key: no roots, a table block, a broken glob")
    func refusals() throws {
        try withTempDir { dir in
            let cases: [(String, String)] = [
                ("connection: {type: filesystem}", "needs roots"),
                ("connection: {type: filesystem, roots: [t]}\n    table: {name: files}", "has no table: block"),
                ("connection: {type: filesystem, roots: [t], include: [\"[abc\"]}", "has a [ with no ]"),
                ("connection: {type: filesystem, roots: [t], min_age: -1}", "min_age"),
                ("connection: {type: filesystem, roots: [t, ./t/sub]}", "overlap"),
                ("connection: {type: filesystem, roots: [t, t/]}", "overlap"),
                ("connection: {type: filesystem, roots: [., t]}", "overlap"),
            ]
            for (block, words) in cases {
                try "sources:\n  - name: s\n    \(block)\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
                let r = try runDES(["config", "check", "bad.yaml"], in: dir)
                #expect(r.status != 0 && r.stderr.contains(words) && r.stderr.contains("bad.yaml:"), "\(block): \(r.stderr)")
            }
        }
    }
}
