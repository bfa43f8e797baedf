/*
 * crypto.c - backend facts, base64url, digests, randomness, and the small
 * DER reader and writer the key code shares.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "crypto_internal.h"
#include "err.h"
#include "log.h"

#ifndef CF_CRYPTO_LIB_HINT
#error "CF_CRYPTO_LIB_HINT is set by cmake/deps.cmake through the cf_crypto_lib target"
#endif

#if defined(CF_CRYPTO_BORINGSSL) == defined(CF_CRYPTO_OPENSSL)
#error "exactly one of CF_CRYPTO_BORINGSSL and CF_CRYPTO_OPENSSL must be defined"
#endif

const char *crypto_backend_name(void)
{
#if defined(CF_CRYPTO_BORINGSSL)
    return "BoringSSL";
#else
    return "OpenSSL";
#endif
}

#if defined(CF_CRYPTO_BORINGSSL)
/* BoringSSL's version text is only "BoringSSL": its API version says more. */
static char g_version[128];
static pthread_once_t g_version_once = PTHREAD_ONCE_INIT;

static void version_init(void)
{
    snprintf(g_version, sizeof(g_version), "%s (BORINGSSL_API_VERSION %d)",
             OpenSSL_version(OPENSSL_VERSION), BORINGSSL_API_VERSION);
}
#endif

const char *crypto_backend_version(void)
{
#if defined(CF_CRYPTO_BORINGSSL)
    pthread_once(&g_version_once, version_init);
    return g_version;
#else
    return OpenSSL_version(OPENSSL_VERSION);
#endif
}

/*
 * object_of writes into path the shared object that holds addr. Returns 0,
 * or CF_EBACKEND when dladdr() knows no object there.
 */
static int object_of(const void *addr, char *path, size_t n)
{
    Dl_info info;

    if (dladdr(addr, &info) == 0 || !info.dli_fname || !info.dli_fname[0]) {
        if (n)
            snprintf(path, n, "%s", "(unknown object)");
        return CF_EBACKEND;
    }
    if (n)
        snprintf(path, n, "%s", info.dli_fname);
    return strstr(info.dli_fname, CF_CRYPTO_LIB_HINT) ? 0 : CF_EBACKEND;
}

int crypto_backend_check(char *path, size_t n)
{
    /*
     * The addresses our own calls go to: in a position-independent program
     * they come from the GOT, filled in by the dynamic linker, so they point
     * into whichever libcrypto won the symbol lookup (DESIGN.md §6). Two
     * functions from different parts of the library, in case only some
     * symbols were interposed. Converting a function pointer to void * is
     * what dladdr() needs; POSIX guarantees it works.
     */
    const void *const fns[] = {(const void *)&EVP_DigestSign, (const void *)&d2i_X509};
    int ret = 0;

    if (n)
        path[0] = '\0';
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        ret = object_of(fns[i], path, n);
        if (ret < 0)
            goto out;
    }
out:
    return ret;
}

int crypto_fail(const char *where, int code)
{
    if (log_enabled(LOG_DEBUG)) {
        char detail[256];
        unsigned long e = ERR_peek_error();

        if (e)
            ERR_error_string_n(e, detail, sizeof(detail));
        else
            snprintf(detail, sizeof(detail), "%s", "no library error queued");
        log_event(LOG_DEBUG, "crypto_error", "op", where, "code", cf_errname(code), "detail",
                  detail, NULL);
    }
    ERR_clear_error();
    return code;
}

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void crypto_b64url_encode(struct buf *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    char quad[4];
    size_t i = 0;

    buf_reserve(out, (len + 2) / 3 * 4);
    for (; len - i >= 3; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        quad[0] = b64url_alphabet[v >> 18];
        quad[1] = b64url_alphabet[(v >> 12) & 63];
        quad[2] = b64url_alphabet[(v >> 6) & 63];
        quad[3] = b64url_alphabet[v & 63];
        buf_append(out, quad, 4);
    }
    /* RFC 4648 §5 with the padding of §3.2 left off, as JOSE wants. */
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        quad[0] = b64url_alphabet[v >> 18];
        quad[1] = b64url_alphabet[(v >> 12) & 63];
        buf_append(out, quad, 2);
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        quad[0] = b64url_alphabet[v >> 18];
        quad[1] = b64url_alphabet[(v >> 12) & 63];
        quad[2] = b64url_alphabet[(v >> 6) & 63];
        buf_append(out, quad, 3);
    } else {
        /* Nothing left over; this still NUL-terminates an empty result. */
        buf_append(out, "", 0);
    }
}

