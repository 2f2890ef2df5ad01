// swift-tools-version:6.1
import PackageDescription

// DES: packs billions of small files into append-only container archives.
// Module layout and dependency direction: see docs/architecture.md.
//   DESFormat, DESNaming        -> nothing of ours (only the libcrypto shim)
//   DESKit                      -> DESFormat, DESNaming
//   DESStorage, DESEngine       -> DESKit
//   Plugins (DESPlugin*)        -> DESKit (+ their C client)
//   DESCLI, des                 -> wire everything
let package = Package(
    name: "DES",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "DESFormat", targets: ["DESFormat"]),
        .library(name: "DESNaming", targets: ["DESNaming"]),
        .library(name: "DESKit", targets: ["DESKit"]),
        .library(name: "DESStorage", targets: ["DESStorage"]),
        .library(name: "DESEngine", targets: ["DESEngine"]),
        .library(name: "DESSQLDialects", targets: ["DESSQLDialects"]),
        .library(name: "DESPluginSQLite", targets: ["DESPluginSQLite"]),
        .library(name: "DESPluginPostgreSQL", targets: ["DESPluginPostgreSQL"]),
        .library(name: "DESPluginMariaDB", targets: ["DESPluginMariaDB"]),
        .library(name: "DESPluginODBC", targets: ["DESPluginODBC"]),
        .library(name: "DESPluginMSSQL", targets: ["DESPluginMSSQL"]),
        .library(name: "DESPluginS3", targets: ["DESPluginS3"]),
        .library(name: "DESPluginRedis", targets: ["DESPluginRedis"]),
        .library(name: "DESPluginFilesystem", targets: ["DESPluginFilesystem"]),
        .library(name: "DESServer", targets: ["DESServer"]),
        .library(name: "DESCLI", targets: ["DESCLI"]),
        .library(name: "DESKitTesting", targets: ["DESKitTesting"]),
        .executable(name: "des", targets: ["des"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // The HTTP service (its default traits pull swift-configuration, which DES does not use).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // NIO itself, for the HTTP service's connection guard (a channel handler of ours in each
        // connection's pipeline); already in the graph through Hummingbird.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
        // TLS for the HTTP service (server.tls): Hummingbird's TLS channel over swift-nio-ssl.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
    ],
    targets: [
        // OpenSSL's libcrypto: hardware-accelerated SHA-256 for checksums and shard hashing.
        .systemLibrary(
            name: "CDESCrypto",
            path: "Sources/CDESCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // CRC-32C for the archive seal (hardware instructions where present).
        .target(name: "CDESChecksum", path: "Sources/CDESChecksum"),
        .target(name: "DESFormat", dependencies: ["CDESCrypto", "CDESChecksum"]),
        .target(name: "DESNaming", dependencies: ["CDESCrypto"]),
        .target(
            name: "DESKit",
            dependencies: [
                "DESFormat", "DESNaming",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "CDESFileSystem", path: "Sources/CDESFileSystem"),
        .target(name: "CDESProcess", path: "Sources/CDESProcess"),
        // Every database's SQL (no C client): the stock plugins and the ODBC plugin share them.
        .target(name: "DESSQLDialects", dependencies: ["DESKit"]),
        .target(name: "DESStorage", dependencies: ["DESKit", "DESFormat", "CDESFileSystem"]),
        // The conformance kit: one suite per protocol, run by every plugin, stock or custom.
        .target(name: "DESKitTesting", dependencies: ["DESKit", "DESFormat"]),
        .target(
            name: "DESEngine",
            dependencies: [
                "DESKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The HTTP service: /assign, /files/{name}, /health*, /metrics (Hummingbird 2, Prometheus text).
        .target(
            name: "DESServer",
            dependencies: [
                "DESKit", "DESNaming", "DESFormat", "DESEngine", "CDESCrypto",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Source plugins: a driver (SQLConnection) plus a dialect, each over its C client.
        .systemLibrary(
            name: "CSQLite",
            path: "Plugins/SQLite/CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(name: "DESPluginSQLite", dependencies: ["DESKit", "DESSQLDialects", "CSQLite"], path: "Plugins/SQLite/DESPluginSQLite"),
        .systemLibrary(
            name: "CLibPQ",
            path: "Plugins/PostgreSQL/CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(name: "DESPluginPostgreSQL", dependencies: ["DESKit", "DESSQLDialects", "CLibPQ"], path: "Plugins/PostgreSQL/DESPluginPostgreSQL"),
        .systemLibrary(
            name: "CMariaDB",
            path: "Plugins/MariaDB/CMariaDB",
            pkgConfig: "libmariadb",
            providers: [.apt(["libmariadb-dev"])]
        ),
        .target(name: "DESPluginMariaDB", dependencies: ["DESKit", "DESSQLDialects", "CMariaDB"], path: "Plugins/MariaDB/DESPluginMariaDB"),
        .systemLibrary(name: "CUnixODBC", path: "Plugins/ODBC/CUnixODBC", pkgConfig: "odbc", providers: [.apt(["unixodbc-dev"])]),
        .target(name: "DESPluginODBC", dependencies: ["DESKit", "DESSQLDialects", "CUnixODBC"], path: "Plugins/ODBC/DESPluginODBC"),
        .systemLibrary(name: "CFreeTDS", path: "Plugins/MSSQL/CFreeTDS", providers: [.apt(["freetds-dev"])]),
        .target(name: "DESPluginMSSQL", dependencies: ["DESKit", "DESSQLDialects", "CFreeTDS"], path: "Plugins/MSSQL/DESPluginMSSQL"),
        .target(name: "CDESCurl", path: "Plugins/S3/CDESCurl", linkerSettings: [.linkedLibrary("curl")]),
        .target(
            name: "DESPluginS3",
            dependencies: ["DESKit", "CDESCurl", "CDESCrypto", .product(name: "Metrics", package: "swift-metrics")],
            path: "Plugins/S3/DESPluginS3"),
        .systemLibrary(name: "CHiredis", path: "Plugins/Redis/CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(
            name: "DESPluginRedis", dependencies: ["DESKit", "DESFormat", "CHiredis", .product(name: "Logging", package: "swift-log")],
            path: "Plugins/Redis/DESPluginRedis"),
        .target(
            name: "DESPluginFilesystem", dependencies: ["DESKit", "DESFormat", "DESStorage", "CDESFileSystem"],
            path: "Plugins/Filesystem/DESPluginFilesystem"),

        .target(
            name: "DESCLI",
            dependencies: [
                "CDESProcess", "DESFormat", "DESNaming", "DESKit", "DESEngine", "DESServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "des",
            dependencies: [
                "DESCLI", "DESKit", "DESPluginSQLite", "DESPluginPostgreSQL", "DESPluginMariaDB", "DESPluginODBC", "DESPluginMSSQL",
                "DESPluginS3", "DESPluginRedis", "DESPluginFilesystem", "DESStorage",
            ]),
        // Fuzz targets (archive reader, config loader) and their seeded-mutation driver (`make fuzz`).
        .target(name: "DESFuzz", dependencies: ["DESFormat", "DESKit"]),
        .executableTarget(name: "des-fuzz", dependencies: ["DESFuzz", "DESTestSupport"], path: "Fuzz/des-fuzz"),
        .executableTarget(name: "des-libfuzzer", dependencies: ["DESFuzz"], path: "Fuzz/des-libfuzzer"),
        .executableTarget(
            name: "des-bench",
            dependencies: [
                "DESFormat", "DESKit", "DESEngine", "DESSQLDialects", "DESPluginPostgreSQL", "DESPluginMariaDB", "DESPluginS3", "DESStorage",
                "DESTestSupport",
            ], path: "Benchmarks/des-bench"),

        .target(name: "DESTestSupport", path: "Tests/DESTestSupport"),
        .testTarget(name: "DESFormatTests", dependencies: ["DESFormat", "DESTestSupport"]),
        .testTarget(name: "DESNamingTests", dependencies: ["DESNaming", "DESTestSupport"]),
        // The config tests load configs as `des` does, with the stock plugins reading their sections.
        .testTarget(
            name: "DESKitTests",
            dependencies: [
                "DESKit", "DESSQLDialects", "DESStorage", "DESPluginS3", "DESPluginRedis", "DESPluginSQLite", "DESPluginPostgreSQL", "DESPluginMariaDB",
                "DESPluginODBC", "DESPluginMSSQL",
            ]),
        .testTarget(name: "DESPluginPostgreSQLTests", dependencies: ["DESPluginPostgreSQL", "DESSQLDialects", "DESKit", "DESKitTesting"]),
        .testTarget(name: "DESPluginMariaDBTests", dependencies: ["DESPluginMariaDB", "DESSQLDialects", "DESKit", "DESKitTesting"]),
        .testTarget(name: "DESPluginODBCTests", dependencies: ["DESPluginODBC", "DESSQLDialects", "DESKit", "DESKitTesting"]),
        .testTarget(name: "DESPluginMSSQLTests", dependencies: ["DESPluginMSSQL", "DESSQLDialects", "DESKit"]),
        .testTarget(name: "DESSQLDialectsTests", dependencies: ["DESSQLDialects", "DESKit"]),
        .testTarget(name: "DESPluginS3Tests", dependencies: ["DESPluginS3", "DESKit", "DESFormat", "DESStorage", "DESKitTesting", "DESTestSupport"]),
        .testTarget(name: "DESPluginFilesystemTests", dependencies: ["DESPluginFilesystem", "DESKit"]),
        .testTarget(name: "DESPluginRedisTests", dependencies: ["DESPluginRedis", "DESKit", "DESFormat", "DESKitTesting"]),
        .testTarget(name: "DESEngineTests", dependencies: ["DESEngine", "DESKit", "DESNaming", "DESFormat", "DESStorage", "CDESFileSystem", "DESPluginSQLite", "DESPluginPostgreSQL", "DESPluginMariaDB", "DESPluginS3", "DESPluginRedis", "DESSQLDialects", "DESCLI", "DESKitTesting", "DESTestSupport", "DESPluginFilesystem"]),
        .testTarget(
            name: "DESServerTests",
            dependencies: ["DESServer", "DESEngine", "DESKit", "DESNaming", "DESFormat", "DESStorage", "DESPluginSQLite", "DESPluginPostgreSQL", "DESPluginS3", "DESCLI", "DESTestSupport"]),
        .testTarget(name: "desTests", dependencies: ["DESFormat", "DESNaming", "DESCLI", "DESTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
