import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension FilesystemSourceConfiguration {
    /// A path of DES's own (a container directory, the work directory, the metadata database,
    /// the config file) that a root of this source holds and no `exclude` glob leaves out.
    public struct OwnPathProblem: Sendable, Hashable, CustomStringConvertible {
        /// The root, as the config names it.
        public var root: String
        /// What the path is (`storage.root`, `packer.work_dir`, …).
        public var what: String
        /// The path relative to the root, as an `exclude` glob would name it.
        public var relative: String

        public var description: String {
            "root '\(root)' holds \(what) ('\(relative)'): a scan would pack DES's own files. "
                + "Add exclude: ['\(relative)'] to the source, or move it out of the root"
        }
    }

    /// Of DES's own paths (each group's `what` and paths, absolute or relative to
    /// `baseDirectory`), those a root holds and the `exclude` globs do not leave out (the path,
    /// or a directory on its way to it), one problem per group and root: for a group of several
    /// paths (a database and its journals), the first not left out, named as a glob of them all.
    public func ownPathProblems(_ groups: [(what: String, paths: [String])], baseDirectory: String) -> [OwnPathProblem] {
        var problems: [OwnPathProblem] = []
        for (root, resolvedRoot) in zip(roots, resolvedRoots(baseDirectory: baseDirectory)) {
            guard let rootPath = Self.canonical(resolvedRoot) else { continue }
            for (what, paths) in groups {
                let uncovered = paths.compactMap { uncoveredRelative($0, rootPath: rootPath, baseDirectory: baseDirectory) }
                guard let first = uncovered.first else { continue }
                problems.append(OwnPathProblem(root: root, what: what, relative: paths.count > 1 && first != "." ? first + "*" : first))
            }
        }
        return problems
    }

    /// `path` relative to `rootPath` when the root holds it and no `exclude` glob leaves it
    /// (or a directory on its way) out; nil otherwise.
    func uncoveredRelative(_ path: String, rootPath: String, baseDirectory: String) -> String? {
        let absolute = path.hasPrefix("/") ? path : baseDirectory + "/" + path
        guard let own = Self.canonical(absolute) else { return nil }
        let relative: String
        if own == rootPath {
            relative = "."
        } else if own.hasPrefix(rootPath == "/" ? "/" : rootPath + "/") {
            relative = String(own.dropFirst(rootPath == "/" ? 1 : rootPath.count + 1))
        } else {
            return nil
        }
        let parts = relative.split(separator: "/").map(String.init)
        let excluded = relative != "." && parts.indices.contains { i in
            let prefix = parts[...i].joined(separator: "/")
            return exclude.contains { $0.matches(prefix) }
        }
        return excluded ? nil : relative
    }

    /// `path` with every symbolic link and `..` resolved (`realpath`), or nil when it does not
    /// resolve (it, or a directory on its way, does not exist).
    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// ``realPath(_:)`` for the part of `path` that exists, what does not exist yet appended as
    /// written; nil when not even `/` resolves.
    static func canonical(_ path: String) -> String? {
        var head = (path as NSString).standardizingPath
        var tail: [String] = []
        while true {
            if let base = realPath(head) {
                guard !tail.isEmpty else { return base }
                return (base == "/" ? "" : base) + "/" + tail.reversed().joined(separator: "/")
            }
            guard head != "/" && !head.isEmpty else { return nil }
            tail.append((head as NSString).lastPathComponent)
            head = (head as NSString).deletingLastPathComponent
            if head.isEmpty { head = "/" }
        }
    }
}
