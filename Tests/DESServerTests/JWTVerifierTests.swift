import DESFormat
import DESKit
@testable import DESServer
import DESTestSupport
import Foundation
import Testing

/// The verifier on its own, with tokens openssl signed: the algorithms the server test does not
/// take (RS512, ES384), the key a kid picks, the leeway's edges, and headers it must refuse.
@Suite("JWT verifier")
struct JWTVerifierTests {
    let dir = NSTemporaryDirectory() + "des-jwtv-\(UUID().uuidString.prefix(8))"

    func verifier(_ config: ServerJWTConfig) throws -> JWTVerifier { try JWTVerifier(config: config, baseDirectory: dir) }

    @Test("kid picks the JWKS key and falls back to PEM keys; RS512 and ES384 verify; exp and nbf hold to the leeway; crit, a foreign typ and base64 padding are refused; a static token with two dots stays a static token")
    func verifies() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let idp = try TestIdentityProvider(in: dir)
        let (status, out) = try runTool("/bin/bash", ["-c", "cd \"$1\" && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.key && openssl pkey -in p384.key -pubout -out p384.pub", "x", dir])
        #expect(status == 0, "\(out)")
        try idp.writeJWKS([try idp.rsaJWK("rsa1", kid: "k1")], to: dir + "/jwks.json")
        let v = try verifier(ServerJWTConfig(jwksFile: "jwks.json", publicKeys: ["rsa2.pub", "p384.pub"], audience: "des-test", leewaySeconds: 30))
        let claims = TestIdentityProvider.claims(scope: "des:write")
        // kid k1 → the JWKS key; a kid nobody has → the PEM keys; rsa2 under k1 → refused.
        #expect(try v.verify(Substring(idp.token(alg: "RS512", key: "rsa1", kid: "k1", claims: claims))).canWrite)
        #expect(try v.verify(Substring(idp.token(alg: "RS256", key: "rsa2", kid: "idp-2024", claims: claims))).canWrite)
        #expect(throws: TokenRejection.self) { try v.verify(Substring(idp.token(alg: "RS256", key: "rsa2", kid: "k1", claims: claims))) }
        let es384 = try idp.token(alg: "ES384", key: "p384", kid: nil, claims: claims)
        #expect(try v.verify(Substring(es384)).canWrite)
        // ES384's signature is not ES256's.
        #expect(throws: TokenRejection.self) { try v.verify(Substring(es384.replacingOccurrences(of: TestIdentityProvider.base64url(#"{"alg": "ES384", "typ": "JWT"}"#), with: TestIdentityProvider.base64url(#"{"alg": "ES256", "typ": "JWT"}"#)))) }

        // The leeway: 30 s either side, not 31.
        let now = Date().timeIntervalSince1970.rounded()
        let at = { (offset: Double) in Date(timeIntervalSince1970: now + offset) }
        let edge = try idp.token(alg: "RS256", key: "rsa1", kid: "k1", claims: TestIdentityProvider.claims(exp: now, nbf: now - 100))
        #expect((try? v.verify(Substring(edge), now: at(29))) != nil)
        #expect(throws: TokenRejection.self) { try v.verify(Substring(edge), now: at(31)) }
        let early = try idp.token(alg: "RS256", key: "rsa1", kid: "k1", claims: TestIdentityProvider.claims(exp: now + 1000, nbf: now))
        #expect((try? v.verify(Substring(early), now: at(-29))) != nil)
        #expect(throws: TokenRejection.self) { try v.verify(Substring(early), now: at(-31)) }

        // Headers: crit, a typ that is not a JWT.
        for header in [#"{"alg": "RS256", "kid": "k1", "crit": ["exp"]}"#, #"{"alg": "RS256", "kid": "k1", "typ": "JOSE+JSON"}"#] {
            let t = try idp.token(alg: "RS256", key: "rsa1", kid: "k1", claims: claims, header: header)
            #expect(throws: TokenRejection.self) { try v.verify(Substring(t)) }
        }
        // Padding is not base64url.
        #expect(Base64URL.decode("YQ==") == nil && Base64URL.decode("YQ") == [0x61])
        #expect(Base64URL.decode("a+b/") == nil)

