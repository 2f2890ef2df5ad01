import DESKit
import Foundation
import Logging

/// `events.publish.type: redis`: `des relay` appends each event to a Redis Stream with
/// `XADD {stream} MAXLEN ~ {maxlen} * id {seq} kind … ` (the stream trimmed to about `maxlen`
/// entries), and keeps how far it got in `{stream}:cursor`. Consumers read the stream with
/// `XREAD`/`XREADGROUP` and skip an `id` they have seen (delivery is at least once).
public final class RedisEventSink: EventSink {
    /// The stream's settings.
    public struct Settings: Sendable, Hashable {
        /// The server and login.
        public var server = RedisIndexCache.Settings()
        /// The stream's key.
        public var stream = "des:events"
        /// About how many entries the stream keeps (`MAXLEN ~`).
        public var maxLength = 100_000
        /// Creates defaults.
        public init() {}
    }

    /// The settings.
    public let settings: Settings
    private let connection: RedisIndexCache

    /// A sink; it connects on first use.
    public init(settings: Settings, logger: Logger = Logger(label: "des.events.redis")) {
        self.settings = settings
        var server = settings.server
        server.timeoutSeconds = max(server.timeoutSeconds, 2)
        self.connection = RedisIndexCache(
            settings: server, logger: logger, role: "Redis event stream \(settings.stream)", downNote: "events are published once it answers")
    }

    public var destination: String { "redis stream \(settings.stream) at \(settings.server.server)" }

    private func run(_ args: [String]) async throws -> RedisIndexCache.Reply {
        let reply: RedisIndexCache.Reply
        switch await connection.send(args.map { Array($0.utf8) }) {
        case .success(let r): reply = r
        case .failure(let failure): throw failure.error(settings.server, role: "Redis event stream \(settings.stream)")
        }
        if case .error(let message) = reply {
            throw DESKitError(.unavailable, "Redis at \(settings.server.server) refused \(args.first ?? ""): \(message)")
        }
        return reply
    }

    public func publish(_ events: [StoreEvent]) async throws {
        for event in events {
            var fields = ["id", String(event.seq), "kind", event.kind.rawValue, "created_at", String(event.createdAt)]
            if let v = event.containerID { fields += ["container_id", String(v)] }
            if let v = event.containerKey { fields += ["container_key", v] }
            if let v = event.day { fields += ["day", v] }
            if let v = event.shard { fields += ["shard", String(v)] }
            if let v = event.name { fields += ["name", v] }
            if let v = event.source { fields += ["source", v] }
            if let v = event.rowID { fields += ["row_id", v] }
            _ = try await run(["XADD", settings.stream, "MAXLEN", "~", String(settings.maxLength), "*"] + fields)
        }
    }

    public func cursor() async throws -> Int64? {
        switch try await run(["GET", settings.stream + ":cursor"]) {
        case .bytes(let b):
            let text = String(decoding: b, as: UTF8.self)
            guard let seq = Int64(text), seq >= 0 else {
                throw DESKitError(
                    .invalidData,
                    "the relay's cursor \(settings.stream):cursor holds '\(text.prefix(40))', not an event number: "
                        + "delete the key to publish every event kept again, or set it to the last event published")
            }
            return seq
        default: return nil
        }
    }

    public func setCursor(_ seq: Int64) async throws {
        _ = try await run(["SET", settings.stream + ":cursor", String(seq)])
    }

    public func close() async { await connection.close() }
}

/// `events.publish:` with `type: redis`.
public struct RedisEventSinkConfig: PluginConfiguration {
    public static let keys = [
        ConfigKey(
            "url", .secret, help: "redis://[user[:password]@]host[:port][/db] (required; shown as ***).",
            example: "redis://127.0.0.1:6379"),
        ConfigKey("stream", .text, default: "des:events", help: "The stream's key (the relay's cursor is kept at {stream}:cursor)."),
        ConfigKey("max_length", .integer(1_000...1_000_000_000), default: "100000", help: "About how many entries the stream keeps (XADD MAXLEN ~)."),
    ]
    /// The stream's settings, as read.
    public var settings = RedisEventSink.Settings()

    public init(from section: ConfigSection) throws {
        settings.server = try RedisIndexCache.Settings(section: section, url: Self.key("url"), what: "events.publish type 'redis'")
        if let stream = try section.text(Self.key("stream")) { settings.stream = stream }
        if let n = try section.int(Self.key("max_length")) { settings.maxLength = n }
    }
}
