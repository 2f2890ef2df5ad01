import CDESFileSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The body root: its resolved path and an open descriptor of it (closed with the last fetcher).
final class RootDirectory: Sendable {
    let resolvedPath: String
    private let fd: Int32

    init?(path: String) {
        guard let resolved = Self.realPath(path) else { return nil }
        self.resolvedPath = resolved
        self.fd = open(resolved, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Opens `key` beneath the root: a descriptor, -1 with `errno` when refused or missing,
    /// or nil when this kernel cannot check (no `openat2`, or a sandbox refusing it).
    func openBeneath(_ key: String) -> Int32? {
        guard fd >= 0 else { return nil }
        let result = cdes_open_beneath(fd, key)
        if result < 0 && (errno == ENOSYS || errno == EPERM || errno == EINVAL) { return nil }
        return result
    }

    /// Unlinks `key` beneath the root (``cdes_unlink_beneath``): 0, or -1 with `errno`
    /// (ENOSYS when this kernel cannot check).
    func unlinkBeneath(_ key: String) -> Int32 {
        guard fd >= 0 else {
            errno = ENOSYS
            return -1
        }
        return cdes_unlink_beneath(fd, key)
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}
