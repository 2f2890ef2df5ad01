// The slice of OpenSSL's libcrypto that DES uses: SHA-256 (one-shot and streaming), HMAC-SHA-256 (S3 signatures); jws.h: JWT signatures.
#ifndef CDESCRYPTO_SHIM_H
#define CDESCRYPTO_SHIM_H
// The low-level SHA-256 calls below are deprecated in OpenSSL 3 in favour of EVP, and kept: they
// are the ones that hash without allocating.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>

/// The SHA-256 of `count` bytes at `data` into `out` (32 bytes), with its context on the stack.
/// OpenSSL 3's one-shot SHA256() looks the algorithm up and allocates a context on every call,
/// which costs several times the hashing of a short input (a DES name's shard, a small body); the
/// low-level calls use the same accelerated code (SHA-NI where the processor has it).
static inline void cdes_sha256(const void *data, size_t count, unsigned char *out) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, data, count);
    SHA256_Final(out, &context);
}
#endif
