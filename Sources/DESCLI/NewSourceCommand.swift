import ArgumentParser
import Foundation

/// `des new-source NAME`: renders `templates/custom-source` of the DES checkout into a new package.
struct NewSourceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-source",
        abstract: "Create a Swift package with a source of your own, run by the stock packer.",
        discussion: """
            Renders the checkout's templates/custom-source into DIR (default: ./NAME): \
            a package that depends on this DES checkout, implements SourceConnector for \
            a JSON-lines catalog file (connection.type: the name in lower case), runs \
            DES's conformance kit on it, and builds a binary that is the stock `des` \
            (packer, marker, every command) plus that source. Change the source to read \
            your own catalog.

            NAME: an ASCII letter, then letters and digits (a Swift type name).

            Example:
              des new-source AcmeCatalog -o ../acme-catalog
            """)

    @Argument(help: "The package's name (a Swift type name, e.g. AcmeCatalog).")
    var name: String

    @Option(name: [.customShort("o"), .long], help: "Where to create the package (must not exist or be empty).")
    var output: String?

    @Option(help: "The DES checkout the package depends on (default: the one this binary was built from).")
    var desPath: String?

    @Option(help: "The template directory (default: templates/custom-source of the checkout).")
    var template: String?

    /// The checkout this file was compiled in.
    static var builtFromCheckout: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Sources/DESCLI/NewSourceCommand.swift
        return url.path
    }

    func run() throws {
        try reportingErrors {
            guard let first = name.unicodeScalars.first, first.isASCII, CharacterSet.letters.contains(first),
                name.unicodeScalars.allSatisfy({ $0.isASCII && CharacterSet.alphanumerics.contains($0) }), name.count <= 64
            else {
                throw CLIFailure(
                    message: "new-source: '\(name)' is not a package name (an ASCII letter, then letters and digits)", exitCode: DESExit.usage)
            }
            let fm = FileManager.default
            let checkout = URL(fileURLWithPath: desPath ?? Self.builtFromCheckout).standardizedFileURL.path
            guard fm.fileExists(atPath: checkout + "/Package.swift") else {
                throw CLIFailure(
                    message: "new-source: no DES checkout at '\(checkout)' (give its path with --des-path)", exitCode: DESExit.noInput)
            }
            let templateDir = template ?? checkout + "/templates/custom-source"
            guard fm.fileExists(atPath: templateDir + "/Package.swift") else {
                throw CLIFailure(message: "new-source: no template at '\(templateDir)' (give it with --template)", exitCode: DESExit.noInput)
            }
            let target = URL(fileURLWithPath: output ?? name).standardizedFileURL.path
            // DIR must be a directory (or a link to one), or not exist: never a file, a device or a dangling link.
            try OutputFile.checkDirectory(target)
            if let existing = try? fm.contentsOfDirectory(atPath: target), !existing.isEmpty {
                throw CLIFailure(message: "new-source: '\(target)' exists and is not empty", exitCode: DESExit.cantCreate)
            }
            let values = [
                "__NAME__": name, "__TYPE__": name.lowercased(), "__DES_PATH__": checkout,
                // SwiftPM names a path dependency after its folder.
                "__DES_PACKAGE__": URL(fileURLWithPath: checkout).lastPathComponent.lowercased(),
            ]
            let written = try Self.render(templateDir, into: target, values: values)
            Terminal.out(
                """
                Created \(target) (\(written) files): the package \(name), whose source answers to connection.type: \(name.lowercased()).
                `swift test` there runs DES's conformance kit on it. Next, to pack the example catalog:
                  cd \(Self.shellQuoted(target))
                  swift run \(name) marker run -c example/des.yaml --until-idle
                  swift run \(name) packer run -c example/des.yaml --until-idle

                """)
        }
    }

    /// Copies every file of `template` into `target`, replacing the placeholders in paths and text.
    static func render(_ template: String, into target: String, values: [String: String]) throws -> Int {
        let fm = FileManager.default
        func substitute(_ text: String) -> String {
            values.reduce(text) { $0.replacingOccurrences(of: $1.key, with: $1.value) }
        }
        guard let walker = fm.enumerator(atPath: template) else {
            throw CLIFailure(message: "new-source: cannot read the template '\(template)'", exitCode: DESExit.ioError)
        }
        var count = 0
        try fm.createDirectory(atPath: target, withIntermediateDirectories: true)
        while let relative = walker.nextObject() as? String {
            let source = template + "/" + relative
            if relative.hasPrefix(".build") || relative.contains("/.build") { continue }
            let destination = target + "/" + substitute(relative)
            var isDirectory: ObjCBool = false
            _ = fm.fileExists(atPath: source, isDirectory: &isDirectory)
            if isDirectory.boolValue {
                try fm.createDirectory(atPath: destination, withIntermediateDirectories: true)
                continue
            }
            guard let data = fm.contents(atPath: source) else {
                throw CLIFailure(message: "new-source: cannot read '\(source)'", exitCode: DESExit.ioError)
            }
            let rendered = String(data: data, encoding: .utf8).map { Data(substitute($0).utf8) } ?? data
            guard fm.createFile(atPath: destination, contents: rendered) else {
                throw CLIFailure(message: "new-source: cannot write '\(destination)'", exitCode: DESExit.cantCreate)
            }
            count += 1
        }
        return count
    }

    static func shellQuoted(_ path: String) -> String {
        path.allSatisfy({ $0.isLetter || $0.isNumber || "/._-".contains($0) }) ? path : "'" + path.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
