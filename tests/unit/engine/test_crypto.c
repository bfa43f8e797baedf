/*
 * test_crypto.c - unit tests of engine/crypto: base64url, digests, keys,
 * JOSE, CSRs and certificates, against published vectors where there are
 * some and against the crypto library itself (independently of the code
 * under test) where there are none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "crypto.h"
#include "err.h"

/* Keys made once: RSA generation is slow, under valgrind especially. */
static struct crypto_key *g_ec256, *g_ec384, *g_rsa;

static int group_setup(void **state)
{
    (void)state;
    if (crypto_key_generate(&g_ec256, CRYPTO_KEY_EC_P256) != 0 ||
        crypto_key_generate(&g_ec384, CRYPTO_KEY_EC_P384) != 0 ||
        crypto_key_generate(&g_rsa, CRYPTO_KEY_RSA2048) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    crypto_key_free(g_ec256);
    crypto_key_free(g_ec384);
    crypto_key_free(g_rsa);
    return 0;
}

/* b64 encodes len bytes into a fresh string the caller frees. */
static char *b64(const void *data, size_t len)
{
    struct buf b;
    buf_init(&b);
    crypto_b64url_encode(&b, data, len);
    assert_non_null(b.data);
    return b.data;
}

/* unb64 decodes s, which must be valid, into *out (caller cleans up). */
static void unb64(struct buf *out, const char *s)
{
    buf_init(out);
    assert_int_equal(crypto_b64url_decode(out, s, strlen(s)), 0);
}

/* json_member copies the string value of member name in a flat JSON object into out. */
static void json_member(const char *json, const char *name, char *out, size_t n)
{
    char key[64];
    snprintf(key, sizeof(key), "\"%s\":\"", name);
    const char *p = strstr(json, key);
    assert_non_null(p);
    p += strlen(key);
    const char *end = strchr(p, '"');
    assert_non_null(end);
    assert_true((size_t)(end - p) < n);
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
}

/* evp_of loads the private key of key into an EVP_PKEY through its PEM, not the code under test. */
static EVP_PKEY *evp_of(const struct crypto_key *key)
{
    struct buf pem;
    buf_init(&pem);
    assert_int_equal(crypto_key_to_pem(key, &pem), 0);
    BIO *bio = BIO_new_mem_buf(pem.data, (int)pem.len);
    assert_non_null(bio);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    assert_non_null(pkey);
    BIO_free(bio);
    OPENSSL_cleanse(pem.data, pem.len);
    buf_cleanup(&pem);
    return pkey;
}

/* RFC 4648 §10, in the URL-safe alphabet and without padding. */
static void test_b64url_vectors(void **state)
{
    static const struct {
        const char *in, *out;
    } v[] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *enc = b64(v[i].in, strlen(v[i].in));
        assert_string_equal(enc, v[i].out);
        free(enc);
        struct buf dec;
        unb64(&dec, v[i].out);
        assert_int_equal(dec.len, strlen(v[i].in));
        assert_memory_equal(dec.data, v[i].in, dec.len);
        buf_cleanup(&dec);
    }
    /* The two characters that differ from §4: 62 is '-' and 63 is '_'. */
    static const unsigned char high[] = {0xfb, 0xff, 0xbf};
    char *enc = b64(high, sizeof(high));
    assert_string_equal(enc, "-_-_");
    free(enc);

    /* Appends, and round-trips every byte value. */
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "x.");
    crypto_b64url_encode(&b, all, sizeof(all));
    assert_memory_equal(b.data, "x.", 2);
    struct buf dec;
    unb64(&dec, b.data + 2);
    assert_int_equal(dec.len, sizeof(all));
    assert_memory_equal(dec.data, all, sizeof(all));
    buf_cleanup(&dec);
    buf_cleanup(&b);
}

static void test_b64url_rejects(void **state)
{
    static const char *const bad[] = {
        "Zg==",  /* padding */
        "Z",     /* 6 bits cannot make a byte */
        "Zm9vY", /* the same, after a full quantum */
        "Zm9v+", /* standard alphabet */
        "Zm/v",  /* standard alphabet */
        "Zh",    /* nonzero pad bits: "Zg" is the only encoding of "f" */
        "Zm9",   /* nonzero pad bits: "Zm8" is the only encoding of "fo" */
        "Zm 9v", /* whitespace */
        "Zm9v\n", "Zm9v.",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf b;
        buf_init(&b);
        buf_puts(&b, "keep");
        assert_int_equal(crypto_b64url_decode(&b, bad[i], strlen(bad[i])), CF_EPARSE);
        /* Nothing of a failed decode stays behind. */
        assert_int_equal(b.len, 4);
        assert_string_equal(b.data, "keep");
        buf_cleanup(&b);
    }
    /* An embedded NUL is not part of the alphabet. */
    struct buf b;
    buf_init(&b);
    assert_int_equal(crypto_b64url_decode(&b, "Zm\0v", 4), CF_EPARSE);
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);
}

