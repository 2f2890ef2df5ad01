import DESKit
import Foundation
import Synchronization

/// One dependency's result in a ``HealthReport``.
public struct HealthCheckResult: Sendable, Equatable {
    /// What was checked: `metadata`, `storage`, or `source:<name>`.
    public var name: String
    /// Whether it answered in time.
    public var healthy: Bool
    /// How long the check took (at most the timeout).
    public var seconds: Double
    /// Why it failed (nil when healthy). Never carries a password: errors of the
    /// plugins name the server, not the credentials.
    public var error: String?
    /// Whether ``error`` is the dependency's own error text, which may name hosts, paths, SQL or
    /// the database's messages (false for the checker's own verdicts: a timeout, a probe still
    /// stuck). An HTTP answer shows such text only in the log.
    public var errorIsFromDependency: Bool

    /// Creates a result.
    public init(name: String, healthy: Bool, seconds: Double, error: String? = nil, errorIsFromDependency: Bool = false) {
        self.name = name
        self.healthy = healthy
        self.seconds = seconds
        self.error = error
        self.errorIsFromDependency = errorIsFromDependency
    }
}

/// The readiness of a process: every dependency it needs, checked at once.
public struct HealthReport: Sendable, Equatable {
    /// One result per dependency, in a stable order (metadata, storage, sources).
    public var checks: [HealthCheckResult]
    /// Set while the process drains for shutdown: it is alive but takes no new work.
    public var draining = false

    /// Creates a report.
    public init(checks: [HealthCheckResult], draining: Bool = false) {
        self.checks = checks
        self.draining = draining
    }

    /// Healthy when nothing failed and the process is not draining.
    public var healthy: Bool { !draining && checks.allSatisfy(\.healthy) }

    /// The names of the failed checks.
    public var failed: [String] { checks.filter { !$0.healthy }.map(\.name) }

    /// The report as a JSON-ready dictionary:
    /// `{"status": "ok"|"unhealthy"|"draining", "checks": {name: {"status", "seconds", "error"?}}}`.
    public var jsonObject: [String: Any] {
        var checks: [String: Any] = [:]
        for c in self.checks {
            var entry: [String: Any] = ["status": c.healthy ? "ok" : "failed", "seconds": (c.seconds * 1e4).rounded() / 1e4]
            if let e = c.error { entry["error"] = e }
            checks[c.name] = entry
        }
        let status = draining ? "draining" : (healthy ? "ok" : "unhealthy")
        var object: [String: Any] = ["status": status, "checks": checks]
        if !failed.isEmpty { object["failed"] = failed }
        return object
    }

