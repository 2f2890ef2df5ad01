import CDESFileSystem
import DESFormat
import DESKit
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What `des retire` needs from local bodies: each body's version, and its removal, never
/// outside the bodies' root.
extension LocalBodyFetcher {
    /// Size, mtime (ns) and inode of the file the packer would read (links followed beneath the
    /// root, as a fetch follows them); nil when nothing is there.
    public func version(of location: BodyLocation) async throws -> BodyVersion? {
        guard let st = try status(of: location.key) else { return nil }
        let stamp = FileStamp(st)
        return BodyVersion(size: stamp.size, tag: "mtime \(stamp.mtimeNanos) ns, inode \(stamp.inode)")
    }

    /// The `fstat` of the file the packer would open for `key`; nil when nothing is there
    /// (and, with `orOutside`, when the key leads out of the root).
    private func status(of key: String, orOutside: Bool = false) throws -> stat? {
        let fd: Int32
        do {
            fd = try open(key)
        } catch let error as DESKitError where error.code == .notFound || orOutside && error.code == .invalidData {
            return nil
        }
        defer { _ = Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw DESKitError(.storage, "cannot stat body '\(key)': \(String(cString: strerror(errno)))")
        }
        return st
    }

    /// Paths on disk: `./a`, `a`, `d//a` and a link to it reach one file.
    public var locationsMayAlias: Bool { true }

    /// The device and inode of the file the packer would read (links followed beneath the
    /// root); nil when nothing is there or the location leads out of the root.
    public func identity(of location: BodyLocation) async throws -> String? {
        try status(of: location.key, orOutside: true).map { "\($0.st_dev):\($0.st_ino)" }
    }

    /// Unlinks each body's directory entry beneath the root (a symbolic link is removed itself,
    /// never its target); an absolute path only with `allow_absolute`, as reads. Gone already
    /// counts as deleted.
    public func delete(_ locations: [BodyLocation]) async throws -> [BodyLocation: String] {
        var failed: [BodyLocation: String] = [:]
        for location in locations {
            do {
                try unlinkBody(location.key)
            } catch {
                failed[location] = "\(error)"
            }
        }
        return failed
    }

    private func unlinkBody(_ key: String) throws {
        guard !key.isEmpty, !key.utf8.contains(0) else { throw DESKitError(.invalidData, "body key '\(key)' cannot be deleted") }
        if key.hasPrefix("/") {
            guard allowAbsolute else {
                throw DESKitError(.invalidData, "absolute body path '\(key)' refused: bodies are deleted only under the root '\(root)'")
            }
            if Glibc.unlink(key) != 0 && errno != ENOENT { throw Self.unlinkFailure(key) }
            return
        }
        if let directory = rootDirectory {
            let result = directory.unlinkBeneath(key)
            if result == 0 || errno == ENOENT || errno == ENOTDIR && !Self.escapesLexically(key) { return }
            if errno == EXDEV || errno == ELOOP { throw DESKitError(.invalidData, "body path '\(key)' escapes the body root '\(root)'") }
            if !(errno == ENOSYS || errno == EPERM || errno == EINVAL) { throw Self.unlinkFailure(key) }
        }
        // No openat2: the entry's directory, links resolved, must be the root or beneath it.
        guard let realRoot = RootDirectory.realPath(root) else {
            throw DESKitError(.unavailable, "body root '\(root)' does not exist (is its volume mounted?)")
        }
        guard !Self.escapesLexically(key) else { throw DESKitError(.invalidData, "body path '\(key)' escapes the body root '\(root)'") }
        let joined = realRoot + "/" + key
        let parent = (joined as NSString).deletingLastPathComponent
        let base = (joined as NSString).lastPathComponent
        guard let realParent = RootDirectory.realPath(parent) else { return }  // its directory is gone: so is the body
        guard realParent == realRoot || realParent.hasPrefix(realRoot == "/" ? "/" : realRoot + "/"), base != "..", base != "." else {
            throw DESKitError(.invalidData, "body path '\(key)' escapes the body root '\(root)' (a link on its way leads outside it)")
        }
        if Glibc.unlink(realParent + "/" + base) != 0 && errno != ENOENT { throw Self.unlinkFailure(key) }
    }

    private static func unlinkFailure(_ key: String) -> DESKitError {
        DESKitError(.storage, "cannot delete body '\(key)': \(String(cString: strerror(errno)))")
    }
}
