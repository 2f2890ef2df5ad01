import DESKit
import Foundation
import Synchronization

/// Registers S3 storage (`storage.type: s3`) and S3 bodies (`bodies.type: s3`), over libcurl.
///
/// Where and who: `endpoint`, `region`, `access_key`, `secret_key` from the section, else the
/// standard variables `AWS_ENDPOINT_URL`, `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`. Each section is read once into
/// ``S3StorageConfig`` or ``S3BodiesConfig``; the factories build the client from that value.
public enum S3Plugin {
    public static let type = "s3"

    /// Adds S3 storage and bodies to `registry`.
    public static func register(in registry: PluginRegistry, environment: [String: String] = ProcessInfo.processInfo.environment) {
        MetricHelp.describe("des_s3_requests_total", "S3 requests made, by operation and HTTP status")
        registry.registerStorage(type: type, configuration: S3StorageConfig.self) { config, _ in
            S3Storage(client: S3Client(settings: try config.settings(environment: environment)))
        }
        registry.registerBodyFetcher(type: type, configuration: S3BodiesConfig.self) { config, source, _ in
            S3BodyFetcher(config: config, environment: environment, what: "source '\(source.name)': bodies")
        }
    }
}

/// The keys S3 storage and S3 bodies share: where the service is, who signs, how requests go.
public struct S3ConnectionConfig: Sendable, Hashable {
    /// The bounds of `request_timeout`, in seconds.
    static let requestTimeoutRange: ClosedRange<Double> = 0.1...3600

    static let keys = [
        ConfigKey(
            "endpoint", .text,
            help: "The service's URL (http:// or https://); default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, DES_S3_ENDPOINT, else AWS's for the region.",
            example: "http://127.0.0.1:9000"),
        ConfigKey("region", .text, default: "us-east-1", help: "The signing region; default AWS_REGION or AWS_DEFAULT_REGION."),
        ConfigKey("access_key", .secret, help: "The access key id; default AWS_ACCESS_KEY_ID."),
        ConfigKey("secret_key", .secret, help: "The secret access key; default AWS_SECRET_ACCESS_KEY."),
        ConfigKey("path_style", .boolean, default: "true", help: "https://endpoint/bucket/key (true) or https://bucket.endpoint/key."),
        ConfigKey("concurrency", .integer(1...256), default: "16", help: "Requests in flight at once."),
        ConfigKey(
            "request_timeout", .seconds(requestTimeoutRange), default: "10",
            help: "Seconds a request may go without a byte moving, connecting included; past it the request fails and is not retried. Default DES_S3_REQUEST_TIMEOUT, else 10."),
    ]

    public var endpoint: String?
    public var region: String?
    public var accessKey: Secret?
    public var secretKey: Secret?
    public var pathStyle = true
    public var concurrency = 16
    /// Seconds a request may go without a byte moving; nil: `DES_S3_REQUEST_TIMEOUT`, else 10.
    public var requestTimeoutSeconds: Double?

    /// Nothing set: everything from the environment.
    public init() {}

    init(from section: ConfigSection, keys: [ConfigKey]) throws {
        func key(_ name: String) -> ConfigKey { keys.first { $0.name == name } ?? ConfigKey(name, .text, help: "") }
        endpoint = try section.text(key("endpoint"))
        if let endpoint {
            do { try Self.checkEndpoint(endpoint) } catch let problem as ConfigProblem { throw section.error("endpoint", problem.message) }
        }
        region = try section.text(key("region"))
        accessKey = try section.secret(key("access_key"))
        secretKey = try section.secret(key("secret_key"))
        if let v = try section.bool(key("path_style")) { pathStyle = v }
        if let v = try section.int(key("concurrency")) { concurrency = v }
        if let v = try section.seconds(key("request_timeout")) { requestTimeoutSeconds = v }
    }

