import DESKit
import Foundation
import Metrics
import Synchronization

/// An error S3 answered with (a status and its code), or a request that could not be made.
public struct S3Error: Error, Sendable, CustomStringConvertible {
    /// The HTTP status (0: no answer).
    public var status: Int
    /// S3's error code (`NoSuchKey`, `SignatureDoesNotMatch`, `InvalidAccessKeyId`, …).
    public var code: String
    public var message: String
    /// The operation and key, for context.
    public var operation: String

    public var isAuthentication: Bool {
        ["SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken", "ExpiredToken"].contains(code) || status == 403
    }

    public var description: String {
        if isAuthentication {
            return "S3 refused \(operation): authentication failed (\(code)): \(message) — check the access key and secret"
        }
        return "S3 \(operation) failed: \(status == 0 ? "" : "HTTP \(status) ")\(code)\(message.isEmpty ? "" : ": \(message)")"
    }
}

/// What an S3 client needs: where, which bucket, who.
public struct S3Settings: Sendable {
    /// `http://127.0.0.1:9000` or `https://s3.eu-west-1.amazonaws.com` (no path).
    public var endpoint: String
    public var region: String
    public var bucket: String
    public var credentials: SigV4.Credentials
    /// `https://endpoint/bucket/key` (true) or `https://bucket.endpoint/key`.
    public var pathStyle: Bool = true
    /// Requests in flight at once (each on its own connection).
    public var concurrency: Int = 16
    /// Retries of a request that failed with 5xx, 429 or a timeout.
    public var maxRetries: Int = 4
    /// Objects at least this large are uploaded in parts.
    public var multipartThreshold: UInt64 = 64 << 20
    public var partSize: UInt64 = 16 << 20
    /// Parts uploaded at once.
    public var partConcurrency: Int = 4
    /// How long a request may go without a byte moving (connecting included) before it is
    /// abandoned; a timed-out request is not retried, so a hung server fails a read within this.
    public var requestTimeoutSeconds: Double = 10

    /// Creates settings.
    public init(endpoint: String, region: String, bucket: String, credentials: SigV4.Credentials) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.credentials = credentials
    }
}

/// Signs, sends and retries S3 requests; counts every request by operation and status
/// (`des_s3_requests_total{operation,status}`, and ``requestCounts`` for tests and `des stat`).
public final class S3Client: Sendable {
    public let settings: S3Settings
    private let signer: SigV4
    private let transport: CurlTransport
    private let counts = Mutex<[String: Int]>([:])

    /// Creates a client.
    public init(settings: S3Settings) {
        self.settings = settings
        self.signer = SigV4(credentials: settings.credentials, region: settings.region)
        self.transport = CurlTransport(
            concurrency: settings.concurrency, timeouts: CurlTransport.Timeouts(stallSeconds: settings.requestTimeoutSeconds))
    }

    /// Requests sent so far, by operation (`GET`, `HEAD`, `PUT`, …), retries included.
    public var requestCounts: [String: Int] { counts.withLock { $0 } }

    /// Forgets the counts (tests measure one read at a time).
    public func resetCounts() { counts.withLock { $0 = [:] } }

    /// Closes every connection.
    public func close() async { await transport.close() }

    struct Request {
        var method: String
        var key: String
        var query: [(String, String)] = []
        var headers: [String: String] = [:]
        var body: HTTPRequest.Body = .none
        /// The SHA-256 of the body, hex (nil: UNSIGNED-PAYLOAD, for file uploads).
        var payloadHash: String? = SigV4.emptyPayloadHash
        /// A name for metrics and errors (`GetObject`).
        var operation: String
    }

    /// The URL and `Host` of a key.
    func location(_ key: String) -> (url: String, host: String, path: String) {
        let endpoint = settings.endpoint.hasSuffix("/") ? String(settings.endpoint.dropLast()) : settings.endpoint
        let scheme = endpoint.hasPrefix("https://") ? "https://" : "http://"
        let hostPart = endpoint.replacingOccurrences(of: scheme, with: "")
        let encodedKey = key.isEmpty ? "" : "/" + SigV4.encode(key, slash: false)
        if settings.pathStyle {
            let path = "/" + settings.bucket + encodedKey
            return (scheme + hostPart + path, hostPart, "/" + settings.bucket + (key.isEmpty ? "" : "/" + key))
        }
        let host = settings.bucket + "." + hostPart
        return (scheme + host + (encodedKey.isEmpty ? "/" : encodedKey), host, key.isEmpty ? "/" : "/" + key)
    }

