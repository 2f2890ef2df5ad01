import DESKit
import DESNaming
import Foundation
import Logging

/// What a packer works with and never changes while it runs: its configuration, its sources,
/// the metadata store and storage, its identity and lease book, and the helpers its background
/// tasks share. Sendable, so that claims, fetches, finalizations and marks running off the
/// packer's own task capture this one value.
struct PackerContext: Sendable {
    /// The sources, in configured order.
    let sources: [PackerSource]
    let metadata: any MetadataStore
    let storage: any StorageBackend
    /// The storage key prefix containers are written under.
    let keyPrefix: String
    let config: PackerConfig
    let logger: Logger
    /// This incarnation's identity: the pod, and an instance naming this process (``ProcessIdentity``).
    let holder: LeaseHolder
    let assignment: ShardAssignment
    /// The leases held, shared with the heartbeat.
    let book: LeaseBook
    let metrics: PackerMetrics
    let recovery: Recovery
    /// Retries metadata-store and storage calls (a lock held for half a minute is ridden out).
    let retry: RetryPolicy
    /// Closes containers (the index written, the file synced) off the cooperative pool.
    let closer: DedicatedThread
    /// This pod's folder of work directories (one per instance).
    let podDir: String
    /// This instance's work directory.
    let workDir: String
    private let sourceIndex: [String: Int]

    init(parts: Packer.Parts, config: PackerConfig, logger: Logger) throws {
        var index: [String: Int] = [:]
        for (i, source) in parts.sources.enumerated() {
            guard index.updateValue(i, forKey: source.name) == nil else {
                throw DESKitError(.configuration, "packer: two sources are named '\(source.name)'")
            }
        }
        self.sourceIndex = index
        self.claimLimits = Dictionary(
            parts.sources.map { ($0.name, $0.policy.claimBatchSize ?? config.batchSize) }, uniquingKeysWith: { first, _ in first })
        self.sources = parts.sources
        self.metadata = parts.metadata
        self.storage = parts.storage
        self.keyPrefix = parts.keyPrefix
        self.config = config
        self.logger = logger
        let pod = config.podName ?? "\(ProcessInfo.processInfo.hostName)-\(config.podIndex)"
        if let name = config.podName, let problem = PackerConfig.podNameProblem(name) {
            throw DESKitError(.configuration, "packer: pod name \(problem)")
        }
        let instance = ProcessIdentity.current.token + "." + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        self.holder = LeaseHolder(pod: pod, instance: instance)
        do {
            self.assignment = try ShardAssignment(shardBits: config.shardBits, podIndex: config.podIndex, podCount: config.podCount)
        } catch {
            throw DESKitError(.configuration, "packer: \(error)")
        }
        self.metrics = PackerMetrics()
        self.book = LeaseBook(gauge: metrics.leasesHeld)
        self.recovery = Recovery(sources: parts.sources.map(\.connector), metadata: parts.metadata, storage: parts.storage, logger: logger)
        self.retry = .metadata
        self.closer = DedicatedThread(name: "des-packer-close")
        let safePod = pod.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }
        self.podDir = (config.workDir as NSString).appendingPathComponent(String(safePod))
        self.workDir = (podDir as NSString).appendingPathComponent(instance)
    }

    /// The source named `name`.
    func source(_ name: String) -> PackerSource? { sourceIndex[name].map { sources[$0] } }

    /// Rows per claim, by source name: each source's `batch_size`, or `packer.batch_size`.
    let claimLimits: [String: Int]

    /// The claim timeout of the source named `name`: its own, else the packer's.
    func claimTimeout(_ name: String) -> Double { source(name)?.policy.claimTimeoutSeconds ?? config.claimTimeoutSeconds }
}
