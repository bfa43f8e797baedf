/*
 * key.c - keys (generation, PEM, JWK import) and JOSE: JWK, thumbprints,
 * JWS signatures.
 *
 * The public half of a key is read from its DER SubjectPublicKeyInfo
 * (i2d_PUBKEY) rather than through the key-type APIs, which differ between
 * BoringSSL (RSA_get0_key, EC_KEY_*) and OpenSSL 3 (EVP_PKEY_get_bn_param,
 * with the former deprecated); keys from a JWK are made the same way
 * backwards, through d2i_PUBKEY. Both libraries share those two functions.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto_internal.h"
#include "err.h"

/* Object identifiers, as DER contents (RFC 3279, RFC 5480, RFC 8017). */
static const unsigned char oid_rsa_encryption[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                   0x0d, 0x01, 0x01, 0x01};
static const unsigned char oid_ec_public_key[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const unsigned char oid_prime256v1[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_secp384r1[] = {0x2b, 0x81, 0x04, 0x00, 0x22};

/* The largest signature: RSA-4096, 512 octets; ECDSA DER is far below. */
#define SIG_MAX 512

static const char *const type_names[] = {
    [CRYPTO_KEY_EC_P256] = "ec256",   [CRYPTO_KEY_EC_P384] = "ec384",
    [CRYPTO_KEY_RSA2048] = "rsa2048", [CRYPTO_KEY_RSA3072] = "rsa3072",
    [CRYPTO_KEY_RSA4096] = "rsa4096",
};

static int type_is_ec(enum crypto_key_type type)
{
    return type == CRYPTO_KEY_EC_P256 || type == CRYPTO_KEY_EC_P384;
}

/* field_size returns the octets of an EC key's field elements (RFC 7518 §6.2.1.2). */
static size_t field_size(enum crypto_key_type type)
{
    return type == CRYPTO_KEY_EC_P384 ? 48 : 32;
}

static int oid_is(const unsigned char *oid, size_t len, const unsigned char *want, size_t want_len)
{
    return len == want_len && memcmp(oid, want, len) == 0;
}

/* strip_zeros skips the leading zero octets of a big-endian unsigned integer. */
static void strip_zeros(const unsigned char **p, size_t *len)
{
    while (*len > 0 && (*p)[0] == 0) {
        (*p)++;
        (*len)--;
    }
}

/* bit_length returns the bits of the big-endian unsigned integer at p (no leading zeros). */
static size_t bit_length(const unsigned char *p, size_t len)
{
    size_t bits = len * 8;
    for (unsigned char top = len ? p[0] : 0x80; !(top & 0x80); top <<= 1)
        bits--;
    return bits;
}

/*
 * spki_parse reads a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) for the
 * types this layer supports. It sets *type, the subjectPublicKey value
 * (bits, without the unused-bits octet), and a/b: x and y for EC (RFC 5480
 * §2.2, uncompressed point), n and e without leading zeros for RSA (RFC
 * 8017 §A.1.1). Returns 0 or CF_EPARSE.
 */
static int spki_parse(const unsigned char *der, size_t der_len, enum crypto_key_type *type,
                      const unsigned char **bits, size_t *bits_len, const unsigned char **a,
                      size_t *a_len, const unsigned char **b, size_t *b_len)
{
    const unsigned char *p = der, *end = der + der_len, *spki, *alg, *oid, *params, *key;
    size_t spki_len, alg_len, oid_len, params_len, key_len;
    int ret;

    ret = crypto_der_read(&p, end, CRYPTO_DER_SEQUENCE, &spki, &spki_len);
    if (ret < 0 || p != end)
        return CF_EPARSE;
    p = spki;
    end = spki + spki_len;
    if (crypto_der_read(&p, end, CRYPTO_DER_SEQUENCE, &alg, &alg_len) < 0 ||
        crypto_der_read(&p, end, CRYPTO_DER_BIT_STRING, &key, &key_len) < 0 || p != end)
        return CF_EPARSE;
    /* No unused bits: every key here is a whole number of octets. */
    if (key_len < 1 || key[0] != 0)
        return CF_EPARSE;
    key++;
    key_len--;
    *bits = key;
    *bits_len = key_len;

    p = alg;
    end = alg + alg_len;
    if (crypto_der_read(&p, end, CRYPTO_DER_OID, &oid, &oid_len) < 0)
        return CF_EPARSE;

    if (oid_is(oid, oid_len, oid_ec_public_key, sizeof(oid_ec_public_key))) {
        /* RFC 5480 §2.1.1: namedCurve only; explicit parameters are refused. */
        if (crypto_der_read(&p, end, CRYPTO_DER_OID, &params, &params_len) < 0 || p != end)
            return CF_EPARSE;
        if (oid_is(params, params_len, oid_prime256v1, sizeof(oid_prime256v1)))
            *type = CRYPTO_KEY_EC_P256;
        else if (oid_is(params, params_len, oid_secp384r1, sizeof(oid_secp384r1)))
            *type = CRYPTO_KEY_EC_P384;
        else
            return CF_EPARSE;
        size_t fs = field_size(*type);
        if (key_len != 1 + 2 * fs || key[0] != 0x04)
            return CF_EPARSE;
        *a = key + 1;
        *a_len = fs;
        *b = key + 1 + fs;
        *b_len = fs;
        return 0;
    }

    if (!oid_is(oid, oid_len, oid_rsa_encryption, sizeof(oid_rsa_encryption)))
        return CF_EPARSE;
    /* RFC 3279 §2.3.1: the parameters are NULL (tolerate their absence). */
    if (p != end && (crypto_der_read(&p, end, CRYPTO_DER_NULL, &params, &params_len) < 0 ||
                     params_len != 0 || p != end))
        return CF_EPARSE;
    const unsigned char *rsa, *n, *e;
    size_t rsa_len, n_len, e_len;
    p = key;
    end = key + key_len;
    if (crypto_der_read(&p, end, CRYPTO_DER_SEQUENCE, &rsa, &rsa_len) < 0 || p != end)
        return CF_EPARSE;
    p = rsa;
    end = rsa + rsa_len;
    if (crypto_der_read(&p, end, CRYPTO_DER_INTEGER, &n, &n_len) < 0 ||
        crypto_der_read(&p, end, CRYPTO_DER_INTEGER, &e, &e_len) < 0 || p != end)
        return CF_EPARSE;
    /* Both are positive: a set high bit would make them negative. */
    if (n_len == 0 || e_len == 0 || (n[0] & 0x80) || (e[0] & 0x80))
        return CF_EPARSE;
    strip_zeros(&n, &n_len);
    strip_zeros(&e, &e_len);
    if (e_len == 0)
        return CF_EPARSE;
    switch (bit_length(n, n_len)) {
    case 2048:
        *type = CRYPTO_KEY_RSA2048;
        break;
    case 3072:
        *type = CRYPTO_KEY_RSA3072;
        break;
    case 4096:
        *type = CRYPTO_KEY_RSA4096;
        break;
    default:
        return CF_EPARSE;
    }
    *a = e;
    *a_len = e_len;
    *b = n;
    *b_len = n_len;
    return 0;
}

/* jwk_member appends "name":"base64url(data)" to out. */
static void jwk_member(struct buf *out, const char *name, const unsigned char *data, size_t len)
{
    buf_printf(out, "\"%s\":\"", name);
    crypto_b64url_encode(out, data, len);
    buf_putc(out, '"');
}

int crypto_key_wrap(struct crypto_key **out, EVP_PKEY *pkey, int has_private)
{
    struct crypto_key *key = xcalloc(1, sizeof(*key));
    unsigned char *der = NULL;
    const unsigned char *bits, *a, *b;
    size_t bits_len, a_len, b_len;
    unsigned int id_len = 0;
    int der_len, ret;

    key->pkey = pkey;
    key->has_private = has_private;
    buf_init(&key->spki);
    buf_init(&key->jwk);
    der_len = i2d_PUBKEY(pkey, &der);
    if (der_len <= 0) {
        ret = crypto_fail("i2d_PUBKEY", CF_ECRYPTO);
        goto out_free_key;
    }
    buf_append(&key->spki, der, (size_t)der_len);
    ret = spki_parse((const unsigned char *)key->spki.data, key->spki.len, &key->type, &bits,
                     &bits_len, &a, &a_len, &b, &b_len);
    if (ret < 0)
        goto out_free_key;

    /* RFC 7638 §3.2: the required members only, in lexicographic order. */
    if (type_is_ec(key->type)) {
        buf_printf(&key->jwk, "{\"crv\":\"%s\",\"kty\":\"EC\",",
                   key->type == CRYPTO_KEY_EC_P256 ? "P-256" : "P-384");
        jwk_member(&key->jwk, "x", a, a_len);
        buf_putc(&key->jwk, ',');
        jwk_member(&key->jwk, "y", b, b_len);
    } else {
        buf_putc(&key->jwk, '{');
        jwk_member(&key->jwk, "e", a, a_len);
        buf_puts(&key->jwk, ",\"kty\":\"RSA\",");
        jwk_member(&key->jwk, "n", b, b_len);
    }
    buf_putc(&key->jwk, '}');

    if (EVP_Digest(bits, bits_len, key->key_id, &id_len, EVP_sha1(), NULL) != 1 ||
        id_len != CRYPTO_KEY_ID_LEN) {
        ret = crypto_fail("key_id", CF_ECRYPTO);
        goto out_free_key;
    }
    *out = key;
    key = NULL;
out_free_key:
    OPENSSL_free(der);
    crypto_key_free(key);
    return ret;
}

int crypto_key_generate(struct crypto_key **out, enum crypto_key_type type)
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    int ret = 0;

    switch (type) {
    case CRYPTO_KEY_EC_P256:
    case CRYPTO_KEY_EC_P384:
        ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
        if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 ||
            EVP_PKEY_CTX_set_ec_paramgen_curve_nid(
                ctx, type == CRYPTO_KEY_EC_P256 ? NID_X9_62_prime256v1 : NID_secp384r1) != 1) {
            ret = crypto_fail("ec_keygen_init", CF_ECRYPTO);
            goto out_free_ctx;
        }
        break;
    case CRYPTO_KEY_RSA2048:
    case CRYPTO_KEY_RSA3072:
    case CRYPTO_KEY_RSA4096:
        /* The public exponent is the libraries' default, 65537. */
        ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
        if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 ||
            EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, type == CRYPTO_KEY_RSA2048   ? 2048
                                                  : type == CRYPTO_KEY_RSA3072 ? 3072
                                                                               : 4096) != 1) {
            ret = crypto_fail("rsa_keygen_init", CF_ECRYPTO);
            goto out_free_ctx;
        }
        break;
    default:
        ret = CF_EUSAGE;
        goto out_free_ctx;
    }
    if (EVP_PKEY_keygen(ctx, &pkey) != 1) {
        ret = crypto_fail("keygen", CF_ECRYPTO);
        goto out_free_ctx;
    }
    ret = crypto_key_wrap(out, pkey, 1);
