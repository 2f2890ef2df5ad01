import DESFormat
import DESKit
import Foundation

/// Why a token was refused. Logged by the server (never the token), never told to the client,
/// which gets a bare 401.
struct TokenRejection: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// What a verified token allows, and until when.
struct VerifiedToken: Sendable, Equatable {
    /// Whether its scopes hold the write scope.
    var canWrite: Bool
    /// Its `exp` and `nbf` (seconds since 1970).
    var expires: Double
    var notBefore: Double?

    /// Whether the token is within its times at `t`, give or take `leeway`.
    func isCurrent(at t: Double, leeway: Double) -> Bool {
        t < expires + leeway && (notBefore.map { t >= $0 - leeway } ?? true)
    }
}

/// Verifies JSON Web Tokens (RFC 7519) signed with JWS compact serialization (RFC 7515) against
/// the keys of `server.jwt`: the signature, `exp` (required) and `nbf` give or take the leeway,
/// `aud`, and `iss` when one is configured.
struct JWTVerifier: Sendable {
    let keys: [VerificationKey]
    let audience: String
    let issuer: String?
    let writeScope: String
    let leeway: Double
    let algorithms: Set<JWSAlgorithm>

    /// The JWKS keys skipped (kinds, curves or algorithms DES does not verify, or keys not for
    /// verifying), each with why: logged when the keys are read.
    let skipped: [String]

    /// The longest token looked at.
    static let maximumTokenBytes = 16 << 10
    /// The largest JWKS or PEM file read.
    static let maximumKeyFileBytes: UInt64 = 1 << 20

