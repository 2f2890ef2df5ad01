import DESPluginFilesystem
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Filesystem source: globs")
struct PathGlobTests {
    @Test("Names at any depth, anchored paths, **, sets and escapes")
    func globs() throws {
        let cases: [(String, String, Bool)] = [
            ("*.tmp", "a.tmp", true), ("*.tmp", "d/e/a.tmp", true), ("*.tmp", "a.tmp.pdf", false),
            (".*", ".hidden", true), (".*", "d/.git", true), (".*", "d/x.y", false),
            ("*.part", "x.part", true), ("inbox/*.eml", "inbox/1.eml", true), ("inbox/*.eml", "inbox/sub/1.eml", false),
            ("inbox/*.eml", "other/inbox/1.eml", false), ("/top.txt", "top.txt", true), ("/top.txt", "d/top.txt", false),
            ("a/**/b", "a/b", true), ("a/**/b", "a/x/y/b", true), ("a/**/b", "a/x/y/c", false), ("**/*.pdf", "x.pdf", true),
            ("**/*.pdf", "p/q/x.pdf", true), ("scan-??.tif", "scan-07.tif", true), ("scan-??.tif", "scan-7.tif", false),
            ("[abc]*.log", "b1.log", true), ("[abc]*.log", "d1.log", false), ("[!abc]*.log", "d1.log", true),
            ("[a-c]x", "bx", true), ("[a-c]x", "dx", false), ("\\*.txt", "*.txt", true), ("\\*.txt", "a.txt", false),
            ("*", "a/b", true), ("d/*", "d/a/b", false), ("ünï*.txt", "ünïcode.txt", true),
        ]
        for (pattern, path, expected) in cases {
            #expect(try PathGlob(pattern).matches(path) == expected, "\(pattern) ~ \(path)")
        }
        #expect(throws: PathGlobError.self) { try PathGlob("[abc") }
        #expect(throws: PathGlobError.self) { try PathGlob("") }
    }
}

