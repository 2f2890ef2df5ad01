import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// kill -9 the scanner, the marker and the packer of a filesystem source, again and again, while
/// its tree changes.
@Suite("Filesystem source under kill -9")
struct CLIScanCrashTests {
    static let config = """
        sources:
          - name: share
            connection: {type: filesystem, roots: [tree], min_age: 0, rescan_seconds: 1}
        storage: {type: local, root: des-data/archive}
        packer: {work_dir: des-data/work, pod_name: crashy, batch_size: 20, max_container_files: 40, checkpoint_every_files: 10, lease_ttl_seconds: 30, heartbeat_seconds: 1}
        """

    static func start(_ args: [String], in dir: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try desBinary())
        p.arguments = args + ["-c", dir + "/des.yaml", "--until-idle", "--log-level", "critical"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    @Test("Scanner and packer (and the marker) killed at random 10+ times each while files change: every file packed once as it settled, every version readable by path")
    func killNine() throws {
        try withTempDir { dir in
            try Self.config.write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            var files: [String: String] = [:]
            for i in 0..<400 { files["d\(i % 13)/f\(i).txt"] = "file \(i) generation 0" }
            try CLIScanPathTests.write(dir, files)
            var rng = SystemRandomNumberGenerator()
            var kills = ["scan": 0, "marker": 0, "packer": 0]
            var round = 0
            // At least 10 kills of the scanner and of the packer (the marker, quick, is killed when it is caught).
            while ((kills["scan"] ?? 0) < 10 || (kills["packer"] ?? 0) < 10 || round < 30) && round < 200 {
                round += 1
                let running = [("scan", try Self.start(["scan"], in: dir)), ("marker", try Self.start(["marker", "run"], in: dir)),
                    ("packer", try Self.start(["packer", "run"], in: dir))]
                usleep(UInt32.random(in: 50_000...400_000, using: &rng))
                for (what, p) in running {
                    if p.isRunning {
                        kill(p.processIdentifier, SIGKILL)
                        kills[what, default: 0] += 1
                    }
                    p.waitUntilExit()
                }
                // The tree changes between rounds: rewrites, new files, removals.
                var changes: [String: String] = [:]
                for _ in 0..<5 {
                    let i = Int.random(in: 0..<400, using: &rng)
                    changes["d\(i % 13)/f\(i).txt"] = "file \(i) generation \(round)"
                }
                changes["new/r\(round).txt"] = "new in round \(round)"
                try CLIScanPathTests.write(dir, changes)
                files.merge(changes) { $1 }
                if round % 4 == 0, let gone = files.keys.filter({ $0.hasPrefix("d") }).sorted().first {
                    try FileManager.default.removeItem(atPath: dir + "/tree/" + gone)
                    files[gone] = nil
                }
            }
            #expect((kills["scan"] ?? 0) >= 10 && (kills["packer"] ?? 0) >= 10, "\(kills) in \(round) rounds")
            // Settled: scan, name and pack until there is nothing left.
            for _ in 0..<2 {
                for args in [["scan"], ["marker", "run"], ["packer", "run"]] {
                    let p = try Self.start(args, in: dir)
                    p.waitUntilExit()
                    #expect(p.terminationStatus == 0, "\(args)")
                }
            }
            let check = try runDES(["check", "-c", "des.yaml"], in: dir)
            #expect(check.status == 0, "each packed row read back by name, once, equal to its file: \(check.out) \(check.stderr)")

            // Every file's newest version is packed and is the file as it settled; versions are 1...n.
            let rows = try CLIScanTests.rows(dir)
            var newest: [String: Int] = [:]
            for key in rows.keys {
                let parts = key.split(separator: "@")
                newest[String(parts[0]), default: 0] = max(newest[String(parts[0]), default: 0], Int(parts[1]) ?? 0)
            }
            for path in files.keys {
                let n = try #require(newest[path], "\(path) never cataloged")
                let row = try #require(rows["\(path)@\(n)"])
                #expect(row.status == "packed" && row.name != nil, "\(path) v\(n): \(row.status)")
                #expect((1...n).allSatisfy { rows["\(path)@\($0)"] != nil }, "\(path): versions 1...\(n)")
            }
            for (path, n) in newest where files[path] == nil {
                #expect(["superseded", "gone"].contains(rows["\(path)@\(n)"]?.status ?? ""), "\(path), removed: \(String(describing: rows["\(path)@\(n)"]))")
            }
            // Read back by path: a sample of files, each version DES holds.
            for path in files.keys.sorted().prefix(12) {
                let r = try runDES(["get", "-c", "des.yaml", "--path", path], in: dir)
                #expect(r.status == 0 && r.out == files[path], "\(path): \(r.out) \(r.stderr)")
                for v in 1...(newest[path] ?? 1) where ["packed", "superseded"].contains(rows["\(path)@\(v)"]?.status ?? "") {
                    let old = try runDES(["get", "-c", "des.yaml", "--path", path, "--version", "\(v)"], in: dir)
                    #expect(old.status == 0 && old.out.hasPrefix(path.hasPrefix("new/") ? "new in round" : "file "), "\(path) v\(v): \(old.stderr)")
                }
            }
            print("filesystem crash test: kills \(kills) in \(round) rounds, \(rows.count) rows")
        }
    }
}

/// Several `des scan` processes splitting a source's roots under leases.
@Suite("des scan: roots split between processes under leases")
struct CLIScanLeaseTests {
    /// Starts `des scan` as a service under `pod`, its log (info) going to `log`.
    static func start(pod: String, dir: String, log: String, config: String = "des.yaml") throws -> Process {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try desBinary())
        p.arguments = ["scan", "-c", dir + "/" + config, "--pod-name", pod, "--log-level", "info"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try p.run()
        return p
    }

