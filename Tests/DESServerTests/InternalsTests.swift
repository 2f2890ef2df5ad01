@testable import DESPluginS3
import DESFormat
import DESKit
import DESPluginPostgreSQL
import DESPluginSQLite
@testable import DESServer
import DESTestSupport
import Foundation
import Testing

@Suite("Clients see no internals") struct InternalsTests {
    /// Words that must never reach a client: SQL, table names, drivers' words, paths.
    static let internals = ["SELECT", "FROM", "des_containers", "des_shard_locks", "relation", "no such table", "postgres", "sqlite", "/tmp", "des/"]

    /// The text of a body, checked for internals; the error's request id.
    static func expectClean(_ body: [UInt8], _ what: String, extra: [String] = []) {
        let text = String(decoding: body, as: UTF8.self)
        for word in internals + extra {
            #expect(!text.localizedCaseInsensitiveContains(word), "\(what): '\(word)' in \(text)")
        }
    }

    @Test("a driver's SQLError is the metadata store failing: 503 unavailable, its statement kept out")
    func sqlErrorVerdict() {
        let v = APIResponse.verdict(for: SQLError(code: "SQLITE_1", message: "no such table: des_containers", statement: "SELECT key FROM des_containers"))
        #expect(v.status == .serviceUnavailable && v.code == "unavailable" && !v.message.contains("des_containers"))
    }

    @Test("the verdicts name no SQL, path or key: 503 unavailable with Retry-After, 502 checksum_mismatch, 500 corrupt_container")
    func verdicts() {
        let sql = DESKitError(.database, "SELECT key FROM des_containers WHERE shard = $1: relation \"des_containers\" does not exist")
        let v = APIResponse.verdict(for: sql)
        #expect(v.status == .serviceUnavailable && v.code == "unavailable" && v.retry && !v.message.contains("SELECT"))
        #expect(APIResponse.verdict(for: DESKitError(.storage, "cannot read /data/archive/des/x.des")).code == "unavailable")
        #expect(APIResponse.verdict(for: DESKitError(.unavailable, "no answer from 10.0.0.1:5432")).retry)
        let mismatch = APIResponse.verdict(for: DESFormatError(.checksumMismatch, "hashes to 00", path: "des/2025-01-01/shard_01_c000001.des"))
        #expect(mismatch.status == .badGateway && mismatch.code == "checksum_mismatch" && !mismatch.message.contains("des/"))
        let missing = APIResponse.verdict(for: DESKitError(.notFound, "no object des/2025-01-01/shard_01_c000001.des"))
        #expect(missing.status == .serviceUnavailable && missing.code == "container_missing" && missing.retry && !missing.message.contains("shard_"))
        let corrupt = APIResponse.verdict(for: DESFormatError(.badFooterMagic, "bad footer", path: "/srv/des/x.des"))
        #expect(corrupt.status == .internalServerError && corrupt.code == "corrupt_container" && !corrupt.message.contains("/srv"))
        struct Odd: Error {}
        let odd = APIResponse.verdict(for: Odd())
        #expect(odd.status == .internalServerError && odd.code == "internal" && !odd.message.contains("Odd"))
    }

    @Test("every request has an id: the client's X-Request-Id echoed when sane, else one made; error bodies carry it")
    func requestIDs() async throws {
        let shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        try await withServer(shelf) { server, client in
            let mine = try await client.send("GET", server.base + "/health/live", headers: ["X-Request-Id": "lb-1234_abc.9:z"])
            #expect(mine.headers["x-request-id"] == "lb-1234_abc.9:z")
            let made = try await client.send("GET", server.base + "/health/live")
            let id = try #require(made.headers["x-request-id"])
            #expect(id.count >= 16)
            let other = try await client.send("GET", server.base + "/health/live")
            #expect(other.headers["x-request-id"] != id)
            for bad in ["has space", String(repeating: "a", count: 200), "quote\"d", "<script>"] {
                let r = try await client.send("GET", server.base + "/health/live", headers: ["X-Request-Id": bad])
                #expect(r.headers["x-request-id"] != nil && r.headers["x-request-id"] != bad, "\(bad)")
            }
            let error = try await client.send("GET", server.base + "/files/nope", headers: ["X-Request-Id": "trace-42"])
            #expect(error.status == 400 && error.headers["x-request-id"] == "trace-42")
            let body = try #require(try client.json(error) as? [String: [String: String]])
            #expect(body["error"]?["request_id"] == "trace-42")
            let unknownRoute = try await client.send("GET", server.base + "/no/such/route")
            #expect(unknownRoute.status == 404 && unknownRoute.headers["x-request-id"] != nil)
        }
    }

