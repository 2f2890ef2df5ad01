#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    /// Reads a little-endian integer at `offset` without alignment requirements.
    @inline(__always)
    func loadLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

/// `errno` as a readable string.
func errnoText(_ code: Int32) -> String {
    if let text = strerror(code) { return String(cString: text) }
    return "errno \(code)"
}

/// An I/O error for a failed system call, naming the call and the path.
func ioError(_ what: String, path: String, errno code: Int32 = errno) -> DESFormatError {
    DESFormatError(.io, "\(what) failed: \(errnoText(code))", path: path, errno: code)
}

/// Reads exactly `count` bytes at `offset`, retrying short reads and EINTR.
func preadFully(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, count: Int, offset: UInt64, path: String) throws {
    var done = 0
    while done < count {
        let n = pread(fd, buffer + done, count - done, off_t(offset) + off_t(done))
        if n < 0 {
            if errno == EINTR { continue }
            throw ioError("read", path: path)
        }
        if n == 0 {
            throw DESFormatError(.regionOutOfBounds, "unexpected end of file at offset \(offset + UInt64(done))", path: path)
        }
        done += n
    }
}

/// Writes all of `count` bytes, retrying short writes and EINTR.
func writeFully(_ fd: Int32, _ buffer: UnsafeRawPointer, count: Int, path: String) throws {
    var done = 0
    while done < count {
        let n = write(fd, buffer + done, count - done)
        if n < 0 {
            if errno == EINTR { continue }
            throw ioError("write", path: path)
        }
        done += n
    }
}

/// Writes all of `count` bytes at `offset`, retrying short writes and EINTR.
func pwriteFully(_ fd: Int32, _ buffer: UnsafeRawPointer, count: Int, offset: UInt64, path: String) throws {
    var done = 0
    while done < count {
        let n = pwrite(fd, buffer + done, count - done, off_t(offset) + off_t(done))
        if n < 0 {
            if errno == EINTR { continue }
            throw ioError("write", path: path)
        }
        done += n
    }
}
