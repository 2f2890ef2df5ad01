// swift-tools-version: 6.0
// __NAME__: the stock DES packer, marker and every `des` command, plus a source of its own
// (`connection.type: __TYPE__`, a JSON-lines catalog file). Rendered by `des new-source __NAME__`.
import PackageDescription

let package = Package(
    name: "__NAME__",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The DES checkout this package was rendered from.
        .package(path: "__DES_PATH__")
    ],
    targets: [
        // The source plugin: a library, so that its tests can run the conformance kit on it.
        .target(
            name: "__NAME__Source",
            dependencies: [
                .product(name: "DESKit", package: "__DES_PACKAGE__"),
                .product(name: "DESFormat", package: "__DES_PACKAGE__"),
            ]),
        // The binary: the stock entry point with the stock SQLite and local-disk plugins and this source.
        // (Only SQLite's C library is linked: this package builds without any other database's headers.)
        .executableTarget(
            name: "__NAME__",
            dependencies: [
                "__NAME__Source",
                .product(name: "DESCLI", package: "__DES_PACKAGE__"),
                .product(name: "DESKit", package: "__DES_PACKAGE__"),
                .product(name: "DESPluginSQLite", package: "__DES_PACKAGE__"),
                .product(name: "DESStorage", package: "__DES_PACKAGE__"),
            ]),
        .testTarget(
            name: "__NAME__SourceTests",
            dependencies: [
                "__NAME__Source",
                .product(name: "DESKit", package: "__DES_PACKAGE__"),
                .product(name: "DESKitTesting", package: "__DES_PACKAGE__"),
            ]),
    ]
)