    @Test("PostgreSQL metadata store stopped: /files answers 503 unavailable with Retry-After, no SQL, the request's id")
    func metadataStopped() async throws {
        let pgPort = try #require(Int(try testServerSetting("DES_TEST_PG_PORT")))
        let proxy = try TCPProxy(targetPort: pgPort)
        defer { proxy.stop() }
        let metadata = try await postgresMetadata(port: proxy.port)
        var shelf = try await Shelf.make(metadata: metadata)
        defer { shelf.cleanup() }
        let names = try await shelf.pack(3)
        try await withServer(shelf) { server, client in
            #expect(try await client.send("GET", server.base + "/health/ready").status == 200)
            proxy.cut()
            // Nothing asked for yet: the container list must come from the store, which is down.
            let r = try await client.send("GET", server.base + "/files/" + path(names[1]), headers: ["X-Request-Id": "pg-down-1"])
            #expect(r.status == 503 && client.errorCode(r) == "unavailable", "\(String(decoding: r.body, as: UTF8.self))")
            #expect(r.headers["retry-after"] == "1" && r.headers["x-request-id"] == "pg-down-1")
            Self.expectClean(r.body, "/files with the store down", extra: [String(proxy.port), "127.0.0.1"])
            let body = try #require(try client.json(r) as? [String: [String: String]])
            #expect(body["error"]?["request_id"] == "pg-down-1")
            let ready = try await UnavailableTests.eventually(client, server.base + "/health/ready", status: 503)
            #expect(ready.status == 503)
            Self.expectClean(ready.body, "/health/ready with the store down", extra: [String(proxy.port)])
            #expect(ready.headers["cache-control"] == "no-store", "a readiness answer is about this moment")
            proxy.restore()
            #expect(try await UnavailableTests.eventually(client, server.base + "/health/ready", status: 200).status == 200)
            let back = try await client.send("GET", server.base + "/files/" + path(names[1]))
            #expect(back.status == 200 && back.body == shelf.files[names[1]]?.bytes)
        }
        await metadata.close()
    }

    @Test("des_containers dropped: /files answers 503 naming nothing, and /health/ready fails (the store still answers SELECT 1)")
    func droppedTable() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(2)
        try await withServer(shelf) { server, client in
            #expect(try await client.send("GET", server.base + "/health/ready").status == 200)
            let db = try await SQLiteConnection.open(path: shelf.dir + "/metadata.sqlite")
            _ = try await db.withSession { try $0.execute("DROP TABLE des_containers", []) }
            await db.close()
            let r = try await client.send("GET", server.base + "/files/" + path(names[0]))
            #expect(r.status == 503 && client.errorCode(r) == "unavailable", "\(String(decoding: r.body, as: UTF8.self))")
            Self.expectClean(r.body, "/files with the table dropped", extra: [shelf.dir])
            let ready = try await UnavailableTests.eventually(client, server.base + "/health/ready", status: 503)
            #expect(ready.status == 503)
            let report = try #require(try client.json(ready) as? [String: Any])
            #expect(report["failed"] as? [String] == ["metadata"])
            Self.expectClean(ready.body, "/health/ready with the table dropped", extra: [shelf.dir])
        }
    }

    @Test("a container that fails validation: 500 corrupt_container, naming neither its key nor a path")
    func corruptContainer() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(1)
        let key = try #require(shelf.files[names[0]]?.container)
        let junk = shelf.dir + "/junk.des"
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: junk))
        _ = try await shelf.storage.put(key: key, fromFile: junk)
        try await withServer(shelf) { server, client in
            let r = try await client.send("GET", server.base + "/files/" + path(names[0]))
            #expect(r.status == 500 && client.errorCode(r) == "corrupt_container", "\(String(decoding: r.body, as: UTF8.self))")
            Self.expectClean(r.body, "a corrupt container", extra: [key, shelf.dir, "shard_"])
        }
    }

    @Test("a recorded container gone from storage: 503 container_missing with Retry-After, never a 404 a cache would keep; HEAD too")
    func missingContainer() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(1)
        let key = try #require(shelf.files[names[0]]?.container)
        try await shelf.storage.delete(key: key)
        try await withServer(shelf) { server, client in
            for method in ["GET", "HEAD"] {
                let r = try await client.send(method, server.base + "/files/" + path(names[0]))
                #expect(r.status == 503, "\(method): \(r.status)")
                #expect(r.headers["retry-after"] == "1", "\(method)")
                if method == "GET" {
                    #expect(client.errorCode(r) == "container_missing", "\(String(decoding: r.body, as: UTF8.self))")
                    Self.expectClean(r.body, "a missing container", extra: [key, shelf.dir, "shard_"])
                }
            }
        }
    }
}

/// A migrated PostgreSQL metadata store in a schema of its own on the test server, reached
/// through `port` (a ``TCPProxy`` in front of the server): tests that migrate at once never race.
func postgresMetadata(port: Int) async throws -> any MetadataStore {
    let schema = "des_srv_" + UUID().uuidString.prefix(8).lowercased()
    let admin = try await PostgresConnection.connect(conninfo: try testServerSetting("DES_TEST_POSTGRES"), target: "test server")
    _ = try await admin.withSession { try $0.execute("CREATE SCHEMA \(schema)") }
    await admin.close()
    var c = ConnectionConfig(type: "postgresql")
    c.host = "127.0.0.1"
    c.port = port
    c.database = try testServerSetting("DES_TEST_PG_DATABASE")
    c.username = try testServerSetting("DES_TEST_PG_USER")
    c.schema = schema
    c.driverOptions = ["connect_timeout": "2"]
    let metadata = try await PostgresPlugin.open(c)
    _ = try await metadata.migrate()
    return metadata
}
