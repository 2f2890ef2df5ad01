import DESKit

/// One source as the packer works with it: its catalog connector, the fetcher of its bodies,
/// and how its rows are treated (its `sources[]` keys) — one value, never matched up by name.
public struct PackerSource: Sendable {
    /// The catalog.
    public var connector: any SourceConnector
    /// Where its bodies are read from.
    public var fetcher: any BodyFetcher
    /// Its claim batch and claim timeout.
    public var policy: Packer.SourcePolicy

    /// The source's name (its connector's).
    public var name: String { connector.name }

    /// Creates a source.
    public init(connector: any SourceConnector, fetcher: any BodyFetcher, policy: Packer.SourcePolicy = .init()) {
        self.connector = connector
        self.fetcher = fetcher
        self.policy = policy
    }
}
