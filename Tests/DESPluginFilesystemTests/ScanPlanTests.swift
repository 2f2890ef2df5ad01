import DESFormat
import DESPluginFilesystem
import Testing

@Suite("Filesystem source: what a scan changes")
struct ScanPlanTests {
    static let now: Int64 = 1_000_000 * 1_000_000_000
    static func file(_ path: String, size: UInt64 = 10, age: Double = 100, inode: UInt64 = 1) -> ScannedFile {
        let t = now - Int64(age * 1e9)
        return ScannedFile(root: 0, path: path, size: size, mtimeNanos: t, ctimeNanos: t, device: 1, inode: inode)
    }
    static func row(_ id: Int64, _ f: ScannedFile, _ status: String, named: Bool = false, version: Int = 1) -> ScanPlan.Row {
        ScanPlan.Row(
            id: id, path: f.path, version: version, size: f.size, mtimeNanos: f.mtimeNanos, ctimeNanos: f.ctimeNanos, device: f.device,
            inode: f.inode, status: status, named: named)
    }

    @Test("First seen: inserted and waiting; seen again unchanged and old enough: ready (named rows straight to pending)")
    func stability() {
        let a = Self.file("a"), young = Self.file("young", age: 5)
        let first = ScanPlan.make(rows: [:], found: [a, young], now: Self.now, minAgeSeconds: 30, complete: true)
        #expect(first.inserts.map(\.file.path) == ["a", "young"] && first.inserts.allSatisfy { $0.version == 1 })
        #expect(first.waiting == 2 && first.ready.isEmpty)
        let rows: [ScanPath: ScanPlan.Row] = ["a": Self.row(1, a, "observed"), "young": Self.row(2, young, "observed", named: true)]
        let second = ScanPlan.make(rows: rows, found: [a, young], now: Self.now, minAgeSeconds: 30, complete: true)
        #expect(second.ready.map(\.id) == [1] && second.waiting == 1 && second.inserts.isEmpty && second.updates.isEmpty)
        let later = ScanPlan.make(rows: rows, found: [a, young], now: Self.now + 30_000_000_000, minAgeSeconds: 30, complete: true)
        #expect(later.ready.map(\.id) == [1, 2] && later.ready.map(\.named) == [false, true])
    }

    @Test("A change: rows not packed are updated and wait again; packed ones get a new version and are superseded; claimed ones are left to the packer")
    func changes() {
        let (a, b, c, d) = (Self.file("a"), Self.file("b"), Self.file("c"), Self.file("d"))
        let rows: [ScanPath: ScanPlan.Row] = [
            "a": Self.row(1, a, "pending", named: true), "b": Self.row(2, b, "packed", version: 3), "c": Self.row(3, c, "claimed"),
            "d": Self.row(4, d, "observed"),
        ]
        let changed = [Self.file("a", size: 11), Self.file("b", inode: 9), Self.file("c", size: 99), Self.file("d", size: 12)]
        let plan = ScanPlan.make(rows: rows, found: changed, now: Self.now, minAgeSeconds: 30, complete: true)
        #expect(plan.updates.map(\.id) == [1, 4])
        #expect(plan.changing == 1, "only d was already waiting: a file still being written")
        #expect(plan.inserts.map(\.file.path) == ["b"] && plan.inserts.map(\.version) == [4])
        #expect(plan.superseded == [2] && plan.gone.isEmpty && plan.ready.isEmpty)
    }

    @Test("A failed row whose file changed waits again in its row; a future mtime is set aside for the ctime")
    func failedAndFuture() {
        let a = Self.file("a")
        let plan = ScanPlan.make(rows: ["a": Self.row(1, a, "failed")], found: [Self.file("a", size: 20)], now: Self.now, minAgeSeconds: 0, complete: true)
        #expect(plan.updates.map(\.id) == [1] && plan.inserts.isEmpty && plan.superseded.isEmpty)
        let unchanged = ScanPlan.make(rows: ["a": Self.row(1, a, "failed")], found: [a], now: Self.now, minAgeSeconds: 0, complete: true)
        #expect(unchanged.updates.isEmpty && unchanged.inserts.isEmpty, "a failed row left as it is is not retried by the scan")
        var future = Self.file("f")
        future.mtimeNanos = Self.now + 86_400_000_000_000 * 365
        let ready = ScanPlan.make(rows: ["f": Self.row(2, future, "observed")], found: [future], now: Self.now, minAgeSeconds: 30, complete: true)
        #expect(ready.ready.map(\.id) == [2], "its ctime is 100 s old: ready, though its mtime is a year ahead")
    }

    @Test("Vanished: rows not packed (failed ones too) are gone, packed ones superseded, claimed and deleted ones left; nothing when the walk was incomplete")
    func vanished() {
        let files = ["a", "b", "c", "d", "e", "f", "g"].map { Self.file($0) }
        let rows: [ScanPath: ScanPlan.Row] = [
            "a": Self.row(1, files[0], "observed"), "b": Self.row(2, files[1], "new"), "c": Self.row(3, files[2], "pending", named: true),
            "d": Self.row(4, files[3], "packed"), "e": Self.row(5, files[4], "claimed"), "f": Self.row(6, files[5], "failed", named: true),
            "g": Self.row(7, files[6], "deleted", named: true),
        ]
        let plan = ScanPlan.make(rows: rows, found: [], now: Self.now, minAgeSeconds: 0, complete: true)
        #expect(plan.gone == [1, 2, 3, 6] && plan.superseded == [4], "a failed row's file was never packed: gone; a deleted one stays deleted")
        let partial = ScanPlan.make(rows: rows, found: [], now: Self.now, minAgeSeconds: 0, complete: false)
        #expect(partial.gone.isEmpty && partial.superseded.isEmpty)
        // A file back after it was gone waits again, in its old row.
        let back = ScanPlan.make(rows: ["a": Self.row(1, files[0], "gone")], found: [files[0]], now: Self.now, minAgeSeconds: 0, complete: true)
        #expect(back.updates.map(\.id) == [1] && back.ready.isEmpty && back.inserts.isEmpty)
    }

