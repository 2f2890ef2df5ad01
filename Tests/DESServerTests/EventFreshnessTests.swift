@testable import DESPluginS3
import DESEngine
import DESKit
import DESPluginPostgreSQL
import DESSQLDialects
import DESServer
import DESTestSupport
import Foundation
import Testing

/// Servers follow the metadata store's events: a file is served within 1 s of its container
/// being recorded, and a deleted one answers 410 on every server within 1 s of its tombstone —
/// with the container refresh and the tombstone poll set far longer, so only the events can
/// explain it. On SQLite the outbox is polled; on PostgreSQL, LISTEN/NOTIFY wakes the follower.
@Suite("Event freshness")
struct EventFreshnessTests {
    /// Seconds until `GET name` answers `status` on `server` (polled every 10 ms, up to 10 s).
    static func secondsUntil(_ status: Int, _ name: String, on server: RunningServer, since start: Double) async throws -> Double {
        let client = Client()
        while monotonicSeconds() - start < 10 {
            if try await client.send("GET", "\(server.base)/files/\(name)").status == status { return monotonicSeconds() - start }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        return .infinity
    }

    static func check(_ shelf: inout Shelf) async throws {
        let slow: (inout ServerSettings) -> Void = { s in
            s.containerRefreshSeconds = 3_600
            s.tombstonePollSeconds = 60
        }
        let a = try await RunningServer.start(shelf, edit: slow)
        let b = try await RunningServer.start(shelf, edit: slow)
        defer { Task { await a.stop(); await b.stop() } }
        let client = Client()
        // Each server lists the containers of every (day, shard) once, for the first files.
        let firsts = try await shelf.pack(40, prefix: "FRS", size: 100)
        let shards = Set(firsts.compactMap { shelf.files[$0]?.shard })
        #expect(shards.count == 1 << shelf.shardBits)
        for server in [a, b] {
            for name in firsts { #expect(try await client.send("GET", "\(server.base)/files/\(name)").status == 200) }
        }
        let first = firsts[0]
        // Files packed later, in new containers of that (day, shard): served within 1 s of the commit.
        var laters: [String] = []
        var served: [Double] = []
        for _ in 0..<5 {
            let start = monotonicSeconds()
            let later = try await shelf.pack(1, prefix: "FRS", size: 100)[0]
            for server in [a, b] { served.append(try await secondsUntil(200, later, on: server, since: start)) }
            laters.append(later)
        }
        #expect(served.allSatisfy { $0 < 1 }, "served after \(served) s")
        // Deleted: 410 on both servers within 1 s of the tombstone.
        var gone: [Double] = []
        for name in laters {
            let start = monotonicSeconds()
            _ = try await shelf.metadata.addTombstones([Tombstone(name: name, reason: "test", origin: "delete", containerID: nil, bytes: 0)])
            for server in [a, b] { gone.append(try await secondsUntil(410, name, on: server, since: start)) }
        }
        #expect(gone.allSatisfy { $0 < 1 }, "410 after \(gone) s")
        #expect(try await client.send("GET", "\(a.base)/files/\(first)").status == 200)
    }

    @Test("SQLite (polled outbox): new files served and deletes answered 410 within 1 s on two servers")
    func sqlite() async throws {
        var shelf = try await Shelf.make()
        defer { shelf.cleanup() }
        try await Self.check(&shelf)
    }

    @Test("PostgreSQL (LISTEN/NOTIFY): new files served and deletes answered 410 within 1 s on two servers")
    func postgres() async throws {
        let conninfo = try testServerSetting("DES_TEST_POSTGRES")
        let schema = "des_fr_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
        _ = try await admin.withSession { s in try s.execute("CREATE SCHEMA \(schema)") }
        let scoped = conninfo + " options='-c search_path=\(schema)'"
        let pool = SQLConnectionPool(size: 4) { try await PostgresConnection.connect(conninfo: scoped, target: "test server") }
        let store = SQLMetadataStore(pool: pool, dialect: PostgresMetadataDialect()) {
            try await PostgresListener.listen(conninfo: scoped, target: "test server")
        }
        try await store.migrate()
        var shelf = try await Shelf.make(metadata: store)
        defer {
            shelf.cleanup()
            Task {
                await store.close()
                _ = try? await admin.withSession { s in try s.execute("DROP SCHEMA \(schema) CASCADE") }
                await admin.close()
            }
        }
        try await Self.check(&shelf)
    }
}
