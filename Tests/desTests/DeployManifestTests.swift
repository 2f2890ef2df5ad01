import DESTestSupport
import Foundation
import Testing

/// The deployment files run des: every command that the Kubernetes overlays
/// (deploy/kubernetes/overlays/*) and docker-compose.yml give, as `scripts/check-deploy.py
/// --commands` lists them, must name a subcommand of this des, and every option it passes must be
/// one that subcommand's --help lists. scripts/check-deploy.py checks the rest of those files
/// (schemas, probes, secrets, des config check of their config).
@Suite("deploy manifests")
struct DeployManifestTests {
    /// The repository's root (this file is Tests/desTests/DeployManifestTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// One container's command, as the script prints it.
    struct Command: Decodable {
        var source: String
        var workload: String
        var container: String
        var args: [String]

        /// The subcommand: the arguments before the first option (`packer run`).
        var subcommand: [String] { Array(args.prefix { !$0.hasPrefix("-") }) }

        /// The options passed, without their values (`--pod-count=3` is `--pod-count`).
        var flags: [String] {
            args.filter { $0.hasPrefix("-") && $0.count > 1 }.map { String($0.split(separator: "=", maxSplits: 1)[0]) }
        }

        var label: String { "\(source): \(workload), container \(container)" }
    }

    /// Runs `python3 scripts/check-deploy.py --commands` at the root, with the script's own
    /// renderer (the same objects kustomize makes; the script compares the two when it checks).
    static func commands() throws -> [Command] {
        try withTempDir { dir -> [Command] in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "scripts/check-deploy.py", "--commands", "--renderer", "builtin"]
            process.currentDirectoryURL = URL(fileURLWithPath: Self.root)
            let outPath = dir + "/stdout", errPath = dir + "/stderr"
            try #require(FileManager.default.createFile(atPath: outPath, contents: nil))
            try #require(FileManager.default.createFile(atPath: errPath, contents: nil))
            let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
            let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            try out.close()
            try err.close()
            let stderr = String(decoding: try readFile(errPath), as: UTF8.self)
            try #require(
                process.terminationReason == .exit && process.terminationStatus == 0,
                "scripts/check-deploy.py --commands exited \(process.terminationStatus): \(stderr)")
            return try JSONDecoder().decode([Command].self, from: Data(try readFile(outPath)))
        }
    }

    /// The options a --help lists, read from its USAGE line on (the overview above it may name
    /// other commands' options): `--pod-count`, and short ones such as `-c`.
    static func options(inHelp help: String) -> Set<String> {
        guard let usage = help.range(of: "USAGE:") else { return [] }
        let separators = CharacterSet.whitespacesAndNewlines.union(CharacterSet(charactersIn: "[](),<>|="))
        var found: Set<String> = []
        for token in String(help[usage.lowerBound...]).components(separatedBy: separators) {
            let word = token.trimmingCharacters(in: CharacterSet(charactersIn: ".:;'\"`"))
            let name = word.drop { $0 == "-" }
            let dashes = word.count - name.count
            guard dashes == 1 || dashes == 2, let first = name.first, first.isLetter else { continue }
            found.insert(word)
        }
        return found
    }

    @Test("the option reader takes the USAGE line and the OPTIONS list, not the overview")
    func optionReader() {
        let help = """
            OVERVIEW: Mentions --not-an-option in its prose.

            USAGE: des packer run [--config <config>] [--pod-index <pod-index>]

            OPTIONS:
              -c, --config <config>   The config file (-1: none).
              --until-idle            Stop (after uploading every open container).
              -h, --help              Show help information.
            """
        #expect(Self.options(inHelp: help) == ["--config", "-c", "--pod-index", "--until-idle", "-h", "--help"])
        let command = Command(
            source: "s", workload: "w", container: "c",
            args: ["packer", "run", "--pod-count=3", "-c", "/etc/des/des.yaml", "--pod-index", "$(POD_INDEX)"])
        #expect(command.subcommand == ["packer", "run"])
        #expect(command.flags == ["--pod-count", "-c", "--pod-index"])
    }

    @Test("every des command of the overlays and the compose file is a subcommand, and its options are in its --help")
    func commandsAndOptions() throws {
        let commands = try Self.commands()
        let sources = Set(commands.map(\.source))
        #expect(
            sources.isSuperset(of: ["deploy/kubernetes/overlays/dev", "deploy/kubernetes/overlays/production", "docker-compose.yml"]),
            "\(sources.sorted())")
        // Each overlay runs every long-running worker.
        let workers: Set<[String]> = [
            ["marker", "run"], ["packer", "run"], ["serve"], ["retire"], ["expire"], ["compact"], ["relay"], ["scan"],
        ]
        for overlay in sources where overlay.hasPrefix("deploy/kubernetes/overlays/") {
            let run = Set(commands.filter { $0.source == overlay }.map(\.subcommand))
            #expect(run == workers, "\(overlay) runs \(run.map { $0.joined(separator: " ") }.sorted())")
        }
        let compose = Set(commands.filter { $0.source == "docker-compose.yml" }.map(\.subcommand))
        #expect(compose.isSuperset(of: [["marker", "run"], ["packer", "run"], ["serve"]]), "\(compose)")

        try withTempDir { dir in
            var helps: [[String]: Set<String>] = [:]
            for command in commands {
                let sub = command.subcommand
                try #require(!sub.isEmpty, "\(command.label): no subcommand in \(command.args)")
                let name = "des " + sub.joined(separator: " ")
                if helps[sub] == nil {
                    let r = try runDES(sub + ["--help"], in: dir)
                    #expect(r.status == 0, "\(command.label): \(name) --help exits \(r.status): \(r.stderr)")
                    // The help of that very subcommand, not of a group above it.
                    let usage = r.outLines.first { $0.hasPrefix("USAGE:") } ?? ""
                    #expect(usage.hasPrefix("USAGE: \(name) ") || usage == "USAGE: \(name)", "\(command.label): \(usage)")
                    #expect(!usage.contains("<subcommand>"), "\(command.label): \(name) is a group of commands: \(usage)")
                    helps[sub] = Self.options(inHelp: r.out)
                }
                let known = helps[sub] ?? []
                for flag in command.flags {
                    #expect(known.contains(flag), "\(command.label): \(name) has no option \(flag) (its --help lists \(known.sorted()))")
                }
            }
        }
    }
}