    /// An endpoint must be `http://` or `https://` with a host and no credentials in it (they
    /// belong in access_key and secret_key). The message never repeats the URL: it may hold a secret.
    static func checkEndpoint(_ endpoint: String) throws {
        guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
            throw ConfigProblem("endpoint must start with http:// or https://")
        }
        guard let url = URLComponents(string: endpoint) else { throw ConfigProblem("endpoint is not a URL") }
        if url.user != nil || url.password != nil {
            throw ConfigProblem("endpoint must not hold credentials (user:password@): set access_key and secret_key")
        }
        guard let host = url.host, !host.isEmpty else { throw ConfigProblem("endpoint names no host") }
    }

    /// `DES_S3_REQUEST_TIMEOUT`, written as `request_timeout` is (a number of seconds within its
    /// bounds): what the archive commands' `s3://` URLs, which have no section, wait on a slow service.
    static func requestTimeout(_ value: String?, what: String) throws -> Double? {
        guard let value else { return nil }
        guard let seconds = Double(value.trimmingCharacters(in: .whitespaces)), requestTimeoutRange.contains(seconds) else {
            throw DESKitError(
                .configuration,
                "\(what): DES_S3_REQUEST_TIMEOUT must be seconds between \(requestTimeoutRange.lowerBound) and \(Int(requestTimeoutRange.upperBound)), not '\(value)'")
        }
        return seconds
    }

    /// Client settings for `bucket`, with what the section leaves unset taken from the environment.
    func settings(bucket: String, environment: [String: String], what: String) throws -> S3Settings {
        // A variable set to nothing (`AWS_ENDPOINT_URL=`, what an unset `${…}` in a manifest gives) is unset.
        let env = environment.filter { !$0.value.trimmingCharacters(in: .whitespaces).isEmpty }
        guard !bucket.isEmpty else { throw DESKitError(.configuration, "\(what): S3 needs a bucket") }
        let region = self.region ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"]
        guard let endpoint = endpoint ?? env["AWS_ENDPOINT_URL_S3"] ?? env["AWS_ENDPOINT_URL"] ?? env["DES_S3_ENDPOINT"]
            ?? region.map({ "https://s3.\($0).amazonaws.com" })
        else {
            throw DESKitError(.configuration, "\(what): no S3 endpoint (set endpoint, region, or AWS_ENDPOINT_URL)")
        }
        do { try Self.checkEndpoint(endpoint) } catch let problem as ConfigProblem {
            throw DESKitError(.configuration, "\(what): S3 \(problem.message) (from the section or AWS_ENDPOINT_URL)")
        }
        guard let access = accessKey?.value ?? env["AWS_ACCESS_KEY_ID"], let secret = secretKey?.value ?? env["AWS_SECRET_ACCESS_KEY"]
        else {
            throw DESKitError(.configuration, "\(what): no S3 credentials (access_key/secret_key, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
        }
        SecretRedaction.register(secret)  // from the environment too: never echoed into a log
        var s = S3Settings(
            endpoint: endpoint, region: region ?? "us-east-1", bucket: bucket,
            credentials: SigV4.Credentials(accessKey: access, secretKey: secret, sessionToken: env["AWS_SESSION_TOKEN"]))
        s.pathStyle = pathStyle
        s.concurrency = concurrency
        s.requestTimeoutSeconds = try requestTimeoutSeconds ?? Self.requestTimeout(env["DES_S3_REQUEST_TIMEOUT"], what: what) ?? 10
        return s
    }
}

/// `storage.type: s3`: containers are objects in a bucket.
public struct S3StorageConfig: PluginConfiguration {
    public static let keys =
        [ConfigKey("bucket", .text, help: "The bucket holding the containers (required).")] + S3ConnectionConfig.keys + [
            ConfigKey(
                "multipart_threshold", .bytes((5 << 20)...(5 << 40)), default: "64MiB",
                help: "Containers at least this large are uploaded in parts."),
            ConfigKey("part_size", .bytes((5 << 20)...(5 << 30)), default: "16MiB", help: "The size of each uploaded part."),
        ]
    /// The bucket.
    public var bucket: String
    /// Where the service is and who signs.
    public var connection: S3ConnectionConfig
    /// Objects at least this large are uploaded in parts.
    public var multipartThreshold: UInt64 = 64 << 20
    /// Bytes per part.
    public var partSize: UInt64 = 16 << 20

