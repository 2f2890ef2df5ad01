import DESEngine
import DESKit
import DESPluginPostgreSQL
import DESPluginSQLite
import DESSQLDialects
import DESTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// The follower of the metadata store's outbox: each event delivered once, in order; a number
/// that commits late is still delivered; a follower the outbox pruned past starts again.
@Suite("Event follower")
struct EventFollowerTests {
    /// What a follower delivered, in order.
    final class Received: Sendable {
        let events = Mutex<[StoreEvent]>([])
        let resyncs = Atomic<Int>(0)
        var seqs: [Int64] { events.withLock { $0.map(\.seq) } }
        var names: [String] { events.withLock { $0.compactMap(\.name) } }
    }

    static func follower(_ store: any MetadataStore, _ received: Received, startAfter: Int64? = nil, gapSeconds: Double = 10) -> EventFollower {
        var settings = EventFollower.Settings()
        settings.gapSeconds = gapSeconds
        settings.batch = 50
        return EventFollower(
            metadata: store, settings: settings, startAfter: startAfter, logger: Logger(label: "test"),
            resync: { received.resyncs.add(1, ordering: .relaxed) },
            deliver: { events in received.events.withLock { $0 += events } })
    }

    static func tombstones(_ names: [String]) -> [Tombstone] {
        names.map { Tombstone(name: $0, reason: "t", origin: "delete", containerID: nil, bytes: 0) }
    }

    @Test("From the newest event on, each event once and in order, batch after batch")
    func inOrderOnce() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let store = try await SQLiteMetadataStore.open(path: d.dir + "/meta.sqlite")
        defer { Task { await store.close() } }
        try await store.migrate()
        _ = try await store.addTombstones(Self.tombstones(["OLD_1"]))
        let received = Received()
        let follower = Self.follower(store, received)
        #expect(try await follower.poll() == 0)  // the first read only finds where the outbox ends
        #expect(follower.watermark == 1 && follower.isCurrent)
        _ = try await store.addTombstones(Self.tombstones((1...120).map { "N_\($0)" }))
        var total = 0
        while true {
            let n = try await follower.poll()
            total += n
            if n == 0 { break }
        }
        #expect(total == 120)
        #expect(received.names == (1...120).map { "N_\($0)" })
        #expect(received.seqs == Array(2...121))
        #expect(try await follower.poll() == 0 && follower.watermark == 121)
    }

    @Test("A follower behind what the outbox keeps is told to start again, and goes on from the oldest kept")
    func prunedPast() async throws {
        let d = try Deployment()
        defer { d.cleanup() }
        let store = try await SQLiteMetadataStore.open(path: d.dir + "/meta.sqlite")
        defer { Task { await store.close() } }
        try await store.migrate()
        store.eventRetention = 1_000
        let received = Received()
        // A long gap time: the consumer is told at the first read, not once the gap time is over
        // (the pruned events may be deletes, which must not wait).
        let follower = Self.follower(store, received, startAfter: 0, gapSeconds: 3_600)
        _ = try await store.addTombstones(Self.tombstones((1...3_000).map { "P_\($0)" }))
        let bounds = try #require(try await store.eventBounds())
        #expect(bounds.first > 1)
        _ = try await follower.poll()
        #expect(received.resyncs.load(ordering: .relaxed) == 1)
        #expect(received.seqs.first == bounds.first)
        _ = try await follower.poll()
        #expect(received.resyncs.load(ordering: .relaxed) == 1, "told again for the same fall-behind")
    }

    /// Runs `body` with a migrated PostgreSQL store in a schema of its own (dropped after), and
    /// the connection string that reaches that schema.
    static func withPostgresStore(_ body: (SQLMetadataStore, SQLConnectionPool, String) async throws -> Void) async throws {
        let conninfo = try testServerSetting("DES_TEST_POSTGRES")
        let schema = "des_ev_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try await PostgresConnection.connect(conninfo: conninfo, target: "test server")
        try await admin.withSession { s in try s.execute("CREATE SCHEMA \(schema)") }
        let scoped = conninfo + " options='-c search_path=\(schema)'"
        let pool = SQLConnectionPool(size: 2) { try await PostgresConnection.connect(conninfo: scoped, target: "test server") }
        let store = SQLMetadataStore(pool: pool, dialect: PostgresMetadataDialect())
        defer {
            Task {
                await store.close()
                _ = try? await admin.withSession { s in try s.execute("DROP SCHEMA \(schema) CASCADE") }
                await admin.close()
            }
        }
        try await store.migrate()
        try await body(store, pool, scoped)
    }

    @Test("On PostgreSQL, an event that commits after a later-numbered one is still delivered, once")
    func lateCommit() async throws {
        try await Self.withPostgresStore { store, _, scoped in
            let received = Received()
            let follower = Self.follower(store, received, startAfter: 0)
            // A transaction takes a number and stays open while a later one commits.
            let slow = try await PostgresConnection.connect(conninfo: scoped, target: "test server")
            defer { Task { await slow.close() } }
            try await slow.withSession { s in
                try s.execute("BEGIN")
                try s.execute("INSERT INTO des_events (kind, des_name, created_at) VALUES ('tombstone', 'LATE', 1)")
            }
            _ = try await store.addTombstones(Self.tombstones(["EARLY"]))
            _ = try await follower.poll()
            #expect(received.names == ["EARLY"])
            #expect(follower.watermark == 0)  // number 1 is still missing
            try await slow.withSession { s in try s.execute("COMMIT") }
            _ = try await follower.poll()
            _ = try await follower.poll()
            #expect(received.names == ["EARLY", "LATE"])
            #expect(received.seqs == [2, 1])
            #expect(follower.watermark == 2)
        }
    }

    @Test("A number that never commits is given up after the gap time; later events are not held back meanwhile")
    func rolledBack() async throws {
        try await Self.withPostgresStore { store, pool, _ in
            _ = try await store.addTombstones(Self.tombstones(["FIRST"]))
            let received = Received()
            let follower = Self.follower(store, received, startAfter: 1, gapSeconds: 0.2)
            try await pool.withConnection { c in
                try await c.withSession { s in
                    try s.execute("BEGIN")
                    try s.execute("INSERT INTO des_events (kind, des_name, created_at) VALUES ('tombstone', 'NEVER', 1)")
                    try s.execute("ROLLBACK")
                }
            }
            _ = try await store.addTombstones(Self.tombstones(["A"]))
            _ = try await follower.poll()
            #expect(received.names == ["A"] && follower.watermark == 1)
            try await Task.sleep(nanoseconds: 300_000_000)
            _ = try await store.addTombstones(Self.tombstones(["B"]))
            _ = try await follower.poll()
            #expect(received.names == ["A", "B"])
            #expect(follower.watermark == 4)
            #expect(received.resyncs.load(ordering: .relaxed) == 0)  // a number never committed is not a pruned outbox
        }
    }
}
