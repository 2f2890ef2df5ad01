import Foundation
import DESPluginS3
import DESStorage
import Testing
import Yams

@testable import DESKit

// MARK: Helpers

/// A minimal valid source; `extra` is appended (indented as a source's keys) and `connectionExtra` inside `connection:`.
// MARK: Unknown keys

@Suite struct UnknownKeyConfigTests {
    @Test func unknownKeyNamesPositionPathAndSuggestion() throws {
        let error = try #require(configError(sourceYAML(connectionExtra: "prot: 5432")))
        #expect(error.code == .unknownKey)
        #expect(error.line == 6)
        #expect(error.column == 7)
        #expect(error.keyPath == "sources[0].connection.prot")
        #expect(error.suggestion == "port")
        #expect(error.description == "test.yaml:6:7: sources[0].connection.prot: unknown key 'prot' (did you mean 'port'?)")
    }

    @Test func caseAndUnderscoreDifferencesAreSuggested() throws {
        let error = try #require(configError(sourceYAML(connectionExtra: "poolSize: 3")))
        #expect(error.suggestion == "pool_size")
        let top = try #require(configError("Packer:\n  shard_bits: 4\n"))
        #expect(top.keyPath == "Packer")
        #expect(top.suggestion == "packer")
        #expect(top.line == 1 && top.column == 1)
    }

    @Test func farMissesHaveNoSuggestion() throws {
        let error = try #require(configError(sourceYAML(extra: "colour: blue")))
        #expect(error.code == .unknownKey)
        #expect(error.keyPath == "sources[0].colour")
        #expect(error.suggestion == nil)
        #expect(!error.description.contains("did you mean"))
    }

    @Test func unknownKeyInNestedSections() throws {
        let error = try #require(configError("packer:\n  shard_bitz: 4\n"))
        #expect(error.keyPath == "packer.shard_bitz")
        #expect(error.suggestion == "shard_bits")
        let columns = try #require(stockError(sourceYAML(extra: "bodies:\n  typ: local")))
        #expect(columns.keyPath == "sources[0].bodies.typ")
        #expect(columns.suggestion == "type")
    }

    @Test func extensionKeysAndMergeKeysAreAccepted() throws {
        let yaml = """
            x-sqlite: &sqlite
              type: sqlite
              database: shared.sqlite
            sources:
              - name: one
                connection:
                  <<: *sqlite
                  pool_size: 2
                table: {name: files}
            """
        let config = try parse(yaml)
        #expect(config.sources[0].connection.database == "shared.sqlite")
        #expect(config.sources[0].connection.poolSize == 2)

        // A key the mapping sets itself wins over the merged one; an unknown merged key is still an error.
        let own = try parse(yaml.replacingOccurrences(of: "pool_size: 2", with: "pool_size: 2\n      database: own.sqlite"))
        #expect(own.sources[0].connection.database == "own.sqlite")
        let unknown = try #require(configError(yaml.replacingOccurrences(of: "database: shared.sqlite", with: "databse: shared.sqlite")))
        #expect(unknown.code == .unknownKey)
        #expect(unknown.suggestion == "database")
    }

    @Test func suggestionDistance() {
        #expect(KeySuggestion.distance("prot", "port") == 1)
        #expect(KeySuggestion.distance("kitten", "sitting") == 3)
        #expect(KeySuggestion.suggest(for: "bucker", among: ["bucket", "prefix"]) == "bucket")
        #expect(KeySuggestion.suggest(for: "x", among: ["id"]) == nil)
    }
}

// MARK: Types and required keys

@Suite struct TypeConfigTests {
    @Test func wrongTypeForInteger() throws {
        let error = try #require(configError(sourceYAML(connectionExtra: "port: abc")))
        #expect(error.code == .wrongType)
        #expect(error.keyPath == "sources[0].connection.port")
        #expect(error.message == "expected an integer, got 'abc'")
        #expect(error.line == 6 && error.column == 13)
    }

