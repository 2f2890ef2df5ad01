import DESFormat
import DESKit
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Bodies are regular files: a FIFO, a device, a socket or a directory at a body path is
/// refused at once, never read (a FIFO with no writer would block the reader forever, and
/// `/dev/zero` never ends).
extension LocalBodyFetcher {
    /// Checks that `fd` (opened `O_NONBLOCK`, so that opening a FIFO did not wait for a writer)
    /// is a regular file. Anything else is closed and refused with a permanent `invalidData`
    /// error naming the path and what it is: the packer sends the row to the dead-letter table.
    ///
    /// The descriptor stays `O_NONBLOCK`: Linux ignores the flag for regular files, and where a
    /// file system does not, the reader (``DESFileDescriptorStream``) clears it on `EAGAIN`. Not
    /// clearing it here saves the packer a system call a file. Returns the descriptor and the
    /// file as this `fstat` saw it (the packer reads it against that stamp: no second `fstat`).
    static func regularFile(_ fd: Int32, path: String) throws -> (descriptor: Int32, stamp: FileStamp) {
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            _ = Glibc.close(fd)
            throw DESKitError(.storage, "cannot stat body '\(path)': \(String(cString: strerror(code)))")
        }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFREG else {
            _ = Glibc.close(fd)
            throw notRegular(path, kind: kind)
        }
        return (fd, FileStamp(st))
    }

    /// The refusal of a body path that is not a regular file, naming what it is.
    static func notRegular(_ path: String, kind: mode_t) -> DESKitError {
        DESKitError(.invalidData, "body '\(path)' is \(kindName(kind)), not a regular file")
    }

    /// What a path that could not be opened is, when that is the reason (a socket cannot be
    /// opened at all: ENXIO); nil for a regular file or nothing there.
    static func specialKind(at path: String) -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let kind = st.st_mode & S_IFMT
        return kind == S_IFREG ? nil : kind
    }

    static func kindName(_ kind: mode_t) -> String {
        switch kind {
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFDIR: return "a directory"
        case S_IFLNK: return "a symbolic link"
        default: return "a special file"
        }
    }
}
