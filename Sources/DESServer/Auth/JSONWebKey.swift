import CDESCrypto
import Foundation

/// A JWS signature algorithm DES verifies (RFC 7518 §3): RSA PKCS #1 v1.5, ECDSA on P-256 and
/// P-384, and HMAC. `none` is not one.
enum JWSAlgorithm: String, Sendable, CaseIterable {
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case es256 = "ES256", es384 = "ES384"
    case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512"

    /// The SHA-2 digest's size in bits.
    var digestBits: Int32 {
        switch self {
        case .rs256, .es256, .hs256: 256
        case .rs384, .es384, .hs384: 384
        case .rs512, .hs512: 512
        }
    }

    /// The bytes of each of r and s in an ECDSA signature (0: not ECDSA).
    var ecdsaHalf: Int {
        switch self {
        case .es256: 32
        case .es384: 48
        default: 0
        }
    }

    /// The curve an ECDSA algorithm signs on (OpenSSL's name).
    var curve: String? {
        switch self {
        case .es256: "prime256v1"
        case .es384: "secp384r1"
        default: nil
        }
    }
}

/// Why a key of a JWKS or PEM file cannot be used; the message names the key.
struct JSONWebKeyError: Error, CustomStringConvertible {
    var description: String
}

/// A key that verifies token signatures: an RSA or EC public key held by OpenSSL, or an HMAC
/// secret. Each kind verifies only its own algorithms, so a token cannot pick HMAC with a
/// public key as the secret (the algorithm confusion attack).
final class VerificationKey: @unchecked Sendable {
    // @unchecked: the EVP_PKEY is never changed after init and OpenSSL allows verifying with one
    // key from many threads at once.

    enum Material {
        case rsa(OpaquePointer)
        case ec(OpaquePointer, curve: String)
        case hmac([UInt8])
    }

    /// The key's id (`kid`), when it has one.
    let id: String?
    /// The one algorithm the key is for (JWK `alg`), when it says.
    let algorithm: JWSAlgorithm?
    let material: Material

    /// RSA keys shorter than this are refused (RFC 7518 §3.3 asks for 2048 bits).
    static let minimumRSABits: Int32 = 2048
    /// RSA keys longer than this are refused (each verification would cost too much).
    static let maximumRSABits: Int32 = 8192
    /// HMAC secrets shorter than this are refused (RFC 7518 §3.2: at least the hash's size; 256 bits here for all).
    static let minimumSecretBytes = 32

    private init(id: String?, algorithm: JWSAlgorithm?, material: Material) {
        self.id = id
        self.algorithm = algorithm
        self.material = material
    }

    deinit {
        switch material {
        case .rsa(let key), .ec(let key, _): cdes_jws_free_key(key)
        case .hmac: break
        }
    }

    /// The algorithms this key may verify.
    func allows(_ alg: JWSAlgorithm) -> Bool {
        if let algorithm, algorithm != alg { return false }
        switch (material, alg) {
        case (.rsa, .rs256), (.rsa, .rs384), (.rsa, .rs512): return true
        case (.ec(_, let curve), .es256), (.ec(_, let curve), .es384): return curve == alg.curve
        case (.hmac(let secret), .hs256), (.hmac(let secret), .hs384), (.hmac(let secret), .hs512):
            // RFC 7518 §3.2: a secret at least as long as the hash.
            return secret.count >= Int(alg.digestBits) / 8
        default: return false
        }
    }

    /// Whether `signature` signs `data` under this key with `alg` (false for an algorithm the key is not for).
    func verify(_ alg: JWSAlgorithm, data: [UInt8], signature: [UInt8]) -> Bool {
        guard allows(alg) else { return false }
        switch material {
        case .rsa(let key), .ec(let key, _):
            return cdes_jws_verify(key, alg.digestBits, alg.ecdsaHalf, data, data.count, signature, signature.count) == 1
        case .hmac(let secret):
            var out = [UInt8](repeating: 0, count: 64)
            let n = Int(cdes_jws_hmac(alg.digestBits, secret, secret.count, data, data.count, &out))
            return n > 0 && constantTimeEqual(Array(out[0..<n]), signature)
        }
    }