    /// The roots named in the last "scanned" line of a log, or nil before the first.
    static func lastParts(_ log: String) -> [String]? {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard let line = text.split(separator: "\n").last(where: { $0.contains("scanned") && $0.contains("parts=") }),
            let open = line.range(of: "parts=[")
        else { return nil }
        let rest = line[open.upperBound...]
        guard let close = rest.firstIndex(of: "]") else { return nil }
        return rest[..<close].split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")) }.filter { !$0.isEmpty }
    }

    /// Waits (at most 20 s) until `condition` holds.
    static func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            usleep(100_000)
        }
        return condition()
    }

    @Test("A second scanner takes half of four roots, the two never share one, and when it stops the first takes all four back")
    func split() throws {
        try withTempDir { dir in
            try """
                sources:
                  - name: share
                    connection: {type: filesystem, roots: [r0, r1, r2, r3], min_age: 0, rescan_seconds: 1}
                storage: {type: local, root: des-data/archive}
                packer: {work_dir: des-data/work}
                """.write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            for r in 0..<4 { try CLIScanPathTests.write(dir, ["f\(r).txt": "root \(r)"], root: "r\(r)") }
            let a = try Self.start(pod: "a", dir: dir, log: dir + "/a.log")
            defer { if a.isRunning { kill(a.processIdentifier, SIGKILL) } }
            #expect(Self.eventually { Self.lastParts(dir + "/a.log")?.count == 4 }, "alone, a scans every root: \(String(describing: Self.lastParts(dir + "/a.log")))")
            let b = try Self.start(pod: "b", dir: dir, log: dir + "/b.log")
            defer { if b.isRunning { kill(b.processIdentifier, SIGKILL) } }
            var split: ([String], [String]) = ([], [])
            let balanced = Self.eventually {
                guard let pa = Self.lastParts(dir + "/a.log"), let pb = Self.lastParts(dir + "/b.log") else { return false }
                split = (pa, pb)
                return pa.count == 2 && pb.count == 2
            }
            #expect(balanced, "two scanners, two roots each: \(split)")
            #expect(Set(split.0).isDisjoint(with: split.1) && Set(split.0 + split.1).count == 4, "\(split)")
            b.terminate()
            b.waitUntilExit()
            #expect(b.terminationStatus == 0)
            #expect(Self.eventually { Self.lastParts(dir + "/a.log")?.count == 4 }, "b gave its roots back: \(String(describing: Self.lastParts(dir + "/a.log")))")
            a.terminate()
            a.waitUntilExit()
            let rows = try CLIScanTests.rows(dir)
            #expect((0..<4).allSatisfy { rows["f\($0).txt@1"]?.status == "new" }, "every root's file cataloged once: \(rows)")
        }
    }
}

