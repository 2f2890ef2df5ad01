import ArgumentParser
import DESFormat
import DESKit
import Foundation

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the entries of an archive.",
        discussion: """
            Prints one name per line, in index order. With -l: size, flags and name. \
            With --json: one JSON array of {name, size, offset, flags}.

            A name is printed with control characters, invisible format characters \
            and backslashes escaped (\\n, \\x1b, \\u{202e}, \\\\), so that a hostile \
            archive cannot fake entries or drive the terminal; --json escapes them \
            as JSON does, and --raw prints the names' bytes as they are.

            Examples:
              des ls photos.des
              des ls photos.des -l
              des ls photos.des --json | jq '.[].name'
            """
    )

    @Argument(help: "The archive: a path, or s3://bucket/key.") var archive: String
    @Flag(name: .short, help: "Long listing: size, flags, name.") var long = false
    @Flag(help: "Print a JSON array.") var json = false
    @Flag(help: "Print names exactly as stored, without escaping control characters.") var raw = false

    func run() throws {
        try reportingErrors {
            let reader = try openArchive(archive)
            if json {
                let items: [[String: Any]] = reader.entries.map {
                    ["name": $0.name, "size": $0.dataLength, "offset": $0.dataOffset, "flags": $0.flags.names]
                }
                Terminal.out(Terminal.json(items) + "\n")
                return
            }
            var out = ""
            out.reserveCapacity(reader.entries.count * 32)
            for e in reader.entries {
                let name = raw || !DESNameRules.needsEscaping(e.name) ? e.name : DESNameRules.escapedForDisplay(e.name)
                if long {
                    let flags = e.flags.names.isEmpty ? "-" : e.flags.names.joined(separator: ",")
                    let size = String(e.dataLength)
                    out += String(repeating: " ", count: max(0, 12 - size.count)) + size + "  "
                    out += flags + String(repeating: " ", count: max(0, 9 - flags.count)) + "  " + name + "\n"
                } else {
                    out += name + "\n"
                }
                if out.utf8.count > 1 << 16 {
                    Terminal.out(out)
                    out = ""
                }
            }
            Terminal.out(out)
        }
    }
}

struct CatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Write one entry's bytes to stdout.",
        discussion: """
            The body is checked against its recorded sha256 before anything is \
            written (pass --no-verify to skip the check).

            Example:
              des cat photos.des 2024/a.jpg > a.jpg
            """
    )

    @Argument(help: "The archive: a path, or s3://bucket/key.") var archive: String
    @Argument(help: "The entry's name.") var name: String
    @Flag(help: "Do not check the body against its recorded sha256.") var noVerify = false

    func run() throws {
        try reportingErrors {
            if archive.hasPrefix("s3://") && !noVerify {
                guard let bytes = try RemoteArchive.file(named: name, in: archive) else {
                    throw DESFormatError(.notFound, "no entry named \"\(DESNameRules.escapedForDisplay(name))\"", path: archive)
                }
                try bytes.withUnsafeBytes { try Terminal.outBytes($0) }
                return
            }
            let reader = try openArchive(archive)
            let bytes = noVerify ? try reader.file(named: name) : try reader.checkedFile(named: name)
            try bytes.withUnsafeBytes { try Terminal.outBytes($0) }
        }
    }
}

struct MetaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meta",
        abstract: "Print one entry's META JSON, exactly as stored.",
        discussion: """
            Example:
              des meta photos.des 2024/a.jpg      # {"size":5,"sha256":"2cf2…"}
            """
    )

    @Argument(help: "The archive: a path, or s3://bucket/key.") var archive: String
    @Argument(help: "The entry's name.") var name: String

    func run() throws {
        try reportingErrors {
            let reader = try openArchive(archive)
            _ = try reader.meta(named: name)  // must parse
            let raw = try reader.rawMeta(named: name)
            Terminal.out(String(decoding: raw, as: UTF8.self) + "\n")
        }
    }
}

