/*
 * crypto_internal.h - what the crypto layer's files share; not for callers.
 */
#ifndef CF_ENGINE_CRYPTO_INTERNAL_H
#define CF_ENGINE_CRYPTO_INTERNAL_H

#include <stddef.h>

#include <openssl/evp.h>

#include "buf.h"
#include "crypto.h"

/* DER tags this layer reads and writes. */
#define CRYPTO_DER_INTEGER 0x02
#define CRYPTO_DER_BIT_STRING 0x03
#define CRYPTO_DER_NULL 0x05
#define CRYPTO_DER_OID 0x06
#define CRYPTO_DER_SEQUENCE 0x30

/* The SHA-1 key identifier of RFC 5280 §4.2.1.2, method (1). */
#define CRYPTO_KEY_ID_LEN 20

/*
 * struct crypto_key: everything is computed once when the key is made, and
 * never changed after, so a key can be shared between threads.
 */
struct crypto_key {
    EVP_PKEY *pkey;
    enum crypto_key_type type;
    /* 0 for keys made from a JWK: they can verify, not sign. */
    int has_private;
    /* The DER SubjectPublicKeyInfo, as the library encodes it. */
    struct buf spki;
    /* The public JWK with the RFC 7638 members in order, no whitespace. */
    struct buf jwk;
    /* SHA-1 of the subjectPublicKey BIT STRING's value. */
    unsigned char key_id[CRYPTO_KEY_ID_LEN];
};

/*
 * crypto_fail logs the first error queued by the crypto library at debug
 * level, tagged with where, clears the queue (so no stale error is blamed
 * on a later call on this thread) and returns code.
 */
int crypto_fail(const char *where, int code);

/*
 * crypto_der_read reads one DER element with the one-byte tag from *p,
 * bounded by end: sets *val and *len to its contents and advances *p past
 * it. Only definite lengths up to four length octets are accepted. Returns 0
 * or CF_EPARSE.
 */
int crypto_der_read(const unsigned char **p, const unsigned char *end, unsigned tag,
                    const unsigned char **val, size_t *len);

/* crypto_der_put appends the DER element tag, length, contents (len bytes) to out. */
void crypto_der_put(struct buf *out, unsigned tag, const void *contents, size_t len);

/*
 * crypto_key_wrap makes *out from pkey, whose reference it takes in every
 * case (on error pkey is freed). It reads the key's SubjectPublicKeyInfo to
 * learn its type, so only the types of enum crypto_key_type on named curves
 * with uncompressed points are accepted. Returns 0, CF_EPARSE for another
 * kind of key, or CF_ECRYPTO.
 */
int crypto_key_wrap(struct crypto_key **out, EVP_PKEY *pkey, int has_private);

#endif
