/// An incremental SHA-256 of a body as it is read (OpenSSL's EVP, SHA-NI accelerated where the
/// processor has it), for checking bytes against the `sha256` their META records without
/// holding them all. Not thread-safe: one digest per task.
public final class BodyDigest {
    private let stream = SHA256Stream()

    /// An empty digest.
    public init() {}

    /// Feeds `bytes` into the digest.
    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { stream.update($0) }
    }

    /// Ends the digest: the SHA-256 of everything fed, as 64 lowercase hex digits. The digest
    /// starts again empty.
    public func finalizeHex() -> String { stream.finalizeHex() }

    /// The SHA-256 of `bytes`, as 64 lowercase hex digits.
    public static func hex(of bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { SHA256Stream.hex(of: $0) }
    }
}
