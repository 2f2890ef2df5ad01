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

    public static func == (a: Self, b: Self) -> Bool { a.text.utf8.elementsEqual(b.text.utf8) }

    public func hash(into hasher: inout Hasher) {
        let hashed = text.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil { for byte in text.utf8 { hasher.combine(byte) } }
    }

    public var description: String { text }
}
