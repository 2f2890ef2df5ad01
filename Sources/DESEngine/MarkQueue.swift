import DESKit
import Synchronization

/// Uploaded containers whose rows are to be marked packed, taken in batches by background
/// tasks (``Packer/markPackedInBackground(_:)``), at most ``concurrency`` at once. A batch is taken once
/// ``promptRows`` rows wait, once its oldest container has waited ``maxDelaySeconds``, or at once
/// when the packer waits for the marks (``flush()``), and holds up to ``batchRows`` rows: a few
/// hundred containers finishing together are then marked in a few transactions, not in
/// hundreds, while the marks of a steady stream of containers still overlap the packing.
/// ``promptRows`` is the largest ``SourceConnector/markBatchRows`` of the packer's sources:
/// 1 on a server database (each container is marked as soon as no batch runs, the next batch
/// gathering meanwhile), ``batchRows`` on SQLite, where a container's rows lie scattered over
/// the catalog and every transaction writes each page it touched again (100,000 rows marked in
/// batches of 10,000 wrote the catalog's pages about eight times, in batches of 50,000 twice).
///
/// On a server database (``promptRows`` 1) two tasks mark at once, each on its own connection:
/// the containers a run finalizes together at its end are then marked on both of the
/// server's cores (a mark is the server's work: about 9 µs a row on PostgreSQL), and while both
/// run, a task takes half of the containers waiting, leaving the rest to the other. Their
/// containers are disjoint, and a mark is safe to repeat (it changes only rows not yet packed),
/// so a deadlock the server breaks is retried like any other transient error.
package final class MarkQueue: Sendable {
    /// More containers than this waiting makes the packer wait for the marks.
    package static let waitingLimit = 256
    /// A batch stops adding containers once it holds this many rows.
    package static let batchRows = 50_000
    /// A batch is taken without waiting once this many rows wait (1 to ``batchRows``).
    package let promptRows: Int
    /// How many tasks mark at once: 2 on server databases (``promptRows`` 1), 1 otherwise.
    package let concurrency: Int
    /// The longest a container waits for others to join its batch.
    package static let maxDelaySeconds = 1.0
    private struct State {
        /// The containers waiting, oldest first, each with when it was added (monotonic seconds).
        var waiting: [(container: PackerStateMachine.Container, at: Double)] = []
        /// Their rows, summed.
        var rows = 0
        /// Tasks marking (at most ``concurrency``).
        var running = 0
        var flushing = false
    }
    private let state = Mutex(State())

    /// An empty queue that takes a batch without waiting once `promptRows` rows wait.
    package init(promptRows: Int = MarkQueue.batchRows) {
        self.promptRows = max(1, min(Self.batchRows, promptRows))
        self.concurrency = self.promptRows == 1 ? 2 : 1
    }

    /// Whether the waiting containers are being taken without delay.
    package var isFlushing: Bool { state.withLock { $0.flushing } }

    /// Adds a container. True when fewer than ``concurrency`` tasks are marking: the caller starts one.
    package func add(_ container: PackerStateMachine.Container) -> Bool {
        state.withLock { s in
            s.waiting.append((container, monotonicSeconds()))
            s.rows += container.fileCount
            if s.running >= concurrency { return false }
            s.running += 1
            return true
        }
    }

    /// Takes the waiting containers without delay until none wait (the packer waits for them).
    package func flush() {
        state.withLock { s in
            // With none waiting and no task, there is nothing to hurry (and a flag left set
            // would hurry the batches that come after).
            if s.running > 0 || !s.waiting.isEmpty { s.flushing = true }
        }
    }

    private enum Step {
        case done
        case take([PackerStateMachine.Container])
        case wait(Double)
    }

    /// The next batch for a running task: the waiting containers, oldest first, up to
    /// ``batchRows`` rows (at least one container; while every task runs, at most half of those
    /// waiting, rounded up), once due. Nil when none wait, and the task is done.
    package func next() async -> [PackerStateMachine.Container]? {
        while true {
            let now = monotonicSeconds()
            let step: Step = state.withLock { s in
                guard let oldest = s.waiting.first else {
                    s.running -= 1
                    if s.running == 0 { s.flushing = false }
                    return .done
                }
                let due = oldest.at + Self.maxDelaySeconds
                guard s.flushing || s.rows >= promptRows || now >= due || Task.isCancelled else { return .wait(due - now) }
                var (rows, count) = (0, 0)
                let most = s.running >= concurrency && concurrency > 1 ? (s.waiting.count + 1) / 2 : s.waiting.count
                for (container, _) in s.waiting {
                    if count > 0 && (rows + container.fileCount > Self.batchRows || count >= most) { break }
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

    /// A running task failed: the containers still waiting wait for another task, or for ``restart()``.
    package func stopped() { state.withLock { $0.running -= 1 } }

    /// True (and counted running) when containers wait and no task runs: the caller starts one.
    package func restart() -> Bool {
        state.withLock { s in
            guard s.running == 0, !s.waiting.isEmpty else { return false }
            s.running = 1
            return true
        }
    }

    /// Containers waiting.
    package var waiting: Int { state.withLock { $0.waiting.count } }
}
