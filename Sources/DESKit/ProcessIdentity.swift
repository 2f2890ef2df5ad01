#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Who this process is, precisely enough that another process on the same host can
/// prove it dead: its pid, the pid's start time (so a reused pid is told apart), the
/// host's boot id and the pid namespace (so "no such pid" means the same pid space).
///
/// A packer's lease instance and the temporary names of local storage carry it as a
/// token (``token``). ``isProvablyDead(token:)`` answers true only when the token's
/// process is certainly gone; anything it cannot prove (another host, another
/// namespace, an unreadable `/proc`) is treated as alive, so a lease is then
/// given up only when it expires.
public struct ProcessIdentity: Sendable, Hashable {
    /// The process id.
    public var pid: Int32
    /// The process's start time in clock ticks since boot (`/proc/PID/stat` field 22).
    public var startTime: UInt64
    /// The host's boot id (`/proc/sys/kernel/random/boot_id`), its 32 hex digits.
    public var boot: String
    /// The inode of the pid namespace (`/proc/self/ns/pid`).
    public var namespace: UInt64

    /// This process.
    public static let current: ProcessIdentity = {
        let pid = getpid()
        // /proc must be this pid namespace's (its "self" is our pid), or the start time would be another
        // process's: record 0 then, which makes this identity unprovable (never judged dead).
        let start = procSelfPID() == pid ? startTime(of: pid) ?? 0 : 0
        return ProcessIdentity(pid: pid, startTime: start, boot: bootID() ?? "unknown", namespace: pidNamespace() ?? 0)
    }()

    /// `p{pid}.t{start}.b{boot}.n{namespace}`: letters, digits and dots only.
    public var token: String { "p\(pid).t\(startTime).b\(boot).n\(namespace)" }

    /// Parses a token made by ``token`` (possibly followed by `.` and more).
    public init?(token: String) {
        let parts = token.split(separator: ".")
        guard parts.count >= 4, parts[0].first == "p", parts[1].first == "t", parts[2].first == "b", parts[3].first == "n",
            let pid = Int32(parts[0].dropFirst()), let start = UInt64(parts[1].dropFirst()),
            let ns = UInt64(parts[3].dropFirst())
        else { return nil }
        self.init(pid: pid, startTime: start, boot: String(parts[2].dropFirst()), namespace: ns)
    }

    /// Creates an identity from its parts.
    public init(pid: Int32, startTime: UInt64, boot: String, namespace: UInt64) {
        self.pid = pid
        self.startTime = startTime
        self.boot = boot
        self.namespace = namespace
    }

    /// Whether the process a token names is certainly not running: same host boot and pid
    /// namespace as this process, and its pid is gone or now belongs to a process started later.
    public static func isProvablyDead(token: String) -> Bool {
        guard let other = ProcessIdentity(token: token) else { return false }
        let me = current
        guard other.boot == me.boot, other.boot != "unknown", other.namespace == me.namespace, other.namespace != 0,
            other.startTime != 0
        else { return false }
        if other.pid == me.pid && other.startTime == me.startTime { return false }  // this very process
        if me.startTime == 0 { return false }  // our /proc is not our pid namespace's
        // Gone only when the kernel says no such process; any other doubt (EPERM, an unreadable
        // /proc entry) is "cannot prove".
        if kill(other.pid, 0) != 0 { return errno == ESRCH }
        guard let start = startTime(of: other.pid) else { return false }
        return start != other.startTime  // the pid now belongs to a later process
    }

    private static func procSelfPID() -> Int32? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8) else { return nil }
        return text.split(separator: " ", maxSplits: 1).first.flatMap { Int32($0) }
    }

    /// Field 22 of `/proc/PID/stat` (after the parenthesised command name, which may hold spaces).
    static func startTime(of pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After ")": state is field 3, so field 22 is at offset 19.
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    private static func bootID() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8) else { return nil }
        let hex = text.filter { $0.isHexDigit }
        return hex.count >= 8 ? hex.lowercased() : nil
    }

    private static func pidNamespace() -> UInt64? {
        var st = stat()
        guard stat("/proc/self/ns/pid", &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }
}
