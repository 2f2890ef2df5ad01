import DESEngine
import DESKit
import Foundation
import Logging
import NIOSSL

/// The HTTP service's settings: the `server:` section of the config, with the
/// command line's host and port and the tokens of `DES_SERVER_TOKENS` applied.
public struct ServerSettings: Sendable {
    /// The address to listen on.
    public var host: String
    /// The port to listen on (0: any free port; the bound one is passed to `onRunning`).
    public var port: Int
    /// The Snowflake node of the names `/assign` gives.
    public var nodeID: Int
    /// The prefix `/assign` uses when a request names none.
    public var defaultPrefix: String
    /// Who may call `/assign` and `/files`: the static tokens and the JWT keys (``ServerCredentials``).
    public var credentials: ServerCredentials
    /// The static bearer tokens of ``credentials`` (empty, with no JWT keys: no authentication).
    public var tokens: [Secret] {
        get { credentials.tokens }
        set { credentials.tokens = newValue }
    }
    /// The largest request body accepted, in bytes.
    public var maxRequestBytes: Int
    /// The most names one `/assign` may ask for.
    public var maxAssignCount: Int
    /// Seconds readiness answers 503 before the listener closes, on shutdown.
    public var drainSeconds: Double
    /// The most one readiness check may take.
    public var readyTimeoutSeconds: Double
    /// How stale a (day, shard)'s container list may be before a miss asks again.
    public var containerRefreshSeconds: Double
    /// How often deletes are polled (`server.tombstone_poll_seconds`).
    public var tombstonePollSeconds: Double
    /// Whether `/files` follows the metadata store's events (default true): new containers and
    /// deletes reach the server as they commit, and the polls above become fallbacks.
    public var followEvents: Bool = true
    /// How the events are followed (`events.poll_seconds`, `events.gap_seconds`).
    public var events = EventFollower.Settings()
    /// While the events are followed, how stale a container list may be (`events.fallback_refresh_seconds`).
    public var fallbackRefreshSeconds: Double = 60
    /// Names whose location (container, entry, META) is remembered, so that a warm read is one ranged read.
    public var locatedCacheEntries: Int = 100_000
    /// Bodies up to this many bytes are read whole and checked against their META sha256 before
    /// the answer starts; larger ones are checked as they stream (`server.verify_max_bytes`).
    public var verifyMaxBytes: UInt64
    /// Bytes of checked bodies kept in memory for the next request of the same file
    /// (`server.body_cache_bytes`; 0: none).
    public var bodyCacheBytes: UInt64
    /// The most a client may take to send a request's head (`server.header_timeout`).
    public var headerTimeoutSeconds: Double
    /// How long a kept-alive connection may wait for its next request (`server.idle_timeout`).
    public var idleTimeoutSeconds: Double
    /// The most client connections open at once (`server.max_connections`), before the
    /// descriptor limit is applied (see ``ConnectionGuard/effectiveLimit(configured:)``).
    public var maxConnections: Int
    /// TLS 1.2–1.3 with the certificate and key of `server.tls` (and client certificates checked
    /// against its `client_ca`): nil serves plain HTTP.
    public var tls: TLSConfiguration?

    /// Settings from a config's `server:` section (and `marker.name_prefix` as the default prefix),
    /// with the credentials of ``ServerCredentials`` (`environment` for `DES_SERVER_TOKENS`).
    /// Relative `server.tls` and `server.jwt` paths are read from `baseDirectory` (the config
    /// file's directory).
    public init(
        config: DESConfig, environment: [String: String] = ProcessInfo.processInfo.environment,
        baseDirectory: String = FileManager.default.currentDirectoryPath
    ) throws {
        let s = config.server
        host = s.host
        port = s.port
        nodeID = s.nodeID
        defaultPrefix = config.marker.namePrefix
        credentials = try ServerCredentials(config: config, environment: environment, baseDirectory: baseDirectory)
        maxRequestBytes = s.maxRequestBytes
        maxAssignCount = s.maxAssignCount
        drainSeconds = s.drainSeconds
        readyTimeoutSeconds = s.readyTimeoutSeconds
        containerRefreshSeconds = s.containerRefreshSeconds
        tombstonePollSeconds = s.tombstonePollSeconds
        verifyMaxBytes = s.verifyMaxBytes
        bodyCacheBytes = s.bodyCacheBytes
        headerTimeoutSeconds = s.headerTimeoutSeconds
        idleTimeoutSeconds = s.idleTimeoutSeconds
        maxConnections = s.maxConnections
        followEvents = config.events.follow
        events = EventFollower.Settings(config.events)
        fallbackRefreshSeconds = config.events.fallbackRefreshSeconds
        tls = try s.tls.map { try Self.tlsConfiguration($0, baseDirectory: baseDirectory) }
    }

