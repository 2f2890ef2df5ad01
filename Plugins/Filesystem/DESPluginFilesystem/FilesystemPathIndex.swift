import DESKit

/// Files of a filesystem source found by their path: every version its catalog recorded of a
/// path beneath one of its roots (`des get --path`, `des ls-versions`, `GET /files/by-path/…`).
public struct FilesystemPathIndex: PathIndex {
    public let sourceName: String
    /// The roots, as the config names them (a version's ``PathVersion/root``).
    let roots: [String]
    let catalog: SQLSourceConnector

    /// The index of `source` (a `filesystem` source) over `catalog`, its connector as the registry makes it.
    public init(source: SourceConfig, catalog: any SourceConnector) throws {
        guard let settings = source.connection.settings?.value(as: FilesystemSourceConfiguration.self),
            let catalog = catalog as? SQLSourceConnector
        else {
            throw DESKitError(.configuration, "source '\(source.name)' is not a filesystem source")
        }
        self.sourceName = source.name
        self.roots = settings.roots
        self.catalog = catalog
    }

    /// The longest path looked up (a longer one cannot have been cataloged: names are at most
    /// 255 bytes, paths 4,096).
    public static let maxPathBytes = 4_096

    public func versions(ofPath path: String, root: String?) async throws -> [PathVersion] {
        let path = Self.normalized(path)
        guard !path.isEmpty, path.utf8.count <= Self.maxPathBytes, !path.utf8.contains(0) else { return [] }
        var indexes = Array(roots.indices)
        if let root {
            let asked = FilesystemSourceConfiguration.normalizedRoot(root)
            guard let i = roots.firstIndex(where: { FilesystemSourceConfiguration.normalizedRoot($0) == asked }) else { return [] }
            indexes = [i]
        }
        let d = catalog.dialect
        let rows = try await catalog.transaction { session in
            try session.query(
                """
                SELECT root, version, status, des_name, size_bytes, mtime_ns, sha256 FROM \(FilesystemCatalog.table)
                WHERE source = \(d.placeholder(1)) AND path = \(d.placeholder(2)) ORDER BY root, version
                """, [.text(sourceName), .text(path)])
        }
        let held: Set<String> = [FilesystemCatalog.Status.packed, FilesystemCatalog.Status.superseded]
        return rows.compactMap { row in
            guard let r = row["root"].int, let i = Int(exactly: r), indexes.contains(i), let status = row["status"].text else { return nil }
            let name = row["des_name"].text
            return PathVersion(
                source: sourceName, root: roots[i], path: path, version: Int(row["version"].int ?? 1), status: status, name: name,
                held: name != nil && held.contains(status), deleted: status == FilesystemCatalog.Status.deleted, sizeBytes: UInt64(max(0, row["size_bytes"].int ?? 0)),
                mtimeNanoseconds: row["mtime_ns"].int ?? 0, sha256: row["sha256"].text)
        }
    }

    /// A path as the catalog keeps it: relative to its root, `/`-separated, no `.` or empty
    /// components (a leading `/` or `./` is dropped). `..` is kept, so it matches nothing.
    static func normalized(_ path: String) -> String { FilesystemSourceConfiguration.components(path) }
}
