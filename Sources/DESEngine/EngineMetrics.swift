import Metrics

/// The marker's metrics, named as in the original design (docs/operations.md lists them).
struct MarkerMetrics: Sendable {
    let marked = Counter(label: "des_marker_entries_marked_total", dimensions: [("status", "success")])
    let markFailed = Counter(label: "des_marker_entries_marked_total", dimensions: [("status", "failed")])
    let batchDuration = Timer(label: "des_marker_batch_duration_seconds", preferredDisplayUnit: .seconds)
    let retries = Counter(label: "des_marker_retries_total")
    let deadLetters = Counter(label: "des_marker_dlq_entries_total")
    /// The common error types, at zero from the start: a `rate()` alert then sees the first error.
    let knownErrors = ["database", "database_transient", "unavailable"].map {
        Counter(label: "des_marker_errors_total", dimensions: [("error_type", $0)])
    }

    func error(_ type: String) {
        Counter(label: "des_marker_errors_total", dimensions: [("error_type", type)]).increment()
    }
}

/// The packer's metrics.
struct PackerMetrics: Sendable {
    let filesPacked = Counter(label: "des_packer_files_packed_total")
    let bytesPacked = Counter(label: "des_packer_bytes_packed_total")
    let filesFailed = Counter(label: "des_packer_files_failed_total")
    let containersUploaded = Counter(label: "des_packer_containers_uploaded_total")
    /// Bytes of the containers uploaded (their objects' sizes, index and all).
    let bytesUploaded = Counter(label: "des_packer_bytes_uploaded_total")
    let leasesLost = Counter(label: "des_packer_leases_lost_total")
    /// Shard leases held now.
    let leasesHeld = Gauge(label: "des_packer_leases_held")
    /// Metadata writes refused under a fencing token that is no longer the shard's.
    let fencingRejections = FencingMetrics.counter(worker: "packer")
    let claimDuration = Timer(label: "des_packer_claim_duration_seconds", preferredDisplayUnit: .seconds)
    let finalizeDuration = Timer(label: "des_packer_finalize_duration_seconds", preferredDisplayUnit: .seconds)
    let openContainers = Gauge(label: "des_packer_open_containers")
    /// The known error types, at zero from the start (see ``MarkerMetrics/knownErrors``).
    let knownErrors = [Counter(label: "des_packer_errors_total", dimensions: [("error_type", "mixed_claim_mode")])]

    func error(_ type: String) {
        Counter(label: "des_packer_errors_total", dimensions: [("error_type", type)]).increment()
    }
}

/// `des_fencing_rejections_total{worker}`: writes the metadata store refused because the writer's
/// lease (its fencing token) was no longer the shard's.
enum FencingMetrics {
    /// The counter of `worker` (`packer`, `compactor`).
    static func counter(worker: String) -> Counter {
        Counter(label: "des_fencing_rejections_total", dimensions: [("worker", worker)])
    }
}
