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

/// Calls `step(done)` until `count` bytes are done, retrying short transfers and EINTR.
/// `step` makes one system call for the rest and returns its result; a 0 means the end was reached.
private func transferFully(
    _ count: Int, _ what: String, path: String, atEnd: (Int) -> DESFormatError, _ step: (Int) -> Int
) throws {
    var done = 0
    while done < count {
        let n = step(done)
        if n < 0 {
            if errno == EINTR { continue }
            throw ioError(what, path: path)
        }
        if n == 0 { throw atEnd(done) }
        done += n
    }
}

/// Reads exactly `count` bytes at `offset`, retrying short reads and EINTR.
func preadFully(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, count: Int, offset: UInt64, path: String) throws {
    try transferFully(
        count, "read", path: path,
        atEnd: {
            DESFormatError(
                .truncated, "the file ended at offset \(offset + UInt64($0)) while reading \(count) bytes at \(offset): it shrank or was truncated",
                path: path)
        }
    ) { done in pread(fd, buffer + done, count - done, off_t(offset) + off_t(done)) }
}

/// Writes all of `count` bytes, retrying short writes and EINTR.
func writeFully(_ fd: Int32, _ buffer: UnsafeRawPointer, count: Int, path: String) throws {
    try transferFully(count, "write", path: path, atEnd: { _ in noProgress(path) }) { done in
        write(fd, buffer + done, count - done)
    }
}

/// Writes all of `count` bytes at `offset`, retrying short writes and EINTR.
func pwriteFully(_ fd: Int32, _ buffer: UnsafeRawPointer, count: Int, offset: UInt64, path: String) throws {
    try transferFully(count, "write", path: path, atEnd: { _ in noProgress(path) }) { done in
        pwrite(fd, buffer + done, count - done, off_t(offset) + off_t(done))
    }
}

/// A write that wrote nothing and reported no error (the old loops would have spun forever).
private func noProgress(_ path: String) -> DESFormatError {
    DESFormatError(.io, "write failed: no bytes written", path: path)
}
