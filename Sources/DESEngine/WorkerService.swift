#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import Synchronization

/// A long-running worker (the marker, the packer) as a swift-service-lifecycle `Service`.
///
/// The group's graceful shutdown (SIGTERM, SIGINT) triggers the worker's ``ShutdownSignal``:
/// the marker finishes its batch, the packer finalises and uploads its open containers and
/// releases its leases; then ``run()`` returns. Cancellation (the group's escalation)
/// triggers it too. The worker's totals are kept for the caller to print.
public final class WorkerService<Totals: Sendable>: Service, Sendable, CustomStringConvertible {
    /// The worker's loop: runs until `shutdown` is triggered (or, with until-idle, until idle).
    public typealias Work = @Sendable (ShutdownSignal) async throws -> Totals

    /// The worker's name in logs (`marker`, `packer`).
    public let description: String
    private let work: Work
    private let shutdown = ShutdownSignal()
    private let result = Mutex<Totals?>(nil)
    private let drain: Drain?
    /// Set when ``run()`` ends, however it ends.
    private let finished = Atomic<Bool>(false)

    /// How long a worker may take to stop once asked, and what to do past that.
    public struct Drain: Sendable {
        /// Seconds from the shutdown signal.
        public var seconds: Double
        /// Gives back what the worker holds without its own task (which may be stuck in a call
        /// that ignores cancellation); the process then exits with ``exitCode``.
        public var onDeadline: @Sendable () async -> Void
        /// Creates a drain deadline.
        public init(seconds: Double, onDeadline: @escaping @Sendable () async -> Void) {
            self.seconds = seconds
            self.onDeadline = onDeadline
        }
        /// The exit status past the deadline: 75 (EX_TEMPFAIL — try again; nothing was lost).
        public static var exitCode: Int32 { 75 }
    }

    /// A service named `name` running `work`; with `drain`, a shutdown that takes longer than
    /// `drain.seconds` gives back the worker's work (`drain.onDeadline`) and exits the process.
    public init(name: String, drain: Drain? = nil, work: @escaping Work) {
        self.description = name
        self.work = work
        self.drain = drain
    }

    /// What the worker returned, once it has.
    public var totals: Totals? { result.withLock { $0 } }

    /// Runs the worker until it ends or the group shuts down.
    public func run() async throws {
        let shutdown = self.shutdown
        defer { finished.store(true, ordering: .sequentiallyConsistent) }
        let totals = try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await work(shutdown)
            } onGracefulShutdown: {
                shutdown.trigger()
                self.startDrainDeadline()
            }
        } onCancel: {
            shutdown.trigger()
        }
        result.withLock { $0 = totals }
    }

    /// Past the drain deadline, while the work has not returned: give its work back and exit.
    private func startDrainDeadline() {
        guard let drain else { return }
        Task.detached { [self] in
            try? await Task.sleep(nanoseconds: nanoseconds(drain.seconds))
            guard !finished.load(ordering: .sequentiallyConsistent) else { return }
            await drain.onDeadline()
            exit(Drain.exitCode)
        }
    }
}

extension Marker {
    /// The marker as a service (`untilIdle`: end when no source has rows needing a name).
    public func service(untilIdle: Bool) -> WorkerService<Totals> {
        WorkerService(name: "marker") { shutdown in try await self.run(shutdown: shutdown, untilIdle: untilIdle) }
    }
}

extension Packer {
    /// The packer as a service (`untilIdle`: end, after uploading every open container, when
    /// no owned shard has pending rows).
    ///
    /// The packer's state is not shared: the service is its only user, and runs it once. Past
    /// `packer.drain_seconds` after the shutdown signal, ``PackerSurrender`` gives back what it
    /// holds from outside that task, and the process exits (75).
    public func service(untilIdle: Bool) -> WorkerService<Totals> {
        let packer = SoleOwner(self)
        let surrender = self.surrender
        let drain = WorkerService<Totals>.Drain(seconds: config.drainSeconds) { await surrender.run() }
        return WorkerService(name: "packer", drain: drain) { shutdown in
            try await packer.value.run(shutdown: shutdown, untilIdle: untilIdle)
        }
    }
}

extension Retirer {
    /// The retire worker as a service (`untilIdle`: end after a pass that retires nothing).
    public func service(untilIdle: Bool) -> WorkerService<Totals> {
        WorkerService(name: "retire") { shutdown in try await self.run(shutdown: shutdown, untilIdle: untilIdle) }
    }
}

/// Carries a non-`Sendable` object into the one task that uses it from then on.
private final class SoleOwner<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
