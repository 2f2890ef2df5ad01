#if canImport(Glibc)
import DESKit
import Glibc
#endif
import Logging
import NIOCore
import Synchronization

/// Sheds idle and slow clients, so that no number of them can keep the service from answering.
///
/// - **Header timeout** (`server.header_timeout`): a request must arrive whole — its head, and
///   its body if any — within this long of its first byte (for the first request of a
///   connection, of connecting). A client that connects and sends nothing, or trickles a
///   request line, is closed when it passes.
/// - **Idle timeout** (`server.idle_timeout`): a kept-alive connection waiting for its next
///   request is closed after this long; so is one whose answer its client has not read (the
///   connection could not be written to) for this long (`send_stalled`).
/// - **Connection limit** (`server.max_connections`, never more than the descriptor limit
///   leaves room for, see ``effectiveLimit(configured:)``): a connection arriving at the limit
///   closes the open connection that has waited longest on its client — idle, still sending its
///   request (head or body), or not reading its answer — as nginx reuses idle keep-alive
///   connections; when every open connection is being served to a client that reads, the
///   newcomer is closed instead.
///
/// A request served to a client that reads is never timed out here (storage and metadata calls
/// have their own deadlines). Closes are counted in `des_http_connections_closed_total{reason}`.
public final class ConnectionGuard: Sendable {
    /// Why the server closed a connection.
    public enum CloseReason: String, CaseIterable, Sendable {
        /// A request did not arrive whole within the header timeout.
        case headerTimeout = "header_timeout"
        /// A kept-alive connection waited longer than the idle timeout.
        case idleTimeout = "idle_timeout"
        /// The oldest waiting connection, closed to make room for a new one at the limit.
        case shed
        /// A new connection, closed at the limit because every open one was being served.
        case refused
        /// An answer its client did not read (the connection could not be written to) for the idle timeout.
        case sendStalled = "send_stalled"
    }

    /// One open connection, as the guard sees it from any thread.
    final class Connection: Sendable {
        let id: UInt64
        let channel: any Channel
        /// Whether it may be shed: no request of it is being served (waiting, or sending a head).
        let sheddable = Atomic<Bool>(true)
        /// Since when (monotonic nanoseconds) it has been waiting or sending its head.
        let since: Atomic<UInt64>

        init(id: UInt64, channel: any Channel) {
            self.id = id
            self.channel = channel
            self.since = Atomic(NIODeadline.now().uptimeNanoseconds)
        }
    }

    /// The most connections open at once.
    public let limit: Int
    /// The header timeout.
    let headerTimeout: TimeAmount
    /// The idle timeout.
    let idleTimeout: TimeAmount
    let metrics: ServerMetrics
    let logger: Logger
    private let open = Mutex<[UInt64: Connection]>([:])
    private let nextID = Atomic<UInt64>(0)

    /// A guard with these bounds (`limit` as ``effectiveLimit(configured:)`` gives it).
    init(limit: Int, headerTimeoutSeconds: Double, idleTimeoutSeconds: Double, metrics: ServerMetrics, logger: Logger) {
        self.limit = max(1, limit)
        self.headerTimeout = .nanoseconds(Int64(headerTimeoutSeconds * 1e9))
        self.idleTimeout = .nanoseconds(Int64(idleTimeoutSeconds * 1e9))
        self.metrics = metrics
        self.logger = logger
    }

    /// Channels (open, or shed and not yet closed) past which accepting pauses: the limit and
    /// half the descriptors ``effectiveLimit(configured:)`` keeps in reserve.
    var acceptCeiling: Int { limit + Self.closingSlack }

    /// Shed connections still closing that may lag behind the limit before accepting pauses.
    static let closingSlack = 32

    /// The connections open now.
    var openCount: Int { open.withLock { $0.count } }

    /// A record for a new connection on `channel`.
    func makeConnection(_ channel: any Channel) -> Connection {
        Connection(id: nextID.add(1, ordering: .relaxed).newValue, channel: channel)
    }

    /// Takes `connection` in: at the limit, the connection waiting longest is closed to make
    /// room; when none is waiting, false (the caller closes the newcomer).
    func admit(_ connection: Connection) -> Bool {
        let (admitted, victim, count) = open.withLock { map -> (Bool, Connection?, Int) in
            var victim: Connection? = nil
            if map.count >= limit {
                var oldest: (Connection, UInt64)? = nil
                for c in map.values where c.sheddable.load(ordering: .relaxed) {
                    let since = c.since.load(ordering: .relaxed)
                    if oldest == nil || since < (oldest?.1 ?? .max) { oldest = (c, since) }
                }
                guard let (chosen, _) = oldest else { return (false, nil, map.count) }
                map[chosen.id] = nil
                victim = chosen
            }
            map[connection.id] = connection
            return (true, victim, map.count)
        }
        metrics.connectionsOpen.set(Int64(count))
        if let victim {
            logger.debug("connection limit reached: closing the longest-waiting connection", metadata: ["limit": "\(limit)"])
            closed(.shed)
            victim.channel.close(mode: .all, promise: nil)
        }
        if !admitted {
            logger.notice("connection limit reached and every connection is being served: refusing a new one", metadata: ["limit": "\(limit)"])
            closed(.refused)
        }
        return admitted
    }

    /// Forgets a closed connection (nothing when it was shed already).
    func remove(_ connection: Connection) {
        let count = open.withLock { map -> Int in
            if map[connection.id] === connection { map[connection.id] = nil }
            return map.count
        }
        metrics.connectionsOpen.set(Int64(count))
    }

    /// Counts a close.
    func closed(_ reason: CloseReason) {
        metrics.connectionsClosed[reason]?.increment()
    }

    /// `configured`, lowered when the process's descriptor limit (`RLIMIT_NOFILE`, soft) leaves
    /// less room: 64 descriptors (half the limit when it is under 128) stay for everything else
    /// the process opens (storage and database connections, files, the event loops), and as many
    /// again as local storage may keep container files open (``DescriptorBudget/containerFiles``),
    /// so that accepting a connection never fails for want of one. `logger` hears when it is lowered.
    public static func effectiveLimit(configured: Int, logger: Logger? = nil) -> Int {
        guard let soft = DescriptorBudget.softLimit else { return configured }
        // The server's own descriptors, and the container files local storage keeps open.
        let reserve = (soft > 128 ? 64 : soft / 2) + DescriptorBudget.containerFiles
        let room = max(1, soft - reserve)
        if room < configured {
            logger?.notice(
                "server.max_connections lowered to what the descriptor limit leaves room for",
                metadata: ["configured": "\(configured)", "effective": "\(room)", "nofile": "\(soft)"])
            return room
        }
        return configured
    }
}