    public init(from section: ConfigSection) throws {
        guard let bucket = try section.text(Self.key("bucket")) else {
            throw section.error("bucket", "storage type 's3' needs 'bucket'")
        }
        self.bucket = bucket
        connection = try S3ConnectionConfig(from: section, keys: Self.keys)
        if let v = try section.bytes(Self.key("multipart_threshold")) { multipartThreshold = v }
        if let v = try section.bytes(Self.key("part_size")) { partSize = v }
    }

    /// Client settings, what the section leaves unset taken from `environment`.
    public func settings(environment: [String: String], what: String = "storage") throws -> S3Settings {
        var s = try connection.settings(bucket: bucket, environment: environment, what: what)
        s.multipartThreshold = multipartThreshold
        s.partSize = partSize
        return s
    }
}

/// `bodies.type: s3`: each row's body is an object, in the row's bucket (`columns.s3_bucket`) or the section's.
public struct S3BodiesConfig: PluginConfiguration {
    public static let keys =
        [ConfigKey("bucket", .text, help: "The bucket of rows that name none (columns.s3_bucket).")] + S3ConnectionConfig.keys
    /// The bucket of rows that name none.
    public var bucket: String?
    /// Where the service is and who signs.
    public var connection: S3ConnectionConfig
    /// A configuration in code.
    public init(bucket: String? = nil, connection: S3ConnectionConfig = S3ConnectionConfig()) {
        self.bucket = bucket
        self.connection = connection
    }
    public init(from section: ConfigSection) throws {
        bucket = try section.text(Self.key("bucket"))
        connection = try S3ConnectionConfig(from: section, keys: Self.keys)
        // A row must find its bucket somewhere, or every row would fail.
        if bucket == nil, let table = section.table, table.columns.s3Bucket == nil {
            throw section.error("bucket", "bodies type 's3' needs 'bucket', or columns.s3_bucket naming each row's bucket")
        }
    }
}

/// Bodies in S3: each row's bucket (the `s3_bucket` column, else the section's `bucket`) and key,
/// downloaded to a temporary file the packer deletes after use (and the next fetcher of a dead
/// process's downloads).
public final class S3BodyFetcher: BodyFetcher {
    let config: S3BodiesConfig
    private let environment: [String: String]
    private let what: String
    private let clients = Mutex<[String: S3Client]>([:])

    /// Where this process's downloads go: a folder of its own under `des-bodies`, so that those of
    /// a process that died (kill -9) can be told apart and removed.
    let downloads: String

    init(config: S3BodiesConfig, environment: [String: String], what: String) {
        self.config = config
        self.environment = environment
        self.what = what
        let root = NSTemporaryDirectory() + "des-bodies"
        self.downloads = root + "/" + ProcessIdentity.current.token
        try? FileManager.default.createDirectory(atPath: downloads, withIntermediateDirectories: true)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where ProcessIdentity.isProvablyDead(token: name) {
            try? FileManager.default.removeItem(atPath: root + "/" + name)
        }
    }

    /// Closes every bucket's client and removes this process's download folder.
    public func close() async {
        let all = clients.withLock { c -> [S3Client] in
            defer { c = [:] }
            return Array(c.values)
        }
        for c in all { await c.close() }
        try? FileManager.default.removeItem(atPath: downloads)
    }

    func client(bucket: String) throws -> S3Client {
        if let c = clients.withLock({ $0[bucket] }) { return c }
        let c = S3Client(settings: try config.connection.settings(bucket: bucket, environment: environment, what: what))
        return clients.withLock { all in
            if let existing = all[bucket] { return existing }
            all[bucket] = c
            return c
        }
    }

    public func fetch(_ location: BodyLocation) async throws -> FetchedBody {
        guard let bucket = location.bucket ?? config.bucket else {
            throw DESKitError(.invalidData, "\(what): row has no bucket (map columns.s3_bucket, or set bodies.bucket)")
        }
        guard !location.key.isEmpty else { throw DESKitError(.invalidData, "row has an empty body key") }
        let client = try client(bucket: bucket)
        let path = downloads + "/" + UUID().uuidString
        do {
            _ = try await client.send(.init(method: "GET", key: location.key, operation: "GetObject"), downloadTo: path)
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        return FetchedBody(path: path, isTemporary: true)
    }
}
