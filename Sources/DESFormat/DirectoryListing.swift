import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One directory's entries (less `.` and `..`), sorted by their bytes so a tree is walked in the
/// same order everywhere (`des pack`, the filesystem scanner). Names are kept NUL-terminated in
/// one buffer: no string per entry until one is needed.
public struct DirectoryListing: Sendable {
    private var arena: [UInt8] = []
    private var entries: [(start: Int, count: Int, type: UInt8)] = []

    /// Reads every entry of `dir`.
    public init(_ dir: OpaquePointer, path: String) throws {
        while true {
            errno = 0
            guard let ent = readdir(dir) else {
                if errno != 0 { throw ioError("read directory", path: path) }
                break
            }
            let type = ent.pointee.d_type
            withUnsafeBytes(of: ent.pointee.d_name) { raw in
                let count = raw.firstIndex(of: 0) ?? raw.count
                let dot = UInt8(ascii: ".")
                if (count == 1 && raw[0] == dot) || (count == 2 && raw[0] == dot && raw[1] == dot) { return }
                entries.append((arena.count, count, type))
                arena.append(contentsOf: raw.prefix(count))
                arena.append(0)
            }
        }
        arena.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            entries.sort { a, b in
                let r = memcmp(base + a.start, base + b.start, min(a.count, b.count))
                return r != 0 ? r < 0 : a.count < b.count
            }
        }
    }

    /// Calls `body` with each entry's NUL-terminated name, its bytes, and its `d_type`, in order.
    public func forEach(
        _ body: (UnsafePointer<CChar>, UnsafeBufferPointer<UInt8>, UInt8) throws -> Void
    ) rethrows {
        try arena.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            for entry in entries {
                let bytes = UnsafeBufferPointer(start: base + entry.start, count: entry.count)
                try UnsafeRawPointer(base + entry.start).withMemoryRebound(to: CChar.self, capacity: entry.count + 1) {
                    try body($0, bytes, entry.type)
                }
            }
        }
    }
}