static void test_digests(void **state)
{
    unsigned char out[CRYPTO_SHA256_LEN];
    (void)state;

    /* FIPS 180-2 appendix B.1. */
    static const unsigned char abc[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                        0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                        0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    assert_int_equal(crypto_sha256(out, "abc", 3), 0);
    assert_memory_equal(out, abc, sizeof(abc));

    /* RFC 4231 §4.3, test case 2. */
    static const unsigned char tc2[] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                                        0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                        0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                                        0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    const char *data = "what do ya want for nothing?";
    assert_int_equal(crypto_hmac_sha256(out, "Jefe", 4, data, strlen(data)), 0);
    assert_memory_equal(out, tc2, sizeof(tc2));
}

static void test_random(void **state)
{
    unsigned char a[32], b[32], zero[32] = {0};
    (void)state;
    assert_int_equal(crypto_random(a, sizeof(a)), 0);
    assert_int_equal(crypto_random(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_int_equal(crypto_random(a, 0), 0);
}

static void test_backend(void **state)
{
    char path[512];
    (void)state;

    assert_int_equal(crypto_backend_check(path, sizeof(path)), 0);
    assert_non_null(strstr(path, CF_CRYPTO_LIB_HINT));
    /* A buffer too small still gives the answer, truncated. */
    char tiny[4];
    assert_int_equal(crypto_backend_check(tiny, sizeof(tiny)), 0);
    assert_int_equal(strlen(tiny), 3);
    assert_int_equal(crypto_backend_check(NULL, 0), 0);
#if defined(CF_CRYPTO_BORINGSSL)
    assert_string_equal(crypto_backend_name(), "BoringSSL");
    assert_non_null(strstr(crypto_backend_version(), "BORINGSSL_API_VERSION"));
#else
    assert_string_equal(crypto_backend_name(), "OpenSSL");
    assert_memory_equal(crypto_backend_version(), "OpenSSL 3", 9);
#endif
}

static void test_key_type_names(void **state)
{
    static const char *const names[] = {"ec256", "ec384", "rsa2048", "rsa3072", "rsa4096"};
    static const enum crypto_key_type types[] = {CRYPTO_KEY_EC_P256, CRYPTO_KEY_EC_P384,
                                                 CRYPTO_KEY_RSA2048, CRYPTO_KEY_RSA3072,
                                                 CRYPTO_KEY_RSA4096};
    enum crypto_key_type t;
    (void)state;

    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(crypto_key_type_parse(&t, names[i]), 0);
        assert_int_equal(t, types[i]);
        assert_string_equal(crypto_key_type_name(types[i]), names[i]);
    }
    assert_int_equal(crypto_key_type_parse(&t, "EC256"), CF_EPARSE);
    assert_int_equal(crypto_key_type_parse(&t, "rsa1024"), CF_EPARSE);
    assert_int_equal(crypto_key_type_parse(&t, ""), CF_EPARSE);
    assert_string_equal(crypto_key_type_name((enum crypto_key_type)99), "unknown");

    assert_int_equal(crypto_key_type_of(g_ec256), CRYPTO_KEY_EC_P256);
    assert_int_equal(crypto_key_type_of(g_ec384), CRYPTO_KEY_EC_P384);
    assert_int_equal(crypto_key_type_of(g_rsa), CRYPTO_KEY_RSA2048);
    assert_string_equal(crypto_jws_alg(g_ec256), "ES256");
    assert_string_equal(crypto_jws_alg(g_ec384), "ES384");
    assert_string_equal(crypto_jws_alg(g_rsa), "RS256");
    struct crypto_key *k = NULL;
    assert_int_equal(crypto_key_generate(&k, (enum crypto_key_type)99), CF_EUSAGE);
    assert_null(k);
}

/* RFC 7638 §3.1: the example RSA key and its thumbprint. */
static const char rfc7638_n[] =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

static void test_rfc7638_thumbprint(void **state)
{
    struct crypto_key *key = NULL;
    struct buf jwk, tp, sig;
    (void)state;

    assert_int_equal(crypto_key_from_rsa_public(&key, rfc7638_n, "AQAB"), 0);
    assert_int_equal(crypto_key_type_of(key), CRYPTO_KEY_RSA2048);
    buf_init(&jwk);
    buf_init(&tp);
    buf_init(&sig);
    crypto_jwk_public(key, &jwk);
    /* §3.1: the exact bytes that are hashed. */
    char want[512];
    snprintf(want, sizeof(want), "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"%s\"}", rfc7638_n);
    assert_string_equal(jwk.data, want);
    assert_int_equal(crypto_jwk_thumbprint(key, &tp), 0);
    assert_string_equal(tp.data, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");

    /* A public-only key cannot sign or be written as a private key. */
    assert_int_equal(crypto_jws_sign(key, &sig, "a.b", 3), CF_EUSAGE);
    assert_int_equal(crypto_key_to_pem(key, &sig), CF_EUSAGE);
    assert_int_equal(sig.len, 0);
    crypto_key_free(key);
    key = NULL;

    /* A leading zero octet in n is tolerated and does not change the key. */
    struct buf n;
    unb64(&n, rfc7638_n);
    unsigned char padded[257];
    padded[0] = 0;
    memcpy(padded + 1, n.data, 256);
    char *n_padded = b64(padded, sizeof(padded));
    assert_int_equal(crypto_key_from_rsa_public(&key, n_padded, "AQAB"), 0);
    buf_reset(&tp);
    assert_int_equal(crypto_jwk_thumbprint(key, &tp), 0);
    assert_string_equal(tp.data, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    crypto_key_free(key);
    free(n_padded);

    /* Refused: a modulus of an unsupported size, bad base64url, no exponent. */
    char *n_short = b64(n.data, 128);
    assert_int_equal(crypto_key_from_rsa_public(&key, n_short, "AQAB"), CF_EPARSE);
    free(n_short);
    assert_int_equal(crypto_key_from_rsa_public(&key, "AQAB=", "AQAB"), CF_EPARSE);
    assert_int_equal(crypto_key_from_rsa_public(&key, rfc7638_n, ""), CF_EPARSE);
    assert_int_equal(crypto_key_from_rsa_public(&key, rfc7638_n, "AA"), CF_EPARSE);
    buf_cleanup(&n);
    buf_cleanup(&jwk);
    buf_cleanup(&tp);
    buf_cleanup(&sig);
}

/* check_ec_jwk checks the JWK of an EC key and rebuilds the key from it. */
static void check_ec_jwk(const struct crypto_key *key, const char *crv, size_t fs)
{
    struct buf jwk, jwk2, tp, tp2;
    char x[128], y[128], got_crv[16];
    struct crypto_key *pub = NULL;

    buf_init(&jwk);
    buf_init(&jwk2);
    buf_init(&tp);
    buf_init(&tp2);
    crypto_jwk_public(key, &jwk);
    json_member(jwk.data, "crv", got_crv, sizeof(got_crv));
    json_member(jwk.data, "x", x, sizeof(x));
    json_member(jwk.data, "y", y, sizeof(y));
    assert_string_equal(got_crv, crv);
    /* RFC 7638 §3.2: lexicographic order, no whitespace. */
    char want[300];
    snprintf(want, sizeof(want), "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", crv,
             x, y);
    assert_string_equal(jwk.data, want);
    /* RFC 7518 §6.2.1.2: padded to the field size, so the length never varies. */
    assert_int_equal(strlen(x), (fs * 8 + 5) / 6);
    assert_int_equal(strlen(y), (fs * 8 + 5) / 6);

    assert_int_equal(crypto_key_from_ec_public(&pub, crv, x, y), 0);
    crypto_jwk_public(pub, &jwk2);
    assert_string_equal(jwk.data, jwk2.data);
    assert_int_equal(crypto_jwk_thumbprint(key, &tp), 0);
    assert_int_equal(crypto_jwk_thumbprint(pub, &tp2), 0);
    assert_string_equal(tp.data, tp2.data);
    assert_int_equal(strlen(tp.data), 43);
    crypto_key_free(pub);
    pub = NULL;

    /* A point off the curve: y + 1. */
    struct buf yb;
    unb64(&yb, y);
    yb.data[yb.len - 1] ^= 1;
    char *y_bad = b64(yb.data, yb.len);
    assert_int_equal(crypto_key_from_ec_public(&pub, crv, x, y_bad), CF_EPARSE);
    free(y_bad);
    /* x shorter than the field size. */
    char *x_short = b64(yb.data, fs - 1);
    assert_int_equal(crypto_key_from_ec_public(&pub, crv, x_short, y), CF_EPARSE);
    free(x_short);
    assert_int_equal(crypto_key_from_ec_public(&pub, "P-521", x, y), CF_EPARSE);
    assert_null(pub);
    buf_cleanup(&yb);
    buf_cleanup(&jwk);
    buf_cleanup(&jwk2);
    buf_cleanup(&tp);
    buf_cleanup(&tp2);
}

static void test_ec_jwk(void **state)
{
    (void)state;
    check_ec_jwk(g_ec256, "P-256", 32);
    check_ec_jwk(g_ec384, "P-384", 48);
}

/*
 * check_es_sig signs with key and checks the signature: r || s of 2 * fs
 * octets (RFC 7518 §3.4), which verifies through crypto_jws_verify and,
 * converted back to DER here, through EVP_DigestVerify.
 */
static void check_es_sig(const struct crypto_key *key, size_t fs, const EVP_MD *md)
{
    static const char input[] = "eyJhbGciOiJFUzI1NiJ9.eyJoZWxsbyI6IndvcmxkIn0";
    struct buf sig, raw;

    buf_init(&sig);
    assert_int_equal(crypto_jws_sign(key, &sig, input, strlen(input)), 0);
    unb64(&raw, sig.data);
    assert_int_equal(raw.len, 2 * fs);
    assert_int_equal(crypto_jws_verify(key, sig.data, input, strlen(input)), 0);

    /* Independently: raw -> ECDSA_SIG -> DER -> EVP_DigestVerify. */
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn((unsigned char *)raw.data, (int)fs, NULL);
    BIGNUM *s = BN_bin2bn((unsigned char *)raw.data + fs, (int)fs, NULL);
    assert_true(es && r && s);
    assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(es, &der);
    assert_true(der_len > 0);
    EVP_PKEY *pkey = evp_of(key);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey), 1);
    assert_int_equal(
        EVP_DigestVerify(ctx, der, (size_t)der_len, (const unsigned char *)input, strlen(input)),
        1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);

    /* Other input, or a flipped bit, fails; so does a signature of the wrong size. */
    assert_int_equal(crypto_jws_verify(key, sig.data, input, strlen(input) - 1), CF_ECRYPTO);
    raw.data[3] ^= 0x10;
    char *flipped = b64(raw.data, raw.len);
    assert_int_equal(crypto_jws_verify(key, flipped, input, strlen(input)), CF_ECRYPTO);
    free(flipped);
    char *shorter = b64(raw.data, raw.len - 1);
    assert_int_equal(crypto_jws_verify(key, shorter, input, strlen(input)), CF_EPARSE);
    free(shorter);
    assert_int_equal(crypto_jws_verify(key, "!!", input, strlen(input)), CF_EPARSE);

    /* The public-only key from the JWK verifies too. */
    struct buf jwk;
    char crv[16], x[128], y[128];
    struct crypto_key *pub = NULL;
    buf_init(&jwk);
    crypto_jwk_public(key, &jwk);
    json_member(jwk.data, "crv", crv, sizeof(crv));
    json_member(jwk.data, "x", x, sizeof(x));
    json_member(jwk.data, "y", y, sizeof(y));
    assert_int_equal(crypto_key_from_ec_public(&pub, crv, x, y), 0);
    assert_int_equal(crypto_jws_verify(pub, sig.data, input, strlen(input)), 0);
    crypto_key_free(pub);
    buf_cleanup(&jwk);
    buf_cleanup(&raw);
    buf_cleanup(&sig);
}

static void test_es_sign_verify(void **state)
{
    (void)state;
    check_es_sig(g_ec256, 32, EVP_sha256());
    check_es_sig(g_ec384, 48, EVP_sha384());
}

static void test_rs256_sign_verify(void **state)
{
    static const char input[] = "eyJhbGciOiJSUzI1NiJ9.eyJoZWxsbyI6IndvcmxkIn0";
    struct buf sig, sig2, raw;
    (void)state;

    buf_init(&sig);
    buf_init(&sig2);
    assert_int_equal(crypto_jws_sign(g_rsa, &sig, input, strlen(input)), 0);
    unb64(&raw, sig.data);
    assert_int_equal(raw.len, 256);
    assert_int_equal(crypto_jws_verify(g_rsa, sig.data, input, strlen(input)), 0);
    /* PKCS#1 v1.5 is deterministic (PSS would not be). */
    assert_int_equal(crypto_jws_sign(g_rsa, &sig2, input, strlen(input)), 0);
    assert_string_equal(sig.data, sig2.data);

    /* Independently, with the library's default RSA padding, PKCS#1 v1.5. */
    EVP_PKEY *pkey = evp_of(g_rsa);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey), 1);
    assert_int_equal(EVP_DigestVerify(ctx, (unsigned char *)raw.data, raw.len,
                                      (const unsigned char *)input, strlen(input)),
                     1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);

    assert_int_equal(crypto_jws_verify(g_rsa, sig.data, "x", 1), CF_ECRYPTO);
    raw.data[100] ^= 1;
    char *flipped = b64(raw.data, raw.len);
    assert_int_equal(crypto_jws_verify(g_rsa, flipped, input, strlen(input)), CF_ECRYPTO);
    free(flipped);

    /* The public-only key from the JWK verifies too. */
    struct buf jwk;
    char n[512], e[16];
    struct crypto_key *pub = NULL;
    buf_init(&jwk);
    crypto_jwk_public(g_rsa, &jwk);
    json_member(jwk.data, "n", n, sizeof(n));
    json_member(jwk.data, "e", e, sizeof(e));
    assert_string_equal(e, "AQAB");
    assert_int_equal(crypto_key_from_rsa_public(&pub, n, e), 0);
    assert_int_equal(crypto_jws_verify(pub, sig.data, input, strlen(input)), 0);
    crypto_key_free(pub);
    buf_cleanup(&jwk);
    buf_cleanup(&raw);
    buf_cleanup(&sig);
    buf_cleanup(&sig2);
}

