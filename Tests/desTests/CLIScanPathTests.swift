import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A filesystem source's files read by path (`des get --path`, `des ls-versions`,
/// `GET /files/by-path/…`), and bytes DES already holds recorded once.
@Suite("Filesystem sources: reading by path, duplicates stored once")
struct CLIScanPathTests {
    static func config(roots: [String] = ["tree"]) -> String {
        """
        sources:
          - name: share
            connection: {type: filesystem, roots: [\(roots.joined(separator: ", "))], min_age: 0}
        storage: {type: local, root: des-data/archive}
        packer: {work_dir: des-data/work}
        """
    }

    static func write(_ dir: String, _ files: [String: String], root: String = "tree") throws {
        for (path, text) in files {
            let full = dir + "/" + root + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: full))
        }
    }

    static func scan(_ dir: String) throws -> [String: Any] {
        let r = try runDES(["scan", "-c", "des.yaml", "--until-idle", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return try CLIScanTests.json(r)
    }

    static func get(_ dir: String, _ args: [String]) throws -> (Int32, String, String) {
        let r = try runDES(["get", "-c", "des.yaml"] + args, in: dir)
        return (r.status, r.out, r.stderr)
    }

    /// Entries across the uploaded containers (des ls of each).
    static func entries(_ dir: String) throws -> Int {
        let archive = dir + "/des-data/archive"
        let files = (FileManager.default.enumerator(atPath: archive)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".des") }
        var n = 0
        for f in files {
            let r = try runDES(["ls", archive + "/" + f], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            n += r.outLines.count
        }
        return n
    }

    @Test("Two paths and a later version with the same bytes are stored once; each reads back by path, every version by number; des check passes")
    func duplicatesStoredOnce() throws {
        try withTempDir { dir in
            try Self.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try Self.write(dir, ["a.txt": "same bytes", "b.txt": "same bytes", "c.txt": "other bytes"])
            var t = try Self.scan(dir)
            // a.txt goes first; b.txt waits until a.txt's bytes are packed.
            #expect(t["ready"] as? Int == 2 && t["waiting"] as? Int == 1 && t["duplicates"] as? Int == 0, "\(t)")
            #expect(t["read"] as? Int == 3, "each file read once; the waiting twin keeps its digest: \(t)")
            try CLIScanTests.drain(dir)
            t = try Self.scan(dir)
            #expect(t["duplicates"] as? Int == 1 && t["ready"] as? Int == 0, "\(t)")
            var rows = try CLIScanTests.rows(dir)
            let a = try #require(rows["a.txt@1"])
            #expect(rows["b.txt@1"]?.status == "packed" && rows["b.txt@1"]?.name == a.name && rows["b.txt@1"]?.container == a.container, "\(rows)")
            #expect(try Self.entries(dir) == 2, "three files, two contents, two entries")

            // c.txt changes to bytes DES holds: its new version is a reference, its first still reads.
            try Self.write(dir, ["c.txt": "same bytes"])
            t = try Self.scan(dir)
            #expect(t["versions"] as? Int == 1 && t["duplicates"] as? Int == 1, "\(t)")
            rows = try CLIScanTests.rows(dir)
            #expect(rows["c.txt@1"]?.status == "superseded" && rows["c.txt@2"]?.name == a.name, "\(rows)")
            #expect(try Self.entries(dir) == 2)

            for (args, text) in [
                (["--path", "b.txt"], "same bytes"), (["--path", "c.txt"], "same bytes"), (["--path", "c.txt", "--version", "1"], "other bytes"),
                (["--path", "./c.txt", "--version", "2"], "same bytes"),
            ] {
                let (status, out, err) = try Self.get(dir, args)
                #expect(status == 0 && out == text, "\(args): \(status) \(out) \(err)")
            }
            let versions = try runDES(["ls-versions", "-c", "des.yaml", "--path", "c.txt", "--json"], in: dir)
            #expect(versions.status == 0, "\(versions.stderr)")
            let list = try #require(try JSONSerialization.jsonObject(with: Data(versions.out.utf8)) as? [[String: Any]])
            #expect(list.map { $0["version"] as? Int } == [1, 2] && list.map { $0["status"] as? String } == ["superseded", "packed"], "\(list)")
            #expect(list.allSatisfy { ($0["sha256"] as? String)?.count == 64 && $0["held"] as? Bool == true }, "\(list)")
            #expect(list[1]["sha256"] as? String != list[0]["sha256"] as? String)

            let check = try runDES(["check", "-c", "des.yaml", "--json"], in: dir)
            #expect(check.status == 0, "\(check.out) \(check.stderr)")
            #expect(check.out.contains("\"rows_checked\" : 4") || check.out.contains("\"rows_checked\":4"), "every packed row, references too: \(check.out)")
        }
    }

    @Test("Names that differ only in Unicode normalization (café precomposed and decomposed) are two files: one row each, packed, each read back by its own path; a rescan adds nothing")
    func normalizationTwins() throws {
        try withTempDir { dir in
            try Self.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            // Byte names: Foundation would not keep the two spellings apart.
            _ = try CLIScanTreeTests.python(
                "import os,sys; d=sys.argv[1]; os.makedirs(d, exist_ok=True)\nfor n, t in [(b'caf\\xc3\\xa9.txt', b'precomposed'), (b'cafe\\xcc\\x81.txt', b'decomposed')]: open(os.path.join(d.encode(), n), 'wb').write(t)",
                [dir + "/tree"])
            var t = try Self.scan(dir)
            #expect(t["inserted"] as? Int == 2 && t["ready"] as? Int == 2, "\(t)")
            try CLIScanTests.drain(dir)
            for _ in 0..<2 {
                t = try Self.scan(dir)
                #expect(t["inserted"] as? Int == 0 && t["versions"] as? Int == 0 && t["updated"] as? Int == 0 && t["ready"] as? Int == 0, "a rescan of the same two files: \(t)")
            }
            let rows = try CLIScanTreeTests.python(
                "import sqlite3,sys; print(sorted((r[0].encode().hex(), r[1], r[2]) for r in sqlite3.connect(sys.argv[1]).execute('select path, version, status from des_fs_files')))",
                [dir + "/des-data/metadata.sqlite"])
            #expect(rows.trimmingCharacters(in: .whitespacesAndNewlines) == "[('63616665cc812e747874', 1, 'packed'), ('636166c3a92e747874', 1, 'packed')]", "\(rows)")
            for (path, text) in [("caf\u{e9}.txt", "precomposed"), ("cafe\u{301}.txt", "decomposed")] {
                let (status, out, err) = try Self.get(dir, ["--path", path])
                #expect(status == 0 && out == text, "\(Array(path.utf8)): \(status) \(out) \(err)")
            }
        }
    }

    @Test("By path: a path never scanned, a version that is not there or not packed, and a path under two roots are each named, with their exit codes")
    func pathRefusals() throws {
        try withTempDir { dir in
            try Self.config(roots: ["tree", "other"]).write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try Self.write(dir, ["x.txt": "in tree", "only.txt": "one"])
            try Self.write(dir, ["x.txt": "in other"], root: "other")
            _ = try Self.scan(dir)
            // Scanned, not yet packed.
            var (status, _, err) = try Self.get(dir, ["--path", "only.txt"])
            #expect(status == 66 && err.contains("'only.txt': no version is packed yet (version 1 is new)"), "\(status) \(err)")
            try CLIScanTests.drain(dir)
            (status, _, err) = try Self.get(dir, ["--path", "x.txt"])
            #expect(status == 64 && err.contains("more than one source or root") && err.contains("share:tree") && err.contains("share:other"), "\(err)")
            var out: String
            (status, out, err) = try Self.get(dir, ["--path", "x.txt", "--root", "other/"])
            #expect(status == 0 && out == "in other", "\(status) \(err)")
            for (args, words) in [
                (["--path", "nope.txt"], "'nope.txt': no file at this path"), (["--path", "only.txt", "--version", "3"], "has no version 3 (versions: 1)"),
                (["--path", "../tree/only.txt"], "no file at this path"), (["--path", "only.txt", "--source", "elsewhere"], "not an enabled filesystem source"),
            ] {
                (status, _, err) = try Self.get(dir, args)
                #expect(status == (args.contains("--source") ? 64 : 66) && err.contains(words), "\(args): \(status) \(err)")
            }
            (status, _, err) = try Self.get(dir, ["--path", ""])
            #expect(status == 64 && err.contains("--path must name a file"), "\(err)")
            (status, _, err) = try Self.get(dir, ["DES_20250101_(21BCAA000100_88)", "--path", "x.txt"])
            #expect(status == 64 && err.contains("not both"), "\(err)")
        }
    }

    @Test("GET /files/by-path on des serve: the newest packed version, ?version=N, Range and ETag as for names; 404 named; 410 once deleted")
    func servedByPath() async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/des-bypath-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
        try Self.write(dir, ["docs/r é.txt": "first edition"])
        _ = try Self.scan(dir)
        try CLIScanTests.drain(dir)
        try Self.write(dir, ["docs/r é.txt": "second edition!"])
        _ = try Self.scan(dir)
        try CLIScanTests.drain(dir)

        let server = Process()
        server.executableURL = URL(fileURLWithPath: try desBinary())
        server.arguments = ["serve", "-c", dir + "/des.yaml", "--port", "0", "--log-level", "critical"]
        let pipe = Pipe()
        server.standardOutput = pipe
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }
        let line = String(decoding: pipe.fileHandleForReading.availableDataLine(), as: UTF8.self)
        let port = try #require(line.split(separator: ":").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }, "\(line)")
        let base = "http://127.0.0.1:\(port)/files/by-path/docs/r%20%C3%A9.txt"

        var r = try HTTP.get(base)
        #expect(r.status == 200 && r.body == "second edition!" && r.headers["x-des-version"] == "2", "\(r)")
        #expect(r.headers["cache-control"] == "no-cache", "a path's bytes change: revalidate: \(r.headers)")
        let name = try #require(r.headers["x-des-name"])
        let etag = try #require(r.headers["etag"])
        r = try HTTP.get(base + "?version=1")
        #expect(r.status == 200 && r.body == "first edition" && r.headers["x-des-version"] == "1", "\(r)")
        #expect(r.headers["cache-control"]?.contains("immutable") == true, "a version's bytes never change: \(r.headers)")
        r = try HTTP.get(base, headers: ["Range": "bytes=7-13"])
        #expect(r.status == 206 && r.body == "edition", "\(r)")
        r = try HTTP.get(base, headers: ["If-None-Match": etag])
        #expect(r.status == 304, "\(r)")
        r = try HTTP.get(base, headers: ["If-Match": etag])
        #expect(r.status == 200 && r.body == "second edition!", "\(r)")
        // An If-Match of the first edition fails on the path's newest: 412, not cached.
        let first = try #require(try HTTP.get(base + "?version=1").headers["etag"])
        r = try HTTP.get(base, headers: ["If-Match": first])
        #expect(r.status == 412 && r.headers["cache-control"] == "no-store" && r.headers["etag"] == etag, "\(r)")
        r = try HTTP.get(base + "?version=9")
        #expect(r.status == 404 && r.body.contains("no_such_version"), "\(r)")
        r = try HTTP.get("http://127.0.0.1:\(port)/files/by-path/docs/missing.txt")
        #expect(r.status == 404 && r.body.contains("no file at this path"), "\(r)")
        r = try HTTP.get(base + "?version=x")
        #expect(r.status == 400 && r.body.contains("bad_version"), "\(r)")
        r = try HTTP.get(base + "?version=1&version=2")
        #expect(r.status == 400 && r.body.contains("repeated_parameter"), "\(r)")

        let deleted = try runDES(["delete", "-c", "des.yaml", name, "--reason", "test"], in: dir)
        #expect(deleted.status == 0, "\(deleted.stderr)")
        // The path's newest version is looked up in the catalog on each request: deleted at once.
        #expect(try HTTP.get(base).status == 410)
        #expect(try HTTP.get(base + "?version=1").body == "first edition", "an older version is still read by number")
        // The same by the command line; and a later change of the file is a new version, never the deleted name again.
        var (code, out, err) = try Self.get(dir, ["--path", "docs/r é.txt"])
        #expect(code == 66 && err.contains("its newest version (2) was deleted"), "\(code) \(err)")
        try Self.write(dir, ["docs/r é.txt": "third edition"])
        _ = try Self.scan(dir)
        try CLIScanTests.drain(dir)
        (code, out, err) = try Self.get(dir, ["--path", "docs/r é.txt"])
        #expect(code == 0 && out == "third edition", "\(code) \(err)")
        let rows = try CLIScanTests.rows(dir)
        #expect(rows["docs/r é.txt@2"]?.status == "deleted" && rows["docs/r é.txt@3"]?.name != name, "\(rows)")
    }
}

