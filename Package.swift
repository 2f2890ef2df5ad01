// swift-tools-version:6.0
import PackageDescription

// DES: packs billions of small files into append-only container archives.
// Module layout and dependency direction: see ../shared/DESIGN.md §2.
//   DESFormat, DESNaming  -> nothing of ours (only the libcrypto shim)
//   des                   -> wires everything
let package = Package(
    name: "DES",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "DESFormat", targets: ["DESFormat"]),
        .library(name: "DESNaming", targets: ["DESNaming"]),
        .executable(name: "des", targets: ["des"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenSSL's libcrypto: hardware-accelerated SHA-256 for checksums and shard hashing.
        .systemLibrary(
            name: "CDESCrypto",
            path: "Sources/CDESCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "DESFormat", dependencies: ["CDESCrypto"]),
        .target(name: "DESNaming", dependencies: ["CDESCrypto"]),
        .executableTarget(
            name: "des",
            dependencies: [
                "DESFormat", "DESNaming",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "des-bench",
            dependencies: ["DESFormat"],
            path: "Benchmarks/des-bench"
        ),
        .testTarget(name: "DESFormatTests", dependencies: ["DESFormat"]),
        .testTarget(name: "DESNamingTests", dependencies: ["DESNaming"]),
        .testTarget(name: "desTests", dependencies: ["DESFormat"]),
    ],
    swiftLanguageModes: [.v6]
)
