/*
 * crypto.h - the crypto layer: keys, JOSE (JWK, JWS), CSRs, certificates,
 * base64url, digests and randomness, over BoringSSL or OpenSSL 3.
 *
 * This is the glue layer of DESIGN.md §6: nothing of the crypto library
 * leaks past it. Results are the project's codes (util/err.h); the library's
 * error queue is logged at debug level and cleared on every failure.
 *
 * Output buffers are always appended to, never reset, so callers can build
 * "header.payload.signature" in one buffer. On error the appended part is
 * undone (the buffer's length is what it was on entry).
 *
 * Every function is safe to call from several threads at once, with
 * different output buffers; a struct crypto_key is immutable once made and
 * may be shared between threads.
 */
#ifndef CF_ENGINE_CRYPTO_H
#define CF_ENGINE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define CRYPTO_SHA256_LEN 32

/* Bounds on untrusted input. */
#define CRYPTO_PEM_KEY_MAX ((size_t)64 * 1024)
#define CRYPTO_CHAIN_MAX_BYTES ((size_t)1024 * 1024)
#define CRYPTO_CHAIN_MAX_CERTS 10
#define CRYPTO_CSR_MAX_BYTES ((size_t)64 * 1024)

/* RFC 5280 §4.1.2.2 allows 20 octets; the slack admits the CAs that overrun. */
#define CRYPTO_SERIAL_MAX 32
#define CRYPTO_AKI_MAX 64
/* Let's Encrypt's limit on names in one certificate. */
#define CRYPTO_CERT_MAX_NAMES 100
#define CRYPTO_NAME_MAX 253
/* RFC 5280 upper bound ub-common-name: a longer first name is not the CN. */
#define CRYPTO_CN_MAX 64

/* Backend facts. */

/* crypto_backend_name returns "BoringSSL" or "OpenSSL" (static). */
const char *crypto_backend_name(void);

/*
 * crypto_backend_version returns the library's version text (static), for
 * BoringSSL with its BORINGSSL_API_VERSION.
 */
const char *crypto_backend_version(void);

/*
 * crypto_backend_check finds, with dladdr(), which shared object supplies
 * the libcrypto functions this layer calls at run time, and writes its path
 * to path (n bytes, truncated, NUL-terminated; path may be NULL if n is 0).
 * Returns 0 when that path contains CF_CRYPTO_LIB_HINT, the library the
 * build chose, or CF_EBACKEND when another libcrypto won the symbol clash of
 * DESIGN.md §6 (or the object cannot be found).
 */
int crypto_backend_check(char *path, size_t n);

/* base64url (RFC 4648 §5), without padding. */

/* crypto_b64url_encode appends base64url(data) without padding to out. */
void crypto_b64url_encode(struct buf *out, const void *data, size_t len);

/*
 * crypto_b64url_decode appends the len characters at in, decoded, to out.
 * Strict: only the URL-safe alphabet, no padding, no whitespace, no length
 * of 1 mod 4, and the unused low bits of the last character must be zero
 * (so every byte string has exactly one encoding). Returns 0 or CF_EPARSE.
 */
int crypto_b64url_decode(struct buf *out, const char *in, size_t len);

/* Digests and randomness. */

/* crypto_sha256 writes SHA-256(data) to out. Returns 0 or CF_ECRYPTO. */
int crypto_sha256(unsigned char out[CRYPTO_SHA256_LEN], const void *data, size_t len);

/*
 * crypto_hmac_sha256 writes HMAC-SHA256(key, data) to out (RFC 2104; used
 * for ACME external account binding and TSIG). Returns 0 or CF_ECRYPTO.
 */
int crypto_hmac_sha256(unsigned char out[CRYPTO_SHA256_LEN], const void *key, size_t key_len,
                       const void *data, size_t len);

/* crypto_random fills out with len bytes from the library's CSPRNG. Returns 0 or CF_ECRYPTO. */
int crypto_random(void *out, size_t len);

/* Keys. */

enum crypto_key_type {
    CRYPTO_KEY_EC_P256,
    CRYPTO_KEY_EC_P384,
    CRYPTO_KEY_RSA2048,
    CRYPTO_KEY_RSA3072,
    CRYPTO_KEY_RSA4096,
};

/* struct crypto_key is opaque: an EVP_PKEY and what was learnt about it. */
struct crypto_key;

/*
 * crypto_key_generate makes a new key pair of the given type into *out,
 * which the caller frees with crypto_key_free. Returns 0, CF_EUSAGE for an
 * unknown type, or CF_ECRYPTO.
 */
int crypto_key_generate(struct crypto_key **out, enum crypto_key_type type);

/* crypto_key_free frees key; NULL is allowed. */
void crypto_key_free(struct crypto_key *key);

/* crypto_key_type_of returns the type of key. */
enum crypto_key_type crypto_key_type_of(const struct crypto_key *key);

