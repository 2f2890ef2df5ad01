#if canImport(Glibc)
import Glibc
#endif

/// Where an archive's bytes come from: a local file (``DESArchiveReader/init(path:mode:)``),
/// or anything else that can read a range — an object in storage read with ranged requests.
///
/// Reads arrive from one thread at a time per reader operation, but a reader may be shared:
/// an implementation that keeps state guards it.
public protocol DESByteSource: AnyObject, Sendable {
    /// The archive's size in bytes.
    var size: UInt64 { get }

    /// Fills `buffer` with the bytes from `offset` (exactly `buffer.count` of them), or throws.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws

    /// Whether reading `length` bytes at `offset` costs nothing beyond what is already held
    /// (a remote source that holds the object's tail). The reader checks the header only
    /// when this is true of it: a remote read would otherwise spend a request on 12 bytes
    /// that the seal does not need.
    func isCheap(offset: UInt64, length: Int) -> Bool
}

extension DESByteSource {
    /// Every range of a local file is cheap.
    public func isCheap(offset: UInt64, length: Int) -> Bool { true }
}

/// A local file read with `pread`.
public final class FileByteSource: DESByteSource, @unchecked Sendable {
    let fd: Int32
    /// The file's path.
    public let path: String
    /// Its size when opened.
    public let size: UInt64

    /// Opens a regular file for reading.
    public convenience init(path: String) throws {
        // O_NONBLOCK: a FIFO at the path must not block the open (it is refused just below).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw ioError("open", path: path) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            let error = DESFormatError(.io, "not a regular file, or it cannot be examined", path: path)
            _ = Glibc.close(fd)
            throw error
        }
        self.init(fd: fd, path: path, size: UInt64(st.st_size))
    }

    /// Takes ownership of `fd` (closed when this goes).
    init(fd: Int32, path: String, size: UInt64) {
        self.fd = fd
        self.path = path
        self.size = size
    }

    deinit { _ = Glibc.close(fd) }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        try preadFully(fd, base, count: buffer.count, offset: offset, path: path)
    }
}
