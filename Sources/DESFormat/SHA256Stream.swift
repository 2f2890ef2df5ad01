import CDESCrypto
#if canImport(Glibc)
import Glibc
#endif

/// Streaming SHA-256 over OpenSSL's EVP interface (SHA-NI accelerated where
/// the CPU has it). One instance is reused for many files; not thread-safe.
final class SHA256Stream {
    private let context: OpaquePointer
    private let digest: OpaquePointer?

    init() {
        // EVP_MD_CTX_new only fails when memory is exhausted.
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        context = ctx
        // An explicitly fetched implementation, fetched once per process: EVP_sha256() would be
        // looked up again on every init (OpenSSL 3), which costs more than hashing a small file,
        // and a reader makes a stream per body it checks.
        digest = Self.fetchedSHA256 ?? EVP_sha256()
        reset()
    }

    /// SHA-256 fetched once and kept for the process (never freed; OpenSSL's EVP_MD is immutable
    /// and may be shared between threads).
    nonisolated(unsafe) private static let fetchedSHA256: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)

    deinit {
        EVP_MD_CTX_free(context)
    }

    /// Starts a new digest.
    func reset() {
        EVP_DigestInit_ex(context, digest, nil)
    }

    /// Feeds bytes into the digest.
    @inline(__always)
    func update(_ bytes: UnsafeRawPointer, count: Int) {
        if count > 0 { EVP_DigestUpdate(context, bytes, count) }
    }

    /// Feeds a buffer into the digest.
    func update(_ buffer: UnsafeRawBufferPointer) {
        if let base = buffer.baseAddress { update(base, count: buffer.count) }
    }

    /// Ends the digest and returns it as lowercase hex, made in place; the stream is reset.
    func finalizeHex() -> String {
        var digest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var length: UInt32 = 0
        let text = withUnsafeMutableBytes(of: &digest) { raw in
            EVP_DigestFinal_ex(context, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), &length)
            return Self.hexString(UnsafeRawBufferPointer(raw))
        }
        reset()
        return text
    }

    /// Ends the digest, appends it to `out` as 64 lowercase hex digits and returns its 32 bytes;
    /// the stream is reset.
    @discardableResult
    func finalizeHex(appendingTo out: inout [UInt8]) -> [UInt8] {
        var digest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var length: UInt32 = 0
        let bytes = withUnsafeMutableBytes(of: &digest) { raw in
            EVP_DigestFinal_ex(context, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), &length)
            for b in raw {
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0x0F)])
            }
            return [UInt8](raw)
        }
        reset()
        return bytes
    }

    /// A 32-byte digest as 64 lowercase hex digits, made in place.
    static func hexString(_ digest: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: 64) { text in
            for (i, b) in digest.prefix(32).enumerated() {
                text[2 * i] = hexDigits[Int(b >> 4)]
                text[2 * i + 1] = hexDigits[Int(b & 0x0F)]
            }
            return 64
        }
    }

    /// The SHA-256 of a whole buffer, as lowercase hex.
    /// No context allocated (``cdes_sha256``): a server checks a small body on every read.
    static func hex(of buffer: UnsafeRawBufferPointer) -> String {
        var digest: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &digest) { raw in
            let out = raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: UInt8.self)
            let empty: UInt8 = 0
            withUnsafePointer(to: empty) { none in
                cdes_sha256(buffer.baseAddress ?? UnsafeRawPointer(none), buffer.count, out)
            }
            return hexString(UnsafeRawBufferPointer(raw))
        }
    }
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

/// SHA-256 of whole files, for bodies stored outside an archive (their sha256 goes into META).
public enum DESFileDigest {
    /// The lower-case hex SHA-256 of the file at `path`, read in 1 MiB pieces.
    public static func sha256(ofFile path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DESFormatError(.io, "cannot open to hash it", path: path, errno: errno) }
        defer { _ = Glibc.close(fd) }
        return try sha256(ofFileDescriptor: fd, path: path)
    }

    /// The lower-case hex SHA-256 of what is left to read of the open file `fd` (the caller
    /// keeps and closes it; `path` names it in errors), read in pieces of at most 64 KiB.
    ///
    /// The buffer stays under malloc's mmap threshold (128 KiB): a 1 MiB one was mapped, zeroed
    /// by page faults and unmapped for every file, which cost a scan of small files more than
    /// reading and hashing them.
    public static func sha256(ofFileDescriptor fd: Int32, path: String) throws -> String {
        try DESFileHasher().sha256(ofFileDescriptor: fd, path: path)
    }
}

/// SHA-256 of many files in turn, with one digest context and one read buffer (64 KiB, under
/// malloc's mmap threshold) kept between them: a scan hashing small files spent more on making
/// and freeing those per file than on hashing. Not thread-safe: one per thread.
public final class DESFileHasher {
    private let stream = SHA256Stream()
    private let size = 64 << 10
    private let buffer: UnsafeMutableRawPointer

    /// A hasher with its context and buffer.
    public init() { buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16) }

    deinit { buffer.deallocate() }

    /// The lower-case hex SHA-256 of what is left to read of the open file `fd`, up to the end
    /// (the caller keeps and closes it; `path` names it in errors). It reads on past the size
    /// `fstat` gave until a read finds the end: a file whose size understates its bytes (a
    /// stale attribute cache) must not be hashed short, then packed short and taken as whole.
    public func sha256(ofFileDescriptor fd: Int32, path: String) throws -> String {
        while true {
            let n = read(fd, buffer, size)
            if n == 0 { break }
            guard n > 0 else {
                if errno == EINTR { continue }
                let error = DESFormatError(.io, "cannot read to hash it", path: path, errno: errno)
                stream.reset()  // for the next file
                throw error
            }
            stream.update(buffer, count: n)
        }
        return stream.finalizeHex()  // (which starts the next digest)
    }
}

/// A private copy of a body, hashed as it is copied: what is stored outside a container must
/// be DES's own file, never the source's (a hard link would share its inode, and a write to
/// the source would change the stored bytes).
public enum DESFileCopy {
    /// Copies everything `stream` reads into a new file at `target` (which must not exist) and
    /// returns the lower-case hex SHA-256 of the bytes copied. The stream's own checks (size,
    /// a change while read) throw as they would for a container's entry; on any error the
    /// partial copy is removed.
    public static func copy(_ stream: inout DESFileDescriptorStream, to target: String) throws -> String {
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw DESFormatError(.io, "cannot create the copy", path: target, errno: errno) }
        var done = false
        defer {
            Glibc.close(output)
            if !done { unlink(target) }
        }
        let hasher = SHA256Stream()
        let size = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = try stream.read(into: buffer)
            if n == 0 { break }
            guard let base = buffer.baseAddress else { break }
            hasher.update(base, count: n)
            try writeFully(output, base, count: n, path: target)
        }
        done = true
        return hasher.finalizeHex()
    }
}
