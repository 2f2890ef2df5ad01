import Prometheus
import Synchronization

/// The service's own metrics, made in its Prometheus registry (so each server counts
/// its own requests exactly, whatever else the process measures):
///
/// - `des_http_requests_total{route, method, status}`
/// - `des_http_request_duration_seconds{route, method, status}` (histogram)
/// - `des_http_requests_in_flight`
/// - `des_index_cache_requests_total{result="hit"|"miss"}`
/// - `des_body_cache_requests_total{result="hit"|"miss"}` (bodies answered from memory; a miss is
///   counted only for a body small enough to be kept) and `des_body_cache_bytes`
/// - `des_storage_requests_total{operation}` (every read the service makes of storage)
/// - `des_assign_names_total`
/// - `des_read_checksum_failures_total` (bodies read from storage that did not hash to their META sha256)
/// - `des_http_connections_open` and `des_http_connections_closed_total{reason}` (see ``ConnectionGuard``)
public final class ServerMetrics: Sendable {
    /// The registry `/metrics` emits.
    public let registry: PrometheusCollectorRegistry
    /// The count and the latency histogram of each (route, method, status), made on first use.
    private let perRequest = Mutex<[String: (count: Counter, duration: DurationHistogram)]>([:])
    let inFlight: Gauge
    let cacheHits: Counter
    let cacheMisses: Counter
    let bodyCacheHits: Counter
    let bodyCacheMisses: Counter
    let bodyCacheBytes: Gauge
    let assigned: Counter
    let checksumFailures: Counter
    let connectionsOpen: Gauge
    /// Connections the server closed, by why: `header_timeout`, `idle_timeout`, `shed` (the oldest
    /// idle one, to make room at the limit), `refused` (at the limit with none idle), `send_stalled`
    /// (an answer its client did not read for the idle timeout).
    let connectionsClosed: [ConnectionGuard.CloseReason: Counter]
    private let storageCounters = Mutex<[String: Counter]>([:])

    static let buckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5),
    ]

    /// A metric's whole name (the descriptor joins its non-empty parts) and its help text.
    static func name(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Metrics in `registry`.
    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        inFlight = registry.makeGauge(descriptor: Self.name("des_http_requests_in_flight", "HTTP requests being served"))
        let cache = Self.name("des_index_cache_requests_total", "Index cache lookups by the HTTP service")
        cacheHits = registry.makeCounter(descriptor: cache, labels: [("result", "hit")])
        cacheMisses = registry.makeCounter(descriptor: cache, labels: [("result", "miss")])
        let bodies = Self.name("des_body_cache_requests_total", "Checked bodies answered from memory (hit) or read and kept (miss)")
        bodyCacheHits = registry.makeCounter(descriptor: bodies, labels: [("result", "hit")])
        bodyCacheMisses = registry.makeCounter(descriptor: bodies, labels: [("result", "miss")])
        bodyCacheBytes = registry.makeGauge(descriptor: Self.name("des_body_cache_bytes", "Bytes of checked bodies kept in memory"))
        assigned = registry.makeCounter(descriptor: Self.name("des_assign_names_total", "Names given by /assign"))
        checksumFailures = registry.makeCounter(
            descriptor: Self.name("des_read_checksum_failures_total", "Bodies read from storage whose sha256 is not the one META records"))
        connectionsOpen = registry.makeGauge(descriptor: Self.name("des_http_connections_open", "Client connections open"))
        let closed = Self.name("des_http_connections_closed_total", "Client connections the server closed, by reason")
        var byReason: [ConnectionGuard.CloseReason: Counter] = [:]
        for reason in ConnectionGuard.CloseReason.allCases {
            byReason[reason] = registry.makeCounter(descriptor: closed, labels: [("reason", reason.rawValue)])
        }
        connectionsClosed = byReason
    }

    /// Counts one request and its duration.
    func record(route: String, method: String, status: Int, duration: Duration) {
        let metrics = perRequest.withLock { map in
            let key = route + " " + method + " " + String(status)
            if let known = map[key] { return known }
            let labels = [("route", route), ("method", method), ("status", String(status))]
            let made = (
                count: registry.makeCounter(
                    descriptor: Self.name("des_http_requests_total", "HTTP requests by route, method and status"), labels: labels),
                duration: registry.makeDurationHistogram(
                    descriptor: Self.name("des_http_request_duration_seconds", "HTTP request latency by route, method and status"),
                    labels: labels, buckets: Self.buckets)
            )
            map[key] = made
            return made
        }
        metrics.count.increment()
        metrics.duration.record(duration)
    }

    /// Counts one storage request.
    func storageRequest(_ operation: String) {
        let counter = storageCounters.withLock { map in
            if let c = map[operation] { return c }
            let c = registry.makeCounter(
                descriptor: Self.name("des_storage_requests_total", "Storage requests made by the HTTP service"),
                labels: [("operation", operation)])
            map[operation] = c
            return c
        }
        counter.increment()
    }
}
