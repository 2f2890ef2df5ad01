#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Text compared and hashed byte for byte (its UTF-8). Swift's `String` compares by Unicode
/// canonical equivalence, so `café` written precomposed (`c3 a9`) and decomposed
/// (`65 cc 81`) are one string; to a file system they are two names, and to JSON (RFC 8259
/// §8.3) two member names.
public struct ExactText: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The text (its bytes kept exactly).
    public let text: String

    /// The text `text`.
    public init(_ text: String) { self.text = text }
    public init(stringLiteral value: String) { text = value }

    public static func == (a: Self, b: Self) -> Bool { bytesEqual(a.text, b.text) }

    /// Whether `a` and `b` have the same UTF-8 bytes (not Swift's canonical equivalence): a
    /// length check, then one `memcmp` of their contiguous storage (a generic byte-by-byte walk
    /// of the views was a quarter of a rescan's comparison of 100,000 paths).
    public static func bytesEqual(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count && byteOrder(a, b) == 0
    }

    /// The order of `a` and `b` by their UTF-8 bytes (a prefix first): negative, zero or
    /// positive. One `memcmp` of their contiguous storage; the views' generic walk only for a
    /// string without contiguous bytes.
    static func byteOrder(_ a: String, _ b: String) -> Int {
        let (x, y) = (a.utf8, b.utf8)
        let compared = x.withContiguousStorageIfAvailable { p in
            y.withContiguousStorageIfAvailable { q -> Int in
                let common = min(p.count, q.count)
                if common > 0, let a = p.baseAddress, let b = q.baseAddress {
                    let order = memcmp(a, b, common)
                    if order != 0 { return Int(order) }
                }
                return p.count - q.count
            }
        }
        if let order = compared ?? nil { return order }
        if x.elementsEqual(y) { return 0 }
        return x.lexicographicallyPrecedes(y) ? -1 : 1
    }

    public func hash(into hasher: inout Hasher) {
        let hashed: Void? = text.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil { for byte in text.utf8 { hasher.combine(byte) } }
    }

    public var description: String { text }
}
