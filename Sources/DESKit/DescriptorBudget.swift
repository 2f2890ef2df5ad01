#if canImport(Glibc)
import Glibc
#endif

/// How the process's file descriptors (`ulimit -n`) are shared out between what keeps some open
/// for a long time: the local storage's open containers, and the HTTP server's connections,
/// which must leave room for them (a server out of descriptors cannot accept, not even to shed).
public enum DescriptorBudget {
    /// The soft descriptor limit, nil when there is none.
    public static var softLimit: Int? {
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0, limits.rlim_cur != rlim_t.max else { return nil }  // max: RLIM_INFINITY
        return Int(clamping: limits.rlim_cur)
    }

    /// How many container files local storage keeps open for reads: 64, or a sixteenth of the
    /// descriptor limit when that is less (8 under `ulimit -n 128`).
    public static var containerFiles: Int {
        guard let soft = softLimit else { return 64 }
        return max(0, min(64, soft / 16))
    }
}
