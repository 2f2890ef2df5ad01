import DESEngine
import DESKit
import Foundation
import Hummingbird
import HummingbirdTLS
import HummingbirdCore
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization

/// The DES HTTP service (Hummingbird 2): `POST /assign`, `GET|HEAD /files/{name}`,
/// `GET /health`, `/health/live`, `/health/ready` and `GET /metrics`.
///
/// `des serve` runs every route; a worker's `--metrics-port` runs the health and metrics
/// routes only. The service is a swift-service-lifecycle `Service` (``application(onRunning:)``);
/// put a ``DrainGate`` last in its group so that readiness turns 503 before the listener closes.
public struct DESHTTPServer: Sendable {
    /// What the service serves.
    public struct Routes: OptionSet, Sendable {
        /// The bits of the set.
        public let rawValue: Int
        /// A set from its bits.
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// `POST /assign`.
        public static let assign = Routes(rawValue: 1)
        /// `GET|HEAD /files/{name}`.
        public static let files = Routes(rawValue: 2)
        /// `/health`, `/health/live`, `/health/ready` and `/metrics`.
        public static let observability = Routes(rawValue: 4)
        /// Everything (`des serve`).
        public static let all: Routes = [.assign, .files, .observability]
    }

    /// What the routes read from.
    public struct Parts: Sendable {
        /// The metadata store (container lists; readiness).
        public var metadata: any MetadataStore
        /// The container storage.
        public var storage: any StorageBackend
        /// The index cache.
        public var cache: (any IndexCache)?
        /// The packer's shard bits (shards of names).
        public var shardBits: Int
        /// The checks of `/health/ready`.
        public var readiness: Readiness
        /// Files found by their path (`GET /files/by-path/…`): the config's filesystem sources.
        public var paths: PathLookup

        /// Creates the parts.
        public init(
            metadata: any MetadataStore, storage: any StorageBackend, cache: (any IndexCache)?, shardBits: Int, readiness: Readiness,
            paths: PathLookup = PathLookup(indexes: [])
        ) {
            self.paths = paths
            self.metadata = metadata
            self.storage = storage
            self.cache = cache
            self.shardBits = shardBits
            self.readiness = readiness
        }
    }

    let settings: ServerSettings
    let routes: Routes
    let logger: Logger
    /// The service's metrics (and, through the same registry, the process's).
    public let metrics: ServerMetrics
    let assigner: NameAssigner
    let locator: FileLocator
    let fileBody: FileBody
    let readiness: Readiness
    /// Deletes, polled from the metadata store (run ``tombstonePoller`` beside the server).
    let tombstones: TombstoneWatcher
    /// Who may call the API (replaced by ``reloadCredentials(from:)``).
    let authenticator: Authenticator
    /// The metadata store's events, followed (nil when `followEvents` is off).
    let follower: EventFollower?
    /// Records `DELETE /files/{name}`.
    let deleter: FileDeleter
    /// Finds files by path.
    let paths: PathLookup
    let started = monotonicSeconds()

    /// The service that keeps what the server knows current — the metadata store's events
    /// followed, and the polls of deletes behind them: run it in the server's service group
    /// whenever `/files` is served.
    public var tombstonePoller: some Service { ServerSync(tombstones: tombstones, follower: follower) }

    /// A server over `parts`; its metrics go to `registry`, which `/metrics` emits whole.
    public init(parts: Parts, settings: ServerSettings, routes: Routes = .all, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.settings = settings
        self.routes = routes
        self.logger = logger
        let metrics = ServerMetrics(registry: registry)
        self.metrics = metrics
        self.assigner = NameAssigner(node: settings.nodeID, shardBits: parts.shardBits)
        let reader = StorageArchiveReader(
            storage: RequestCountingStorage(base: parts.storage) { metrics.storageRequest($0) },
            cache: parts.cache.map { CountingIndexCache(base: $0, metrics: metrics) })
        let link = FollowerLink()
        let locator = FileLocator(
            metadata: parts.metadata, reader: reader, shardBits: parts.shardBits, refreshSeconds: settings.containerRefreshSeconds,
            locatedCapacity: settings.locatedCacheEntries, fallbackRefreshSeconds: settings.fallbackRefreshSeconds,
            following: { link.isCurrent })
        self.locator = locator
        self.fileBody = FileBody(
            locator: locator, metrics: metrics, verifyMaxBytes: settings.verifyMaxBytes,
            bodies: BodyCache(budget: Int(settings.bodyCacheBytes)), confirmSeconds: settings.containerRefreshSeconds)
        self.readiness = parts.readiness
        self.paths = parts.paths
        let tombstones = TombstoneWatcher(metadata: parts.metadata, pollSeconds: settings.tombstonePollSeconds, logger: logger)
        self.tombstones = tombstones
        authenticator = Authenticator(.init(settings.credentials))
        if settings.followEvents {
            let follower = EventFollower(
                metadata: parts.metadata, settings: settings.events, logger: logger,
                resync: {
                    locator.forgetAll()
                    try? await tombstones.poll()
                },
                deliver: { events in
                    for case let name? in events.filter({ $0.kind == .tombstone }).map(\.name) { tombstones.insert(name) }
                    await locator.apply(events)
                })
            link.set(follower)
            self.follower = follower
        } else {
            self.follower = nil
        }
        self.deleter = FileDeleter(
            sources: [], metadata: parts.metadata, storage: parts.storage, cache: parts.cache, shardBits: parts.shardBits, logger: logger)
    }

