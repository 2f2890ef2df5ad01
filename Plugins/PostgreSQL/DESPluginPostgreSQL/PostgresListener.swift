import CLibPQ
import DESKit
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A connection that has run `LISTEN des_events` and waits for the notifications the metadata
/// store's transactions send when they commit events: a wake-up, never the record (the events
/// are read from the outbox table, so a notification lost with a dropped connection loses nothing).
public final class PostgresListener: SQLEventListener, @unchecked Sendable {
    // `handle` is touched only on `thread`.
    private let thread = DedicatedThread(name: "des-postgres-listen")
    private var handle: OpaquePointer?
    /// The schema its store writes to (`current_schema()`): only notifications naming it wake it.
    private var schema = ""
    /// Where the connection goes (no secrets), for messages.
    public let target: String

    private init(target: String) { self.target = target }

    deinit {
        if let handle { PQfinish(handle) }
        thread.stop()
    }

    /// Connects and listens on `channel`.
    public static func listen(conninfo: String, target: String, channel: String = "des_events") async throws -> PostgresListener {
        let listener = PostgresListener(target: target)
        try await listener.thread.run { try listener.connectOnThread(conninfo, channel: channel) }
        return listener
    }

    private func connectOnThread(_ conninfo: String, channel: String) throws {
        guard let conn = PQconnectdb(conninfo), PQstatus(conn) == CONNECTION_OK else {
            throw SQLError(code: "08001", message: "cannot connect to PostgreSQL at \(target) to listen for events", isTransient: true)
        }
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        guard let result = PQexec(conn, "LISTEN \(channel)") else {
            PQfinish(conn)
            throw SQLError(code: "08006", message: "LISTEN failed at \(target)", isTransient: true)
        }
        let ok = PQresultStatus(result) == PGRES_COMMAND_OK
        PQclear(result)
        guard ok, let current = PQexec(conn, "SELECT current_schema()") else {
            PQfinish(conn)
            throw SQLError(code: "08006", message: "LISTEN \(channel) was refused at \(target)", isTransient: true)
        }
        if PQresultStatus(current) == PGRES_TUPLES_OK, PQntuples(current) == 1, let value = PQgetvalue(current, 0, 0) {
            schema = String(cString: value)
        }
        PQclear(current)
        handle = conn
    }

    public func wait(timeoutSeconds: Double) async throws -> Bool {
        try await thread.run { [self] in
            guard let handle else { throw SQLError(code: "08003", message: "the event listener is closed") }
            if drain(handle) { return true }
            // Notifications for other schemas' stores come on the same channel: wait on past them.
            let deadline = Date().addingTimeInterval(max(0, min(timeoutSeconds, 60)))
            while true {
                let remaining = deadline.timeIntervalSinceNow
                guard remaining > 0 else { return false }
                var fd = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
                guard fd.fd >= 0 else { throw SQLError(code: "08006", message: "the event listener lost its connection to \(target)", isTransient: true) }
                let ready = poll(&fd, 1, Int32((remaining * 1000).rounded(.up)))
                if ready < 0 && errno != EINTR { throw SQLError(code: "08006", message: "waiting for events failed", isTransient: true) }
                guard ready > 0 else { continue }
                guard PQconsumeInput(handle) == 1 else {
                    throw SQLError(code: "08006", message: "the event listener lost its connection to \(target)", isTransient: true)
                }
                if drain(handle) { return true }
            }
        }
    }

    /// Takes every notification already received; true when one was for this store's schema.
    private func drain(_ handle: OpaquePointer) -> Bool {
        var ours = false
        while let note = PQnotifies(handle) {
            if let extra = note.pointee.extra, String(cString: extra) == schema { ours = true }
            PQfreemem(note)
        }
        return ours
    }

    public func close() async {
        _ = try? await thread.run { [self] in
            if let handle { PQfinish(handle) }
            handle = nil
        }
        thread.stop()
    }
}