out_free_ctx:
    EVP_PKEY_CTX_free(ctx);
    return ret;
}

void crypto_key_free(struct crypto_key *key)
{
    if (!key)
        return;
    EVP_PKEY_free(key->pkey);
    buf_cleanup(&key->spki);
    buf_cleanup(&key->jwk);
    free(key);
}

enum crypto_key_type crypto_key_type_of(const struct crypto_key *key)
{
    return key->type;
}

int crypto_key_type_parse(enum crypto_key_type *out, const char *s)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *out = (enum crypto_key_type)i;
            return 0;
        }
    }
    return CF_EPARSE;
}

const char *crypto_key_type_name(enum crypto_key_type type)
{
    if ((size_t)type >= sizeof(type_names) / sizeof(type_names[0]))
        return "unknown";
    return type_names[type];
}

int crypto_key_to_pem(const struct crypto_key *key, struct buf *out)
{
    BIO *bio = NULL;
    char *data = NULL;
    long len;
    int ret = 0;

    if (!key->has_private) {
        ret = CF_EUSAGE;
        goto out_free_bio;
    }
    bio = BIO_new(BIO_s_mem());
    if (!bio || PEM_write_bio_PKCS8PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        ret = crypto_fail("key_to_pem", CF_ECRYPTO);
        goto out_free_bio;
    }
    len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || !data) {
        ret = crypto_fail("key_to_pem", CF_ECRYPTO);
        goto out_free_bio;
    }
    buf_append(out, data, (size_t)len);
    /* The memory BIO does not wipe what it held: the private key. */
    OPENSSL_cleanse(data, (size_t)len);