/*
 * crypto_key_type_parse maps "ec256", "ec384", "rsa2048", "rsa3072" and
 * "rsa4096" to *out. Returns 0 or CF_EPARSE.
 */
int crypto_key_type_parse(enum crypto_key_type *out, const char *s);

/* crypto_key_type_name returns the name crypto_key_type_parse accepts (static), or "unknown". */
const char *crypto_key_type_name(enum crypto_key_type type);

/*
 * crypto_key_to_pem appends the private key as unencrypted PKCS#8 PEM
 * ("BEGIN PRIVATE KEY") to out. Returns 0, CF_EUSAGE for a public-only key,
 * or CF_ECRYPTO.
 */
int crypto_key_to_pem(const struct crypto_key *key, struct buf *out);

/*
 * crypto_key_from_pem reads a private key from the len bytes at pem (PKCS#8,
 * or the traditional "EC PRIVATE KEY" and "RSA PRIVATE KEY" forms) into
 * *out. Only the types of enum crypto_key_type are accepted, and EC keys
 * must be on a named curve. Returns 0, CF_ETOOBIG above CRYPTO_PEM_KEY_MAX,
 * or CF_EPARSE for anything else that is not such a key (encrypted keys
 * included: there is no prompt).
 */
int crypto_key_from_pem(struct crypto_key **out, const char *pem, size_t len);

/*
 * crypto_key_from_rsa_public makes a public-only key from the JWK members
 * "n" and "e" (RFC 7518 §6.3.1, base64url, NUL-terminated), for verifying
 * JWS and hashing thumbprints. The modulus must be 2048, 3072 or 4096 bits.
 * Returns 0 or CF_EPARSE.
 */
int crypto_key_from_rsa_public(struct crypto_key **out, const char *n_b64url, const char *e_b64url);

/*
 * crypto_key_from_ec_public makes a public-only key from the JWK members
 * "crv" ("P-256" or "P-384"), "x" and "y" (RFC 7518 §6.2.1, base64url,
 * each exactly the field size). The point must be on the curve. Returns 0
 * or CF_EPARSE.
 */
int crypto_key_from_ec_public(struct crypto_key **out, const char *crv, const char *x_b64url,
                              const char *y_b64url);

/* JOSE (RFC 7515, 7517, 7518, 7638). */

/*
 * crypto_jwk_public appends the public JWK of key as a JSON object with
 * only the required members, in lexicographic order and without whitespace
 * (RFC 7638 §3.2), so the same bytes are the thumbprint input:
 * {"crv":"P-256","kty":"EC","x":"...","y":"..."} with x and y padded to
 * the field size, or {"e":"AQAB","kty":"RSA","n":"..."}.
 */
void crypto_jwk_public(const struct crypto_key *key, struct buf *out);

/*
 * crypto_jwk_thumbprint appends the RFC 7638 thumbprint of key, SHA-256,
 * base64url, to out. Returns 0 or CF_ECRYPTO.
 */
int crypto_jwk_thumbprint(const struct crypto_key *key, struct buf *out_b64url);

/* crypto_jws_alg returns "ES256", "ES384" or "RS256" (static) for key. */
const char *crypto_jws_alg(const struct crypto_key *key);

/*
 * crypto_jws_sign signs the JWS signing input (RFC 7515 §5.1,
 * "header.payload") with key and appends the base64url signature to
 * out_b64url: ES256/ES384 as r||s, each zero-padded to the field size
 * (RFC 7518 §3.4), RS256 as RSASSA-PKCS1-v1_5 with SHA-256. Returns 0,
 * CF_EUSAGE for a public-only key, or CF_ECRYPTO.
 */
int crypto_jws_sign(const struct crypto_key *key, struct buf *out_b64url, const void *signing_input,
                    size_t len);

/*
 * crypto_jws_verify checks the base64url JWS signature sig_b64url
 * (NUL-terminated) over the signing input with key's public half and
 * crypto_jws_alg(key). Returns 0 when it is valid, CF_EPARSE when it is not
 * base64url or not of the algorithm's size, CF_ECRYPTO when it does not
 * verify.
 */
int crypto_jws_verify(const struct crypto_key *key, const char *sig_b64url,
                      const void *signing_input, size_t len);

/* CSRs and certificates. */

/*
 * crypto_csr_new appends to out_der a DER PKCS#10 request signed with key
 * (SHA-256), whose subject is CN=names[0] when that is at most CRYPTO_CN_MAX
 * octets (else empty), and whose subjectAltName holds all n names as
 * dNSNames (wildcards such as "*.example.com" included). The names are
 * expected normalized (util/hostname.h); this only checks 1..253 printable
 * ASCII characters each. Returns 0, CF_EUSAGE for no names, CF_ETOOBIG
 * above CRYPTO_CERT_MAX_NAMES, CF_EHOSTNAME for a bad name, or CF_ECRYPTO.
 */
