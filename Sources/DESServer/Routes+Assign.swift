import DESFormat
import DESNaming
import Foundation
import Hummingbird

extension DESHTTPServer {
    /// The longest prefix `/assign` accepts.
    static let maxPrefixLength = 32

    /// `POST /assign` `{"prefix": "IMG", "count": 3}`: one name as an object, or with
    /// `count` a list of them; every name unique across all requests of the process's node.
    func addAssignRoute(to group: RouterGroup<BasicRequestContext>) {
        group.post("/assign") { request, context -> Response in
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: settings.maxRequestBytes)
            } catch {
                return APIResponse.error(
                    .contentTooLarge, "too_large", "the request body is larger than \(settings.maxRequestBytes) bytes (server.max_request_bytes)")
            }
            let (prefix, count): (String, Int?)
            switch parseAssign(body) {
            case .success(let parsed): (prefix, count) = parsed
            case .failure(let problem): return APIResponse.error(.badRequest, problem.code, problem.message)
            }
            let names: [NameAssignment]
            do {
                names = try await assigner.assign(prefix: prefix, count: count ?? 1)
            } catch {
                return APIResponse.error(.badRequest, "bad_prefix", "\(error)")
            }
            metrics.assigned.increment(by: Int64(names.count))
            if count == nil { return APIResponse.json(names[0].json) }
            return APIResponse.json("[" + names.map(\.json).joined(separator: ",") + "]")
        }
    }

    struct Problem: Error {
        var code: String
        var message: String
    }

    /// The prefix and count of an `/assign` body (an empty body asks for one name of the default prefix).
    func parseAssign(_ body: ByteBuffer) -> Result<(String, Int?), Problem> {
        if body.readableBytes == 0 { return .success((settings.defaultPrefix, nil)) }
        let fields: AssignBody
        do {
            fields = try JSONDecoder().decode(AssignBody.self, from: Data(body.readableBytesView))
        } catch let problem as Problem {
            return .failure(problem)
        } catch {
            return .failure(Problem(code: "bad_body", message: "the body must be a JSON object like {\"prefix\": \"IMG\", \"count\": 10}"))
        }
        // Two values of one key: which one the client meant is not ours to guess (a proxy that
        // checked the first and a server that used the other would disagree).
        if let name = DESMetadata.firstRepeatedKey(inJSON: Array(body.readableBytesView)) {
            // Only prefix and count get this far: any other key was refused by name above.
            return .failure(Problem(code: "bad_body", message: "the body names '\(name)' twice"))
        }
        var prefix = settings.defaultPrefix
        if let text = fields.prefix {
            guard !text.isEmpty, text.utf8.count <= Self.maxPrefixLength, text.utf8.allSatisfy({ $0 < 0x80 && isalnum(Int32($0)) != 0 })
            else {
                return .failure(
                    Problem(code: "bad_prefix", message: "prefix must be 1 to \(Self.maxPrefixLength) ASCII letters and digits (like IMG)"))
            }
            prefix = text
        }
        if let n = fields.count, !(1...settings.maxAssignCount).contains(n) {
            return .failure(Problem(code: "bad_count", message: "count must be 1 to \(settings.maxAssignCount) (server.max_assign_count)"))
        }
        return .success((prefix, fields.count))
    }
}

/// The body of `POST /assign`: only `prefix` and `count`; any other key is refused by name.
struct AssignBody: Decodable {
    var prefix: String?
    var count: Int?

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        if let unknown = c.allKeys.map(\.stringValue).sorted().first(where: { $0 != "prefix" && $0 != "count" }) {
            throw DESHTTPServer.Problem(code: "bad_body", message: "unknown key '\(unknown)': the keys are prefix and count")
        }
        do {
            prefix = try c.decodeIfPresent(String.self, forKey: Key(stringValue: "prefix"))
        } catch {
            throw DESHTTPServer.Problem(code: "bad_prefix", message: "prefix must be a string")
        }
        do {
            count = try c.decodeIfPresent(Int.self, forKey: Key(stringValue: "count"))
        } catch {
            throw DESHTTPServer.Problem(code: "bad_count", message: "count must be a whole number")
        }
    }
}
