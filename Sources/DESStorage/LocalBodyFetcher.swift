import CDESFileSystem
import DESFormat
import DESKit
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Bodies on local disk: keys are paths relative to a root.
///
/// A catalog row must not reach outside the root: a key whose resolved path
/// (after `..` and symbolic links) leaves the root is refused, and so is an
/// absolute key unless `allowAbsolute` is set. Such a refusal is permanent (the
/// packer sends the row to the dead-letter table with the reason).
///
/// On Linux the kernel does the check in one call (`openat2` with `RESOLVE_BENEATH`
/// against the root's directory, kept open); elsewhere, or where a sandbox refuses
/// `openat2`, the key's path is resolved component by component (`realpath`) and
/// compared with the root's.
public struct LocalBodyFetcher: BodyFetcher {
    /// The directory relative keys resolve against.
    public let root: String
    /// Whether absolute paths in the catalog are used as they are (`bodies.allow_absolute`).
    public let allowAbsolute: Bool

    /// The root with its links resolved, and its directory open, when it existed at creation
    /// (every fetch would otherwise resolve it again).
    private let directory: RootDirectory?
    private let kernelConfinement: Bool
    /// The root's open directory when the kernel may confine paths to it (retire's unlinks).
    var rootDirectory: RootDirectory? { kernelConfinement ? directory : nil }

    /// Creates a fetcher.
    public init(root: String, allowAbsolute: Bool = false) {
        self.init(root: root, allowAbsolute: allowAbsolute, kernelConfinement: true)
    }

    /// Creates a fetcher; `kernelConfinement: false` always takes the portable path (tests).
    init(root: String, allowAbsolute: Bool, kernelConfinement: Bool) {
        self.root = root
        self.allowAbsolute = allowAbsolute
        self.directory = RootDirectory(path: root)
        self.kernelConfinement = kernelConfinement
    }

    /// A key is opened only when the packer appends it (``FetchedBody/opener``); a relative one
    /// beneath the root's open directory: one short path walk, and nothing can swap a link
    /// between the check and the read.
    public func fetch(_ location: BodyLocation) async throws -> FetchedBody {
        let key = location.key
        guard kernelConfinement, !key.isEmpty, !key.hasPrefix("/"), let directory else {
            let path = try resolve(key)
            let resolved = !key.hasPrefix("/")
            return FetchedBody(path: path, stampedOpener: {
                let opened = try Self.openResolved(path, linksResolved: resolved)
                return (opened.descriptor, opened.stamp)
            })
        }
        return FetchedBody(path: directory.resolvedPath + "/" + key, stampedOpener: { [self] in
            let opened = try openStamped(key)
            return (opened.descriptor, opened.stamp)
        })
    }

    /// Opens a key for reading under the same rules as ``resolve(_:)``; the caller closes the
    /// descriptor. It never blocks: the body is opened `O_NONBLOCK` and must be a regular file
    /// (a FIFO, a device, a socket or a directory is refused with `invalidData`, naming it).
    public func open(_ key: String) throws -> Int32 { try openStamped(key).descriptor }

    /// ``open(_:)``, also giving the file as `fstat` saw it once opened.
    public func openStamped(_ key: String) throws -> (descriptor: Int32, stamp: FileStamp) {
        if kernelConfinement, !key.isEmpty, !key.hasPrefix("/"), !key.utf8.contains(0), let directory,
            let fd = directory.openBeneath(key), fd >= 0
        {
            return try Self.regularFile(fd, path: directory.resolvedPath + "/" + key)
        }
        return try Self.openResolved(try resolve(key), linksResolved: !key.hasPrefix("/"))
    }

