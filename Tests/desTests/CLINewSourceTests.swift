import Foundation
import Testing

/// `des new-source`: the template rendered with every placeholder replaced, and clear refusals.
/// (Building and running the rendered package is `scripts/test-template.sh`, part of `make test`.)
@Suite("des new-source")
struct CLINewSourceTests {
    @Test("Renders the template: the name in paths and text, the checkout as the dependency, nothing left unreplaced")
    func renders() throws {
        try withTempDir { dir in
            let r = try runDES(["new-source", "AcmeCatalog", "-o", "acme"], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.out.contains("swift run AcmeCatalog marker run"))
            #expect(r.out.contains("swift run AcmeCatalog packer run"))
            let root = dir + "/acme"
            let fm = FileManager.default
            #expect(fm.fileExists(atPath: root + "/Sources/AcmeCatalogSource/AcmeCatalogSource.swift"))
            #expect(fm.fileExists(atPath: root + "/Sources/AcmeCatalog/main.swift"))
            let manifest = try String(contentsOfFile: root + "/Package.swift", encoding: .utf8)
            #expect(manifest.contains("name: \"AcmeCatalog\""))
            // The dependency is the checkout this binary was built from, named as SwiftPM names a path package.
            let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().standardizedFileURL.path
            #expect(manifest.contains(".package(path: \"\(checkout)\")"))
            #expect(manifest.contains("package: \"\(URL(fileURLWithPath: checkout).lastPathComponent.lowercased())\""))
            let config = try String(contentsOfFile: root + "/example/des.yaml", encoding: .utf8)
            #expect(config.contains("type: acmecatalog"))
            for case let file as String in fm.enumerator(atPath: root)! {
                #expect(!file.contains("__"), "placeholder in path \(file)")
                if let text = try? String(contentsOfFile: root + "/" + file, encoding: .utf8) {
                    #expect(!text.contains("__NAME__") && !text.contains("__TYPE__") && !text.contains("__DES_"), "placeholder in \(file)")
                }
            }
        }
    }

    @Test("A name that is no Swift type name is a usage error; a folder in use is refused and left alone")
    func refusals() throws {
        try withTempDir { dir in
            for bad in ["1Acme", "acme-catalog", "Acme Catalog", "Ä", ""] {
                let r = try runDES(["new-source", bad, "-o", "x"], in: dir)
                #expect(r.status == 64, "\(bad): \(r.stderr)")
                expectCleanErrorLine(r)
            }
            try FileManager.default.createDirectory(atPath: dir + "/taken", withIntermediateDirectories: true)
            try writeFile(dir + "/taken/keep.txt", Array("mine".utf8))
            let r = try runDES(["new-source", "Acme", "-o", "taken"], in: dir)
            #expect(r.status == 73)
            #expect(r.stderr.contains("not empty"))
            #expect(try readFile(dir + "/taken/keep.txt") == Array("mine".utf8))
            let missing = try runDES(["new-source", "Acme", "-o", "y", "--des-path", dir + "/nowhere"], in: dir)
            #expect(missing.status == 66 && missing.stderr.contains("--des-path"))
        }
    }
}
