import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Why an output path cannot be written; every command with an output path reports it the same way.
struct OutputFileError: Error, CustomStringConvertible {
    /// The kind of refusal or failure.
    enum Code: Sendable {
        /// A regular file is there and `--force` was not given.
        case exists
        /// A directory is there (or a link to one).
        case isDirectory
        /// A symbolic link whose target does not exist.
        case danglingLink
        /// Something that cannot be written through (a socket).
        case unsupportedKind
        /// A FIFO that no process opened for reading within the wait.
        case noReader
        /// The output cannot be created there (no such directory, no permission).
        case cannotCreate
        /// Writing, syncing or renaming failed.
        case io
    }

    var code: Code
    /// The output path as given.
    var path: String
    /// What is wrong, without the path.
    var message: String

    var description: String { "\(path): \(message)" }

    /// `des`'s exit code: 74 for an I/O failure while writing, 73 for an output that cannot be created.
    var exitCode: Int32 { code == .io ? DESExit.ioError : DESExit.cantCreate }
}

/// An output path written as `cp` writes it: through a device, FIFO or link; never over an
/// existing regular file without `--force`; a regular file always by way of a temporary file.
///
/// - A character or block device or a FIFO at the path (or at the end of a symbolic link there)
///   is opened `O_WRONLY` and written through: never unlinked, truncated or renamed over. A FIFO is
///   opened with `O_NONBLOCK` first, so that no reader means an error (after waiting up to
///   `readerWaitSeconds` for one), never a hang; it is then written in blocking mode.
/// - An existing regular file (or a link to one) is refused unless `force`; a new or forced
///   regular file is written to a temporary file beside it (beside the link's target for a link,
///   so the link stays), created with `O_EXCL` and mode 0644 less the umask, and renamed into
///   place only by ``commit(sync:)`` after the write (and `fsync`) succeeded.
/// - A directory, a dangling link or a socket at the path is refused.
///
/// Until ``commit(sync:)`` succeeds nothing replaces what was at the path; ``abort()`` (also
/// run when the value is dropped uncommitted) removes the temporary file.
final class OutputFile {
    /// How the output reaches its path.
    enum Placement {
        /// A regular file: written to `temp` and renamed to `final` (which `replacing` allows to exist).
        case rename(temp: String, final: String, replacing: Bool)
        /// A device or FIFO, written through.
        case through
    }

    /// The output path as given (named in errors).
    let path: String
    let placement: Placement
    private var fd: Int32
    /// For a write-through output that must be seekable: an unlinked temporary file the output is
    /// staged in, copied through at commit.
    private var staging: Int32 = -1
    private var done = false

    /// How long a FIFO at the path may go without a reader before ``open(_:force:seekable:readerWaitSeconds:)`` gives up.
    static let defaultReaderWaitSeconds = 10.0

    private init(path: String, placement: Placement, fd: Int32) {
        self.path = path
        self.placement = placement
        self.fd = fd
    }

    deinit { abort() }

    /// The descriptor to write to: a regular file at offset 0 when the output was opened
    /// `seekable` (the temporary file, or the staging file of a write-through output).
    var descriptor: Int32 { staging >= 0 ? staging : fd }

    /// Whether the output is written through (a device or FIFO) rather than renamed into place.
    var isWriteThrough: Bool {
        if case .through = placement { return true }
        return false
    }

