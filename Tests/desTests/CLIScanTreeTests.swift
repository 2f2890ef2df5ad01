import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A filesystem source on real trees: large, changing while it is scanned and packed, with
/// files the packer cannot read and directories that vanish mid-walk.
@Suite("Filesystem sources on trees that are large, busy or hostile")
struct CLIScanTreeTests {
    /// Runs python3 with `script` and `args`; its stdout.
    @discardableResult
    static func python(_ script: String, _ args: [String] = []) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script] + args
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "python: \(script.prefix(80))")
        return String(decoding: data, as: UTF8.self)
    }

    /// The catalog's rows as (count, sum of observed_at, max id), and counts by status.
    static func snapshot(_ dir: String) throws -> String {
        try python(
            """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            print(db.execute('select count(*), sum(observed_at), max(id), group_concat(status) from (select observed_at, id, status from des_fs_files order by id)').fetchone()[:3])
            print(sorted(db.execute('select status, count(*) from des_fs_files group by status').fetchall()))
            """, [dir + "/des-data/metadata.sqlite"])
    }

    static func scan(_ dir: String) throws -> [String: Any] {
        let r = try runDES(["scan", "-c", "des.yaml", "--until-idle", "--json"], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return try CLIScanTests.json(r)
    }

    @Test("100,000 files: each cataloged, packed and readable by path once; a rescan of the unchanged tree reads no file and writes no row")
    func hundredThousand() throws {
        try withTempDir { dir in
            try CLIScanPathTests.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try Self.python(
                """
                import os, sys
                root = sys.argv[1]
                for d in range(1000):
                    p = os.path.join(root, "d%03d" % (d // 100), "e%04d" % d)
                    os.makedirs(p)
                    for i in range(100):
                        with open(os.path.join(p, "f%02d.txt" % i), "w") as f: f.write("file %d/%d\\n" % (d, i))
                """, [dir + "/tree"])
            var t = try Self.scan(dir)
            #expect(t["inserted"] as? Int == 100_000 && t["ready"] as? Int == 100_000 && t["read"] as? Int == 100_000, "\(t)")
            #expect(t["directories"] as? Int == 1_011 && t["waiting"] as? Int == 0, "\(t)")
            let before = try Self.snapshot(dir)
            t = try Self.scan(dir)
            #expect(t["seen"] as? Int == 100_000 && t["read"] as? Int == 0, "nothing read on a rescan: \(t)")
            for key in ["inserted", "updated", "ready", "duplicates", "gone", "superseded"] { #expect(t[key] as? Int == 0, "\(key): \(t)") }
            #expect(try Self.snapshot(dir) == before, "no row written, not even its observed_at")

            try CLIScanTests.drain(dir)
            let drained = try Self.snapshot(dir)
            #expect(drained.contains("[('packed', 100000)]"), "\(drained)")
            for (path, text) in [("d000/e0000/f00.txt", "file 0/0\n"), ("d009/e0999/f99.txt", "file 999/99\n"), ("d005/e0512/f37.txt", "file 512/37\n")] {
                let r = try runDES(["get", "-c", "des.yaml", "--path", path], in: dir)
                #expect(r.status == 0 && r.out == text, "\(path): \(r.out) \(r.stderr)")
            }
        }
    }

    @Test("A file appended to while scans run is not handed on until it stops changing; then it is packed whole")
    func appendedWhileScanned() throws {
        try withTempDir { dir in
            // min_age 5 s: a file written to every 0.1 s is never old enough, whatever the timing
            // of the scans (a margin of 50 writes, not a race between two scans' observations).
            try """
                sources:
                  - name: share
                    connection: {type: filesystem, roots: [tree], min_age: 5}
                storage: {type: local, root: des-data/archive}
                packer: {work_dir: des-data/work}
                """.write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try CLIScanPathTests.write(dir, ["log.txt": "start\n"])
            // A writer appends a line every 0.1 s until told to stop, in its own process.
            let writer = Process()
            writer.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            writer.arguments = [
                "-c",
                """
                import select, sys, time
                with open(sys.argv[1], 'a') as f:
                    i = 0
                    while not select.select([sys.stdin], [], [], 0.1)[0]:
                        f.write('line %d\\n' % i); f.flush(); i += 1
                    f.write('end\\n')
                """,
                dir + "/tree/log.txt",
            ]
            let stop = Pipe()
            writer.standardInput = stop
            try writer.run()
            defer { if writer.isRunning { writer.terminate() } }
            func status() -> String? { (try? CLIScanTests.rows(dir))?["log.txt@1"]?.status }
            // Three scans while it writes: the row is seen, and never handed on.
            for _ in 0..<3 {
                #expect(try runDES(["scan", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
                #expect(status() == "observed", "handed on while still growing: \(String(describing: status()))")
            }
            stop.fileHandleForWriting.write(Data("stop\n".utf8))
            writer.waitUntilExit()
            // Left alone, it is ready once min_age has passed.
            for _ in 0..<40 where status() != "new" {
                #expect(try runDES(["scan", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
                if status() != "new" { usleep(500_000) }
            }
            #expect(status() == "new")
            try CLIScanTests.drain(dir)
            let whole = try String(contentsOfFile: dir + "/tree/log.txt", encoding: .utf8)
            #expect(whole.hasSuffix("end\n"))
            let r = try runDES(["get", "-c", "des.yaml", "--path", "log.txt"], in: dir)
            #expect(r.status == 0 && r.out == whole, "packed whole: \(r.out.count) of \(whole.count) bytes")
        }
    }

    @Test("Files renamed over while the packer reads them: every packed version is one whole file, never a mix")
    func renamedMidRead() throws {
        try withTempDir { dir in
            try CLIScanPathTests.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            // Eight files of 4 MiB, each one byte repeated; a renamer then replaces each, again and
            // again, with a whole file of the next byte (written beside it, renamed over it).
            let make = """
                import os, sys
                root, gen = sys.argv[1], int(sys.argv[2])
                for i in range(8):
                    tmp = os.path.join(root, ".f%d.tmp" % i)
                    with open(tmp, "wb") as f: f.write(bytes([65 + (gen + i) % 26]) * (4 << 20))
                    os.rename(tmp, os.path.join(root, "f%d.bin" % i))
                """
            try FileManager.default.createDirectory(atPath: dir + "/tree", withIntermediateDirectories: true)
            try Self.python(make, [dir + "/tree", "0"])
            _ = try Self.scan(dir)
            #expect(try runDES(["marker", "run", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            let renamer = Process()
            renamer.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            renamer.arguments = ["-c", "import subprocess,sys\nfor g in range(1, 30): subprocess.run([sys.executable, '-c', sys.argv[1], sys.argv[2], str(g)], check=True)", make, dir + "/tree"]
            try renamer.run()
            let packer = try runDES(["packer", "run", "-c", "des.yaml", "--until-idle"], in: dir)
            #expect(packer.status == 0, "\(packer.stderr)")
            renamer.waitUntilExit()
            // Whatever each read met, a packed file is whole; then the tree settles and is packed as it is.
            for _ in 0..<3 {
                _ = try Self.scan(dir)
                try CLIScanTests.drain(dir)
            }
            for i in 0..<8 {
                let versions = try runDES(["ls-versions", "-c", "des.yaml", "--path", "f\(i).bin", "--json"], in: dir)
                let list = try #require(try JSONSerialization.jsonObject(with: Data(versions.out.utf8)) as? [[String: Any]], "\(versions.stderr)")
                for v in list where v["held"] as? Bool == true {
                    let n = try #require(v["version"] as? Int)
                    let r = try runDES(["get", "-c", "des.yaml", "--path", "f\(i).bin", "--version", "\(n)"], in: dir)
                    #expect(r.status == 0 && r.stdout.count == 4 << 20 && Set(r.stdout).count == 1, "f\(i).bin v\(n): \(r.stdout.count) bytes, \(Set(r.stdout).count) distinct")
                }
                let latest = try runDES(["get", "-c", "des.yaml", "--path", "f\(i).bin"], in: dir)
                let onDisk = try Data(contentsOf: URL(fileURLWithPath: dir + "/tree/f\(i).bin"))
                #expect(latest.status == 0 && Data(latest.stdout) == onDisk, "f\(i).bin: the newest version is the file as it settled")
            }
            let check = try runDES(["check", "-c", "des.yaml"], in: dir)
            #expect(check.status == 0, "\(check.out) \(check.stderr)")
        }
    }

    @Test("A file the packer cannot read goes to dead letters with the reason; the others are packed")
    func unreadableToDeadLetters() throws {
        try withTempDir { dir in
            try CLIScanPathTests.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try CLIScanPathTests.write(dir, ["open.txt": "readable", "locked.txt": "secret", "closed/inside.txt": "behind a shut door"])
            #expect(chmod(dir + "/tree/locked.txt", 0) == 0)
            // The packer runs as nobody (root reads any file): the locked file is refused by the
            // kernel. What it writes is nobody's; the tree is, before the scan (a chown changes ctime).
            let chownAll = "import os,sys\nos.lchown(sys.argv[1], 65534, 65534)\nfor r,ds,fs in os.walk(sys.argv[1]):\n  for n in ds+fs: os.lchown(os.path.join(r,n), 65534, 65534)"
            try Self.python(chownAll, [dir + "/tree"])
            // A directory nobody may not search: its file is unreadable, not missing.
            #expect(chown(dir + "/tree/closed", 0, 0) == 0 && chmod(dir + "/tree/closed", 0o700) == 0)
            _ = try Self.scan(dir)
            #expect(try runDES(["marker", "run", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            #expect(chown(dir, 65_534, 65_534) == 0)
            try Self.python(chownAll, [dir + "/des-data"])
            let packer = try runDES(["packer", "run", "-c", "des.yaml", "--until-idle"], in: dir, asUser: 65_534)
            #expect(packer.status == 0, "\(packer.stderr)")
            let rows = try CLIScanTests.rows(dir)
            #expect(rows["open.txt@1"]?.status == "packed" && rows["locked.txt@1"]?.status == "failed", "\(rows)")
            let letters = try runDES(["dlq", "list", "-c", "des.yaml", "--json"], in: dir)
            #expect(letters.status == 0 && letters.out.contains("locked.txt") && letters.out.contains("Permission denied"), "\(letters.out) \(letters.stderr)")
            #expect(rows["closed/inside.txt@1"]?.status == "failed" && letters.out.contains("inside.txt") && !letters.out.contains("no such file"), "\(letters.out)")
            // Made readable (a chmod moves ctime): the next scan takes the row back and closes its letter.
            #expect(chmod(dir + "/tree/locked.txt", 0o644) == 0)
            let again = try Self.scan(dir)
            #expect(again["updated"] as? Int == 1, "\(again)")
            let open = try runDES(["dlq", "list", "-c", "des.yaml", "--json"], in: dir)
            #expect(open.status == 0 && !open.out.contains("locked.txt"), "\(open.out)")
            let closed = try runDES(["dlq", "list", "-c", "des.yaml", "--json", "--all"], in: dir)
            #expect(closed.status == 0 && closed.out.contains("locked.txt"), "the letter is closed, not deleted: \(closed.out) \(closed.stderr)")
            _ = try Self.scan(dir)
            #expect(try runDES(["marker", "run", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            try Self.python(chownAll, [dir + "/des-data"])  // (what root's scans and marker wrote since)
            #expect(try runDES(["packer", "run", "-c", "des.yaml", "--until-idle"], in: dir, asUser: 65_534).status == 0)
            #expect(try CLIScanTests.rows(dir)["locked.txt@1"]?.status == "packed")
        }
    }

    @Test("A failed row whose error quotes a path holding the words of a failure the scan answers stays failed, its letter open, while its file is unchanged")
    func wordsInPathsAreNotFacts() throws {
        try withTempDir { dir in
            try CLIScanPathTests.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            let paths = ["is not the file the scan accepted/x.txt", "differ from the sha256 expected/y.txt"]
            try CLIScanPathTests.write(dir, [paths[0]: "one", paths[1]: "two"])
            for path in paths { #expect(chmod(dir + "/tree/" + path, 0) == 0) }  // (root's scan reads them; nobody's packer cannot)
            let chownAll = "import os,sys\nos.lchown(sys.argv[1], 65534, 65534)\nfor r,ds,fs in os.walk(sys.argv[1]):\n  for n in ds+fs: os.lchown(os.path.join(r,n), 65534, 65534)"
            try Self.python(chownAll, [dir + "/tree"])
            _ = try Self.scan(dir)
            #expect(try runDES(["marker", "run", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            #expect(chown(dir, 65_534, 65_534) == 0)
            try Self.python(chownAll, [dir + "/des-data"])
            #expect(try runDES(["packer", "run", "-c", "des.yaml", "--until-idle"], in: dir, asUser: 65_534).status == 0)
            for _ in 0..<2 {
                let again = try Self.scan(dir)
                #expect(again["updated"] as? Int == 0 && again["ready"] as? Int == 0, "taken again for the words of its path: \(again)")
                let rows = try CLIScanTests.rows(dir)
                #expect(paths.allSatisfy { rows[$0 + "@1"]?.status == "failed" }, "\(rows)")
                let letters = try runDES(["dlq", "list", "-c", "des.yaml", "--json"], in: dir)
                #expect(letters.status == 0 && letters.out.contains("x.txt") && letters.out.contains("y.txt"), "\(letters.out)")
            }
        }
    }

    @Test("Directories created and deleted while scans walk the tree: every scan succeeds and the files that stay are all cataloged")
    func directoriesVanishMidScan() throws {
        try withTempDir { dir in
            try CLIScanPathTests.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            var stable: [String: String] = [:]
            for i in 0..<200 { stable["keep/k\(i / 20)/f\(i).txt"] = "kept \(i)" }
            try CLIScanPathTests.write(dir, stable)
            let churn = Process()
            churn.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            churn.arguments = [
                "-c",
                """
                import os, shutil, sys, time
                root = os.path.join(sys.argv[1], "churn")
                end = time.time() + 3
                n = 0
                while time.time() < end:
                    d = os.path.join(root, "c%d" % (n % 7), "deep", "er")
                    os.makedirs(d, exist_ok=True)
                    for i in range(30): open(os.path.join(d, "x%d.txt" % i), "w").write("x")
                    shutil.rmtree(os.path.join(root, "c%d" % ((n + 3) % 7)), ignore_errors=True)
                    n += 1
                """,
                dir + "/tree",
            ]
            try churn.run()
            while churn.isRunning {
                let r = try runDES(["scan", "-c", "des.yaml", "--until-idle", "--json"], in: dir)
                #expect(r.status == 0, "a scan failed while directories vanished: \(r.stderr)")
            }
            churn.waitUntilExit()
            try FileManager.default.removeItem(atPath: dir + "/tree/churn")
            _ = try Self.scan(dir)
            let rows = try CLIScanTests.rows(dir)
            for path in stable.keys { #expect(rows["\(path)@1"]?.status == "new", "\(path): \(String(describing: rows["\(path)@1"]))") }
            #expect(rows.filter { $0.key.hasPrefix("churn/") }.allSatisfy { $0.value.status == "gone" }, "files of deleted directories are gone")
        }
    }
}

/// Bytes that change without any timestamp moving.
@Suite("Filesystem sources: a write that moves no timestamp")
struct CLIScanMappedWriteTests {
    @Test("A file rewritten through a shared mapping after it was hashed is not packed as hashed, nor taken as another path's twin; hashed again, it is packed as it is")
    func mappedWrite() throws {
        try withTempDir { dir in
            try CLIScanPathTests.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try FileManager.default.createDirectory(atPath: dir + "/tree", withIntermediateDirectories: true)
            // A writer maps f1 shared and writes A; told to, it writes B over the same dirty page
            // (no new fault: neither mtime nor ctime moves).
            let writer = Process()
            writer.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            writer.arguments = [
                "-c",
                """
                import mmap, sys
                p = sys.argv[1]
                open(p, "wb").write(b"\\0" * 4096)
                f = open(p, "r+b"); m = mmap.mmap(f.fileno(), 4096)
                m[:] = b"A" * 4096
                print("ready", flush=True); sys.stdin.readline()
                m[:] = b"B" * 4096
                print("done", flush=True); sys.stdin.readline()
                """,
                dir + "/tree/f1",
            ]
            let input = Pipe(), output = Pipe()
            writer.standardInput = input
            writer.standardOutput = output
            try writer.run()
            defer { if writer.isRunning { writer.terminate() } }
            #expect(String(decoding: output.fileHandleForReading.availableDataLine(), as: UTF8.self) == "ready\n")
            _ = try CLIScanTreeTests.scan(dir)
            var before = stat()
            #expect(stat(dir + "/tree/f1", &before) == 0)
            input.fileHandleForWriting.write(Data("go\n".utf8))
            #expect(String(decoding: output.fileHandleForReading.availableDataLine(), as: UTF8.self) == "done\n")
            var after = stat()
            #expect(stat(dir + "/tree/f1", &after) == 0)
            try #require(
                before.st_mtim.tv_nsec == after.st_mtim.tv_nsec && before.st_ctim.tv_nsec == after.st_ctim.tv_nsec && before.st_size == after.st_size,
                "the mapped write moved a timestamp: this kernel does not reproduce the case")
            #expect(try runDES(["marker", "run", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            #expect(try runDES(["packer", "run", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            var rows = try CLIScanTests.rows(dir)
            #expect(rows["f1@1"]?.status == "failed", "not packed as the scan hashed it: \(rows)")
            let letters = try runDES(["dlq", "list", "-c", "des.yaml"], in: dir)
            #expect(letters.out.contains("differ from the sha256 expected"), "\(letters.out)")

            // Another file with the bytes the scan hashed: not a reference to f1 (which never held them).
            try Data(repeating: UInt8(ascii: "A"), count: 4096).write(to: URL(fileURLWithPath: dir + "/tree/f2"))
            _ = try CLIScanTreeTests.scan(dir)
            try CLIScanTests.drain(dir)
            rows = try CLIScanTests.rows(dir)
            #expect(rows["f1@1"]?.status == "packed" && rows["f2@1"]?.status == "packed" && rows["f1@1"]?.name != rows["f2@1"]?.name, "\(rows)")
            for (path, byte) in [("f1", "B"), ("f2", "A")] {
                let r = try runDES(["get", "-c", "des.yaml", "--path", path], in: dir)
                #expect(r.status == 0 && r.out == String(repeating: byte, count: 4096), "\(path): \(r.out.prefix(8)) \(r.stderr)")
            }
            #expect(try runDES(["check", "-c", "des.yaml"], in: dir).status == 0)
            input.fileHandleForWriting.closeFile()
            writer.waitUntilExit()
        }
    }

    @Test("A row whose stamp no longer describes its unchanged file is refused by the packer; the next scan takes the file again with a stamp made afresh")
    func corruptStamp() throws {
        try withTempDir { dir in
            try CLIScanPathTests.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try CLIScanTests.write(dir, ["f1": "one", "f2": "two"])
            _ = try CLIScanTreeTests.scan(dir)
            #expect(try runDES(["marker", "run", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            // f1's stamp says one byte more than the file has; the file and the row's other columns are as scanned.
            _ = try CLIScanTreeTests.python(
                """
                import sqlite3, sys
                c = sqlite3.connect(sys.argv[1])
                stamp = c.execute("select stamp from des_fs_files where path = 'f1'").fetchone()[0]
                head, sep, digest = stamp.partition("#")
                parts = head.split(":"); parts[2] = str(int(parts[2]) + 1)
                c.execute("update des_fs_files set stamp = ? where path = 'f1'", (":".join(parts) + sep + digest,)); c.commit()
                """, [dir + "/des-data/metadata.sqlite"])
            #expect(try runDES(["packer", "run", "-c", "des.yaml", "--until-idle"], in: dir).status == 0)
            var rows = try CLIScanTests.rows(dir)
            #expect(rows["f1@1"]?.status == "failed" && rows["f2@1"]?.status == "packed", "\(rows)")
            let letters = try runDES(["dlq", "list", "-c", "des.yaml"], in: dir)
            #expect(letters.out.contains("is not the file the scan accepted"), "\(letters.out)")
            // Taken again as it is (waiting once, then ready), and packed.
            let again = try CLIScanTreeTests.scan(dir)
            #expect(again["ready"] as? Int == 1 && again["inserted"] as? Int == 0, "\(again)")
            try CLIScanTests.drain(dir)
            rows = try CLIScanTests.rows(dir)
            #expect(rows["f1@1"]?.status == "packed", "\(rows)")
            let open = try runDES(["dlq", "list", "-c", "des.yaml"], in: dir)
            #expect(open.status == 0 && !open.out.contains("is not the file the scan accepted"), "the letter is closed: \(open.out)")
            let r = try runDES(["get", "-c", "des.yaml", "--path", "f1"], in: dir)
            #expect(r.status == 0 && r.out == "one", "\(r.out) \(r.stderr)")
            #expect(try runDES(["check", "-c", "des.yaml"], in: dir).status == 0)
        }
    }

    @Test("A one-shot scan of a directory that never stops receiving files ends; the files made while it ran are the next run's")
    func endsWhileFilesArrive() throws {
        try withTempDir { dir in
            try CLIScanPathTests.config().write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try CLIScanTests.write(dir, ["a": "alpha", "b": "bravo"])
            // A writer makes a new file every 20 ms while the scan runs; `timeout` ends a scan
            // that would not end by itself (exit 124). The writer is ended with SIGKILL: the test
            // process's children inherit SIGTERM ignored.
            let scan = Process()
            scan.executableURL = URL(fileURLWithPath: "/bin/bash")
            scan.arguments = [
                "-c",
                "(i=0; while :; do echo $i > tree/n$i; i=$((i+1)); sleep 0.02; done) & w=$!; "
                    + "timeout 120 \"$0\" scan -c des.yaml --until-idle --json > scan.json 2> scan.err; rc=$?; kill -9 $w; wait $w; exit $rc",
                try desBinary(),
            ]
            scan.currentDirectoryURL = URL(fileURLWithPath: dir)
            scan.standardInput = FileHandle.nullDevice
            try scan.run()
            scan.waitUntilExit()
            #expect(scan.terminationStatus == 0, "the scan did not end by itself (exit \(scan.terminationStatus))")
            let text = try Data(contentsOf: URL(fileURLWithPath: dir + "/scan.json"))
            let first = try #require(try JSONSerialization.jsonObject(with: text) as? [String: Any])
            #expect((first["ready"] as? Int ?? 0) >= 2, "the files there before it ran are ready: \(first)")
            // The next runs take what was made meanwhile: every file ready, none gone.
            _ = try CLIScanTreeTests.scan(dir)
            let rows = try CLIScanTests.rows(dir)
            let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/tree")
            #expect(rows.count == files.count && rows.values.allSatisfy { $0.status == "new" }, "\(rows.count) rows, \(files.count) files")
        }
    }
}
