import DESFormat
import DESKit
import Foundation
import Hummingbird

/// JSON bodies and the typed errors of the API: `{"error": {"code": "...", "message": "..."}}`.
enum APIResponse {
    /// A JSON response.
    static func json(_ text: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// A JSON error.
    static func error(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) -> Response {
        let body = ["error": ["code": code, "message": message]]
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return json(String(decoding: data, as: UTF8.self), status: status, headers: headers)
    }

    /// The response for a failure while serving: storage or metadata down is 503, a corrupt
    /// container 500 naming it; never a stack of internals.
    static func failure(_ error: any Error) -> Response {
        if let e = error as? DESKitError {
            switch e.code {
            case .unavailable, .storage, .database:
                return Self.error(.serviceUnavailable, "unavailable", e.message, headers: [.retryAfter: "1"])
            case .changed:
                return Self.error(.serviceUnavailable, "changed", e.message, headers: [.retryAfter: "1"])
            case .notFound:
                return Self.error(.notFound, "not_found", e.message)
            default:
                return Self.error(.internalServerError, e.code.description, e.message)
            }
        }
        if let e = error as? DESFormatError {
            return Self.error(.internalServerError, "corrupt_container", e.description)
        }
        if let e = error as? any HTTPResponseError {
            return Self.error(e.status, "http", e.status.reasonPhrase)
        }
        return Self.error(.internalServerError, "internal", "\(error)")
    }
}
