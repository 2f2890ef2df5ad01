import DESKit
import Foundation
import DESPluginS3
import DESStorage
import Testing

/// The package root, found from this file's path.
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

private let sourceDatabasesEnv = [
    "ORACLE_PASSWORD": "oracle-pw-1", "MSSQL_PASSWORD": "mssql-pw-2", "MYSQL_PASSWORD": "mysql-pw-3",
    "POSTGRES_PASSWORD": "postgres-pw-4", "DES_METADATA_PASSWORD": "metadata-pw-5",
]

/// The configs shipped in configs/ parse, with the values their comments promise.
@Suite struct ShippedConfigTests {
    @Test func localConfig() throws {
        let path = packageRoot + "/configs/local.yaml"
        let config = try ConfigLoader.load(path: path, environment: [:], plugins: stockRegistry())
        #expect(config.path == path)
        #expect(config.baseDirectory == packageRoot + "/configs")
        #expect(config.resolvePath("./des-data/x") == packageRoot + "/configs/des-data/x")
        let source = try #require(config.sources.first)
        #expect(config.sources.count == 1)
        #expect(source.name == "catalog" && source.enabled)
        #expect(source.connection.type == "sqlite")
        #expect(source.connection.database == "./des-data/catalog.sqlite")
        #expect(source.table.name == "files")
        #expect(source.table.columns.id == "id")
        #expect(source.table.columns.s3Key == "body_path")
        #expect(source.table.columns.sizeBytes == "size_bytes")
        #expect(source.table.columns.status == "des_status")
        #expect(source.table.columns.metadataColumns == ["mime", "owner"])
        #expect(source.bodies.type == "local" && source.bodies.directory == "./des-data/bodies")
        #expect(source.shardBits == 4)
        #expect(config.storage.type == "local" && config.storage.prefix == "des")
        #expect(config.storage.settings?.value(as: LocalStorageConfig.self)?.root == "./des-data/archive")
        #expect(config.metadata.connection.type == "sqlite")
        #expect(config.metadata.connection.database == "./des-data/metadata.sqlite")
        #expect(config.packer.workDir == "./des-data/work")
        #expect(config.packer.shardBits == 4)
        #expect(config.packer.batchSize == 500)
        #expect(config.packer.maxContainerFiles == 2000)
        #expect(config.packer.maxContainerAgeSeconds == 30)
        #expect(config.packer.leaseTTLSeconds == 30)
        #expect(config.packer.heartbeatSeconds == 5)
        #expect(config.marker.batchSize == 500 && config.marker.namePrefix == "DES" && config.marker.nodeID == 0)
        #expect(config.cache.type == "memory")
    }

    @Test func sourceDatabasesConfig() throws {
        let path = packageRoot + "/configs/source_databases.yaml"
        // Loaded as `des` loads it: every stock plugin reads its section.
        let config = try ConfigLoader.load(path: path, environment: sourceDatabasesEnv, plugins: stockRegistry())
        #expect(config.sources.map(\.name) == ["documents-postgres", "uploads-mysql", "scans-mssql", "archive-oracle"])
        #expect(config.sources.map(\.connection.type) == ["postgres", "mysql", "mssql", "oracle"])
        #expect(config.sources.map(\.connection.port) == [5432, 3306, 1433, 1521])
        #expect(config.sources.allSatisfy { $0.shardBits == 8 && $0.enabled && $0.table.columns.metadata.count >= 2 })
        #expect(config.sources.allSatisfy { $0.table.whereClause != nil && $0.claimTimeoutSeconds != nil })
        #expect(config.sources.allSatisfy { $0.connection.poolPrePing && $0.connection.poolRecycleSeconds > 0 })
        #expect(config.sources.allSatisfy { !$0.connection.driverOptions.isEmpty && $0.bodies.type == "s3" })
        let postgres = config.sources[0]
        #expect(postgres.connection.password?.value == "postgres-pw-4")
        #expect(postgres.connection.driverOptions["sslmode"] == "require")
        #expect(postgres.connection.driverOptions["connect_timeout"] == "10")
        #expect(postgres.table.columns.metadata.first == MetadataColumn(key: "document_type", column: "doc_type"))
        #expect(postgres.table.statusPendingValue == "uploaded" && postgres.table.statusClaimedValue == "claimed")
        #expect(postgres.table.whereClause == "deleted_at IS NULL")
        #expect(postgres.claimTimeoutSeconds == 300 && postgres.batchSize == 200)
        #expect(config.sources[1].connection.charset == "utf8mb4")
        #expect(config.sources[1].connection.driverOptions["ssl_verify_cert"] == "true")
        #expect(config.sources[2].table.schema == "dbo")
        #expect(config.sources[3].connection.password?.value == "oracle-pw-1")
        #expect(config.sources[3].table.shardKeyColumn == "DES_SHARD")
        let s3 = try #require(config.storage.settings?.value(as: S3StorageConfig.self))
        #expect(config.storage.type == "s3" && s3.bucket == "des-archive")
        #expect(s3.connection.region == "us-east-1")
        #expect(s3.connection.endpoint == nil && s3.connection.secretKey == nil)
        #expect(config.metadata.connection.type == "postgresql")
        #expect(config.metadata.connection.password?.value == "metadata-pw-5")
        #expect(config.packer.shardBits == 8 && config.packer.maxContainerBytes == 1 << 30 && config.packer.podName == nil)
        #expect(config.marker.naming == "snowflake")
        #expect(config.server.port == 8080)

        // DES honours every key the shipped file writes: no warning.
        #expect(config.warnings.isEmpty, "\(config.warnings)")

        var env = sourceDatabasesEnv
        env["DES_BUCKET"] = "other-bucket"
        env["POD_INDEX"] = "3"
        env["POD_COUNT"] = "4"
        env["POSTGRES_SOURCE_ENABLED"] = "false"
        let overridden = try ConfigLoader.load(path: path, environment: env, plugins: stockRegistry())
        #expect(overridden.storage.settings?.value(as: S3StorageConfig.self)?.bucket == "other-bucket")
        #expect(overridden.packer.podIndex == 3)
        #expect(overridden.enabledSources.count == 3)
    }

    /// With nothing in the environment the example still checks: passwords are simply absent.
    @Test func sourceDatabasesConfigLoadsWithAnEmptyEnvironment() throws {
        let path = packageRoot + "/configs/source_databases.yaml"
        let config = try ConfigLoader.load(path: path, environment: [:], plugins: stockRegistry())
        #expect(config.sources.count == 4)
        #expect(config.sources.allSatisfy { $0.connection.password == nil })
        #expect(config.metadata.connection.password == nil)
    }
}
