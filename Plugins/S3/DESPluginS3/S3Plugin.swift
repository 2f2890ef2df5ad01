import DESKit
import Foundation
import Synchronization

/// Registers S3 storage (`storage.type: s3`) and S3 bodies (`bodies.type: s3`), over libcurl.
///
/// Where and who: `endpoint`, `region`, `access_key`, `secret_key` from the section, else the
/// standard variables `AWS_ENDPOINT_URL`, `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`. Options of its own: `path_style` (default true),
/// `multipart_threshold` and `part_size` (bytes), `concurrency` (requests in flight),
/// `request_timeout` (seconds a request may go without a byte moving, connecting included:
/// past it the request fails as unavailable and is not retried; default 10).
public enum S3Plugin {
    public static let type = "s3"
    static let storageKeys = ["type", "prefix", "bucket", "endpoint", "region", "access_key", "secret_key", "path_style",
                              "multipart_threshold", "part_size", "concurrency", "request_timeout"]
    static let bodiesKeys = ["type", "bucket", "endpoint", "region", "access_key", "secret_key", "path_style", "concurrency",
                             "request_timeout"]
    /// The bounds of `request_timeout`, in seconds.
    static let requestTimeoutRange: ClosedRange<Double> = 0.1...3600

    /// Adds S3 storage and bodies to `registry`.
    public static func register(in registry: PluginRegistry, environment: [String: String] = ProcessInfo.processInfo.environment) {
        registry.registerStorage(type: type, check: { try check($0, keys: storageKeys, what: "storage type 's3'", needsBucket: true) }) {
            storage, _ in
            var values = storage.options
            values["bucket"] = storage.bucket
            values["endpoint"] = storage.endpoint
            values["region"] = storage.region
            values["access_key"] = storage.accessKey
            values["secret_key"] = storage.secretKey?.value
            return S3Storage(client: S3Client(settings: try settings(values, environment: environment, what: "storage")))
        }
        registry.registerBodyFetcher(type: type, check: { try check($0, keys: bodiesKeys, what: "bodies type 's3'", needsBucket: false) }) {
            source, _ in
            S3BodyFetcher(values: source.bodies.options, environment: environment, what: "source '\(source.name)': bodies")
        }
    }

    /// Settings from a section's values and the environment.
    public static func settings(_ v: [String: String], environment env: [String: String], what: String) throws -> S3Settings {
        guard let bucket = v["bucket"], !bucket.isEmpty else { throw DESKitError(.configuration, "\(what): S3 needs a bucket") }
        guard let endpoint = v["endpoint"] ?? env["AWS_ENDPOINT_URL_S3"] ?? env["AWS_ENDPOINT_URL"] ?? env["DES_S3_ENDPOINT"]
            ?? (v["region"] ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"]).map({ "https://s3.\($0).amazonaws.com" })
        else {
            throw DESKitError(.configuration, "\(what): no S3 endpoint (set endpoint, region, or AWS_ENDPOINT_URL)")
        }
        let region = v["region"] ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1"
        guard let access = v["access_key"] ?? env["AWS_ACCESS_KEY_ID"], let secret = v["secret_key"] ?? env["AWS_SECRET_ACCESS_KEY"] else {
            throw DESKitError(.configuration, "\(what): no S3 credentials (access_key/secret_key, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
        }
        var s = S3Settings(
            endpoint: endpoint, region: region, bucket: bucket,
            credentials: SigV4.Credentials(accessKey: access, secretKey: secret, sessionToken: env["AWS_SESSION_TOKEN"]))
        if let p = v["path_style"] { s.pathStyle = p == "true" }
        if let t = v["multipart_threshold"].flatMap(UInt64.init) { s.multipartThreshold = max(5 << 20, t) }
        if let p = v["part_size"].flatMap(UInt64.init) { s.partSize = max(5 << 20, p) }
        if let c = v["concurrency"].flatMap(Int.init) { s.concurrency = max(1, min(c, 256)) }
        if let t = v["request_timeout"].flatMap(Double.init) {
            s.requestTimeoutSeconds = min(max(t, requestTimeoutRange.lowerBound), requestTimeoutRange.upperBound)
        }
        return s
    }

    static func check(_ section: ConfigSection, keys: [String], what: String, needsBucket: Bool) throws {
        try section.checkKeys(keys, plugin: what)
        if needsBucket, try section.string("bucket") == nil { throw section.error("bucket", "\(what) needs 'bucket'") }
        _ = try section.bool("path_style")
        _ = try section.byteCount("multipart_threshold", in: (5 << 20)...(5 << 40))
        _ = try section.byteCount("part_size", in: (5 << 20)...(5 << 30))
        _ = try section.int("concurrency", in: 1...256)
        _ = try section.double("request_timeout", in: requestTimeoutRange)
        if let endpoint = try section.string("endpoint"), !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
            throw section.error("endpoint", "\(what): endpoint must start with http:// or https://, got '\(endpoint)'")
        }
    }
}

/// Bodies in S3: each row's bucket (the `s3_bucket` column, else the section's `bucket`) and key,
/// downloaded to a temporary file the packer deletes after use (and the next fetcher of a dead
/// process's downloads).
public final class S3BodyFetcher: BodyFetcher {
    private let values: [String: String]
    private let environment: [String: String]
    private let what: String
    private let clients = Mutex<[String: S3Client]>([:])

    /// Where this process's downloads go: a folder of its own under `des-bodies`, so that those of
    /// a process that died (kill -9) can be told apart and removed.
    let downloads: String

    init(values: [String: String], environment: [String: String], what: String) {
        self.values = values
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
        var v = values
        v["bucket"] = bucket
        let c = S3Client(settings: try S3Plugin.settings(v, environment: environment, what: what))
        return clients.withLock { all in
            if let existing = all[bucket] { return existing }
            all[bucket] = c
            return c
        }
    }

    public func fetch(_ location: BodyLocation) async throws -> FetchedBody {
        guard let bucket = location.bucket ?? values["bucket"] else {
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