    /// What became of one JWK of a JWKS.
    enum Loaded {
        /// A key that verifies.
        case key(VerificationKey)
        /// A key DES has no use for, skipped as RFC 7517 §5 asks (a provider's JWKS may hold
        /// encryption keys, or kinds and algorithms DES does not verify); why.
        case skipped(String)
    }

    /// A key from one JWK of a JWKS (RFC 7517): `kty` RSA (`n`, `e`), EC (`crv` P-256 or P-384,
    /// `x`, `y`) or oct (`k`). `where` names it in errors and skips. A key of a kind, curve or
    /// algorithm DES does not verify, or one not meant for verifying (`use`, `key_ops`), is
    /// skipped; a key of a kind DES verifies that cannot be used (bad numbers, too weak, a private
    /// part published) is an error.
    static func jwk(_ jwk: [String: Any], where place: String) throws -> Loaded {
        func field(_ name: String) throws -> [UInt8] {
            guard let text = jwk[name] as? String, let bytes = Base64URL.decode(text), !bytes.isEmpty else {
                throw JSONWebKeyError(description: "\(place): '\(name)' is missing or not base64url")
            }
            return bytes
        }
        let kid = (jwk["kid"] as? String).map { " (kid '\(JWTVerifier.shown($0))')" } ?? ""
        if let use = jwk["use"] as? String, use != "sig" { return .skipped("\(place)\(kid): use '\(JWTVerifier.shown(use))', not sig") }
        if let ops = jwk["key_ops"] as? [Any], !ops.contains(where: { $0 as? String == "verify" }) {
            return .skipped("\(place)\(kid): key_ops has no 'verify'")
        }
        let id = jwk["kid"] as? String
        var algorithm: JWSAlgorithm?
        if let alg = jwk["alg"] as? String {
            guard let a = JWSAlgorithm(rawValue: alg) else { return .skipped("\(place)\(kid): alg '\(JWTVerifier.shown(alg))' is not one DES verifies") }
            algorithm = a
        }
        let kty = jwk["kty"] as? String
        if (kty == "RSA" || kty == "EC") && jwk["d"] != nil {
            throw JSONWebKeyError(description: "\(place)\(kid): holds a private key ('d'): a JWKS publishes public keys only; replace it, and the key")
        }
        switch kty {
        case "RSA":
            let (n, e) = (try field("n"), try field("e"))
            guard let key = cdes_jws_rsa_key(n, n.count, e, e.count) else {
                throw JSONWebKeyError(description: "\(place)\(kid): 'n' and 'e' make no RSA key")
            }
            return .key(try checked(VerificationKey(id: id, algorithm: algorithm, material: .rsa(key)), where: place))
        case "EC":
            let curves = ["P-256": ("prime256v1", 32), "P-384": ("secp384r1", 48)]
            guard let crv = jwk["crv"] as? String, let entry = curves[crv] else {
                return .skipped("\(place)\(kid): crv \((jwk["crv"] as? String).map { "'\(JWTVerifier.shown($0))'" } ?? "missing"): DES verifies P-256 and P-384")
            }
            let (curve, size) = entry
            let (x, y) = (try field("x"), try field("y"))
            guard x.count == size, y.count == size else {
                throw JSONWebKeyError(description: "\(place): x and y of a \(crv) key are \(size) bytes each")
            }
            let point = [0x04] + x + y
            guard let key = cdes_jws_ec_key(curve, point, point.count) else {
                throw JSONWebKeyError(description: "\(place): x and y are not a point of \(crv)")
            }
            return .key(VerificationKey(id: id, algorithm: algorithm, material: .ec(key, curve: curve)))
        case "oct":
            let secret = try field("k")
            guard secret.count >= minimumSecretBytes else {
                throw JSONWebKeyError(description: "\(place): an HMAC secret of \(secret.count) bytes is too short: use at least \(minimumSecretBytes)")
            }
            return .key(VerificationKey(id: id, algorithm: algorithm, material: .hmac(secret)))
        case let other:
            return .skipped("\(place)\(kid): kty \(other.map { "'\(JWTVerifier.shown($0))'" } ?? "missing"): DES verifies RSA, EC and oct keys")
        }
    }

