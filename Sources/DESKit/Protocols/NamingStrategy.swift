import DESNaming

/// How a catalog row gets its DES name.
public protocol NamingStrategy: Sendable {
    /// The name for a row.
    func name(for row: UnnamedRow) throws -> String
}

/// Snowflake names from the process-wide generator (the default).
public struct SnowflakeNaming: NamingStrategy {
    /// The generator used.
    public let generator: SnowflakeGenerator
    /// Creates the strategy.
    public init(generator: SnowflakeGenerator) { self.generator = generator }
    public func name(for row: UnnamedRow) throws -> String { generator.next().description }
}

/// Names taken from a catalog column (the row must already carry one).
public struct ColumnNaming: NamingStrategy {
    /// Creates the strategy.
    public init() {}
    public func name(for row: UnnamedRow) throws -> String {
        guard let name = row.presetName, !name.isEmpty else {
            throw DESKitError(.invalidData, "row \(row.rowID) has no value in its name column")
        }
        return name
    }
}

/// The key's last path component, as the original DES did.
public struct KeyBasenameNaming: NamingStrategy {
    /// Creates the strategy.
    public init() {}
    public func name(for row: UnnamedRow) throws -> String {
        let base = row.key.split(separator: "/").last.map(String.init) ?? ""
        guard !base.isEmpty else { throw DESKitError(.invalidData, "row \(row.rowID): key '\(row.key)' has no basename") }
        return base
    }
}

/// The naming strategies DES provides: `snowflake` (the default), `column` and `key_basename`.
public enum StockNaming {
    /// Registers the three stock strategies in `registry`.
    public static func register(in registry: PluginRegistry) {
        registry.registerNaming("snowflake") { marker in
            do {
                let generator = try SnowflakeGenerator(
                    configuration: .init(prefix: marker.namePrefix, node: marker.nodeID, wrapBits: 32))
                return SnowflakeNaming(generator: generator)
            } catch {
                throw DESKitError(.configuration, "marker: \(error)")
            }
        }
        registry.registerNaming("column") { _ in ColumnNaming() }
        registry.registerNaming("key_basename") { _ in KeyBasenameNaming() }
    }
}
