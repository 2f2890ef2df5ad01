/// A file body ready to be appended: a path on local disk.
public struct FetchedBody: Sendable {
    /// The file to read.
    public var path: String
    /// Whether the packer deletes it after use (a temporary download).
    public var isTemporary: Bool
    /// Creates a fetched body.
    public init(path: String, isTemporary: Bool) {
        self.path = path
        self.isTemporary = isTemporary
    }
}

/// Gets file bodies from where a source keeps them (local disk, S3).
public protocol BodyFetcher: Sendable {
    /// Makes the body at `location` readable from local disk. A missing body is
    /// a ``DESKitError`` with code `notFound` (the row fails; it is not retried).
    func fetch(_ location: BodyLocation) async throws -> FetchedBody
}
