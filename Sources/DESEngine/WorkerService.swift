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

    /// A service named `name` running `work`.
    public init(name: String, work: @escaping Work) {
        self.description = name
        self.work = work
    }

    /// What the worker returned, once it has.
    public var totals: Totals? { result.withLock { $0 } }

    /// Runs the worker until it ends or the group shuts down.
    public func run() async throws {
        let shutdown = self.shutdown
        let totals = try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await work(shutdown)
            } onGracefulShutdown: {
                shutdown.trigger()
            }
        } onCancel: {
            shutdown.trigger()
        }
        result.withLock { $0 = totals }
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
    /// The packer's state is not shared: the service is its only user, and runs it once.
    public func service(untilIdle: Bool) -> WorkerService<Totals> {
        let packer = SoleOwner(self)
        return WorkerService(name: "packer") { shutdown in try await packer.value.run(shutdown: shutdown, untilIdle: untilIdle) }
    }
}

/// Carries a non-`Sendable` object into the one task that uses it from then on.
private final class SoleOwner<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