    /// Whether the API checks credentials now (static tokens or JWT keys).
    public var checksCredentials: Bool { authenticator.isConfigured }

    /// Puts `credentials` (static tokens and JWT keys) in force for the requests that start from
    /// now on.
    public func reloadCredentials(_ credentials: ServerCredentials) {
        authenticator.replace(with: .init(credentials))
    }

    /// The router with every enabled route and the middleware (metrics and request ids on all,
    /// auth on the API).
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        let allowed = AllowedMethods()
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        router.add(middleware: RequestIDMiddleware(allowed: allowed))
        if routes.contains(.observability) {
            addHealthRoutes(to: router)
        }
        let api = router.group().add(middleware: BearerAuthMiddleware(authenticator: authenticator))
        if routes.contains(.assign) {
            addAssignRoute(to: api)
        }
        if routes.contains(.files) {
            addFileRoutes(to: api)
        }
        if routes.contains(.files) || routes.contains(.assign) {
            // The contract of the API this server serves (open, like /health and /metrics).
            let document: @Sendable (Request, BasicRequestContext) async throws -> Response = { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.json + "\n")))
            }
            router.get("/openapi.json", use: document)
            router.head("/openapi.json") { request, context in Self.headersOnly(try await document(request, context)) }
        }
        allowed.set(router.routes)
        return router
    }

    /// The listen backlog asked for.
    static let acceptBacklog = 4_096

    /// The HTTP application, a `Service`: `onRunning` gets the port it listens on. Its
    /// connections are guarded (``ConnectionGuard``): header and idle timeouts, and a limit.
    public func application(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some Service {
        let listening = Listening()
        return Listener(
            application: try hummingbird { port in
                listening.begin()
                await onRunning(port)
            }, address: "\(settings.host):\(settings.port)", listening: listening)
    }

    /// The Hummingbird application behind ``application(onRunning:)``.
    private func hummingbird(onRunning: @escaping @Sendable (Int) async -> Void) throws -> some Service {
        let connections = ConnectionGuard(
            limit: ConnectionGuard.effectiveLimit(configured: settings.maxConnections, logger: logger),
            headerTimeoutSeconds: settings.headerTimeoutSeconds, idleTimeoutSeconds: settings.idleTimeoutSeconds, metrics: metrics,
            logger: logger)
        let http = GuardedHTTP1Channel.builder(guard: connections)
        return Application(
            router: router(),
            // With TLS, each connection's TLS handshake comes first, then the same guarded HTTP/1.1.
            server: try settings.tls.map { try HTTPServerBuilder.tls(http, tlsConfiguration: $0) } ?? http,
            // A deep accept queue (the kernel caps it at net.core.somaxconn): a burst of connections
            // waits there while the guard sheds, instead of having its SYNs dropped (a 1 s retry each).
            configuration: ApplicationConfiguration(
                address: .hostname(settings.host, port: settings.port), serverName: "des", backlog: Self.acceptBacklog,
                // A backstop under the guard: shed connections close on their own event loops, a moment
                // later; accepting pauses (rather than failing for want of descriptors) while that many lag.
                availableConnectionsDelegate: MaximumAvailableConnections(connections.acceptCeiling, logger: logger)),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}

/// The HTTP application as a service whose failure to listen (the port taken, an address that
/// is not this machine's, a host name that does not resolve) is a ``DESKitError`` naming the
/// address, `unavailable` (exit 69), rather than NIO's words about `bind(descriptor:ptr:bytes:)`.
struct Listener<Inner: Service>: Service, CustomStringConvertible {
    let application: Inner
    let address: String
    /// Whether it listened: a failure after that (an accept that fails) is not a failure to listen.
    let listening: Listening
    var description: String { "http \(address)" }

    func run() async throws {
        do {
            try await application.run()
        } catch let error as IOError where !listening.began {
            throw DESKitError(.unavailable, "cannot listen on \(address): \(String(cString: strerror(error.errnoCode)))")
        } catch let error as SocketAddressError where !listening.began {
            throw DESKitError(.unavailable, "cannot listen on \(address): \(error)")
        }
    }
}

/// Set once the listener is bound.
final class Listening: Sendable {
    private let state = Mutex(false)
    func begin() { state.withLock { $0 = true } }
    var began: Bool { state.withLock { $0 } }
}
