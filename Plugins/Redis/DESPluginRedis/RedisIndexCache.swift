import CHiredis
import DESFormat
import DESKit
import Foundation
import Logging
import Synchronization

/// Indexes cached in Redis (`cache.type: redis`), shared by every process that reads the same
/// containers: each index in its compact, checksummed encoding (``DESIndex/cacheEncoding()``)
/// under `des:idx:{location}/{key}@{version}`, with the TTL, and the newest version of each
/// container under `des:ver:{location}/{key}`.
///
/// A damaged entry is deleted and counts as a miss. When Redis cannot be reached, or refuses the
/// login of `cache.url` (logged as an authentication failure, never with the password), the cache
/// is off — every lookup a miss, every store skipped — and it tries again at most once a second:
/// a Redis outage never fails a read. ``healthCheck()`` reports either (`des health`).
public final class RedisIndexCache: IndexCache {
    /// Where Redis is and how to log in (``Settings``).
    public let settings: Settings
    private let thread = DedicatedThread(name: "des-redis")
    private let logger: Logger
    private struct State {
        var hits = 0, misses = 0, errors = 0
        var down = false
        var lastAttempt = -Double.infinity
        var lastFailure: RedisConnectFailure?
    }
    private let state = Mutex(State())
    // Touched only on `thread`.
    private nonisolated(unsafe) var context: UnsafeMutablePointer<redisContext>?

    /// What this connection serves, in messages ("Redis index cache"; the event sink's differs).
    let role: String
    /// What a caller does while Redis is down, after the warning.
    let downNote: String

    /// Creates the cache; it connects on first use.
    public convenience init(settings: Settings, logger: Logger = Logger(label: "des.cache.redis")) {
        self.init(settings: settings, logger: logger, role: "Redis index cache", downNote: "reading without the Redis index cache")
    }

    /// A connection for another use of Redis (the event sink), named `role` in its messages.
    init(settings: Settings, logger: Logger, role: String, downNote: String) {
        self.settings = settings
        self.logger = logger
        self.role = role
        self.downNote = downNote
    }

    deinit {
        if let context { redisFree(context) }
        thread.stop()
    }

    /// Drops the connection (a later command connects again).
    public func close() async {
        _ = try? await thread.run { [self] () -> Bool in
            if let c = context { redisFree(c) }
            context = nil
            return true
        }
    }

    /// Commands that failed (Redis unreachable or answering with an error), for tests and metrics.
    public var errorCount: Int { state.withLock { $0.errors } }

    private func indexKey(_ i: ArchiveIdentity) -> String { "\(settings.keyPrefix):idx:\(i.location)/\(i.key)@\(i.version)" }
    private func versionKey(location: String, key: String) -> String { "\(settings.keyPrefix):ver:\(location)/\(key)" }

    /// A reply, reduced to what the cache needs.
    indirect enum Reply: Sendable {
        case bytes([UInt8]), nilValue, integer(Int64), status(String), error(String), array([Reply])
    }

    /// Runs one command; nil when Redis is down or refuses the login (the cache is then off for a second).
    func command(_ args: [[UInt8]]) async -> Reply? {
        try? await send(args).get()
    }

    /// Runs one command; the failure when Redis is down or refuses the login (no command is
    /// sent for a second after one).
    func send(_ args: [[UInt8]]) async -> Result<Reply, RedisConnectFailure> {
        let now = ProcessInfo.processInfo.systemUptime
        let skip = state.withLock { s -> Bool in
            if s.down && now - s.lastAttempt < 1 { return true }
            if s.down { s.lastAttempt = now }
            return false
        }
        if skip { return .failure(state.withLock { $0.lastFailure } ?? .unreachable("it did not answer a moment ago")) }
        let outcome = (try? await thread.run { [self] in runConnected(args) }) ?? .failure(.unreachable("the cache's thread has stopped"))
        state.withLock { s in
            switch outcome {
            case .failure(let failure):
                if !s.down {
                    logger.warning("\(failure.describe(settings, role: role)); \(downNote)", metadata: ["at": "\(settings.server)"])
                }
                s.down = true
                s.lastFailure = failure
                s.errors += 1
                s.lastAttempt = now
            case .success:
                s.down = false
            }
        }
        return outcome
    }

