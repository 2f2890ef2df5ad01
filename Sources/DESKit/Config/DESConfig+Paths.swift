import Foundation

extension DESConfig {
    /// The directory relative paths in the config resolve against: the config file's
    /// directory, or the current directory for a config not read from a file.
    public var baseDirectory: String {
        guard let path else { return FileManager.default.currentDirectoryPath }
        let directory = (path as NSString).deletingLastPathComponent
        if directory.isEmpty { return FileManager.default.currentDirectoryPath }
        if directory.hasPrefix("/") { return (directory as NSString).standardizingPath }
        let absolute = (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(directory)
        return (absolute as NSString).standardizingPath
    }

    /// `path` made absolute against ``baseDirectory`` (absolute paths and `~` paths are kept as they are, `~` expanded).
    public func resolvePath(_ path: String) -> String {
        if path.hasPrefix("~") { return (path as NSString).expandingTildeInPath }
        if path.hasPrefix("/") { return (path as NSString).standardizingPath }
        return ((baseDirectory as NSString).appendingPathComponent(path) as NSString).standardizingPath
    }
}