    /// The server's TLS configuration: the chain and key read now (a file that is missing, not
    /// PEM, or a key that is not the certificate's is a configuration error naming the key),
    /// TLS 1.2 and 1.3 only, and with a client CA, client certificates required and checked.
    static func tlsConfiguration(_ t: ServerTLSConfig, baseDirectory: String) throws -> TLSConfiguration {
        func path(_ p: String) -> String { p.hasPrefix("/") ? p : (baseDirectory as NSString).appendingPathComponent(p) }
        func read<T>(_ key: String, _ file: String, _ load: (String) throws -> T) throws -> T {
            guard FileManager.default.isReadableFile(atPath: path(file)) else {
                throw DESKitError(.configuration, "server.tls.\(key): cannot read '\(path(file))'")
            }
            do { return try load(path(file)) } catch {
                throw DESKitError(.configuration, "server.tls.\(key): '\(path(file))' is not a PEM file of what it should hold (\(error))")
            }
        }
        let chain = try read("certificate", t.certificate) { try NIOSSLCertificate.fromPEMFile($0) }
        guard !chain.isEmpty else { throw DESKitError(.configuration, "server.tls.certificate: '\(path(t.certificate))' holds no certificate") }
        let key = try read("key", t.key) { try NIOSSLPrivateKey(file: $0, format: .pem) }
        var c = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        c.minimumTLSVersion = .tlsv12
        c.maximumTLSVersion = .tlsv13
        if let ca = t.clientCA {
            let roots = try read("client_ca", ca) { try NIOSSLCertificate.fromPEMFile($0) }
            guard !roots.isEmpty else { throw DESKitError(.configuration, "server.tls.client_ca: '\(path(ca))' holds no certificate") }
            c.trustRoots = .certificates(roots)
            c.certificateVerification = .noHostnameVerification  // a client has no host name to check: its chain is
        }
        // The key must be the certificate's: checked now, not at the first handshake.
        do { _ = try NIOSSLContext(configuration: c) } catch {
            throw DESKitError(.configuration, "server.tls: the certificate and key do not make a TLS context (\(error)); is the key the certificate's?")
        }
        return c
    }
}

/// Who may call the API, as a config names it: the static tokens of `server.auth_tokens` and
/// `DES_SERVER_TOKENS`, and the JWT keys and rules of `server.jwt` (its key files read now).
/// What `des serve` puts in force at start and again on SIGHUP.
public struct ServerCredentials: Sendable {
    /// The static bearer tokens.
    public var tokens: [Secret]
    var jwt: JWTVerifier?

    /// How many keys verify JWTs.
    public var jwtKeyCount: Int { jwt?.keys.count ?? 0 }
    /// The JWKS keys skipped as of no use to DES (another kind, curve or algorithm; not for
    /// verifying), each with why: say so in the log.
    public var skippedKeys: [String] { jwt?.skipped ?? [] }
    /// Logs each of ``skippedKeys`` as a warning (at start and on every reload).
    public func logSkippedKeys(_ logger: Logger) {
        for why in skippedKeys { logger.warning("JWKS key skipped", metadata: ["why": "\(why)"]) }
    }
    /// Whether anything is checked (a server with neither tokens nor JWT keys is open).
    public var isConfigured: Bool { !tokens.isEmpty || jwt != nil }

    /// The credentials of `config`. `environment` adds the comma-separated tokens of
    /// `DES_SERVER_TOKENS`, held to the rule `server.auth_tokens` is: a token shorter than 16
    /// characters is refused, and so is a variable with something in it but no token (`","`,
    /// what `"${TOKEN},"` gives when TOKEN is empty), which would leave the server open while
    /// its operator believes it guarded. Relative `server.jwt` paths are read from `baseDirectory`.
    public init(
        config: DESConfig, environment: [String: String] = ProcessInfo.processInfo.environment,
        baseDirectory: String = FileManager.default.currentDirectoryPath
    ) throws {
        var tokens = config.server.authTokens
        if let extra = environment["DES_SERVER_TOKENS"], !extra.trimmingCharacters(in: .whitespaces).isEmpty {
            let given = extra.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !given.isEmpty else {
                throw DESKitError(.configuration, "DES_SERVER_TOKENS is set but holds no token (\(extra.count) characters of commas and spaces): the server would be open")
            }
            for token in given where token.count < 16 {
                throw DESKitError(
                    .configuration, "DES_SERVER_TOKENS: a token of \(token.count) characters is too easy to guess: use at least 16 (as server.auth_tokens)")
            }
            tokens += given.map { Secret($0) }
        }
        self.tokens = tokens
        jwt = try config.server.jwt.map { try JWTVerifier(config: $0, baseDirectory: baseDirectory) }
    }
}
