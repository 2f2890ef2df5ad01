import DESFormat
import DESKit

#if canImport(Glibc)
import Glibc
#endif

/// A file read through a window of `windowSize` bytes: reads at rising offsets (a container's
/// entries, or its META records, in index order) cost one `pread` a window rather than one an
/// entry. Not shared between threads.
final class WindowedFile {
    let fileDescriptor: Int32
    let path: String
    private let window: UnsafeMutableRawBufferPointer
    private var windowStart: UInt64 = 0
    private var windowCount = 0

    /// Opens `path` for reading.
    init(path: String, windowSize: Int = 1 << 20) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DESKitError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))") }
        self.fileDescriptor = fd
        self.path = path
        self.window = .allocate(byteCount: max(4096, windowSize), alignment: 16)
    }

    deinit {
        window.deallocate()
        _ = close(fileDescriptor)
    }

    /// The bytes from `offset` on that the window holds (refilled from `offset` when it holds
    /// none of them); empty at the end of the file.
    func bytes(at offset: UInt64) throws -> UnsafeRawBufferPointer {
        if offset < windowStart || offset >= windowStart + UInt64(windowCount) {
            windowStart = offset
            windowCount = 0
            while windowCount < window.count {
                let n = pread(fileDescriptor, window.baseAddress.unsafelyUnwrapped + windowCount, window.count - windowCount, off_t(offset) + off_t(windowCount))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DESKitError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))")
                }
                if n == 0 { break }
                windowCount += n
            }
        }
        let skip = Int(offset - windowStart)
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(window)[skip..<windowCount])
    }

    /// Runs `body` over `length` bytes from `offset`, contiguous: from the window when they fit
    /// in it, else read on their own.
    func withBytes<T>(offset: UInt64, length: Int, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        if length <= window.count {
            var available = try bytes(at: offset)
            if available.count < length, offset != windowStart {
                windowCount = 0  // straddles the window's end: refill from offset
                available = try bytes(at: offset)
            }
            guard available.count >= length else { throw DESKitError(.invalidData, "\(path) ends inside a record") }
            return try body(UnsafeRawBufferPointer(rebasing: available[..<length]))
        }
        let own = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
        defer { own.deallocate() }
        var done = 0
        while done < length {
            let n = pread(fileDescriptor, own.baseAddress.unsafelyUnwrapped + done, length - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw DESKitError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw DESKitError(.invalidData, "\(path) ends inside a record") }
            done += n
        }
        return try body(UnsafeRawBufferPointer(own))
    }
}

/// The bytes of one entry: `length` bytes from `offset` of a ``WindowedFile``.
struct RangeStream: DESByteStream {
    let file: WindowedFile
    var offset: UInt64
    var remaining: UInt64

    init(file: WindowedFile, offset: UInt64, length: UInt64) {
        self.file = file
        self.offset = offset
        self.remaining = length
    }

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard remaining > 0, let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let available = try file.bytes(at: offset)
        if available.isEmpty { throw DESKitError(.invalidData, "\(file.path) ends inside an entry") }
        let n = min(buffer.count, Int(min(remaining, UInt64(available.count))))
        base.copyMemory(from: available.baseAddress.unsafelyUnwrapped, byteCount: n)
        offset += UInt64(n)
        remaining -= UInt64(n)
        return n
    }
}