@Suite("Filesystem source: the walk")
struct FilesystemWalkerTests {
    /// A tree with what a share holds: files at depth, temporaries, hidden names, links in and
    /// out of the root, a FIFO, a link loop.
    static func tree() throws -> String {
        let root = NSTemporaryDirectory() + "des-walk-\(UUID().uuidString)"
        let fm = FileManager.default
        for dir in ["sub/deep", ".git", "sub/.cache"] { try fm.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true) }
        for file in ["a.txt", "sub/b.pdf", "sub/deep/c.pdf", "x.tmp", "y.part", ".hidden", ".git/config", "sub/.cache/d.pdf", "notes.md"] {
            try Data(file.utf8).write(to: URL(fileURLWithPath: root + "/" + file))
        }
        try fm.createSymbolicLink(atPath: root + "/sub/link.txt", withDestinationPath: "../a.txt")
        try fm.createSymbolicLink(atPath: root + "/out.txt", withDestinationPath: "/etc/hostname")
        try fm.createSymbolicLink(atPath: root + "/sub/deep/up", withDestinationPath: "..")
        #expect(mkfifo(root + "/pipe.txt", 0o600) == 0)
        return root
    }

    @Test("A yielding walk's threads run the given nice steps below the walking thread, which keeps its own")
    func yielding() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let rules = FilesystemWalker.Rules(include: [], exclude: [], followSymlinks: false, oneFileSystem: true)
        errno = 0
        let mine = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        try #require(errno == 0)
        for (steps, expected) in [(Int32(0), mine), (5, min(19, mine + 5))] {
            let seen = Mutex<Set<Int32>>([])
            _ = try FilesystemWalker(rules: rules, threads: 3, yielding: steps).walkByDirectory(root: root, index: 0) { _ in
                let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)  // (Linux: this thread's)
                seen.withLock { _ = $0.insert(nice) }
            }
            #expect(seen.withLock { $0 } == [expected], "yielding \(steps)")
            #expect(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) == mine)
        }
    }

    static func walk(_ root: String, _ rules: FilesystemWalker.Rules, threads: Int = 3) throws -> (Set<String>, WalkTotals) {
        let seen = Mutex<[String]>([])
        let totals = try FilesystemWalker(rules: rules, threads: threads).walk(root: root, index: 0) { file in
            seen.withLock { $0.append(file.path) }
        }
        let paths = seen.withLock { $0 }
        #expect(paths.count == Set(paths).count, "each file once: \(paths)")
        return (Set(paths), totals)
    }

    static let defaults = try! ["*.tmp", "*.part", ".*"].map(PathGlob.init)

    @Test("Includes and the default excludes pick the files; links, FIFOs and hidden directories are left alone")
    func picks() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let rules = FilesystemWalker.Rules(
            include: try ["*.pdf", "*.txt"].map(PathGlob.init), exclude: Self.defaults, followSymlinks: false, oneFileSystem: true)
        let (paths, totals) = try Self.walk(root, rules)
        #expect(paths == ["a.txt", "sub/b.pdf", "sub/deep/c.pdf"])
        #expect(totals.links == 3 && totals.special == 1, "\(totals)")
        #expect(totals.excluded == 6, "x.tmp, y.part, .hidden, .git, sub/.cache, notes.md: \(totals)")
        #expect(totals.directories == 3 && totals.unreadable.isEmpty, "\(totals)")
    }

    @Test("Followed links stay beneath the root; a link to a directory is not walked, so every file keeps its own path, walk after walk")
    func followsInside() throws {
        let root = try Self.tree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Aliases of directories the walk reaches anyway, one of them into a hidden (excluded) one.
        try FileManager.default.createSymbolicLink(atPath: root + "/alias", withDestinationPath: "sub")
        try FileManager.default.createSymbolicLink(atPath: root + "/sub/deep/z-alias", withDestinationPath: "../../sub")
        try FileManager.default.createSymbolicLink(atPath: root + "/cache", withDestinationPath: "sub/.cache")
        let rules = FilesystemWalker.Rules(include: [], exclude: Self.defaults, followSymlinks: true, oneFileSystem: true)
        for _ in 0..<10 {
            let (paths, totals) = try Self.walk(root, rules)
            #expect(paths == ["a.txt", "notes.md", "sub/b.pdf", "sub/deep/c.pdf", "sub/link.txt"], "\(paths)")
            #expect(!paths.contains("out.txt"), "a link out of the root is never followed")
            #expect(totals.links >= 5, "out.txt, the loop back to sub, and the three directory links: \(totals)")
        }
    }

    @Test("Thousands of files in many directories, on several threads: each found once with its size, times and inode")
    func parallel() throws {
        let root = NSTemporaryDirectory() + "des-walk-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for d in 0..<40 {
            let dir = root + "/d\(d % 8)/e\(d)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for f in 0..<50 { try Data(repeating: UInt8(f), count: f).write(to: URL(fileURLWithPath: dir + "/f\(f).bin")) }
        }
        let found = Mutex<[ScannedFile]>([])
        let totals = try FilesystemWalker(rules: .init(include: [], exclude: [], followSymlinks: false, oneFileSystem: false), threads: 4)
            .walk(root: root, index: 2) { file in found.withLock { $0.append(file) } }
        let files = found.withLock { $0 }
        #expect(files.count == 2_000 && Set(files.map(\.path)).count == 2_000)
        #expect(totals.accepted == 2_000 && totals.directories == 49, "\(totals)")
        let sample = try #require(files.first { $0.path == "d3/e11/f7.bin" })
        var st = stat()
        #expect(stat(root + "/d3/e11/f7.bin", &st) == 0)
        #expect(sample.size == 7 && sample.root == 2 && sample.inode == UInt64(st.st_ino))
        #expect(sample.mtimeNanos == Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    @Test("A name that is not UTF-8 is left out and named, not taken for a special file")
    func invalidNames() throws {
        let root = NSTemporaryDirectory() + "des-walk-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Data("ok".utf8).write(to: URL(fileURLWithPath: root + "/good.txt"))
        let raw = Array(root.utf8) + Array("/bad".utf8) + [0xFF] + Array("name".utf8) + [0]
        let fd = raw.withUnsafeBufferPointer { open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_CREAT | O_WRONLY, 0o600) }
        try #require(fd >= 0)
        close(fd)
        let (paths, totals) = try Self.walk(root, .init(include: [], exclude: [], followSymlinks: false, oneFileSystem: true))
        #expect(paths == ["good.txt"] && totals.invalidNames == 1 && totals.special == 0, "\(totals)")
        #expect(totals.skippedNames.count == 1 && totals.skippedNames[0].hasPrefix("bad") && totals.skippedNames[0].hasSuffix("name"))
    }

    @Test("A root that does not exist is an error naming it")
    func missingRoot() throws {
        let error = #expect(throws: WalkError.self) {
            try FilesystemWalker(rules: .init(include: [], exclude: [], followSymlinks: false, oneFileSystem: true)).walk(
                root: "/nonexistent/des-root", index: 0
            ) { _ in }
        }
        #expect(error?.description.contains("scan root '/nonexistent/des-root' cannot be opened") == true)
    }
}
