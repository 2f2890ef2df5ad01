import DESTestSupport
import Foundation
import Testing

/// An identity provider made at test time with openssl: RSA and EC P-256 keys published in a
/// JWKS beside an HMAC secret, a rogue RSA key the server does not know, and tokens signed by
/// openssl (never by the code under test).
struct TestIdentityProvider {
    let dir: String
    let secret: [UInt8] = Array("an-hmac-secret-of-32-bytes-or-so-0123".utf8)

    init(in dir: String) throws {
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let script = """
            set -e
            cd "$1"
            for k in rsa1 rsa2 rogue; do openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out $k.key 2>/dev/null; done
            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out weak.key 2>/dev/null
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec1.key 2>/dev/null
            for k in rsa1 rsa2 rogue weak ec1; do openssl pkey -in $k.key -pubout -out $k.pub 2>/dev/null; done
            for k in rsa1 rsa2 rogue weak; do openssl rsa -in $k.key -noout -modulus > $k.modulus 2>/dev/null; done
            openssl pkey -in ec1.key -pubout -outform DER -out ec1.der 2>/dev/null
            """
        let (status, out) = try runTool("/bin/bash", ["-c", script, "idp", dir])
        guard status == 0 else { throw TestFailure("openssl could not make the test keys: \(out)") }
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func base64url(_ text: String) -> String { base64url(Array(text.utf8)) }

    /// The JWK of an RSA key (`rsa1`, `rsa2`, `rogue`, `weak`) under `kid`.
    func rsaJWK(_ key: String, kid: String) throws -> String {
        let text = try String(contentsOfFile: dir + "/\(key).modulus", encoding: .utf8)
        let hex = text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "Modulus=", with: "")
        var n: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            n.append(UInt8(hex[i..<j], radix: 16) ?? 0)
            i = j
        }
        return #"{"kty": "RSA", "kid": "\#(kid)", "use": "sig", "n": "\#(Self.base64url(n))", "e": "AQAB"}"#
    }

    /// The JWK of the EC P-256 key `ec1` (its point: the last 65 bytes of the DER public key).
    func ecJWK(kid: String) throws -> String {
        let der = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/ec1.der")))
        let point = Array(der.suffix(65))
        let (x, y) = (Array(point[1...32]), Array(point[33...64]))
        return #"{"kty": "EC", "kid": "\#(kid)", "crv": "P-256", "x": "\#(Self.base64url(x))", "y": "\#(Self.base64url(y))"}"#
    }

    /// The JWK of the HMAC secret.
    func octJWK(kid: String) -> String { #"{"kty": "oct", "kid": "\#(kid)", "alg": "HS256", "k": "\#(Self.base64url(secret))"}"# }

    /// Writes a JWKS of these JWKs to `path`.
    func writeJWKS(_ jwks: [String], to path: String) throws {
        try #"{"keys": [\#(jwks.joined(separator: ", "))]}"#.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// A compact JWS of `claims` (JSON) with `header` (JSON), signed by openssl with `key` for `alg`.
    /// `hmacSecret` replaces the provider's HMAC secret (to sign as an attacker would).
    func token(alg: String, key: String, kid: String?, claims: String, header: String? = nil, hmacSecret: [UInt8]? = nil) throws -> String {
        let head = header ?? (kid.map { #"{"alg": "\#(alg)", "typ": "JWT", "kid": "\#($0)"}"# } ?? #"{"alg": "\#(alg)", "typ": "JWT"}"#)
        let input = Self.base64url(head) + "." + Self.base64url(claims)
        let inputPath = dir + "/input-\(UUID().uuidString)"
        try input.write(toFile: inputPath, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: inputPath) }
        let sigPath = inputPath + ".sig"
        defer { try? FileManager.default.removeItem(atPath: sigPath) }
        let digest = "-sha" + alg.suffix(3)
        let args: [String]
        if alg.hasPrefix("HS") {
            let hex = (hmacSecret ?? secret).map { String(format: "%02x", $0) }.joined()
            args = ["dgst", digest, "-mac", "HMAC", "-macopt", "hexkey:\(hex)", "-binary", "-out", sigPath, inputPath]
        } else {
            args = ["dgst", digest, "-sign", dir + "/\(key).key", "-binary", "-out", sigPath, inputPath]
        }
        let (status, out) = try runTool("/usr/bin/env", ["openssl"] + args)
        guard status == 0 else { throw TestFailure("openssl dgst failed: \(out)") }
        var signature = [UInt8](try Data(contentsOf: URL(fileURLWithPath: sigPath)))
        if alg.hasPrefix("ES") { signature = try Self.rawECDSA(der: signature, half: alg == "ES384" ? 48 : 32) }
        return input + "." + Self.base64url(signature)
    }

    /// JWS's r || s from openssl's DER ECDSA signature (SEQUENCE of two INTEGERs).
    static func rawECDSA(der: [UInt8], half: Int) throws -> [UInt8] {
        var i = 2
        if der[1] & 0x80 != 0 { i += Int(der[1] & 0x7f) }
        func integer() throws -> [UInt8] {
            guard der[i] == 0x02 else { throw TestFailure("not a DER ECDSA signature") }
            let length = Int(der[i + 1])
            var bytes = Array(der[(i + 2)..<(i + 2 + length)])
            i += 2 + length
            while bytes.count > half && bytes.first == 0 { bytes.removeFirst() }
            return [UInt8](repeating: 0, count: half - bytes.count) + bytes
        }
        return try integer() + integer()
    }

    /// Claims for the test audience and issuer, valid from a minute ago for an hour unless told.
    static func claims(
        scope: String? = nil, scp: [String]? = nil, aud: String = "des-test", iss: String = "https://idp.test", exp: Double? = nil, nbf: Double? = nil
    ) -> String {
        let now = Date().timeIntervalSince1970
        var parts = [#""sub": "tester""#, #""aud": "\#(aud)""#, #""iss": "\#(iss)""#, #""exp": \#(Int(exp ?? now + 3600))"#, #""nbf": \#(Int(nbf ?? now - 60))"#]
        if let scope { parts.append(#""scope": "\#(scope)""#) }
        if let scp { parts.append(#""scp": [\#(scp.map { "\"\($0)\"" }.joined(separator: ", "))]"#) }
        return "{" + parts.joined(separator: ", ") + "}"
    }
}

/// `curl -X method url` with `token` as bearer; the status and the body.
func call(_ method: String, _ url: String, token: String?, body: String? = nil) throws -> (status: Int, body: String) {
    var args = ["curl", "-sS", "--max-time", "10", "-X", method, "-w", "\n%{http_code}"]
    if let token { args += ["-H", "Authorization: Bearer \(token)"] }
    if let body { args += ["-H", "Content-Type: application/json", "--data", body] }
    if method == "HEAD" { args = args.filter { $0 != "-X" && $0 != "HEAD" } + ["-I"] }
    let (_, out) = try runTool("/usr/bin/env", args + [url])
    let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
    return (Int(lines.last ?? "") ?? -1, lines.dropLast().joined(separator: "\n"))
}

@Suite("JWT auth for des serve")
struct JWTTests {
    static let jwtSection = "jwt: {jwks_file: idp/jwks.json, public_keys: [idp/ec1.pub], audience: des-test, issuer: 'https://idp.test'}"

    @Test(
        "server.jwt: RS256, ES256 and HS256 tokens are accepted within exp/nbf for the audience; reads need a valid token, writes the write scope; expired, wrongly signed, tampered, alg none or confused, wrong audience or issuer: 401 with no detail"
    )
    func tokens() async throws {
        let d = try SQLiteDeployment("jwt", extra: "server: {auth_tokens: [static-token-0123456789], \(Self.jwtSection)}")
        defer { d.cleanup() }
        let idp = try TestIdentityProvider(in: d.dir + "/idp")
        try idp.writeJWKS([try idp.rsaJWK("rsa1", kid: "rsa1"), try idp.ecJWK(kid: "ec1"), idp.octJWK(kid: "hs1")], to: d.dir + "/idp/jwks.json")
        #expect(try await runDES(["sample", "-c", d.config, "--files", "1"]).0 == 0)
        let log = d.dir + "/serve.log"
        let (server, base) = try await startServe(config: d.config, log: log)
        defer { server.terminate() }
        let assign = base + "/assign"
        let body = #"{"prefix": "JWT"}"#

        // A writer's token makes a name; a reader's token reads it (404: assigned, never packed).
        let writer = try idp.token(alg: "RS256", key: "rsa1", kid: "rsa1", claims: TestIdentityProvider.claims(scope: "openid des:write"))
        let assigned = try call("POST", assign, token: writer, body: body)
        #expect(assigned.status == 200, "\(assigned)")
        let name = try #require((try JSONSerialization.jsonObject(with: Data(assigned.body.utf8)) as? [String: Any])?["name"] as? String)
        let file = base + "/files/" + name
        let reader = try idp.token(alg: "RS256", key: "rsa1", kid: "rsa1", claims: TestIdentityProvider.claims(scope: "openid"))
        #expect(try call("GET", file, token: reader).status == 404)
        #expect(try call("HEAD", file, token: reader).status == 404)
        let refused = try call("POST", assign, token: reader, body: body)
        #expect(refused.status == 403 && refused.body.contains("insufficient_scope"), "\(refused)")
        #expect(try call("DELETE", file + "?reason=test", token: reader).status == 403)
        #expect(try call("DELETE", file + "?reason=test", token: writer).status == 404)

        // ES256 through the JWKS and through the PEM key (a kid the JWKS does not have falls to the
        // keys without one), with scp as a list; HS256 with the oct key.
        let es = try idp.token(alg: "ES256", key: "ec1", kid: "ec1", claims: TestIdentityProvider.claims(scp: ["des:write"]))
        #expect(try call("POST", assign, token: es, body: body).status == 200)
        let esPEM = try idp.token(alg: "ES256", key: "ec1", kid: "pem-only", claims: TestIdentityProvider.claims(scp: ["des:write"]))
        #expect(try call("POST", assign, token: esPEM, body: body).status == 200)
        let hs = try idp.token(alg: "HS256", key: "", kid: "hs1", claims: TestIdentityProvider.claims())
        #expect(try call("GET", file, token: hs).status == 404)
        // The static token still works, for everything.
        #expect(try call("POST", assign, token: "static-token-0123456789", body: body).status == 200)

        // Refused, each with the same bare 401.
        let now = Date().timeIntervalSince1970
        let rsa = { (claims: String) in try idp.token(alg: "RS256", key: "rsa1", kid: "rsa1", claims: claims) }
        let bad: [(String, String)] = [
            ("expired", try rsa(TestIdentityProvider.claims(scope: "des:write", exp: now - 3600, nbf: now - 7200))),
            ("not yet valid", try rsa(TestIdentityProvider.claims(scope: "des:write", nbf: now + 3600))),
            ("wrongly signed", try idp.token(alg: "RS256", key: "rogue", kid: "rsa1", claims: TestIdentityProvider.claims(scope: "des:write"))),
            ("unknown kid", try idp.token(alg: "RS256", key: "rogue", kid: "rogue", claims: TestIdentityProvider.claims(scope: "des:write"))),
            ("wrong audience", try rsa(TestIdentityProvider.claims(scope: "des:write", aud: "someone-else"))),
            ("wrong issuer", try rsa(TestIdentityProvider.claims(scope: "des:write", iss: "https://evil.test"))),
            ("no exp", try rsa(#"{"aud": "des-test", "iss": "https://idp.test", "scope": "des:write"}"#)),
            ("exp a string", try rsa(#"{"aud": "des-test", "iss": "https://idp.test", "exp": "9999999999"}"#)),
            (
                "alg none",
                TestIdentityProvider.base64url(#"{"alg": "none", "typ": "JWT"}"#) + "."
                    + TestIdentityProvider.base64url(TestIdentityProvider.claims(scope: "des:write")) + "."
            ),
            ("HS256 under the RSA key's kid", try idp.token(alg: "HS256", key: "", kid: "rsa1", claims: TestIdentityProvider.claims(scope: "des:write"))),
            (
                "HS256 keyed with the RSA public key's PEM (algorithm confusion)",
                try idp.token(
                    alg: "HS256", key: "", kid: "rsa1", claims: TestIdentityProvider.claims(scope: "des:write"),
                    hmacSecret: Array(try Data(contentsOf: URL(fileURLWithPath: idp.dir + "/rsa1.pub"))))
            ),
            (
                "HS256 keyed with the PEM key's bytes, no kid",
                try idp.token(
                    alg: "HS256", key: "", kid: nil, claims: TestIdentityProvider.claims(scope: "des:write"),
                    hmacSecret: Array(try Data(contentsOf: URL(fileURLWithPath: idp.dir + "/ec1.pub"))))
            ),
        ]
        var tampered = writer.split(separator: ".").map(String.init)
        tampered[1] = TestIdentityProvider.base64url(TestIdentityProvider.claims(scope: "des:write", aud: "des-test"))
        let cases = bad + [("tampered payload", tampered.joined(separator: ".")), ("garbage", "a.b.c"), ("not a static token", "static-token-0123456780")]
        for (what, token) in cases {
            for (method, url) in [("GET", file), ("POST", assign)] {
                let r = try call(method, url, token: token, body: method == "POST" ? body : nil)
                #expect(r.status == 401, "\(what), \(method): \(r)")
                #expect(r.body.contains("the bearer token is not accepted"), "\(what): \(r.body)")
                for leak in ["exp", "nbf", "signature", "aud", "iss", "kid", "alg"] {
                    #expect(!r.body.contains(leak), "\(what): the answer tells '\(leak)': \(r.body)")
                }
            }
        }
        server.terminate()
        await waitForExit(server)
        // The log says why (for the operator), and never holds a token.
        let logged = try String(contentsOfFile: log, encoding: .utf8)
        #expect(logged.contains("expired") && logged.contains("the signature does not verify"), "\(logged.suffix(2000))")
        for (_, token) in cases where token.count > 40 { #expect(!logged.contains(token), "a token is in the log") }
        #expect(!logged.contains(writer) && !logged.contains("static-token-0123456789"))
    }

    @Test("A flood of refused tokens does not flood the log: a burst of lines, then a few a second, the next one saying how many were held back")
    func refusalFlood() async throws {
        let d = try SQLiteDeployment("jwt-flood", extra: "server: {auth_tokens: [static-token-0123456789]}")
        defer { d.cleanup() }
        let log = d.dir + "/serve.log"
        let (server, base) = try await startServe(config: d.config, log: log)
        defer { server.terminate() }
        // 400 requests over one connection (one curl, its URLs from a config file).
        let count = 400
        let urls = (0..<count).map { _ in "url = \"\(base)/files/DES_20240101_(000000000000_00)\"\noutput = \"/dev/null\"" }
        try urls.joined(separator: "\n").write(toFile: d.dir + "/flood.cfg", atomically: true, encoding: .utf8)
        let started = Date()
        let (status, out) = try runTool(
            "/usr/bin/env", ["curl", "-s", "-H", "Authorization: Bearer not-the-token-0123456789", "-w", "%{http_code}\n", "-K", d.dir + "/flood.cfg"])
        let elapsed = Date().timeIntervalSince(started)
        #expect(status == 0)
        #expect(out.split(separator: "\n").filter { $0 == "401" }.count == count, "\(out.suffix(200))")
        // One more, once the throttle has a line to spare again (5 a second: one every 0.2 s): it is
        // written, and says how many were held back before it.
        try await Task.sleep(nanoseconds: 300_000_000)
        #expect(try call("GET", base + "/files/DES_20240101_(000000000000_00)", token: "not-the-token-0123456789").status == 401)
        server.terminate()
        await waitForExit(server)
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").filter { $0.contains("bearer token refused") }
        // 20 at once, then 5 a second: at most that many lines for the flood's length (and a second's slack).
        #expect(lines.count >= 20 && Double(lines.count) <= 20 + 5 * (elapsed + 1.5), "\(lines.count) lines in \(elapsed) s")
        func held(_ line: Substring) -> Int {
            guard let r = line.range(of: "suppressed=") else { return 0 }
            return Int(line[r.upperBound...].prefix { $0.isNumber }) ?? 0
        }
        #expect(held(lines.last ?? "") > 0, "the last line does not say how many were held back: \(lines.last ?? "")")
        // Every refusal is in the log: written, or counted by a later line.
        #expect(lines.count + lines.map(held).reduce(0, +) == count + 1, "\(lines.count) lines, \(lines.map(held))")
    }

    @Test("SIGHUP rotates the keys and the static tokens; a config that no longer loads leaves the ones in force")
    func rotation() async throws {
        let d = try SQLiteDeployment("jwt-hup", extra: "server: {auth_tokens: [old-static-token-0123456789], \(Self.jwtSection)}")
        defer { d.cleanup() }
        let idp = try TestIdentityProvider(in: d.dir + "/idp")
        let jwks = d.dir + "/idp/jwks.json"
        try idp.writeJWKS([try idp.rsaJWK("rsa1", kid: "k1")], to: jwks)
        #expect(try await runDES(["sample", "-c", d.config, "--files", "1"]).0 == 0)
        let log = d.dir + "/serve.log"
        let (server, base) = try await startServe(config: d.config, log: log)
        defer { server.terminate() }
        let url = base + "/files/" + "T" + String(repeating: "0", count: 10)  // any path under /files: auth comes first
        let old = try idp.token(alg: "RS256", key: "rsa1", kid: "k1", claims: TestIdentityProvider.claims())
        let new = try idp.token(alg: "RS256", key: "rsa2", kid: "k2", claims: TestIdentityProvider.claims())
        #expect(try call("GET", url, token: old).status != 401)
        #expect(try call("GET", url, token: new).status == 401)

        func reloads() async throws -> Int {
            try String(contentsOfFile: log, encoding: .utf8).components(separatedBy: "credentials reloaded").count - 1
        }
        func hangUp(expecting count: Int, in text: String) async throws {
            kill(server.processIdentifier, SIGHUP)
            for _ in 0..<100 {
                if try String(contentsOfFile: log, encoding: .utf8).components(separatedBy: text).count - 1 >= count { return }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            throw TestFailure("des serve logged no '\(text)' within 10 s of SIGHUP")
        }

        // Rotated: the new key in, the old out; the static token changed too.
        try idp.writeJWKS([try idp.rsaJWK("rsa2", kid: "k2")], to: jwks)
        var config = try String(contentsOfFile: d.config, encoding: .utf8)
        config = config.replacingOccurrences(of: "old-static-token-0123456789", with: "new-static-token-0123456789")
        try config.write(toFile: d.config, atomically: true, encoding: .utf8)
        try await hangUp(expecting: 1, in: "credentials reloaded")
        #expect(server.isRunning)
        #expect(try call("GET", url, token: new).status != 401)
        #expect(try call("GET", url, token: old).status == 401)
        #expect(try call("GET", url, token: "new-static-token-0123456789").status != 401)
        #expect(try call("GET", url, token: "old-static-token-0123456789").status == 401)

        // A JWKS that is not one: nothing changes, the process lives on.
        try "{not json".write(toFile: jwks, atomically: true, encoding: .utf8)
        try await hangUp(expecting: 1, in: "credentials not reloaded")
        #expect(server.isRunning)
        #expect(try await reloads() == 1)
        #expect(try call("GET", url, token: new).status != 401)

        // A config that lost every credential would open the API: refused too.
        try idp.writeJWKS([try idp.rsaJWK("rsa2", kid: "k2")], to: jwks)
        let guarded = try String(contentsOfFile: d.config, encoding: .utf8)
        let open = guarded.replacingOccurrences(of: "server: {auth_tokens: [new-static-token-0123456789], \(Self.jwtSection)}", with: "server: {}")
        #expect(open != guarded)
        try open.write(toFile: d.config, atomically: true, encoding: .utf8)
        try await hangUp(expecting: 2, in: "credentials not reloaded")
        #expect(try await reloads() == 1)
        #expect(try call("GET", url, token: nil).status == 401)
        #expect(try call("GET", url, token: new).status != 401)
    }

    @Test("A server.jwt without an audience or keys, an unreadable JWKS, a weak RSA key or an unknown algorithm is a configuration error naming the key (exit 65)")
    func badConfig() async throws {
        let d = try SQLiteDeployment("jwt-bad", extra: "server: {jwt: {jwks_file: idp/jwks.json, audience: des-test}}")
        defer { d.cleanup() }
        let idp = try TestIdentityProvider(in: d.dir + "/idp")
        let cases: [(String, String)] = [
            ("jwt: {jwks_file: idp/jwks.json}", "audience"),
            ("jwt: {audience: des-test}", "jwks_file"),
            ("jwt: {jwks_file: idp/missing.json, audience: des-test}", "server.jwt.jwks_file: cannot read"),
            ("jwt: {public_keys: [idp/weak.pub], audience: des-test}", "too weak"),
            ("jwt: {public_keys: [idp/rsa1.pub], audience: des-test, algorithms: [none]}", "'none' never is"),
            ("jwt: {public_keys: [idp/rsa1.pub], audience: des-test, algorithms: [HS256]}", "none of its 1 keys"),
            ("jwt: {public_keys: [idp/rsa1.pub], audience: des-test, leeway_seconds: 99999}", "leeway_seconds"),
            ("jwt: {public_keys: [idp/rsa1.pub], audience: des-test, scope: x}", "scope"),
            // An empty section (every line commented out) would leave the API open: refused.
            ("jwt: null", "is empty"),
            ("jwt: {public_keys: [idp/rsa1.key], audience: des-test}", "holds no PEM public key"),
        ]
        let original = try String(contentsOfFile: d.config, encoding: .utf8)
        for (section, expected) in cases {
            try original.replacingOccurrences(of: "jwt: {jwks_file: idp/jwks.json, audience: des-test}", with: section)
                .write(toFile: d.config, atomically: true, encoding: .utf8)
            let (status, out) = try runTool("/usr/bin/timeout", ["20", try desBinary(), "serve", "-c", d.config, "--port", "0"])
            #expect(status == 65 && out.contains(expected), "\(section): \(status) \(out)")
            // des config check reads the key files as des serve does: it passes nothing serve refuses.
            let (checked, checkOut) = try runTool("/usr/bin/timeout", ["20", try desBinary(), "config", "check", "-c", d.config])
            #expect(checked == 65 && checkOut.contains(expected), "config check, \(section): \(checked) \(checkOut)")
        }
        _ = idp
    }
}