out_free_bio:
    BIO_free(bio);
    return ret;
}

/*
 * no_password is the PEM password callback: it refuses, so an encrypted key
 * fails to load instead of OpenSSL prompting on the terminal.
 */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int crypto_key_from_pem(struct crypto_key **out, const char *pem, size_t len)
{
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    int ret = 0;

    if (len > CRYPTO_PEM_KEY_MAX) {
        ret = CF_ETOOBIG;
        goto out_free_bio;
    }
    if (!pem || len == 0) {
        ret = CF_EPARSE;
        goto out_free_bio;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        ret = crypto_fail("key_from_pem", CF_ECRYPTO);
        goto out_free_bio;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
    if (!pkey) {
        ret = crypto_fail("key_from_pem", CF_EPARSE);
        goto out_free_bio;
    }
    ret = crypto_key_wrap(out, pkey, 1);
out_free_bio:
    BIO_free(bio);
    return ret;
}

/*
 * key_from_spki makes a public-only key from the DER SubjectPublicKeyInfo
 * in spki. The library checks the key (for EC, that the point is on the
 * curve). Returns 0 or CF_EPARSE.
 */
static int key_from_spki(struct crypto_key **out, const struct buf *spki)
{
    const unsigned char *p = (const unsigned char *)spki->data;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)spki->len);
    int ret;

    if (!pkey) {
        ret = crypto_fail("d2i_PUBKEY", CF_EPARSE);
        goto out_free_pkey;
    }
    /* Our own encoding: the library must have read all of it. */
    if (p != (const unsigned char *)spki->data + spki->len) {
        ret = CF_EPARSE;
        goto out_free_pkey;
    }
    /* crypto_key_wrap takes pkey in every case. */
    ret = crypto_key_wrap(out, pkey, 0);
    pkey = NULL;
    if (ret == CF_ECRYPTO)
        ret = CF_EPARSE;