static void test_key_pem_roundtrip(void **state)
{
    const struct crypto_key *keys[] = {g_ec256, g_ec384, g_rsa};
    (void)state;

    for (size_t i = 0; i < 3; i++) {
        struct buf pem, jwk1, jwk2;
        struct crypto_key *back = NULL;
        buf_init(&pem);
        buf_init(&jwk1);
        buf_init(&jwk2);
        buf_puts(&pem, "# appended after this line\n");
        assert_int_equal(crypto_key_to_pem(keys[i], &pem), 0);
        assert_non_null(strstr(pem.data, "\n-----BEGIN PRIVATE KEY-----\n"));
        assert_int_equal(crypto_key_from_pem(&back, pem.data, pem.len), 0);
        assert_int_equal(crypto_key_type_of(back), crypto_key_type_of(keys[i]));
        crypto_jwk_public(keys[i], &jwk1);
        crypto_jwk_public(back, &jwk2);
        assert_string_equal(jwk1.data, jwk2.data);
        /* The loaded key signs what the original verifies. */
        buf_reset(&jwk2);
        assert_int_equal(crypto_jws_sign(back, &jwk2, "a.b", 3), 0);
        assert_int_equal(crypto_jws_verify(keys[i], jwk2.data, "a.b", 3), 0);
        crypto_key_free(back);
        OPENSSL_cleanse(pem.data, pem.len);
        buf_cleanup(&pem);
        buf_cleanup(&jwk1);
        buf_cleanup(&jwk2);
    }

    /* The traditional SEC 1 form, as "openssl ecparam -genkey" writes it. */
    static const char sec1[] = "-----BEGIN EC PRIVATE KEY-----\n"
                               "MHcCAQEEINcgLlcov7u7Aav0JrkdMYTyqqCdItnxhHxLk0P9i+N9oAoGCCqGSM49\n"
                               "AwEHoUQDQgAEzyJj2BTzFy0HiW6iLzBeMmzKypxoDiNbZ/niTKOHoUyIhbrUez7W\n"
                               "y23sCLnq+3KBHb1wAI/mb5wnkZJ24BzASw==\n"
                               "-----END EC PRIVATE KEY-----\n";
    struct crypto_key *k = NULL;
    assert_int_equal(crypto_key_from_pem(&k, sec1, strlen(sec1)), 0);
    assert_int_equal(crypto_key_type_of(k), CRYPTO_KEY_EC_P256);
    crypto_key_free(k);
}

