import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A store on the embedded default under `dir`, filled by `des` itself: `des sample`, the marker
/// and the packer; returns the config, the packed names and the container holding them.
func packedStore(in dir: String, files: Int = 3, size: Int = 4096) throws -> (config: String, names: [String], container: String) {
    let config = dir + "/des.yaml"
    try """
        sources:
          - name: catalog
            connection: {type: sqlite, database: catalog.sqlite}
            table:
              name: files
              columns: {id: id, s3_key: body_path, size_bytes: size_bytes, status: des_status, metadata_columns: [mime]}
            bodies: {type: local, root: bodies}
        storage: {type: local, root: archive, prefix: des}
        metadata: {connection: {type: sqlite, database: metadata.sqlite}}
        packer: {work_dir: work, shard_bits: 1}
        """.write(toFile: config, atomically: true, encoding: .utf8)
    for args in [["sample", "--files", String(files), "--size", String(size)], ["marker", "run", "--until-idle"], ["packer", "run", "--until-idle"]] {
        let r = try runDES(args + ["-c", config, "--log-level", "error"], in: dir)
        try #require(r.status == 0, "des \(args): \(r.stderr)")
    }
    let walker = try #require(FileManager.default.enumerator(atPath: dir + "/archive"))
    var containers: [String] = []
    while let rel = walker.nextObject() as? String {
        if rel.hasSuffix(".des") { containers.append(dir + "/archive/" + rel) }
    }
    let container = try #require(containers.first, "the packer wrote no container")
    let names = try runDES(["ls", container], in: dir).outLines
    try #require(!names.isEmpty)
    return (config, names, container)
}

@Suite("des get -o and des pack -o write outputs as cp does")
struct CLIOutputTests {
    // MARK: des get

    @Test("des get -o: new file, existing file without and with --force, links, a directory, a missing directory")
    func getRegularTargets() throws {
        try withTempDir { dir in
            let store = try packedStore(in: dir)
            let name = store.names[0]
            let want = try runDES(["cat", store.container, name], in: dir).stdout
            try #require(want.count == 4096)
            func get(_ out: String, _ extra: [String] = []) throws -> RunResult {
                try runDES(["get", name, "-c", store.config, "-o", out] + extra, in: dir)
            }
            // New file.
            #expect(try get("new.bin").status == 0)
            #expect(try readFile(dir + "/new.bin") == want)
            // Existing file: refused with 73 and left alone; --force replaces it.
            try writeFile(dir + "/taken", Array("keep me".utf8))
            let refused = try get("taken")
            #expect(refused.status == 73)
            expectCleanErrorLine(refused)
            #expect(refused.stderr.contains("taken") && refused.stderr.contains("--force"))
            #expect(try readFile(dir + "/taken") == Array("keep me".utf8))
            #expect(try get("taken", ["--force"]).status == 0)
            #expect(try readFile(dir + "/taken") == want)
            // A link to an existing file counts as that file; with --force its target is replaced, the link stays.
            try writeFile(dir + "/real/target", Array("old".utf8))
            try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "real/target")
            #expect(try get("link").status == 73)
            #expect(try readFile(dir + "/real/target") == Array("old".utf8))
            #expect(try get("link", ["--force"]).status == 0)
            #expect(fileKind(dir + "/link") == S_IFLNK)
            #expect(try readFile(dir + "/real/target") == want)
            // A dangling link, a directory, a missing directory: refused, nothing created.
            try FileManager.default.createSymbolicLink(atPath: dir + "/dangling", withDestinationPath: "nowhere")
            let dangling = try get("dangling", ["--force"])
            #expect(dangling.status == 73 && dangling.stderr.contains("does not exist"))
            #expect(fileKind(dir + "/nowhere") == nil)
            try FileManager.default.createDirectory(atPath: dir + "/adir", withIntermediateDirectories: true)
            let directory = try get("adir", ["--force"])
            #expect(directory.status == 73 && directory.stderr.contains("is a directory"))
            #expect(fileKind(dir + "/adir") == S_IFDIR)
            #expect(try get("nodir/out").status == 73)
            for d in [dir, dir + "/real"] { #expect(temporaries(in: d).isEmpty, "\(d)") }
        }
    }

