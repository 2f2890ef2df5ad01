import DESFormat
import DESKit
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The fuzz targets: each takes arbitrary bytes and must end with a value or a typed error —
/// never a crash, a hang or unbounded memory. `des-fuzz` drives them with seeded mutations
/// (`make fuzz`, and briefly in the tests); built with `-sanitize=fuzzer` it is a libFuzzer target.
public enum FuzzTargets {
    /// The targets by name.
    public static let names = ["archive", "config"]

    /// Runs target `name` on `data`; returns a short signature of the outcome (which error, how
    /// many entries), which the driver uses to keep inputs that reach somewhere new.
    @discardableResult
    public static func run(_ name: String, _ data: [UInt8], scratch: FuzzScratch) -> String {
        switch name {
        case "archive": return archiveReader(data, scratch: scratch)
        default: return configLoader(data)
        }
    }

    static func outcome(_ error: Error) -> String {
        switch error {
        case let e as DESFormatError: return e.code.description
        case let e as ConfigError: return "\(e.code)@\(e.keyPath)"
        default: return String(describing: type(of: error))
        }
    }

    /// Opens `data` as an archive (positional and mapped) and exercises every reading path:
    /// stats, verify, each entry's body, META and checked body, a batch read, and now and then an unpack.
    @discardableResult
    public static func archiveReader(_ data: [UInt8], scratch: FuzzScratch) -> String {
        scratch.write(data)
        var signature = ""
        for mode in [DESArchiveReader.Mode.positional, .mapped] {
            let reader: DESArchiveReader
            do {
                reader = try DESArchiveReader(path: scratch.archivePath, mode: mode)
            } catch {
                signature = outcome(error)
                continue
            }
            _ = try? reader.stats()
            let problems = (try? reader.verify(maxProblems: 8))?.problemCount ?? -1
            signature = "ok:\(min(reader.entries.count, 8)):\(min(problems, 4)):\(reader.isSealed)"
            for entry in reader.entries.prefix(64) {
                _ = try? reader.file(named: entry.name)
                _ = try? reader.meta(named: entry.name)
                _ = try? reader.checkedFile(named: entry.name)
                _ = DESNameRules.escapedForDisplay(entry.name)
            }
            _ = try? reader.files(named: reader.entries.prefix(64).map(\.name), maxGap: 64)
            if mode == .positional && scratch.shouldUnpack() {
                _ = try? reader.unpack(to: scratch.unpackDirectory, overwrite: true)
                scratch.clearUnpackDirectory()
            }
        }
        // The in-memory parser as the S3 reader uses it, and the two-level index as it reads it:
        // the root from the object's end, then each leaf.
        _ = data.withUnsafeBytes { raw in try? DESIndex.parse(archive: raw) }
        if data.count >= DESFormat.minimumArchiveSize {
            data.withUnsafeBytes { raw in
                guard let footer = try? DESFooter.decode(UnsafeRawBufferPointer(rebasing: raw.suffix(DESFormat.footerSize))),
                    (try? footer.validate(archiveSize: UInt64(raw.count))) != nil,
                    let levels = try? DESLevels.parse(suffix: raw, footer: footer, archiveSize: UInt64(raw.count))
                else { return }
                signature += ":levels"
                for leaf in levels.leaves.prefix(16) {
                    _ = try? levels.entries(of: leaf, bytes: UnsafeRawBufferPointer(rebasing: raw[Int(leaf.offset)..<Int(leaf.offset + leaf.length)]), footer: footer)
                }
            }
        }
        return signature
    }

    /// Parses `data` as a YAML config (with a fixed environment, so `${VAR}` expands both ways).
    @discardableResult
    public static func configLoader(_ data: [UInt8]) -> String {
        let text = String(decoding: data, as: UTF8.self)
        do {
            let config = try ConfigLoader.parse(yaml: text, file: "fuzz.yaml", environment: ["HOME": "/root", "DES_X": "1"])
            return "ok:\(config.sources.count)"
        } catch {
            return outcome(error)
        }
    }

    /// Seed inputs: the golden vectors and archives of every feature (sealed, unsealed,
    /// external and empty entries, nested names), and the shipped configs plus small snippets.
    public static func seeds(for name: String, configDirectory: String?) throws -> [[UInt8]] {
        name == "archive" ? try archiveSeeds() : configSeeds(configDirectory: configDirectory)
    }

