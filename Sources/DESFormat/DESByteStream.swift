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
    /// The file as `fstat` saw it before the read: with it, the end of the stream `fstat`s again
    /// and a file whose size, mtime or ctime moved is ``DESFormatError/Code/changedWhileRead``.
    public var unchangedSince: FileStamp?
    private var total: UInt64 = 0
    private var checked = false
    private var probed = false

    /// Creates a stream over `fileDescriptor`.
    public init(fileDescriptor: Int32, path: String, expectedSize: UInt64? = nil, unchangedSince: FileStamp? = nil) {
        self.fileDescriptor = fileDescriptor
        self.path = path
        self.expectedSize = expectedSize
        self.unchangedSince = unchangedSince
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
            // Stop at the size seen by fstat: no extra read() to find the end. Except after none:
            // a file fstat calls empty may be one whose size the kernel does not know (/proc,
            // /sys), whose bytes would be packed as an empty body; one read shows it.
            if total >= expectedSize {
                if expectedSize == 0, !probed {
                    probed = true
                    if try hasBytes(base) {
                        try checkUnchanged()  // written since the stamp: changed while read
                        throw DESFormatError(
                            .sizeMismatch, "has bytes, yet fstat gives it 0 bytes (a /proc or /sys file?): its size cannot be trusted", path: path)
                    }
                }
                try checkUnchanged()
                return 0
            }
            want = Int(min(UInt64(want), expectedSize - total))
        }
        let n = readBlocking(fileDescriptor, base, want)
        if n < 0 { throw ioError("read", path: path) }
        if n == 0, let expectedSize, total < expectedSize {
            // Shrunk under a stamp taken before the read: changed while read, like any other change.
            if unchangedSince != nil { try checkUnchanged() }
            throw DESFormatError(
                .sizeMismatch, "file shrank while reading: expected \(expectedSize) bytes, got \(total)", path: path)
        }
        if n == 0 { try checkUnchanged() }
        total += UInt64(n)
        return n
    }

    /// Whether a read at the end still finds a byte (into `scratch`).
    private func hasBytes(_ scratch: UnsafeMutableRawPointer) throws -> Bool {
        let n = readBlocking(fileDescriptor, scratch, 1)
        if n < 0 { throw ioError("read", path: path) }
        return n > 0
    }

    /// At the end: the file must still be as it was before the read.
    private mutating func checkUnchanged() throws {
        guard let before = unchangedSince, !checked else { return }
        checked = true
        let after = try FileStamp(fileDescriptor: fileDescriptor, path: path)
        guard after == before else {
            throw DESFormatError(
                .changedWhileRead, "changed while it was read (before: \(before); after: \(after)): nothing of it is kept", path: path)
        }
    }
}

/// `read(2)` of up to `count` bytes into `buffer`, again when interrupted; a descriptor opened
/// `O_NONBLOCK` (as bodies are, so that a FIFO cannot block the open) that answers `EAGAIN` (a
/// file system that honours the flag for regular files) is made blocking and read again. The
/// bytes read, or -1 with `errno` set.
public func readBlocking(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    while true {
        let n = Glibc.read(fd, buffer, count)
        if n >= 0 { return n }
        if errno == EINTR { continue }
        if errno == EAGAIN || errno == EWOULDBLOCK, makeBlocking(fd) { continue }
        return -1
    }
}

/// Clears `O_NONBLOCK` on `fd`; whether it was set and is now cleared (a read that met `EAGAIN`
/// on a descriptor opened non-blocking goes on blocking).
public func makeBlocking(_ fd: Int32) -> Bool {
    let flags = fcntl(fd, F_GETFL)
    return flags >= 0 && flags & O_NONBLOCK != 0 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0
}

/// What tells one file, and one version of it, from another on disk: device and inode, size,
/// mtime and ctime (ns) — what restic and borg compare.
public struct FileStamp: Sendable, Hashable, CustomStringConvertible {
    /// The device it is on.
    public var device: UInt64
    /// Its inode number.
    public var inode: UInt64
    /// Its size in bytes.
    public var size: UInt64
    /// Its modification time, ns since the epoch.
    public var mtimeNanos: Int64
    /// Its status-change time, ns since the epoch.
    public var ctimeNanos: Int64

    /// A stamp from its parts.
    public init(device: UInt64, inode: UInt64, size: UInt64, mtimeNanos: Int64, ctimeNanos: Int64) {
        (self.device, self.inode, self.size, self.mtimeNanos, self.ctimeNanos) = (device, inode, size, mtimeNanos, ctimeNanos)
    }

    /// The stamp of a `stat`.
    public init(_ st: stat) {
        self.init(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: UInt64(max(0, st.st_size)),
            mtimeNanos: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
            ctimeNanos: Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec))
    }

    /// The stamp of an open file.
    public init(fileDescriptor: Int32, path: String) throws {
        var st = stat()
        if fstat(fileDescriptor, &st) != 0 { throw ioError("stat", path: path) }
        self.init(st)
    }

    public var description: String { "\(size) bytes, mtime \(mtimeNanos), ctime \(ctimeNanos), inode \(inode)" }

    /// `device:inode:size:mtime:ctime`, as a filesystem source's catalog row keeps it.
    public var text: String { "\(device):\(inode):\(size):\(mtimeNanos):\(ctimeNanos)" }

    /// The stamp ``text`` wrote; nil for anything else (not five decimal numbers in range,
    /// the last two signed). Read byte by byte: the packer parses one per file.
    public init?(text: String) {
        var copy = text
        guard let stamp = copy.withUTF8({ Self.parse($0) }) else { return nil }
        self = stamp
    }

    /// Five `:`-separated decimal numbers, each of at least one digit and within 64 bits; only
    /// the last two (the times) may start with `-`.
    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> FileStamp? {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 5) { values in
            values.initialize(repeating: 0)
            var (field, digits, minus) = (0, 0, (false, false))
            for byte in bytes {
                if byte == UInt8(ascii: ":") {
                    guard digits > 0, field < 4 else { return nil }
                    (field, digits) = (field + 1, 0)
                } else if byte == UInt8(ascii: "-") {
                    guard field >= 3, digits == 0, !(field == 3 ? minus.0 : minus.1) else { return nil }
                    if field == 3 { minus.0 = true } else { minus.1 = true }
                } else {
                    guard byte >= 48, byte <= 57 else { return nil }
                    let (times, o1) = values[field].multipliedReportingOverflow(by: 10)
                    let (sum, o2) = times.addingReportingOverflow(UInt64(byte - 48))
                    guard !o1, !o2 else { return nil }
                    (values[field], digits) = (sum, digits + 1)
                }
            }
            guard field == 4, digits > 0 else { return nil }
            func signed(_ magnitude: UInt64, _ negative: Bool) -> Int64? {
                if !negative { return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil }
                return magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil
            }
            guard let mtime = signed(values[3], minus.0), let ctime = signed(values[4], minus.1) else { return nil }
            return FileStamp(device: values[0], inode: values[1], size: values[2], mtimeNanos: mtime, ctimeNanos: ctime)
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
