#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A source of bytes the writer can copy from without holding them all in memory.
///
/// The writer calls ``read(into:)`` repeatedly, handing it free space in its
/// output buffer, until it returns 0; the bytes land in the archive's buffer
/// directly, so a file's bytes are copied once.
public protocol DESByteStream {
    /// Fills the start of `buffer` with the next bytes and returns how many; 0 means the end.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Reads from an open file descriptor (which it does not close).
public struct DESFileDescriptorStream: DESByteStream {
    /// The descriptor read from.
    public let fileDescriptor: Int32
    /// Used in error messages.
    public let path: String
    /// When known, the number of bytes expected; reading stops there without an extra `read` call.
    public var expectedSize: UInt64?
    private var total: UInt64 = 0

    /// Creates a stream over `fileDescriptor`.
    public init(fileDescriptor: Int32, path: String, expectedSize: UInt64? = nil) {
        self.fileDescriptor = fileDescriptor
        self.path = path
        self.expectedSize = expectedSize
    }

    /// Creates a stream over a descriptor that must be a regular file, expecting the size `fstat` gives.
    public init(regularFile fileDescriptor: Int32, path: String) throws {
        var st = stat()
        if fstat(fileDescriptor, &st) != 0 { throw ioError("stat", path: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw DESFormatError(.io, "not a regular file", path: path)
        }
        self.init(fileDescriptor: fileDescriptor, path: path, expectedSize: UInt64(st.st_size))
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        var want = buffer.count
        if let expectedSize {
            // Stop at the size seen by fstat: no extra read() to find the end.
            if total >= expectedSize { return 0 }
            want = Int(min(UInt64(want), expectedSize - total))
        }
        while true {
            let n = Glibc.read(fileDescriptor, base, want)
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("read", path: path)
            }
            if n == 0, let expectedSize, total < expectedSize {
                throw DESFormatError(
                    .sizeMismatch, "file shrank while reading: expected \(expectedSize) bytes, got \(total)", path: path)
            }
            total += UInt64(n)
            return n
        }
    }
}

/// Reads from an in-memory buffer.
public struct DESBufferStream: DESByteStream {
    private let bytes: [UInt8]
    private var position = 0

    /// Creates a stream over `bytes`.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - position)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress?.copyMemory(from: src.baseAddress.unsafelyUnwrapped + position, byteCount: n)
        }
        position += n
        return n
    }
}
