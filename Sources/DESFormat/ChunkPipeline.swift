#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A buffer of file bodies read back to back, with what happened in it, in order.
///
/// The reading thread fills it; the writing thread replays ``events`` (hashing
/// each run of bytes, recording each finished file) and then writes the bytes
/// at ``archiveOffset``.
final class PipelineChunk {
    /// Something the writing thread must do, in order.
    enum Event {
        /// `count` bytes of the file being read, at `offset` in this chunk.
        case bytes(offset: Int, count: Int)
        /// The file being read is complete; `close` is a descriptor to close for the reader, or -1.
        case end(name: String, metadata: DESMetadata, start: UInt64, length: UInt64, close: Int32)
        /// The file being read failed after some of its bytes went out in earlier chunks:
        /// forget its digest and cut the archive back to `start`.
        case abandon(start: UInt64)
    }

    let base: UnsafeMutableRawPointer
    let capacity: Int
    /// Bytes filled.
    var used = 0
    /// Where byte 0 of this chunk goes in the archive.
    var archiveOffset: UInt64 = 0
    /// Descriptors handed over in `end` events, which the writing thread closes.
    var descriptors = 0
    var events: [Event] = []

    init(capacity: Int) {
        self.capacity = capacity
        self.base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
        events.reserveCapacity(1024)
    }

    deinit { base.deallocate() }

    /// Free space after the filled part.
    var free: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + used, count: capacity - used)
    }

    func reset(at offset: UInt64) {
        used = 0
        descriptors = 0
        archiveOffset = offset
        events.removeAll(keepingCapacity: true)
    }
}

/// The hand-off between the reading and the writing thread: a ring of chunks that
/// go round free -> filled -> free, under one mutex and one condition variable.
///
/// Every chunk is touched by one thread at a time; passing it through the queue
/// (mutex release, then acquire) orders the reader's writes before the writer's reads.
final class ChunkQueue: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var free: [PipelineChunk]
    private var filled: [PipelineChunk] = []
    private var finished = false
    private var failure: (any Error)?
    private let failed = Atomic<Bool>(false)

    init(chunks: Int, chunkSize: Int) {
        free = (0..<chunks).map { _ in PipelineChunk(capacity: chunkSize) }
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    private func locked<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Reader: waits for a free chunk. Throws the writer's error once it has failed.
    func takeFree() throws -> PipelineChunk {
        try locked {
            while true {
                if let failure { throw failure }
                if let chunk = free.popLast() { return chunk }
                pthread_cond_wait(condition, mutex)
            }
        }
    }

    /// Reader: hands a filled chunk to the writer.
    func submit(_ chunk: PipelineChunk) {
        locked {
            filled.append(chunk)
            pthread_cond_broadcast(condition)
        }
    }

    /// Reader: no more chunks will come.
    func finish() {
        locked {
            finished = true
            pthread_cond_broadcast(condition)
        }
    }

    /// Writer: the next filled chunk, or nil once the reader has finished and all are taken.
    func takeFilled() -> PipelineChunk? {
        locked {
            while true {
                if !filled.isEmpty { return filled.removeFirst() }
                if finished { return nil }
                pthread_cond_wait(condition, mutex)
            }
        }
    }

    /// Writer: gives a chunk back to the reader.
    func recycle(_ chunk: PipelineChunk) {
        locked {
            free.append(chunk)
            pthread_cond_broadcast(condition)
        }
    }

    /// Writer: records the first failure; the reader sees it at its next ``takeFree()``.
    func fail(_ error: any Error) {
        locked {
            if failure == nil { failure = error }
            failed.store(true, ordering: .releasing)
            pthread_cond_broadcast(condition)
        }
    }

    /// Whether the writer has failed (a cheap check for the reader before each file).
    var hasFailed: Bool { failed.load(ordering: .acquiring) }

    /// The writer's failure, if any.
    var writerFailure: (any Error)? { locked { failure } }
}

/// A dedicated OS thread for blocking work (never a thread of Swift's cooperative pool).
struct WorkerThread {
    private let thread: pthread_t

    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread; nil when the system refuses one (the caller then does the work itself).
    static func start(_ body: @escaping @Sendable () -> Void) -> WorkerThread? {
        let box = Unmanaged.passRetained(Box(body))
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                guard let raw else { return nil }
                let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
                box.body()
                return nil
            }, box.toOpaque())
        if rc != 0 {
            box.release()
            return nil
        }
        return WorkerThread(thread: thread)
    }

    /// Waits for the thread to end.
    func join() {
        _ = pthread_join(thread, nil)
    }
}
