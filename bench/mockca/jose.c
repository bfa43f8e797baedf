/*
 * jose.c - what the mock needs of JSON (RFC 8259), base64 (RFC 4648), JWK
 * (RFC 7517, 7638) and JWS (RFC 7515, 7518), written for the request path:
 * the tokenizer fills a caller-owned token array and never allocates;
 * strings stay where they are in the request until a handler copies one.
 *
 * Also the 64-bit hash and the open-addressing map that the CA's indexes
 * and the rate-limit buckets use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "err.h"
#include "mockca.h"

/* ---- JSON ------------------------------------------------------------------- */

struct jp {
    struct mc_json *j;
    const char *s;
    size_t len, i;
    int depth;
};

static void skip_ws(struct jp *p)
{
    while (p->i < p->len &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int new_tok(struct jp *p, enum mc_jtype type)
{
    struct mc_jtok *t;

    if (p->j->n == MC_JSON_MAX_TOK)
        return -1;
    t = &p->j->t[p->j->n];
    t->type = (uint8_t)type;
    t->esc = 0;
    t->start = (uint32_t)p->i;
    t->len = 0;
    t->size = 0;
    t->end = 0;
    return p->j->n++;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* parse_string reads a string at p->i (the opening quote) into a new token. */
static int parse_string(struct jp *p)
{
    int idx;
    struct mc_jtok *t;

    if (p->i >= p->len || p->s[p->i] != '"')
        return -1;
    p->i++;
    idx = new_tok(p, MC_J_STR);
    if (idx < 0)
        return -1;
    t = &p->j->t[idx];
    while (p->i < p->len) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            t->len = (uint32_t)(p->i - t->start);
            t->end = idx + 1;
            p->i++;
            return idx;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            t->esc = 1;
            if (p->i + 1 >= p->len)
                return -1;
            c = (unsigned char)p->s[p->i + 1];
            if (c == 'u') {
                if (p->i + 5 >= p->len || !is_hex(p->s[p->i + 2]) || !is_hex(p->s[p->i + 3]) ||
                    !is_hex(p->s[p->i + 4]) || !is_hex(p->s[p->i + 5]))
                    return -1;
                p->i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", c) || c == 0)
                return -1;
            p->i += 2;
            continue;
        }
        p->i++;
    }
    return -1;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int parse_number(struct jp *p)
{
    int idx = new_tok(p, MC_J_NUM);
    size_t start = p->i;

    if (idx < 0)
        return -1;
    if (p->i < p->len && p->s[p->i] == '-')
        p->i++;
    if (p->i >= p->len || !is_digit(p->s[p->i]))
        return -1;
    if (p->s[p->i] == '0')
        p->i++;
    else
        while (p->i < p->len && is_digit(p->s[p->i]))
            p->i++;
    if (p->i < p->len && p->s[p->i] == '.') {
        p->i++;
        if (p->i >= p->len || !is_digit(p->s[p->i]))
            return -1;
        while (p->i < p->len && is_digit(p->s[p->i]))
            p->i++;
    }
    if (p->i < p->len && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->len && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        if (p->i >= p->len || !is_digit(p->s[p->i]))
            return -1;
        while (p->i < p->len && is_digit(p->s[p->i]))
            p->i++;
    }
    p->j->t[idx].len = (uint32_t)(p->i - start);
    p->j->t[idx].end = idx + 1;
    return idx;
}

static int parse_literal(struct jp *p, const char *lit, enum mc_jtype type)
{
    size_t n = strlen(lit);
    int idx;

    if (p->len - p->i < n || memcmp(p->s + p->i, lit, n) != 0)
        return -1;
    idx = new_tok(p, type);
    if (idx < 0)
        return -1;
    p->i += n;
    p->j->t[idx].len = (uint32_t)n;
    p->j->t[idx].end = idx + 1;
    return idx;
}

static int parse_value(struct jp *p);

/* parse_container reads an object or an array; members are key and value tokens in turn. */
static int parse_container(struct jp *p, int is_obj)
{
    char close = is_obj ? '}' : ']';
    int idx = new_tok(p, is_obj ? MC_J_OBJ : MC_J_ARR);

    if (idx < 0 || ++p->depth > MC_JSON_MAX_DEPTH)
        return -1;
    p->i++;
    skip_ws(p);
    if (p->i < p->len && p->s[p->i] == close) {
        p->i++;
        goto out_close;
    }
    for (;;) {
        skip_ws(p);
        if (is_obj) {
            if (parse_string(p) < 0)
                return -1;
            skip_ws(p);
            if (p->i >= p->len || p->s[p->i] != ':')
                return -1;
            p->i++;
        }
        if (parse_value(p) < 0)
            return -1;
        p->j->t[idx].size++;
        skip_ws(p);
        if (p->i >= p->len)
            return -1;
        if (p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->s[p->i] != close)
            return -1;
        p->i++;
        break;
    }
out_close:
    p->depth--;
    p->j->t[idx].len = (uint32_t)(p->i - p->j->t[idx].start);
    p->j->t[idx].end = p->j->n;
    return idx;
}

static int parse_value(struct jp *p)
{
    skip_ws(p);
    if (p->i >= p->len)
        return -1;
    switch (p->s[p->i]) {
    case '{':
        return parse_container(p, 1);
    case '[':
        return parse_container(p, 0);
    case '"':
        return parse_string(p);
    case 't':
        return parse_literal(p, "true", MC_J_TRUE);
    case 'f':
        return parse_literal(p, "false", MC_J_FALSE);
    case 'n':
        return parse_literal(p, "null", MC_J_NULL);
    default:
        return parse_number(p);
    }
}

int mc_json_parse(struct mc_json *j, const char *s, size_t len)
{
    struct jp p = {.j = j, .s = s, .len = len, .i = 0, .depth = 0};

    j->s = s;
    j->len = len;
    j->n = 0;
    if (parse_value(&p) < 0)
        return CF_EPARSE;
    skip_ws(&p);
    return p.i == len ? 0 : CF_EPARSE;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

int mc_json_str(const struct mc_json *j, int tok, char *out, size_t cap)
{
    const struct mc_jtok *t;
    const char *s;
    size_t n = 0;

    if (tok < 0 || tok >= j->n || j->t[tok].type != MC_J_STR)
        return -1;
    t = &j->t[tok];
    s = j->s + t->start;
    if (!t->esc) {
        if (t->len >= cap || memchr(s, 0, t->len))
            return -1;
        memcpy(out, s, t->len);
        out[t->len] = '\0';
        return (int)t->len;
    }
    for (size_t i = 0; i < t->len; i++) {
        char c = s[i];
        if (c == '\\') {
            c = s[++i];
            switch (c) {
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                int v = (hexval(s[i + 1]) << 12) | (hexval(s[i + 2]) << 8) |
                        (hexval(s[i + 3]) << 4) | hexval(s[i + 4]);
                /* Nothing the mock reads needs more than ASCII. */
                if (v == 0 || v > 0x7f)
                    return -1;
                c = (char)v;
                i += 4;
                break;
            }
            default:
                break; /* '"', '\\', '/' stand for themselves */
            }
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return (int)n;
}

int mc_json_get(const struct mc_json *j, int obj, const char *key)
{
    size_t klen = strlen(key);
    int i;

    if (obj < 0 || obj >= j->n || j->t[obj].type != MC_J_OBJ)
        return -1;
    i = obj + 1;
    for (int m = 0; m < j->t[obj].size; m++) {
        const struct mc_jtok *k = &j->t[i];
        int v = i + 1;
        if (!k->esc) {
            if (k->len == klen && memcmp(j->s + k->start, key, klen) == 0)
                return v;
        } else {
            char tmp[64];
            if (mc_json_str(j, i, tmp, sizeof(tmp)) >= 0 && strcmp(tmp, key) == 0)
                return v;
        }
        i = j->t[v].end;
    }
    return -1;
}

int mc_json_is_true(const struct mc_json *j, int tok)
{
    return tok >= 0 && tok < j->n && j->t[tok].type == MC_J_TRUE;
}

void mc_json_raw(const struct mc_json *j, int tok, const char **p, size_t *n)
{
    *p = j->s + j->t[tok].start;
    *n = j->t[tok].len;
}

/* ---- base64 ----------------------------------------------------------------- */

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* b64url_val[c] is the 6-bit value of a base64url character, or 0xff. */
static uint8_t b64url_val[256];

static void b64url_table(void)
{
    if (b64url_val[0] == 0xff)
        return;
    memset(b64url_val, 0xff, sizeof(b64url_val));
    for (int i = 0; i < 64; i++)
        b64url_val[(unsigned char)b64url_chars[i]] = (uint8_t)i;
}

long mc_b64url_decode(uint8_t *out, size_t cap, const char *in, size_t len)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;

    b64url_table();
    /* RFC 4648 §5 without padding: a length of 1 mod 4 cannot occur. */
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        uint8_t v = b64url_val[(unsigned char)in[i]];
        if (v == 0xff)
            return -1;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* The unused low bits of the last character must be zero: one encoding per value. */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return (long)n;
}

size_t mc_b64url_str(char *out, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t n = 0, i = 0;

    for (; i + 3 <= len; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        out[n++] = b64url_chars[v >> 18];
        out[n++] = b64url_chars[(v >> 12) & 63];
        out[n++] = b64url_chars[(v >> 6) & 63];
        out[n++] = b64url_chars[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[n++] = b64url_chars[v >> 18];
        out[n++] = b64url_chars[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8);
        out[n++] = b64url_chars[v >> 18];
        out[n++] = b64url_chars[(v >> 12) & 63];
        out[n++] = b64url_chars[(v >> 6) & 63];
    }
    out[n] = '\0';
    return n;
}

void mc_b64url_encode(struct buf *out, const void *data, size_t len)
{
    buf_reserve(out, len / 3 * 4 + 4);
    out->len += mc_b64url_str(out->data + out->len, data, len);
}

void mc_b64_pem(struct buf *out, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t col = 0;

    buf_reserve(out, len / 3 * 4 + len / 48 + 8);
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t k = len - i;
        char q[4];
        if (k > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (k > 2)
            v |= p[i + 2];
        q[0] = b64_chars[v >> 18];
        q[1] = b64_chars[(v >> 12) & 63];
        q[2] = k > 1 ? b64_chars[(v >> 6) & 63] : '=';
        q[3] = k > 2 ? b64_chars[v & 63] : '=';
        buf_append(out, q, 4);
        col += 4;
        if (col == 64) {
            buf_putc(out, '\n');
            col = 0;
        }
    }
    if (col)
        buf_putc(out, '\n');
}

/* ---- hashing and the map ---------------------------------------------------- */

/* mix64 is the finalizer of MurmurHash3 (public domain): every input bit reaches every output bit.
 */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

uint64_t mc_hash64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = seed ^ (len * UINT64_C(0x9e3779b97f4a7c15));
    uint64_t k;

    while (len >= 8) {
        memcpy(&k, p, 8);
        h = (h ^ mix64(k)) * UINT64_C(0x9e3779b97f4a7c15);
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    k = 0;
    memcpy(&k, p, len);
    h ^= mix64(k ^ UINT64_C(0x6a09e667f3bcc909));
    return mix64(h);
}

void mc_map_init(struct mc_map *m)
{
    memset(m, 0, sizeof(*m));
}

void mc_map_cleanup(struct mc_map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

int mc_map_get(const struct mc_map *m, uint64_t key, uint32_t *val)
{
    if (key == 0)
        key = 1;
    if (m->cap == 0)
        return 0;
    for (size_t i = (size_t)mix64(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            *val = m->vals[i];
            return 1;
        }
        if (m->keys[i] == 0)
            return 0;
    }
}

static void map_insert(struct mc_map *m, uint64_t key, uint32_t val)
{
    for (size_t i = (size_t)mix64(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) {
            m->vals[i] = val;
            return;
        }
        if (m->keys[i] == 0) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->n++;
            return;
        }
    }
}

void mc_map_put(struct mc_map *m, uint64_t key, uint32_t val)
{
    if (key == 0)
        key = 1;
    /* Linear probing stays short below half full. */
    if ((m->n + 1) * 2 > m->cap) {
        struct mc_map old = *m;
        m->cap = old.cap ? old.cap * 2 : 1024;
        m->keys = xcalloc(m->cap, sizeof(*m->keys));
        m->vals = xcalloc(m->cap, sizeof(*m->vals));
        m->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i])
                map_insert(m, old.keys[i], old.vals[i]);
        free(old.keys);
        free(old.vals);
    }
    map_insert(m, key, val);
}

/* ---- JWK and JWS ------------------------------------------------------------ */

/* The SubjectPublicKeyInfo prefixes of uncompressed EC points (RFC 5480 §2). */
static const uint8_t spki_p256[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                    0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                    0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};
static const uint8_t spki_p384[] = {0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86,
                                    0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
                                    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04};
static const uint8_t oid_rsa[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};

/*
 * raw_b64 sets *p, *n to member key of the JWK when it is a string of
 * base64url characters only (so its raw text is its canonical value),
 * decoding it into out (cap bytes) and returning the decoded length, or -1.
 */
static long raw_b64(const struct mc_json *j, int obj, const char *key, const char **p, size_t *n,
                    uint8_t *out, size_t cap)
{
    int t = mc_json_get(j, obj, key);

    if (t < 0 || j->t[t].type != MC_J_STR || j->t[t].esc)
        return -1;
    mc_json_raw(j, t, p, n);
    return mc_b64url_decode(out, cap, *p, *n);
}

/* thumb_of hashes the canonical JWK text (RFC 7638 §3.2) into k's thumbprint. */
static void thumb_of(struct mc_jwk *k, const char *canon, size_t len)
{
    SHA256((const uint8_t *)canon, len, k->thumb);
    mc_b64url_str(k->thumb_b64, k->thumb, sizeof(k->thumb));
}

int mc_jwk_parse(struct mc_jwk *k, const struct mc_json *j, int tok, const char **why)
{
    int kty = mc_json_get(j, tok, "kty");
    char canon[1600];
    int cn;

    k->type = MC_KEY_NONE;
    k->spki_len = 0;
    if (kty < 0 || j->t[kty].type != MC_J_STR) {
        *why = "jwk: kty missing";
        return CF_EPARSE;
    }
    if (j->t[kty].len == 2 && memcmp(j->s + j->t[kty].start, "EC", 2) == 0) {
        int crv = mc_json_get(j, tok, "crv");
        const char *xs, *ys;
        size_t xn, yn, fl;
        uint8_t x[48], y[48];
        const char *crv_name;
        if (crv >= 0 && j->t[crv].type == MC_J_STR && j->t[crv].len == 5 &&
            memcmp(j->s + j->t[crv].start, "P-256", 5) == 0) {
            k->type = MC_KEY_EC256;
            fl = 32;
            crv_name = "P-256";
        } else if (crv >= 0 && j->t[crv].type == MC_J_STR && j->t[crv].len == 5 &&
                   memcmp(j->s + j->t[crv].start, "P-384", 5) == 0) {
            k->type = MC_KEY_EC384;
            fl = 48;
            crv_name = "P-384";
        } else {
            *why = "jwk: crv is not P-256 or P-384";
            return CF_EPARSE;
        }
        /* RFC 7518 §6.2.1.2: each coordinate is exactly the field size. */
        if (raw_b64(j, tok, "x", &xs, &xn, x, sizeof(x)) != (long)fl ||
            raw_b64(j, tok, "y", &ys, &yn, y, sizeof(y)) != (long)fl) {
            *why = "jwk: x or y is not a base64url coordinate of the curve's size";
            k->type = MC_KEY_NONE;
            return CF_EPARSE;
        }
        if (fl == 32) {
            memcpy(k->spki, spki_p256, sizeof(spki_p256));
            k->spki_len = sizeof(spki_p256);
        } else {
            memcpy(k->spki, spki_p384, sizeof(spki_p384));
            k->spki_len = sizeof(spki_p384);
        }
        memcpy(k->spki + k->spki_len, x, fl);
        memcpy(k->spki + k->spki_len + fl, y, fl);
        k->spki_len += 2 * fl;
        cn = snprintf(canon, sizeof(canon),
                      "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%.*s\",\"y\":\"%.*s\"}", crv_name,
                      (int)xn, xs, (int)yn, ys);
        thumb_of(k, canon, (size_t)cn);
        return 0;
    }
    if (j->t[kty].len == 3 && memcmp(j->s + j->t[kty].start, "RSA", 3) == 0) {
        const char *ns, *es;
        size_t nn, en;
        uint8_t n[513], e[9];
        long nl = raw_b64(j, tok, "n", &ns, &nn, n, sizeof(n));
        long el = raw_b64(j, tok, "e", &es, &en, e, sizeof(e));
        struct buf b;
        struct mc_der w;
        /* RFC 7518 §6.3.1: minimal octets; the mock takes 2048, 3072 and 4096-bit moduli. */
        if ((nl != 256 && nl != 384 && nl != 512) || !(n[0] & 0x80) || el < 1 || el > 8 ||
            e[0] == 0 || nn + en > 1400) {
            *why = "jwk: RSA n must be 2048, 3072 or 4096 bits and e 1..8 octets, minimal";
            return CF_EPARSE;
        }
        k->type = MC_KEY_RSA;
        buf_init(&b);
        mc_der_init(&w, &b);
        mc_der_begin(&w, MC_DER_SEQ);
        mc_der_begin(&w, MC_DER_SEQ);
        mc_der_put(&w, MC_DER_OID, oid_rsa, sizeof(oid_rsa));
        mc_der_put(&w, MC_DER_NULL, NULL, 0);
        mc_der_end(&w);
        mc_der_begin(&w, MC_DER_BITS);
        buf_putc(&b, 0);
        mc_der_begin(&w, MC_DER_SEQ);
        mc_der_uint(&w, n, (size_t)nl);
        mc_der_uint(&w, e, (size_t)el);
        mc_der_end(&w);
        mc_der_end(&w);
        mc_der_end(&w);
        memcpy(k->spki, b.data, b.len);
        k->spki_len = b.len;
        buf_cleanup(&b);
        cn = snprintf(canon, sizeof(canon), "{\"e\":\"%.*s\",\"kty\":\"RSA\",\"n\":\"%.*s\"}",
                      (int)en, es, (int)nn, ns);
        thumb_of(k, canon, (size_t)cn);
        return 0;
    }
    *why = "jwk: kty is not EC or RSA";
    return CF_EPARSE;
}

EVP_PKEY *mc_key_from_spki(const uint8_t *spki, size_t len)
{
    const uint8_t *p = spki;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);

    if (!k || p != spki + len) {
        EVP_PKEY_free(k);
        ERR_clear_error();
        return NULL;
    }
    return k;
}

/*
 * ecdsa_der turns an r||s signature (RFC 7518 §3.4) into the DER
 * ECDSA-Sig-Value the library verifies (RFC 3279 §2.2.3). Returns the
 * length written to out (at least 2 * fl + 9 bytes).
 */
static size_t ecdsa_der(uint8_t *out, const uint8_t *sig, size_t fl)
{
    size_t n = 2;

    for (int half = 0; half < 2; half++) {
        const uint8_t *v = sig + half * fl;
        size_t vl = fl;
        while (vl > 1 && v[0] == 0) {
            v++;
            vl--;
        }
        out[n++] = MC_DER_INT;
        out[n++] = (uint8_t)(vl + (v[0] & 0x80 ? 1 : 0));
        if (v[0] & 0x80)
            out[n++] = 0;
        memcpy(out + n, v, vl);
        n += vl;
    }
    /* At most 2 * (2 + 49) = 102 octets of content: one length octet above 127 needs 0x81. */
    if (n - 2 < 0x80) {
        out[0] = MC_DER_SEQ;
        out[1] = (uint8_t)(n - 2);
        return n;
    }
    memmove(out + 3, out + 2, n - 2);
    out[0] = MC_DER_SEQ;
    out[1] = 0x81;
    out[2] = (uint8_t)(n - 2);
    return n + 1;
}

int mc_jws_verify(EVP_PKEY *pkey, enum mc_key_type type, const char *alg, const uint8_t *sig,
                  size_t sig_len, const void *input, size_t len)
{
    static EVP_MD_CTX *ctx;
    const EVP_MD *md;
    uint8_t der[120];
    const uint8_t *s = sig;
    size_t sl = sig_len;
    int ok;

    if (strcmp(alg, "ES256") == 0 && type == MC_KEY_EC256) {
        if (sig_len != 64)
            return CF_ECRYPTO;
        md = EVP_sha256();
        sl = ecdsa_der(der, sig, 32);
        s = der;
    } else if (strcmp(alg, "ES384") == 0 && type == MC_KEY_EC384) {
        if (sig_len != 96)
            return CF_ECRYPTO;
        md = EVP_sha384();
        sl = ecdsa_der(der, sig, 48);
        s = der;
    } else if (strcmp(alg, "RS256") == 0 && type == MC_KEY_RSA) {
        md = EVP_sha256();
    } else {
        return CF_EUSAGE;
    }
    if (!ctx)
        ctx = EVP_MD_CTX_new();
    if (!ctx)
        return CF_ECRYPTO;
    ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) == 1 &&
         EVP_DigestVerify(ctx, s, sl, input, len) == 1;
    EVP_MD_CTX_reset(ctx);
    if (!ok) {
        ERR_clear_error();
        return CF_ECRYPTO;
    }
    return 0;
}