/* secp256k1: an EC curve ACME CAs do not take. */
static const char pem_secp256k1[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGEAgEAMBAGByqGSM49AgEGBSuBBAAKBG0wawIBAQQgtWUE37W2GF0aftcQ7JbE\n"
    "FkI76a9apTeil9qbDKdnqzShRANCAASg7IxLKjZXnM7vtctOkP9RdStJMB0QZAo/\n"
    "8d2DZxV/w/9iXfQBepmcJAGexYv7nqgeFalVlfrV4+HFvl5wuTnL\n"
    "-----END PRIVATE KEY-----\n";
/* Ed25519: both libraries read it; this layer does not support it. */
static const char pem_ed25519[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIFWuCb9LYa3INClAIMV4Ux7UvtZbKzt+tPZ2OC/Hv2N9\n"
    "-----END PRIVATE KEY-----\n";
/* A P-256 key encrypted with the password "secret": refused, without a prompt. */
static const char pem_encrypted[] =
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    "MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAi/LR9eSCUoVAICCAAw\n"
    "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEERRWWzw2XoN+AynZs6aH9sEgZAX\n"
    "zs84Hjp1BYbRgmgDs4/Cv6LTDfkwQjCNveJHy9NDvjzenQELoNo6MLZkL3KsMxvk\n"
    "Gkn7e6VccQJ0DwOJev7fqQJ2eA2rwk/7+P0y//e/l29VXUAQ7tuQJaDbBfsBAoKK\n"
    "8yrILC1GnPQGcvdIsEY8rRKjgfp6AttmwgR4LEceZUJXqMXk0rfuZwnrrEOtsNg=\n"
    "-----END ENCRYPTED PRIVATE KEY-----\n";

static void test_key_pem_garbage(void **state)
{
    static const char *const bad[] = {
        "hello",
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFWuCb9LYa3INClAIMV4Ux7U\n",
        "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
        pem_secp256k1,
        pem_ed25519,
        pem_encrypted,
    };
    struct crypto_key *k = NULL;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(crypto_key_from_pem(&k, bad[i], strlen(bad[i])), CF_EPARSE);
        assert_null(k);
    }
    assert_int_equal(crypto_key_from_pem(&k, "", 0), CF_EPARSE);
    /* A length that stops short of the end of the key. */
    struct buf pem;
    buf_init(&pem);
    assert_int_equal(crypto_key_to_pem(g_ec256, &pem), 0);
    assert_int_equal(crypto_key_from_pem(&k, pem.data, pem.len - 40), CF_EPARSE);
    /* Too large to be a key, whatever it holds. */
    char *big = xcalloc(1, CRYPTO_PEM_KEY_MAX + 2);
    memcpy(big, pem.data, pem.len);
    memset(big + pem.len, '\n', CRYPTO_PEM_KEY_MAX + 1 - pem.len);
    assert_int_equal(crypto_key_from_pem(&k, big, CRYPTO_PEM_KEY_MAX + 1), CF_ETOOBIG);
    assert_null(k);
    free(big);
    buf_cleanup(&pem);

    /* A certificate is not a key. */
    const char *names[] = {"example.com"};
    struct buf cert;
    buf_init(&cert);
    assert_int_equal(crypto_self_signed_cert(g_ec256, &cert, names, 1, 1), 0);
    assert_int_equal(crypto_key_from_pem(&k, cert.data, cert.len), CF_EPARSE);
    buf_cleanup(&cert);
}

/* req_dns_names reads the dNSNames of a CSR's requested subjectAltName, independently. */
static size_t req_dns_names(X509_REQ *req, char out[][256], size_t max, int *critical)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    assert_non_null(exts);
    int crit = -1;
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
    assert_non_null(gens);
    *critical = crit;
    size_t n = 0;
    for (size_t i = 0; i < (size_t)sk_GENERAL_NAME_num(gens) && n < max; i++) {
        int type;
        ASN1_STRING *s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, i), &type);
        assert_int_equal(type, GEN_DNS);
        snprintf(out[n++], 256, "%.*s", ASN1_STRING_length(s),
                 (const char *)ASN1_STRING_get0_data(s));
    }
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return n;
}