    /// ``jsonObject`` as JSON text (keys sorted).
    public var jsonText: String {
        guard let data = try? JSONSerialization.data(withJSONObject: jsonObject, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return #"{"status":"unhealthy"}"#
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Checks the metadata store, the storage and every source, each within a timeout.
///
/// A dependency that hangs (a server that accepts connections and never answers) is
/// reported failed when the timeout passes, and its probe is cancelled. A probe that does
/// not end even then (a call blocked in a C client) is never started twice: until it ends,
/// the dependency is reported failed without a new one, so polling cannot pile probes up.
public final class HealthChecker: Sendable {
    /// A named probe: throws when the dependency is unusable.
    public typealias Probe = @Sendable () async throws -> Void

    let probes: [(String, Probe)]
    /// The most a single check may take.
    public let timeoutSeconds: Double
    private let running = Mutex<Set<String>>([])

    /// A checker over arbitrary probes (checked concurrently, reported in this order).
    public init(probes: [(String, Probe)], timeoutSeconds: Double) {
        // One probe per name, the first: a second of the same name would be refused as "the
        // previous check has not answered yet" on every report, and fail readiness for good.
        var seen: Set<String> = []
        self.probes = probes.filter { seen.insert($0.0).inserted }
        self.timeoutSeconds = timeoutSeconds
    }

    /// The checks a pipeline process needs: the metadata store (`healthCheck()`), the
    /// storage (a `HEAD` of a key that need not exist, under `probeKey`), and each source.
    /// `extra` probes are checked after them.
    public convenience init(
        metadata: (any MetadataStore)?, storage: (any StorageBackend)?, probeKey: String,
        sources: [any SourceConnector] = [], extra: [(String, Probe)] = [], timeoutSeconds: Double
    ) {
        var probes: [(String, Probe)] = []
        if let metadata { probes.append(("metadata", { try await metadata.healthCheck() })) }
        if let storage { probes.append(("storage", { _ = try await storage.head(key: probeKey) })) }
        for source in sources { probes.append(("source:\(source.name)", { try await source.healthCheck() })) }
        self.init(probes: probes + extra, timeoutSeconds: timeoutSeconds)
    }

    /// Runs every probe concurrently; returns when all have answered or timed out.
    public func check() async -> HealthReport {
        let results = await withTaskGroup(of: (Int, HealthCheckResult).self) { group in
            for (i, (name, probe)) in probes.enumerated() {
                group.addTask { (i, await self.run(name: name, probe: probe)) }
            }
            var out = [HealthCheckResult?](repeating: nil, count: probes.count)
            for await (i, r) in group { out[i] = r }
            return out.compactMap { $0 }
        }
        return HealthReport(checks: results)
    }

    /// One probe against its deadline. The probe runs in an unstructured task so that a
    /// call blocked in a C client cannot hold the report past the deadline.
    func run(name: String, probe: @escaping Probe) async -> HealthCheckResult {
        let started = running.withLock { $0.insert(name).inserted }
        guard started else {
            return HealthCheckResult(
                name: name, healthy: false, seconds: 0, error: "the previous check has not answered yet (more than \(formatSeconds(timeoutSeconds)) s)")
        }
        let start = monotonicSeconds()
        let outcome = await Self.firstOf(
            { () async -> Failure? in
                defer { _ = self.running.withLock { $0.remove(name) } }
                do {
                    try await probe()
                    return nil
                } catch is CancellationError {
                    return Failure(text: "cancelled", fromDependency: false)
                } catch {
                    return Failure(text: "\(error)", fromDependency: true)
                }
            },
            orAfter: timeoutSeconds, timedOut: Failure(text: "no answer within \(formatSeconds(timeoutSeconds)) s", fromDependency: false))
        return HealthCheckResult(
            name: name, healthy: outcome == nil, seconds: monotonicSeconds() - start, error: outcome?.text,
            errorIsFromDependency: outcome?.fromDependency ?? false)
    }

    /// Why a probe failed, and whether the words are the dependency's own.
    struct Failure: Sendable {
        var text: String
        var fromDependency: Bool
    }

    /// The result of `work`, or `timedOut` when `seconds` pass first (and `work` is cancelled).
    static func firstOf(
        _ work: @escaping @Sendable () async -> Failure?, orAfter seconds: Double, timedOut: Failure
    ) async -> Failure? {
        await withCheckedContinuation { (c: CheckedContinuation<Failure?, Never>) in
            let once = ResumeOnce(c)
            let worker = Task {
                let value = await work()
                once.resume(value)
            }
            Task {
                try? await Task.sleep(nanoseconds: nanoseconds(seconds))
                if once.resume(timedOut) { worker.cancel() }
            }
        }
    }
}

/// A continuation resumed by whichever of two racers comes first.
private final class ResumeOnce: Sendable {
    private let slot: Mutex<CheckedContinuation<HealthChecker.Failure?, Never>?>
    init(_ c: CheckedContinuation<HealthChecker.Failure?, Never>) { slot = Mutex(c) }
    /// Resumes with `value` if nobody did; whether this call did.
    @discardableResult
    func resume(_ value: HealthChecker.Failure?) -> Bool {
        let c = slot.withLock { s -> CheckedContinuation<HealthChecker.Failure?, Never>? in
            defer { s = nil }
            return s
        }
        c?.resume(returning: value)
        return c != nil
    }
}

private func formatSeconds(_ s: Double) -> String {
    s == s.rounded() ? String(Int(s)) : String(format: "%.2f", s)
}
