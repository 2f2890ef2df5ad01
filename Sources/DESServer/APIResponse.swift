import DESFormat
import DESKit
import Foundation
import Hummingbird
import Logging

/// JSON bodies and the typed errors of the API:
/// `{"error": {"code": "...", "message": "...", "request_id": "..."}}`.
///
/// An error's message is written for clients: it never carries SQL, a database's words, a
/// path or key of storage, or the description of an unknown error. Those go to the log, with
/// the request's id, which the error body and the `X-Request-Id` header carry.
enum APIResponse {
    /// The id of the request being answered (set by ``RequestIDMiddleware`` for its handler).
    @TaskLocal static var requestID: String?

    /// A JSON response.
    static func json(_ text: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// A JSON object.
    static func json(_ status: HTTPResponse.Status, _ object: [String: Any], headers: HTTPFields = [:]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return json(String(decoding: data, as: UTF8.self), status: status, headers: headers)
    }

    /// A JSON error (with the request's id, when there is one).
    static func error(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) -> Response {
        var fields = ["code": code, "message": message]
        if let id = requestID { fields["request_id"] = id }
        // An error is about this moment (a name not yet packed, a server not ready): no cache
        // keeps it, unless the caller said otherwise.
        var headers = headers
        if headers[.cacheControl] == nil { headers[.cacheControl] = "no-store" }
        // The message may quote the request (a path, a method): never let a browser sniff it as HTML.
        headers[.xContentTypeOptions] = "nosniff"
        return json(status, ["error": fields], headers: headers)
    }

    /// What a failure while serving tells the client; the error itself goes to the log.
    struct Verdict: Equatable {
        var status: HTTPResponse.Status
        var code: String
        var message: String
        /// Whether the answer carries `Retry-After: 1`.
        var retry: Bool = false
    }

    /// The verdict on an error: the metadata store (a ``DESKitError`` of the database or a
    /// driver's `SQLError`) or storage failing is 503 `unavailable`, a
    /// container that changed while read 503 `changed`, a recorded container (or external body)
    /// that storage does not have 503 `container_missing`, a body that does not hash to its META
    /// sha256 502 `checksum_mismatch`, a container failing validation 500 `corrupt_container`,
    /// anything else 500 `internal`. No message names a key, a path, SQL or a database's words.
    static func verdict(for error: any Error) -> Verdict {
        if let e = error as? DESKitError {
            switch e.code {
            case .unavailable, .storage, .database:
                return Verdict(
                    status: .serviceUnavailable, code: "unavailable",
                    message: "a service this server depends on (the metadata store or the storage) is unavailable; try again", retry: true)
            case .changed:
                return Verdict(status: .serviceUnavailable, code: "changed", message: "the container changed while it was read; try again", retry: true)
            case .notFound:
                // The metadata store records a container (or an external body) that storage does not
                // have: lost, or replaced by a compaction between the lookup and the read. Not a
                // 404, which a client or a cache would take as "no such file".
                return Verdict(
                    status: .serviceUnavailable, code: "container_missing",
                    message: "the container recorded as holding this file is not in storage; try again (des check tells an operator whether it is lost)",
                    retry: true)
            default:
                return internalVerdict
            }
        }
        if error is SQLError {  // the metadata store's database: its words and statement stay in the log
            return Verdict(
                status: .serviceUnavailable, code: "unavailable",
                message: "a service this server depends on (the metadata store or the storage) is unavailable; try again", retry: true)
        }
        if let e = error as? DESFormatError {
            switch e.code {
            case .checksumMismatch:
                return Verdict(
                    status: .badGateway, code: "checksum_mismatch",
                    message: "the bytes read from storage do not match the sha256 the container records for this file")
            case .io:
                return Verdict(
                    status: .serviceUnavailable, code: "unavailable", message: "the storage could not be read; try again", retry: true)
            default:
                return Verdict(
                    status: .internalServerError, code: "corrupt_container", message: "the container holding this file failed validation")
            }
        }
        return internalVerdict
    }

    private static let internalVerdict = Verdict(
        status: .internalServerError, code: "internal", message: "the server failed to answer; the log has the details under this request id")

    /// The response for a failure while serving `what` (`GET /files/…`): the error, whole, goes
    /// to `logger` (which carries the request id); the client gets ``verdict(for:)``.
    static func failure(_ error: any Error, while what: String, logger: Logger) -> Response {
        let v = verdict(for: error)
        logger.warning(
            "\(what) failed", metadata: ["status": "\(v.status.code)", "code": "\(v.code)", "error": "\(error)"])
        return Self.error(v.status, v.code, v.message, headers: v.retry ? [.retryAfter: "1"] : [:])
    }
}