int crypto_csr_new(const struct crypto_key *key, struct buf *out_der, const char *const *names,
                   size_t n);

/*
 * struct crypto_cert_info is what the engine needs of an issued
 * certificate; it owns no memory.
 */
struct crypto_cert_info {
    /* The serial's DER content octets (a leading 0x00 when the high bit is set). */
    unsigned char serial[CRYPTO_SERIAL_MAX];
    size_t serial_len;
    /* Lower-case hex of serial[], NUL-terminated. */
    char serial_hex[2 * CRYPTO_SERIAL_MAX + 1];
    /* The authorityKeyIdentifier's keyIdentifier; aki_len is 0 without one. */
    unsigned char aki[CRYPTO_AKI_MAX];
    size_t aki_len;
    /* Validity, Unix seconds. */
    int64_t not_before;
    int64_t not_after;
    /* The subjectAltName dNSNames, in certificate order, NUL-terminated. */
    size_t n_names;
    char names[CRYPTO_CERT_MAX_NAMES][CRYPTO_NAME_MAX + 1];
};

/*
 * crypto_cert_parse_chain parses the PEM chain in the len bytes at pem (leaf
 * first, as ACME delivers it, RFC 8555 §7.4.2), fills *leaf (if not NULL)
 * from the first certificate and sets *n_certs (if not NULL) to the number
 * of certificates. Text outside the PEM blocks is ignored. Returns 0,
 * CF_ETOOBIG above CRYPTO_CHAIN_MAX_BYTES or CRYPTO_CHAIN_MAX_CERTS (or more
 * than CRYPTO_CERT_MAX_NAMES names, or a serial or key identifier over its
 * bound), or CF_EPARSE for no certificate or a block that does not parse.
 */
int crypto_cert_parse_chain(const char *pem, size_t len, struct crypto_cert_info *leaf,
                            size_t *n_certs);

/*
 * crypto_cert_matches_key returns 0 if the public key of the first
 * certificate in the PEM at pem (len bytes) is key's, CF_ECRYPTO if it is
 * another key, or the errors of crypto_cert_parse_chain.
 */
int crypto_cert_matches_key(const char *pem, size_t len, const struct crypto_key *key);

/*
 * crypto_cert_parse_chain_key is crypto_cert_parse_chain and
 * crypto_cert_matches_key in one parse of the chain: same returns and
 * *leaf, *n_certs as crypto_cert_parse_chain, and on success *key_matches
 * is 1 when the first certificate's public key is key's, else 0.
 */
int crypto_cert_parse_chain_key(const char *pem, size_t len, const struct crypto_key *key,
                                struct crypto_cert_info *leaf, size_t *n_certs, int *key_matches);

/*
 * crypto_ari_cert_id appends the ACME Renewal Information certificate
 * identifier (RFC 9773 §4.1) to out: base64url(AKI keyIdentifier) "."
 * base64url(serial DER content octets). Returns 0, or CF_EPARSE when the
 * certificate had no authority key identifier or serial.
 */
int crypto_ari_cert_id(const struct crypto_cert_info *info, struct buf *out);

/* For tests and the bench's mock CA. */

/*
 * crypto_self_signed_cert appends to out_pem a self-signed CA certificate
 * for key: subject and issuer CN=names[0] (if at most CRYPTO_CN_MAX octets),
 * the n names as dNSNames, a random serial, valid from now for days days,
 * basicConstraints CA:TRUE, subject and authority key identifiers, SHA-256.
 * Returns 0, the name errors of crypto_csr_new, CF_EUSAGE for days outside
 * 1..36500 or a public-only key, or CF_ECRYPTO.
 */
int crypto_self_signed_cert(const struct crypto_key *key, struct buf *out_pem,
                            const char *const *names, size_t n, int days);

/*
 * crypto_issue_from_csr appends to out_pem a leaf certificate for the DER
 * CSR at csr_der (csr_len bytes), issued by issuer_key and the first
 * certificate of the PEM at issuer_pem (issuer_pem_len bytes): the CSR's
 * signature must verify, its subjectAltName dNSNames are copied (subject
 * CN=first name if at most CRYPTO_CN_MAX octets), serial is the serial
 * (nonzero), valid from now for days days, CA:FALSE, serverAuth, authority
 * key identifier = the issuer's subject key identifier, SHA-256. Returns 0,
 * CF_ETOOBIG for a CSR over CRYPTO_CSR_MAX_BYTES, CF_EPARSE for a CSR that
 * does not parse or verify or has no dNSName, CF_EUSAGE for bad days or
 * serial or an issuer key that is not the issuer certificate's, or
 * CF_ECRYPTO.
 */
int crypto_issue_from_csr(const struct crypto_key *issuer_key, struct buf *out_pem,
                          const char *issuer_pem, size_t issuer_pem_len, const void *csr_der,
                          size_t csr_len, int days, uint64_t serial);

#endif
