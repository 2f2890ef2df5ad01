import ArgumentParser

/// The `des` command line.
@main
struct DESCommand: ParsableCommand {
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

            Exit codes: 0 success, 1 failure, 64 usage error, 65 corrupt archive \
            or bad data, 66 input not found, 73 output exists, 74 I/O error.
            """,
        version: "0.1.0",
        subcommands: [
            PackCommand.self, ListCommand.self, CatCommand.self, MetaCommand.self, StatCommand.self,
            VerifyCommand.self, UnpackCommand.self, NameCommand.self, ShardCommand.self,
        ]
    )
}
