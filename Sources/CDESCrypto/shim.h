// The slice of OpenSSL's libcrypto that DES uses: SHA-256 (one-shot and streaming), HMAC-SHA-256 (S3 signatures); jws.h: JWT signatures.
#ifndef CDESCRYPTO_SHIM_H
#define CDESCRYPTO_SHIM_H
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#endif