static void check_csr(const struct crypto_key *key, int sig_nid)
{
    const char *names[] = {"example.com", "*.example.com", "www.example.com"};
    struct buf der;
    char got[4][256], cn[128];
    int crit;

    buf_init(&der);
    buf_puts(&der, "xy");
    assert_int_equal(crypto_csr_new(key, &der, names, 3), 0);
    const unsigned char *p = (const unsigned char *)der.data + 2;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)der.len - 2);
    assert_non_null(req);
    assert_ptr_equal(p, (const unsigned char *)der.data + der.len);
    EVP_PKEY *pk = X509_REQ_get_pubkey(req);
    assert_non_null(pk);
    assert_int_equal(X509_REQ_verify(req, pk), 1);
    assert_int_equal(X509_REQ_get_signature_nid(req), sig_nid);
    assert_int_equal(req_dns_names(req, got, 4, &crit), 3);
    assert_string_equal(got[0], "example.com");
    assert_string_equal(got[1], "*.example.com");
    assert_string_equal(got[2], "www.example.com");
    assert_int_equal(crit, 0);
    assert_true(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn,
                                          sizeof(cn)) > 0);
    assert_string_equal(cn, "example.com");
    /* The key in the CSR is the key that signed. */
    EVP_PKEY *priv = evp_of(key);
    unsigned char *a = NULL, *b = NULL;
    int alen = i2d_PUBKEY(pk, &a), blen = i2d_PUBKEY(priv, &b);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, (size_t)alen);
    OPENSSL_free(a);
    OPENSSL_free(b);
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pk);
    X509_REQ_free(req);
    buf_cleanup(&der);
}

