@testable import DESPluginS3
import DESEngine
import DESKit
import Logging
import DESNaming
import DESPluginSQLite
import DESServer
import Foundation
import Testing

/// `DELETE /files/{name}` and what a tombstone does to every running server.
@Suite("Deleting files over HTTP") struct DeleteTests {
    @Test("A delete on one server: 410 there at once, and on a second server (its own metadata connection) once it polls; HEAD 410; deleting again is 200; an unknown name 404; no reason 400")
    func deleteReachesEveryServer() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(20, size: 100)
        let otherStore = try await SQLiteMetadataStore.open(path: shelf.dir + "/metadata.sqlite")
        let other = Shelf(dir: shelf.dir, metadata: otherStore, storage: shelf.storage, shardBits: shelf.shardBits, files: shelf.files)
        let auth = ["authorization": "Bearer s3cret"]
        try await withServer(shelf, edit: { $0.tokens = [Secret("s3cret")] }) { a, client in
            try await withServer(other, edit: { $0.tokens = [Secret("s3cret")] }) { b, _ in
                let victim = names[3]
                #expect(try await client.send("GET", "\(a.base)/files/\(victim)", headers: auth).status == 200)
                #expect(try await client.send("GET", "\(b.base)/files/\(victim)", headers: auth).status == 200)
                let noReason = try await client.send("DELETE", "\(a.base)/files/\(victim)", headers: auth)
                #expect(noReason.status == 400 && client.errorCode(noReason) == "reason_required")
                // A reason that would break a log line (CR LF, or NUL) is refused, and nothing is deleted.
                for forged in ["%0D%0Afake%20line", "a%00b", "tab%09here"] {
                    let r = try await client.send("DELETE", "\(a.base)/files/\(victim)?reason=\(forged)", headers: auth)
                    #expect(r.status == 400 && client.errorCode(r) == "reason_required", "\(forged): \(r.status)")
                }
                let noToken = try await client.send("DELETE", "\(a.base)/files/\(victim)?reason=x")
                #expect(noToken.status == 401)
                let deleted = try await client.send("DELETE", "\(a.base)/files/\(victim)?reason=ticket%2042", headers: auth)
                let answered = Date()
                #expect(deleted.status == 200, "\(String(decoding: deleted.body, as: UTF8.self))")
                #expect(try await client.send("GET", "\(a.base)/files/\(victim)", headers: auth).status == 410)
                var seenAfter: Double?
                while seenAfter == nil && Date().timeIntervalSince(answered) < 10 {
                    if try await client.send("GET", "\(b.base)/files/\(victim)", headers: auth).status == 410 {
                        seenAfter = Date().timeIntervalSince(answered)
                    } else {
                        try await Task.sleep(nanoseconds: 20_000_000)
                    }
                }
                // How soon is the poll interval's business (server.tombstone_poll_seconds), not a test's
                // to time: that it is learned from the store, with no restart, is.
                _ = try #require(seenAfter, "the second server still serves the deleted file after 10 s")
                let gone = try await client.send("GET", "\(b.base)/files/\(victim)", headers: auth)
                #expect(client.errorCode(gone) == "deleted" && gone.headers["cache-control"] == "no-store")
                #expect(try await client.send("HEAD", "\(b.base)/files/\(victim)", headers: auth).status == 410)
                // The others are still served; deleting again is idempotent; an unknown name is 404.
                #expect(try await client.send("GET", "\(b.base)/files/\(names[4])", headers: auth).status == 200)
                let again = try await client.send("DELETE", "\(b.base)/files/\(victim)?reason=again", headers: auth)
                let againBody = try client.json(again) as? [String: Any]
                #expect(again.status == 200 && againBody?["already_deleted"] as? Bool == true)
                let never = try SnowflakeGenerator(configuration: .init(prefix: "SRV", node: 9)).next(count: 1)[0].description
                let unknown = try await client.send("DELETE", "\(a.base)/files/\(never)?reason=x", headers: auth)
                #expect(unknown.status == 404, "\(String(decoding: unknown.body, as: UTF8.self))")
                let stone = try await shelf.metadata.tombstone(named: victim)
                #expect(stone?.reason == "ticket 42" && stone?.origin == "delete" && stone?.bytes == 100)
            }
        }
        await otherStore.close()
    }

    @Test("A server without bearer tokens refuses deletes (403) and keeps serving the file")
    func deletesNeedTokens() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(3, size: 10)
        try await withServer(shelf) { server, client in
            let refused = try await client.send("DELETE", "\(server.base)/files/\(names[0])?reason=x")
            #expect(refused.status == 403 && client.errorCode(refused) == "deletes_need_auth")
            #expect(try await client.send("GET", "\(server.base)/files/\(names[0])").status == 200)
            #expect(try await shelf.metadata.tombstone(named: names[0]) == nil)
        }
    }
}

