#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension DESArchiveWriter {
    /// Writes a new archive into `fileDescriptor`, an empty regular file opened for writing
    /// (it is written with `pwrite` from offset 0, and cut back with `ftruncate` after a failed add).
    ///
    /// The caller owns the file: ``close()`` writes META, INDEX and the footer and `fsync`s
    /// (with `syncOnClose`), but neither closes the descriptor nor renames anything; ``abort()``
    /// leaves the file to the caller to remove. `path` names the output in errors and in the
    /// summary. This is how a caller that places the archive itself (a temporary file renamed
    /// into place, or copied through to a device) uses the writer; `options.overwrite` is not consulted.
    public convenience init(fileDescriptor: Int32, path: String, options: Options = Options()) throws {
        var st = stat()
        if fstat(fileDescriptor, &st) != 0 { throw ioError("stat", path: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG, st.st_size == 0 else {
            throw DESFormatError(.io, "the archive's descriptor must be an empty regular file", path: path)
        }
        self.init(fd: fileDescriptor, path: path, partialPath: path, ownsFile: false, options: options)
    }
}