out_free_pkey:
    EVP_PKEY_free(pkey);
    return ret;
}

/* der_put_uint appends an unsigned big-endian integer as a DER INTEGER. */
static void der_put_uint(struct buf *out, const unsigned char *v, size_t len)
{
    struct buf tmp;

    buf_init(&tmp);
    /* X.690 §8.3: a leading zero octet keeps a set high bit from meaning negative. */
    if (len == 0 || (v[0] & 0x80))
        buf_putc(&tmp, 0);
    buf_append(&tmp, v, len);
    crypto_der_put(out, CRYPTO_DER_INTEGER, tmp.data, tmp.len);
    buf_cleanup(&tmp);
}

/* spki_wrap appends SEQUENCE { algorithm, BIT STRING { 0 unused bits, key } } to out. */
static void spki_wrap(struct buf *out, const struct buf *alg, const struct buf *key)
{
    struct buf inner, bits;

    buf_init(&inner);
    buf_init(&bits);
    buf_putc(&bits, 0);
    buf_append(&bits, key->data, key->len);
    crypto_der_put(&inner, CRYPTO_DER_SEQUENCE, alg->data, alg->len);
    crypto_der_put(&inner, CRYPTO_DER_BIT_STRING, bits.data, bits.len);
    crypto_der_put(out, CRYPTO_DER_SEQUENCE, inner.data, inner.len);
    buf_cleanup(&bits);
    buf_cleanup(&inner);
}

int crypto_key_from_rsa_public(struct crypto_key **out, const char *n_b64url, const char *e_b64url)
{
    struct buf n, e, alg, rsa, seq, spki;
    const unsigned char *np, *ep;
    size_t n_len, e_len;
    int ret;

    buf_init(&n);
    buf_init(&e);
    buf_init(&alg);
    buf_init(&rsa);
    buf_init(&seq);
    buf_init(&spki);
    ret = crypto_b64url_decode(&n, n_b64url, strlen(n_b64url));
    if (ret < 0)
        goto out_free_bufs;
    ret = crypto_b64url_decode(&e, e_b64url, strlen(e_b64url));
    if (ret < 0)
        goto out_free_bufs;
    np = (const unsigned char *)n.data;
    n_len = n.len;
    ep = (const unsigned char *)e.data;
    e_len = e.len;
    strip_zeros(&np, &n_len);
    strip_zeros(&ep, &e_len);
    /* The exact size is checked again by crypto_key_wrap; this bounds the work. */
    if (n_len == 0 || n_len > 512 || e_len == 0 || e_len > 8) {
        ret = CF_EPARSE;
        goto out_free_bufs;
    }
    /* RFC 3279 §2.3.1: rsaEncryption with NULL parameters, RSAPublicKey { n, e }. */
    crypto_der_put(&alg, CRYPTO_DER_OID, oid_rsa_encryption, sizeof(oid_rsa_encryption));
    crypto_der_put(&alg, CRYPTO_DER_NULL, NULL, 0);
    der_put_uint(&seq, np, n_len);
    der_put_uint(&seq, ep, e_len);
    crypto_der_put(&rsa, CRYPTO_DER_SEQUENCE, seq.data, seq.len);
    spki_wrap(&spki, &alg, &rsa);
    ret = key_from_spki(out, &spki);
out_free_bufs:
    buf_cleanup(&n);
    buf_cleanup(&e);
    buf_cleanup(&alg);
    buf_cleanup(&rsa);
    buf_cleanup(&seq);
    buf_cleanup(&spki);
    return ret;
}

