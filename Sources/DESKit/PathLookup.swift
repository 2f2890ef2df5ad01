/// Why a path did not resolve to one packed file.
public struct PathLookupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Equatable {
        /// No source that keeps paths has a version of it.
        case notFound
        /// The asked-for version does not exist.
        case noSuchVersion
        /// The version exists, but DES does not hold its bytes (yet: not packed, or gone).
        case notPacked
        /// Two roots or sources have a file at that path: say which (`root`, `source`).
        case ambiguous
        /// The version (by default, the newest one DES held) was deleted by name.
        case deleted
    }
    /// What went wrong.
    public var code: Code
    /// The whole message, naming the path and what was found.
    public var message: String
    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

/// Finds the packed file at a path through the path indexes of a config's sources (`des get
/// --path`, `des ls-versions`, `GET /files/by-path/…`).
public struct PathLookup: Sendable {
    /// The indexes searched, one per source that keeps paths.
    public let indexes: [any PathIndex]

    /// A lookup over `indexes`.
    public init(indexes: [any PathIndex]) {
        self.indexes = indexes
    }

    /// Every version recorded at `path`, in the source named `source` and beneath the root
    /// `root` when given, grouped by source and root, oldest first.
    public func versions(ofPath path: String, source: String? = nil, root: String? = nil) async throws -> [PathVersion] {
        var found: [PathVersion] = []
        for index in indexes where source == nil || index.sourceName == source {
            found += try await index.versions(ofPath: path, root: root)
        }
        return found
    }

    /// The version of `path` to read: `version` when given, else the newest one DES holds
    /// (unless the newest it held was deleted).
    /// Throws ``PathLookupError`` naming what is there when none fits.
    public func resolve(path: String, version: Int? = nil, source: String? = nil, root: String? = nil) async throws -> PathVersion {
        let all = try await versions(ofPath: path, source: source, root: root)
        let scope = [source.map { "source '\($0)'" }, root.map { "root '\($0)'" }].compactMap { $0 }.joined(separator: ", ")
        let within = scope.isEmpty ? "" : " (\(scope))"
        guard let any = all.first else {
            throw PathLookupError(.notFound, "'\(path)': no file at this path in any filesystem source's catalog\(within)")
        }
        let places = Set(all.map { "\($0.source):\($0.root)" })
        if places.count > 1 {
            let listed = places.sorted().map { "'\($0)'" }.joined(separator: ", ")
            throw PathLookupError(.ambiguous, "'\(path)' is in more than one source or root (source:root \(listed)): name one with root (and source)")
        }
        if let version {
            guard let v = all.first(where: { $0.version == version }) else {
                let have = all.map { String($0.version) }.joined(separator: ", ")
                throw PathLookupError(.noSuchVersion, "'\(path)' has no version \(version) (versions: \(have))")
            }
            if v.deleted { throw PathLookupError(.deleted, "'\(path)' version \(version) was deleted") }
            guard v.held else {
                throw PathLookupError(.notPacked, "'\(path)' version \(version) is not packed (its row is \(v.status))")
            }
            return v
        }
        // The newest version DES held: once deleted, the path reads as deleted (an older
        // version is read only when asked for by number).
        if let newest = all.last(where: { $0.held || $0.deleted }), newest.deleted {
            throw PathLookupError(.deleted, "'\(path)': its newest version (\(newest.version)) was deleted; older versions are read by number")
        }
        guard let newest = all.last(where: \.held) else {
            let latest = all.last ?? any
            throw PathLookupError(.notPacked, "'\(path)': no version is packed yet (version \(latest.version) is \(latest.status))")
        }
        return newest
    }
}