    @Test("A FIFO given as an archive is refused at once (no open that waits for a writer)")
    func fifoArchive() throws {
        try withTempDir { dir in
            try #require(mkfifo(dir + "/x.des", 0o600) == 0)
            for command in [["ls", "x.des"], ["verify", "x.des"], ["stat", "x.des"]] {
                let r = try runDES(command, in: dir)
                #expect(r.status != 0 && r.stderr.contains("not a regular file"), "\(command): \(r.stderr)")
            }
        }
    }

    @Test("des get -o: /dev/null stays a device (run as root), a FIFO with a reader gets the bytes")
    func getWriteThrough() throws {
        try withTempDir { dir in
            let store = try packedStore(in: dir)
            let name = store.names[0]
            let want = try runDES(["cat", store.container, name], in: dir).stdout
            let null = try runDES(["get", name, "-c", store.config, "-o", "/dev/null"], in: dir)
            #expect(null.status == 0, "\(null.stderr)")
            #expect(fileKind("/dev/null") == S_IFCHR, "/dev/null must still be a character device")
            let fifo = dir + "/fifo"
            try #require(mkfifo(fifo, 0o600) == 0)
            let reader = try FIFOReader(fifo: fifo, into: dir + "/from-fifo")
            let r = try runDES(["get", name, "-c", store.config, "-o", fifo], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try reader.bytes() == want)
            #expect(fileKind(fifo) == S_IFIFO)
            #expect(temporaries(in: dir).isEmpty)
        }
    }

    @Test("des get -o: a failed get leaves no output and no temporary file")
    func getFailureLeavesNothing() throws {
        try withTempDir { dir in
            let store = try packedStore(in: dir, files: 2, size: 512 * 1024)
            // A name that is in no container: exit 66 after the output was opened.
            let missing = try runDES(["get", "DES_20250101_(21BCAA000100_88)", "-c", store.config, "-o", "out"], in: dir)
            #expect(missing.status == 66)
            // A write that fails part-way (EFBIG past `ulimit -f 128`, as on a full disk; the
            // metadata database's small files stay within it): exit 74.
            let full = try runDES(["get", store.names[0], "-c", store.config, "-o", "out"], in: dir, fileSizeLimitKiB: 128)
            #expect(full.status == 74, "\(full.stderr)")
            #expect(fileKind(dir + "/out") == nil)
            #expect(temporaries(in: dir).isEmpty)
        }
    }

    // MARK: Output directories

    @Test("des unpack -C and des new-source -o: a file, a device or a dangling link there is refused with 73, untouched")
    func outputDirectories() throws {
        try withTempDir { dir in
            try makeTree(sampleTree(), at: dir + "/src")
            #expect(try runDES(["pack", "src", "-o", "a.des"], in: dir).status == 0)
            try writeFile(dir + "/file", Array("keep".utf8))
            try FileManager.default.createSymbolicLink(atPath: dir + "/dangling", withDestinationPath: "nowhere")
            for target in ["file", "dangling", "/dev/null"] {
                for args in [["unpack", "a.des", "-C", target], ["new-source", "Acme", "-o", target]] {
                    let r = try runDES(args, in: dir)
                    #expect(r.status == 73, "\(args): \(r.stderr)")
                    expectCleanErrorLine(r)
                }
            }
            #expect(try readFile(dir + "/file") == Array("keep".utf8))
            #expect(fileKind(dir + "/nowhere") == nil && fileKind("/dev/null") == S_IFCHR)
            // A link to a directory is written into.
            try FileManager.default.createDirectory(atPath: dir + "/real", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: dir + "/into", withDestinationPath: "real")
            #expect(try runDES(["unpack", "a.des", "-C", "into"], in: dir).status == 0)
            #expect(try readFile(dir + "/real/a.txt") == Array("hello\n".utf8))
        }
    }

