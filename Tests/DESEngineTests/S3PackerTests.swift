import DESTestSupport
import DESKit
import DESPluginS3
import DESPluginSQLite
import DESSQLDialects
import Foundation
import Testing

/// The test S3 server (moto): its settings, a bucket of one's own, the keys a config names it with.
struct S3TestServer {
    let endpoint: String, region: String, key: String, secret: String

    init() throws {
        (endpoint, region, key, secret) = (
            try testServerSetting("DES_TEST_S3_ENDPOINT"), try testServerSetting("DES_TEST_S3_REGION"),
            try testServerSetting("DES_TEST_S3_ACCESS_KEY"), try testServerSetting("DES_TEST_S3_SECRET_KEY")
        )
    }

    /// A new bucket, created.
    func bucket(_ name: String) async throws -> S3Storage {
        var settings = S3Settings(endpoint: endpoint, region: region, bucket: name, credentials: .init(accessKey: key, secretKey: secret))
        settings.requestTimeoutSeconds = Double(sharedS3RequestTimeout)
        let storage = S3Storage(client: S3Client(settings: settings))
        try await storage.createBucket()
        return storage
    }

    /// `endpoint: …, region: …, access_key: …, secret_key: …, request_timeout: …` for a config's
    /// flow map (``sharedS3RequestTimeout``).
    var configKeys: String {
        "endpoint: \(endpoint), region: \(region), access_key: \(key), secret_key: \(secret), request_timeout: \(sharedS3RequestTimeout)"
    }
}

