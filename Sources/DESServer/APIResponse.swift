import DESFormat
import DESKit
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
        json(#"{"error":{"code":""# + code + #"","message":"# + quoted(message) + "}}", status: status, headers: headers)
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

    /// `text` as a JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let s where s.value < 0x20:
                out += "\\u00" + String(s.value >> 4, radix: 16) + String(s.value & 0xF, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
