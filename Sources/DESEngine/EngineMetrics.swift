import Metrics

/// The marker's metrics, named as in the original design (docs/operations.md lists them).
struct MarkerMetrics: Sendable {
    let marked = Counter(label: "des_marker_entries_marked_total", dimensions: [("status", "success")])
    let markFailed = Counter(label: "des_marker_entries_marked_total", dimensions: [("status", "failed")])
    let batchDuration = Timer(label: "des_marker_batch_duration_seconds", preferredDisplayUnit: .seconds)
    let retries = Counter(label: "des_marker_retries_total")
    let deadLetters = Counter(label: "des_marker_dlq_entries_total")

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
    let leasesLost = Counter(label: "des_packer_leases_lost_total")
    let claimDuration = Timer(label: "des_packer_claim_duration_seconds", preferredDisplayUnit: .seconds)
    let finalizeDuration = Timer(label: "des_packer_finalize_duration_seconds", preferredDisplayUnit: .seconds)
    let openContainers = Gauge(label: "des_packer_open_containers")

    func error(_ type: String) {
        Counter(label: "des_packer_errors_total", dimensions: [("error_type", type)]).increment()
    }
}