    @Test("Some files found, some vanished: only the vanished rows are gone or superseded; every row found leaves nothing to do")
    func someVanished() {
        let files = (0..<6).map { Self.file("p\($0)") }
        let rows = Dictionary(uniqueKeysWithValues: files.enumerated().map { i, f in (ScanPath(f.path), Self.row(Int64(i + 1), f, i % 2 == 0 ? "packed" : "pending", named: true)) })
        let found = [files[4], files[1], files[0], files[3]]  // p2 and p5 vanished
        let plan = ScanPlan.make(rows: rows, found: found, now: Self.now, minAgeSeconds: 0, complete: true)
        #expect(plan.superseded == [3] && plan.gone == [6] && plan.inserts.isEmpty && plan.updates.isEmpty && plan.ready.isEmpty)
        let all = ScanPlan.make(rows: rows, found: files.reversed(), now: Self.now, minAgeSeconds: 0, complete: true)
        #expect(all.superseded.isEmpty && all.gone.isEmpty && all.waiting == 0)
    }

    @Test("order(by:) puts what is written in order, whatever order the walk found it in")
    func ordering() {
        let a = Self.file("a"), b = Self.file("b"), c = Self.file("c", size: 20), d = Self.file("d")
        let rows: [ScanPath: ScanPlan.Row] = ["c": Self.row(3, Self.file("c"), "observed"), "d": Self.row(4, d, "observed")]
        var plan = ScanPlan.make(rows: rows, found: [d, b, c, a], now: Self.now, minAgeSeconds: 0, complete: true)
        #expect(plan.inserts.map(\.file.path) == ["b", "a"], "make keeps the walk's order")
        plan.order { $0.path < $1.path }
        #expect(plan.inserts.map(\.file.path) == ["a", "b"] && plan.updates.map(\.id) == [3] && plan.ready.map(\.id) == [4])
        plan.order { $0.path > $1.path }
        #expect(plan.inserts.map(\.file.path) == ["b", "a"])
    }

    @Test("Paths are compared byte for byte: café precomposed and decomposed are two files, as the file system has them")
    func normalizationTwins() {
        let nfc = Self.file("caf\u{e9}.txt", inode: 1), nfd = Self.file("cafe\u{301}.txt", inode: 2)
        #expect(nfc.path == nfd.path, "Swift's String equality is canonical: the reason for ScanPath")
        #expect(ScanPath(nfc.path) != ScanPath(nfd.path))
        let rows: [ScanPath: ScanPlan.Row] = [ScanPath(nfc.path): Self.row(1, nfc, "packed", named: true)]
        let plan = ScanPlan.make(rows: rows, found: [nfc, nfd], now: Self.now, minAgeSeconds: 0, complete: true)
        #expect(plan.inserts.map { Array($0.file.path.utf8) } == [Array(nfd.path.utf8)] && plan.inserts.first?.version == 1, "\(plan.inserts)")
        #expect(plan.superseded.isEmpty && plan.updates.isEmpty && plan.gone.isEmpty)
        // The decomposed one alone found: the precomposed row's file is gone (superseded, as it was packed).
        let alone = ScanPlan.make(rows: rows, found: [nfd], now: Self.now, minAgeSeconds: 0, complete: true)
        #expect(alone.superseded == [1] && alone.inserts.count == 1)
    }

    @Test("A row the scan cannot move on is left as it is and named: a status DES does not write, a version with no next one")
    func stuck() {
        let changed = Self.file("a", size: 20), other = Self.file("b", size: 20), fine = Self.file("c", size: 20)
        let rows: [ScanPath: ScanPlan.Row] = [
            "a": Self.row(1, Self.file("a"), "weird"), "b": Self.row(2, Self.file("b"), "packed", version: Int.max),
            "c": Self.row(3, Self.file("c"), "packed", version: 7),
        ]
        let plan = ScanPlan.make(rows: rows, found: [changed, other, fine], now: Self.now, minAgeSeconds: 0, complete: true)
        #expect(plan.inserts.map(\.file.path) == ["c"] && plan.inserts.map(\.version) == [8])
        #expect(plan.updates.isEmpty && plan.ready.isEmpty && plan.superseded == [3])
        #expect(Set(plan.stuck) == ["a", "b"])
    }

    @Test("A stamp column read back gives the stamp and the digest written; no digest, an empty one, or a stamp that does not parse say so")
    func stampColumn() {
        let stamp = FileStamp(device: 7, inode: 42, size: 9, mtimeNanos: -5, ctimeNanos: 1_700_000_000_000_000_000)
        let digest = String(repeating: "ab", count: 32)
        let full = FilesystemCatalog.parseStampColumn(FilesystemCatalog.stampColumn(stamp, digest: digest))
        #expect(full.stamp == stamp && full.text == stamp.text && full.digest == digest[...])
        let bare = FilesystemCatalog.parseStampColumn(stamp.text)
        #expect(bare.stamp == stamp && bare.digest == nil)
        #expect(FilesystemCatalog.parseStampColumn(stamp.text + "#").digest == nil)
        let garbage = FilesystemCatalog.parseStampColumn("7:42:x:1:2#" + digest)
        #expect(garbage.stamp == nil && garbage.text == "7:42:x:1:2" && garbage.digest == digest[...])
    }
}