        // A PEM file of two keys gives both.
        let two = try String(contentsOfFile: dir + "/rsa2.pub", encoding: .utf8) + String(contentsOfFile: dir + "/p384.pub", encoding: .utf8)
        try two.write(toFile: dir + "/two.pem", atomically: true, encoding: .utf8)
        #expect(try verifier(ServerJWTConfig(publicKeys: ["two.pem"], audience: "des-test")).keys.count == 2)

        // A provider's JWKS with keys DES has no use for: skipped, each said; the usable key loads.
        let unusable = [
            #"{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
            #"{"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AQ", "y": "AQ"}"#,
            #"{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQ", "e": "AQAB"}"#,
            #"{"kty": "RSA", "kid": "ops", "key_ops": ["encrypt"], "n": "AQ", "e": "AQAB"}"#,
            #"{"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQ", "e": "AQAB"}"#,
        ]
        try idp.writeJWKS(unusable + [try idp.rsaJWK("rsa1", kid: "k1")], to: dir + "/mixed.json")
        let mixed = try verifier(ServerJWTConfig(jwksFile: "mixed.json", audience: "des-test"))
        #expect(mixed.keys.count == 1 && mixed.skipped.count == 5, "\(mixed.skipped)")
        #expect(try mixed.verify(Substring(idp.token(alg: "RS256", key: "rsa1", kid: "k1", claims: claims))).canWrite)
        // A JWKS of only such keys accepts no token: an error, naming what was skipped.
        try idp.writeJWKS(unusable, to: dir + "/useless.json")
        #expect(throws: DESKitError.self) { try verifier(ServerJWTConfig(jwksFile: "useless.json", audience: "des-test")) }
        // A published private part is an error, not a key.
        let withPrivate = try idp.rsaJWK("rsa1", kid: "k1").replacingOccurrences(of: #""e": "AQAB""#, with: #""e": "AQAB", "d": "AQ""#)
        try idp.writeJWKS([withPrivate], to: dir + "/private.json")
        #expect(throws: DESKitError.self) { try verifier(ServerJWTConfig(jwksFile: "private.json", audience: "des-test")) }

        // A static token with two dots is compared as a static token first.
        let auth = Authenticator(.init(tokens: [Secret("static.token.0123456789")], jwt: v))
        #expect(auth.authenticate("Bearer static.token.0123456789") == .granted(canWrite: true))
        #expect(auth.authenticate("Bearer static.token.0123456780") != .granted(canWrite: true))
        #expect(auth.authenticate(nil) == .missing)
        #expect(auth.authenticate("Basic abc") == .malformed)
        let reader = try idp.token(alg: "RS256", key: "rsa1", kid: "k1", claims: TestIdentityProvider.claims(scope: "openid"))
        #expect(auth.authenticate("Bearer " + reader) == .granted(canWrite: false))
        // Remembered once verified (not verified again), but only within its times: past exp (and the leeway) it is refused.
        let verified = auth.verifications.load(ordering: .relaxed)
        #expect(auth.authenticate("Bearer " + reader) == .granted(canWrite: false))
        #expect(auth.verifications.load(ordering: .relaxed) == verified, "a remembered token was verified again")
        if case .refused = auth.authenticate("Bearer " + reader, now: Date().addingTimeInterval(3600 + 31)) {} else {
            Issue.record("a remembered token was accepted past its exp")
        }
        let short = try idp.token(alg: "RS256", key: "rsa1", kid: "k1", claims: TestIdentityProvider.claims(exp: now + 10))
        #expect(auth.authenticate("Bearer " + short, now: at(0)) == .granted(canWrite: false))
        if case .refused = auth.authenticate("Bearer " + short, now: at(41)) {} else { Issue.record("a remembered token outlived its exp") }
        // A reload forgets what the old credentials verified: a key taken out takes its tokens with it.
        let rotated = try verifier(ServerJWTConfig(publicKeys: ["rsa2.pub"], audience: "des-test"))
        auth.replace(with: .init(tokens: [], jwt: rotated))
        if case .refused = auth.authenticate("Bearer " + reader) {} else { Issue.record("a token of a removed key was still accepted after the reload") }
    }