    /// Opens a body path without blocking; it must be a regular file. With `linksResolved` (a
    /// relative key, resolved with every link followed and checked against the root a moment
    /// ago) no link is allowed on the way, so a component swapped for a link since (to lead out
    /// of the root) fails the open instead of being followed; plain open where the kernel cannot
    /// say. An absolute key (`allow_absolute`) is the catalog's own path, opened as it is.
    static func openResolved(_ path: String, linksResolved: Bool) throws -> (descriptor: Int32, stamp: FileStamp) {
        var fd: Int32 = -1
        var plain = !linksResolved
        if linksResolved {
            fd = cdes_open_no_symlinks(path)
            plain = fd < 0 && (errno == ENOSYS || errno == EPERM || errno == EINVAL)
        }
        if plain { fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw DESKitError(.notFound, "no such file '\(path)'") }
            if let kind = specialKind(at: path) { throw notRegular(path, kind: kind) }
            throw DESKitError(.storage, "cannot open body '\(path)': \(String(cString: strerror(code)))")
        }
        return try regularFile(fd, path: path)
    }

    /// The path a key names, checked against the root.
    public func resolve(_ key: String) throws -> String {
        guard !key.isEmpty else { throw DESKitError(.invalidData, "row has an empty body key") }
        guard !key.utf8.contains(0) else { throw DESKitError(.invalidData, "body key contains a NUL byte") }
        if key.hasPrefix("/") {
            guard allowAbsolute else {
                throw DESKitError(
                    .invalidData,
                    "absolute body path '\(key)' refused: bodies are read under the root '\(root)' (set bodies.allow_absolute: true to allow absolute paths)")
            }
            return key
        }
        let root = directory ?? RootDirectory(path: self.root)
        guard let root else {
            throw DESKitError(.unavailable, "body root '\(self.root)' does not exist (is its volume mounted?)")
        }
        let joined = root.resolvedPath + "/" + key
        if kernelConfinement, let fd = root.openBeneath(key) {
            guard fd >= 0 else {
                // Missing: the answer. Anything else — an escape (EXDEV; also an absolute link that
                // points back inside the root, which the kernel refuses too), unreadable — is
                // settled by resolving the path, and the reason named from there.
                if errno == ENOENT || errno == ENOTDIR, !Self.escapesLexically(key) {
                    throw DESKitError(.notFound, "no such file '\(joined)'")
                }
                return try resolvePortably(key, joined: joined, realRoot: root.resolvedPath)
            }
            closeDescriptor(fd)
            return joined
        }
        return try resolvePortably(key, joined: joined, realRoot: root.resolvedPath)
    }

    /// The error for a key that leads out of the root. Where it leads is not said: the message
    /// reaches dead letters, which whoever writes the catalog may read, and naming the target
    /// would tell them what exists outside the root.
    private func escape(_ key: String, to resolved: String? = nil) -> DESKitError {
        DESKitError(
            .invalidData, "body path '\(key)' escapes the body root '\(root)'" + (resolved == nil ? "" : " (a link on its way leads outside it)"))
    }

    /// Resolves every link of the path and checks that the result is under the root.
    private func resolvePortably(_ key: String, joined: String, realRoot: String) throws -> String {
        guard let resolved = RootDirectory.realPath(joined) else {
            let code = errno
            // Missing file: refuse a lexical escape all the same, so the reason is the right one.
            if Self.escapesLexically(key) { throw escape(key) }
            // A directory on the way this process may not search is not a missing file.
            if code == EACCES { throw DESKitError(.storage, "cannot open body '\(joined)': \(String(cString: strerror(code)))") }
            throw DESKitError(.notFound, "no such file '\(joined)'")
        }
        guard resolved.hasPrefix(realRoot == "/" ? "/" : realRoot + "/") else { throw escape(key, to: resolved) }
        return resolved
    }

    /// Whether `..` segments climb above the start of a relative key.
    static func escapesLexically(_ key: String) -> Bool {
        var depth = 0
        for part in key.split(separator: "/") {
            if part == ".." { depth -= 1 } else if part != "." { depth += 1 }
            if depth < 0 { return true }
        }
        return false
    }
}

private func closeDescriptor(_ fd: Int32) { _ = close(fd) }