    @Test func wrongTypesOfOtherKinds() throws {
        #expect(configError(sourceYAML(extra: "enabled: maybe"))?.message == "expected true or false, got 'maybe'")
        #expect(configError("packer:\n  lease_ttl_seconds: soon\n")?.message == "expected a number, got 'soon'")
        #expect(configError("packer: [1, 2]\n")?.message == "expected a mapping, got a list")
        #expect(configError("sources:\n  name: a\n")?.message == "expected a list, got a mapping")
        #expect(configError(sourceYAML(extra: "table: files"))?.code == .duplicate)  // a key written twice
    }

    @Test func missingRequiredKeys() throws {
        let noName = try #require(configError("sources:\n  - connection: {type: sqlite, database: a}\n    table: {name: t}\n"))
        #expect(noName.code == .missingKey)
        #expect(noName.keyPath == "sources[0].name")
        #expect(noName.message == "missing required key 'name'")
        #expect(noName.line == 2 && noName.column == 5)

        let noType = try #require(configError("sources:\n  - name: a\n    connection: {host: h}\n    table: {name: t}\n"))
        #expect(noType.keyPath == "sources[0].connection.type")
        #expect(noType.code == .missingKey)

        let noTable = try #require(configError("sources:\n  - name: a\n    connection: {type: mysql}\n"))
        #expect(noTable.keyPath == "sources[0].table")

        let noTableName = try #require(configError("sources:\n  - name: a\n    connection: {type: mysql}\n    table: {schema: s}\n"))
        #expect(noTableName.keyPath == "sources[0].table.name")

        // The SQLite plugin needs its file.
        let noDatabase = try #require(stockError("sources:\n  - name: a\n    connection: {type: sqlite}\n    table: {name: t}\n"))
        #expect(noDatabase.keyPath == "sources[0].connection.database" && noDatabase.code == .missingKey)
    }

    @Test func defaultsFillWhatIsNotWritten() throws {
        let config = try parse(sourceYAML())
        let source = try #require(config.sources.first)
        #expect(source.enabled)
        #expect(source.batchSize == nil)  // the packer's batch_size
        #expect(source.connection.poolSize == 4)
        #expect(source.table.statusPendingValue == "DES_TODO")
        #expect(source.table.columns.s3Key == "s3_key")
        #expect(source.bodies.type == "local")
        #expect(config.packer.shardBits == 8)
        #expect(config.server.host == "127.0.0.1" && config.server.port == 8080)
        #expect(config.path == "test.yaml")
    }

    @Test func emptyDocumentIsAllDefaults() throws {
        let config = try parse("# nothing here\n")
        #expect(config.sources.isEmpty)
        #expect(config.storage.type == "local")
    }

    @Test func syntaxErrorHasAPosition() throws {
        let error = try #require(configError("packer:\n  shard_bits: [4\n  batch_size: 3\n"))
        #expect(error.code == .syntax)
        #expect(error.line > 0)
    }

    @Test func missingFileIsUnreadable() throws {
        #expect(throws: ConfigError.self) { try ConfigLoader.load(path: "/nonexistent/des-config.yaml", environment: [:]) }
        do {
            _ = try ConfigLoader.load(path: "/nonexistent/des-config.yaml", environment: [:])
        } catch let error as ConfigError {
            #expect(error.code == .unreadable)
            #expect(error.description == "/nonexistent/des-config.yaml: no such config file")
        }
    }
}

// MARK: Environment variables

@Suite struct EnvironmentConfigTests {
    @Test func missingVariableIsAnError() throws {
        let error = try #require(configError(sourceYAML(connectionExtra: "host: ${DB_HOST}")))
        #expect(error.code == .missingVariable)
        #expect(error.keyPath == "sources[0].connection.host")
        #expect(error.message.contains("'DB_HOST'"))
        #expect(error.line == 6 && error.column == 13)
    }