    /// The keys of `config`, read now: its JWKS file and PEM files (relative paths from
    /// `baseDirectory`). A file that cannot be read or a key that cannot be used is a
    /// configuration error naming it.
    init(config: ServerJWTConfig, baseDirectory: String) throws {
        func path(_ p: String) -> String { p.hasPrefix("/") ? p : (baseDirectory as NSString).appendingPathComponent(p) }
        func read(_ key: String, _ file: String) throws -> Data {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path(file))
            guard attributes?[.type] as? FileAttributeType == .typeRegular else {
                throw DESKitError(.configuration, "server.jwt.\(key): cannot read '\(path(file))' (no such regular file)")
            }
            if let size = attributes?[.size] as? UInt64, size > Self.maximumKeyFileBytes {
                throw DESKitError(
                    .configuration, "server.jwt.\(key): '\(path(file))' is \(size) bytes; a key file is at most \(Self.maximumKeyFileBytes)")
            }
            guard let data = FileManager.default.contents(atPath: path(file)), data.count <= Self.maximumKeyFileBytes else {
                throw DESKitError(.configuration, "server.jwt.\(key): cannot read '\(path(file))'")
            }
            return data
        }
        var keys: [VerificationKey] = []
        var skipped: [String] = []
        do {
            if let file = config.jwksFile {
                let place = "server.jwt.jwks_file '\(path(file))'"
                let data = try read("jwks_file", file)
                guard let set = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any], let list = set["keys"] as? [Any]
                else { throw DESKitError(.configuration, "\(place): not a JWKS (a JSON object with a 'keys' list)") }
                for (i, entry) in list.enumerated() {
                    guard let jwk = entry as? [String: Any] else {
                        throw DESKitError(.configuration, "\(place): keys[\(i)] is not a JSON object")
                    }
                    switch try VerificationKey.jwk(jwk, where: "\(place): keys[\(i)]") {
                    case .key(let key): keys.append(key)
                    case .skipped(let why): skipped.append(why)
                    }
                }
            }
            for file in config.publicKeys {
                let text = String(decoding: try read("public_keys", file), as: UTF8.self)
                keys += try VerificationKey.pemKeys(text, where: "server.jwt.public_keys '\(path(file))'")
            }
        } catch let error as JSONWebKeyError {
            throw DESKitError(.configuration, error.description)
        }
        let algorithms = Set(config.algorithms.compactMap(JWSAlgorithm.init(rawValue:)))
        guard keys.contains(where: { key in algorithms.contains { key.allows($0) } }) else {
            throw DESKitError(
                .configuration,
                "server.jwt: none of its \(keys.count) keys verifies any of the algorithms \(config.algorithms.joined(separator: ", ")): no token could be accepted"
                    + (skipped.isEmpty ? "" : " (skipped: \(skipped.joined(separator: "; ")))"))
        }
        self.keys = keys
        self.skipped = skipped
        audience = config.audience
        issuer = config.issuer
        writeScope = config.writeScope
        leeway = config.leewaySeconds
        self.algorithms = algorithms
    }

    /// Whether `token` has the shape of a JWT (three base64url parts), so that it is verified
    /// as one rather than compared with the static tokens.
    static func looksLikeJWT(_ token: Substring) -> Bool {
        token.utf8.lazy.filter { $0 == UInt8(ascii: ".") }.count == 2
    }

    /// The token's claims, verified at `now`; a ``TokenRejection`` says why not.
    func verify(_ token: Substring, now: Date = Date()) throws(TokenRejection) -> VerifiedToken {
        guard token.utf8.count <= Self.maximumTokenBytes else { throw TokenRejection("longer than \(Self.maximumTokenBytes) bytes") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw TokenRejection("not three dot-separated parts") }
        guard let headerBytes = Base64URL.decode(parts[0]), let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes)) else {
            throw TokenRejection("the header is not base64url JSON of a JWS header")
        }
        if let name = DESMetadata.firstRepeatedKey(inJSON: headerBytes) { throw TokenRejection("the header names '\(Self.shown(name))' twice") }
        guard let algorithm = JWSAlgorithm(rawValue: header.alg), algorithms.contains(algorithm) else {
            throw TokenRejection("alg '\(Self.shown(header.alg))' is not accepted")
        }
        if header.crit != nil { throw TokenRejection("the header has critical extensions (crit)") }
        if let typ = header.typ, !["jwt", "at+jwt", "application/at+jwt"].contains(typ.lowercased()) {
            throw TokenRejection("typ '\(Self.shown(typ))' is not a JWT")
        }
        guard let signature = Base64URL.decode(parts[2]) else { throw TokenRejection("the signature is not base64url") }
        // A kid picks the JWKS keys of that id; a kid none has falls to the keys without an id
        // (PEM keys), and a token without a kid is tried against every key.
        var candidates = keys
        if let kid = header.kid {
            candidates = keys.filter { $0.id == kid }
            if candidates.isEmpty { candidates = keys.filter { $0.id == nil } }
            guard !candidates.isEmpty else { throw TokenRejection("no key has kid '\(Self.shown(kid))'") }
        }
        let signed = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard candidates.contains(where: { $0.verify(algorithm, data: signed, signature: signature) }) else {
            throw TokenRejection("the signature does not verify (\(algorithm.rawValue))")
        }
        // Only now, signed, is the payload read.
        guard let payloadBytes = Base64URL.decode(parts[1]) else { throw TokenRejection("the payload is not base64url") }
        let claims: Claims
        do { claims = try JSONDecoder().decode(Claims.self, from: Data(payloadBytes)) } catch {
            throw TokenRejection("the payload is not JSON claims of the expected types")
        }
        // Two values of one claim (two exps, two auds): which one the issuer meant is not ours to guess.
        if let name = DESMetadata.firstRepeatedKey(inJSON: payloadBytes) { throw TokenRejection("the claims name '\(Self.shown(name))' twice") }
        let t = now.timeIntervalSince1970
        guard let exp = claims.exp, exp.isFinite else { throw TokenRejection("the token has no numeric exp") }
        guard t < exp + leeway else { throw TokenRejection("expired \(Self.seconds(t - exp)) s ago") }
        if let nbf = claims.nbf {
            guard nbf.isFinite, t >= nbf - leeway else { throw TokenRejection("not valid yet (nbf)") }
        }
        guard claims.audiences.contains(audience) else { throw TokenRejection("aud does not name '\(audience)'") }
        if let issuer, claims.iss != issuer { throw TokenRejection("iss is not '\(issuer)'") }
        return VerifiedToken(canWrite: claims.scopes.contains(writeScope), expires: exp, notBefore: claims.nbf)
    }

    /// Text of a token as the log may show it: letters, digits and `._:+-/` only, at most 40
    /// characters (a token's text must not forge log lines).
    static func shown(_ text: String) -> String {
        let kept = text.unicodeScalars.prefix(40).map { c -> Character in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "._:+-/".unicodeScalars.contains(c)) ? Character(c) : "?"
        }
        return String(kept) + (text.unicodeScalars.count > 40 ? "…" : "")
    }

    /// A number of seconds as the log shows it (any finite Double, however large).
    static func seconds(_ value: Double) -> String { String(format: "%.0f", min(max(value, -1e15), 1e15)) }

    /// The JOSE header fields looked at.
    private struct Header: Decodable {
        var alg: String
        var kid: String?
        var typ: String?
        var crit: [String]?
    }

    /// The claims looked at, each of its registered type (a token with `exp: "soon"` is refused).
    private struct Claims: Decodable {
        var exp: Double?
        var nbf: Double?
        var iss: String?
        var audiences: [String] = []
        var scopes: [String] = []

        enum Key: String, CodingKey { case exp, nbf, iss, aud, scope, scp }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            exp = try c.decodeIfPresent(Double.self, forKey: .exp)
            nbf = try c.decodeIfPresent(Double.self, forKey: .nbf)
            iss = try c.decodeIfPresent(String.self, forKey: .iss)
            audiences = try Self.strings(c, .aud)
            scopes = try Self.strings(c, .scope).flatMap { $0.split(separator: " ").map(String.init) }
                + Self.strings(c, .scp).flatMap { $0.split(separator: " ").map(String.init) }
        }

        /// A claim that is one string or a list of strings.
        private static func strings(_ c: KeyedDecodingContainer<Key>, _ key: Key) throws -> [String] {
            guard c.contains(key), try !c.decodeNil(forKey: key) else { return [] }
            if let one = try? c.decode(String.self, forKey: key) { return [one] }
            return try c.decode([String].self, forKey: key)
        }
    }
}