static void test_csr(void **state)
{
    (void)state;
    check_csr(g_ec256, NID_ecdsa_with_SHA256);
    check_csr(g_ec384, NID_ecdsa_with_SHA256);
    check_csr(g_rsa, NID_sha256WithRSAEncryption);

    /* A first name over 64 octets: empty subject, critical subjectAltName (RFC 5280 §4.2.1.6). */
    char longname[100];
    snprintf(longname, sizeof(longname), "%.70s.example.com",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    const char *names[] = {longname, "example.com"};
    struct buf der;
    char got[2][256];
    int crit;
    buf_init(&der);
    assert_int_equal(crypto_csr_new(g_ec256, &der, names, 2), 0);
    const unsigned char *p = (const unsigned char *)der.data;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)der.len);
    assert_non_null(req);
    assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
    assert_int_equal(req_dns_names(req, got, 2, &crit), 2);
    assert_string_equal(got[0], longname);
    assert_int_equal(crit, 1);
    X509_REQ_free(req);

    /* Refused names. */
    buf_reset(&der);
    const char *space[] = {"exa mple.com"};
    const char *empty[] = {""};
    const char *null[] = {NULL};
    char toolong[300];
    memset(toolong, 'a', 254);
    toolong[254] = '\0';
    const char *overlong[] = {toolong};
    assert_int_equal(crypto_csr_new(g_ec256, &der, names, 0), CF_EUSAGE);
    assert_int_equal(crypto_csr_new(g_ec256, &der, space, 1), CF_EHOSTNAME);
    assert_int_equal(crypto_csr_new(g_ec256, &der, empty, 1), CF_EHOSTNAME);
    assert_int_equal(crypto_csr_new(g_ec256, &der, null, 1), CF_EHOSTNAME);
    assert_int_equal(crypto_csr_new(g_ec256, &der, overlong, 1), CF_EHOSTNAME);
    const char *many[CRYPTO_CERT_MAX_NAMES + 1];
    for (size_t i = 0; i <= CRYPTO_CERT_MAX_NAMES; i++)
        many[i] = "example.com";
    assert_int_equal(crypto_csr_new(g_ec256, &der, many, CRYPTO_CERT_MAX_NAMES + 1), CF_ETOOBIG);
    assert_int_equal(der.len, 0);
    buf_cleanup(&der);
}

/* struct ca is a test CA: a key and its self-signed certificate. */
struct ca {
    const struct crypto_key *key;
    struct buf pem;
};

static void ca_init(struct ca *ca, const struct crypto_key *key)
{
    const char *names[] = {"ca.test"};
    ca->key = key;
    buf_init(&ca->pem);
    assert_int_equal(crypto_self_signed_cert(key, &ca->pem, names, 1, 3650), 0);
}

