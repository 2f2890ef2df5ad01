/// A file body ready to be appended: a path on local disk, or a way to open it.
public struct FetchedBody: Sendable {
    /// The file to read (named in errors; read directly when there is no ``opener``).
    public var path: String
    /// Whether the packer deletes it after use (a temporary download).
    public var isTemporary: Bool
    /// Opens the body for reading and returns a descriptor the caller closes; it may throw what
    /// ``BodyFetcher/fetch(_:)`` throws. Set by fetchers whose bodies are cheap to reach (local
    /// disk): the packer opens each body just before appending it, and no descriptor waits open
    /// in a batch fetched ahead.
    public var opener: (@Sendable () throws -> Int32)?

    /// Creates a fetched body read from `path`.
    public init(path: String, isTemporary: Bool) {
        self.path = path
        self.isTemporary = isTemporary
        self.opener = nil
    }

    /// Creates a body opened when it is appended.
    public init(path: String, opener: @escaping @Sendable () throws -> Int32) {
        self.path = path
        self.isTemporary = false
        self.opener = opener
    }
}

/// Gets file bodies from where a source keeps them (local disk, S3).
public protocol BodyFetcher: Sendable {
    /// Makes the body at `location` readable from local disk. A missing body is
    /// a ``DESKitError`` with code `notFound` (the row fails; it is not retried).
    func fetch(_ location: BodyLocation) async throws -> FetchedBody

    /// Releases connections, threads and temporary files (the fetcher is not used after). Default: nothing.
    func close() async
}

extension BodyFetcher {
    public func close() async {}
}