    /// One command on the thread, connecting first when needed. A refused login (an `AUTH`
    /// error, or `NOAUTH` from a server that wants one) drops the connection like a lost one.
    private func runConnected(_ args: [[UInt8]]) -> Result<Reply, RedisConnectFailure> {
        if context == nil, let failure = connect() { return .failure(failure) }
        guard let c = context else { return .failure(.unreachable("no connection")) }
        let reply = Self.run(c, args)
        var failure: RedisConnectFailure?
        switch reply {
        case nil: failure = .unreachable(c.pointee.err != 0 ? Self.contextError(c) : "the connection was lost")
        case .error(let message)? where RedisConnectFailure.isAuthentication(message): failure = .authentication(message)
        default: break
        }
        if let failure {
            redisFree(c)
            context = nil
            return .failure(failure)
        }
        return reply.map { .success($0) } ?? .failure(.unreachable("no reply"))
    }

    /// Connects (on the thread), logs in and selects the database; on failure `context` stays nil
    /// and the reason is returned (never with the password in it).
    private func connect() -> RedisConnectFailure? {
        let seconds = settings.timeoutSeconds
        let tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1e6))
        guard let c = redisConnectWithTimeout(settings.host, Int32(settings.port), tv) else { return .unreachable("out of memory") }
        if c.pointee.err != 0 {
            let reason = Self.contextError(c)
            redisFree(c)
            return .unreachable(reason)
        }
        redisSetTimeout(c, tv)
        var setup: [(what: String, args: [[UInt8]])] = []
        if let password = settings.password {
            let user = settings.username.map { [Array($0.utf8)] } ?? []
            setup.append(("AUTH", [Array("AUTH".utf8)] + user + [Array(password.utf8)]))
        }
        if settings.database != 0 { setup.append(("SELECT", [Array("SELECT".utf8), Array(String(settings.database).utf8)])) }
        for step in setup {
            let reply = Self.run(c, step.args)
            if case .status? = reply { continue }
            let failure: RedisConnectFailure
            switch reply {
            case nil: failure = .unreachable(c.pointee.err != 0 ? Self.contextError(c) : "the connection was lost")
            case .error(let message)? where step.what == "AUTH" || RedisConnectFailure.isAuthentication(message):
                failure = .authentication(message)
            case .error(let message)?: failure = .refused("\(step.what) \(settings.database) was refused: \(message)")
            default: failure = .refused("unexpected reply to \(step.what)")
            }
            redisFree(c)  // the cache stays off, and says why
            return failure
        }
        context = c
        return nil
    }

    /// hiredis's message for a failed context (`Connection refused`, `Timeout`).
    private static func contextError(_ c: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: c.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Connects (or uses the open connection), logs in and sends `PING`: throws
    /// ``DESKitError`` `authentication` when the server refuses the user or password,
    /// `unavailable` when it cannot be reached. For `des health`; unlike a lookup, it reports.
    public func healthCheck() async throws {
        let outcome = try await thread.run { [self] in runConnected([Array("PING".utf8)]) }
        switch outcome {
        case .success(.error(let message)): throw DESKitError(.unavailable, "Redis index cache at \(settings.server) answered PING with an error: \(message)")
        case .success: return
        case .failure(let failure): throw failure.error(settings)
        }
    }

    /// One command on the thread; nil when the connection failed.
    private static func run(_ c: UnsafeMutablePointer<redisContext>, _ args: [[UInt8]]) -> Reply? {
        let count = args.count
        let pointers = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: count)
        let lengths = UnsafeMutablePointer<Int>.allocate(capacity: count)
        var buffers: [UnsafeMutablePointer<CChar>] = []
        defer {
            for b in buffers { b.deallocate() }
            pointers.deallocate()
            lengths.deallocate()
        }
        for (i, arg) in args.enumerated() {
            let b = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, arg.count))
            arg.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(b).copyMemory(from: base, byteCount: arg.count) }
            }
            buffers.append(b)
            pointers[i] = UnsafePointer(b)
            lengths[i] = arg.count
        }
        guard let reply = cdes_redis_command(c, Int32(count), pointers, lengths) else { return nil }
        defer { freeReplyObject(reply) }
        return decode(reply.pointee)
    }

    private static func decode(_ r: redisReply) -> Reply {
        switch r.type {
        case REDIS_REPLY_STRING: return .bytes(r.str.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(r.len))) } ?? [])
        case REDIS_REPLY_NIL: return .nilValue
        case REDIS_REPLY_INTEGER: return .integer(r.integer)
        case REDIS_REPLY_STATUS: return .status(r.str.map { String(cString: $0) } ?? "")
        case REDIS_REPLY_ERROR: return .error(r.str.map { String(cString: $0) } ?? "error")
        case REDIS_REPLY_ARRAY:
            guard let elements = r.element else { return .array([]) }
            return .array((0..<Int(r.elements)).compactMap { elements[$0].map { decode($0.pointee) } })
        default: return .status("")
        }
    }

    private func ttlArgs(_ seconds: Double?) -> [[UInt8]] {
        guard let seconds, seconds > 0 else { return [] }
        return [Array("PX".utf8), Array(String(Int64((seconds * 1000).rounded(.up))).utf8)]
    }

    // MARK: IndexCache

    public func get(_ identity: ArchiveIdentity) async -> DESIndex? {
        let key = indexKey(identity)
        guard case .bytes(let bytes)? = await command([Array("GET".utf8), Array(key.utf8)]) else {
            state.withLock { $0.misses += 1 }
            return nil
        }
        guard let index = try? DESIndex(cacheEncoding: bytes, origin: identity.description) else {
            // Damaged, of an older encoding, or read from another object: remove it, and read the container instead.
            logger.warning("deleting a damaged cached index", metadata: ["key": "\(key)"])
            _ = await command([Array("DEL".utf8), Array(key.utf8)])
            state.withLock { $0.misses += 1 }
            return nil
        }
        state.withLock { $0.hits += 1 }
        return index
    }

    public func set(_ identity: ArchiveIdentity, index: DESIndex, ttlSeconds: Double?) async {
        // The value records the object it was read from; a reader refuses one that names another.
        var index = index
        if index.origin == nil { index.origin = identity.description }
        guard index.origin == identity.description else {
            logger.warning("not caching an index under another object's identity", metadata: ["key": "\(indexKey(identity))"])
            return
        }
        let ttl = ttlArgs(ttlSeconds ?? settings.ttlSeconds)
        _ = await command([Array("SET".utf8), Array(indexKey(identity).utf8), index.cacheEncoding()] + ttl)
        _ = await command(
            [Array("SET".utf8), Array(versionKey(location: identity.location, key: identity.key).utf8), Array(identity.version.utf8)] + ttl)
    }

    public func latest(location: String, key: String) async -> (version: String, index: DESIndex)? {
        guard case .bytes(let v)? = await command([Array("GET".utf8), Array(versionKey(location: location, key: key).utf8)]) else {
            state.withLock { $0.misses += 1 }
            return nil
        }
        let version = String(decoding: v, as: UTF8.self)
        guard let index = await get(ArchiveIdentity(location: location, key: key, version: version)) else { return nil }
        return (version, index)
    }

    public func delete(_ identity: ArchiveIdentity) async {
        _ = await command([Array("DEL".utf8), Array(indexKey(identity).utf8)])
    }

    private func partKey(_ i: ArchiveIdentity, _ name: String) -> String { "\(settings.keyPrefix):part:\(i.location)/\(i.key)@\(i.version)#\(name)" }
    private func partVersionKey(location: String, key: String, name: String) -> String { "\(settings.keyPrefix):pver:\(location)/\(key)#\(name)" }

    /// Parts are kept as bytes only (the reader parses them again).
    public func part(_ identity: ArchiveIdentity, name: String) async -> IndexCachePart? {
        guard case .bytes(let bytes)? = await command([Array("GET".utf8), Array(partKey(identity, name).utf8)]) else {
            state.withLock { $0.misses += 1 }
            return nil
        }
        state.withLock { $0.hits += 1 }
        return IndexCachePart(bytes: bytes)
    }

    public func setPart(_ identity: ArchiveIdentity, name: String, part: IndexCachePart, newest: Bool, ttlSeconds: Double?) async {
        let ttl = ttlArgs(ttlSeconds ?? settings.ttlSeconds)
        _ = await command([Array("SET".utf8), Array(partKey(identity, name).utf8), part.bytes] + ttl)
        guard newest else { return }
        _ = await command(
            [Array("SET".utf8), Array(partVersionKey(location: identity.location, key: identity.key, name: name).utf8), Array(identity.version.utf8)]
                + ttl)
    }

    public func latestPart(location: String, key: String, name: String) async -> (version: String, part: IndexCachePart)? {
        guard case .bytes(let v)? = await command([Array("GET".utf8), Array(partVersionKey(location: location, key: key, name: name).utf8)]) else {
            state.withLock { $0.misses += 1 }
            return nil
        }
        let version = String(decoding: v, as: UTF8.self)
        guard let found = await part(ArchiveIdentity(location: location, key: key, version: version), name: name) else { return nil }
        return (version, found)
    }

    public func deletePart(_ identity: ArchiveIdentity, name: String) async {
        _ = await command([Array("DEL".utf8), Array(partKey(identity, name).utf8)])
    }

    /// Removes every entry under the key prefix (`SCAN` a page at a time, then `DEL`).
    public func clear() async {
        var cursor = "0"
        repeat {
            guard case .array(let parts)? = await command(
                [Array("SCAN".utf8), Array(cursor.utf8), Array("MATCH".utf8), Array("\(settings.keyPrefix):*".utf8), Array("COUNT".utf8), Array("500".utf8)]),
                parts.count == 2, case .bytes(let next) = parts[0], case .array(let keys) = parts[1]
            else { return }
            cursor = String(decoding: next, as: UTF8.self)
            for case .bytes(let key) in keys { _ = await command([Array("DEL".utf8), key]) }
        } while cursor != "0"
    }

    public func stats() async -> IndexCacheStats {
        var s = IndexCacheStats()
        state.withLock {
            s.hits = $0.hits
            s.misses = $0.misses
        }
        return s
    }
}