    static func archiveSeeds() throws -> [[UInt8]] {
        let dir = NSTemporaryDirectory() + "des-fuzz-seeds-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var out: [[UInt8]] = []
        func archive(checksums: Bool, _ fill: (DESArchiveWriter) throws -> Void) throws {
            let path = dir + "/\(out.count).des"
            var options = DESArchiveWriter.Options()
            options.checksums = checksums
            options.syncOnClose = false
            let writer = try DESArchiveWriter(path: path, options: options)
            try fill(writer)
            try writer.close()
            out.append([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
        }
        for checksums in [false, true] {
            try archive(checksums: checksums) { _ in }
            try archive(checksums: checksums) { w in
                try w.add(name: "a.txt", bytes: Array("hello".utf8), metadata: ["mime": "text/plain"])
                try w.add(name: "b", bytes: [])
            }
            try archive(checksums: checksums) { w in
                try w.add(name: "dir/sub/x.bin", bytes: (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) }, metadata: ["n": 1, "f": 1.5, "z": nil])
                try w.add(name: "dir/ü.txt", bytes: Array("unicode".utf8), metadata: ["nested": .object(["a": .array([1, "two"])])])
                try w.addExternal(
                    name: "big/video.mp4", size: 1 << 33, externalKey: "des/_bigFiles/big/video.mp4",
                    sha256: checksums ? String(repeating: "ab", count: 32) : nil)
            }
        }
        // Large enough for a two-level index (root, leaves and their trailer before the footer).
        try archive(checksums: true) { w in
            for i in 0..<1200 {
                try w.add(name: "n/\(i * 7919 % 1200)", bytes: [UInt8(truncatingIfNeeded: i)], metadata: i % 2 == 0 ? ["content_type": "text/plain"] : [:])
            }
        }
        return out
    }

    static func configSeeds(configDirectory: String?) -> [[UInt8]] {
        var out: [[UInt8]] = [
            Array("sources: []\n".utf8),
            Array("packer: {lease_ttl_seconds: 30, heartbeat_seconds: 10, max_container_bytes: 1GiB}\n".utf8),
            Array("marker: {rate_limit_per_second: 100, name_prefix: DES}\ncache: {type: memory, ttl_seconds: 0}\n".utf8),
            Array("x-base: &b {type: sqlite, database: c.sqlite}\nmetadata: {connection: {<<: *b}}\n".utf8),
            Array("sources:\n  - name: s\n    connection: {type: sqlite, database: ${DES_X:-c}.sqlite, password: ${HOME}}\n    table: {name: files}\n".utf8),
        ]
        if let configDirectory, let names = try? FileManager.default.contentsOfDirectory(atPath: configDirectory) {
            for name in names.sorted() where name.hasSuffix(".yaml") {
                if let data = FileManager.default.contents(atPath: configDirectory + "/" + name) { out.append([UInt8](data)) }
            }
        }
        return out
    }
}

/// Files a fuzz target may use: one archive path rewritten per input, and an unpack directory.
public final class FuzzScratch: @unchecked Sendable {
    /// The archive file each input is written to.
    public let archivePath: String
    /// Where unpacks go (emptied after each).
    public let unpackDirectory: String
    private let root: String
    private var count = 0

    /// Creates scratch files under a new temporary directory.
    public init() throws {
        root = NSTemporaryDirectory() + "des-fuzz-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        archivePath = root + "/input.des"
        unpackDirectory = root + "/unpack"
        try FileManager.default.createDirectory(atPath: unpackDirectory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// Replaces the archive's contents with `data`.
    func write(_ data: [UInt8]) {
        let fd = open(archivePath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress.unsafelyUnwrapped + done, raw.count - done)
                if n <= 0 { break }
                done += n
            }
        }
        close(fd)
    }

    /// Every 32nd input is also unpacked (unpacking writes files, so it is the slow path).
    func shouldUnpack() -> Bool {
        count += 1
        return count % 32 == 0
    }

    func clearUnpackDirectory() {
        try? FileManager.default.removeItem(atPath: unpackDirectory)
        try? FileManager.default.createDirectory(atPath: unpackDirectory, withIntermediateDirectories: true)
    }
}
