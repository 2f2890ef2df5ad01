/// An error raised while reading, writing or verifying a DES archive.
///
/// Errors are structs with a stable ``Code`` (for programs) and a message that
/// says what is wrong (for people), in the manner of postgres-nio's errors.
public struct DESFormatError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case tooSmall, badHeaderMagic, badHeaderVersion, badFooterMagic, badFooterVersion
            case badFileCount, regionOutOfBounds, regionsOutOfOrder, badIndexEntry, badMetadata
            case invalidName, duplicateName, reservedMetadataKey, notFound, externalEntry
            case checksumMismatch, sizeMismatch, badSeal, sealMismatch, missingChecksum, unsupportedEntry, truncated, io, writerClosed, outputExists, unsafePath
            case badLevels, changedWhileRead, unexpectedContent
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The file is shorter than a header plus a footer (88 bytes).
        public static let tooSmall = Code(.tooSmall)
        /// The first 8 bytes are not `DESHEAD1`.
        public static let badHeaderMagic = Code(.badHeaderMagic)
        /// The header's version byte is not 1.
        public static let badHeaderVersion = Code(.badHeaderVersion)
        /// The footer does not start with `DESFOOT1`.
        public static let badFooterMagic = Code(.badFooterMagic)
        /// The footer's version byte is not 1.
        public static let badFooterVersion = Code(.badFooterVersion)
        /// The file count cannot fit in the index region.
        public static let badFileCount = Code(.badFileCount)
        /// A region (or an entry's range) lies outside where it must be.
        public static let regionOutOfBounds = Code(.regionOutOfBounds)
        /// The two-level index (root, leaves, their trailer) is damaged or inconsistent.
        public static let badLevels = Code(.badLevels)
        /// A file being added changed while it was read (its size, mtime or ctime moved): what
        /// was read may be torn, and nothing of it is kept.
        public static let changedWhileRead = Code(.changedWhileRead)
        /// A file being added was read whole and unchanged by its size and times, but its bytes
        /// are not those expected (their SHA-256 differs from the one given): changed without
        /// its timestamps moving (a write through a shared mapping). Nothing of it is kept.
        public static let unexpectedContent = Code(.unexpectedContent)
        /// The regions are not in the order DATA, META, INDEX, FOOTER.
        public static let regionsOutOfOrder = Code(.regionsOutOfOrder)
        /// An index entry cannot be decoded.
        public static let badIndexEntry = Code(.badIndexEntry)
        /// A META object is not valid JSON or contradicts its index entry.
        public static let badMetadata = Code(.badMetadata)
        /// A name breaks the naming rules.
        public static let invalidName = Code(.invalidName)
        /// A name was added twice to one archive.
        public static let duplicateName = Code(.duplicateName)
        /// Caller metadata uses a key DES writes itself.
        public static let reservedMetadataKey = Code(.reservedMetadataKey)
        /// No entry has the requested name.
        public static let notFound = Code(.notFound)
        /// The entry's body lives outside the archive.
        public static let externalEntry = Code(.externalEntry)
        /// A body does not match the checksum in its META.
        public static let checksumMismatch = Code(.checksumMismatch)
        /// A body's size disagrees with its META or its source.
        public static let sizeMismatch = Code(.sizeMismatch)
        /// The footer's seal bytes are malformed (unknown seal version, non-zero reserved bytes).
        public static let badSeal = Code(.badSeal)
        /// META, INDEX or the footer no longer match the seal's CRC-32C.
        public static let sealMismatch = Code(.sealMismatch)
        /// An entry of a sealed archive lacks its `sha256` or `size`.
        public static let missingChecksum = Code(.missingChecksum)
        /// An entry uses a flag this reader cannot honour (compressed, encrypted, or an unknown bit).
        public static let unsupportedEntry = Code(.unsupportedEntry)
        /// The archive ended early while being read: it shrank or was truncated under the reader.
        public static let truncated = Code(.truncated)
        /// An operating-system call failed.
        public static let io = Code(.io)
        /// The writer was already closed or aborted.
        public static let writerClosed = Code(.writerClosed)
        /// The output file exists and overwriting was not asked for.
        public static let outputExists = Code(.outputExists)
        /// A path would escape the directory it must stay in.
        public static let unsafePath = Code(.unsafePath)

        public var description: String { base.rawValue }

        /// Whether this code means the archive's bytes are damaged or malformed.
        public var isCorruption: Bool {
            switch base {
            case .tooSmall, .badHeaderMagic, .badHeaderVersion, .badFooterMagic, .badFooterVersion,
                .badFileCount, .regionOutOfBounds, .regionsOutOfOrder, .badIndexEntry, .badMetadata,
                .checksumMismatch, .badSeal, .sealMismatch, .missingChecksum, .unsupportedEntry, .truncated, .badLevels:
                return true
            default:
                return false
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// What is wrong, in words.
    public var message: String
    /// The archive or file concerned, when known.
    public var path: String?
    /// The `errno` of a failed system call, when there was one.
    public var errno: Int32?

    /// Creates an error.
    public init(_ code: Code, _ message: String, path: String? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.errno = errno
    }

    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }

    /// The same error with `path` filled in when it was not already.
    func at(_ path: String) -> DESFormatError {
        var copy = self
        if copy.path == nil { copy.path = path }
        return copy
    }
}