    /// Opens `path` for writing under the rules above. With `seekable`, ``descriptor`` is always a
    /// regular file (a write-through output is staged in an unlinked temporary file and copied
    /// through at commit), for writers that seek and truncate.
    static func open(
        _ path: String, force: Bool, seekable: Bool = false, readerWaitSeconds: Double = defaultReaderWaitSeconds
    ) throws -> OutputFile {
        guard !path.isEmpty else { throw OutputFileError(code: .cannotCreate, path: path, message: "an empty output path") }
        var st = stat()
        if lstat(path, &st) != 0 {
            let code = errno
            guard code == ENOENT else { throw failure(.cannotCreate, path, "cannot inspect", code) }
            return try createBeside(path, final: path, replacing: false)
        }
        var target = path
        var kind = st.st_mode & S_IFMT
        if kind == S_IFLNK {
            let link = readLink(path)
            if stat(path, &st) != 0 {
                let code = errno
                if code == ENOENT {
                    throw OutputFileError(
                        code: .danglingLink, path: path,
                        message: "is a symbolic link to '\(link)', which does not exist; refusing to create a file through it")
                }
                throw failure(.cannotCreate, path, "cannot follow the symbolic link to '\(link)'", code)
            }
            kind = st.st_mode & S_IFMT
            target = realPath(path) ?? path
        }
        let shown = target == path ? "" : " (a symbolic link to '\(target)')"
        switch kind {
        case S_IFREG:
            guard force else {
                let message = target == path
                    ? "already exists (pass --force to replace it)"
                    : "is a symbolic link to the existing file '\(target)' (pass --force to replace that file; the link stays)"
                throw OutputFileError(code: .exists, path: path, message: message)
            }
            return try createBeside(path, final: target, replacing: true)
        case S_IFDIR:
            throw OutputFileError(code: .isDirectory, path: path, message: "is a directory\(shown); give a file path")
        case S_IFCHR, S_IFBLK:
            let fd = Glibc.open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC)
            if fd < 0 { throw failure(.cannotCreate, path, "cannot open the device for writing", errno) }
            return try through(path, fd: fd, seekable: seekable)
        case S_IFIFO:
            return try through(path, fd: openFIFO(path, waitSeconds: readerWaitSeconds), seekable: seekable)
        default:
            throw OutputFileError(code: .unsupportedKind, path: path, message: "is a socket or another special file\(shown); it cannot be written")
        }
    }

    /// Checks an output directory (`des unpack -C DIR`, `des new-source -o DIR`): it may be
    /// missing (it is created) or a directory or a link to one (written into); anything else —
    /// a file, a device, a dangling link — is refused, before anything is written.
    static func checkDirectory(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if stat(path, &st) != 0 {
            throw OutputFileError(
                code: .danglingLink, path: path, message: "is a symbolic link to '\(readLink(path))', which does not exist; give a directory")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw OutputFileError(code: .exists, path: path, message: "exists and is not a directory; give a directory")
        }
    }

    /// Writes all of `bytes` (retrying short writes and EINTR).
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let p = bytes.baseAddress else { return }
        try Self.writeAll(descriptor, p, bytes.count, path: path)
    }

    /// Writes all of `count` bytes to `fd`, retrying short writes and EINTR.
    private static func writeAll(_ fd: Int32, _ start: UnsafeRawPointer, _ count: Int, path: String) throws {
        var p = start
        var left = count
        while left > 0 {
            let n = Glibc.write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(.io, path, "write failed", errno)
            }
            if n == 0 { throw OutputFileError(code: .io, path: path, message: "write failed: no bytes written") }
            p += n
            left -= n
        }
    }

    /// Finishes the output: `fsync`s it (with `sync`), then renames the temporary file into place,
    /// or copies the staged bytes through. A regular file that appeared at the path meanwhile is
    /// not replaced unless `--force` was given. On failure nothing is left but what was there before.
    func commit(sync: Bool = true) throws {
        guard !done else { return }
        defer { abort() }
        switch placement {
        case .rename(let temp, let final, let replacing):
            if sync && fsync(fd) != 0 { throw Self.failure(.io, path, "fsync failed", errno) }
            let closed = Glibc.close(fd)
            fd = -1
            if closed != 0 { throw Self.failure(.io, path, "close failed", errno) }
            try Self.place(temp, at: final, replacing: replacing, shown: path)
            done = true
            if sync { Self.syncDirectory(of: final) }
        case .through:
            if staging >= 0 { try copyStaged() }
            // A FIFO or a character device may refuse fsync (EINVAL): nothing to sync there.
            if sync && fsync(fd) != 0 && ![EINVAL, EROFS, ENOTSUP].contains(errno) {
                throw Self.failure(.io, path, "fsync failed", errno)
            }
            let closed = Glibc.close(fd)
            fd = -1
            if closed != 0 { throw Self.failure(.io, path, "close failed", errno) }
            done = true
        }
    }

    /// Abandons the output: closes it and removes the temporary file (a write-through output
    /// keeps what was already written to it, as with `cp`). Safe to call more than once.
    func abort() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
        if staging >= 0 { _ = Glibc.close(staging) }
        staging = -1
        if !done, case .rename(let temp, _, _) = placement { _ = unlink(temp) }
        done = true
    }

    // MARK: Opening

    /// A temporary file beside `final` (same directory: the rename cannot cross file systems).
    private static func createBeside(_ path: String, final: String, replacing: Bool) throws -> OutputFile {
        let (dir, leaf) = split(final)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw OutputFileError(code: .cannotCreate, path: path, message: "cannot create: no such directory '\(dir)'")
        }
        // Keep the name within NAME_MAX whatever the leaf's length.
        let stem = String(decoding: Array(leaf.utf8.prefix(200)), as: UTF8.self)
        for _ in 0..<16 {
            let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
            let temp = (dir == "/" ? "" : dir) + "/.\(stem).des-tmp-\(getpid())-\(suffix)"
            let fd = Glibc.open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd >= 0 {
                // A replaced file keeps its permission bits, as with cp (a 0600 file stays 0600).
                var st = stat()
                if replacing, stat(final, &st) == 0, st.st_mode & S_IFMT == S_IFREG { _ = fchmod(fd, st.st_mode & 0o7777) }
                return OutputFile(path: path, placement: .rename(temp: temp, final: final, replacing: replacing), fd: fd)
            }
            if errno != EEXIST { throw failure(.cannotCreate, path, "cannot create a temporary file in '\(dir)'", errno) }
        }
        throw OutputFileError(code: .cannotCreate, path: path, message: "cannot create a temporary file in '\(dir)': every name tried exists")
    }

    /// A write-through output; with `seekable`, staged in an unlinked temporary file.
    private static func through(_ path: String, fd: Int32, seekable: Bool) throws -> OutputFile {
        var st = stat()
        // The path was inspected before it was opened: refuse a swap to a file or directory meanwhile.
        if fstat(fd, &st) != 0 || [S_IFREG, S_IFDIR].contains(st.st_mode & S_IFMT) {
            _ = Glibc.close(fd)
            throw OutputFileError(code: .cannotCreate, path: path, message: "changed while it was being opened; not written")
        }
        let output = OutputFile(path: path, placement: .through, fd: fd)
        if seekable { output.staging = try stagingFile(for: path) }
        return output
    }

    /// Opens a FIFO for writing without blocking: with no reader, `open(O_NONBLOCK)` fails with
    /// ENXIO, retried every 20 ms for up to `waitSeconds`; then the descriptor is made blocking.
    private static func openFIFO(_ path: String, waitSeconds: Double) throws -> Int32 {
        let deadline = Date().addingTimeInterval(max(0, waitSeconds))
        while true {
            let fd = Glibc.open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if fd >= 0 {
                let flags = fcntl(fd, F_GETFL)
                if flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 {
                    let code = errno
                    _ = Glibc.close(fd)
                    throw failure(.io, path, "cannot make the FIFO blocking", code)
                }
                return fd
            }
            let code = errno
            if code == EINTR { continue }
            guard code == ENXIO else { throw failure(.cannotCreate, path, "cannot open the FIFO for writing", code) }
            if Date() >= deadline {
                throw OutputFileError(
                    code: .noReader, path: path,
                    message: "is a FIFO that no process has open for reading (waited \(Int(waitSeconds.rounded(.up))) s); start its reader first")
            }
            usleep(20_000)
        }
    }

    /// An unlinked temporary file in the temporary directory (nothing is left behind, whatever happens).
    private static func stagingFile(for path: String) throws -> Int32 {
        var template = Array((NSTemporaryDirectory() + "/des-output-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress.unsafelyUnwrapped) }
        if fd < 0 { throw failure(.cannotCreate, path, "cannot create a staging file in \(NSTemporaryDirectory())", errno) }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress.unsafelyUnwrapped) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    // MARK: Committing

    /// Gives `temp` the name `final`: `rename` when replacing is allowed; otherwise `link`, which
    /// refuses a file that appeared meanwhile (on a file system without hard links: check, then rename).
    private static func place(_ temp: String, at final: String, replacing: Bool, shown: String) throws {
        if replacing {
            if rename(temp, final) != 0 { throw failure(.io, shown, "rename into place failed", errno) }
            return
        }
        if link(temp, final) == 0 {
            _ = unlink(temp)
            return
        }
        let code = errno
        if code == EEXIST {
            throw OutputFileError(code: .exists, path: shown, message: "appeared while it was being written; not replaced (pass --force to replace it)")
        }
        guard [EPERM, ENOTSUP, EOPNOTSUPP, EXDEV, EMLINK].contains(code) else {
            throw failure(.io, shown, "rename into place failed", code)
        }
        if access(final, F_OK) == 0 {
            throw OutputFileError(code: .exists, path: shown, message: "appeared while it was being written; not replaced (pass --force to replace it)")
        }
        if rename(temp, final) != 0 { throw failure(.io, shown, "rename into place failed", errno) }
    }

    /// Copies the staging file through to the output, from its start.
    private func copyStaged() throws {
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        var offset: off_t = 0
        while true {
            let n = pread(staging, buffer, size, offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw Self.failure(.io, path, "reading the staged output failed", errno)
            }
            if n == 0 { return }
            try Self.writeAll(fd, buffer, n, path: path)
            offset += off_t(n)
        }
    }

    // MARK: Helpers

    private static func failure(_ code: OutputFileError.Code, _ path: String, _ what: String, _ number: Int32) -> OutputFileError {
        OutputFileError(code: code, path: path, message: "\(what): \(String(cString: strerror(number)))")
    }

    /// The directory and last component of a path ("." for a bare name).
    static func split(_ path: String) -> (dir: String, leaf: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let dir = String(path[..<slash])
        return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
    }

    private static func readLink(_ path: String) -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
    }

    private static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// `fsync`s the directory holding `path`, so the rename survives a crash (best effort).
    private static func syncDirectory(of path: String) {
        let dfd = Glibc.open(split(path).dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            _ = Glibc.close(dfd)
        }
    }
}
