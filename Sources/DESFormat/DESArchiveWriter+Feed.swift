#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension DESArchiveWriter {
    /// Adds many files with reading and writing overlapped on two threads.
    ///
    /// Inside `produce`, hand each file to the feed with
    /// ``DESFileFeed/add(name:fileDescriptor:path:metadata:)``. Its bytes are read,
    /// on the calling thread, straight into one of a few fixed buffers (four of
    /// ``Options/bufferSize``); a second thread hashes each filled buffer, records
    /// its files' META and index entries, and writes it while the next is being
    /// read. Each file's bytes are still copied once, memory stays bounded whatever
    /// the files' sizes, and the archive is byte for byte the one that calling
    /// ``add(name:fileDescriptor:path:metadata:)`` in the same order writes.
    ///
    /// The writer must not be used otherwise until this returns (such calls throw).
    /// Files whose add returned are in the archive even when `produce` throws later;
    /// a failed add leaves nothing of its file behind. When the writer's thread
    /// fails (a write error), the next add throws that error and the writer is failed.
    /// ``abort()`` called meanwhile (from a callback, say) takes effect when this returns;
    /// adds throw from then on.
    ///
    /// - Parameter concurrently: `false` does everything on the calling thread.
    public func addFiles(concurrently: Bool = true, _ produce: (DESFileFeed) throws -> Void) throws {
        try checkUsable()
        let pipeline = concurrently ? try startPipeline() : nil
        feeding = true
        let feed = DESFileFeed(writer: self, pipeline: pipeline.map { ($0.queue, $0.first) })
        var produceError: (any Error)?
        do { try produce(feed) } catch { produceError = error }
        feed.finish()
        if let pipeline {
            pipeline.queue.finish()
            pipeline.worker.join()
        }
        feeding = false
        if abortRequested {
            abort()
            throw produceError ?? DESFormatError(.writerClosed, "the writer was aborted while adding files", path: path)
        }
        if let failure = pipeline?.queue.writerFailure {
            let error = failure as? DESFormatError ?? DESFormatError(.io, "\(failure)", path: partialPath)
            state = .failed(error)
            throw error
        }
        if let produceError { throw produceError }
    }

    /// Flushes the writer's own buffer (the chunks follow it), then starts the writer's thread;
    /// nil when no thread is to be had, and the work is done on the calling thread instead.
    private func startPipeline() throws -> (queue: ChunkQueue, first: PipelineChunk, worker: WorkerThread)? {
        try flush()
        let queue = ChunkQueue(chunks: 4, chunkSize: capacity)
        let first = try queue.takeFree()
        first.reset(at: flushedOffset)
        let writerBox = UnsafeTransfer(self)
        guard let worker = WorkerThread.start({ writerBox.value.drain(queue) }) else { return nil }
        return (queue, first, worker)
    }

    /// The writer's thread: replays each chunk's events, writes its bytes, and closes the descriptors
    /// handed over with it. After a failure it only closes and recycles, so the reading thread never
    /// waits forever and no descriptor is left open.
    fileprivate func drain(_ queue: ChunkQueue) {
        var failed = false
        while let chunk = queue.takeFilled() {
            if !failed {
                do {
                    try write(chunk)
                } catch {
                    failed = true
                    queue.fail(error)
                }
            }
            if chunk.descriptors > 0 {
                for case .end(_, _, _, _, let descriptor) in chunk.events where descriptor >= 0 {
                    _ = Glibc.close(descriptor)
                }
            }
            queue.recycle(chunk)
        }
    }

    private func write(_ chunk: PipelineChunk) throws {
        let checksums = options.checksums
        for event in chunk.events {
            switch event {
            case .bytes(let offset, let count):
                if checksums { hasher.update(chunk.base + offset, count: count) }
            case .end(let name, let metadata, let start, let length, _):
                _ = record(
                    name: name, offset: start, length: length, metadata: metadata,
                    checksum: checksums ? .hasher : .none, flags: [])
            case .abandon(let start):
                hasher.reset()
                if ftruncate(fd, off_t(start)) != 0 { throw ioError("truncate after a failed add", path: partialPath) }
            }
        }
        if chunk.used > 0 {
            try pwriteFully(fd, chunk.base, count: chunk.used, offset: chunk.archiveOffset, path: partialPath)
        }
    }
}

/// Hands files to a writer inside ``DESArchiveWriter/addFiles(concurrently:_:)``.
///
/// Used from the thread that called `addFiles`, and only until it returns.
public final class DESFileFeed {
    private let writer: DESArchiveWriter
    private let queue: ChunkQueue?
    private var current: PipelineChunk?
    private var closed = false

    /// Where the next byte goes in the archive: the writer's own offset, which the feed moves on
    /// (the writer's buffer is empty while the feed runs), so the writer's `dataLength` stays true.
    private var cursor: UInt64 {
        get { writer.flushedOffset }
        set { writer.flushedOffset = newValue }
    }

    fileprivate init(writer: DESArchiveWriter, pipeline: (ChunkQueue, PipelineChunk)?) {
        self.writer = writer
        self.queue = pipeline?.0
        self.current = pipeline?.1
    }