    @Test func variablesAndDefaults() throws {
        let yaml = sourceYAML(connectionExtra: "host: ${DB_HOST}\nport: ${DB_PORT:-5433}\nusername: ${DB_USER:-des}")
        let withDefaults = try parse(yaml, env: ["DB_HOST": "db.example"])
        #expect(withDefaults.sources[0].connection.host == "db.example")
        #expect(withDefaults.sources[0].connection.port == 5433)
        #expect(withDefaults.sources[0].connection.username == "des")
        let set = try parse(yaml, env: ["DB_HOST": "h", "DB_PORT": "6000", "DB_USER": ""])
        #expect(set.sources[0].connection.port == 6000)
        #expect(set.sources[0].connection.username == "des")  // empty counts as unset for :-
        let bad = try #require(configError(yaml, env: ["DB_HOST": "h", "DB_PORT": "six"]))
        #expect(bad.message == "expected an integer, got 'six'")
    }

    @Test func dollarDollarBraceIsALiteral() throws {
        let yaml = sourceYAML(extra: "") + "      where_clause: \"tag = '$${HOME}' AND cost < $$5\"\n"
        let config = try parse(yaml, env: ["HOME": "/root"])
        #expect(config.sources[0].table.whereClause == "tag = '${HOME}' AND cost < $$5")
    }

    @Test func emptySubstitutionMeansAbsent() throws {
        let config = try parseStock("storage:\n  type: s3\n  bucket: b\n  endpoint: ${S3_ENDPOINT:-}\n")
        #expect(config.storage.settings?.value(as: S3StorageConfig.self)?.connection.endpoint == nil)
        // A list key too: `auth_tokens: ${TOKENS:-}` with TOKENS unset is no tokens, not a type error.
        let server = try parseStock("server:\n  auth_tokens: ${DES_TEST_NO_SUCH_TOKENS:-}\n")
        #expect(server.server.authTokens.isEmpty)
        #expect(throws: (any Error).self) { _ = try parseStock("server:\n  auth_tokens: some-token-0123456789\n") }
    }

    @Test func malformedReferences() throws {
        #expect(configError(sourceYAML(connectionExtra: "host: ${DB_HOST"))?.code == .badExpansion)
        #expect(configError(sourceYAML(connectionExtra: "host: ${1X}"))?.code == .badExpansion)
    }

    @Test func expansionUnit() throws {
        let env = ["A": "1", "E": ""]
        #expect(try EnvironmentExpansion.expand("x${A}y", environment: env).text == "x1y")
        #expect(try EnvironmentExpansion.expand("${E}", environment: env).text == "")
        #expect(try EnvironmentExpansion.expand("${B:-d e}", environment: env).text == "d e")
        #expect(try EnvironmentExpansion.expand("$A $", environment: env).text == "$A $")
        #expect(throws: EnvironmentExpansion.Failure.missingVariable("B")) { try EnvironmentExpansion.expand("${B}", environment: env) }
    }
}

// MARK: Secrets

@Suite struct SecretConfigTests {
    static let password = "Tr0ub4dor&3-very-secret"

