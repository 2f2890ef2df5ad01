import DESFormat
import DESKit
import Foundation
import Synchronization

/// The archive file of one container being written in the packer's work directory.
///
/// The writer sits behind a lock, so the file can be handed to the background task that
/// closes and uploads it while the packer keeps a reference to abort it later; uncontended,
/// the lock costs a few nanoseconds a file.
final class ContainerFile: Sendable {
    private let writer: Mutex<DESArchiveWriter>
    /// Where the archive is written.
    let path: String
    /// Where the writer keeps its partial file until it is closed.
    let partialPath: String

    /// Creates the archive at `path`, replacing any file there.
    init(path: String) throws {
        var options = DESArchiveWriter.Options()
        options.overwrite = true
        // Not synced here: the work directory is never read after a crash (recovery works from the
        // metadata store and the storage). The storage backend's put makes the container durable
        // where it is kept, once.
        options.syncOnClose = false
        // A quarter of the default buffer: a packer keeps a container open per (day, shard), up to
        // some hundreds at once (256 shards, and a backlog of earlier days), and each buffer ends
        // up resident. Bodies are still written in writes of up to 256 KiB.
        options.bufferSize = 256 * 1024
        let writer = try DESArchiveWriter(path: path, options: options)
        self.path = path
        self.partialPath = writer.partialPath
        self.writer = Mutex(writer)
    }

    /// Appends the regular file open on `descriptor` (read from `bodyPath`), as `fstat` saw it
    /// before (`stamp`): its size is read, and a file whose size, mtime or ctime moved by the end
    /// of the read is refused (``DESFormatError/Code/changedWhileRead``) and nothing of it kept;
    /// so are bytes whose SHA-256 is not `expectedSHA256` (``DESFormatError/Code/unexpectedContent``).
    func add(
        name: String, fileDescriptor descriptor: Int32, stamp: FileStamp, path bodyPath: String, metadata: DESMetadata, expectedSHA256: String? = nil
    ) throws -> DESIndexEntry {
        try writer.withLock { writer in
            var stream = DESFileDescriptorStream(fileDescriptor: descriptor, path: bodyPath, expectedSize: stamp.size, unchangedSince: stamp)
            return try writer.add(name: name, from: &stream, metadata: metadata, expectedSHA256: expectedSHA256)
        }
    }

    /// Appends the body at `bodyPath`.
    func add(name: String, contentsOfFile bodyPath: String, metadata: DESMetadata) throws -> DESIndexEntry {
        try writer.withLock { try $0.add(name: name, contentsOfFile: bodyPath, metadata: metadata) }
    }

    /// Appends an entry whose bytes are stored at `externalKey`.
    func addExternal(name: String, size: UInt64, externalKey: String, sha256: String, metadata: DESMetadata) throws -> DESIndexEntry {
        try writer.withLock { try $0.addExternal(name: name, size: size, externalKey: externalKey, sha256: sha256, metadata: metadata) }
    }

    /// Writes the index and footer and moves the archive to ``path``.
    func close() throws -> DESArchiveSummary { try writer.withLock { try $0.close() } }

    /// The names written, in order.
    var names: [String] { writer.withLock { $0.addedNames } }

    /// Gives up the archive: its partial file is removed.
    func abort() { writer.withLock { $0.abort() } }
}
