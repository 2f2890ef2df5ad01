#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a DES v1 archive, streaming each file's bytes through once.
///
/// The archive is written to `PATH.partial` and renamed to `PATH` only by
/// ``close()``, so an interrupted writer never leaves a file that reads as a
/// valid archive; ``init(fileDescriptor:path:options:)`` writes into a file the caller
/// places itself instead. DATA is streamed through a fixed buffer; META and INDEX are
/// kept in memory until ``close()``. A failed ``add(name:from:metadata:)``
/// leaves the archive as it was before the call.
///
/// ```swift
/// let writer = try DESArchiveWriter(path: "out.des")
/// try writer.add(name: "a.txt", bytes: Array("hello".utf8), metadata: ["mime": "text/plain"])
/// let summary = try writer.close()
/// ```
///
/// A writer is used from one thread at a time.
public final class DESArchiveWriter {
    /// How the writer behaves.
    public struct Options: Sendable {
        /// Record a `sha256` of each file in its META (default on). Off reproduces the original's bytes.
        public var checksums: Bool = true
        /// Replace an existing archive at the path (default off: an existing file is an error).
        public var overwrite: Bool = false
        /// `fsync` the archive (and its directory) before it gets its final name (default on).
        public var syncOnClose: Bool = true
        /// Size of the output buffer in bytes (default 1 MiB).
        public var bufferSize: Int = 1 << 20
        /// Default options.
        public init() {}
    }

    enum State { case open, failed(DESFormatError), closed }

    /// The final path of the archive.
    public let path: String
    /// The path written to until ``close()``.
    public let partialPath: String
    /// The options in force.
    public let options: Options
    /// Entries added so far.
    public var fileCount: Int { names.count }
    /// Bytes of DATA written so far.
    public var dataLength: UInt64 { position - UInt64(DESFormat.headerSize) }

    var state: State = .open
    let fd: Int32
    /// Whether the writer created `partialPath` (renamed at close, removed on abort), or writes
    /// into a caller's descriptor, which it neither closes nor names.
    let ownsFile: Bool
    /// Whether `fd` is still ours to close (it is closed exactly once, even when `close()` fails after closing it).
    private var fdIsOpen = true
    private let buffer: UnsafeMutableRawPointer
    let capacity: Int
    var used = 0
    var flushedOffset: UInt64 = 0
    var entries: [DESIndexEntry] = []
    /// Per entry, what the two-level index keeps beside it: the raw sha256 and the content type.
    var levelItems: [(sha256: [UInt8]?, contentType: String?)] = []
    var names = NameTable()
    /// Set while ``addFiles(concurrently:_:)`` runs: the writer is then fed only through its feed.
    var feeding = false
    /// ``abort()`` was called while feeding; ``addFiles(concurrently:_:)`` carries it out when its thread is done.
    var abortRequested = false
    var meta: [UInt8] = []
    let hasher = SHA256Stream()

    private var position: UInt64 { flushedOffset + UInt64(used) }

    /// Opens a new archive for writing at `path` (written as `path.partial` until closed).
    public convenience init(path: String, options: Options = Options()) throws {
        if !options.overwrite && access(path, F_OK) == 0 {
            throw DESFormatError(.outputExists, "already exists (set the overwrite option to replace it)", path: path)
        }
        let partialPath = path + ".partial"
        let fd = open(partialPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw ioError("create", path: partialPath) }
        self.init(fd: fd, path: path, partialPath: partialPath, ownsFile: true, options: options)
    }

    /// Writes into `fd` (see ``init(fileDescriptor:path:options:)``), or, with `ownsFile`, into
    /// `partialPath`, which it renames to `path` when closed and removes when abandoned.
    init(fd: Int32, path: String, partialPath: String, ownsFile: Bool, options: Options) {
        self.path = path
        self.partialPath = partialPath
        self.ownsFile = ownsFile
        self.options = options
        self.fd = fd
        self.capacity = max(options.bufferSize, 64 * 1024)
        self.buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        var header = DESFormat.headerMagic
        header.append(DESFormat.version)
        header.append(contentsOf: [UInt8](repeating: 0, count: 7))
        header.withUnsafeBytes { raw in
            buffer.copyMemory(from: raw.baseAddress.unsafelyUnwrapped, byteCount: raw.count)
        }
        used = header.count
    }

    deinit {
        if case .closed = state {} else { discard() }
        buffer.deallocate()
    }

    // MARK: Adding files

