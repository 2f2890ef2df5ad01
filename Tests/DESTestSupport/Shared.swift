import Foundation
import Synchronization

// Small pieces the test targets share: the test servers' settings, child processes, a locked value.

/// A setting of the test servers `scripts/test-servers.sh up` starts (`make test` does): a
/// missing one fails the test, naming the variable; nothing is skipped.
public func testServerSetting(_ name: String) throws -> String {
    guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else {
        throw MissingTestServer(description: "\(name) is not set: start the test servers (scripts/test-servers.sh up; make test does)")
    }
    return v
}

/// `request_timeout` (seconds) of the tests' S3 clients on the shared test server. moto is one
/// Python process serving every suite at once, and on a loaded 2-core machine a GET has waited
/// over the stock 10 s; a request that never ends is still an error. Tests of the timeout itself
/// set their own.
public let sharedS3RequestTimeout = 60

/// A test server setting is missing from the environment.
public struct MissingTestServer: Error, CustomStringConvertible {
    public let description: String
}

/// Waits for a child process to end without holding a thread: tests run in parallel, and
/// threads blocked in `waitUntilExit` (one per child) starve the ones their servers and
/// in-process packers need.
public func waitForExit(_ p: Process) async {
    while p.isRunning { try? await Task.sleep(nanoseconds: 20_000_000) }
}

/// A value shared between tasks and threads, behind a lock.
public final class Locked<T: Sendable>: Sendable {
    private let m: Mutex<T>
    /// Starts with `value`.
    public init(_ value: T) { m = Mutex(value) }
    /// Runs `body` with the value, under the lock.
    public func withLock<R>(_ body: (inout T) -> R) -> R { m.withLock { body(&$0) } }
    /// The value now.
    public var value: T { m.withLock { $0 } }
}
