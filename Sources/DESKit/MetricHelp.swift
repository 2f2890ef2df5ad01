import Synchronization

/// What each metric means, for the `# HELP` lines of `/metrics`.
///
/// Metrics made through swift-metrics (`Counter(label:)`, `Gauge`, `Timer`) carry no help text,
/// and a Prometheus exposition without it fails `promtool check metrics`. DES's own are
/// described here; a plugin describes its own with ``describe(_:_:)`` when it registers.
/// `/metrics` then writes a `# HELP` line before the `# TYPE` line of every described metric
/// that has none (``addingHelp(to:)``).
public enum MetricHelp {
    private static let texts = Mutex<[String: String]>(builtIn)

    /// Describes the metric `name` (its base name, without `_bucket`, `_sum` or `_count`).
    public static func describe(_ name: String, _ help: String) {
        texts.withLock { $0[name] = help }
    }

    /// The help text of `name`, if it is described.
    public static func text(for name: String) -> String? {
        texts.withLock { $0[name] }
    }

    /// `exposition` (Prometheus text format) with a `# HELP` line before each `# TYPE` line of a
    /// described metric that has no `# HELP` line yet.
    public static func addingHelp(to exposition: [UInt8]) -> [UInt8] {
        let known = texts.withLock { $0 }
        let typePrefix = Array("# TYPE ".utf8)
        let helpPrefix = Array("# HELP ".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(exposition.count + 4_096)
        var helped: Set<String> = []
        var start = 0
        while start < exposition.count {
            var end = start
            while end < exposition.count && exposition[end] != UInt8(ascii: "\n") { end += 1 }
            let line = exposition[start..<end]
            if line.starts(with: helpPrefix), let name = metricName(line.dropFirst(helpPrefix.count)) {
                helped.insert(name)
            } else if line.starts(with: typePrefix), let name = metricName(line.dropFirst(typePrefix.count)), !helped.contains(name),
                let help = known[name]
            {
                out += helpPrefix
                out += Array(name.utf8)
                out.append(UInt8(ascii: " "))
                out += Array(escaped(help).utf8)
                out.append(UInt8(ascii: "\n"))
                helped.insert(name)
            }
            out += line
            if end < exposition.count { out.append(UInt8(ascii: "\n")) }
            start = end + 1
        }
        return out
    }

    /// The metric name at the start of `rest` (up to the first space).
    private static func metricName(_ rest: ArraySlice<UInt8>) -> String? {
        guard let space = rest.firstIndex(of: UInt8(ascii: " ")), space > rest.startIndex else { return nil }
        return String(decoding: rest[rest.startIndex..<space], as: UTF8.self)
    }

    /// A help text as the exposition format writes it: backslash and line feed escaped.
    private static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// DES's own metrics made through swift-metrics (the HTTP service's own registry metrics
    /// carry their help already).
    static let builtIn: [String: String] = [
        "des_marker_entries_marked_total": "Catalog rows the marker named, by status (success, failed)",
        "des_marker_batch_duration_seconds": "Time the marker took per batch of rows",
        "des_marker_retries_total": "Marker batches tried again after a transient error",
        "des_marker_dlq_entries_total": "Rows the marker sent to dead letters",
        "des_marker_errors_total": "Marker errors, by error type",
        "des_packer_files_packed_total": "Files the packer packed into uploaded containers",
        "des_packer_bytes_packed_total": "Bytes of the files the packer packed",
        "des_packer_files_failed_total": "Files the packer could not pack (missing, unreadable, changed)",
        "des_packer_containers_uploaded_total": "Containers the packer uploaded and recorded",
        "des_packer_bytes_uploaded_total": "Bytes of the containers the packer uploaded, index and all",
        "des_packer_leases_lost_total": "Shard leases the packer lost (expired or taken over)",
        "des_packer_leases_held": "Shard leases the packer holds now",
        "des_packer_claim_duration_seconds": "Time the packer took to claim or read a batch of rows",
        "des_packer_finalize_duration_seconds": "Time the packer took to finalize, upload and record a container",
        "des_packer_open_containers": "Containers the packer is filling now",
        "des_packer_errors_total": "Packer errors, by error type",
        "des_fencing_rejections_total": "Metadata writes refused because the writer's lease was no longer the shard's, by worker",
        "des_catalog_rows": "Catalog rows by status, per source (the backlog)",
        "des_catalog_oldest_pending_seconds": "Age of the oldest named row not yet packed, per source",
        "des_storage_errors_total": "Storage requests that failed, by operation",
        "des_events_published_total": "Metadata store events applied or published, by kind",
        "des_events_lag_seconds": "Seconds from the commit of the newest event read to its delivery",
        "des_compact_containers_retired_total": "Containers the compactor merged away",
        "des_compact_live_bytes_total": "Live bytes the compactor copied into merged containers",
        "des_compact_dropped_bytes_total": "Bytes of deleted files the compactor left behind",
        "des_compact_objects_deleted_total": "Container objects the compactor deleted once their grace period passed",
        "des_expire_files_deleted_total": "Files deleted by retention (tombstoned once their retention passed)",
        "des_retire_bodies_deleted_total": "Source bodies deleted after their files were packed and checked",
        "des_retire_bytes_deleted_total": "Bytes of the source bodies deleted",
        "des_retire_skipped_total": "Source bodies not deleted, by reason",
        "des_scan_files_seen_total": "Files the scanner looked at",
        "des_scan_rows_inserted_total": "Catalog rows the scanner added (new paths and versions)",
        "des_scan_rows_ready_total": "Catalog rows the scanner found stable and handed on",
        "des_scan_rows_gone_total": "Catalog rows of files that disappeared before they were packed",
        "des_scan_rows_duplicate_total": "Versions the scanner found to repeat content already stored",
        "des_scan_parts_held": "Scan partitions (roots) this scanner holds leases on",
        "des_scan_seconds": "Time one scan of the roots took",
    ]
}
