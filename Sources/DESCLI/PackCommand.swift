import ArgumentParser
import DESFormat

struct PackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Pack directory trees into a new DES archive.",
        discussion: """
            Every regular file under each DIR becomes an entry named by its path \
            relative to DIR, with '/' between segments (a DIR that is a file is \
            named by its basename). Each entry's META records its size and SHA-256. \
            Symbolic links inside a tree and special files are skipped with a warning \
            (a DIR that is a link is followed). A file whose name is not UTF-8 or breaks \
            the name rules stops the pack unless --skip-invalid-names. Files are read on \
            one thread while another hashes and writes them. The archive is written to a \
            temporary file beside OUT and renamed only when complete, so an interrupted \
            pack never leaves a file at OUT. An existing OUT is refused (exit 73) unless \
            --force; a device, FIFO or symbolic link at OUT is written through, as cp does \
            (des pack -o /dev/null leaves /dev/null a device).

            Examples:
              des pack photos/ -o photos.des
              des pack a/ b/ -o both.des --force
              des pack logs/ -o logs.des --no-checksums   # byte-identical to the original DES writer
            """
    )

    @Argument(help: "Directories (or files) to pack.", completion: .directory)
    var dirs: [String]

    @Option(name: [.short, .customLong("output")], help: "The archive to create.")
    var output: String

    @Flag(help: "Replace OUT if it is an existing regular file (or a link to one: its target is replaced).")
    var force = false

    @Flag(help: "Do not record a sha256 per entry (reproduces the original writer's bytes).")
    var noChecksums = false

    @Flag(help: "Leave out files whose path breaks the name rules instead of failing.")
    var skipInvalidNames = false

    @Flag(help: "fsync the archive (and its directory) before renaming it into place (tar does not; off by default).")
    var fsync = false

    @Flag(help: "Print the summary as JSON.")
    var json = false

    func validate() throws {
        if dirs.isEmpty { throw ValidationError("give at least one directory to pack") }
        if output.isEmpty { throw ValidationError("--output must name a file") }
    }

    func run() throws {
        try reportingErrors {
            let start = Terminal.seconds()
            var options = DESArchiveWriter.Options()
            options.checksums = !noChecksums
            options.syncOnClose = false  // the output file syncs (with --fsync) when it is committed
            // OUT is written as cp writes it (see OutputFile): a temporary file beside it, renamed
            // when complete; a device or FIFO is written through, after the archive is complete.
            let out = try OutputFile.open(output, force: force, seekable: true)
            defer { out.abort() }
            let writer = try DESArchiveWriter(fileDescriptor: out.descriptor, path: output, options: options)
            var packer = DESDirectoryPacker()
            packer.skipInvalidNames = skipInvalidNames
            packer.onSkip = { Terminal.warn($0.description) }
            packer.onProgress = { t in
                Terminal.progress("packing: \(t.files) files, \(Terminal.bytes(t.bytes))")
            }
            let totals: DESDirectoryPacker.Totals
            do {
                totals = try packer.pack(roots: dirs, into: writer)
            } catch {
                writer.abort()
                throw error
            }
            let summary = try writer.close()  // on failure, the deferred out.abort() removes the output
            try out.commit(sync: fsync)
            Terminal.clearProgress()
            let secs = max(Terminal.seconds() - start, 1e-9)
            if json {
                Terminal.out(
                    Terminal.json([
                        "archive": output, "files": totals.files, "bytes": totals.bytes, "skipped": totals.skipped,
                        "archive_size": summary.archiveSize, "seconds": secs,
                    ]) + "\n")
            } else {
                let rate = Double(totals.files) / secs
                Terminal.out(
                    "packed \(totals.files) files (\(Terminal.bytes(totals.bytes))) into \(output) "
                        + "(\(Terminal.bytes(summary.archiveSize))) in \(String(format: "%.2f", secs)) s, "
                        + "\(Int(rate)) files/s" + (totals.skipped > 0 ? ", \(totals.skipped) skipped" : "") + "\n")
            }
        }
    }
}
