import DESKit
import Synchronization

/// Uploaded containers whose rows are to be marked packed, taken in batches by one background
/// task at a time (``Packer/markPackedInBackground(_:)``). A batch is taken once
/// ``promptRows`` rows wait, once its oldest container has waited ``maxDelaySeconds``, or at once
/// when the packer waits for the marks (``flush()``), and holds up to ``batchRows`` rows: a few
/// hundred containers finishing together are then marked in a few transactions, not in
/// hundreds, while the marks of a steady stream of containers still overlap the packing.
/// ``promptRows`` is the largest ``SourceConnector/markBatchRows`` of the packer's sources:
/// 1 on a server database (each container is marked as soon as no batch runs, the next batch
/// gathering meanwhile), ``batchRows`` on SQLite, where a container's rows lie scattered over
/// the catalog and every transaction writes each page it touched again (100,000 rows marked in
/// batches of 10,000 wrote the catalog's pages about eight times, in batches of 50,000 twice).
package final class MarkQueue: Sendable {
    /// More containers than this waiting makes the packer wait for the marks.
    package static let waitingLimit = 256
    /// A batch stops adding containers once it holds this many rows.
    package static let batchRows = 50_000
    /// A batch is taken without waiting once this many rows wait (1 to ``batchRows``).
    package let promptRows: Int
    /// The longest a container waits for others to join its batch.
    package static let maxDelaySeconds = 1.0
    private struct State {
        /// The containers waiting, oldest first, each with when it was added (monotonic seconds).
        var waiting: [(container: PackerStateMachine.Container, at: Double)] = []
        /// Their rows, summed.
        var rows = 0
        var running = false
        var flushing = false
    }
    private let state = Mutex(State())

    /// An empty queue that takes a batch without waiting once `promptRows` rows wait.
    package init(promptRows: Int = MarkQueue.batchRows) { self.promptRows = max(1, min(Self.batchRows, promptRows)) }

    /// Whether the waiting containers are being taken without delay.
    package var isFlushing: Bool { state.withLock { $0.flushing } }

    /// Adds a container. True when no task is marking: the caller starts one.
    package func add(_ container: PackerStateMachine.Container) -> Bool {
        state.withLock { s in
            s.waiting.append((container, monotonicSeconds()))
            s.rows += container.fileCount
            if s.running { return false }
            s.running = true
            return true
        }
    }

    /// Takes the waiting containers without delay until none wait (the packer waits for them).
    package func flush() {
        state.withLock { s in
            // With none waiting and no task, there is nothing to hurry (and a flag left set
            // would hurry the batches that come after).
            if s.running || !s.waiting.isEmpty { s.flushing = true }
        }
    }

    private enum Step {
        case done
        case take([PackerStateMachine.Container])
        case wait(Double)
    }

    /// The next batch for the running task: the waiting containers, oldest first, up to
    /// ``batchRows`` rows (at least one container), once due. Nil when none wait, and the task is done.
    package func next() async -> [PackerStateMachine.Container]? {
        while true {
            let now = monotonicSeconds()
            let step: Step = state.withLock { s in
                guard let oldest = s.waiting.first else {
                    (s.running, s.flushing) = (false, false)
                    return .done
                }
                let due = oldest.at + Self.maxDelaySeconds
                guard s.flushing || s.rows >= promptRows || now >= due || Task.isCancelled else { return .wait(due - now) }
                var (rows, count) = (0, 0)
                for (container, _) in s.waiting {
                    if count > 0 && rows + container.fileCount > Self.batchRows { break }
                    rows += container.fileCount
                    count += 1
                }
                let batch = s.waiting.prefix(count).map(\.container)
                s.waiting.removeFirst(count)
                s.rows -= rows
                return .take(batch)
            }
            switch step {
            case .done: return nil
            case .take(let batch): return batch
            // Short naps, so that a flush or a full batch is seen soon.
            case .wait(let seconds): try? await Task.sleep(nanoseconds: UInt64(min(seconds, 0.02) * 1e9))
            }
        }
    }

    /// The running task failed: the containers still waiting wait for ``restart()``.
    package func stopped() { state.withLock { $0.running = false } }

    /// True (and marked running) when containers wait and no task runs: the caller starts one.
    package func restart() -> Bool {
        state.withLock { s in
            guard !s.running, !s.waiting.isEmpty else { return false }
            s.running = true
            return true
        }
    }

    /// Containers waiting.
    package var waiting: Int { state.withLock { $0.waiting.count } }
}