/// Registers `cache.type: redis`.
public enum RedisPlugin {
    /// Adds the Redis index cache to `registry`.
    public static func register(in registry: PluginRegistry) {
        registry.registerIndexCache(type: "redis", configuration: RedisCacheConfig.self) { config in
            RedisIndexCache(settings: config.settings)
        }
        registry.registerEventSink(type: "redis", configuration: RedisEventSinkConfig.self) { config in
            RedisEventSink(settings: config.settings)
        }
    }

    typealias Settings = RedisIndexCache.Settings
}

/// `cache.type: redis`: indexes shared by every process through a Redis server.
public struct RedisCacheConfig: PluginConfiguration {
    public static let keys = [
        ConfigKey(
            "url", .secret, help: "redis://[user[:password]@]host[:port][/db] (required; shown as ***).",
            example: "redis://127.0.0.1:6379"),
        ConfigKey("ttl_seconds", .seconds(0...(30 * 86_400)), default: "3600", help: "Seconds an index is kept; 0 or null: until evicted."),
        ConfigKey("key_prefix", .text, default: "des", help: "What every key starts with ({prefix}:idx:…)."),
        ConfigKey(
            "timeout_seconds", .seconds(0.01...30), default: "0.5",
            help: "Longest wait for Redis on one command (a slower Redis counts as down: reads go to storage)."),
    ]
    /// The server, the login and the cache's settings, as read.
    public var settings: RedisIndexCache.Settings

    public init(from section: ConfigSection) throws {
        settings = try RedisIndexCache.Settings(section: section, url: Self.key("url"), what: "cache type 'redis'")
        if section.contains("ttl_seconds") {
            let ttl = try section.seconds(Self.key("ttl_seconds"))
            settings.ttlSeconds = ttl == 0 ? nil : ttl
        }
        if let prefix = try section.text(Self.key("key_prefix")) { settings.keyPrefix = prefix }
        if let t = try section.seconds(Self.key("timeout_seconds")) { settings.timeoutSeconds = t }
    }
}

extension RedisIndexCache: CheckableIndexCache {}