int crypto_key_from_ec_public(struct crypto_key **out, const char *crv, const char *x_b64url,
                              const char *y_b64url)
{
    struct buf point, alg, spki;
    enum crypto_key_type type;
    size_t fs, before;
    int ret;

    buf_init(&point);
    buf_init(&alg);
    buf_init(&spki);
    if (strcmp(crv, "P-256") == 0) {
        type = CRYPTO_KEY_EC_P256;
    } else if (strcmp(crv, "P-384") == 0) {
        type = CRYPTO_KEY_EC_P384;
    } else {
        ret = CF_EPARSE;
        goto out_free_bufs;
    }
    fs = field_size(type);
    /* RFC 5480 §2.2: the uncompressed point 04 || x || y. */
    buf_putc(&point, 0x04);
    before = point.len;
    ret = crypto_b64url_decode(&point, x_b64url, strlen(x_b64url));
    if (ret < 0)
        goto out_free_bufs;
    /* RFC 7518 §6.2.1.2: x and y are exactly the field size, zero-padded. */
    if (point.len - before != fs) {
        ret = CF_EPARSE;
        goto out_free_bufs;
    }
    before = point.len;
    ret = crypto_b64url_decode(&point, y_b64url, strlen(y_b64url));
    if (ret < 0)
        goto out_free_bufs;
    if (point.len - before != fs) {
        ret = CF_EPARSE;
        goto out_free_bufs;
    }
    crypto_der_put(&alg, CRYPTO_DER_OID, oid_ec_public_key, sizeof(oid_ec_public_key));
    if (type == CRYPTO_KEY_EC_P256)
        crypto_der_put(&alg, CRYPTO_DER_OID, oid_prime256v1, sizeof(oid_prime256v1));
    else
        crypto_der_put(&alg, CRYPTO_DER_OID, oid_secp384r1, sizeof(oid_secp384r1));
    spki_wrap(&spki, &alg, &point);
    ret = key_from_spki(out, &spki);
out_free_bufs:
    buf_cleanup(&point);
    buf_cleanup(&alg);
    buf_cleanup(&spki);
    return ret;
}

void crypto_jwk_public(const struct crypto_key *key, struct buf *out)
{
    buf_append(out, key->jwk.data, key->jwk.len);
}

int crypto_jwk_thumbprint(const struct crypto_key *key, struct buf *out_b64url)
{
    unsigned char digest[CRYPTO_SHA256_LEN];
    int ret;

    /* RFC 7638 §3: the hash of the UTF-8 of the JWK with only the required members. */
    ret = crypto_sha256(digest, key->jwk.data, key->jwk.len);
    if (ret < 0)
        return ret;
    crypto_b64url_encode(out_b64url, digest, sizeof(digest));
    return 0;
}

const char *crypto_jws_alg(const struct crypto_key *key)
{
    switch (key->type) {
    case CRYPTO_KEY_EC_P256:
        return "ES256";
    case CRYPTO_KEY_EC_P384:
        return "ES384";
    default:
        return "RS256";
    }
}

/* jws_md returns the digest of key's JWS algorithm (RFC 7518 §3.1). */
static const EVP_MD *jws_md(const struct crypto_key *key)
{
    return key->type == CRYPTO_KEY_EC_P384 ? EVP_sha384() : EVP_sha256();
}

/*
 * ecdsa_der_to_raw writes the DER ECDSA-Sig-Value at der as r || s, each
 * zero-padded to fs octets, into raw (2 * fs bytes). RFC 7518 §3.4. Returns
 * 0 or CF_ECRYPTO.
 */
static int ecdsa_der_to_raw(unsigned char *raw, size_t fs, const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    const BIGNUM *r, *s;
    int ret = 0;

    if (!sig) {
        ret = crypto_fail("d2i_ECDSA_SIG", CF_ECRYPTO);
        goto out_free_sig;
    }
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, raw, (int)fs) != (int)fs || BN_bn2binpad(s, raw + fs, (int)fs) != (int)fs)
        ret = crypto_fail("ecdsa_der_to_raw", CF_ECRYPTO);
