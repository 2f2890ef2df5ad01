import DESFormat
import DESKit


/// A file read through a window of `windowSize` bytes: reads at rising offsets (a container's
/// entries, or its META records, in index order) cost one `pread` a window rather than one an
/// entry. Not shared between threads.
final class WindowedFile {
    let file: FileByteSource
    var path: String { file.path }
    private let window: UnsafeMutableRawBufferPointer
    private var windowStart: UInt64 = 0
    private var windowCount = 0

    /// Opens `path` for reading.
    init(path: String, windowSize: Int = 1 << 20) throws {
        self.file = try FileByteSource(path: path)
        self.window = .allocate(byteCount: max(4096, windowSize), alignment: 16)
    }

    deinit { window.deallocate() }

    /// The bytes from `offset` on that the window holds (refilled from `offset` when it holds
    /// none of them); empty at the end of the file.
    func bytes(at offset: UInt64) throws -> UnsafeRawBufferPointer {
        if offset < windowStart || offset >= windowStart + UInt64(windowCount) {
            let count = Int(min(UInt64(window.count), file.size - min(offset, file.size)))
            windowStart = offset
            windowCount = 0
            try file.read(into: UnsafeMutableRawBufferPointer(rebasing: window[..<count]), at: offset)
            windowCount = count
        }
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(window)[Int(offset - windowStart)..<windowCount])
    }

    /// Runs `body` over `length` bytes from `offset`, contiguous: from the window when they fit
    /// in it, else read on their own.
    func withBytes<T>(offset: UInt64, length: Int, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        guard offset <= file.size, UInt64(length) <= file.size - offset else { throw DESKitError(.invalidData, "\(path) ends inside a record") }
        if length <= window.count {
            var available = try bytes(at: offset)
            if available.count < length {
                windowCount = 0  // straddles the window's end: refill from offset
                available = try bytes(at: offset)
            }
            return try body(UnsafeRawBufferPointer(rebasing: available[..<length]))
        }
        let own = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
        defer { own.deallocate() }
        try file.read(into: own, at: offset)
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