    @Test("A member named twice (RFC 7515/7519 §4): found with escapes decoded, at the top level only; nested and malformed input is no duplicate")
    func duplicateNames() {
        func dup(_ text: String) -> String? { DESMetadata.firstRepeatedKey(inJSON: Array(text.utf8)) }
        #expect(dup(#"{"exp": 1, "exp": 2}"#) == "exp")
        #expect(dup(#"{"exp": 1, "\u0065xp": 2}"#) == "exp")
        #expect(dup(#"{"a": {"x": 1, "x": 2}, "b": [1, {"y": 1, "y": 2}], "c": "\"exp\""}"#) == nil, "nested names are a claim's own business")
        #expect(dup(#"{"aud": ["a", "b"], "n": -1.5e3, "t": true, "f": false, "z": null, "aud": "c"}"#) == "aud")
        #expect(dup(#" { "k" : "v" , "K" : "v" } "#) == nil)
        #expect(dup(#"{"\ud83d\ude00": 1, "😀": 2}"#) == "😀")
        #expect(dup(#"{"caf\u00e9": 1, "cafe\u0301": 2}"#) == nil, "names are compared code point by code point (RFC 8259 §8.3), not by Unicode equivalence")
        for notAnObject in ["", "[]", "{", #"{"a""#, #"{"a": }"#, "{}", #"{"a": 1,}"#, "null", #"{"a": 1} {"a": 2}"#] {
            #expect(dup(notAnObject) == nil, "\(notAnObject)")
        }
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(dup(#"{"a": \#(deep), "a": 1}"#) == "a")
    }

    @Test("A token whose claims or header name a member twice is refused, however it is signed")
    func duplicateClaimsRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let idp = try TestIdentityProvider(in: dir)
        try idp.writeJWKS([try idp.rsaJWK("rsa1", kid: "k1")], to: dir + "/jwks.json")
        let v = try verifier(ServerJWTConfig(jwksFile: "jwks.json", audience: "des-test"))
        let now = Int(Date().timeIntervalSince1970)
        let good = #"{"aud": "des-test", "exp": \#(now + 3600), "scope": "des:write"}"#
        #expect(try v.verify(Substring(idp.token(alg: "RS256", key: "rsa1", kid: "k1", claims: good))).canWrite)
        let twice = [
            // An expired exp after a good one (JSONDecoder would have kept the first).
            #"{"aud": "des-test", "exp": \#(now + 3600), "exp": \#(now - 3600)}"#,
            #"{"aud": "des-test", "exp": \#(now + 3600), "\u0065xp": \#(now - 3600)}"#,
            #"{"aud": "other", "exp": \#(now + 3600), "aud": "des-test"}"#,
            #"{"aud": "des-test", "exp": \#(now + 3600), "scope": "openid", "scope": "des:write"}"#,
        ]
        for claims in twice {
            let token = try idp.token(alg: "RS256", key: "rsa1", kid: "k1", claims: claims)
            #expect(throws: TokenRejection.self, "\(claims)") { try v.verify(Substring(token)) }
        }
        let header = #"{"alg": "RS256", "kid": "k1", "kid": "other"}"#
        let token = try idp.token(alg: "RS256", key: "rsa1", kid: "k1", claims: good, header: header)
        #expect(throws: TokenRejection.self) { try v.verify(Substring(token)) }
    }
}