out_free_sig:
    ECDSA_SIG_free(sig);
    return ret;
}

/*
 * ecdsa_raw_to_der appends to der the DER ECDSA-Sig-Value of the r || s
 * signature raw (2 * fs bytes). Returns 0 or CF_ECRYPTO.
 */
static int ecdsa_raw_to_der(struct buf *der, const unsigned char *raw, size_t fs)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)fs, NULL);
    BIGNUM *s = BN_bin2bn(raw + fs, (int)fs, NULL);
    unsigned char *out = NULL;
    int len, ret = 0;

    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ret = crypto_fail("ecdsa_raw_to_der", CF_ECRYPTO);
        goto out_free_sig;
    }
    /* ECDSA_SIG_set0 took r and s. */
    len = i2d_ECDSA_SIG(sig, &out);
    if (len <= 0) {
        ret = crypto_fail("i2d_ECDSA_SIG", CF_ECRYPTO);
        goto out_free_sig;
    }
    buf_append(der, out, (size_t)len);
    OPENSSL_free(out);
out_free_sig:
    ECDSA_SIG_free(sig);
    return ret;
}

int crypto_jws_sign(const struct crypto_key *key, struct buf *out_b64url, const void *signing_input,
                    size_t len)
{
    EVP_MD_CTX *ctx = NULL;
    unsigned char sig[SIG_MAX], raw[2 * 48];
    size_t sig_len = sizeof(sig);
    int ret = 0;

    if (!key->has_private) {
        ret = CF_EUSAGE;
        goto out_free_ctx;
    }
    if (EVP_PKEY_size(key->pkey) <= 0 || (size_t)EVP_PKEY_size(key->pkey) > sizeof(sig)) {
        ret = CF_ECRYPTO;
        goto out_free_ctx;
    }
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestSignInit(ctx, NULL, jws_md(key), NULL, key->pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &sig_len, signing_input, len) != 1) {
        ret = crypto_fail("jws_sign", CF_ECRYPTO);
        goto out_free_ctx;
    }
    if (type_is_ec(key->type)) {
        size_t fs = field_size(key->type);
        ret = ecdsa_der_to_raw(raw, fs, sig, sig_len);
        if (ret < 0)
            goto out_free_ctx;
        crypto_b64url_encode(out_b64url, raw, 2 * fs);
    } else {
        /* RFC 7518 §3.3: RSASSA-PKCS1-v1_5, the libraries' default RSA padding. */
        crypto_b64url_encode(out_b64url, sig, sig_len);
    }
out_free_ctx:
    EVP_MD_CTX_free(ctx);
    return ret;
}

int crypto_jws_verify(const struct crypto_key *key, const char *sig_b64url,
                      const void *signing_input, size_t len)
{
    EVP_MD_CTX *ctx = NULL;
    struct buf raw, der;
    const struct buf *sig;
    int ret;

    buf_init(&raw);
    buf_init(&der);
    ret = crypto_b64url_decode(&raw, sig_b64url, strlen(sig_b64url));
    if (ret < 0)
        goto out_free;
    if (type_is_ec(key->type)) {
        size_t fs = field_size(key->type);
        /* RFC 7518 §3.4: exactly 2 * field size octets; DER is not accepted. */
        if (raw.len != 2 * fs) {
            ret = CF_EPARSE;
            goto out_free;
        }
        ret = ecdsa_raw_to_der(&der, (const unsigned char *)raw.data, fs);
        if (ret < 0)
            goto out_free;
        sig = &der;
    } else {
        if (raw.len != (size_t)EVP_PKEY_size(key->pkey)) {
            ret = CF_EPARSE;
            goto out_free;
        }
        sig = &raw;
    }
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestVerifyInit(ctx, NULL, jws_md(key), NULL, key->pkey) != 1 ||
        EVP_DigestVerify(ctx, (const unsigned char *)sig->data, sig->len, signing_input, len) !=
            1) {
        ret = crypto_fail("jws_verify", CF_ECRYPTO);
        goto out_free;
    }
out_free:
    EVP_MD_CTX_free(ctx);
    buf_cleanup(&raw);
    buf_cleanup(&der);
    return ret;
}
