import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Makes unique DES names: `{PREFIX}_{YYYYMMDD}_({F}_{CC})` (docs/architecture.md).
///
/// Thread-safe. Within one millisecond up to 256 names are made per node; the
/// 257th waits for the next millisecond. If the clock steps back, the last
/// millisecond is kept (and, should its sequence run out, the generator moves
/// to the next millisecond without waiting for the clock to catch up).
///
/// Generators of one process that share a node id share one sequence, so two
/// callers never get the same name: use ``shared(configuration:)`` or make one
/// generator and pass it around.
public final class SnowflakeGenerator: Sendable {
    /// How names are made.
    public struct Configuration: Sendable, Hashable {
        /// Name prefix: ASCII letters and digits (default `DES`).
        public var prefix: String
        /// Node id, 0–255 (default 0).
        public var node: Int
        /// Bits of epoch milliseconds kept in F, 1–32 (default 32).
        public var wrapBits: Int

        /// Creates a configuration; call ``validate()`` or let the generator do it.
        public init(prefix: String = "DES", node: Int = 0, wrapBits: Int = 32) {
            self.prefix = prefix
            self.node = node
            self.wrapBits = wrapBits
        }

        /// Checks the prefix, node and wrap bits.
        public func validate() throws(NamingError) {
            guard SnowflakeName.isValidPrefix(prefix) else {
                throw NamingError(
                    .invalidConfiguration, "prefix '\(prefix)' must be 1–\(SnowflakeName.maxPrefixLength) ASCII letters and digits")
            }
            guard (0...255).contains(node) else {
                throw NamingError(.invalidConfiguration, "node id \(node) is outside 0…255")
            }
            guard (1...32).contains(wrapBits) else {
                throw NamingError(.invalidConfiguration, "wrap bits \(wrapBits) is outside 1…32")
            }
        }
    }

    /// A source of wall-clock milliseconds since the Unix epoch.
    public typealias Clock = @Sendable () -> UInt64

    /// The configuration in force.
    public let configuration: Configuration
    private let clock: Clock
    private let sequence: Sequencer

    /// Creates a generator. With the default (system) clock its sequence is the
    /// process-wide one for its node id; with a custom clock it has its own.
    public init(configuration: Configuration, clock: Clock? = nil) throws(NamingError) {
        try configuration.validate()
        self.configuration = configuration
        if let clock {
            self.clock = clock
            self.sequence = Sequencer()
        } else {
            self.clock = systemMilliseconds
            self.sequence = Sequencer.shared(node: configuration.node)
        }
    }

    /// A generator for `configuration` using the system clock and the process-wide sequence.
    public static func shared(configuration: Configuration) throws(NamingError) -> SnowflakeGenerator {
        try SnowflakeGenerator(configuration: configuration)
    }

    /// The next name.
    public func next() -> SnowflakeName {
        let (ms, seq) = sequence.next(clock: clock)
        return name(ms: ms, seq: seq)
    }

    private func name(ms: UInt64, seq: UInt8) -> SnowflakeName {
        let wrapped = configuration.wrapBits >= 64 ? ms : ms & ((UInt64(1) << UInt64(configuration.wrapBits)) - 1)
        let f = (wrapped << 16) | (UInt64(configuration.node) << 8) | UInt64(seq)
        return SnowflakeName(prefix: configuration.prefix, day: utcDay(milliseconds: ms), value: f)
    }

    /// The next `count` names, in order.
    public func next(count: Int) -> [SnowflakeName] {
        (0..<max(0, count)).map { _ in next() }
    }

    /// The next name, or nil when this millisecond's 256 names are used up (``next()`` waits
    /// for the next millisecond instead; an async caller can sleep without holding a thread).
    public func nextIfAvailable() -> SnowflakeName? {
        guard let (ms, seq) = sequence.tryNext(clock: clock) else { return nil }
        return name(ms: ms, seq: seq)
    }

    /// The next `count` names, in order, sleeping (not blocking its thread) while a
    /// millisecond's names are used up.
    public func waitingNext(count: Int) async -> [SnowflakeName] {
        var out: [SnowflakeName] = []
        out.reserveCapacity(max(0, count))
        while out.count < count {
            if let n = nextIfAvailable() {
                out.append(n)
            } else {
                try? await Task.sleep(nanoseconds: 100_000)
            }
        }
        return out
    }
}

/// The (millisecond, sequence) state shared by the generators of one node.
final class Sequencer: Sendable {
    private struct State {
        var lastMs: UInt64 = 0
        var seq: Int = -1
    }
    private let state = Mutex(State())
    private static let registry = Mutex<[Int: Sequencer]>([:])

    static func shared(node: Int) -> Sequencer {
        registry.withLock { map in
            if let s = map[node] { return s }
            let s = Sequencer()
            map[node] = s
            return s
        }
    }

    func next(clock: () -> UInt64) -> (UInt64, UInt8) {
        while true {
            if let result = tryNext(clock: clock) { return result }
            usleep(50)
        }
    }

    /// The next (millisecond, sequence), or nil when this millisecond's 256 are used up.
    func tryNext(clock: () -> UInt64) -> (UInt64, UInt8)? {
        let now = clock()
        return state.withLock { s in
            if now > s.lastMs {
                s.lastMs = now
                s.seq = 0
            } else if s.seq < 255 {
                s.seq += 1  // same millisecond, or the clock stepped back: keep the last millisecond
            } else if now < s.lastMs {
                s.lastMs += 1  // clock is behind and this millisecond is used up: move on without waiting
                s.seq = 0
            } else {
                return nil  // 256 names in this millisecond: wait for the next one
            }
            return (s.lastMs, UInt8(s.seq))
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
@Sendable func systemMilliseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
}

/// `YYYYMMDD` of a Unix time in milliseconds, in UTC.
public func utcDay(milliseconds: UInt64) -> String {
    let (y, m, d) = CivilDate.date(days: Int64(milliseconds / 86_400_000))
    return CivilDate.pad(y, 4) + CivilDate.pad(m, 2) + CivilDate.pad(d, 2)
}

/// Days since the Unix epoch and proleptic Gregorian dates, both ways (Howard Hinnant's
/// algorithms): what names, container keys and timestamps in META are written with.
public enum CivilDate {
    /// The date of a day number (days since 1970-01-01; negative before it).
    public static func date(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// The day number of a date (month 1–12, day 1–31).
    public static func days(year y0: Int64, month m: Int64, day d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// `v` in decimal, zero-padded to `width` digits.
    public static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}
