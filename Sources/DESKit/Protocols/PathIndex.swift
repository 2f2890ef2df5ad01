/// Where a source plugin answers "which packed file was at this path?": the `filesystem`
/// source, whose catalog keeps a row per version of each file beneath its roots. `des get
/// --path`, `des ls-versions` and `GET /files/by-path/{path}` read through it. A plugin
/// registers one with ``PluginRegistry/registerPathIndex(type:factory:)``.
public protocol PathIndex: Sendable {
    /// The source this index answers for.
    var sourceName: String { get }
    /// Every version recorded of the file at `path` (relative to a root) beneath `root` (a root
    /// as the config names it), or beneath any root when nil; oldest first.
    func versions(ofPath path: String, root: String?) async throws -> [PathVersion]
}

/// One recorded version of a file at a path.
public struct PathVersion: Sendable, Hashable, Codable {
    /// The source whose catalog holds it.
    public var source: String
    /// The root it lies beneath, as the config names it.
    public var root: String
    /// The path beneath the root.
    public var path: String
    /// 1 for the first version seen, then one more for each change after a version was packed.
    public var version: Int
    /// Its row's status in the source's catalog.
    public var status: String
    /// Its DES name, once the marker named it.
    public var name: String?
    /// Whether DES holds its bytes: it was packed (a version since replaced or removed in the
    /// tree included), so reading it by ``name`` returns them.
    public var held: Bool
    /// Whether it was deleted by name (`des delete`): DES no longer serves its bytes.
    public var deleted: Bool
    /// Its size, in bytes.
    public var sizeBytes: UInt64
    /// Its modification time, in nanoseconds since the epoch.
    public var mtimeNanoseconds: Int64
    /// The hex SHA-256 of its bytes, once packed (or found equal to a packed version's).
    public var sha256: String?

    /// Creates a version.
    public init(
        source: String, root: String, path: String, version: Int, status: String, name: String?, held: Bool, deleted: Bool = false,
        sizeBytes: UInt64, mtimeNanoseconds: Int64, sha256: String? = nil
    ) {
        self.deleted = deleted
        self.source = source
        self.root = root
        self.path = path
        self.version = version
        self.status = status
        self.name = name
        self.held = held
        self.sizeBytes = sizeBytes
        self.mtimeNanoseconds = mtimeNanoseconds
        self.sha256 = sha256
    }
}