    // MARK: des pack

    @Test("des pack -o: links, a dangling link, a directory; --force replaces a link's target and keeps the link")
    func packRegularTargets() throws {
        try withTempDir { dir in
            try makeTree(sampleTree(), at: dir + "/src")
            try writeFile(dir + "/real/a.des", Array("old".utf8))
            try FileManager.default.createSymbolicLink(atPath: dir + "/link.des", withDestinationPath: "real/a.des")
            let refused = try runDES(["pack", "src", "-o", "link.des"], in: dir)
            #expect(refused.status == 73)
            expectCleanErrorLine(refused)
            #expect(try readFile(dir + "/real/a.des") == Array("old".utf8))
            #expect(try runDES(["pack", "src", "-o", "link.des", "--force"], in: dir).status == 0)
            #expect(fileKind(dir + "/link.des") == S_IFLNK)
            #expect(try runDES(["verify", "real/a.des"], in: dir).status == 0)
            try FileManager.default.createSymbolicLink(atPath: dir + "/dangling.des", withDestinationPath: "nowhere.des")
            #expect(try runDES(["pack", "src", "-o", "dangling.des", "--force"], in: dir).status == 73)
            #expect(fileKind(dir + "/nowhere.des") == nil)
            try FileManager.default.createDirectory(atPath: dir + "/out.des", withIntermediateDirectories: true)
            let directory = try runDES(["pack", "src", "-o", "out.des", "--force"], in: dir)
            #expect(directory.status == 73 && directory.stderr.contains("is a directory"))
            for d in [dir, dir + "/real"] { #expect(temporaries(in: d).isEmpty, "\(d)") }
        }
    }

    @Test("des pack -o /dev/null leaves /dev/null a device; -o FIFO sends a whole, valid archive to its reader")
    func packWriteThrough() throws {
        try withTempDir { dir in
            try makeTree(sampleTree(), at: dir + "/src")
            let null = try runDES(["pack", "src", "-o", "/dev/null"], in: dir)
            #expect(null.status == 0, "\(null.stderr)")
            #expect(fileKind("/dev/null") == S_IFCHR, "/dev/null must still be a character device")
            #expect(fileKind("/dev/null.partial") == nil)
            let fifo = dir + "/fifo"
            try #require(mkfifo(fifo, 0o600) == 0)
            let reader = try FIFOReader(fifo: fifo, into: dir + "/from-fifo.des")
            let r = try runDES(["pack", "src", "-o", fifo], in: dir)
            #expect(r.status == 0, "\(r.stderr)")
            _ = try reader.bytes()
            #expect(fileKind(fifo) == S_IFIFO)
            let verify = try runDES(["verify", "from-fifo.des"], in: dir)
            #expect(verify.status == 0, "\(verify.stderr)")
            #expect(temporaries(in: dir).isEmpty)
        }
    }

    @Test("des pack -o: a write that fails part-way leaves no archive and no temporary file")
    func packFailureLeavesNothing() throws {
        try withTempDir { dir in
            try makeTree(sampleTree(), at: dir + "/src")
            let r = try runDES(["pack", "src", "-o", "out.des"], in: dir, fileSizeLimitKiB: 16)
            #expect(r.status == 74, "\(r.stderr)")
            expectCleanErrorLine(r)
            #expect(fileKind(dir + "/out.des") == nil)
            #expect(temporaries(in: dir).isEmpty)
        }
    }

    @Test("An empty output path is a usage error (64), not an output that cannot be created")
    func emptyOutputPath() throws {
        try withTempDir { dir in
            try makeTree(["a.txt": Array("a".utf8)], at: dir + "/tree")
            let pack = try runDES(["pack", dir + "/tree", "-o", ""], in: dir)
            #expect(pack.status == 64, "\(pack.stderr)")
            let get = try runDES(["get", "DES_20250101_(21BCAA000100_88)", "-c", dir + "/none.yaml", "-o", ""], in: dir)
            #expect(get.status == 64, "\(get.stderr)")
        }
    }
}

