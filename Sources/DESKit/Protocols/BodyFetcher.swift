import DESFormat

/// A file body ready to be appended: a path on local disk, or a way to open it.
public struct FetchedBody: Sendable {
    /// The file to read (named in errors; read directly when there is no ``stampedOpener``).
    public var path: String
    /// Whether the packer deletes it after use (a temporary download).
    public var isTemporary: Bool
    /// Opens the body for reading and returns a descriptor the caller closes, with the body as
    /// `fstat` saw it once opened when the opener took that look (local disk does, to refuse
    /// anything but a regular file): the packer then reads the body against this stamp, with no
    /// `fstat` of its own. It may throw what ``BodyFetcher/fetch(_:)`` throws. Set by fetchers
    /// whose bodies are cheap to reach (local disk): the packer opens each body just before
    /// appending it, and no descriptor waits open in a batch fetched ahead. The descriptor may be
    /// left `O_NONBLOCK` (as a body that could be a FIFO is opened): readers clear the flag if a
    /// read answers `EAGAIN`.
    public var stampedOpener: (@Sendable () throws -> (descriptor: Int32, stamp: FileStamp?))?
    /// The SHA-256 (hex) its bytes must have, when the source recorded one (a filesystem
    /// source's scan): bytes that differ are not packed, and the row fails saying so.
    public var expectedSHA256: String?

    /// ``stampedOpener`` giving the descriptor only; an opener set here gives no stamp.
    public var opener: (@Sendable () throws -> Int32)? {
        get {
            guard let open = stampedOpener else { return nil }
            return { @Sendable in try open().descriptor }
        }
        set {
            guard let open = newValue else { return stampedOpener = nil }
            stampedOpener = { @Sendable in (descriptor: try open(), stamp: nil) }
        }
    }

    /// Creates a fetched body read from `path`.
    public init(path: String, isTemporary: Bool) {
        self.path = path
        self.isTemporary = isTemporary
        self.stampedOpener = nil
    }

    /// Creates a body opened when it is appended.
    public init(path: String, opener: @escaping @Sendable () throws -> Int32) {
        self.init(path: path, stampedOpener: { @Sendable in (descriptor: try opener(), stamp: nil) })
    }

    /// Creates a body opened when it is appended, by an opener that may also give its stamp.
    public init(path: String, stampedOpener: @escaping @Sendable () throws -> (descriptor: Int32, stamp: FileStamp?)) {
        self.path = path
        self.isTemporary = false
        self.stampedOpener = stampedOpener
    }
}

/// Gets file bodies from where a source keeps them (local disk, S3).
public protocol BodyFetcher: Sendable {
    /// Makes the body at `location` readable from local disk. A missing body is
    /// a ``DESKitError`` with code `notFound` (the row fails; it is not retried).
    func fetch(_ location: BodyLocation) async throws -> FetchedBody

    /// Releases connections, threads and temporary files (the fetcher is not used after). Default: nothing.
    func close() async

    /// The body's current version (size, and its S3 ETag or its mtime and inode on disk), or nil
    /// when there is no body there. Used by `des retire` to see that a body did not change
    /// between the check of its bytes and its deletion. Default: this fetcher cannot tell.
    func version(of location: BodyLocation) async throws -> BodyVersion?

    /// The file a body location reaches, as a text equal for every location that reaches it
    /// (device and inode on disk, through `./`, `//`, `..` and links), or nil when nothing is
    /// there — or when a location is its own identity (S3 keys): then `des retire` compares
    /// keys only. Used by `des retire` to keep a body that a row not yet packed reaches under
    /// another spelling. Default: nil.
    func identity(of location: BodyLocation) async throws -> String?

    /// Whether two locations may reach one body (paths on disk: yes; S3 keys: no). Default: no.
    var locationsMayAlias: Bool { get }

    /// Deletes bodies (`des retire`): S3 in DeleteObjects requests of up to 1,000 keys, local
    /// files unlinked only beneath the bodies' root. A body already gone counts as deleted.
    /// Returns the ones that could not be deleted, with why. Default: this fetcher cannot delete.
    func delete(_ locations: [BodyLocation]) async throws -> [BodyLocation: String]
}

/// One version of a body: what `des retire` compares before it deletes.
public struct BodyVersion: Sendable, Hashable, CustomStringConvertible {
    /// Its size in bytes.
    public var size: UInt64
    /// What changes when it is rewritten: the S3 ETag, or the mtime (ns) and inode on disk.
    public var tag: String
    /// Creates a version.
    public init(size: UInt64, tag: String) {
        self.size = size
        self.tag = tag
    }
    public var description: String { "\(size) bytes, \(tag)" }
}

extension BodyFetcher {
    public func close() async {}

    public func identity(of location: BodyLocation) async throws -> String? { nil }

    public var locationsMayAlias: Bool { false }

    public func version(of location: BodyLocation) async throws -> BodyVersion? {
        throw DESKitError(.configuration, "this body fetcher cannot tell a body's version, so des retire cannot delete its bodies")
    }

    public func delete(_ locations: [BodyLocation]) async throws -> [BodyLocation: String] {
        throw DESKitError(.configuration, "this body fetcher cannot delete bodies (des retire)")
    }
}
