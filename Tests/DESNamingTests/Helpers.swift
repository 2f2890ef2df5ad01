import DESNaming
import Foundation
import Synchronization
import Testing

/// A clock for the Snowflake generator that follows a script: call `n` (0-based) returns `script(n)`.
/// It counts its calls, so tests can tell whether the generator waited for the next millisecond.
final class ScriptedClock: Sendable {
    private let calls = Mutex(0)
    private let script: @Sendable (Int) -> UInt64

    init(_ script: @escaping @Sendable (Int) -> UInt64) { self.script = script }

    /// A clock fixed at one millisecond.
    convenience init(fixed ms: UInt64) { self.init { _ in ms } }

    /// How many times the clock was read.
    var callCount: Int { calls.withLock { $0 } }

    /// The closure to hand to the generator.
    var clock: SnowflakeGenerator.Clock {
        { [self] in
            let n = calls.withLock { c in
                defer { c += 1 }
                return c
            }
            return script(n)
        }
    }
}

/// The Snowflake value the design specifies for (ms, node, seq) with 32 wrap bits.
func snowflakeValue(ms: UInt64, node: UInt64, seq: UInt64, wrapBits: UInt64 = 32) -> UInt64 {
    ((ms & ((1 << wrapBits) - 1)) << 16) | (node << 8) | seq
}

/// The error thrown by `body`, or nil (recorded as a test failure) when it does not throw a NamingError.
func namingError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> NamingError? {
    do {
        try body()
        Issue.record("expected a NamingError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let e as NamingError {
        return e
    } catch {
        Issue.record("expected a NamingError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

