/// What ``DESArchiveReader/verify(maxProblems:)`` found.
public struct DESVerifyReport: Sendable {
    /// One thing wrong with one entry.
    public struct Problem: Sendable, CustomStringConvertible {
        /// The entry's name.
        public var name: String
        /// What is wrong.
        public var message: String
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
        let hasher = SHA256Stream()
        func problem(_ name: String, _ message: String) {
            report.problemCount += 1
            if report.problems.count < maxProblems { report.problems.append(.init(name: name, message: message)) }
        }
        for name in index.duplicateNames {
            problem(name, "appears more than once in the index (only the last is reachable)")
        }
        for entry in index.entries {
            report.entries += 1
            let meta: DESMetadata
            do {
                meta = try DESMetadata.parse(rawMeta(entry))
            } catch {
                problem(entry.name, "META is not a valid JSON object: \((error as? DESFormatError)?.message ?? "\(error)")")
                continue
            }
            if let size = meta["size"] {
                if size.intValue != Int64(bitPattern: entry.dataLength) {
                    problem(entry.name, "META size \(describe(size)) but the index says \(entry.dataLength) bytes")
                }
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
            if expected == nil || entry.flags.contains(.compressed) || entry.flags.contains(.encrypted) {
                report.withoutChecksum += 1
                report.bytesChecked += entry.dataLength
                continue
            }
            guard let want = expected?.stringValue?.lowercased(), want.count == 64 else {
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

    /// Checks one entry's body against its recorded checksum; throws `checksumMismatch` if it differs.
    public func checkedFile(named name: String) throws -> [UInt8] {
        let data = try bytes(at: requirePosition(name))
        let meta = try self.meta(named: name)
        if let want = meta["sha256"]?.stringValue {
            let got = data.withUnsafeBytes { SHA256Stream.hex(of: $0) }
            if got != want.lowercased() {
                throw DESFormatError(
                    .checksumMismatch, "\(DESNameRules.quoted(name)): body hashes to \(got), META says \(want)", path: path)
            }
        }
        return data
    }

    private func rawMeta(_ entry: DESIndexEntry) throws -> [UInt8] {
        try read(offset: entry.metaOffset, length: entry.metaLength, countAsBody: false)
    }

    private func describe(_ value: DESJSONValue) -> String {
        var out: [UInt8] = []
        JSONWriter.write(value: value, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
