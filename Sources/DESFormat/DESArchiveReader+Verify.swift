/// What ``DESArchiveReader/verify(maxProblems:)`` found.
public struct DESVerifyReport: Sendable {
    /// One thing wrong with one entry.
    public struct Problem: Sendable, CustomStringConvertible {
        /// The entry's name.
        public var name: String
        /// What is wrong.
        public var message: String
        /// Creates a problem.
        public init(name: String, message: String) {
            self.name = name
            self.message = message
        }
        public var description: String { "\(DESNameRules.quoted(name)): \(message)" }
    }

    /// Entries checked.
    public var entries = 0
    /// Bytes of file bodies re-read and hashed.
    public var bytesChecked: UInt64 = 0
    /// Entries whose body matched a recorded `sha256`.
    public var checksummed = 0
    /// Entries stored in the archive that carry no checksum (archives written by the original).
    public var withoutChecksum = 0
    /// External entries (bodies elsewhere: only their META is checked).
    public var external = 0
    /// Whether the archive is sealed (its seal checked out when it was opened).
    public var sealed = false
    /// Problems found, at most `maxProblems` of them.
    public var problems: [Problem] = []
    /// Total number of problems, including those not kept in ``problems``.
    public var problemCount = 0

    /// Whether every entry checked out.
    public var isOK: Bool { problemCount == 0 }
}

extension DESArchiveReader {
    /// Re-reads every entry and checks its bounds, its META (valid JSON whose
    /// `size` matches the index) and its `sha256` checksum when one was recorded.
    /// The header, footer and index were already validated when the reader opened.
    public func verify(maxProblems: Int = 100) throws -> DESVerifyReport {
        var report = DESVerifyReport()
        report.sealed = isSealed
        let sealed = isSealed
        let hasher = SHA256Stream()
        func problem(_ name: String, _ message: String) {
            report.problemCount += 1
            if report.problems.count < maxProblems { report.problems.append(.init(name: name, message: message)) }
        }
        for name in index.duplicateNames {
            problem(name, "appears more than once in the index (only the last is reachable)")
        }
        checkLevels(problem)
        for entry in index.entries {
            report.entries += 1
            let meta: DESMetadata
            do {
                let raw = try rawMeta(entry)  // a read that fails (the file shrank) ends the verify
                meta = try DESMetadata.parse(raw)
            } catch let error as DESFormatError where error.code != .badMetadata {
                throw error
            } catch {
                problem(entry.name, "META is not a valid JSON object: \((error as? DESFormatError)?.message ?? "\(error)")")
                continue
            }
            if let size = meta["size"] {
                if size.intValue != Int64(bitPattern: entry.dataLength) {
                    problem(entry.name, "META size \(describe(size)) but the index says \(entry.dataLength) bytes")
                }
            } else if sealed {
                problem(entry.name, "META has no size, which every entry of a sealed archive carries")
            }
            if sealed && meta["sha256"] == nil {
                problem(entry.name, "META has no sha256, which every entry of a sealed archive carries")
                continue
            }
            if entry.isExternal {
                report.external += 1
                if meta["external_key"]?.stringValue == nil {
                    problem(entry.name, "external entry has no external_key in its META")
                }
                continue
            }
            if meta["is_external"]?.boolValue == true {
                problem(entry.name, "META says is_external but the index flag is not set")
            }
            let expected = meta["sha256"]
            if expected == nil {
                report.withoutChecksum += 1
                report.bytesChecked += entry.dataLength
                continue
            }
            guard let want = expected?.stringValue?.lowercased(), want.count == 64, want.utf8.allSatisfy(isHexDigit) else {
                problem(entry.name, "META sha256 is not a 64-digit hex string")
                continue
            }
            try forEachChunk(offset: entry.dataOffset, length: entry.dataLength) { hasher.update($0) }
            let got = hasher.finalizeHex()
            report.bytesChecked += entry.dataLength
            if got != want {
                problem(entry.name, "checksum mismatch: META sha256 \(want), body hashes to \(got)")
            } else {
                report.checksummed += 1
            }
        }
        return report
    }

    /// One entry's body, checked against the `sha256` in its META: throws `checksumMismatch`
    /// when it differs, and `missingChecksum` when a sealed archive's entry has none.
    /// An entry of an unsealed archive without a checksum is returned unchecked.
    public func checkedFile(named name: String) throws -> [UInt8] {
        let data = try bytes(at: requirePosition(name))
        let check = try checksumCheck(for: name, size: UInt64(data.count))
        if let want = check {
            let got = data.withUnsafeBytes { SHA256Stream.hex(of: $0) }
            try Self.compare(got: got, want: want, name: name, path: path)
        }
        return data
    }

    /// The checksum `name`'s body must hash to (lowercase hex), nil when an unsealed archive records none.
    /// Checks the META's `size` against the index too.
    public func checksumCheck(for name: String, size: UInt64) throws -> String? {
        let meta = try self.meta(named: name)
        if let recorded = meta["size"], recorded.intValue != Int64(bitPattern: size) {
            throw DESFormatError(
                .badMetadata, "\(DESNameRules.quoted(name)): META size \(describe(recorded)) but the body is \(size) bytes", path: path)
        }
        guard let want = try meta.recordedSHA256(entry: name, path: path) else {
            if isSealed {
                throw DESFormatError(
                    .missingChecksum, "\(DESNameRules.quoted(name)) has no sha256 in its META, which a sealed archive requires", path: path)
            }
            return nil
        }
        return want
    }

    /// Throws `checksumMismatch` unless the two hex digests agree.
    static func compare(got: String, want: String, name: String, path: String) throws {
        if got != want {
            throw DESFormatError(
                .checksumMismatch, "\(DESNameRules.quoted(name)): body hashes to \(got), META says \(want)", path: path)
        }
    }

    private func rawMeta(_ entry: DESIndexEntry) throws -> [UInt8] {
        try read(offset: entry.metaOffset, length: entry.metaLength, countAsBody: false)
    }

    fileprivate func describe(_ value: DESJSONValue) -> String {
        var out: [UInt8] = []
        JSONWriter.write(value: value, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// Whether a byte is an ASCII hex digit (lowercase letters only: callers lowercase first).
func isHexDigit(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x61...0x66).contains(b) }
