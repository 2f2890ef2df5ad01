import Foundation

/// The `des` executable the tests run: `$DES_BIN`, else the one built beside the test bundle.
public func desExecutable() throws -> String {
    if let explicit = ProcessInfo.processInfo.environment["DES_BIN"], !explicit.isEmpty {
        guard FileManager.default.isExecutableFile(atPath: explicit) else { throw MissingExecutable("DES_BIN=\(explicit) is not an executable") }
        return explicit
    }
    var starts: [URL] = [Bundle.main.bundleURL]
    if let exe = Bundle.main.executableURL { starts.append(exe.deletingLastPathComponent()) }
    starts.append(URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent())
    for start in starts {
        // Walk up a few levels: on macOS the runner sits inside DESPackageTests.xctest/Contents/MacOS.
        var dir = start.resolvingSymlinksInPath()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("des").path
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue,
                FileManager.default.isExecutableFile(atPath: candidate)
            {
                return candidate
            }
            dir = dir.deletingLastPathComponent()
        }
    }
    throw MissingExecutable("cannot find the des executable next to \(starts.map(\.path)); build it or set DES_BIN")
}

/// The `des` executable is not where the tests look.
public struct MissingExecutable: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