/// The stock packer with its bodies on S3 and its containers on S3 (moto, signatures checked).
@Suite("Packer on S3") struct S3PackerTests {
    @Test(
        "Bodies fetched from S3 are packed into containers on S3; kill -9 mid-run loses and duplicates nothing (claim_mode row and lease)",
        arguments: ["row", "lease"])
    func drainsToS3WithKills(mode: String) async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let s3 = try S3TestServer()
        let tag = UUID().uuidString.prefix(8).lowercased()
        let (bodiesBucket, containerBucket) = ("des-bodies-\(tag)", "des-containers-\(tag)")
        let bodies = try await s3.bucket(bodiesBucket), containers = try await s3.bucket(containerBucket)
        let rows = 400
        var rng = SystemRandomNumberGenerator()
        var expected: [Int: [UInt8]] = [:]
        for i in 1...rows {
            let body = (0..<Int.random(in: 1...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            expected[i] = body
            let file = d.dir + "/upload"
            _ = FileManager.default.createFile(atPath: file, contents: Data(body))
            _ = try await bodies.put(key: "in/f\(i)", fromFile: file)
        }
        var columns = ColumnMapping()
        columns.s3Bucket = "bucket"
        columns.s3Key = "object_key"
        columns.sizeBytes = "size_bytes"
        let table = TableConfig(name: "files", columns: columns)
        let sizes = expected.mapValues { Int64($0.count) }
        let catalog = try await SQLiteConnection.open(path: d.catalogPath)
        try await catalog.withTransaction { s in
            for statement in try SQLiteCatalogSchema.createStatements(for: table) { try s.execute(statement) }
            for i in 1...rows {
                try s.execute(
                    "INSERT INTO files (id, bucket, object_key, size_bytes) VALUES (?1, ?2, ?3, ?4)",
                    [.int(Int64(i)), .text(bodiesBucket), .text("in/f\(i)"), .int(sizes[i] ?? 0)])
            }
        }
        await catalog.close()
        let credentials = s3.configKeys
        let config = d.dir + "/s3.yaml"
        try """
            sources:
              - name: s3catalog
                connection: {type: sqlite, database: catalog.sqlite}
                table:
                  name: files
                  columns: {id: id, s3_bucket: bucket, s3_key: object_key, size_bytes: size_bytes, status: des_status}
                bodies: {type: s3, \(credentials)}
            storage: {type: s3, bucket: \(containerBucket), prefix: des, \(credentials)}
            metadata: {connection: {type: sqlite, database: metadata.sqlite}}
            packer: {claim_mode: \(mode), work_dir: work, shard_bits: 2, batch_size: 25, max_container_files: 40, fetch_concurrency: 16, checkpoint_every_files: 10, lease_ttl_seconds: 30, heartbeat_seconds: 1}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        // A temporary directory of this run's own: its body downloads are checked below, and the
        // test's other case runs beside it.
        let temporary = d.dir + "/tmp/"
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        func des(_ args: [String]) throws -> Process { try startDES(args, config: config, environment: ["TMPDIR": temporary]) }
        let marker = try des(["marker", "run", "--until-idle"])
        await d.wait(marker)
        #expect(marker.terminationStatus == 0)
        var kills = 0
        for _ in 0..<30 where kills < 5 {
            let launched = Date()
            let p = try des(["packer", "run", "--until-idle"])
            // Killed once it has rows in hand (a container open, not after a guessed delay):
            // mid-run, whatever the machine's speed, watched from a thread of its own.
            let delay = useconds_t.random(in: 0...50_000, using: &rng)
            let pid = p.processIdentifier
            let watcher = ProcessWatcher(process: p, workDir: d.dir + "/work", since: launched) {
                usleep(delay)
                return kill(pid, SIGKILL) == 0
            }
            let acted = await watcher.finished()
            await d.wait(p)
            if acted && p.terminationReason == .uncaughtSignal { kills += 1 }  // landed: it did not exit by itself
        }
        #expect(kills >= 3, "only \(kills) kills landed")
        let last = try des(["packer", "run", "--until-idle"])
        await d.wait(last)
        #expect(last.terminationStatus == 0)
        let statuses = try await d.sql("SELECT des_status, COUNT(*) FROM files GROUP BY des_status")
        #expect(statuses.count == 1 && statuses.first?[0].text == "DES_PACKED" && statuses.first?[1].int == Int64(rows), "\(statuses)")
        let objects = try await containers.list(prefix: "des")
        #expect(!objects.isEmpty && objects.allSatisfy { $0.key.hasSuffix(".des") }, "\(objects.map(\.key))")
        #expect(try await containers.pendingUploads(prefix: "").isEmpty)
        // Every row read back by name from the containers on S3 and compared with its body on S3.
        let check = try des(["check"])
        await d.wait(check)
        #expect(check.terminationStatus == 0)
        // No body download left behind: the killed packers' folders went when the next process started.
        let root = temporary + "des-bodies"
        #expect(FileManager.default.fileExists(atPath: root), "des did not download into its TMPDIR")
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).flatMap { dir in
            (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + dir)) ?? []
        }
        #expect(left.isEmpty, "\(left.count) downloaded bodies left")
        // The archive commands read s3:// URLs (credentials from the standard variables).
        let url = "s3://\(containerBucket)/\(objects[0].key)"
        for args in [["verify", url], ["ls", url]] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try desBinary())
            p.arguments = args
            p.environment = ProcessInfo.processInfo.environment.merging(
                [
                    "AWS_ENDPOINT_URL": s3.endpoint, "AWS_REGION": s3.region, "AWS_ACCESS_KEY_ID": s3.key, "AWS_SECRET_ACCESS_KEY": s3.secret,
                    "DES_S3_REQUEST_TIMEOUT": "\(sharedS3RequestTimeout)",
                ]) { $1 }
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            await waitForExit(p)  // the output is small: the pipe does not fill
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(p.terminationStatus == 0, "des \(args[0]) \(url): \(text)")
            if args[0] == "ls" { #expect(!text.isEmpty && text.split(separator: "\n").allSatisfy { $0.hasPrefix("DES_") }) }
        }
        print("s3 packer test (\(mode)): \(kills) kills")
    }
}

@Suite("Retiring S3 bodies") struct S3RetireTests {
    @Test("1,200 S3 bodies retired in one batch go in DeleteObjects requests of at most 1,000 keys; a body rewritten since packing stays in its bucket")
    func retireS3Bodies() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let s3 = try S3TestServer()
        let bucket = "des-retire-\(UUID().uuidString.prefix(8).lowercased())"
        let bodies = try await s3.bucket(bucket)
        let rows = 1_200
        let file = d.dir + "/upload"
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<8 {
                group.addTask {
                    let path = file + "\(lane)"
                    for i in stride(from: lane + 1, through: rows, by: 8) {
                        _ = FileManager.default.createFile(atPath: path, contents: Data("body \(i)".utf8))
                        _ = try await bodies.put(key: "in/f\(i)", fromFile: path)
                    }
                }
            }
            try await group.waitForAll()
        }
        var columns = ColumnMapping()
        columns.s3Bucket = "bucket"
        columns.s3Key = "object_key"
        let table = TableConfig(name: "files", columns: columns)
        let catalog = try await SQLiteConnection.open(path: d.catalogPath)
        try await catalog.withTransaction { s in
            for statement in try SQLiteCatalogSchema.createStatements(for: table) { try s.execute(statement) }
            for i in 1...rows {
                try s.execute("INSERT INTO files (id, bucket, object_key) VALUES (?1, ?2, ?3)", [.int(Int64(i)), .text(bucket), .text("in/f\(i)")])
            }
        }
        await catalog.close()
        let credentials = s3.configKeys
        let config = d.dir + "/s3.yaml"
        try """
            sources:
              - name: s3catalog
                connection: {type: sqlite, database: catalog.sqlite}
                table:
                  name: files
                  columns: {id: id, s3_bucket: bucket, s3_key: object_key, status: des_status}
                bodies: {type: s3, \(credentials), delete_after_pack: 0s}
            storage: {type: local, root: archive, prefix: des}
            metadata: {connection: {type: sqlite, database: metadata.sqlite}}
            packer: {work_dir: work, shard_bits: 2, batch_size: 400, fetch_concurrency: 16}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        for step in [["marker", "run", "--until-idle"], ["packer", "run", "--until-idle"]] {
            let p = try startDES(step, config: config)
            await d.wait(p)
            try #require(p.terminationStatus == 0, "\(step)")
        }
        _ = FileManager.default.createFile(atPath: file, contents: Data("rewritten".utf8))
        _ = try await bodies.put(key: "in/f77", fromFile: file)
        let run = try await runDES(["retire", "--until-idle", "--batch-size", "2000", "--json"], config: config, in: d.dir)
        #expect(run.status == 0, "\(run.err)")
        let totals = try jsonObject(run.out)
        #expect(totals["deleted"] as? Int == rows - 1 && (totals["skipped"] as? [String: Int])?["body_changed"] == 1, "\(totals)")
        #expect(try await bodies.list(prefix: "in").map(\.key) == ["in/f77"])
        let retired = try await d.sql("SELECT COUNT(*) FROM files WHERE des_status = 'DES_SOURCE_DELETED'").first?[0].int
        #expect(retired == Int64(rows - 1))
    }
}