    /// Adds a file whose bytes are in memory.
    @discardableResult
    public func add(name: String, bytes: [UInt8], metadata: DESMetadata = [:]) throws -> DESIndexEntry {
        var stream = DESBufferStream(bytes)
        return try add(name: name, from: &stream, metadata: metadata)
    }

    /// Adds a file by reading `sourcePath` (which must be a regular file).
    @discardableResult
    public func add(name: String, contentsOfFile sourcePath: String, metadata: DESMetadata = [:])
        throws -> DESIndexEntry
    {
        try checkNew(name: name, metadata: metadata, reserving: false)
        let source = open(sourcePath, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if source < 0 {
            let code = errno
            if code == ENOENT { throw DESFormatError(.io, "no such file", path: sourcePath, errno: code) }
            throw ioError("open", path: sourcePath, errno: code)
        }
        defer { _ = Glibc.close(source) }
        return try add(name: name, fileDescriptor: source, path: sourcePath, metadata: metadata)
    }

    /// Adds a file read from an open descriptor of a regular file (not closed by the writer).
    @discardableResult
    public func add(name: String, fileDescriptor source: Int32, path sourcePath: String, metadata: DESMetadata = [:])
        throws -> DESIndexEntry
    {
        var stream = try DESFileDescriptorStream(regularFile: source, path: sourcePath)
        return try add(name: name, from: &stream, metadata: metadata)
    }

    /// Adds a file whose bytes come from a stream, copied once into the archive.
    @discardableResult
    public func add(name: String, from stream: inout some DESByteStream, metadata: DESMetadata = [:])
        throws -> DESIndexEntry
    {
        try add(name: name, from: &stream, metadata: metadata, viaFeed: false)
    }

    /// Appends `name` from `stream`, only if its bytes have the SHA-256 `expectedSHA256` (hex):
    /// otherwise nothing of it is kept and ``DESFormatError/Code/unexpectedContent`` is thrown.
    /// (With checksums off, nothing is compared.)
    public func add(name: String, from stream: inout some DESByteStream, metadata: DESMetadata = [:], expectedSHA256: String?)
        throws -> DESIndexEntry
    {
        try add(name: name, from: &stream, metadata: metadata, viaFeed: false, expectedSHA256: expectedSHA256)
    }

    /// The words every ``DESFormatError/Code/unexpectedContent`` message carries (a source that
    /// records the digests it expects looks for them in a row's error to hash the file again).
    public static let unexpectedContentWords = "differ from the sha256 expected"

    /// The error for bytes of `name` read with SHA-256 `sha256` where `expected` was expected.
    public static func unexpectedContent(name: String, sha256: String, expected: String, path: String?) -> DESFormatError {
        DESFormatError(
            .unexpectedContent,
            "the bytes read for \(DESNameRules.quoted(name)) (sha256 \(sha256)) \(unexpectedContentWords) (\(expected)): changed without its size or times moving; nothing of it is kept",
            path: path)
    }

    func add(name: String, from stream: inout some DESByteStream, metadata: DESMetadata, viaFeed: Bool, expectedSHA256: String? = nil)
        throws -> DESIndexEntry
    {
        try checkNew(name: name, metadata: metadata, reserving: true, viaFeed: viaFeed)
        let start = position
        var total: UInt64 = 0
        let checksums = options.checksums
        do {
            while true {
                if used == capacity { try flush() }
                let free = UnsafeMutableRawBufferPointer(start: buffer + used, count: capacity - used)
                let n = try stream.read(into: free)
                if n == 0 { break }
                if checksums { hasher.update(buffer + used, count: n) }
                used += n
                total += UInt64(n)
            }
        } catch {
            hasher.reset()
            names.removeLast(name)
            try rollback(to: start)
            if let e = error as? DESFormatError { throw e }
            throw DESFormatError(.io, "reading the body of \(DESNameRules.quoted(name)) failed: \(error)")
        }
        if checksums, let expected = expectedSHA256 {
            let digest = hasher.finalizeHex()
            guard digest == expected.lowercased() else {
                names.removeLast(name)
                try rollback(to: start)
                throw Self.unexpectedContent(name: name, sha256: digest, expected: expected, path: path)
            }
            return record(name: name, offset: start, length: total, metadata: metadata, checksum: .given(digest), flags: [])
        }
        return record(
            name: name, offset: start, length: total, metadata: metadata, checksum: checksums ? .hasher : .none,
            flags: [])
    }

    /// Records a file whose body is stored elsewhere (flag `external`): `data_offset` 0,
    /// `data_length` the real size (at most 5 TiB), META with `is_external` and `external_key`.
    /// With checksums on (a sealed archive) the body's `sha256` is required.
    @discardableResult
    public func addExternal(
        name: String, size: UInt64, externalKey: String, sha256: String? = nil, metadata: DESMetadata = [:]
    ) throws -> DESIndexEntry {
        try checkNew(name: name, metadata: metadata, reserving: false)
        if options.checksums {
            guard let sha256, sha256.count == 64, sha256.lowercased().utf8.allSatisfy(isHexDigit) else {
                throw DESFormatError(
                    .missingChecksum,
                    "external entry \(DESNameRules.quoted(name)) needs the sha256 of its body (64 hex digits): a sealed archive records one for every entry",
                    path: path)
            }
        }
        guard size <= DESFormat.maximumExternalLength else {
            throw DESFormatError(
                .invalidName, "external entry \(DESNameRules.quoted(name)) is \(size) bytes, over the 5 TiB limit", path: path)
        }
        try checkNew(name: name, metadata: metadata, reserving: true)
        return record(
            name: name, offset: 0, length: size, metadata: metadata, externalKey: externalKey,
            checksum: sha256.map { .given($0) } ?? .none, flags: .external)
    }

    /// Throws unless the writer is open; while ``addFiles(concurrently:_:)`` runs, only its feed may add.
    func checkUsable(viaFeed: Bool = false) throws {
        switch state {
        case .open: break
        case .failed(let error): throw DESFormatError(.writerClosed, "writer failed earlier: \(error.message)", path: path)
        case .closed: throw DESFormatError(.writerClosed, "writer is already closed", path: path)
        }
        if abortRequested {
            throw DESFormatError(.writerClosed, "the writer was aborted", path: path)
        }
        if feeding && !viaFeed {
            throw DESFormatError(.writerClosed, "writer is busy in addFiles: add files through its feed", path: path)
        }
    }

    /// The names added so far, in the order added (also after ``close()``).
    public var addedNames: [String] { entries.map(\.name) }

    /// Keys DES writes itself; caller metadata may not use them.
    public static let reservedMetadataKeys: Set<String> = ["size", "sha256", "is_external", "external_key"]

    /// Checks that `name` may be added now; with `reserving`, also records it so a second add of it is a duplicate
    /// (the caller removes it again if the add fails).
    func checkNew(name: String, metadata: DESMetadata, reserving: Bool, viaFeed: Bool = false) throws {
        try checkUsable(viaFeed: viaFeed)
        try DESNameRules.validate(name)
        for (key, _) in metadata.pairs where Self.reservedMetadataKeys.contains(key) {
            throw DESFormatError(.reservedMetadataKey, "metadata key \"\(key)\" of \(DESNameRules.quoted(name)) is reserved for DES")
        }
        // One hash of the name on the common path: insert, and treat "already there" as the duplicate.
        if reserving ? names.insert(name, value: names.count) != nil : names.value(for: name) != nil {
            throw DESFormatError(.duplicateName, "duplicate name \(DESNameRules.quoted(name)): a name appears once per archive", path: path)
        }
    }

    // MARK: Closing

    /// Writes META, INDEX and the footer, syncs, and gives the archive its final name.
    @discardableResult
    public func close() throws -> DESArchiveSummary {
        try checkUsable()
        do {
            let dataEnd = position
            let metaStart = dataEnd
            var index: [UInt8] = []
            index.reserveCapacity(entries.count * (DESFormat.indexEntryOverhead + 24))
            for var entry in entries {
                entry.metaOffset += metaStart
                entry.encode(into: &index)
            }
            try append(meta)
            let indexStart = position
            try append(index)
            let indexEnd = position
            var footer = DESFooter(
                dataStart: UInt64(DESFormat.headerSize), dataLength: dataEnd - UInt64(DESFormat.headerSize),
                metaStart: metaStart, metaLength: UInt64(meta.count), indexStart: indexStart,
                indexLength: UInt64(index.count), fileCount: UInt64(entries.count))
            if options.checksums {
                // Every entry carries its sha256 and size: seal META, INDEX and the footer's values.
                footer.sealVersion = DESFormat.sealVersion
                footer.sealCRC = meta.withUnsafeBytes { m in
                    index.withUnsafeBytes { i in DESFooter.sealCRC(meta: m, index: i, fields: footer.fieldBytes) }
                }
            }
            // A large sealed archive gets its two-level index between INDEX and the footer.
            if options.checksums, meta.count + index.count >= DESLevels.threshold, levelItems.count == entries.count {
                var items: [DESLevelsBuilder.Item] = []
                items.reserveCapacity(entries.count)
                for (i, entry) in entries.enumerated() {
                    var placed = entry
                    placed.metaOffset += metaStart
                    items.append(DESLevelsBuilder.Item(entry: placed, sha256: levelItems[i].sha256, contentType: levelItems[i].contentType))
                }
                try append(DESLevelsBuilder.build(items, levelsStart: indexEnd, footerFields: footer.fieldBytes))
            }
            try append(footer.bytes)
            try flush()
            if options.syncOnClose && fsync(fd) != 0 { throw ioError("fsync", path: partialPath) }
            if !ownsFile {
                state = .closed
                return DESArchiveSummary(path: path, fileCount: entries.count, dataLength: footer.dataLength, archiveSize: position)
            }
            fdIsOpen = false  // close(2) releases the descriptor even when it reports an error
            if Glibc.close(fd) != 0 { throw ioError("close", path: partialPath) }
            state = .closed
            if !options.overwrite && access(path, F_OK) == 0 {
                unlink(partialPath)
                throw DESFormatError(.outputExists, "appeared while writing; not replaced", path: path)
            }
            if rename(partialPath, path) != 0 {
                let code = errno
                unlink(partialPath)
                throw ioError("rename to final name", path: path, errno: code)
            }
            if options.syncOnClose { syncDirectory(of: path) }
            return DESArchiveSummary(
                path: path, fileCount: entries.count, dataLength: footer.dataLength, archiveSize: position)
        } catch {
            if case .open = state { discard() }
            let failure = error as? DESFormatError ?? DESFormatError(.io, "\(error)", path: path)
            state = .failed(failure)
            throw failure
        }
    }

    /// Abandons the archive: the partial file is removed and nothing is left at `path`.
    /// Called while ``addFiles(concurrently:_:)`` runs, it takes effect when that returns.
    public func abort() {
        if case .closed = state { return }
        if feeding {
            abortRequested = true
            return
        }
        abortRequested = false
        discard()
        state = .closed
    }

    // MARK: Buffer

    private func discard() {
        if case .closed = state { return }
        guard ownsFile else { return }  // the caller's descriptor: the caller cleans up
        if fdIsOpen {
            fdIsOpen = false
            _ = Glibc.close(fd)
        }
        unlink(partialPath)
    }

    func flush() throws {
        guard used > 0 else { return }
        do {
            try pwriteFully(fd, buffer, count: used, offset: flushedOffset, path: partialPath)
        } catch {
            let failure = error as? DESFormatError ?? DESFormatError(.io, "\(error)", path: partialPath)
            state = .failed(failure)
            throw failure
        }
        flushedOffset += UInt64(used)
        used = 0
    }

    private func append(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            if used == capacity { try flush() }
            let n = min(capacity - used, bytes.count - done)
            bytes.withUnsafeBytes { raw in
                (buffer + used).copyMemory(from: raw.baseAddress.unsafelyUnwrapped + done, byteCount: n)
            }
            used += n
            done += n
        }
    }

    private func rollback(to offset: UInt64) throws {
        if offset >= flushedOffset {
            used = Int(offset - flushedOffset)
            return
        }
        used = 0
        if ftruncate(fd, off_t(offset)) != 0 {
            let error = ioError("truncate after a failed add", path: partialPath)
            state = .failed(error)
            throw error
        }
        flushedOffset = offset
    }
}

/// What a closed writer produced.
public struct DESArchiveSummary: Sendable, Equatable {
    /// The archive's path.
    public var path: String
    /// Number of entries.
    public var fileCount: Int
    /// Bytes in the DATA region.
    public var dataLength: UInt64
    /// Total size of the archive.
    public var archiveSize: UInt64
}

/// `fsync`s the directory holding `path` so a rename survives a crash.
func syncDirectory(of path: String) {
    var dir = path
    if let slash = dir.lastIndex(of: "/") {
        dir = String(dir[..<slash])
        if dir.isEmpty { dir = "/" }
    } else {
        dir = "."
    }
    let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dfd >= 0 {
        _ = fsync(dfd)
        _ = Glibc.close(dfd)
    }
}