    /// Adds a file read from an open descriptor of a regular file (not closed here) and returns
    /// its size. Throws as ``DESArchiveWriter/add(name:fileDescriptor:path:metadata:)`` does.
    @discardableResult
    public func add(name: String, fileDescriptor source: Int32, path sourcePath: String, metadata: DESMetadata = [:])
        throws -> UInt64
    {
        var stream = try DESFileDescriptorStream(regularFile: source, path: sourcePath)
        return try add(name: name, stream: &stream, metadata: metadata, handingOver: -1)
    }

    /// Adds a file read from an open descriptor of a regular file and takes the descriptor over:
    /// the feed closes it, whatever happens — once the file is read and recorded, on the writer's
    /// thread, which takes that system call off the reading thread. At most a few hundred such
    /// descriptors are open at once.
    @discardableResult
    public func add(name: String, ownedFileDescriptor source: Int32, path sourcePath: String, metadata: DESMetadata = [:])
        throws -> UInt64
    {
        do {
            var stream = try DESFileDescriptorStream(regularFile: source, path: sourcePath)
            return try add(name: name, stream: &stream, metadata: metadata, handingOver: source)
        } catch {
            _ = Glibc.close(source)
            throw error
        }
    }

    /// Adds a file whose bytes come from a stream and returns its size. Throws as
    /// ``DESArchiveWriter/add(name:from:metadata:)`` does, and likewise leaves nothing of a failed file.
    @discardableResult
    public func add(name: String, from stream: inout some DESByteStream, metadata: DESMetadata = [:]) throws -> UInt64 {
        try add(name: name, stream: &stream, metadata: metadata, handingOver: -1)
    }

    /// Owned descriptors a chunk may carry before it is handed over, full or not.
    static let descriptorsPerChunk = 64
    /// Events a chunk may carry before it is handed over (bounds memory for runs of empty files).
    static let eventsPerChunk = 4096

    /// The one path every add takes. `descriptor` (or -1) is closed once the file is recorded when this
    /// returns normally; when it throws, the descriptor is still the caller's.
    private func add(name: String, stream: inout some DESByteStream, metadata: DESMetadata, handingOver descriptor: Int32)
        throws -> UInt64
    {
        if closed {
            throw DESFormatError(.writerClosed, "the feed is used after addFiles returned", path: writer.path)
        }
        if let queue, queue.hasFailed, let failure = queue.writerFailure { throw failure }
        guard let queue, var target = current else {
            let size = try writer.add(name: name, from: &stream, metadata: metadata, viaFeed: true).dataLength
            if descriptor >= 0 { _ = Glibc.close(descriptor) }
            return size
        }
        try writer.checkNew(name: name, metadata: metadata, reserving: true, viaFeed: true)
        var total: UInt64 = 0
        // A file starts in a chunk with room, so "started in this chunk" below means "nothing has left yet".
        if target.used == target.capacity || target.descriptors >= Self.descriptorsPerChunk
            || target.events.count >= Self.eventsPerChunk
        {
            do {
                target = try advance(from: target, queue: queue)
            } catch {
                writer.names.removeLast(name)
                throw error
            }
        }
        let start = cursor
        let firstEvent = target.events.count
        do {
            while true {
                if target.used == target.capacity { target = try advance(from: target, queue: queue) }
                let n = try stream.read(into: target.free)
                if n == 0 { break }
                if case .bytes(let offset, let count)? = target.events.last, offset + count == target.used {
                    target.events[target.events.count - 1] = .bytes(offset: offset, count: count + n)
                } else {
                    target.events.append(.bytes(offset: target.used, count: n))
                }
                target.used += n
                cursor += UInt64(n)
                total += UInt64(n)
            }
        } catch {
            writer.names.removeLast(name)
            if start >= target.archiveOffset {
                // Nothing of this file has left yet: cut it out of the chunk.
                target.used = Int(start - target.archiveOffset)
                target.events.removeSubrange(firstEvent...)
            } else {
                // Some of it went out in earlier chunks: the writer's thread forgets it and cuts the archive back.
                target.reset(at: start)
                target.events.append(.abandon(start: start))
            }
            cursor = start
            if let e = error as? DESFormatError { throw e }
            throw DESFormatError(.io, "reading the body of \(DESNameRules.quoted(name)) failed: \(error)")
        }
        target.events.append(.end(name: name, metadata: metadata, start: start, length: total, close: descriptor))
        if descriptor >= 0 { target.descriptors += 1 }
        return total
    }

    /// Submits the full chunk `full` and makes a free one current.
    private func advance(from full: PipelineChunk, queue: ChunkQueue) throws -> PipelineChunk {
        let next = try queue.takeFree()
        next.reset(at: cursor)
        queue.submit(full)
        current = next
        return next
    }

    /// Hands the last chunk over; the feed takes no more files.
    fileprivate func finish() {
        closed = true
        if let queue, let chunk = current {
            queue.submit(chunk)
            current = nil
        }
    }
}

/// Carries a value to another thread when the code guarantees only one thread uses it at a time.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