/// Plain HTTP requests, through Python's standard library (no client library in the tests).
enum HTTP {
    struct Answer: CustomStringConvertible {
        var status: Int
        var headers: [String: String]
        var body: String
        var description: String { "\(status) \(headers) \(body)" }
    }

    static func get(_ url: String, headers: [String: String] = [:]) throws -> Answer {
        let script = """
            import json, sys, urllib.request, urllib.error
            req = urllib.request.Request(sys.argv[1], headers=json.loads(sys.argv[2]))
            try:
                r = urllib.request.urlopen(req, timeout=10); status, hs, body = r.status, r.headers, r.read()
            except urllib.error.HTTPError as e:
                status, hs, body = e.code, e.headers, e.read()
            print(json.dumps({"status": status, "headers": {k.lower(): v for k, v in hs.items()}, "body": body.decode("utf-8", "replace")}))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script, url, String(decoding: try JSONSerialization.data(withJSONObject: headers), as: UTF8.self)]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(String(decoding: data, as: UTF8.self))")
        return Answer(
            status: object["status"] as? Int ?? 0, headers: object["headers"] as? [String: String] ?? [:], body: object["body"] as? String ?? "")
    }
}

extension FileHandle {
    /// Bytes up to and including the first newline (or the end).
    func availableDataLine() -> Data {
        var line = Data()
        while true {
            let byte = readData(ofLength: 1)
            if byte.isEmpty { return line }
            line.append(byte)
            if byte.first == UInt8(ascii: "\n") { return line }
        }
    }
}

/// The roots of a filesystem source keep their places.
@Suite("Filesystem sources: roots keep their places")
struct CLIScanRootsTests {
    @Test("Roots reordered or removed are refused by every command, naming the root; a root added at the end is taken")
    func reordered() throws {
        try withTempDir { dir in
            try CLIScanPathTests.config(roots: ["tree", "other"]).write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try CLIScanPathTests.write(dir, ["p.txt": "from tree"])
            try CLIScanPathTests.write(dir, ["q.txt": "from other"], root: "other")
            _ = try CLIScanPathTests.scan(dir)
            try CLIScanTests.drain(dir)
            for (roots, words) in [
                (["other", "tree"], "root 1 is 'other', but its catalog's rows there are of 'tree'"), (["tree"], "rows of root 2, 'other', which is no longer in roots"),
            ] {
                try CLIScanPathTests.config(roots: roots).write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
                for args in [["scan", "-c", "des.yaml", "--until-idle"], ["get", "-c", "des.yaml", "--path", "p.txt"], ["packer", "run", "-c", "des.yaml", "--until-idle"]] {
                    let r = try runDES(args, in: dir)
                    #expect(r.status == 65 && r.stderr.contains(words), "\(roots) \(args[0]): \(r.status) \(r.stderr)")
                }
            }
            // The same directory under another name (a link): refused once it resolves.
            try FileManager.default.createSymbolicLink(atPath: dir + "/alias", withDestinationPath: dir + "/tree")
            try CLIScanPathTests.config(roots: ["tree", "other", "alias"]).write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            let twice = try runDES(["scan", "-c", "des.yaml", "--until-idle"], in: dir)
            #expect(twice.status == 65 && twice.stderr.contains("roots 'tree' and 'alias' are the same directory once links are followed"), "\(twice.stderr)")
            try CLIScanPathTests.config(roots: ["tree/", "other", "third"]).write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try CLIScanPathTests.write(dir, ["r.txt": "from third"], root: "third")
            _ = try CLIScanPathTests.scan(dir)
            try CLIScanTests.drain(dir)
            for (path, text) in [("p.txt", "from tree"), ("q.txt", "from other"), ("r.txt", "from third")] {
                let r = try runDES(["get", "-c", "des.yaml", "--path", path], in: dir)
                #expect(r.status == 0 && r.out == text, "\(path): \(r.stderr)")
            }
        }
    }
}

/// A catalog made by an earlier release.
@Suite("Filesystem sources: a catalog from an earlier release")
struct CLIScanUpgradeTests {
    @Test("A des_fs_files made without stamps or digests gets the columns; its rows (no stamp) and new ones are packed and read by path")
    func upgraded() throws {
        try withTempDir { dir in
            try CLIScanPathTests.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try CLIScanPathTests.write(dir, ["old.txt": "scanned by the earlier release"])
            // The table as the earlier release made it, with the row its scan left (ready for the marker).
            var st = stat()
            #expect(stat(dir + "/tree/old.txt", &st) == 0)
            let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
            let ctime = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
            try FileManager.default.createDirectory(atPath: dir + "/des-data", withIntermediateDirectories: true)
            try CLIScanTreeTests.python(
                """
                import sqlite3, sys
                db = sqlite3.connect(sys.argv[1])
                db.execute('''CREATE TABLE des_fs_files (id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, root INTEGER NOT NULL,
                  path TEXT NOT NULL, body_key TEXT NOT NULL, version INTEGER NOT NULL, size_bytes INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                  ctime_ns INTEGER NOT NULL, device INTEGER NOT NULL, inode INTEGER NOT NULL, tags TEXT, observed_at REAL NOT NULL,
                  status TEXT NOT NULL, des_name TEXT, des_shard INTEGER, des_claimed_by TEXT, des_claimed_at REAL, des_container TEXT,
                  des_error TEXT, des_packed_at REAL)''')
                db.execute("INSERT INTO des_fs_files (source, root, path, body_key, version, size_bytes, mtime_ns, ctime_ns, device, inode, observed_at, status) VALUES ('share', 0, 'old.txt', '0/old.txt', 1, ?, ?, ?, ?, ?, 0, 'new')",
                  [int(x) for x in sys.argv[2:7]])
                db.commit()
                """, [dir + "/des-data/metadata.sqlite", "\(st.st_size)", "\(mtime)", "\(ctime)", "\(st.st_dev)", "\(st.st_ino)"])
            try CLIScanPathTests.write(dir, ["new.txt": "scanned now"])
            _ = try CLIScanPathTests.scan(dir)
            try CLIScanTests.drain(dir)
            let rows = try CLIScanTests.rows(dir)
            #expect(rows["old.txt@1"]?.status == "packed" && rows["new.txt@1"]?.status == "packed", "\(rows)")
            for (path, text) in [("old.txt", "scanned by the earlier release"), ("new.txt", "scanned now")] {
                let r = try runDES(["get", "-c", "des.yaml", "--path", path], in: dir)
                #expect(r.status == 0 && r.out == text, "\(path): \(r.stderr)")
            }
            #expect(try runDES(["check", "-c", "des.yaml"], in: dir).status == 0)
        }
    }
}