    /// Sends a request, retrying 5xx, 429 and transport failures with backoff and jitter (never other 4xx).
    func send(_ r: Request, downloadTo: String? = nil, accept: Set<Int> = [200, 204, 206]) async throws -> HTTPResponse {
        let (url, host, path) = location(r.key)
        var query = r.query.map { "\(SigV4.encode($0.0, slash: true))=\(SigV4.encode($0.1, slash: true))" }.joined(separator: "&")
        if !query.isEmpty { query = "?" + query }
        var attempt = 0
        while true {
            var headers = r.headers
            headers["host"] = host
            let signed = signer.sign(
                method: r.method, path: path, query: r.query, headers: headers, payloadHash: r.payloadHash ?? "UNSIGNED-PAYLOAD")
            headers.merge(signed) { $1 }
            headers["host"] = nil  // libcurl writes Host itself, from the URL
            let request = HTTPRequest(method: r.method, url: url + query, headers: headers, body: r.body)
            do {
                let response = try await transport.send(request, downloadTo: downloadTo)
                count(r.method, status: response.status)
                if accept.contains(response.status) { return response }
                let retryable = response.status >= 500 || response.status == 429
                if retryable, attempt < settings.maxRetries {
                    attempt += 1
                    try await Task.sleep(nanoseconds: Self.backoff(attempt))
                    continue
                }
                throw Self.error(response, operation: "\(r.operation) \(r.key.isEmpty ? settings.bucket : r.key)")
            } catch let error as TransportError {
                count(r.method, status: 0)
                if error.isTimeout {
                    throw DESKitError(
                        .unavailable,
                        "S3 at \(settings.endpoint) did not answer \(r.operation) within \(settings.requestTimeoutSeconds) s (request_timeout)",
                        transient: true)
                }
                if attempt < settings.maxRetries {
                    attempt += 1
                    try await Task.sleep(nanoseconds: Self.backoff(attempt))
                    continue
                }
                throw DESKitError(
                    .unavailable, "S3 at \(settings.endpoint) could not be reached for \(r.operation) (\(error.message))", transient: true)
            }
        }
    }

    private func count(_ method: String, status: Int) {
        counts.withLock { $0[method, default: 0] += 1 }
        Counter(label: "des_s3_requests_total", dimensions: [("operation", method), ("status", String(status))]).increment()
    }

    /// Full jitter over 0.1 s × 2^(attempt-1), at most 5 s.
    static func backoff(_ attempt: Int) -> UInt64 {
        let step = min(5.0, 0.1 * pow(2, Double(attempt - 1)))
        return UInt64(Double.random(in: (step / 2)...step) * 1e9)
    }

    static func error(_ r: HTTPResponse, operation: String) -> Error {
        let xml = String(decoding: r.body, as: UTF8.self)
        let code = XML.first("Code", in: xml) ?? (r.status == 404 ? "NotFound" : r.status == 412 ? "PreconditionFailed" : "HTTP\(r.status)")
        let message = XML.first("Message", in: xml) ?? ""
        let s3 = S3Error(status: r.status, code: code, message: message, operation: operation)
        if r.status == 404 { return DESKitError(.notFound, s3.description) }
        if r.status == 412 { return s3 }
        if s3.isAuthentication { return DESKitError(.storage, s3.description) }
        return DESKitError(.storage, s3.description, transient: r.status >= 500 || r.status == 429)
    }
}

/// Just enough XML for S3's answers: the text of elements by name.
enum XML {
    static func all(_ tag: String, in xml: String) -> [String] {
        var out: [String] = []
        var rest = xml[...]
        while let open = rest.range(of: "<\(tag)>") {
            guard let close = rest.range(of: "</\(tag)>", range: open.upperBound..<rest.endIndex) else { break }
            out.append(unescape(String(rest[open.upperBound..<close.lowerBound])))
            rest = rest[close.upperBound...]
        }
        return out
    }

    static func first(_ tag: String, in xml: String) -> String? { all(tag, in: xml).first }

    static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&#13;", with: "\r").replacingOccurrences(of: "&amp;", with: "&")
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