    /// Every public key of PEM text (RSA, or EC on P-256 or P-384), in order; a file of none is an error.
    static func pemKeys(_ text: String, where place: String) throws -> [VerificationKey] {
        let begin = "-----BEGIN PUBLIC KEY-----"
        let blocks = text.components(separatedBy: begin).dropFirst().map { begin + $0 }
        guard !blocks.isEmpty else {
            throw JSONWebKeyError(description: "\(place): holds no PEM public key ('\(begin)')")
        }
        return try blocks.enumerated().map { i, block in try pem(block, where: blocks.count > 1 ? "\(place), key \(i + 1)" : place) }
    }

    /// A public key from PEM text (RSA, or EC on P-256 or P-384).
    static func pem(_ text: String, where place: String) throws -> VerificationKey {
        guard let key = text.withCString({ cdes_jws_pem_key($0, strlen($0)) }) else {
            throw JSONWebKeyError(description: "\(place): holds no PEM public key ('-----BEGIN PUBLIC KEY-----')")
        }
        switch cdes_jws_key_kind(key) {
        case 1:
            return try checked(VerificationKey(id: nil, algorithm: nil, material: .rsa(key)), where: place)
        case 2:
            var name = [CChar](repeating: 0, count: 64)
            let curve = cdes_jws_ec_group(key, &name, name.count) == 1 ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
            guard curve == "prime256v1" || curve == "secp384r1" else {
                cdes_jws_free_key(key)
                throw JSONWebKeyError(description: "\(place): an EC key on '\(curve)': DES verifies P-256 and P-384")
            }
            return VerificationKey(id: nil, algorithm: nil, material: .ec(key, curve: curve))
        default:
            cdes_jws_free_key(key)
            throw JSONWebKeyError(description: "\(place): neither an RSA nor an EC key")
        }
    }

    private static func checked(_ key: VerificationKey, where place: String) throws -> VerificationKey {
        if case .rsa(let k) = key.material {
            if cdes_jws_key_bits(k) > maximumRSABits {
                throw JSONWebKeyError(description: "\(place): an RSA key of \(cdes_jws_key_bits(k)) bits: DES verifies at most \(maximumRSABits)")
            }
            if cdes_jws_key_bits(k) < minimumRSABits {
                throw JSONWebKeyError(description: "\(place): an RSA key of \(cdes_jws_key_bits(k)) bits is too weak: use at least \(minimumRSABits)")
            }
            if cdes_jws_rsa_sane(k) != 1 {
                throw JSONWebKeyError(description: "\(place): not a usable RSA key (an even modulus, or a public exponent that is even or below 3)")
            }
        }
        return key
    }
}

/// Base64url without padding (RFC 7515 §2), decoded strictly.
enum Base64URL {
    /// The bytes of `text`; nil when it holds anything but the base64url alphabet, or padding.
    static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        var s = ""
        s.reserveCapacity(text.utf8.count + 3)
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                s.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "-"): s.append("+")
            case UInt8(ascii: "_"): s.append("/")
            default: return nil
            }
        }
        if s.utf8.count % 4 == 1 { return nil }
        let unpadded = s
        s += String(repeating: "=", count: (4 - s.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: s) else { return nil }
        // Canonical only: unused low bits of the last character must be zero (one token, one spelling).
        guard data.base64EncodedString().prefix(unpadded.utf8.count) == Substring(unpadded) else { return nil }
        return [UInt8](data)
    }
}
