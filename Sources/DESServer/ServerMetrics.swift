import Prometheus
import Synchronization

/// The service's own metrics, made in its Prometheus registry (so each server counts
/// its own requests exactly, whatever else the process measures):
///
/// - `des_http_requests_total{route, method, status}`
/// - `des_http_request_duration_seconds{route, method, status}` (histogram)
/// - `des_http_requests_in_flight`
/// - `des_index_cache_requests_total{result="hit"|"miss"}`
/// - `des_storage_requests_total{operation}` (every read the service makes of storage)
/// - `des_assign_names_total`
public final class ServerMetrics: Sendable {
    /// The registry `/metrics` emits.
    public let registry: PrometheusCollectorRegistry
    private let requestCounters = Mutex<[String: Counter]>([:])
    private let durations = Mutex<[String: DurationHistogram]>([:])
    let inFlight: Gauge
    let cacheHits: Counter
    let cacheMisses: Counter
    let assigned: Counter
    private let storageCounters = Mutex<[String: Counter]>([:])

    static let buckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5),
    ]

    /// Metrics in `registry`.
    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        inFlight = registry.makeGauge(name: "des_http_requests_in_flight", help: "HTTP requests being served")
        cacheHits = registry.makeCounter(
            name: "des_index_cache_requests_total", labels: [("result", "hit")], help: "Index cache lookups by the HTTP service")
        cacheMisses = registry.makeCounter(
            name: "des_index_cache_requests_total", labels: [("result", "miss")], help: "Index cache lookups by the HTTP service")
        assigned = registry.makeCounter(name: "des_assign_names_total", help: "Names given by /assign")
    }

    /// Counts one request and its duration.
    func record(route: String, method: String, status: Int, duration: Duration) {
        let key = route + " " + method + " " + String(status)
        let counter = requestCounters.withLock { map in
            let k = key
            if let c = map[k] { return c }
            let c = registry.makeCounter(
                name: "des_http_requests_total", labels: [("route", route), ("method", method), ("status", String(status))],
                help: "HTTP requests by route, method and status")
            map[k] = c
            return c
        }
        counter.increment()
        let histogram = durations.withLock { map in
            if let h = map[key] { return h }
            let h = registry.makeDurationHistogram(
                name: "des_http_request_duration_seconds", labels: [("route", route), ("method", method), ("status", String(status))],
                buckets: Self.buckets, help: "HTTP request latency by route, method and status")
            map[key] = h
            return h
        }
        histogram.record(duration)
    }

    /// Counts one storage request.
    func storageRequest(_ operation: String) {
        let counter = storageCounters.withLock { map in
            if let c = map[operation] { return c }
            let c = registry.makeCounter(
                name: "des_storage_requests_total", labels: [("operation", operation)], help: "Storage requests made by the HTTP service")
            map[operation] = c
            return c
        }
        counter.increment()
    }
}
