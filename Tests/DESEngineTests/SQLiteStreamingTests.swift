import DESKit
import DESPluginSQLite
import Foundation
import Synchronization
import Testing

/// `SQLSession.forEachRow` on SQLite: the rows a query returns, handed over one at a time, and
/// (read in a session, as the filesystem scanner reads its catalog) no write lock held meanwhile.
@Suite("SQLite: streamed reads")
struct SQLiteStreamingTests {
    @Test("forEachRow hands over what query returns, in order; read in a session, it lets another connection commit half-way through")
    func streamedReadLetsWritersOn() async throws {
        let d = try Deployment()
        let path = d.dir + "/streamed.sqlite"
        let setup = try await SQLiteConnection.open(path: path)
        try await setup.withTransaction { s in
            try s.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, x REAL)")
            for i in 1...2_000 { try s.execute("INSERT INTO t VALUES (?1, ?2, ?3)", [.int(Int64(i)), i % 7 == 0 ? .null : .text("v\(i)"), .double(Double(i) / 4)]) }
        }
        let sql = "SELECT id, v, x FROM t ORDER BY id"
        let queried = try await setup.withSession { try $0.query(sql, []).map(\.values) }
        let streamed = try await setup.withSession { s in
            var out: [[SQLValue]] = []
            try s.forEachRow(sql, []) { out.append($0) }
            return out
        }
        #expect(streamed.count == 2_000 && streamed == queried)

        // A writer with a short busy timeout commits while the read waits for it after its first
        // row: it could not if the read held the write lock (it would fail "database is locked").
        let writer = try await SQLiteConnection.open(path: path, create: false, busyTimeoutMilliseconds: 300)
        let committed = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        let rowsRead = try await setup.withSession { s in
            var n = 0
            try s.forEachRow(sql, []) { _ in
                n += 1
                guard n == 1 else { return }
                Task.detached {
                    do {
                        try await writer.withTransaction { try $0.execute("INSERT INTO t VALUES (5000, 'late', 0)") }
                        outcome.set("committed")
                    } catch {
                        outcome.set("\(error)")
                    }
                    committed.signal()
                }
                _ = committed.wait(timeout: .now() + 30)
            }
            return n
        }
        #expect(outcome.value == "committed")
        #expect(rowsRead == 2_000, "the read's snapshot began before the write")
        let after = try await setup.withSession { try $0.query("SELECT COUNT(*) AS n FROM t", [])[0]["n"].int }
        #expect(after == 2_001)
        await writer.close()
        await setup.close()
    }
}

/// What the writer of ``SQLiteStreamingTests`` ended with.
private final class Outcome: Sendable {
    private let state = Mutex<String?>(nil)
    func set(_ value: String) { state.withLock { $0 = value } }
    var value: String? { state.withLock { $0 } }
}
