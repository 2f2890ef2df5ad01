#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The standard process metrics of Prometheus clients, read from `/proc` at each scrape and
/// appended to `/metrics`: `process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds` and
/// `process_start_time_seconds`. On a system without `/proc` nothing is appended.
enum ProcessMetrics {
    /// The metrics in Prometheus text format (empty when `/proc/self/stat` cannot be read).
    static func text() -> String {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return "" }
        // Fields after the command name (which may hold spaces): state is field 3 of the man page.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ n: Int) -> Double? { n - 3 < fields.count ? Double(fields[n - 3]) : nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        var out = ""
        func add(_ name: String, _ type: String, _ help: String, _ value: Double?) {
            guard let value, value.isFinite else { return }
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        if let utime = field(14), let stime = field(15), ticks > 0 {
            add("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", (utime + stime) / ticks)
        }
        add("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", field(23))
        if let rss = field(24) { add("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss * page) }
        if let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            add("process_open_fds", "gauge", "Open file descriptors.", Double(fds.count))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            add("process_max_fds", "gauge", "The most file descriptors the process may open.", Double(limit.rlim_cur))
        }
        if let start = field(22), ticks > 0, let boot = bootTime() {
            add("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.", boot + start / ticks)
        }
        return out
    }

    /// The boot time in seconds since 1970 (`btime` of `/proc/stat`).
    private static func bootTime() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
