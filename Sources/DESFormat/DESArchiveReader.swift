#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Reads a DES v1 archive on local disk.
///
/// Opening validates the header, footer, seal and index (`docs/format.md`) and
/// loads the index once into a hash table; every later lookup is a table probe
/// plus one read. By default bodies are read with `pread` (one read per file,
/// merged reads for batches), so a file that shrinks under the reader is a typed
/// ``DESFormatError/Code/truncated`` error. ``Mode/mapped`` maps the archive
/// instead — faster for repeated reads, but only for archives nothing truncates
/// while they are open: touching a page past a new end of file raises SIGBUS.
///
/// A reader is immutable after opening and safe to share between threads.
public final class DESArchiveReader: @unchecked Sendable {
    /// How bytes are fetched from the file.
    public enum Mode: Sendable {
        /// Map the archive into memory: fastest for repeated reads, for archives that are
        /// never truncated while open (a truncated mapping raises SIGBUS, not an error).
        case mapped
        /// Use positional reads (`pread`), the default; batch reads merge neighbouring ranges.
        case positional
    }

    /// The archive's path.
    public let path: String
    /// The validated index.
    public let index: DESIndex
    /// How bytes are fetched.
    public let mode: Mode

    private let source: any DESByteSource
    private let mapping: UnsafeRawPointer?
    private let readCounter = Atomic<Int>(0)