    @Test func secretsNeverInErrors() throws {
        // A malformed reference inside a password: the text must not be echoed.
        let bad = try #require(configError(sourceYAML(connectionExtra: "password: \"\(Self.password)${oops here}\"")))
        #expect(bad.code == .badExpansion)
        #expect(!bad.description.contains("Tr0ub4dor"))
        #expect(!bad.description.contains("oops"))
        // An error elsewhere in a file holding a password.
        let other = try #require(
            configError(sourceYAML(connectionExtra: "password: \(Self.password)\nport: 0")))
        #expect(!other.description.contains(Self.password))
        // A secret with a type error is shown as <redacted>.
        let node = try #require(try Yams.compose(yaml: "password: \(Self.password)\n"))
        let mapping = try ConfigMapping(
            node, path: "x", context: ConfigContext(file: "f.yaml", environment: [:]), allowed: ["password"],
            secretKeys: ["password"])
        do {
            _ = try mapping.int("password", in: 0...10)
            Issue.record("expected an error")
        } catch let error as ConfigError {
            #expect(error.message == "expected an integer, got <redacted>")
            #expect(!error.description.contains("Tr0ub4dor"))
        }
    }

    @Test func secretsNeverInDescriptions() throws {
        let yaml = sourceYAML(connectionExtra: "password: ${PW}") + """
            storage:
              type: s3
              bucket: b
              access_key: AKIAEXAMPLE
              secret_key: ${SK}
            metadata:
              connection: {type: postgresql, host: h, password: meta-secret-value}

            """
        let config = try parseStock(yaml, env: ["PW": Self.password, "SK": "s3-secret-value"])
        #expect(config.sources[0].connection.password?.value == Self.password)
        #expect(config.storage.settings?.value(as: S3StorageConfig.self)?.connection.secretKey?.value == "s3-secret-value")
        for text in [String(describing: config), String(reflecting: config), "\(config.sources[0])", "\(config.storage)"] {
            #expect(!text.contains(Self.password))
            #expect(!text.contains("s3-secret-value"))
            #expect(!text.contains("meta-secret-value"))
        }
        #expect(config.sources[0].connection.password?.description == "***")
    }
}

// MARK: Validation

@Suite struct ValidationConfigTests {
    @Test func duplicateSourceNames() throws {
        let one = sourceYAML(name: "dup")
        let two = sourceYAML(name: "dup").replacingOccurrences(of: "sources:\n", with: "")
        let error = try #require(configError(one + two))
        #expect(error.code == .duplicate)
        #expect(error.keyPath == "sources[1].name")
        #expect(error.message.contains("sources[0]"))
        #expect(error.line == 8 && error.column == 11)
    }

    @Test func sourceNames() throws {
        #expect(configError(sourceYAML(name: "has space"))?.code == .invalidValue)
        #expect(configError(sourceYAML(name: "\"\""))?.message == "must not be empty")
        #expect(try parse(sourceYAML(name: "ok_name-2")).sources[0].name == "ok_name-2")
    }

    @Test func rangeErrors() throws {
        let shard = try #require(configError("packer:\n  shard_bits: 25\n"))
        #expect(shard.code == .invalidValue)
        #expect(shard.message == "must be between 1 and 16, got 25")
        #expect(shard.keyPath == "packer.shard_bits")
        #expect(configError(sourceYAML(connectionExtra: "port: 0"))?.message == "must be between 1 and 65535, got 0")
        #expect(configError(sourceYAML(connectionExtra: "port: 70000"))?.keyPath == "sources[0].connection.port")
        #expect(configError(sourceYAML(connectionExtra: "pool_size: 0"))?.message == "must be between 1 and 1000, got 0")
        #expect(configError(sourceYAML(extra: "batch_size: 0"))?.keyPath == "sources[0].batch_size")
        #expect(configError("packer:\n  fetch_concurrency: 0\n")?.keyPath == "packer.fetch_concurrency")
        #expect(configError("marker:\n  node_id: 256\n")?.message == "must be between 0 and 255, got 256")
        #expect(configError("marker:\n  name_prefix: DE-S\n")?.keyPath == "marker.name_prefix")
        // One limit for the prefix, so every name the marker makes is one GET /files accepts.
        #expect(configError("marker:\n  name_prefix: \(String(repeating: "P", count: 65))\n")?.keyPath == "marker.name_prefix")
        #expect(try parse("marker:\n  name_prefix: \(String(repeating: "P", count: 64))\n").marker.namePrefix.count == 64)
        #expect(configError("packer:\n  shard_bits: 17\n")?.keyPath == "packer.shard_bits")
        #expect(try parse("packer:\n  shard_bits: 16\n").packer.shardBits == 16)
        let pod = try #require(configError("packer:\n  pod_index: 2\n  pod_count: 2\n"))
        #expect(pod.keyPath == "packer.pod_index")
        #expect(configError("packer:\n  heartbeat_seconds: 30\n  lease_ttl_seconds: 30\n")?.keyPath == "packer.heartbeat_seconds")
    }

