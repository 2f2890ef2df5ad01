import DESPluginMSSQL
import DESPluginMariaDB
import DESPluginODBC
import DESPluginPostgreSQL
import DESPluginRedis
import DESPluginS3
import DESPluginSQLite
import DESStorage
import Testing

@testable import DESKit

/// A registry with every stock plugin, as `des` registers them.
func stockRegistry() -> PluginRegistry {
    let r = PluginRegistry()
    SQLitePlugin.register(in: r)
    PostgresPlugin.register(in: r)
    MariaDBPlugin.register(in: r)
    ODBCPlugin.register(in: r)
    MSSQLPlugin.register(in: r)
    LocalStoragePlugin.register(in: r)
    S3Plugin.register(in: r, environment: [:])
    RedisPlugin.register(in: r)
    StockNaming.register(in: r)
    return r
}

/// The source types the stock plugins register.
let stockSourceTypes = Set(stockRegistry().sourceTypes)

/// Parses `yaml` as `des` does: with the stock plugins reading their sections.
func parseStock(_ yaml: String, env: [String: String] = [:]) throws -> DESConfig {
    try ConfigLoader.parse(yaml: yaml, file: "test.yaml", environment: env, plugins: stockRegistry())
}

/// The ConfigError `parseStock` throws (failing the test when it throws none).
func stockError(_ yaml: String, env: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
    expectConfigError(sourceLocation) { _ = try parseStock(yaml, env: env) }
}

/// The ConfigError `body` throws (failing the test when it throws none, or another error).
func expectConfigError(_ sourceLocation: SourceLocation, _ body: () throws -> Void) -> ConfigError? {
    do {
        try body()
        Issue.record("expected a ConfigError", sourceLocation: sourceLocation)
    } catch let error as ConfigError {
        return error
    } catch {
        Issue.record("expected a ConfigError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

// Helpers shared by the config tests: a minimal source, parsing, the error a parse throws.

/// A minimal valid source; `extra` is appended (indented as a source's keys) and `connectionExtra` inside `connection:`.
func sourceYAML(name: String = "a", connectionExtra: String = "", extra: String = "") -> String {
    var text = """
        sources:
          - name: \(name)
            connection:
              type: sqlite
              database: a.sqlite

        """
    text += connectionExtra.split(separator: "\n").map { "      \($0)\n" }.joined()
    text += "    table:\n      name: files\n"
    text += extra.split(separator: "\n").map { "    \($0)\n" }.joined()
    return text
}

func parse(_ yaml: String, env: [String: String] = [:], known: Set<String>? = nil) throws -> DESConfig {
    try ConfigLoader.parse(yaml: yaml, file: "test.yaml", environment: env, knownSourceTypes: known)
}

/// The ConfigError parsing `yaml` throws (failing the test when it throws none).
func configError(
    _ yaml: String, env: [String: String] = [:], known: Set<String>? = nil, sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigError? {
    expectConfigError(sourceLocation) { _ = try parse(yaml, env: env, known: known) }
}

/// The 1-based line of `text` that starts (after indentation) with `prefix`.
func lineNumber(of prefix: String, in text: String) -> Int? {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    return lines.firstIndex { $0.drop(while: { $0 == " " }).hasPrefix(prefix) }.map { $0 + 1 }
}
