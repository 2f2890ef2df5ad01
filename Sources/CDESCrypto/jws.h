// Verifying JSON Web Signatures with OpenSSL 3's libcrypto: public keys built from a JWK's
// numbers or read from PEM, and one verification call for RSA (PKCS #1 v1.5) and ECDSA.
#ifndef CDESCRYPTO_JWS_H
#define CDESCRYPTO_JWS_H
#include <openssl/bn.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <string.h>

/// An RSA public key from its modulus and exponent (big-endian bytes); NULL when they make none.
/// (cdes_jws_rsa_sane then says whether it may be used.)
static inline EVP_PKEY *cdes_jws_rsa_key(const unsigned char *n, size_t n_len, const unsigned char *e, size_t e_len) {
    EVP_PKEY *key = NULL;
    BIGNUM *bn_n = BN_bin2bn(n, (int)n_len, NULL);
    BIGNUM *bn_e = BN_bin2bn(e, (int)e_len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n)
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) && (params = OSSL_PARAM_BLD_to_param(bld)) != NULL
        && (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) != NULL && EVP_PKEY_fromdata_init(ctx) > 0) {
        if (EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return key;
}

/// An EC public key on the named group ("prime256v1", "secp384r1") from its uncompressed point
/// (0x04 || x || y); NULL when the point is not on the curve.
static inline EVP_PKEY *cdes_jws_ec_key(const char *group, const unsigned char *point, size_t point_len) {
    EVP_PKEY *key = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0)
        && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len)
        && (params = OSSL_PARAM_BLD_to_param(bld)) != NULL && (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) != NULL
        && EVP_PKEY_fromdata_init(ctx) > 0) {
        if (EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    if (key) {
        // fromdata does not check that the point is on the curve: do.
        EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
        int ok = check && EVP_PKEY_public_check(check) == 1;
        EVP_PKEY_CTX_free(check);
        if (!ok) { EVP_PKEY_free(key); key = NULL; }
    }
    return key;
}

/// A public key from PEM text (`-----BEGIN PUBLIC KEY-----`); NULL when there is none.
static inline EVP_PKEY *cdes_jws_pem_key(const char *pem, size_t len) {
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) return NULL;
    EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return key;
}

/// 1 RSA, 2 EC, 0 anything else.
static inline int cdes_jws_key_kind(const EVP_PKEY *key) {
    int id = EVP_PKEY_get_base_id(key);
    return id == EVP_PKEY_RSA ? 1 : id == EVP_PKEY_EC ? 2 : 0;
}

/// Whether an RSA key's modulus is odd and its public exponent odd, at least 3 and below the
/// modulus (1 yes, 0 no): an exponent of 1 would let anyone forge signatures.
static inline int cdes_jws_rsa_sane(const EVP_PKEY *key) {
    BIGNUM *n = NULL, *e = NULL, *three = BN_new();
    int ok = three && BN_set_word(three, 3) && EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) == 1
        && EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1 && BN_is_odd(n) && BN_is_odd(e) && BN_cmp(e, three) >= 0 && BN_cmp(e, n) < 0;
    BN_free(n);
    BN_free(e);
    BN_free(three);
    return ok ? 1 : 0;
}

/// The key's size in bits.
static inline int cdes_jws_key_bits(const EVP_PKEY *key) { return EVP_PKEY_get_bits(key); }

/// An EC key's group name ("prime256v1", "secp384r1") into `out`; 0 when it has none.
static inline int cdes_jws_ec_group(const EVP_PKEY *key, char *out, size_t out_len) {
    size_t len = 0;
    return EVP_PKEY_get_group_name(key, out, out_len, &len) == 1 ? 1 : 0;
}

/// Frees a key.
static inline void cdes_jws_free_key(EVP_PKEY *key) { EVP_PKEY_free(key); }

static inline const EVP_MD *cdes_jws_digest(int bits) {
    return bits == 256 ? EVP_sha256() : bits == 384 ? EVP_sha384() : bits == 512 ? EVP_sha512() : NULL;
}

/// Whether `sig` signs `data` under `key` with SHA-`digest_bits`. `ecdsa_half` > 0: the signature
/// is JWS's raw r || s of that many bytes each (turned into DER for OpenSSL); 0: RSA PKCS #1 v1.5.
/// 1 valid, 0 not.
static inline int cdes_jws_verify(EVP_PKEY *key, int digest_bits, size_t ecdsa_half, const unsigned char *data, size_t data_len,
                                  const unsigned char *sig, size_t sig_len) {
    const EVP_MD *md = cdes_jws_digest(digest_bits);
    if (!md) return 0;
    unsigned char *der = NULL;
    const unsigned char *checked = sig;
    size_t checked_len = sig_len;
    if (ecdsa_half > 0) {
        if (sig_len != 2 * ecdsa_half) return 0;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)ecdsa_half, NULL);
        BIGNUM *s = BN_bin2bn(sig + ecdsa_half, (int)ecdsa_half, NULL);
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(s);
            return 0;
        }
        int der_len = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (der_len <= 0) return 0;
        checked = der;
        checked_len = (size_t)der_len;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1
        && EVP_DigestVerify(ctx, checked, checked_len, data, data_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok ? 1 : 0;
}

/// HMAC-SHA-`digest_bits` of `data` under `secret` into `out` (64 bytes at least); its length, 0 on failure.
static inline unsigned int cdes_jws_hmac(int digest_bits, const unsigned char *secret, size_t secret_len, const unsigned char *data,
                                         size_t data_len, unsigned char *out) {
    const EVP_MD *md = cdes_jws_digest(digest_bits);
    unsigned int len = 0;
    if (!md || !HMAC(md, secret, (int)secret_len, data, data_len, out, &len)) return 0;
    return len;
}
#endif