    @Test func sourceShardBitsOtherThanThePackersWarnAndThePackersServeAll() throws {
        // A reader finds a file's shard from its name alone, so one width serves every source.
        let mixed = try parse(sourceYAML(extra: "shard_bits: 4") + "packer:\n  shard_bits: 8\n")
        #expect(mixed.packer.shardBits == 8)
        let warning = try #require(mixed.warnings.first { $0.keyPath == "sources[0].shard_bits" })
        #expect(warning.message.contains("packer.shard_bits") && warning.message.contains("8 bits"))
        // Without packer.shard_bits the sources' value is taken.
        let config = try parse(sourceYAML(extra: "shard_bits: 4"))
        #expect(config.packer.shardBits == 4)
        #expect(configError(sourceYAML(extra: "shard_bits: 30"))?.message == "must be between 1 and 16, got 30")
    }

    @Test func choices() throws {
        let storage = try #require(stockError("storage:\n  type: s4\n  bucket: b\n"))
        #expect(storage.keyPath == "storage.type")
        #expect(storage.suggestion == "s3")
        #expect(storage.message.contains("no plugin registers it"))
        #expect(try parseStock("storage:\n  type: local\n").storage.settings?.value(as: LocalStorageConfig.self)?.root == "./des-data/archive")
        #expect(stockError("storage:\n  type: s3\n")?.keyPath == "storage.bucket")
        #expect(stockError("cache:\n  type: redis\n")?.keyPath == "cache.url")
        #expect(stockError("cache:\n  type: nonee\n")?.suggestion == "none")
        #expect(try parse("cache:\n  type: disk\n").cache.type == "disk")
        #expect(configError("marker:\n  naming: snowflak\n")?.suggestion == "snowflake")
        // A type that is no stock one's near miss may be a custom plugin's: the loader keeps it, and
        // `des config check` refuses it when the binary's registry has no such plugin.
        #expect(try parse(sourceYAML(extra: "bodies: {type: ftp}")).sources[0].bodies.type == "ftp")
        #expect(try parse("storage:\n  type: tape-robot\n").storage.type == "tape-robot")
        #expect(configError("storage:\n  type: 'no spaces'\n")?.keyPath == "storage.type")
        #expect(stockError("metadata:\n  connection: {type: mongodb}\n")?.keyPath == "metadata.connection.type")
        #expect(try parse("cache:\n  type: NONE\n").cache.type == "none")
    }

    @Test func unknownConnectionTypeWithKnownTypes() throws {
        let yaml = "sources:\n  - name: a\n    connection: {type: postgress, host: h}\n    table: {name: t}\n"
        let error = try #require(configError(yaml, known: stockSourceTypes))
        #expect(error.keyPath == "sources[0].connection.type")
        #expect(error.suggestion == "postgres")
        #expect(error.line == 3)
        // Without a list, any type passes (the plugin registry decides later).
        #expect(try parse(yaml).sources[0].connection.type == "postgress")
    }
}

@Suite struct ClaimModeConfigTests {
    @Test("packer.claim_mode is row (the default) or lease; anything else is refused with did you mean")
    func claimMode() throws {
        #expect(try parse("# nothing\n").packer.claimMode == .row)
        #expect(try parse("packer:\n  claim_mode: lease\n").packer.claimMode == .lease)
        #expect(try parse("packer:\n  claim_mode: ROW\n").packer.claimMode == .row)
        let e = try #require(configError("packer:\n  claim_mode: leese\n"))
        #expect(e.keyPath == "packer.claim_mode" && e.suggestion == "lease" && e.line == 2)
    }
}