    /// Opens and validates an archive. With `digests` false, the recorded SHA-256 of each entry
    /// is not gathered from META (``DESIndex/sha256(at:)`` answers nil): for a caller that reads
    /// each entry's META itself anyway. The seal is checked either way.
    public init(path: String, mode: Mode = .positional, digests: Bool = true) throws {
        self.path = path
        self.mode = mode
        // O_NONBLOCK: a FIFO at the path must not block the open (it is refused just below).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        if fd < 0 {
            let code = errno
            if code == ENOENT { throw DESFormatError(.io, "no such file", path: path, errno: code) }
            throw ioError("open", path: path, errno: code)
        }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let error = ioError("stat", path: path)
            _ = Glibc.close(fd)
            throw error
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            _ = Glibc.close(fd)
            throw DESFormatError(.io, "not a regular file", path: path)
        }
        let size = UInt64(st.st_size)
        let file = FileByteSource(fd: fd, path: path, size: size)  // closes fd from here on
        var mapping: UnsafeRawPointer?
        var mappedSize = 0
        do {
            if mode == .mapped && size >= UInt64(DESFormat.minimumArchiveSize) {
                let p = mmap(nil, Int(size), PROT_READ, MAP_SHARED, fd, 0)
                if p == MAP_FAILED || p == nil { throw ioError("mmap", path: path) }
                mapping = UnsafeRawPointer(p)
                mappedSize = Int(size)
                _ = madvise(p, Int(size), MADV_RANDOM)
            }
            self.index = try Self.loadIndex(source: file, mapping: mapping, size: size, path: path, digests: digests)
        } catch {
            if let mapping { munmap(UnsafeMutableRawPointer(mutating: mapping), mappedSize) }
            throw (error as? DESFormatError)?.at(path) ?? error
        }
        self.source = file
        self.mapping = mapping
    }

    /// Opens and validates an archive whose bytes come from `source` (an object in storage,
    /// read with ranged requests); `path` names it in errors. Reads are positional, and the
    /// header is checked only when `source` holds it already (``DESByteSource/isCheap(offset:length:)``)
    /// or `checkHeader` asks for it (a caller about to read the whole archive anyway): the
    /// footer, the index and the seal are checked as for a file.
    public init(source: some DESByteSource, path: String, checkHeader: Bool = false) throws {
        self.path = path
        self.mode = .positional
        do {
            self.index = try Self.loadIndex(source: source, mapping: nil, size: source.size, path: path, checkHeader: checkHeader)
        } catch {
            throw (error as? DESFormatError)?.at(path) ?? error
        }
        self.source = source
        self.mapping = nil
    }

    deinit {
        if let mapping { munmap(UnsafeMutableRawPointer(mutating: mapping), Int(index.archiveSize)) }
    }

    private static func loadIndex(
        source: any DESByteSource, mapping: UnsafeRawPointer?, size: UInt64, path: String, checkHeader: Bool = true, digests: Bool = true
    )
        throws -> DESIndex
    {
        if let mapping {
            return try DESIndex.parse(archive: UnsafeRawBufferPointer(start: mapping, count: Int(size)), digests: digests)
        }
        func read(_ count: Int, at offset: UInt64) throws -> [UInt8] {
            try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                try source.read(into: UnsafeMutableRawBufferPointer(start: buffer.baseAddress, count: count), at: offset)
                initialized = count
            }
        }
        // The header: always for a file; for a remote object only when already held.
        if checkHeader || size < UInt64(DESFormat.headerSize) || source.isCheap(offset: 0, length: DESFormat.headerSize) {
            let header = size >= UInt64(DESFormat.headerSize) ? try read(DESFormat.headerSize, at: 0) : [UInt8](repeating: 0, count: DESFormat.headerSize)
            try header.withUnsafeBytes { raw throws in try DESIndex.validateHeader(raw, archiveSize: size) }
        }
        guard size >= UInt64(DESFormat.footerSize) else {
            throw DESFormatError(.tooSmall, "archive is \(size) bytes; a DES archive is at least \(DESFormat.minimumArchiveSize)", path: path)
        }
        let footerBytes = try read(DESFormat.footerSize, at: size - UInt64(DESFormat.footerSize))
        let footer = try footerBytes.withUnsafeBytes { raw throws in try DESFooter.decode(raw) }
        try footer.validate(archiveSize: size)
        // One read of the tail: INDEX and the footer, with META before them when sealed.
        let tail = try read(Int(size - footer.tailStart), at: footer.tailStart)
        return try tail.withUnsafeBytes { raw throws in
            try DESIndex(tail: raw, footer: footer, archiveSize: size, digests: digests)
        }
    }

    // MARK: Lookups

    /// Whether the archive has an entry with this name.
    public func contains(_ name: String) -> Bool { index.contains(name) }
    /// The entry with this name, if any.
    public func entry(named name: String) -> DESIndexEntry? { index.entry(named: name) }
    /// Every entry, in index order.
    public var entries: [DESIndexEntry] { index.entries }
    /// Whether the archive is sealed (its seal was checked when it opened).
    public var isSealed: Bool { index.isSealed }
    /// Number of `pread` calls made for file bodies so far (0 in mapped mode).
    public var bodyReadCount: Int { readCounter.load(ordering: .relaxed) }

    /// The bytes of the file `name`.
    public func file(named name: String) throws -> [UInt8] {
        try bytes(at: requirePosition(name))
    }

    /// Calls `body` with the file's bytes without copying them (mapped mode) or after one read.
    public func withFile<R>(named name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let i = try requirePosition(name)
        let length = index.entries[i].dataLength
        if let mapping, length > 0, !index.entries[i].flags.contains(.external) {
            return try body(UnsafeRawBufferPointer(start: mapping + Int(index.entries[i].dataOffset), count: Int(length)))
        }
        return try bytes(at: i).withUnsafeBytes(body)
    }

    /// The META of `name`, parsed.
    public func meta(named name: String) throws -> DESMetadata {
        let raw = try rawMeta(named: name)
        do {
            return try DESMetadata.parse(raw)
        } catch {
            let message = (error as? DESFormatError)?.message ?? "\(error)"
            throw DESFormatError(.badMetadata, "META of \(DESNameRules.quoted(name)): \(message)", path: path)
        }
    }

    /// The META of `name`, exactly as stored.
    public func rawMeta(named name: String) throws -> [UInt8] {
        let entry = try requireEntry(name)
        return try read(offset: entry.metaOffset, length: entry.metaLength, countAsBody: false)
    }

    /// Reads many files, merging neighbouring ranges whose gap is at most `maxGap` into one read.
    /// Names that are not in the archive are left out of the result.
    public func files(named names: [String], maxGap: Int = DESFormat.defaultMaxGap) throws -> [String: [UInt8]] {
        var found: [DESIndexEntry] = []
        var result: [String: [UInt8]] = [:]
        for name in names {
            guard let entry = index.entry(named: name) else { continue }
            if entry.isExternal { continue }
            if entry.dataLength == 0 { result[name] = [] } else { found.append(entry) }
        }
        let plan = DESRangePlanner.plan(found.map { ($0.dataOffset, $0.dataLength) }, maxGap: UInt64(max(0, maxGap)))
        for read in plan {
            let chunk = try self.read(offset: read.offset, length: read.length, countAsBody: true)
            for i in read.members {
                let e = found[i]
                let start = Int(e.dataOffset - read.offset)
                result[e.name] = Array(chunk[start..<(start + Int(e.dataLength))])
            }
        }
        return result
    }

    func requireEntry(_ name: String) throws -> DESIndexEntry {
        index.entries[try requirePosition(name)]
    }

    func requirePosition(_ name: String) throws -> Int {
        guard let i = index.position(of: name) else {
            throw DESFormatError(.notFound, "no entry named \(DESNameRules.quoted(name))", path: path)
        }
        return i
    }

    /// The body of the entry at position `i` of the index. Its numbers are read in place, as this is every
    /// get's path: copying the entry would touch its name too.
    func bytes(at i: Int) throws -> [UInt8] {
        if index.entries[i].flags.contains(.external) {
            let entry = index.entries[i]
            throw DESFormatError(
                .externalEntry,
                "\(DESNameRules.quoted(entry.name)) is stored outside the archive (external key \(externalKey(of: entry)))",
                path: path)
        }
        let length = index.entries[i].dataLength
        if length == 0 { return [] }
        return try read(offset: index.entries[i].dataOffset, length: length, countAsBody: true)
    }

    func externalKey(of entry: DESIndexEntry) -> String {
        guard let raw = try? read(offset: entry.metaOffset, length: entry.metaLength, countAsBody: false),
            let meta = try? DESMetadata.parse(raw), let key = meta["external_key"]?.stringValue
        else { return "unknown" }
        return "\"\(key)\""
    }

    /// Reads `length` bytes at `offset` (inside the archive, already validated).
    func read(offset: UInt64, length: UInt64, countAsBody: Bool) throws -> [UInt8] {
        let count = Int(length)
        if count == 0 { return [] }
        if let mapping {
            return [UInt8](UnsafeRawBufferPointer(start: mapping + Int(offset), count: count))
        }
        if countAsBody { readCounter.add(1, ordering: .relaxed) }
        let source = self.source
        return try [UInt8](unsafeUninitializedCapacity: count) { buf, initialized in
            try source.read(into: UnsafeMutableRawBufferPointer(start: buf.baseAddress, count: count), at: offset)
            initialized = count
        }
    }

    /// Runs `body` over consecutive chunks (at most `chunkSize` bytes) of a range.
    func forEachChunk(offset: UInt64, length: UInt64, chunkSize: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws -> Void)
        throws
    {
        if let mapping {
            try body(UnsafeRawBufferPointer(start: mapping + Int(offset), count: Int(length)))
            return
        }
        var done: UInt64 = 0
        var chunk = [UInt8](repeating: 0, count: Int(min(UInt64(chunkSize), max(length, 1))))
        while done < length {
            let n = Int(min(UInt64(chunk.count), length - done))
            let source = self.source
            try chunk.withUnsafeMutableBytes { raw throws in
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[..<n]), at: offset + done)
            }
            try chunk.withUnsafeBytes { raw in try body(UnsafeRawBufferPointer(rebasing: raw.prefix(n))) }
            done += UInt64(n)
        }
    }
}
