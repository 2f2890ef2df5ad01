import DESKit
import Foundation
import Synchronization

/// Who may call `/assign` and `/files`: the static bearer tokens (`server.auth_tokens`,
/// `DES_SERVER_TOKENS`), which may do everything, and the JWTs of `server.jwt`, which may read,
/// and write when they carry the write scope. Both are replaced whole on reload (SIGHUP), so a
/// request sees either the old credentials or the new, never a mix.
final class Authenticator: Sendable {
    /// The credentials in force.
    struct Credentials: Sendable {
        var tokens: [[UInt8]]
        var jwt: JWTVerifier?
        /// Tokens these credentials verified, by their exact text: a token seen again is only
        /// checked against its times (a signature costs 80–110 µs of CPU; a lookup, one hash).
        /// New with every reload, so a key taken out takes its tokens with it.
        let verified = BoundedCache<String, VerifiedToken>(capacity: Authenticator.verifiedCapacity)

        /// Whether anything is checked at all (a server with neither is open and refuses deletes).
        var isConfigured: Bool { !tokens.isEmpty || jwt != nil }

        init(tokens: [Secret], jwt: JWTVerifier?) {
            self.tokens = tokens.map { Array($0.value.utf8) }
            self.jwt = jwt
        }

        /// The credentials a config names.
        init(_ credentials: ServerCredentials) { self.init(tokens: credentials.tokens, jwt: credentials.jwt) }
    }

    /// What a request's `Authorization` header gets it.
    enum Outcome: Equatable {
        /// No credentials are configured: the API is open.
        case open
        /// A static token, or a verified JWT; whether it may write.
        case granted(canWrite: Bool)
        /// No `Authorization` header.
        case missing
        /// A header that is not `Bearer <token>`.
        case malformed
        /// A token that is not accepted; the reason is for the log only.
        case refused(reason: String)
    }

    private let current: Mutex<Credentials>
    /// Signatures verified so far (a remembered token is not verified again).
    let verifications = Atomic<Int>(0)

    /// How many verified tokens are remembered.
    static let verifiedCapacity = 4_096
    /// Tokens longer than this are verified every time, never remembered (the cache stays under 16 MiB).
    static let rememberedTokenBytes = 4_096

    init(_ credentials: Credentials) {
        current = Mutex(credentials)
    }

    /// Whether any credentials are configured now.
    var isConfigured: Bool { current.withLock { $0.isConfigured } }

    /// The scope a JWT needs to write.
    var writeScope: String { current.withLock { $0.jwt?.writeScope ?? "des:write" } }

    /// Puts `credentials` in force for the requests that start from now on.
    func replace(with credentials: Credentials) {
        current.withLock { $0 = credentials }
    }

    /// How the request with this `Authorization` header fares at `now`.
    func authenticate(_ authorization: String?, now: Date = Date()) -> Outcome {
        let credentials = current.withLock { $0 }
        guard credentials.isConfigured else { return .open }
        guard let header = authorization else { return .missing }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else { return .malformed }
        let given = parts[1]
        if !credentials.tokens.isEmpty {
            let bytes = Array(given.utf8)
            var accepted = false
            for token in credentials.tokens { accepted = constantTimeEqual(token, bytes) || accepted }  // every token compared: no early exit
            if accepted { return .granted(canWrite: true) }
        }
        if let jwt = credentials.jwt, JWTVerifier.looksLikeJWT(given) {
            let text = String(given)
            if let seen = credentials.verified[text], seen.isCurrent(at: now.timeIntervalSince1970, leeway: jwt.leeway) {
                return .granted(canWrite: seen.canWrite)
            }
            do {
                verifications.add(1, ordering: .relaxed)
                let verified = try jwt.verify(given, now: now)
                if text.utf8.count <= Self.rememberedTokenBytes { credentials.verified.set(text, verified) }
                return .granted(canWrite: verified.canWrite)
            } catch {
                return .refused(reason: error.description)
            }
        }
        return .refused(reason: credentials.jwt == nil ? "not one of the static tokens" : "neither a static token nor a JWT")
    }
}

/// Whether two byte strings are equal, in time that depends on their lengths only.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var diff = UInt8(a.count == b.count ? 0 : 1)
    let n = max(a.count, b.count)
    for i in 0..<n {
        let x = i < a.count ? a[i] : 0
        let y = i < b.count ? b[i] : 0
        diff |= x ^ y
    }
    return diff == 0
}
