import DESKit
import Foundation

/// The `connection:` block of a `filesystem` source: which directory trees to scan, which files
/// to take, and when a file counts as finished.
///
/// ```yaml
/// sources:
///   - name: scans
///     connection:
///       type: filesystem
///       roots: [/srv/scanner/out]
///       include: ["*.tif", "*.pdf"]
///       min_age: 60
///       routing: {"invoices/**": invoice, "*.tif": scan}
/// ```
public struct FilesystemSourceConfiguration: PluginConfiguration {
    public static let keys: [ConfigKey] = [
        ConfigKey("roots", .textList, help: "The directories to scan (absolute, or relative to the config file). Required.", example: "[/srv/share/in]"),
        ConfigKey("include", .textList, default: "[] (every file)", help: "Globs a file must match to be taken (a glob without / matches a name at any depth; ** spans directories)."),
        ConfigKey("exclude", .textList, default: "[\"*.tmp\", \"*.part\", \".*\"]", help: "Globs of files and directories left out (a directory left out is not read)."),
        ConfigKey("follow_symlinks", .boolean, default: "false", help: "Follow symbolic links to files, only to targets beneath the root (a link to a directory is not walked: the directory is, by its own path)."),
        ConfigKey("one_file_system", .boolean, default: "true", help: "Do not enter directories on another file system than the root's."),
        ConfigKey("min_age", .seconds(0...31_536_000), default: "30", help: "A file is taken once its mtime and ctime are this many seconds old and two scans saw the same size, mtime and ctime."),
        ConfigKey("priority_recent", .boolean, default: "true", help: "Files changed within the last day are written first in each scan (named and packed first)."),
        ConfigKey("routing", .textMap, default: "{}", help: "Glob → tag: each file's tags (META `tags`) are those of the globs it matches."),
        ConfigKey("scan_threads", .integer(1...64), default: "4", help: "Directories read at once."),
        ConfigKey("rescan_seconds", .seconds(1...86_400), default: "300", help: "How often des scan walks the roots again when it runs as a service."),
    ]

    /// The roots, as written.
    public var roots: [String] = []
    /// Files taken (empty: all).
    public var include: [PathGlob] = []
    /// Files and directories left out.
    public var exclude: [PathGlob] = FilesystemSourceConfiguration.defaultExclude
    /// Whether links are followed (beneath the root only).
    public var followSymlinks = false
    /// Whether other file systems are left alone.
    public var oneFileSystem = true
    /// Seconds a file must have been left alone.
    public var minAgeSeconds: Double = 30
    /// Whether recent files go first.
    public var priorityRecent = true
    /// Glob → tag, in the order of the glob's text (a YAML mapping has no order to keep).
    public var routing: [(glob: PathGlob, tag: String)] = []
    /// Directories read at once.
    public var scanThreads = 4
    /// Seconds between walks.
    public var rescanSeconds: Double = 300

    /// `*.tmp`, `*.part` and hidden names (editors' and uploaders' temporaries).
    public static let defaultExclude: [PathGlob] = ["*.tmp", "*.part", ".*"].compactMap { try? PathGlob($0) }

    /// A configuration in code.
    public init(roots: [String]) { self.roots = roots }

    public init(from section: ConfigSection) throws {
        guard let roots = try section.textList(Self.key("roots")), !roots.isEmpty, roots.allSatisfy({ !$0.isEmpty }) else {
            throw section.error("roots", "a filesystem source needs roots: the directories to scan")
        }
        self.roots = roots
        // Roots that are the same directory, or one inside another, would catalog (and pack) a file twice.
        let normalized = roots.map(Self.normalizedRoot)
        for (i, a) in normalized.enumerated() {
            for b in normalized[(i + 1)...] where a.hasPrefix("/") == b.hasPrefix("/") && Self.overlap(a, b) {
                throw section.error("roots", "'\(a)' and '\(b)' overlap: a file under both would be cataloged and packed twice")
            }
        }
        func globs(_ name: String) throws -> [PathGlob]? {
            try section.textList(Self.key(name)).map { patterns in
                try patterns.map { pattern in
                    do { return try PathGlob(pattern) } catch let error as PathGlobError { throw section.error(name, error.description) }
                }
            }
        }
        if let v = try globs("include") { include = v }
        if let v = try globs("exclude") { exclude = v }
        if let v = try section.bool(Self.key("follow_symlinks")) { followSymlinks = v }
        if let v = try section.bool(Self.key("one_file_system")) { oneFileSystem = v }
        if let v = try section.seconds(Self.key("min_age")) { minAgeSeconds = v }
        if let v = try section.bool(Self.key("priority_recent")) { priorityRecent = v }
        if let map = try section.textMap(Self.key("routing")) {
            routing = try map.sorted { $0.key < $1.key }.map { pattern, tag in
                guard !tag.isEmpty else { throw section.error("routing", "the tag of '\(pattern)' is empty") }
                do { return (try PathGlob(pattern), tag) } catch let error as PathGlobError { throw section.error("routing", error.description) }
            }
        }
        if let v = try section.int(Self.key("scan_threads")) { scanThreads = v }
        if let v = try section.seconds(Self.key("rescan_seconds")) { rescanSeconds = v }
    }

    /// The walker's rules.
    public var rules: FilesystemWalker.Rules {
        FilesystemWalker.Rules(include: include, exclude: exclude, followSymlinks: followSymlinks, oneFileSystem: oneFileSystem)
    }

    /// The tags of a path: those of the routing globs it matches, sorted, each once.
    public func tags(of path: String) -> [String] {
        Array(Set(routing.filter { $0.glob.matches(path) }.map(\.tag))).sorted()
    }

    /// The roots resolved against the config's directory.
    /// A path's components, `/`-separated, with no empty or `.` ones (`..` kept: it names
    /// nothing beneath a root).
    static func components(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }.joined(separator: "/")
    }

    /// Whether two normalized paths of the same kind (both absolute, or both relative) are one
    /// directory or one inside the other.
    static func overlap(_ a: String, _ b: String) -> Bool {
        func under(_ x: String, _ y: String) -> Bool { y == "." || y == "/" || x.hasPrefix(y + "/") }
        return a == b || under(a, b) || under(b, a)
    }

    /// A root as written, in one spelling: `tree/`, `./tree` and `tree` are `tree`; `/srv//x/` is `/srv/x`.
    static func normalizedRoot(_ root: String) -> String {
        let parts = components(root)
        return root.hasPrefix("/") ? "/" + parts : (parts.isEmpty ? "." : parts)
    }

    public func resolvedRoots(baseDirectory: String) -> [String] {
        roots.map { $0.hasPrefix("/") ? $0 : baseDirectory + "/" + $0 }
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.roots == b.roots && a.include == b.include && a.exclude == b.exclude && a.followSymlinks == b.followSymlinks
            && a.oneFileSystem == b.oneFileSystem && a.minAgeSeconds == b.minAgeSeconds && a.priorityRecent == b.priorityRecent
            && a.routing.map(\.glob) == b.routing.map(\.glob) && a.routing.map(\.tag) == b.routing.map(\.tag)
            && a.scanThreads == b.scanThreads && a.rescanSeconds == b.rescanSeconds
    }

    public func hash(into h: inout Hasher) {
        h.combine(roots)
        h.combine(include)
        h.combine(exclude)
        h.combine(minAgeSeconds)
    }
}
