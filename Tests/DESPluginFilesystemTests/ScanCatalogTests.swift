import DESPluginFilesystem
import Testing

@Suite("Filesystem source: the catalog a scan compares against, and large plans")
struct ScanCatalogTests {
    static func row(_ id: Int64, _ path: String, version: Int = 1, status: String = "pending", size: UInt64 = 10) -> ScanPlan.Row {
        ScanPlan.Row(
            id: id, path: path, version: version, size: size, mtimeNanos: 1, ctimeNanos: 1, device: 1, inode: UInt64(id), status: status,
            named: true)
    }

    @Test("Each path keeps its latest version whatever order the rows come in, through growth, and finds nothing it does not hold")
    func latestVersions() {
        var catalog = ScanCatalog()  // sized for nothing: grows many times
        let paths = (0..<50_000).map { "d\($0 % 97)/f\($0).txt" }
        // Versions 2, then 1, then 3 of every path: 3 stays.
        for version in [2, 1, 3] {
            for (i, path) in paths.enumerated() { catalog.keep(Self.row(Int64(i * 10 + version), path, version: version)) }
        }
        #expect(catalog.count == paths.count)
        for (i, path) in paths.enumerated() {
            #expect(catalog[path]?.version == 3)
            #expect(catalog[path]?.id == Int64(i * 10 + 3))
        }
        #expect(catalog["d0/f1.txt"] == nil)  // (f1 is in d1)
        #expect(catalog["nope"] == nil)
        #expect(catalog[""] == nil)
    }

    @Test("Paths are told apart by their bytes: precomposed and decomposed é, the empty path, a prefix")
    func bytes() {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed)  // (to Swift's String, one string)
        var catalog = ScanCatalog(capacity: 4)
        catalog.keep(Self.row(1, composed))
        catalog.keep(Self.row(2, decomposed))
        catalog.keep(Self.row(3, ""))
        catalog.keep(Self.row(4, "caf"))
        #expect(catalog.count == 4)
        #expect(catalog[composed]?.id == 1)
        #expect(catalog[decomposed]?.id == 2)
        #expect(catalog[""]?.id == 3)
        #expect(catalog["caf"]?.id == 4)
        #expect(catalog["cafe"] == nil)
    }

    @Test("A walk large enough to be compared in slices gives the plan one pass would: in the walk's order, every row found or gone")
    func slices() {
        let now: Int64 = 1_000_000 * 1_000_000_000
        let old = now - 100 * 1_000_000_000
        var catalog = ScanCatalog()
        var found: [ScannedFile] = []
        var expected = (inserts: [String](), versions: [Int](), updates: [Int64](), ready: [Int64](), superseded: [Int64](), gone: [Int64]())
        // Walked in an order of its own (not the rows' order, not sorted).
        let count = 40_000  // (two slices: at least 16,384 files each)
        for n in 0..<count {
            let i = (n * 7_919) % count
            let path = "dir\(i % 113)/file\(i)"
            let file = ScannedFile(root: 0, path: path, size: 10, mtimeNanos: old, ctimeNanos: old, device: 1, inode: UInt64(i))
            found.append(file)
            let same = ScanPlan.Row(
                id: Int64(i), path: path, version: 1, size: 10, mtimeNanos: old, ctimeNanos: old, device: 1, inode: UInt64(i), status: "observed",
                named: false)
            switch i % 5 {
            case 0:
                expected.inserts.append(path)  // no row: new
                expected.versions.append(1)
            case 1:
                catalog.keep(same)  // seen before, unchanged, old enough: ready
                expected.ready.append(Int64(i))
            case 2:
                var changed = same
                (changed.status, changed.size) = ("pending", 11)  // not packed yet, changed since: updated
                catalog.keep(changed)
                expected.updates.append(Int64(i))
            case 3:
                var changed = same
                (changed.status, changed.size) = ("packed", 11)  // packed, changed since: a new version
                catalog.keep(changed)
                expected.inserts.append(path)
                expected.versions.append(2)
                expected.superseded.append(Int64(i))
            default:
                var packed = same
                packed.status = "packed"  // packed and unchanged: nothing
                catalog.keep(packed)
            }
        }
        // Rows whose files the walk did not find.
        for g in 0..<500 {
            catalog.keep(Self.row(Int64(count + g), "gone/\(g)", status: g % 2 == 0 ? "pending" : "packed"))
            if g % 2 == 0 { expected.gone.append(Int64(count + g)) } else { expected.superseded.append(Int64(count + g)) }
        }
        let plan = ScanPlan.make(catalog: catalog, found: found, now: now, minAgeSeconds: 30, complete: true)
        // (Compared as Bools: a failure here would otherwise print every id.)
        let inserts = plan.inserts.map(\.file.path) == expected.inserts
        let versions = plan.inserts.map(\.version) == expected.versions
        let updates = plan.updates.map(\.id) == expected.updates
        let ready = plan.ready.map(\.id) == expected.ready
        let superseded = plan.superseded == expected.superseded.sorted()
        let gone = plan.gone == expected.gone.sorted()
        #expect(inserts && versions && updates && ready)
        #expect(superseded && gone)
        #expect(plan.waiting == expected.inserts.count + expected.updates.count)
        // A walk that could not read all of the tree takes nothing as gone.
        let partial = ScanPlan.make(catalog: catalog, found: found, now: now, minAgeSeconds: 30, complete: false)
        let walked = partial.superseded.sorted() == expected.superseded.filter { $0 < Int64(count) }.sorted()
        #expect(partial.gone.isEmpty && walked)
    }
}
