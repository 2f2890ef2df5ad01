import ArgumentParser
import DESKit

/// The `des` command line, as a library: the stock `des` and any custom
/// package call ``DESCommandLine/main(registry:)`` with their plugins registered.
public enum DESCommandLine {
    /// The registry of the command line running in this task: bound by ``main(registry:)`` and
    /// ``run(_:registry:)`` for the command's duration (a task-local value, not a process-wide
    /// global: two command lines with different registries can run in one process at once).
    @TaskLocal static var current: PluginRegistry?

    /// The registry the commands build every plugin from: the one given to ``main(registry:)``.
    /// There is no silent fallback: a command run without one fails, saying so.
    static func requireRegistry() throws -> PluginRegistry {
        guard let registry = current else {
            throw CLIFailure(
                message: "no plugin registry: start the command line with DESCommandLine.main(registry:)", exitCode: DESExit.software)
        }
        return registry
    }

    /// Parses the process's arguments and runs the command, with `registry`'s plugins.
    public static func main(registry: PluginRegistry) async {
        await $current.withValue(registry) { await DESCommand.main() }
    }

    /// Runs one command line (`["packer", "run", "-c", "des.yaml", "--until-idle"]`) in this process with
    /// `registry`'s plugins, and returns its exit code (what `des` would exit with). For embedding and tests.
    public static func run(_ arguments: [String], registry: PluginRegistry) async -> Int32 {
        await $current.withValue(registry) { await runBound(arguments) }
    }

    private static func runBound(_ arguments: [String]) async -> Int32 {
        do {
            var command = try DESCommand.parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch {
            return DESCommand.exitCode(for: error).rawValue
        }
    }
}

/// The `des` command.
struct DESCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "des",
        abstract: "Pack many small files into DES container archives and read them back.",
        discussion: """
            A DES archive (.des) holds file bodies back to back, a JSON META object \
            per file and an index, so any one file is served with a single ranged read.

            Examples:
              des pack photos/ -o photos.des       pack a directory tree
              des ls photos.des -l                 list entries with sizes
              des cat photos.des 2024/a.jpg > a.jpg
              des verify photos.des                re-hash every entry
              des name --prefix IMG --count 3      make DES names
              des shard 'IMG_20250101_(21BCAA000100_88)' --bits 8

            Exit codes: 0 success, 1 other failure, 64 usage error, 65 corrupt \
            archive or bad data, 66 input not found, 69 a server unavailable, \
            70 internal error, 73 output exists or cannot be created, 74 I/O error, 75 a worker \
            stopped past its drain deadline (nothing lost; run it again), 77 a server refused \
            the login (authentication failed), 78 a catalog table does not fit its \
            mapping (des catalog check says what to add), 130 stopped by a \
            second signal.
            """,
        version: "0.1.0",
        subcommands: [
            PackCommand.self, ListCommand.self, CatCommand.self, MetaCommand.self, StatCommand.self,
            VerifyCommand.self, UnpackCommand.self, NameCommand.self, ShardCommand.self,
            MarkerCommand.self, PackerCommand.self, RecoverCommand.self, StatusCommand.self, GetCommand.self,
            CheckCommand.self, SampleCommand.self, ConfigCommand.self, CatalogCommand.self, NewSourceCommand.self, ServeCommand.self,
            HealthCommand.self, DeadLetterCommand.self, RetireCommand.self, RebuildCommand.self, DeleteCommand.self, ExpireCommand.self, RelayCommand.self,
            CompactCommand.self, ScanCommand.self, LsVersionsCommand.self,
        ]
    )
}