@Suite("Reads across compaction") struct CompactionReadTests {
    @Test("A server that found files in small containers keeps serving them while those are merged and, once their objects are deleted, finds them again in the merged container (a gone container is looked up again once); deleted files stay 410")
    func readsSurviveCompaction() async throws {
        var shelf = try await Shelf.make(shardBits: 1)
        defer { shelf.cleanup() }
        let names = try await shelf.pack(60, size: 200, filesPerContainer: 5)
        let doomed = Array(names.prefix(10))
        _ = try await shelf.metadata.addTombstones(doomed.map { Tombstone(name: $0, reason: "test", origin: "delete", containerID: nil, bytes: 200) })
        let before = try await shelf.metadata.containers(state: .uploaded, shard: nil, day: nil)
        try await withServer(shelf, edit: { $0.containerRefreshSeconds = 3_600 }) { server, client in
            // Every file found once: the server now knows the small containers (for an hour).
            for name in names { _ = try await client.send("GET", "\(server.base)/files/\(name)") }
            var config = Compactor.Config()
            config.compaction.graceSeconds = 3_600
            config.workDir = shelf.dir + "/compact"
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let compactor = Compactor(metadata: shelf.metadata, storage: shelf.storage, config: config, logger: logger)
            let merged = try await compactor.run(shutdown: ShutdownSignal(), untilIdle: true)
            #expect(merged.containersRetired == before.count && merged.liveFiles == 50, "\(merged)")
            // During the grace: served from the old objects.
            for name in names.dropFirst(10) {
                let r = try await client.send("GET", "\(server.base)/files/\(name)")
                #expect(r.status == 200 && r.body == shelf.files[name]?.bytes, "\(name) during the grace: \(r.status)")
            }
            // After it: the old objects are gone, and every live file is found in the merged containers.
            config.compaction.graceSeconds = 0
            let removed = try await Compactor(metadata: shelf.metadata, storage: shelf.storage, config: config, logger: logger)
                .run(shutdown: ShutdownSignal(), untilIdle: true)
            #expect(removed.objectsDeleted == before.count)
            for old in before { #expect(try await shelf.storage.head(key: old.key) == nil) }
            for name in names.dropFirst(10) {
                let r = try await client.send("GET", "\(server.base)/files/\(name)")
                #expect(r.status == 200 && r.body == shelf.files[name]?.bytes, "\(name) after the grace: \(r.status)")
            }
            for name in doomed { #expect(try await client.send("GET", "\(server.base)/files/\(name)").status == 410) }
        }
    }
}

@Suite("Deletes committed out of order") struct TombstoneOrderTests {
    @Test("A delete whose sequence number is below one a server has already read (committed later, as PostgreSQL and MariaDB allow) is still learned, by the poll's overlap")
    func lateCommit() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        let names = try await shelf.pack(3, size: 10)
        func insert(_ name: String, seq: Int64) async throws {
            let db = try await SQLiteConnection.open(path: shelf.dir + "/metadata.sqlite")
            _ = try await db.withSession {
                try $0.execute(
                    "INSERT INTO des_tombstones (seq, des_name, reason, origin, deleted_at, bytes) VALUES (?1, ?2, 'test', 'delete', 0, 10)",
                    [.int(seq), .text(name)])
            }
            await db.close()
        }
        func gone(_ server: RunningServer, _ client: Client, _ name: String) async throws -> Bool {
            for _ in 0..<500 {
                if try await client.send("GET", "\(server.base)/files/\(name)").status == 410 { return true }
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            return false
        }
        try await withServer(shelf, edit: { $0.tombstonePollSeconds = 0.05 }) { server, client in
            // The server reads delete 100; then delete 50, numbered before it, commits.
            try await insert(names[2], seq: 100)
            #expect(try await gone(server, client, names[2]))
            try await insert(names[1], seq: 50)
            #expect(try await gone(server, client, names[1]), "a delete numbered below the last one read was never learned")
            #expect(try await client.send("GET", "\(server.base)/files/\(names[0])").status == 200)
        }
    }
}