/* b64url_value returns the 6-bit value of c, or -1 outside the URL-safe alphabet. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int crypto_b64url_decode(struct buf *out, const char *in, size_t len)
{
    size_t start = out->len;
    uint32_t acc = 0;
    unsigned bits = 0;
    int ret = 0;

    /* One leftover character carries 6 bits, less than a byte: never valid. */
    if (len % 4 == 1) {
        ret = CF_EPARSE;
        goto out;
    }
    buf_reserve(out, len / 4 * 3 + 2);
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) {
            ret = CF_EPARSE;
            goto out;
        }
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char byte = (unsigned char)(acc >> bits);
            buf_append(out, &byte, 1);
        }
    }
    /*
     * RFC 4648 §3.5: the pad bits of the last character must be zero, or
     * two strings would decode to the same bytes.
     */
    if (acc & ((1u << bits) - 1))
        ret = CF_EPARSE;
    else
        buf_append(out, "", 0);
out:
    if (ret < 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return ret;
}

int crypto_sha256(unsigned char out[CRYPTO_SHA256_LEN], const void *data, size_t len)
{
    unsigned int n = 0;

    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != CRYPTO_SHA256_LEN)
        return crypto_fail("sha256", CF_ECRYPTO);
    return 0;
}

int crypto_hmac_sha256(unsigned char out[CRYPTO_SHA256_LEN], const void *key, size_t key_len,
                       const void *data, size_t len)
{
    unsigned int n = 0;
    static const unsigned char empty;

    /* OpenSSL takes the key length as an int. */
    if (key_len > INT_MAX)
        return CF_ETOOBIG;
    /* Some versions refuse a NULL key even with length 0. */
    if (!key)
        key = &empty;
    if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) || n != CRYPTO_SHA256_LEN)
        return crypto_fail("hmac_sha256", CF_ECRYPTO);
    return 0;
}

int crypto_random(void *out, size_t len)
{
    unsigned char *p = out;

    /* OpenSSL takes the length as an int: feed it in chunks. */
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        if (RAND_bytes(p, (int)chunk) != 1)
            return crypto_fail("random", CF_ECRYPTO);
        p += chunk;
        len -= chunk;
    }
    return 0;
}

int crypto_der_read(const unsigned char **p, const unsigned char *end, unsigned tag,
                    const unsigned char **val, size_t *len)
{
    const unsigned char *q = *p;
    size_t l;

    if (end - q < 2 || q[0] != tag)
        return CF_EPARSE;
    l = q[1];
    q += 2;
    if (l & 0x80) {
        size_t octets = l & 0x7f;
        /* X.690 §10.1: DER lengths are definite and minimal. */
        if (octets == 0 || octets > 4 || (size_t)(end - q) < octets || q[0] == 0)
            return CF_EPARSE;
        l = 0;
        for (size_t i = 0; i < octets; i++)
            l = l << 8 | *q++;
        if (l < 0x80)
            return CF_EPARSE;
    }
    if ((size_t)(end - q) < l)
        return CF_EPARSE;
    *val = q;
    *len = l;
    *p = q + l;
    return 0;
}

void crypto_der_put(struct buf *out, unsigned tag, const void *contents, size_t len)
{
    unsigned char hdr[2 + sizeof(size_t)];
    size_t n = 0;

    hdr[n++] = (unsigned char)tag;
    if (len < 0x80) {
        hdr[n++] = (unsigned char)len;
    } else {
        unsigned char octets = 0;
        for (size_t l = len; l; l >>= 8)
            octets++;
        hdr[n++] = 0x80 | octets;
        for (unsigned i = octets; i > 0; i--)
            hdr[n++] = (unsigned char)(len >> (8 * (i - 1)));
    }
    buf_append(out, hdr, n);
    buf_append(out, contents, len);
}