struct StatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat",
        abstract: "Show an archive's regions, counts and sizes.",
        discussion: """
            Examples:
              des stat photos.des
              des stat photos.des --json
            """
    )

    @Argument(help: "The archive: a path, or s3://bucket/key.") var archive: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingErrors {
            let s = try openArchive(archive).stats()
            if json {
                Terminal.out(
                    Terminal.json([
                        "archive": archive, "version": s.version, "sealed": s.sealVersion != 0, "seal_version": s.sealVersion, "archive_size": s.archiveSize, "file_count": s.fileCount,
                        "external_count": s.externalCount, "deleted_count": s.deletedCount,
                        "total_file_bytes": s.totalFileBytes, "largest_file": s.largestFile,
                        "data_start": s.dataStart, "data_length": s.dataLength, "meta_start": s.metaStart,
                        "meta_length": s.metaLength, "index_start": s.indexStart, "index_length": s.indexLength,
                    ]) + "\n")
                return
            }
            Terminal.out(
                """
                archive:     \(archive)
                version:     \(s.version)
                seal:        \(s.sealVersion == 0 ? "none (unsealed)" : "version \(s.sealVersion), CRC-32C checked")
                size:        \(s.archiveSize) bytes (\(Terminal.bytes(s.archiveSize)))
                files:       \(s.fileCount) (\(s.externalCount) external, \(s.deletedCount) deleted)
                file bytes:  \(s.totalFileBytes) (largest \(s.largestFile))
                DATA:        \(s.dataStart) + \(s.dataLength)
                META:        \(s.metaStart) + \(s.metaLength)
                INDEX:       \(s.indexStart) + \(s.indexLength)

                """)
        }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every entry of an archive; exit 0 only when all check out.",
        discussion: """
            Validates the header, the footer, the seal and the index, then re-reads \
            every entry: its META must be a JSON object whose size matches the index, \
            and its body must match the recorded sha256. An archive DES wrote is \
            sealed: a CRC-32C in the footer covers every name, META byte, flag and \
            offset, and every entry must carry a sha256. Archives written by the \
            original DES (or with --no-checksums) are unsealed and carry no checksums: \
            their bounds, sizes and META are still checked, the report says so, and \
            --require-seal makes that a failure.

            Exit codes: 0 all good, 65 corrupt (the first problems are printed) or \
            unsealed with --require-seal, 66 no such file. With --json an archive too \
            broken to list is a report too ("ok": false, the problem named), then \
            exit 65.

            Examples:
              des verify photos.des
              des verify photos.des --require-seal --json
            """
    )

    @Argument(help: "The archive: a path, or s3://bucket/key.") var archive: String
    @Option(help: "Show at most this many problems.") var maxProblems = 20
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "Fail (exit 65) when the archive carries no seal.") var requireSeal = false

    func run() throws {
        try reportingErrors {
            let start = Terminal.seconds()
            var report: DESVerifyReport
            do {
                report = try openArchive(archive, wholeArchive: true).verify(maxProblems: max(1, maxProblems))
            } catch let error as DESFormatError where json && error.code.isCorruption {
                // An archive too broken to list (a torn footer, a bad index) is a report too: a
                // script parsing stdout gets one, then the error on stderr and exit 65.
                Terminal.out(
                    Terminal.json([
                        "archive": archive, "ok": false, "sealed": false, "entries": 0, "checksummed": 0, "without_checksum": 0,
                        "external": 0, "bytes_checked": 0, "problem_count": 1, "problems": ["(archive): \(error.message)"],
                        "seconds": max(Terminal.seconds() - start, 1e-9),
                    ]) + "\n")
                throw error
            }
            if requireSeal && !report.sealed {
                report.problemCount += 1
                report.problems.append(.init(name: "(archive)", message: "is not sealed (--require-seal)"))
            }
            let secs = max(Terminal.seconds() - start, 1e-9)
            if json {
                Terminal.out(
                    Terminal.json([
                        "archive": archive, "ok": report.isOK, "sealed": report.sealed, "entries": report.entries,
                        "checksummed": report.checksummed, "without_checksum": report.withoutChecksum,
                        "external": report.external, "bytes_checked": report.bytesChecked,
                        "problem_count": report.problemCount, "problems": report.problems.map(\.description),
                        "seconds": secs,
                    ]) + "\n")
            } else if report.isOK {
                var line = "\(archive): OK, \(report.sealed ? "sealed" : "unsealed (no seal to check)"), \(report.entries) entries, \(Terminal.bytes(report.bytesChecked)) checked"
                line += ", \(report.checksummed) checksums verified"
                if report.withoutChecksum > 0 { line += ", \(report.withoutChecksum) without a checksum to check" }
                if report.external > 0 { line += ", \(report.external) external (META only)" }
                Terminal.out(line + "\n")
            } else {
                for p in report.problems { Terminal.error("\(archive): \(p)") }
                if report.problemCount > report.problems.count {
                    Terminal.error("\(archive): … and \(report.problemCount - report.problems.count) more problems")
                }
            }
            if !report.isOK {
                if !json { Terminal.error("\(archive): FAILED, \(report.problemCount) problems in \(report.entries) entries") }
                throw ExitCode(DESExit.dataError)
            }
        }
    }
}

struct UnpackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpack",
        abstract: "Extract every entry of an archive into a directory.",
        discussion: """
            Recreates the '/'-separated tree under DIR (created if missing). Never \
            writes outside DIR: names with absolute paths or '..' segments are \
            refused before anything is written, and symbolic links inside DIR are \
            never followed. Existing files are an error unless --force. DIR itself may be \
            a link to a directory; a file, a device or a dangling link there is refused \
            (exit 73). Unlike `des get -o`, an entry never writes through a link, device \
            or FIFO inside DIR: with --force it replaces it (as tar does), so an archive \
            cannot reach outside DIR.

            Every body is checked against its recorded sha256 as it is written, and \
            gets its name only when it matches: a corrupted entry stops the unpack \
            with exit 65 and leaves no file for that entry (--no-verify skips the \
            check). An entry of a sealed archive with no sha256 is corruption too.

            Example:
              des unpack photos.des -C restored/
            """
    )

    @Argument(help: "The archive: a path, or s3://bucket/key.") var archive: String
    @Option(name: .customShort("C"), help: "The directory to extract into.") var directory: String
    @Flag(help: "Replace existing files.") var force = false
    @Flag(help: "Do not check bodies against their recorded sha256.") var noVerify = false

    func run() throws {
        try reportingErrors {
            try OutputFile.checkDirectory(directory)
            let reader = try openArchive(archive, wholeArchive: true)
            var n = 0
            let totals = try reader.unpack(to: directory, overwrite: force, verify: !noVerify) { _ in
                n += 1
                Terminal.progress("unpacking: \(n) files")
            }
            Terminal.clearProgress()
            for name in totals.skipped { Terminal.warn("\(name): external entry (body not in the archive), skipped") }
            Terminal.out("unpacked \(totals.files) files (\(Terminal.bytes(totals.bytes))) into \(directory)\n")
        }
    }
}