static void test_issue_and_parse(void **state)
{
    const char *names[] = {"example.com", "*.example.com", "a.example.net"};
    struct ca ca;
    struct buf csr, leaf, chain, id;
    struct crypto_cert_info *info = xcalloc(1, sizeof(*info));
    struct crypto_cert_info *ca_info = xcalloc(1, sizeof(*ca_info));
    size_t n_certs = 0;
    (void)state;

    ca_init(&ca, g_ec384);
    buf_init(&csr);
    buf_init(&leaf);
    buf_init(&chain);
    buf_init(&id);
    assert_int_equal(crypto_csr_new(g_rsa, &csr, names, 3), 0);
    /* The high bit set: its DER content needs a leading zero octet. */
    const uint64_t serial = UINT64_C(0x8000000000000001);
    time_t now = time(NULL);
    assert_int_equal(crypto_issue_from_csr(ca.key, &leaf, ca.pem.data, ca.pem.len, csr.data,
                                           csr.len, 90, serial),
                     0);
    assert_memory_equal(leaf.data, "-----BEGIN CERTIFICATE-----\n", 28);

    /* The chain as ACME delivers it: leaf, then issuer. */
    buf_append(&chain, leaf.data, leaf.len);
    buf_append(&chain, ca.pem.data, ca.pem.len);
    assert_int_equal(crypto_cert_parse_chain(chain.data, chain.len, info, &n_certs), 0);
    assert_int_equal(n_certs, 2);

    static const unsigned char want_serial[] = {0x00, 0x80, 0, 0, 0, 0, 0, 0, 0x01};
    assert_int_equal(info->serial_len, sizeof(want_serial));
    assert_memory_equal(info->serial, want_serial, sizeof(want_serial));
    assert_string_equal(info->serial_hex, "008000000000000001");

    assert_true(info->not_before >= (int64_t)now - 5 && info->not_before <= (int64_t)now + 5);
    assert_int_equal(info->not_after - info->not_before, 90 * 86400);

    assert_int_equal(info->n_names, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(info->names[i], names[i]);

    /* The leaf's AKI is the CA's key identifier, which the CA also names as its own AKI. */
    assert_int_equal(crypto_cert_parse_chain(ca.pem.data, ca.pem.len, ca_info, &n_certs), 0);
    assert_int_equal(n_certs, 1);
    assert_int_equal(info->aki_len, 20);
    assert_int_equal(ca_info->aki_len, 20);
    assert_memory_equal(info->aki, ca_info->aki, 20);
    assert_int_equal(ca_info->n_names, 1);
    assert_string_equal(ca_info->names[0], "ca.test");
    assert_int_equal(ca_info->serial_len, 16);
    assert_int_equal(ca_info->not_after - ca_info->not_before, 3650 * 86400);

    /* Independently: the leaf verifies under the CA's key, and the AKI is the CA's SKI. */
    BIO *bio = BIO_new_mem_buf(leaf.data, (int)leaf.len);
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    bio = BIO_new_mem_buf(ca.pem.data, (int)ca.pem.len);
    X509 *cax = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_true(x && cax);
    EVP_PKEY *ca_pub = X509_get_pubkey(cax);
    assert_int_equal(X509_verify(x, ca_pub), 1);
    assert_int_equal(X509_check_issued(cax, x), X509_V_OK);
    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(cax);
    assert_non_null(skid);
    assert_int_equal(ASN1_STRING_length(skid), 20);
    assert_memory_equal(ASN1_STRING_get0_data(skid), info->aki, 20);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    EVP_PKEY_free(ca_pub);
    X509_free(x);
    X509_free(cax);

    /* RFC 9773 §4.1: base64url(AKI) "." base64url(serial content octets). */
    assert_int_equal(crypto_ari_cert_id(info, &id), 0);
    char *aki_b64 = b64(info->aki, info->aki_len);
    char want_id[128];
    snprintf(want_id, sizeof(want_id), "%s.AIAAAAAAAAAB", aki_b64);
    assert_string_equal(id.data, want_id);
    free(aki_b64);

    /* The leaf's key is the CSR's key, not the CA's. */
    assert_int_equal(crypto_cert_matches_key(chain.data, chain.len, g_rsa), 0);
    assert_int_equal(crypto_cert_matches_key(chain.data, chain.len, g_ec384), CF_ECRYPTO);
    assert_int_equal(crypto_cert_matches_key(chain.data, chain.len, g_ec256), CF_ECRYPTO);
    assert_int_equal(crypto_cert_matches_key(ca.pem.data, ca.pem.len, g_ec384), 0);
    assert_int_equal(crypto_cert_matches_key("junk", 4, g_rsa), CF_EPARSE);

    /* An EC leaf signed by an RSA CA. */
    struct ca rsa_ca;
    ca_init(&rsa_ca, g_rsa);
    buf_reset(&csr);
    buf_reset(&leaf);
    assert_int_equal(crypto_csr_new(g_ec256, &csr, names, 1), 0);
    assert_int_equal(crypto_issue_from_csr(rsa_ca.key, &leaf, rsa_ca.pem.data, rsa_ca.pem.len,
                                           csr.data, csr.len, 7, 42),
                     0);
    assert_int_equal(crypto_cert_parse_chain(leaf.data, leaf.len, info, NULL), 0);
    assert_string_equal(info->serial_hex, "2a");
    assert_int_equal(info->n_names, 1);
    assert_int_equal(crypto_cert_matches_key(leaf.data, leaf.len, g_ec256), 0);
    buf_reset(&id);
    assert_int_equal(crypto_ari_cert_id(info, &id), 0);
    assert_non_null(strstr(id.data, ".Kg"));

    buf_cleanup(&rsa_ca.pem);
    buf_cleanup(&ca.pem);
    buf_cleanup(&csr);
    buf_cleanup(&leaf);
    buf_cleanup(&chain);
    buf_cleanup(&id);
    free(info);
    free(ca_info);
}

static void test_issue_rejects(void **state)
{
    const char *names[] = {"example.com"};
    struct ca ca;
    struct buf csr, out;
    (void)state;

    ca_init(&ca, g_ec256);
    buf_init(&csr);
    buf_init(&out);
    assert_int_equal(crypto_csr_new(g_ec384, &csr, names, 1), 0);

    /* A CSR whose signature does not verify: flip a bit in its last octet. */
    csr.data[csr.len - 1] ^= 1;
    assert_int_equal(
        crypto_issue_from_csr(ca.key, &out, ca.pem.data, ca.pem.len, csr.data, csr.len, 1, 1),
        CF_EPARSE);
    csr.data[csr.len - 1] ^= 1;
    /* Trailing bytes, truncation, garbage. */
    assert_int_equal(
        crypto_issue_from_csr(ca.key, &out, ca.pem.data, ca.pem.len, csr.data, csr.len - 1, 1, 1),
        CF_EPARSE);
    buf_putc(&csr, 0);
    assert_int_equal(
        crypto_issue_from_csr(ca.key, &out, ca.pem.data, ca.pem.len, csr.data, csr.len, 1, 1),
        CF_EPARSE);
    csr.len--;
    assert_int_equal(
        crypto_issue_from_csr(ca.key, &out, ca.pem.data, ca.pem.len, "garbage", 7, 1, 1),
        CF_EPARSE);
    assert_int_equal(crypto_issue_from_csr(ca.key, &out, ca.pem.data, ca.pem.len, csr.data,
                                           CRYPTO_CSR_MAX_BYTES + 1, 1, 1),
                     CF_ETOOBIG);
    /* The issuer key must be the issuer certificate's. */
    assert_int_equal(
        crypto_issue_from_csr(g_rsa, &out, ca.pem.data, ca.pem.len, csr.data, csr.len, 1, 1),
        CF_EUSAGE);
    /* Bad serial and lifetimes. */
    assert_int_equal(
        crypto_issue_from_csr(ca.key, &out, ca.pem.data, ca.pem.len, csr.data, csr.len, 1, 0),
        CF_EUSAGE);
    assert_int_equal(
        crypto_issue_from_csr(ca.key, &out, ca.pem.data, ca.pem.len, csr.data, csr.len, 0, 1),
        CF_EUSAGE);
    assert_int_equal(crypto_issue_from_csr(ca.key, &out, "junk", 4, csr.data, csr.len, 1, 1),
                     CF_EPARSE);
    assert_int_equal(out.len, 0);
    /* And the same CSR, untouched, is fine. */
    assert_int_equal(
        crypto_issue_from_csr(ca.key, &out, ca.pem.data, ca.pem.len, csr.data, csr.len, 1, 1), 0);
    assert_int_equal(crypto_cert_matches_key(out.data, out.len, g_ec384), 0);

    assert_int_equal(crypto_self_signed_cert(g_ec256, &out, names, 1, 0), CF_EUSAGE);
    buf_cleanup(&ca.pem);
    buf_cleanup(&csr);
    buf_cleanup(&out);
}

static void test_chain_bounds(void **state)
{
    const char *names[] = {"example.com"};
    struct buf one, chain;
    size_t n = 0;
    (void)state;

    buf_init(&one);
    buf_init(&chain);
    assert_int_equal(crypto_self_signed_cert(g_ec256, &one, names, 1, 1), 0);

    /* Ten certificates are fine, eleven are not. */
    for (int i = 0; i < CRYPTO_CHAIN_MAX_CERTS; i++)
        buf_append(&chain, one.data, one.len);
    assert_int_equal(crypto_cert_parse_chain(chain.data, chain.len, NULL, &n), 0);
    assert_int_equal(n, CRYPTO_CHAIN_MAX_CERTS);
    buf_append(&chain, one.data, one.len);
    assert_int_equal(crypto_cert_parse_chain(chain.data, chain.len, NULL, &n), CF_ETOOBIG);

    /* Over 1 MiB is refused before it is read, however it ends. */
    char *big = xcalloc(1, CRYPTO_CHAIN_MAX_BYTES + 1);
    memcpy(big, one.data, one.len);
    memset(big + one.len, '\n', CRYPTO_CHAIN_MAX_BYTES + 1 - one.len);
    assert_int_equal(crypto_cert_parse_chain(big, CRYPTO_CHAIN_MAX_BYTES + 1, NULL, &n),
                     CF_ETOOBIG);
    assert_int_equal(crypto_cert_parse_chain(big, CRYPTO_CHAIN_MAX_BYTES, NULL, &n), 0);
    free(big);

    /* No certificate; a damaged one; one cut short; a key where a certificate should be. */
    assert_int_equal(crypto_cert_parse_chain("", 0, NULL, &n), CF_EPARSE);
    assert_int_equal(crypto_cert_parse_chain("hello", 5, NULL, &n), CF_EPARSE);
    buf_reset(&chain);
    buf_append(&chain, one.data, one.len);
    /* The first base64 character carries the outer SEQUENCE tag, 0x30 ('M'). */
    assert_int_equal(chain.data[28], 'M');
    chain.data[28] = 'A';
    assert_int_equal(crypto_cert_parse_chain(chain.data, chain.len, NULL, &n), CF_EPARSE);
    assert_int_equal(crypto_cert_parse_chain(one.data, one.len - 30, NULL, &n), CF_EPARSE);
    buf_reset(&chain);
    buf_append(&chain, one.data, one.len);
    buf_puts(&chain, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    assert_int_equal(crypto_cert_parse_chain(chain.data, chain.len, NULL, &n), CF_EPARSE);
    /* Text around the blocks is ignored. */
    buf_reset(&chain);
    buf_puts(&chain, "subject=CN = example.com\n");
    buf_append(&chain, one.data, one.len);
    buf_puts(&chain, "\n");
    assert_int_equal(crypto_cert_parse_chain(chain.data, chain.len, NULL, &n), 0);
    assert_int_equal(n, 1);
    buf_cleanup(&one);
    buf_cleanup(&chain);
}

/* RFC 9773 §4.1's example. */
static void test_ari_vector(void **state)
{
    static const unsigned char aki[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                                        0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
    static const unsigned char serial[] = {0x00, 0x87, 0x65, 0x43, 0x21};
    struct crypto_cert_info *info = xcalloc(1, sizeof(*info));
    struct buf id;
    (void)state;

    buf_init(&id);
    assert_int_equal(crypto_ari_cert_id(info, &id), CF_EPARSE);
    memcpy(info->aki, aki, sizeof(aki));
    info->aki_len = sizeof(aki);
    assert_int_equal(crypto_ari_cert_id(info, &id), CF_EPARSE);
    memcpy(info->serial, serial, sizeof(serial));
    info->serial_len = sizeof(serial);
    assert_int_equal(crypto_ari_cert_id(info, &id), 0);
    assert_string_equal(id.data, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    buf_cleanup(&id);
    free(info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),
        cmocka_unit_test(test_b64url_rejects),
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_backend),
        cmocka_unit_test(test_key_type_names),
        cmocka_unit_test(test_rfc7638_thumbprint),
        cmocka_unit_test(test_ec_jwk),
        cmocka_unit_test(test_es_sign_verify),
        cmocka_unit_test(test_rs256_sign_verify),
        cmocka_unit_test(test_key_pem_roundtrip),
        cmocka_unit_test(test_key_pem_garbage),
        cmocka_unit_test(test_csr),
        cmocka_unit_test(test_issue_and_parse),
        cmocka_unit_test(test_issue_rejects),
        cmocka_unit_test(test_chain_bounds),
        cmocka_unit_test(test_ari_vector),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