extension CLIScanLeaseTests {
    @Test("Two processes scanning different sources over one metadata store each keep all of their own roots")
    func otherSources() throws {
        try withTempDir { dir in
            for (config, source) in [("h1.yaml", "h1"), ("h2.yaml", "h2")] {
                let roots = (0..<3).map { "\(source)r\($0)" }
                try """
                    sources:
                      - name: \(source)
                        connection: {type: filesystem, roots: [\(roots.joined(separator: ", "))], min_age: 0, rescan_seconds: 1}
                    storage: {type: local, root: des-data/archive}
                    packer: {work_dir: des-data/work}
                    """.write(toFile: dir + "/" + config, atomically: true, encoding: .utf8)
                for r in roots { try CLIScanPathTests.write(dir, ["\(r).txt": r], root: r) }
            }
            var processes: [Process] = []
            defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
            for (config, pod) in [("h1.yaml", "one"), ("h2.yaml", "two")] {
                let p = try Self.start(pod: pod, dir: dir, log: dir + "/\(pod).log", config: config)
                processes.append(p)
            }
            // Each counts only the processes of its own source: three roots each, none left unscanned.
            var seen: ([String]?, [String]?) = (nil, nil)
            let both = Self.eventually {
                seen = (Self.lastParts(dir + "/one.log"), Self.lastParts(dir + "/two.log"))
                return seen.0?.count == 3 && seen.1?.count == 3
            }
            #expect(both, "\(seen)")
            for p in processes {
                p.terminate()
                p.waitUntilExit()
            }
        }
    }
}

/// A scanning service told of changes by inotify.
@Suite("des scan as a service: inotify hints")
struct CLIScanHintTests {
    @Test("With rescan_seconds an hour, a file written into a watched directory, and a new directory, are cataloged and ready within seconds")
    func hinted() throws {
        try withTempDir { dir in
            try """
                sources:
                  - name: share
                    connection: {type: filesystem, roots: [tree], min_age: 0, rescan_seconds: 3600}
                storage: {type: local, root: des-data/archive}
                packer: {work_dir: des-data/work}
                """.write(toFile: dir + "/des.yaml", atomically: true, encoding: .utf8)
            try CLIScanPathTests.write(dir, ["sub/first.txt": "first"])
            let scanner = try CLIScanLeaseTests.start(pod: "solo", dir: dir, log: dir + "/scan.log")
            defer { if scanner.isRunning { kill(scanner.processIdentifier, SIGKILL) } }
            // (Before the scanner made the catalog there is no table yet: nil, not a failure.)
            func status(_ path: String) -> String? {
                let out = try? CLIScanTreeTests.python(
                    "import sqlite3,sys\ntry:\n  r = sqlite3.connect(sys.argv[1]).execute('select status from des_fs_files where path = ? and version = 1', (sys.argv[2],)).fetchone()\n  print(r[0] if r else '')\nexcept Exception: print('')",
                    [dir + "/des-data/metadata.sqlite", path])
                let text = out?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                return text.isEmpty ? nil : text
            }
            // Seen, then ready after min_age (here 0, looked at again within a second): not after an hour.
            #expect(CLIScanLeaseTests.eventually { status("sub/first.txt") == "new" }, "\(String(describing: status("sub/first.txt")))")
            try CLIScanPathTests.write(dir, ["sub/second.txt": "second", "fresh/third.txt": "third"])
            #expect(CLIScanLeaseTests.eventually { status("sub/second.txt") == "new" && status("fresh/third.txt") == "new" },
                "\(String(describing: status("sub/second.txt"))) \(String(describing: status("fresh/third.txt")))")
            scanner.terminate()
            scanner.waitUntilExit()
            #expect(scanner.terminationStatus == 0)
        }
    }
}
