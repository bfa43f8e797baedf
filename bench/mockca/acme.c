/*
 * acme.c - the mock CA's ACME server (RFC 8555) with renewal information
 * (RFC 9773): routing, JWS checks, nonces, accounts, orders,
 * authorizations, dns-01 challenges, finalization, certificates, key
 * rollover, revocation, error injection, hostile answers and Let's Encrypt's
 * rate limits.
 *
 * Every request is answered synchronously from memory; only dns-01
 * validation (dnsval.c) runs in the background. State lives in growable
 * arrays indexed by the IDs that the URLs carry ("/acme/order/17"), plus a
 * few hash maps, so a request costs a parse, a lookup and a hand-formatted
 * JSON answer: no per-request allocation once the arrays have grown.
 * Statuses that depend on time (a challenge still "processing", an order
 * still "processing") are computed when an object is read, so no timer is
 * needed per object.
 *
 * Certificate serials carry what renewal information needs (RFC 9773 §4.1
 * identifies a certificate by AKI and serial): a marker, this instance's
 * tag, notBefore, the lifetime and the order ID. A renewalInfo request can
 * so be answered for any certificate of this CA, even one issued before a
 * restart with --ca-dir.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "err.h"
#include "hostname.h"
#include "log.h"
#include "mockca.h"
#include "timeutil.h"

/* Object states (RFC 8555 §7.1.6). */
enum st { ST_PENDING = 0, ST_READY, ST_PROCESSING, ST_VALID, ST_INVALID, ST_DEACTIVATED };
static const char *const st_names[] = {"pending", "ready",   "processing",
                                       "valid",   "invalid", "deactivated"};

/* Where an order is in its life; its RFC status is computed from this and its authorizations. */
enum phase {
    PHASE_OPEN = 0,  /* pending or ready: follows the authorizations */
    PHASE_FINALIZED, /* processing, then valid once processing_ms passed */
    PHASE_INVALID,   /* an authorization failed, or the order expired */
};

/* Order flags. */
#define O_RENEWAL 0x01 /* the exact set of names was issued before */
#define O_ARI 0x02     /* replaces a certificate not yet replaced (RFC 9773 §5) */
#define O_REVOKED 0x04

#define SERIAL_MARKER 0x4d
#define NONCE_WINDOW (1u << 22) /* nonces remembered: about 7 minutes at 10,000 requests/s */
#define TOKEN_LEN 16
#define MAX_RETRY_AFTER 86400

struct account {
    uint8_t thumb[32];
    char thumb_b64[44];
    EVP_PKEY *pkey; /* NULL with --trust-jws */
    enum mc_key_type type;
    uint8_t deactivated;
    uint8_t spki[640]; /* the key, to refuse it in a CSR (RFC 8555 §11.1) */
    uint16_t spki_len;
    char *contact; /* the contact array as JSON text; NULL: none */
};

struct order {
    uint32_t acct;
    uint32_t authz0;   /* the first of nnames consecutive authorizations */
    uint32_t names;    /* arena offset of nnames NUL-terminated names */
    uint32_t spki;     /* arena offset of the certificate's key, once finalized */
    uint32_t replaces; /* arena offset + 1 of the certID it replaces; 0: none */
    uint32_t cache;    /* slot of the certificate's PEM in the cache */
    uint16_t spki_len;
    uint8_t nnames;
    uint8_t phase;
    uint8_t error; /* enum mc_verr of the failed authorization */
    uint8_t flags;
    uint8_t key_type;
    uint8_t hx;           /* enum mc_hx: how its answers are spoiled (MC_HX_NONE: not) */
    int64_t expires;      /* Unix s */
    int64_t finalized_ms; /* certificate valid from finalized_ms + processing_ms */
    int64_t not_before;   /* of the certificate */
    uint32_t lifetime_s;
    uint64_t set_hash; /* the set of names, for duplicates and renewals */
    uint8_t replaced_serial[MC_SERIAL_LEN];
};

struct authz {
    uint32_t order;
    uint32_t name; /* arena offset, without "*." */
    uint8_t status;
    uint8_t chall;
    uint8_t wildcard;
    uint8_t error;        /* enum mc_verr */
    int64_t validated_ms; /* the challenge's verdict time (in the future: still processing) */
};

struct cache_slot {
    uint32_t order;
    uint32_t len;
    char *pem;
};

struct mc_ca {
    uv_loop_t *loop;
    struct mc_opts o;
    struct mc_issuer *is;
    struct mc_dnsval *dns;
    struct mc_rl *rl;
    struct mc_stats st;
    char base[MC_URL_MAX];
    size_t base_len;
    struct buf dir_json;
    uint8_t instance[3];
    int64_t started_ms;

    struct account *accts; /* index = id - 1 */
    size_t naccts, cap_accts;
    struct order *orders; /* index = id - 1 */
    size_t norders, cap_orders;
    struct authz *authzs; /* index = id - 1 */
    size_t nauthzs, cap_authzs;
    struct buf arena; /* names and keys; offsets into it never move */

    struct mc_map by_thumb;    /* account key thumbprint -> account id (0: none) */
    struct mc_map issued_sets; /* set of names issued before -> 1 */
    struct mc_map replaced;    /* serial of a replaced certificate -> replacing order id */

    struct cache_slot *cache;
    size_t cache_next;

    struct buf other_spki; /* MC_HX_OTHER_KEY: a key no CSR had, made at its first use */

    uint8_t nonce_key[32], token_key[32];
    uint64_t nonce_next;
    uint8_t *nonce_used; /* NONCE_WINDOW bits */
    uint64_t rng;

    /* Scratch for one request at a time (the loop is single-threaded). */
    struct mc_json jbody, jprot, jpay, jinner, jiprot, jipay;
    struct buf scratch, prot, iprot, payload, ipayload, sigin;
};

/* ---- small helpers ---------------------------------------------------------- */

const char *mc_ep_name(enum mc_ep ep)
{
    static const char *const names[MC_EP__COUNT] = {
        [MC_EP_DIRECTORY] = "directory",
        [MC_EP_NEW_NONCE] = "new-nonce",
        [MC_EP_NEW_ACCOUNT] = "new-account",
        [MC_EP_NEW_ORDER] = "new-order",
        [MC_EP_REVOKE] = "revoke-cert",
        [MC_EP_KEY_CHANGE] = "key-change",
        [MC_EP_RENEWAL_INFO] = "renewal-info",
        [MC_EP_ACCOUNT] = "account",
        [MC_EP_ORDER] = "order",
        [MC_EP_AUTHZ] = "authz",
        [MC_EP_CHALLENGE] = "challenge",
        [MC_EP_FINALIZE] = "finalize",
        [MC_EP_CERT] = "cert",
        [MC_EP_ISSUER] = "issuer",
        [MC_EP_STATS] = "stats",
        [MC_EP_UNKNOWN] = "unknown",
    };
    return (unsigned)ep < MC_EP__COUNT ? names[ep] : "?";
}

/* rnd returns a uniform double in [0, 1) (splitmix64; error injection only). */
static double rnd(struct mc_ca *ca)
{
    uint64_t z = (ca->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    z ^= z >> 31;
    return (double)(z >> 11) / (double)(UINT64_C(1) << 53);
}

static const char *arena_str(const struct mc_ca *ca, uint32_t off)
{
    return ca->arena.data + off;
}

static uint32_t arena_put(struct mc_ca *ca, const void *p, size_t n)
{
    uint32_t off = (uint32_t)ca->arena.len;

    buf_append(&ca->arena, p, n);
    buf_putc(&ca->arena, '\0');
    return off;
}

/* order_names fills names[] with the order's names; returns their count. */
static size_t order_names(const struct mc_ca *ca, const struct order *o, const char **names)
{
    const char *p = arena_str(ca, o->names);

    for (size_t i = 0; i < o->nnames; i++) {
        names[i] = p;
        p += strlen(p) + 1;
    }
    return o->nnames;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* set_hash hashes a set of names: sorted, joined by ','. */
static uint64_t set_hash(struct mc_ca *ca, const char **names, size_t n)
{
    const char *sorted[MC_MAX_NAMES];

    memcpy(sorted, names, n * sizeof(*names));
    qsort(sorted, n, sizeof(*sorted), cmp_str);
    buf_reset(&ca->scratch);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&ca->scratch, ',');
        buf_puts(&ca->scratch, sorted[i]);
    }
    return mc_hash64(ca->scratch.data, ca->scratch.len, 0x5e7);
}

static void fmt_time(char out[32], int64_t t)
{
    cf_time_format(out, 32, t);
}

static const char *const hx_names[MC_HX__COUNT] = {
    [MC_HX_NONE] = "none",
    [MC_HX_HUGE_ORDER] = "huge-order",
    [MC_HX_BIG_ORDER] = "big-order",
    [MC_HX_MANY_AUTHZ] = "many-authz",
    [MC_HX_TRUNC_ORDER] = "trunc-order",
    [MC_HX_TYPES_ORDER] = "types-order",
    [MC_HX_DEEP_ORDER] = "deep-order",
    [MC_HX_TRUNC_AUTHZ] = "trunc-authz",
    [MC_HX_TYPES_AUTHZ] = "types-authz",
    [MC_HX_CTYPE_JSON] = "ctype-json",
    [MC_HX_CTYPE_CERT] = "ctype-cert",
    [MC_HX_OTHER_NAMES] = "other-names",
    [MC_HX_OTHER_KEY] = "other-key",
    [MC_HX_GARBAGE_PEM] = "garbage-pem",
    [MC_HX_NOT_PEM] = "not-pem",
    [MC_HX_EMPTY_CHAIN] = "empty-chain",
    [MC_HX_BAD_ISSUER] = "bad-issuer",
    [MC_HX_HUGE_CERT] = "huge-cert",
    [MC_HX_REDIRECT_ORDER] = "redirect-order",
    [MC_HX_REDIRECT_CERT] = "redirect-cert",
    [MC_HX_PROCESSING_FOREVER] = "processing-forever",
    [MC_HX_PENDING_FOREVER] = "pending-forever",
};

const char *mc_hx_name(enum mc_hx m)
{
    return (unsigned)m < MC_HX__COUNT ? hx_names[m] : "?";
}

int mc_hx_parse(const char *s)
{
    for (int m = 0; m < MC_HX__COUNT; m++)
        if (strcmp(s, hx_names[m]) == 0)
            return m;
    return -1;
}

/*
 * hx_of_name returns the hostile mode a name selects: its leftmost label
 * (after "*.") is "hx-<mode>" or "hx-<mode>-<anything>"; the longest mode
 * name that fits wins. MC_HX_NONE for every other name.
 */
static enum mc_hx hx_of_name(const char *name)
{
    const char *p = name[0] == '*' ? name + 2 : name;
    enum mc_hx best = MC_HX_NONE;
    size_t best_len = 0;

    if (strncmp(p, "hx-", 3) != 0)
        return MC_HX_NONE;
    p += 3;
    for (int m = 1; m < MC_HX__COUNT; m++) {
        size_t n = strlen(hx_names[m]);
        if (n > best_len && strncmp(p, hx_names[m], n) == 0 &&
            (p[n] == '\0' || p[n] == '.' || p[n] == '-')) {
            best = (enum mc_hx)m;
            best_len = n;
        }
    }
    return best;
}

/* ---- responses -------------------------------------------------------------- */

static enum mc_action problem(struct mc_ca *ca, struct mc_response *rs, int status,
                              const char *type, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * problem answers with an RFC 8555 §6.7 problem document (RFC 7807) of
 * type urn:ietf:params:acme:error:<type>.
 */
static enum mc_action problem(struct mc_ca *ca, struct mc_response *rs, int status,
                              const char *type, const char *fmt, ...)
{
    char detail[600];
    va_list ap;

    va_start(ap, fmt);
    str_vfmt(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    buf_reset(rs->body);
    buf_printf(rs->body, "{\"type\":\"urn:ietf:params:acme:error:%s\",\"detail\":", type);
    buf_json_string(rs->body, detail, strlen(detail));
    buf_printf(rs->body, ",\"status\":%d}", status);
    rs->status = status;
    rs->ctype = MC_CT_PROBLEM;
    ca->st.problems++;
    return MC_ACT_RESPOND;
}

static void url_of(const struct mc_ca *ca, char *out, const char *kind, uint32_t id)
{
    str_fmt(out, MC_URL_MAX, "%s/acme/%s/%u", ca->base, kind, id);
}

/* verr_problem writes the problem fields of a failed validation (type, detail) into b. */
static void verr_problem(struct buf *b, enum mc_verr e, const char *name)
{
    const char *type = "dns", *what;

    switch (e) {
    case MC_VERR_NO_TXT:
        type = "unauthorized";
        what = "No TXT record found at";
        break;
    case MC_VERR_WRONG_TXT:
        type = "unauthorized";
        what = "Incorrect TXT record found at";
        break;
    case MC_VERR_NXDOMAIN:
        what = "NXDOMAIN looking up TXT for";
        break;
    case MC_VERR_SERVFAIL:
        what = "SERVFAIL looking up TXT for";
        break;
    case MC_VERR_TIMEOUT:
        what = "query timed out looking up TXT for";
        break;
    case MC_VERR_CNAME_LOOP:
        what = "too many CNAMEs looking up TXT for";
        break;
    case MC_VERR_TRUNCATED:
        what = "truncated answer looking up TXT for";
        break;
    case MC_VERR_RATELIMIT:
        type = "rateLimited";
        what = "too many failed authorizations recently for";
        break;
    default:
        what = "malformed DNS answer looking up TXT for";
        break;
    }
    buf_printf(b,
               "{\"type\":\"urn:ietf:params:acme:error:%s\",\"detail\":\"%s _acme-challenge.%s\","
               "\"status\":%d}",
               type, what, name, e == MC_VERR_RATELIMIT ? 429 : 403);
}

/* ---- nonces (RFC 8555 §6.5): a counter and its MAC, remembered in a window --------- */

static void nonce_new(struct mc_ca *ca, char out[32])
{
    uint8_t raw[16], mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    uint64_t c = ca->nonce_next++;

    for (int i = 0; i < 8; i++)
        raw[i] = (uint8_t)(c >> (56 - 8 * i));
    HMAC(EVP_sha256(), ca->nonce_key, sizeof(ca->nonce_key), raw, 8, mac, &mac_len);
    memcpy(raw + 8, mac, 8);
    ca->nonce_used[(c % NONCE_WINDOW) / 8] &= (uint8_t) ~(1u << (c % 8));
    mc_b64url_str(out, raw, sizeof(raw));
    ca->st.nonces++;
}

/* nonce_use checks and consumes a nonce: 0, or the reason it is refused. */
static const char *nonce_use(struct mc_ca *ca, const char *s)
{
    uint8_t raw[16], mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    uint64_t c = 0;
    uint8_t *bits, bit;

    if (mc_b64url_decode(raw, sizeof(raw), s, strlen(s)) != 16) {
        ca->st.bad_nonce_malformed++;
        return "malformed nonce";
    }
    HMAC(EVP_sha256(), ca->nonce_key, sizeof(ca->nonce_key), raw, 8, mac, &mac_len);
    if (CRYPTO_memcmp(mac, raw + 8, 8) != 0) {
        ca->st.bad_nonce_unknown++;
        return "nonce not issued by this server";
    }
    for (int i = 0; i < 8; i++)
        c = (c << 8) | raw[i];
    if (c >= ca->nonce_next || ca->nonce_next - c > NONCE_WINDOW) {
        ca->st.bad_nonce_expired++;
        return "nonce expired";
    }
    bits = &ca->nonce_used[(c % NONCE_WINDOW) / 8];
    bit = (uint8_t)(1u << (c % 8));
    if (*bits & bit) {
        ca->st.bad_nonce_replayed++;
        return "nonce already used";
    }
    *bits |= bit;
    return NULL;
}

/* token_of writes the challenge token of authorization id (base64url of 128 bits, RFC 8555 §8.1).
 */
static void token_of(const struct mc_ca *ca, uint32_t id, char out[32])
{
    uint8_t msg[4] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id};
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;

    HMAC(EVP_sha256(), ca->token_key, sizeof(ca->token_key), msg, sizeof(msg), mac, &mac_len);
    mc_b64url_str(out, mac, TOKEN_LEN);
}

/* ---- objects and their JSON ------------------------------------------------------- */

static struct account *acct_get(struct mc_ca *ca, uint32_t id)
{
    return id >= 1 && id <= ca->naccts ? &ca->accts[id - 1] : NULL;
}

static struct order *order_get(struct mc_ca *ca, uint32_t id)
{
    return id >= 1 && id <= ca->norders ? &ca->orders[id - 1] : NULL;
}

static struct authz *authz_get(struct mc_ca *ca, uint32_t id)
{
    return id >= 1 && id <= ca->nauthzs ? &ca->authzs[id - 1] : NULL;
}

/* authz_status brings a with --validate none up to date at now and returns its status. */
static enum st authz_status(struct mc_ca *ca, struct authz *a, int64_t now_ms)
{
    if (a->status == ST_PENDING && a->chall == ST_PROCESSING && !ca->o.validate_dns &&
        now_ms >= a->validated_ms && ca->orders[a->order - 1].hx != MC_HX_PENDING_FOREVER) {
        a->chall = ST_VALID;
        a->status = ST_VALID;
        ca->st.authz_valid++;
    }
    return (enum st)a->status;
}

/* order_status computes the RFC status of o at now (and notes an expired or failed order). */
static enum st order_status(struct mc_ca *ca, struct order *o, int64_t now_ms)
{
    int all_valid = 1;

    switch (o->phase) {
    case PHASE_INVALID:
        return ST_INVALID;
    case PHASE_FINALIZED:
        if (o->hx == MC_HX_PROCESSING_FOREVER)
            return ST_PROCESSING;
        return now_ms >= o->finalized_ms + ca->o.processing_ms ? ST_VALID : ST_PROCESSING;
    default:
        break;
    }
    for (uint32_t i = 0; i < o->nnames; i++) {
        enum st s = authz_status(ca, &ca->authzs[o->authz0 - 1 + i], now_ms);
        if (s == ST_INVALID || s == ST_DEACTIVATED) {
            o->phase = PHASE_INVALID;
            o->error = ca->authzs[o->authz0 - 1 + i].error;
            ca->st.orders_invalid++;
            return ST_INVALID;
        }
        if (s != ST_VALID)
            all_valid = 0;
    }
    /* RFC 8555 §7.1.6: an order that expires before it is finalized becomes invalid. */
    if (o->expires * 1000 <= now_ms) {
        o->phase = PHASE_INVALID;
        ca->st.orders_invalid++;
        return ST_INVALID;
    }
    return all_valid ? ST_READY : ST_PENDING;
}

static void serial_of(const struct mc_ca *ca, const struct order *o, uint32_t id,
                      uint8_t s[MC_SERIAL_LEN])
{
    uint32_t nb = (uint32_t)o->not_before, lt = o->lifetime_s;

    s[0] = SERIAL_MARKER;
    memcpy(s + 1, ca->instance, 3);
    for (int i = 0; i < 4; i++) {
        s[4 + i] = (uint8_t)(nb >> (24 - 8 * i));
        s[8 + i] = (uint8_t)(lt >> (24 - 8 * i));
        s[12 + i] = (uint8_t)(id >> (24 - 8 * i));
    }
}

static void order_json(struct mc_ca *ca, struct buf *b, struct order *o, uint32_t id,
                       int64_t now_ms)
{
    enum st s = order_status(ca, o, now_ms);
    const char *names[MC_MAX_NAMES];
    char t[32];

    order_names(ca, o, names);
    fmt_time(t, o->expires);
    buf_printf(b, "{\"status\":\"%s\",\"expires\":\"%s\",\"identifiers\":[", st_names[s], t);
    for (size_t i = 0; i < o->nnames; i++)
        buf_printf(b, "%s{\"type\":\"dns\",\"value\":\"%s\"}", i ? "," : "", names[i]);
    buf_puts(b, "],\"authorizations\":[");
    for (uint32_t i = 0; i < o->nnames; i++)
        buf_printf(b, "%s\"%s/acme/authz/%u\"", i ? "," : "", ca->base, o->authz0 + i);
    buf_printf(b, "],\"finalize\":\"%s/acme/finalize/%u\"", ca->base, id);
    if (s == ST_VALID)
        buf_printf(b, ",\"certificate\":\"%s/acme/cert/%u\"", ca->base, id);
    if (o->replaces)
        buf_printf(b, ",\"replaces\":\"%s\"", arena_str(ca, o->replaces - 1));
    if (s == ST_INVALID) {
        buf_puts(b, ",\"error\":");
        if (o->error)
            verr_problem(b, (enum mc_verr)o->error, names[0][0] == '*' ? names[0] + 2 : names[0]);
        else
            buf_puts(b, "{\"type\":\"urn:ietf:params:acme:error:malformed\",\"detail\":"
                        "\"the order expired\",\"status\":403}");
    }
    buf_putc(b, '}');
}

static void chall_json(struct mc_ca *ca, struct buf *b, struct authz *a, uint32_t id)
{
    char tok[32], t[32];

    token_of(ca, id, tok);
    buf_printf(
        b, "{\"type\":\"dns-01\",\"url\":\"%s/acme/chall/%u\",\"status\":\"%s\",\"token\":\"%s\"",
        ca->base, id, st_names[a->chall], tok);
    if (a->chall == ST_VALID || a->chall == ST_INVALID) {
        fmt_time(t, a->validated_ms / 1000);
        buf_printf(b, ",\"validated\":\"%s\"", t);
    }
    if (a->chall == ST_INVALID) {
        buf_puts(b, ",\"error\":");
        verr_problem(b, (enum mc_verr)a->error, arena_str(ca, a->name));
    }
    buf_putc(b, '}');
}

static void authz_json(struct mc_ca *ca, struct buf *b, struct authz *a, uint32_t id,
                       int64_t now_ms)
{
    enum st s = authz_status(ca, a, now_ms);
    struct order *o = order_get(ca, a->order);
    char t[32];

    fmt_time(t, o->expires);
    buf_printf(b,
               "{\"identifier\":{\"type\":\"dns\",\"value\":\"%s\"},\"status\":\"%s\","
               "\"expires\":\"%s\",\"challenges\":[",
               arena_str(ca, a->name), st_names[s], t);
    chall_json(ca, b, a, id);
    buf_putc(b, ']');
    if (a->wildcard)
        buf_puts(b, ",\"wildcard\":true");
    buf_putc(b, '}');
}

/*
 * RFC 8555 §7.1.2 calls the orders list required; like Boulder, the mock has
 * none, and says so by leaving the member out rather than serving an empty list.
 */
static void account_json(struct buf *b, const struct account *a)
{
    buf_printf(b, "{\"status\":\"%s\"", a->deactivated ? "deactivated" : "valid");
    if (a->contact)
        buf_printf(b, ",\"contact\":%s", a->contact);
    buf_putc(b, '}');
}

/* ---- certificates ---------------------------------------------------------------- */

/* leaf_pem returns the order's leaf certificate as PEM (from the cache, or signed again). */
static int leaf_pem(struct mc_ca *ca, struct order *o, uint32_t id, const char **pem, size_t *len)
{
    struct cache_slot *slot = &ca->cache[o->cache];
    const char *names[MC_MAX_NAMES];
    struct mc_leaf l;
    struct buf out;
    int rc;

    if (slot->pem && slot->order == id) {
        *pem = slot->pem;
        *len = slot->len;
        return 0;
    }
    /*
     * Not cached (first issuance, or evicted): sign it (again). A second
     * signature over the same TBSCertificate is the same certificate in all
     * but its signature octets (ECDSA signatures are randomized).
     */
    memset(&l, 0, sizeof(l));
    serial_of(ca, o, id, l.serial);
    l.not_before = o->not_before;
    l.not_after = o->not_before + o->lifetime_s;
    l.spki = (const uint8_t *)arena_str(ca, o->spki);
    l.spki_len = o->spki_len;
    l.key_type = (enum mc_key_type)o->key_type;
    l.names = names;
    l.nnames = order_names(ca, o, names);
    buf_init(&out);
    rc = mc_issue_leaf(ca->is, &out, &l);
    if (rc) {
        buf_cleanup(&out);
        return rc;
    }
    o->cache = (uint32_t)ca->cache_next;
    slot = &ca->cache[ca->cache_next];
    ca->cache_next = (ca->cache_next + 1) % ca->o.cert_cache;
    free(slot->pem);
    slot->pem = out.data; /* the cache takes the buffer */
    slot->len = (uint32_t)out.len;
    slot->order = id;
    *pem = slot->pem;
    *len = slot->len;
    return 0;
}

/*
 * parse_cert_id reads an RFC 9773 §4.1 certificate identifier. Returns 0
 * with the serial (our 16-octet form) when the AKI is this CA's, CF_EPARSE
 * when it is not an identifier, CF_ENOTFOUND when it is another CA's or not
 * a serial of ours.
 */
static int parse_cert_id(const struct mc_ca *ca, const char *id, size_t len,
                         uint8_t serial[MC_SERIAL_LEN])
{
    const char *dot = memchr(id, '.', len);
    uint8_t aki[64], sn[32];
    long al, sl;

    if (!dot || dot == id || dot == id + len - 1)
        return CF_EPARSE;
    al = mc_b64url_decode(aki, sizeof(aki), id, (size_t)(dot - id));
    sl = mc_b64url_decode(sn, sizeof(sn), dot + 1, (size_t)(id + len - dot - 1));
    if (al < 1 || sl < 1)
        return CF_EPARSE;
    if (al != MC_KEY_ID_LEN || memcmp(aki, ca->is->ski, MC_KEY_ID_LEN) != 0 ||
        sl != MC_SERIAL_LEN || sn[0] != SERIAL_MARKER)
        return CF_ENOTFOUND;
    memcpy(serial, sn, MC_SERIAL_LEN);
    return 0;
}

/* serial_order returns the order of a serial of this instance, or 0. */
static uint32_t serial_order(const struct mc_ca *ca, const uint8_t serial[MC_SERIAL_LEN])
{
    uint32_t id = 0;

    if (memcmp(serial + 1, ca->instance, 3) != 0)
        return 0;
    for (int i = 12; i < 16; i++)
        id = (id << 8) | serial[i];
    return id >= 1 && id <= ca->norders && ca->orders[id - 1].phase == PHASE_FINALIZED ? id : 0;
}

/* ---- JWS (RFC 8555 §6.2) ----------------------------------------------------------- */

struct jws {
    char alg[16];
    char nonce[64];
    char url[MC_URL_MAX];
    int has_jwk;
    uint32_t kid; /* the account the kid names; 0 with jwk */
    struct mc_jwk jwk;
    const char *payload; /* decoded, NUL-terminated */
    size_t payload_len;
    int payload_tok; /* root token in the payload's JSON; -1 for POST-as-GET */
};

/*
 * jws_read parses the flattened JWS in text (len bytes) with the given
 * scratch (the decoded protected header goes to prot, the decoded payload
 * to payload; jp and jpay point into them): the protected header's members
 * and the payload. The signature is checked by jws_verify. Returns NULL, or
 * the reason it is malformed.
 */
static const char *jws_read(struct mc_ca *ca, struct jws *w, const char *text, size_t len,
                            struct mc_json *jb, struct mc_json *jp, struct mc_json *jpay,
                            struct buf *protbuf, struct buf *payload, uint8_t *sig, size_t *sig_len)
{
    char *prot;
    int tp, tpay, tsig, t;
    const char *ps, *pays, *ss, *why = NULL;
    size_t pn, payn, sn;
    long n;

    memset(w, 0, sizeof(*w));
    w->payload_tok = -1;
    if (mc_json_parse(jb, text, len) != 0 || jb->t[0].type != MC_J_OBJ)
        return "the body is not a JSON object";
    tp = mc_json_get(jb, 0, "protected");
    tpay = mc_json_get(jb, 0, "payload");
    tsig = mc_json_get(jb, 0, "signature");
    if (tp < 0 || tpay < 0 || tsig < 0 || jb->t[tp].type != MC_J_STR ||
        jb->t[tpay].type != MC_J_STR || jb->t[tsig].type != MC_J_STR)
        return "not a flattened JWS (protected, payload, signature)";
    if (mc_json_get(jb, 0, "header") >= 0)
        return "unprotected header parameters are not allowed"; /* RFC 8555 §6.2 */
    mc_json_raw(jb, tp, &ps, &pn);
    mc_json_raw(jb, tpay, &pays, &payn);
    mc_json_raw(jb, tsig, &ss, &sn);
    if (pn > 16384)
        return "protected header too large";
    buf_reset(protbuf);
    buf_reserve(protbuf, pn + 1);
    prot = protbuf->data;
    n = mc_b64url_decode((uint8_t *)prot, protbuf->cap - 1, ps, pn);
    if (n < 0)
        return "protected header is not base64url";
    prot[n] = '\0';
    if (mc_json_parse(jp, prot, (size_t)n) != 0 || jp->t[0].type != MC_J_OBJ)
        return "protected header is not a JSON object";
    n = mc_b64url_decode(sig, 1024, ss, sn);
    if (n < 0)
        return "signature is not base64url";
    *sig_len = (size_t)n;
    if (mc_json_str(jp, mc_json_get(jp, 0, "alg"), w->alg, sizeof(w->alg)) < 0)
        return "alg missing";
    if (strcmp(w->alg, "none") == 0 || strncmp(w->alg, "HS", 2) == 0)
        return "alg none and MAC algorithms are not allowed";
    t = mc_json_get(jp, 0, "nonce");
    if (t >= 0 && mc_json_str(jp, t, w->nonce, sizeof(w->nonce)) < 0)
        return "nonce is not a string";
    if (mc_json_str(jp, mc_json_get(jp, 0, "url"), w->url, sizeof(w->url)) < 0)
        return "url missing";
    t = mc_json_get(jp, 0, "jwk");
    if (t >= 0) {
        if (mc_jwk_parse(&w->jwk, jp, t, &why) != 0)
            return why;
        w->has_jwk = 1;
    }
    t = mc_json_get(jp, 0, "kid");
    if (t >= 0) {
        char kid[MC_URL_MAX];
        size_t pre = ca->base_len + strlen("/acme/acct/");
        if (w->has_jwk)
            return "both jwk and kid";
        if (mc_json_str(jp, t, kid, sizeof(kid)) < 0)
            return "kid is not a string";
        if (strncmp(kid, ca->base, ca->base_len) == 0 &&
            strncmp(kid + ca->base_len, "/acme/acct/", 11) == 0 && kid[pre] &&
            strspn(kid + pre, "0123456789") == strlen(kid + pre) && strlen(kid + pre) < 10)
            w->kid = (uint32_t)strtoul(kid + pre, NULL, 10);
        if (!acct_get(ca, w->kid))
            w->kid = UINT32_MAX; /* names no account of this CA */
    } else if (!w->has_jwk) {
        return "neither jwk nor kid";
    }
    buf_reset(payload);
    buf_reserve(payload, payn);
    n = mc_b64url_decode((uint8_t *)payload->data, payload->cap - 1, pays, payn);
    if (n < 0)
        return "payload is not base64url";
    payload->len = (size_t)n;
    payload->data[n] = '\0';
    w->payload = payload->data;
    w->payload_len = (size_t)n;
    if (n > 0) {
        if (mc_json_parse(jpay, payload->data, (size_t)n) != 0)
            return "payload is not JSON";
        w->payload_tok = 0;
    }
    /* The signing input (RFC 7515 §5.2): the two encoded parts as they were sent. */
    buf_reset(&ca->sigin);
    buf_append(&ca->sigin, ps, pn);
    buf_putc(&ca->sigin, '.');
    buf_append(&ca->sigin, pays, payn);
    return NULL;
}

/* jws_verify checks the signature over ca->sigin with pkey; counts it. Returns 0 or -1. */
static int jws_verify(struct mc_ca *ca, EVP_PKEY *pkey, enum mc_key_type type, const char *alg,
                      const uint8_t *sig, size_t sig_len)
{
    if (mc_jws_verify(pkey, type, alg, sig, sig_len, ca->sigin.data, ca->sigin.len) != 0) {
        ca->st.jws_failed++;
        return -1;
    }
    ca->st.jws_verified++;
    return 0;
}

/* ---- handlers ------------------------------------------------------------------------ */

/* One request being handled; everything before w is zeroed on entry. */
struct ctx {
    struct mc_ca *ca;
    const struct mc_request *rq;
    struct mc_response *rs;
    enum mc_ep ep;
    uint32_t id;      /* from the path */
    const char *tail; /* renewal-info: the certID */
    size_t tail_len;
    int64_t now;
    struct account *acct; /* the kid's account */
    uint32_t acct_id;
    EVP_PKEY *jwk_pkey; /* the verified jwk's key; a handler may take it (set NULL) */
    uint32_t hx_order;  /* the order the answer is about, for hostile answers; 0: none */
    size_t sig_len;
    struct jws w;
    uint8_t sig[1024];
};

static enum mc_action rate_limited(struct ctx *c, enum mc_rl_kind k, int64_t wait_ms,
                                   const char *what)
{
    struct mc_ca *ca = c->ca;
    const struct mc_rl_limit *l = mc_rl_get(ca->rl, k);
    int64_t secs = (wait_ms + 999) / 1000;
    char t[32];

    if (secs < 1)
        secs = 1;
    if (secs > MAX_RETRY_AFTER)
        secs = MAX_RETRY_AFTER;
    ca->st.rl_denied[k]++;
    c->rs->retry_after = (int)secs;
    fmt_time(t, c->now / 1000 + secs);
    return problem(ca, c->rs, 429, "rateLimited",
                   "too many %s (%u per %lld ms, limit %s), retry after %s: see "
                   "https://letsencrypt.org/docs/rate-limits/",
                   what, l->count, (long long)l->period_ms, mc_rl_kind_name(k), t);
}

static enum mc_action h_directory(struct ctx *c)
{
    buf_append(c->rs->body, c->ca->dir_json.data, c->ca->dir_json.len);
    c->rs->ctype = MC_CT_JSON;
    return MC_ACT_RESPOND;
}

static enum mc_action h_new_nonce(struct ctx *c)
{
    /* RFC 8555 §7.2: 200 for HEAD, 204 for GET; never cached. */
    c->rs->status = c->rq->method == MC_M_HEAD ? 200 : 204;
    return MC_ACT_RESPOND;
}

/* eab_check verifies an External Account Binding (RFC 8555 §7.3.4). Returns NULL or why not. */
static const char *eab_check(struct ctx *c, int tok)
{
    struct mc_ca *ca = c->ca;
    const struct mc_json *jp = &ca->jpay;
    int tp = mc_json_get(jp, tok, "protected"), tpay = mc_json_get(jp, tok, "payload"),
        ts = mc_json_get(jp, tok, "signature");
    const char *ps, *pays, *ss;
    size_t pn, payn, sn;
    static char prot[4096], pay[4096];
    uint8_t sig[64], mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    long n, sl;
    char alg[16], kid[256], url[MC_URL_MAX];
    struct mc_jwk k;
    const char *why;

    if (tp < 0 || tpay < 0 || ts < 0)
        return "externalAccountBinding is not a flattened JWS";
    mc_json_raw(jp, tp, &ps, &pn);
    mc_json_raw(jp, tpay, &pays, &payn);
    mc_json_raw(jp, ts, &ss, &sn);
    n = mc_b64url_decode((uint8_t *)prot, sizeof(prot) - 1, ps, pn);
    if (n < 0 || mc_json_parse(&ca->jinner, prot, (size_t)n) != 0)
        return "externalAccountBinding: bad protected header";
    if (mc_json_str(&ca->jinner, mc_json_get(&ca->jinner, 0, "alg"), alg, sizeof(alg)) < 0 ||
        strcmp(alg, "HS256") != 0)
        return "externalAccountBinding: alg must be HS256";
    if (mc_json_str(&ca->jinner, mc_json_get(&ca->jinner, 0, "kid"), kid, sizeof(kid)) < 0 ||
        strcmp(kid, ca->o.eab_kid) != 0)
        return "externalAccountBinding: unknown kid";
    if (mc_json_str(&ca->jinner, mc_json_get(&ca->jinner, 0, "url"), url, sizeof(url)) < 0 ||
        strcmp(url, c->w.url) != 0)
        return "externalAccountBinding: url is not the newAccount URL";
    n = mc_b64url_decode((uint8_t *)pay, sizeof(pay) - 1, pays, payn);
    if (n < 0 || mc_json_parse(&ca->jiprot, pay, (size_t)n) != 0 ||
        mc_jwk_parse(&k, &ca->jiprot, 0, &why) != 0 || memcmp(k.thumb, c->w.jwk.thumb, 32) != 0)
        return "externalAccountBinding: the payload is not the account's key";
    sl = mc_b64url_decode(sig, sizeof(sig), ss, sn);
    buf_reset(&ca->scratch);
    buf_append(&ca->scratch, ps, pn);
    buf_putc(&ca->scratch, '.');
    buf_append(&ca->scratch, pays, payn);
    HMAC(EVP_sha256(), ca->o.eab_key, ca->o.eab_key_len, (const uint8_t *)ca->scratch.data,
         ca->scratch.len, mac, &mac_len);
    if (sl != 32 || CRYPTO_memcmp(sig, mac, 32) != 0)
        return "externalAccountBinding: the MAC does not verify";
    return NULL;
}

static enum mc_action h_new_account(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    struct mc_json *jp = &ca->jpay;
    uint64_t th = mc_hash64(c->w.jwk.thumb, 32, 0);
    uint32_t id = 0;
    struct account *a;
    int t;

    if (!c->w.has_jwk)
        return problem(ca, c->rs, 400, "malformed", "newAccount must be signed with a jwk");
    if (mc_map_get(&ca->by_thumb, th, &id) && id) {
        /* RFC 8555 §7.3.1: the key has an account: 200 with its URL. */
        a = acct_get(ca, id);
        if (a->deactivated)
            return problem(ca, c->rs, 401, "unauthorized", "the account is deactivated");
        url_of(ca, c->rs->location, "acct", id);
        account_json(c->rs->body, a);
        c->rs->ctype = MC_CT_JSON;
        return MC_ACT_RESPOND;
    }
    if (c->w.payload_tok < 0 || jp->t[0].type != MC_J_OBJ)
        return problem(ca, c->rs, 400, "malformed", "newAccount payload must be an object");
    if (mc_json_is_true(jp, mc_json_get(jp, 0, "onlyReturnExisting")))
        return problem(ca, c->rs, 400, "accountDoesNotExist", "no account for this key");
    if (!mc_json_is_true(jp, mc_json_get(jp, 0, "termsOfServiceAgreed")))
        return problem(ca, c->rs, 400, "userActionRequired",
                       "the terms of service must be agreed to (termsOfServiceAgreed)");
    t = mc_json_get(jp, 0, "externalAccountBinding");
    if (ca->o.eab_kid) {
        const char *why;
        if (t < 0)
            return problem(ca, c->rs, 400, "externalAccountRequired",
                           "this CA requires an external account binding");
        why = eab_check(c, t);
        if (why)
            return problem(ca, c->rs, 400, "malformed", "%s", why);
    }
    if (mc_rl_enabled(ca->rl, MC_RL_NEW_ACCOUNTS)) {
        int64_t wait = mc_rl_check(ca->rl, MC_RL_NEW_ACCOUNTS, c->rq->peer, c->now);
        if (wait)
            return rate_limited(c, MC_RL_NEW_ACCOUNTS, wait, "new accounts from this address");
        mc_rl_take(ca->rl, MC_RL_NEW_ACCOUNTS, c->rq->peer, c->now);
    }
    if (ca->naccts == ca->cap_accts) {
        ca->cap_accts = ca->cap_accts ? ca->cap_accts * 2 : 64;
        ca->accts = xrealloc(ca->accts, ca->cap_accts * sizeof(*ca->accts));
    }
    a = &ca->accts[ca->naccts++];
    memset(a, 0, sizeof(*a));
    memcpy(a->thumb, c->w.jwk.thumb, 32);
    memcpy(a->thumb_b64, c->w.jwk.thumb_b64, sizeof(a->thumb_b64));
    a->type = c->w.jwk.type;
    memcpy(a->spki, c->w.jwk.spki, c->w.jwk.spki_len);
    a->spki_len = (uint16_t)c->w.jwk.spki_len;
    a->pkey = c->jwk_pkey; /* verified in signed_post; NULL with --trust-jws */
    c->jwk_pkey = NULL;
    t = mc_json_get(jp, 0, "contact");
    if (t >= 0 && jp->t[t].type == MC_J_ARR && jp->t[t].len < 4096)
        a->contact = xstrndup(jp->s + jp->t[t].start, jp->t[t].len);
    id = (uint32_t)ca->naccts;
    mc_map_put(&ca->by_thumb, th, id);
    ca->st.accounts++;
    c->rs->status = 201;
    url_of(ca, c->rs->location, "acct", id);
    account_json(c->rs->body, a);
    c->rs->ctype = MC_CT_JSON;
    return MC_ACT_RESPOND;
}

static enum mc_action h_account(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    struct mc_json *jp = &ca->jpay;

    if (c->id != c->acct_id)
        return problem(ca, c->rs, 403, "unauthorized", "the account URL is not the kid");
    if (c->w.payload_tok >= 0) {
        int t = mc_json_get(jp, 0, "status");
        char s[32];
        if (t >= 0 && mc_json_str(jp, t, s, sizeof(s)) >= 0) {
            if (strcmp(s, "deactivated") != 0)
                return problem(ca, c->rs, 400, "malformed", "status can only become deactivated");
            c->acct->deactivated = 1; /* RFC 8555 §7.3.6 */
        }
        t = mc_json_get(jp, 0, "contact");
        if (t >= 0 && jp->t[t].type == MC_J_ARR && jp->t[t].len < 4096) {
            free(c->acct->contact);
            c->acct->contact = xstrndup(jp->s + jp->t[t].start, jp->t[t].len);
        }
    }
    account_json(c->rs->body, c->acct);
    c->rs->ctype = MC_CT_JSON;
    return MC_ACT_RESPOND;
}

/*
 * check_name lower-cases a DNS identifier into out and checks it: LDH
 * labels of 1..63 octets, no hyphen at either end, at least two labels, at
 * most 253 octets, "*." allowed in front. Returns NULL or why not.
 */
static const char *check_name(const char *in, char *out)
{
    size_t n = strlen(in), label = 0, labels = 1;
    const char *p = in;

    if (n == 0 || n > MC_NAME_MAX)
        return "empty or longer than 253 octets";
    if (p[0] == '*') {
        if (p[1] != '.')
            return "a wildcard must be the whole leftmost label";
        p += 2;
    }
    for (size_t i = 0; p[i]; i++) {
        char ch = p[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch + 32);
        if (ch == '.') {
            if (label == 0 || p[i - 1] == '-')
                return "empty label or a label ending in a hyphen";
            label = 0;
            labels++;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return "characters other than letters, digits and hyphens";
        if (ch == '-' && label == 0)
            return "a label starting with a hyphen";
        if (++label > 63)
            return "a label longer than 63 octets";
    }
    if (label == 0 || labels < 2)
        return "fewer than two labels or a trailing dot";
    for (size_t i = 0; i <= n; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
    return NULL;
}

static uint64_t regdom_key(const char *name)
{
    char rd[HOSTNAME_MAX + 1];
    const char *base = name[0] == '*' ? name + 2 : name;

    if (hostname_registered_domain(rd, base) != 0)
        str_copy(rd, sizeof(rd), base);
    return mc_hash64(rd, strlen(rd), 0xd0);
}

static uint64_t failed_key(uint32_t acct, const char *name)
{
    return mc_hash64(name, strlen(name), 0xfa00000000ULL | acct);
}

static enum mc_action h_new_order(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    struct mc_json *jp = &ca->jpay;
    static char namebuf[MC_MAX_NAMES][MC_NAME_MAX + 1];
    const char *names[MC_MAX_NAMES];
    size_t n = 0;
    int ti, t;
    uint8_t rserial[MC_SERIAL_LEN];
    int has_replaces = 0, ari = 0, renewal;
    char replaces[256] = "";
    uint64_t sh;
    struct order *o;
    uint32_t oid;

    if (c->w.payload_tok < 0 || jp->t[0].type != MC_J_OBJ)
        return problem(ca, c->rs, 400, "malformed", "newOrder payload must be an object");
    /* Let's Encrypt refuses notBefore and notAfter (RFC 8555 §7.4 makes them optional). */
    if (mc_json_get(jp, 0, "notBefore") >= 0 || mc_json_get(jp, 0, "notAfter") >= 0)
        return problem(ca, c->rs, 400, "malformed", "notBefore and notAfter are not supported");
    ti = mc_json_get(jp, 0, "identifiers");
    if (ti < 0 || jp->t[ti].type != MC_J_ARR || jp->t[ti].size == 0)
        return problem(ca, c->rs, 400, "malformed", "identifiers must be a non-empty array");
    if (jp->t[ti].size > MC_MAX_NAMES)
        return problem(ca, c->rs, 400, "rejectedIdentifier", "more than %d identifiers",
                       MC_MAX_NAMES);
    for (int e = 0, i = ti + 1; e < jp->t[ti].size; e++, i = jp->t[i].end) {
        char type[16], value[MC_NAME_MAX + 2];
        const char *why;
        int dup = 0;
        if (jp->t[i].type != MC_J_OBJ ||
            mc_json_str(jp, mc_json_get(jp, i, "type"), type, sizeof(type)) < 0 ||
            mc_json_str(jp, mc_json_get(jp, i, "value"), value, sizeof(value)) < 0)
            return problem(ca, c->rs, 400, "malformed", "an identifier is not {type, value}");
        if (strcmp(type, "dns") != 0)
            return problem(ca, c->rs, 400, "unsupportedIdentifier",
                           "identifier type %s is not supported", type);
        why = check_name(value, namebuf[n]);
        if (why)
            return problem(ca, c->rs, 400, "rejectedIdentifier", "invalid identifier %s: %s", value,
                           why);
        for (size_t k = 0; k < n; k++)
            dup |= strcmp(names[k], namebuf[n]) == 0;
        if (!dup) {
            names[n] = namebuf[n];
            n++;
        }
    }
    sh = set_hash(ca, names, n);

    t = mc_json_get(jp, 0, "replaces");
    if (t >= 0) {
        int len = mc_json_str(jp, t, replaces, sizeof(replaces));
        int rc = len > 0 ? parse_cert_id(ca, replaces, (size_t)len, rserial) : CF_EPARSE;
        uint32_t by, prev;
        if (rc == CF_EPARSE)
            return problem(ca, c->rs, 400, "malformed", "replaces is not a certificate identifier");
        if (rc != 0)
            return problem(ca, c->rs, 400, "malformed",
                           "replaces names a certificate this CA did not issue");
        prev = serial_order(ca, rserial);
        if (prev) {
            /* RFC 9773 §5: the predecessor is the account's and shares an identifier. */
            const char *pn[MC_MAX_NAMES];
            size_t pnn = order_names(ca, &ca->orders[prev - 1], pn);
            int share = 0;
            if (ca->orders[prev - 1].acct != c->acct_id)
                return problem(ca, c->rs, 403, "unauthorized",
                               "replaces names a certificate of another account");
            for (size_t i = 0; i < pnn && !share; i++)
                for (size_t k = 0; k < n && !share; k++)
                    share = strcmp(pn[i], names[k]) == 0;
            if (!share)
                return problem(ca, c->rs, 400, "malformed",
                               "the replaced certificate shares no identifier with the order");
        }
        if (mc_map_get(&ca->replaced, mc_hash64(rserial, MC_SERIAL_LEN, 0x5e), &by) && by)
            return problem(ca, c->rs, 409, "alreadyReplaced",
                           "certificate %s was already replaced by order %u", replaces, by);
        has_replaces = 1;
        ari = 1;
    }
    {
        uint32_t one;
        renewal = mc_map_get(&ca->issued_sets, sh, &one);
    }

    /*
     * The limits, as Boulder applies them to newOrder: an ARI renewal is
     * exempt from all; a renewal (the exact set issued before) from new
     * orders and certificates per domain; failed authorizations are only
     * checked here (they are counted when one fails).
     */
    if (ca->rl) {
        int64_t wait;
        if (!ari && !renewal) {
            wait = mc_rl_check(ca->rl, MC_RL_NEW_ORDERS, c->acct_id, c->now);
            if (wait)
                return rate_limited(c, MC_RL_NEW_ORDERS, wait, "new orders from this account");
            for (size_t i = 0; i < n; i++) {
                wait = mc_rl_check(ca->rl, MC_RL_CERTS_PER_DOMAIN, regdom_key(names[i]), c->now);
                if (wait)
                    return rate_limited(c, MC_RL_CERTS_PER_DOMAIN, wait,
                                        "certificates for this registered domain");
            }
        }
        if (!ari) {
            wait = mc_rl_check(ca->rl, MC_RL_DUPLICATE_CERTS, sh, c->now);
            if (wait)
                return rate_limited(c, MC_RL_DUPLICATE_CERTS, wait,
                                    "certificates for this exact set of identifiers");
        }
        for (size_t i = 0; i < n; i++) {
            const char *base = names[i][0] == '*' ? names[i] + 2 : names[i];
            wait = mc_rl_check(ca->rl, MC_RL_FAILED_AUTHZ, failed_key(c->acct_id, base), c->now);
            if (wait)
                return rate_limited(c, MC_RL_FAILED_AUTHZ, wait,
                                    "failed authorizations for this identifier");
        }
        if (!ari && !renewal) {
            uint64_t done[MC_MAX_NAMES];
            size_t nd = 0;
            mc_rl_take(ca->rl, MC_RL_NEW_ORDERS, c->acct_id, c->now);
            for (size_t i = 0; i < n; i++) {
                uint64_t k = regdom_key(names[i]);
                int seen = 0;
                for (size_t d = 0; d < nd; d++)
                    seen |= done[d] == k;
                if (!seen) {
                    done[nd++] = k;
                    mc_rl_take(ca->rl, MC_RL_CERTS_PER_DOMAIN, k, c->now);
                }
            }
        }
        if (!ari)
            mc_rl_take(ca->rl, MC_RL_DUPLICATE_CERTS, sh, c->now);
    }

    if (ca->norders == ca->cap_orders) {
        ca->cap_orders = ca->cap_orders ? ca->cap_orders * 2 : 1024;
        ca->orders = xrealloc(ca->orders, ca->cap_orders * sizeof(*ca->orders));
    }
    if (ca->nauthzs + n > ca->cap_authzs) {
        while (ca->nauthzs + n > ca->cap_authzs)
            ca->cap_authzs = ca->cap_authzs ? ca->cap_authzs * 2 : 1024;
        ca->authzs = xrealloc(ca->authzs, ca->cap_authzs * sizeof(*ca->authzs));
    }
    oid = (uint32_t)++ca->norders;
    o = &ca->orders[oid - 1];
    memset(o, 0, sizeof(*o));
    o->acct = c->acct_id;
    o->authz0 = (uint32_t)ca->nauthzs + 1;
    o->nnames = (uint8_t)n;
    o->expires = c->now / 1000 + ca->o.order_lifetime_s;
    o->set_hash = sh;
    o->flags = (uint8_t)((renewal ? O_RENEWAL : 0) | (ari ? O_ARI : 0));
    o->hx = (uint8_t)(ca->o.hostile ? ca->o.hostile : hx_of_name(names[0]));
    c->hx_order = oid;
    o->names = (uint32_t)ca->arena.len;
    for (size_t i = 0; i < n; i++)
        arena_put(ca, names[i], strlen(names[i]));
    if (has_replaces) {
        o->replaces = arena_put(ca, replaces, strlen(replaces)) + 1;
        memcpy(o->replaced_serial, rserial, MC_SERIAL_LEN);
    }
    for (size_t i = 0; i < n; i++) {
        struct authz *a = &ca->authzs[ca->nauthzs++];
        int wild = names[i][0] == '*';
        memset(a, 0, sizeof(*a));
        a->order = oid;
        a->wildcard = (uint8_t)wild;
        a->name = arena_put(ca, wild ? names[i] + 2 : names[i], strlen(names[i]) - (wild ? 2 : 0));
    }
    ca->st.orders++;
    c->rs->status = 201;
    url_of(ca, c->rs->location, "order", oid);
    order_json(ca, c->rs->body, o, oid, c->now);
    c->rs->ctype = MC_CT_JSON;
    return MC_ACT_RESPOND;
}

static enum mc_action h_order(struct ctx *c)
{
    struct order *o = order_get(c->ca, c->id);

    if (!o)
        return problem(c->ca, c->rs, 404, "malformed", "no such order");
    if (o->acct != c->acct_id)
        return problem(c->ca, c->rs, 403, "unauthorized", "the order is another account's");
    c->hx_order = c->id;
    order_json(c->ca, c->rs->body, o, c->id, c->now);
    c->rs->ctype = MC_CT_JSON;
    if (o->phase == PHASE_FINALIZED && order_status(c->ca, o, c->now) == ST_PROCESSING)
        c->rs->retry_after = 1;
    return MC_ACT_RESPOND;
}

static enum mc_action h_authz(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    struct authz *a = authz_get(ca, c->id);

    if (!a)
        return problem(ca, c->rs, 404, "malformed", "no such authorization");
    if (ca->orders[a->order - 1].acct != c->acct_id)
        return problem(ca, c->rs, 403, "unauthorized", "the authorization is another account's");
    c->hx_order = a->order;
    if (c->w.payload_tok >= 0) {
        char s[32];
        int t = mc_json_get(&ca->jpay, 0, "status");
        /* RFC 8555 §7.5.2: a client may deactivate an authorization. */
        if (t >= 0 && mc_json_str(&ca->jpay, t, s, sizeof(s)) >= 0) {
            if (strcmp(s, "deactivated") != 0)
                return problem(ca, c->rs, 400, "malformed", "status can only become deactivated");
            a->status = ST_DEACTIVATED;
        }
    }
    authz_json(ca, c->rs->body, a, c->id, c->now);
    c->rs->ctype = MC_CT_JSON;
    /* While the challenge is processing, tell the client when to look again (§7.5.1). */
    if (a->status == ST_PENDING && a->chall == ST_PROCESSING)
        c->rs->retry_after = 1;
    return MC_ACT_RESPOND;
}

/* key_authz_digest writes the dns-01 TXT value expected for authorization id (RFC 8555 §8.4). */
static void key_authz_digest(struct mc_ca *ca, uint32_t id, const struct account *acct,
                             char out[48])
{
    char tok[32], ka[96];
    uint8_t md[SHA256_DIGEST_LENGTH];
    int n;

    token_of(ca, id, tok);
    n = snprintf(ka, sizeof(ka), "%s.%s", tok, acct->thumb_b64);
    SHA256((const uint8_t *)ka, (size_t)n, md);
    mc_b64url_str(out, md, sizeof(md));
}

static enum mc_action h_challenge(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    struct authz *a = authz_get(ca, c->id);

    if (!a)
        return problem(ca, c->rs, 404, "malformed", "no such challenge");
    if (ca->orders[a->order - 1].acct != c->acct_id)
        return problem(ca, c->rs, 403, "unauthorized", "the challenge is another account's");
    c->hx_order = a->order;
    authz_status(ca, a, c->now);
    /* RFC 8555 §7.5.1: a POST with an object (usually {}) asks for validation; "" only reads. */
    if (c->w.payload_tok >= 0 && a->status == ST_PENDING && a->chall == ST_PENDING) {
        a->chall = ST_PROCESSING;
        if (ca->o.validate_dns) {
            char expected[48];
            key_authz_digest(ca, c->id, c->acct, expected);
            if (ca->dns) /* NULL only while shutting down: the challenge stays processing */
                mc_dnsval_start(ca->dns, c->id, arena_str(ca, a->name), expected);
        } else {
            a->validated_ms = c->now + ca->o.validation_ms;
            authz_status(ca, a, c->now);
        }
    }
    {
        char up[MC_URL_MAX];
        url_of(ca, up, "authz", c->id);
        str_fmt(c->rs->links[c->rs->nlinks++], sizeof(c->rs->links[0]), "<%s>;rel=\"up\"", up);
    }
    chall_json(ca, c->rs->body, a, c->id);
    c->rs->ctype = MC_CT_JSON;
    return MC_ACT_RESPOND;
}

void mc_ca_dnsval_done(void *arg, uint32_t id, enum mc_verr err)
{
    struct mc_ca *ca = arg;
    struct authz *a = authz_get(ca, id);
    int64_t now = cf_wall_ms();

    if (!a || a->chall != ST_PROCESSING || ca->orders[a->order - 1].hx == MC_HX_PENDING_FOREVER)
        return;
    a->validated_ms = now;
    if (err == MC_VERR_NONE) {
        a->chall = ST_VALID;
        a->status = ST_VALID;
        ca->st.authz_valid++;
        return;
    }
    a->chall = ST_INVALID;
    a->status = ST_INVALID;
    a->error = (uint8_t)err;
    ca->st.authz_invalid++;
    /* The failure counts against the identifier for this account (Let's Encrypt: 5 per hour). */
    if (ca->rl)
        mc_rl_take(ca->rl, MC_RL_FAILED_AUTHZ,
                   failed_key(ca->orders[a->order - 1].acct, arena_str(ca, a->name)), now);
}

static enum mc_action h_finalize(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    struct order *o = order_get(ca, c->id);
    static uint8_t der[65536];
    static char csrnames[MC_MAX_NAMES][MC_NAME_MAX + 1];
    const char *names[MC_MAX_NAMES], *cnames[MC_MAX_NAMES];
    struct mc_csr csr;
    const char *why;
    long n;
    size_t ncsr = 0;
    int tok;
    const char *pem;
    size_t pem_len;

    if (!o)
        return problem(ca, c->rs, 404, "malformed", "no such order");
    if (o->acct != c->acct_id)
        return problem(ca, c->rs, 403, "unauthorized", "the order is another account's");
    c->hx_order = c->id;
    if (order_status(ca, o, c->now) != ST_READY)
        return problem(ca, c->rs, 403, "orderNotReady", "the order is %s, not ready",
                       st_names[order_status(ca, o, c->now)]);
    tok = c->w.payload_tok >= 0 ? mc_json_get(&ca->jpay, 0, "csr") : -1;
    if (tok < 0 || ca->jpay.t[tok].type != MC_J_STR || ca->jpay.t[tok].esc)
        return problem(ca, c->rs, 400, "malformed", "finalize needs a csr");
    n = mc_b64url_decode(der, sizeof(der), ca->jpay.s + ca->jpay.t[tok].start, ca->jpay.t[tok].len);
    if (n <= 0)
        return problem(ca, c->rs, 400, "badCSR", "the csr is not base64url DER");
    if (mc_csr_parse(&csr, der, (size_t)n, &why) != 0)
        return problem(ca, c->rs, 400, "badCSR", "%s", why);
    /* RFC 8555 §7.4: exactly the order's identifiers; a CN must be one of them. */
    for (size_t i = 0; i < csr.n; i++) {
        char tmp[MC_NAME_MAX + 2];
        int dup = 0;
        if (csr.names[i].len > MC_NAME_MAX || memchr(csr.names[i].p, 0, csr.names[i].len))
            return problem(ca, c->rs, 400, "badCSR", "a name is too long");
        memcpy(tmp, csr.names[i].p, csr.names[i].len);
        tmp[csr.names[i].len] = '\0';
        if (check_name(tmp, csrnames[ncsr]))
            return problem(ca, c->rs, 400, "badCSR", "invalid name %s", tmp);
        for (size_t k = 0; k < ncsr; k++)
            dup |= strcmp(cnames[k], csrnames[ncsr]) == 0;
        if (!dup) {
            cnames[ncsr] = csrnames[ncsr];
            ncsr++;
        }
    }
    if (ncsr != o->nnames || set_hash(ca, cnames, ncsr) != o->set_hash)
        return problem(ca, c->rs, 400, "badCSR", "the CSR's names are not the order's identifiers");
    if (csr.cn_len) {
        int found = 0;
        order_names(ca, o, names);
        for (size_t i = 0; i < o->nnames && !found; i++)
            found = strlen(names[i]) == csr.cn_len &&
                    strncasecmp(names[i], (const char *)csr.cn, csr.cn_len) == 0;
        if (!found)
            return problem(ca, c->rs, 400, "badCSR", "the CN is not one of the identifiers");
    }
    if (csr.spki_len == c->acct->spki_len && memcmp(csr.spki, c->acct->spki, csr.spki_len) == 0)
        return problem(ca, c->rs, 400, "badCSR", "the certificate key is the account key");
    if (ca->o.verify_jws) {
        if (mc_csr_verify(&csr, &why) != 0)
            return problem(ca, c->rs, 400, "badCSR", "%s", why);
        ca->st.csr_verified++;
    }
    o->spki = arena_put(ca, csr.spki, csr.spki_len);
    o->spki_len = (uint16_t)csr.spki_len;
    o->key_type = (uint8_t)csr.key_type;
    o->not_before = c->now / 1000;
    o->lifetime_s = (uint32_t)ca->o.lifetime_s;
    o->phase = PHASE_FINALIZED;
    o->finalized_ms = c->now;
    o->cache = 0;
    if (leaf_pem(ca, o, c->id, &pem, &pem_len) != 0) {
        o->phase = PHASE_INVALID;
        return problem(ca, c->rs, 500, "serverInternal", "signing failed");
    }
    ca->st.certs_issued++;
    mc_map_put(&ca->issued_sets, o->set_hash, 1);
    if (o->replaces) {
        mc_map_put(&ca->replaced, mc_hash64(o->replaced_serial, MC_SERIAL_LEN, 0x5e), c->id);
        ca->st.replaced++;
    }
    url_of(ca, c->rs->location, "order", c->id);
    order_json(ca, c->rs->body, o, c->id, c->now);
    c->rs->ctype = MC_CT_JSON;
    if (ca->o.processing_ms > 0)
        c->rs->retry_after = (ca->o.processing_ms + 999) / 1000;
    return MC_ACT_RESPOND;
}

static enum mc_action h_cert(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    struct order *o = order_get(ca, c->id);
    const char *pem;
    size_t len;

    if (!o || order_status(ca, o, c->now) != ST_VALID)
        return problem(ca, c->rs, 404, "malformed", "no such certificate");
    if (o->acct != c->acct_id)
        return problem(ca, c->rs, 403, "unauthorized", "the certificate is another account's");
    c->hx_order = c->id;
    if (ca->cache[o->cache].order != c->id)
        ca->st.certs_rebuilt++;
    if (leaf_pem(ca, o, c->id, &pem, &len) != 0)
        return problem(ca, c->rs, 500, "serverInternal", "signing failed");
    /* RFC 8555 §7.4.2: the chain, leaf first. */
    buf_append(c->rs->body, pem, len);
    buf_append(c->rs->body, ca->is->pem.data, ca->is->pem.len);
    c->rs->ctype = MC_CT_PEM;
    ca->st.certs_downloaded++;
    return MC_ACT_RESPOND;
}

static enum mc_action h_issuer(struct ctx *c)
{
    buf_append(c->rs->body, c->ca->is->pem.data, c->ca->is->pem.len);
    c->rs->ctype = MC_CT_PEM;
    return MC_ACT_RESPOND;
}

static enum mc_action h_renewal_info(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    uint8_t serial[MC_SERIAL_LEN];
    int rc = parse_cert_id(ca, c->tail, c->tail_len, serial);
    int64_t nb = 0, lt = 0, start, end;
    uint32_t id;
    char ts[32], te[32];

    if (rc == CF_EPARSE)
        return problem(ca, c->rs, 400, "malformed", "not a certificate identifier");
    if (rc != 0)
        return problem(ca, c->rs, 404, "malformed", "no such certificate");
    for (int i = 0; i < 4; i++) {
        nb = (nb << 8) | serial[4 + i];
        lt = (lt << 8) | serial[8 + i];
    }
    /* RFC 9773 §4.2: the window, as fractions of the lifetime after notBefore. */
    start = nb + (int64_t)(ca->o.ari_start * (double)lt);
    end = nb + (int64_t)(ca->o.ari_end * (double)lt);
    if (end <= start)
        end = start + 1;
    id = serial_order(ca, serial);
    if (id && (ca->orders[id - 1].flags & O_REVOKED)) {
        /* A revoked certificate: renew now (a window in the past, §4.2). */
        end = c->now / 1000 - 3600;
        start = end - 3600;
    }
    fmt_time(ts, start);
    fmt_time(te, end);
    buf_printf(c->rs->body, "{\"suggestedWindow\":{\"start\":\"%s\",\"end\":\"%s\"}}", ts, te);
    c->rs->ctype = MC_CT_JSON;
    c->rs->retry_after = ca->o.ari_retry_after;
    ca->st.renewal_info++;
    return MC_ACT_RESPOND;
}

static enum mc_action h_revoke(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    struct mc_json *jp = &ca->jpay;
    static uint8_t der[16384];
    const uint8_t *sn, *spki;
    size_t snl, spkil;
    uint8_t serial[MC_SERIAL_LEN];
    int t = c->w.payload_tok >= 0 ? mc_json_get(jp, 0, "certificate") : -1;
    long n;
    uint32_t id;
    struct order *o;

    if (t < 0 || jp->t[t].type != MC_J_STR || jp->t[t].esc)
        return problem(ca, c->rs, 400, "malformed", "revokeCert needs a certificate");
    n = mc_b64url_decode(der, sizeof(der), jp->s + jp->t[t].start, jp->t[t].len);
    if (n <= 0 || mc_cert_serial(der, (size_t)n, &sn, &snl, &spki, &spkil) != 0)
        return problem(ca, c->rs, 400, "malformed", "the certificate does not parse");
    if (snl != MC_SERIAL_LEN)
        return problem(ca, c->rs, 404, "malformed", "not a certificate of this CA");
    memcpy(serial, sn, MC_SERIAL_LEN);
    id = serial_order(ca, serial);
    o = order_get(ca, id);
    if (!o)
        return problem(ca, c->rs, 404, "malformed", "no such certificate");
    /* RFC 8555 §7.6: signed by the account that got it, or by the certificate's key. */
    if (c->w.has_jwk ? !(o->spki_len == spkil && memcmp(arena_str(ca, o->spki), spki, spkil) == 0)
                     : o->acct != c->acct_id)
        return problem(ca, c->rs, 403, "unauthorized", "not allowed to revoke this certificate");
    if (o->flags & O_REVOKED)
        return problem(ca, c->rs, 400, "alreadyRevoked", "the certificate is revoked already");
    o->flags |= O_REVOKED;
    ca->st.revocations++;
    return MC_ACT_RESPOND;
}

/*
 * h_key_change rolls an account over to a new key (RFC 8555 §7.3.5): the
 * outer JWS (kid, old key) carries an inner JWS signed by the new key (jwk)
 * with the same url and the payload {account, oldKey}.
 */
static enum mc_action h_key_change(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    struct jws inner;
    static uint8_t isig[1024];
    size_t isig_len = 0;
    char acct_url[MC_URL_MAX], own_url[MC_URL_MAX];
    struct mc_jwk old;
    const char *why;
    int t;
    uint32_t other = 0;
    uint64_t th_new, th_old;
    EVP_PKEY *pk = NULL;

    if (c->w.payload_tok < 0)
        return problem(ca, c->rs, 400, "malformed", "keyChange needs an inner JWS");
    why = jws_read(ca, &inner, c->w.payload, c->w.payload_len, &ca->jinner, &ca->jiprot, &ca->jipay,
                   &ca->iprot, &ca->ipayload, isig, &isig_len);
    if (why)
        return problem(ca, c->rs, 400, "malformed", "inner JWS: %s", why);
    if (!inner.has_jwk)
        return problem(ca, c->rs, 400, "malformed", "inner JWS must carry the new key as jwk");
    if (strcmp(inner.url, c->w.url) != 0)
        return problem(ca, c->rs, 400, "malformed", "inner and outer url differ");
    if (ca->o.verify_jws) {
        pk = mc_key_from_spki(inner.jwk.spki, inner.jwk.spki_len);
        if (!pk)
            return problem(ca, c->rs, 400, "badPublicKey", "the new key is not a valid key");
        if (jws_verify(ca, pk, inner.jwk.type, inner.alg, isig, isig_len) != 0) {
            EVP_PKEY_free(pk);
            return problem(ca, c->rs, 400, "malformed", "inner JWS signature does not verify");
        }
    }
    url_of(ca, own_url, "acct", c->acct_id);
    if (inner.payload_tok < 0 ||
        mc_json_str(&ca->jipay, mc_json_get(&ca->jipay, 0, "account"), acct_url, sizeof(acct_url)) <
            0 ||
        strcmp(acct_url, own_url) != 0) {
        EVP_PKEY_free(pk);
        return problem(ca, c->rs, 400, "malformed", "inner payload account is not the kid");
    }
    t = mc_json_get(&ca->jipay, 0, "oldKey");
    if (t < 0 || mc_jwk_parse(&old, &ca->jipay, t, &why) != 0 ||
        memcmp(old.thumb, c->acct->thumb, 32) != 0) {
        EVP_PKEY_free(pk);
        return problem(ca, c->rs, 400, "malformed", "oldKey is not the account's current key");
    }
    th_new = mc_hash64(inner.jwk.thumb, 32, 0);
    if (mc_map_get(&ca->by_thumb, th_new, &other) && other) {
        EVP_PKEY_free(pk);
        url_of(ca, c->rs->location, "acct", other);
        return problem(ca, c->rs, 409, "malformed", "the new key is already in use by account %u",
                       other);
    }
    th_old = mc_hash64(c->acct->thumb, 32, 0);
    mc_map_put(&ca->by_thumb, th_old, 0);
    mc_map_put(&ca->by_thumb, th_new, c->acct_id);
    EVP_PKEY_free(c->acct->pkey);
    c->acct->pkey = pk;
    c->acct->type = inner.jwk.type;
    memcpy(c->acct->thumb, inner.jwk.thumb, 32);
    memcpy(c->acct->thumb_b64, inner.jwk.thumb_b64, sizeof(c->acct->thumb_b64));
    memcpy(c->acct->spki, inner.jwk.spki, inner.jwk.spki_len);
    c->acct->spki_len = (uint16_t)inner.jwk.spki_len;
    ca->st.key_changes++;
    account_json(c->rs->body, c->acct);
    c->rs->ctype = MC_CT_JSON;
    return MC_ACT_RESPOND;
}

/* ---- hostile answers ------------------------------------------------------------------ */

/*
 * What a broken or malicious CA may answer, one mode per order (o->hx, set
 * at newOrder). The CA's state moves on as for any order (an order with a
 * spoiled newOrder answer exists, its certificate is issued at finalize):
 * only the answers the client sees are spoiled, by hostile() after the
 * handler wrote the honest one. Problem documents are left alone. A client
 * must refuse every one of these answers, name what it refused, and store
 * nothing.
 */

#define HX_HUGE_BYTES (5u * 1024 * 1024) /* past any sane body cap (certfleet's: 1 MiB) */
#define HX_BIG_BYTES (300u * 1024)       /* under a 1 MiB body cap, past a 256 KiB JSON cap */
#define HX_MANY_AUTHZ 1000               /* RFC 8555 does not bound them; Let's Encrypt: 100 */
#define HX_DEPTH 100000                  /* nesting of deep-order */

/* hx_pad appends a member of n filler octets to the JSON object in b (its last octet a '}'). */
static void hx_pad(struct buf *b, size_t n)
{
    if (b->len && b->data[b->len - 1] == '}')
        b->len--;
    buf_puts(b, ",\"x-padding\":\"");
    buf_reserve(b, n + 2);
    memset(b->data + b->len, 'a', n);
    b->len += n;
    b->data[b->len] = '\0';
    buf_puts(b, "\"}");
}

/* hx_order_body spoils the newOrder answer about o (order id) in rs->body. */
static void hx_order_body(struct ctx *c, struct order *o, uint32_t id)
{
    struct mc_ca *ca = c->ca;
    struct buf *b = c->rs->body;
    const char *names[MC_MAX_NAMES];
    char t[32];

    order_names(ca, o, names);
    fmt_time(t, o->expires);
    switch ((enum mc_hx)o->hx) {
    case MC_HX_HUGE_ORDER:
        hx_pad(b, HX_HUGE_BYTES);
        break;
    case MC_HX_BIG_ORDER:
        hx_pad(b, HX_BIG_BYTES);
        break;
    case MC_HX_MANY_AUTHZ:
        buf_reset(b);
        buf_printf(b,
                   "{\"status\":\"pending\",\"expires\":\"%s\",\"identifiers\":[{\"type\":\"dns\","
                   "\"value\":\"%s\"}],\"authorizations\":[",
                   t, names[0]);
        for (uint32_t i = 0; i < HX_MANY_AUTHZ; i++)
            buf_printf(b, "%s\"%s/acme/authz/%u\"", i ? "," : "", ca->base, o->authz0 + i);
        buf_printf(b, "],\"finalize\":\"%s/acme/finalize/%u\"}", ca->base, id);
        break;
    case MC_HX_TRUNC_ORDER:
        b->len /= 2;
        break;
    case MC_HX_TYPES_ORDER:
        /* Every member there, each of another type than RFC 8555 §7.1.3 gives it. */
        buf_reset(b);
        buf_printf(b,
                   "{\"status\":[\"pending\"],\"expires\":%lld,\"identifiers\":\"%s\","
                   "\"authorizations\":\"%s/acme/authz/%u\",\"finalize\":%u}",
                   (long long)o->expires, names[0], ca->base, o->authz0, id);
        break;
    case MC_HX_DEEP_ORDER:
        buf_reset(b);
        buf_reserve(b, 2 * HX_DEPTH);
        memset(b->data, '[', HX_DEPTH);
        memset(b->data + HX_DEPTH, ']', HX_DEPTH);
        b->len = 2 * HX_DEPTH;
        b->data[b->len] = '\0';
        break;
    default:
        return;
    }
    ca->st.hostile[o->hx]++;
}

/* hx_authz_body spoils an authorization (id) of o in rs->body. */
static void hx_authz_body(struct ctx *c, struct order *o, uint32_t id)
{
    struct mc_ca *ca = c->ca;
    struct buf *b = c->rs->body;
    struct authz *a = authz_get(ca, id);
    char t[32];

    if (o->hx == MC_HX_TRUNC_AUTHZ) {
        b->len /= 2;
    } else {
        /* RFC 8555 §8.1: the token is a base64url string; a number here. */
        fmt_time(t, o->expires);
        buf_reset(b);
        buf_printf(b,
                   "{\"identifier\":{\"type\":\"dns\",\"value\":\"%s\"},\"status\":\"pending\","
                   "\"expires\":\"%s\",\"challenges\":[{\"type\":\"dns-01\",\"url\":"
                   "\"%s/acme/chall/%u\",\"status\":\"pending\",\"token\":%u}]}",
                   arena_str(ca, a->name), t, ca->base, id, id);
    }
    ca->st.hostile[o->hx]++;
}

/* hx_leaf appends a leaf like o's, for names and spki instead of o's, to out. */
static int hx_leaf(struct ctx *c, struct order *o, struct buf *out, const char *const *names,
                   size_t nnames, const uint8_t *spki, size_t spki_len, enum mc_key_type kt)
{
    struct mc_leaf l;

    memset(&l, 0, sizeof(l));
    serial_of(c->ca, o, c->id, l.serial);
    l.not_before = o->not_before;
    l.not_after = o->not_before + o->lifetime_s;
    l.spki = spki;
    l.spki_len = spki_len;
    l.key_type = kt;
    l.names = names;
    l.nnames = nnames;
    return mc_issue_leaf(c->ca->is, out, &l);
}

/* hx_chain spoils the certificate chain of o in rs->body. Returns 0 or CF_ECRYPTO. */
static int hx_chain(struct ctx *c, struct order *o)
{
    static const char *const other[] = {"other-name.mockca.invalid",
                                        "www.other-name.mockca.invalid"};
    static const char garbage[] = "this is not a certificate, only text in base64 armour";
    struct mc_ca *ca = c->ca;
    struct buf *b = c->rs->body;
    const struct mc_issuer *is = ca->is;
    const char *names[MC_MAX_NAMES];
    size_t n = order_names(ca, o, names);
    int rc = 0;

    buf_reset(b);
    switch ((enum mc_hx)o->hx) {
    case MC_HX_OTHER_NAMES:
        rc = hx_leaf(c, o, b, other, 2, (const uint8_t *)arena_str(ca, o->spki), o->spki_len,
                     (enum mc_key_type)o->key_type);
        buf_append(b, is->pem.data, is->pem.len);
        break;
    case MC_HX_OTHER_KEY:
        if (ca->other_spki.len == 0)
            rc = mc_spki_new_p256(&ca->other_spki);
        if (rc == 0)
            rc = hx_leaf(c, o, b, names, n, (const uint8_t *)ca->other_spki.data,
                         ca->other_spki.len, MC_KEY_EC256);
        buf_append(b, is->pem.data, is->pem.len);
        break;
    case MC_HX_GARBAGE_PEM:
        buf_puts(b, "-----BEGIN CERTIFICATE-----\n");
        mc_b64_pem(b, garbage, sizeof(garbage) - 1);
        buf_puts(b, "-----END CERTIFICATE-----\n");
        buf_append(b, is->pem.data, is->pem.len);
        break;
    case MC_HX_NOT_PEM:
        buf_puts(b, "<html><body><p>Your certificate is ready.</p></body></html>\n");
        break;
    case MC_HX_EMPTY_CHAIN:
        break;
    case MC_HX_BAD_ISSUER:
        /* The root issued the intermediate, not the leaf: names and key IDs do not chain. */
        rc = hx_leaf(c, o, b, names, n, (const uint8_t *)arena_str(ca, o->spki), o->spki_len,
                     (enum mc_key_type)o->key_type);
        buf_append(b, is->root_pem.data, is->root_pem.len);
        break;
    case MC_HX_HUGE_CERT:
        rc = hx_leaf(c, o, b, names, n, (const uint8_t *)arena_str(ca, o->spki), o->spki_len,
                     (enum mc_key_type)o->key_type);
        while (rc == 0 && b->len < HX_HUGE_BYTES)
            buf_append(b, is->pem.data, is->pem.len);
        break;
    default:
        return 0;
    }
    ca->st.hostile[o->hx]++;
    return rc;
}

/* hx_redirect answers status with a Location on plain http (the same path). */
static void hx_redirect(struct ctx *c, int status)
{
    struct mc_response *rs = c->rs;

    rs->status = status;
    rs->ctype = MC_CT_NONE;
    buf_reset(rs->body);
    str_fmt(rs->location, sizeof(rs->location), "http://%s%.*s", c->ca->base + 8,
            (int)c->rq->path_len, c->rq->path);
    c->ca->st.hostile[c->ca->orders[c->hx_order - 1].hx]++;
}

/*
 * hostile spoils the answer the handler wrote about order c->hx_order when
 * that order has a mode for this endpoint.
 */
static void hostile(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    struct order *o = order_get(ca, c->hx_order);
    struct mc_response *rs = c->rs;

    if (!o || o->hx == MC_HX_NONE || rs->status >= 400)
        return;
    switch ((enum mc_hx)o->hx) {
    case MC_HX_HUGE_ORDER:
    case MC_HX_BIG_ORDER:
    case MC_HX_MANY_AUTHZ:
    case MC_HX_TRUNC_ORDER:
    case MC_HX_TYPES_ORDER:
    case MC_HX_DEEP_ORDER:
        if (c->ep == MC_EP_NEW_ORDER)
            hx_order_body(c, o, c->hx_order);
        break;
    case MC_HX_TRUNC_AUTHZ:
    case MC_HX_TYPES_AUTHZ:
        if (c->ep == MC_EP_AUTHZ)
            hx_authz_body(c, o, c->id);
        break;
    case MC_HX_CTYPE_JSON:
        if (rs->ctype == MC_CT_JSON) {
            rs->ctype = MC_CT_HTML;
            ca->st.hostile[o->hx]++;
        }
        break;
    case MC_HX_CTYPE_CERT:
        if (c->ep == MC_EP_CERT) {
            rs->ctype = MC_CT_HTML;
            ca->st.hostile[o->hx]++;
        }
        break;
    case MC_HX_REDIRECT_ORDER:
        /* Both: a client may finalize without reading the order first (RFC 8555 §7.4). */
        if (c->ep == MC_EP_ORDER || c->ep == MC_EP_FINALIZE)
            hx_redirect(c, 307);
        break;
    case MC_HX_REDIRECT_CERT:
        if (c->ep == MC_EP_CERT)
            hx_redirect(c, 301);
        break;
    case MC_HX_PROCESSING_FOREVER:
        /* order_status keeps it processing; the finalize answer says when to look (§7.4). */
        if (c->ep == MC_EP_FINALIZE || c->ep == MC_EP_ORDER) {
            rs->retry_after = 1;
            ca->st.hostile[o->hx]++;
        }
        break;
    case MC_HX_PENDING_FOREVER:
        /* authz_status keeps the challenge processing; h_authz sends Retry-After: 1. */
        if (c->ep == MC_EP_AUTHZ)
            ca->st.hostile[o->hx]++;
        break;
    default:
        if (c->ep == MC_EP_CERT && hx_chain(c, o) != 0)
            problem(ca, rs, 500, "serverInternal", "signing failed");
        break;
    }
}

/* ---- routing and the common checks --------------------------------------------------- */

static int path_id(const char *p, size_t n, const char *prefix, uint32_t *id)
{
    size_t pl = strlen(prefix);
    uint32_t v = 0;

    if (n <= pl || memcmp(p, prefix, pl) != 0 || n - pl > 9)
        return 0;
    for (size_t i = pl; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (uint32_t)(p[i] - '0');
    }
    *id = v;
    return 1;
}

static enum mc_ep route(struct ctx *c)
{
    const char *p = c->rq->path;
    size_t n = c->rq->path_len;

#define IS(s) (n == sizeof(s) - 1 && memcmp(p, s, n) == 0)
    if (IS("/dir") || IS("/directory"))
        return MC_EP_DIRECTORY;
    if (IS("/acme/new-nonce"))
        return MC_EP_NEW_NONCE;
    if (IS("/acme/new-acct"))
        return MC_EP_NEW_ACCOUNT;
    if (IS("/acme/new-order"))
        return MC_EP_NEW_ORDER;
    if (IS("/acme/revoke-cert"))
        return MC_EP_REVOKE;
    if (IS("/acme/key-change"))
        return MC_EP_KEY_CHANGE;
    if (IS("/acme/issuer"))
        return MC_EP_ISSUER;
    if (IS("/mockca/stats"))
        return MC_EP_STATS;
#undef IS
    if (n > 19 && memcmp(p, "/acme/renewal-info/", 19) == 0) {
        c->tail = p + 19;
        c->tail_len = n - 19;
        return MC_EP_RENEWAL_INFO;
    }
    if (path_id(p, n, "/acme/acct/", &c->id))
        return MC_EP_ACCOUNT;
    if (path_id(p, n, "/acme/order/", &c->id))
        return MC_EP_ORDER;
    if (path_id(p, n, "/acme/authz/", &c->id))
        return MC_EP_AUTHZ;
    if (path_id(p, n, "/acme/chall/", &c->id))
        return MC_EP_CHALLENGE;
    if (path_id(p, n, "/acme/finalize/", &c->id))
        return MC_EP_FINALIZE;
    if (path_id(p, n, "/acme/cert/", &c->id))
        return MC_EP_CERT;
    return MC_EP_UNKNOWN;
}

static int ep_limit_kind(enum mc_ep ep)
{
    switch (ep) {
    case MC_EP_DIRECTORY:
        return MC_RL_EP_DIRECTORY;
    case MC_EP_NEW_NONCE:
        return MC_RL_EP_NEW_NONCE;
    case MC_EP_NEW_ACCOUNT:
        return MC_RL_EP_NEW_ACCOUNT;
    case MC_EP_NEW_ORDER:
        return MC_RL_EP_NEW_ORDER;
    case MC_EP_REVOKE:
        return MC_RL_EP_REVOKE;
    case MC_EP_RENEWAL_INFO:
        return MC_RL_EP_ARI;
    case MC_EP_ISSUER:
    case MC_EP_STATS:
    case MC_EP_UNKNOWN:
        return -1;
    default:
        return MC_RL_EP_OTHER;
    }
}

static enum mc_action dispatch_signed(struct ctx *c);

/*
 * signed_post runs the checks every signed request passes (RFC 8555
 * §6.2-6.5), then its handler. Like every handler it returns early with a
 * problem document; the one resource it holds, the jwk's key, is freed here
 * after the handler whatever it answered.
 */
static enum mc_action signed_post(struct ctx *c)
{
    enum mc_action act = dispatch_signed(c);

    if (act == MC_ACT_RESPOND && c->hx_order)
        hostile(c);
    EVP_PKEY_free(c->jwk_pkey);
    c->jwk_pkey = NULL;
    return act;
}

static enum mc_action dispatch_signed(struct ctx *c)
{
    struct mc_ca *ca = c->ca;
    const char *why;
    char want_url[MC_URL_MAX + MC_PATH_MAX];
    EVP_PKEY *pk = NULL;
    enum mc_key_type kt;

    if (!c->rq->jose)
        return problem(ca, c->rs, 415, "malformed", "Content-Type must be application/jose+json");
    if (c->rq->too_big)
        return problem(ca, c->rs, 413, "malformed", "request body too large");
    why = jws_read(ca, &c->w, c->rq->body, c->rq->body_len, &ca->jbody, &ca->jprot, &ca->jpay,
                   &ca->prot, &ca->payload, c->sig, &c->sig_len);
    if (why)
        return problem(ca, c->rs, 400, "malformed", "%s", why);
    /* §6.4: the url header parameter is the request's URL. */
    str_fmt(want_url, sizeof(want_url), "%s%.*s", ca->base, (int)c->rq->path_len, c->rq->path);
    if (strcmp(c->w.url, want_url) != 0)
        return problem(ca, c->rs, 401, "unauthorized", "url %s is not the request URL %s", c->w.url,
                       want_url);
    /* §6.5: every signed request carries a fresh nonce. */
    if (!c->w.nonce[0])
        return problem(ca, c->rs, 400, "badNonce", "no nonce");
    why = nonce_use(ca, c->w.nonce);
    if (why)
        return problem(ca, c->rs, 400, "badNonce", "%s", why);
    if ((ca->o.inject_mask & (1u << c->ep)) && ca->o.pbadnonce > 0 && rnd(ca) < ca->o.pbadnonce) {
        ca->st.inj_bad_nonce++;
        return problem(ca, c->rs, 400, "badNonce", "nonce rejected (injected)");
    }
    /* §6.2: jwk for newAccount (and revokeCert by the certificate key), kid for the rest. */
    if (c->w.has_jwk && c->ep != MC_EP_NEW_ACCOUNT && c->ep != MC_EP_REVOKE)
        return problem(ca, c->rs, 400, "malformed", "this request must be signed with a kid");
    if (!c->w.has_jwk) {
        if (c->ep == MC_EP_NEW_ACCOUNT)
            return problem(ca, c->rs, 400, "malformed", "newAccount must be signed with a jwk");
        c->acct = acct_get(ca, c->w.kid);
        if (!c->acct)
            return problem(ca, c->rs, 400, "accountDoesNotExist", "no account at the kid URL");
        if (c->acct->deactivated)
            return problem(ca, c->rs, 401, "unauthorized", "the account is deactivated");
        c->acct_id = c->w.kid;
    }
    if (ca->o.verify_jws) {
        if (c->w.has_jwk) {
            c->jwk_pkey = mc_key_from_spki(c->w.jwk.spki, c->w.jwk.spki_len);
            if (!c->jwk_pkey)
                return problem(ca, c->rs, 400, "badPublicKey", "the jwk is not a valid key");
            pk = c->jwk_pkey;
            kt = c->w.jwk.type;
        } else {
            pk = c->acct->pkey;
            kt = c->acct->type;
        }
        if (jws_verify(ca, pk, kt, c->w.alg, c->sig, c->sig_len) != 0) {
            if ((kt == MC_KEY_EC256 && strcmp(c->w.alg, "ES256") != 0) ||
                (kt == MC_KEY_EC384 && strcmp(c->w.alg, "ES384") != 0) ||
                (kt == MC_KEY_RSA && strcmp(c->w.alg, "RS256") != 0))
                return problem(ca, c->rs, 400, "badSignatureAlgorithm",
                               "alg %s does not fit the key", c->w.alg);
            return problem(ca, c->rs, 400, "malformed", "JWS signature does not verify");
        }
    }
    switch (c->ep) {
    case MC_EP_NEW_ACCOUNT:
        return h_new_account(c);
    case MC_EP_ACCOUNT:
        return h_account(c);
    case MC_EP_NEW_ORDER:
        return h_new_order(c);
    case MC_EP_ORDER:
        return h_order(c);
    case MC_EP_AUTHZ:
        return h_authz(c);
    case MC_EP_CHALLENGE:
        return h_challenge(c);
    case MC_EP_FINALIZE:
        return h_finalize(c);
    case MC_EP_CERT:
        return h_cert(c);
    case MC_EP_REVOKE:
        return h_revoke(c);
    case MC_EP_KEY_CHANGE:
        return h_key_change(c);
    default:
        return problem(ca, c->rs, 405, "malformed", "method not allowed");
    }
}

enum mc_action mc_ca_handle(struct mc_ca *ca, const struct mc_request *rq, struct mc_response *rs)
{
    struct ctx c;
    enum mc_action act;
    int lk;

    memset(&c, 0, offsetof(struct ctx, w));
    c.ca = ca;
    c.rq = rq;
    c.rs = rs;
    c.now = cf_wall_ms();
    c.ep = route(&c);
    ca->st.requests[c.ep]++;
    rs->status = 200;
    rs->head = rq->method == MC_M_HEAD;
    if (c.ep != MC_EP_STATS)
        str_fmt(rs->links[rs->nlinks++], sizeof(rs->links[0]), "<%s/dir>;rel=\"index\"", ca->base);
    /* RFC 8555 §6.5: a fresh nonce on every response, errors included. */
    if (c.ep != MC_EP_STATS)
        nonce_new(ca, rs->nonce);

    if (c.ep == MC_EP_UNKNOWN)
        return problem(ca, rs, 404, "malformed", "no such resource");
    if (c.ep == MC_EP_STATS) {
        mc_ca_stats_json(ca, rs->body);
        rs->ctype = MC_CT_JSON;
        return MC_ACT_RESPOND;
    }
    lk = ep_limit_kind(c.ep);
    if (lk >= 0 && mc_rl_enabled(ca->rl, (enum mc_rl_kind)lk)) {
        int64_t wait = mc_rl_check(ca->rl, (enum mc_rl_kind)lk, rq->peer, c.now);
        if (wait)
            return rate_limited(&c, (enum mc_rl_kind)lk, wait, "requests to this endpoint");
        mc_rl_take(ca->rl, (enum mc_rl_kind)lk, rq->peer, c.now);
    }
    if (ca->o.inject_mask & (1u << c.ep)) {
        if (ca->o.pdrop > 0 && rnd(ca) < ca->o.pdrop) {
            ca->st.inj_drop++;
            return MC_ACT_DROP;
        }
        if (ca->o.phang > 0 && rnd(ca) < ca->o.phang) {
            ca->st.inj_hang++;
            return MC_ACT_HANG;
        }
        if (ca->o.p503 > 0 && rnd(ca) < ca->o.p503) {
            ca->st.inj_503++;
            rs->retry_after = ca->o.retry_after;
            return problem(ca, rs, 503, "serverInternal",
                           "the service is unavailable, try again later (injected)");
        }
        if (ca->o.p429 > 0 && rnd(ca) < ca->o.p429) {
            ca->st.inj_429++;
            rs->retry_after = ca->o.retry_after;
            return problem(ca, rs, 429, "rateLimited", "too many requests, retry later (injected)");
        }
    }
    switch (c.ep) {
    case MC_EP_DIRECTORY:
    case MC_EP_ISSUER:
    case MC_EP_RENEWAL_INFO:
        if (rq->method != MC_M_GET && rq->method != MC_M_HEAD)
            return problem(ca, rs, 405, "malformed", "use GET");
        act = c.ep == MC_EP_DIRECTORY ? h_directory(&c)
              : c.ep == MC_EP_ISSUER  ? h_issuer(&c)
                                      : h_renewal_info(&c);
        return act;
    case MC_EP_NEW_NONCE:
        if (rq->method != MC_M_GET && rq->method != MC_M_HEAD)
            return problem(ca, rs, 405, "malformed", "use HEAD or GET");
        return h_new_nonce(&c);
    default:
        /* RFC 8555 §6.3: everything else is a signed POST (POST-as-GET to read). */
        if (rq->method != MC_M_POST)
            return problem(ca, rs, 405, "malformed", "use POST (POST-as-GET to read)");
        return signed_post(&c);
    }
}

/* ---- setup and stats ------------------------------------------------------------------ */

void mc_ca_set_dnsval(struct mc_ca *ca, struct mc_dnsval *dns)
{
    ca->dns = dns;
}

int mc_ca_new(struct mc_ca **out, uv_loop_t *loop, const struct mc_opts *o,
              struct mc_issuer *issuer, char *err, size_t errlen)
{
    struct mc_ca *ca = xcalloc(1, sizeof(*ca));
    const char *b;

    ca->loop = loop;
    ca->o = *o;
    ca->is = issuer;
    if (ca->o.cert_cache == 0)
        ca->o.cert_cache = 1;
    str_copy(ca->base, sizeof(ca->base), o->base_url);
    ca->base_len = strlen(ca->base);
    if (ca->base_len > 160 || strncmp(ca->base, "https://", 8) != 0) {
        str_fmt(err, errlen, "the base URL must be https:// and at most 160 characters");
        free(ca);
        return CF_ECONFIG;
    }
    if (o->ratelimit)
        ca->rl = mc_rl_new(o->limits);
    buf_init(&ca->arena);
    buf_putc(&ca->arena, '\0'); /* offset 0 means none */
    buf_init(&ca->scratch);
    buf_init(&ca->prot);
    buf_init(&ca->iprot);
    buf_init(&ca->payload);
    buf_init(&ca->ipayload);
    buf_init(&ca->sigin);
    buf_init(&ca->dir_json);
    buf_init(&ca->other_spki);
    mc_map_init(&ca->by_thumb);
    mc_map_init(&ca->issued_sets);
    mc_map_init(&ca->replaced);
    ca->cache = xcalloc(ca->o.cert_cache, sizeof(*ca->cache));
    ca->nonce_used = xcalloc(NONCE_WINDOW / 8, 1);
    RAND_bytes(ca->nonce_key, sizeof(ca->nonce_key));
    RAND_bytes(ca->token_key, sizeof(ca->token_key));
    RAND_bytes(ca->instance, sizeof(ca->instance));
    if (o->seed)
        ca->rng = o->seed;
    else
        RAND_bytes((uint8_t *)&ca->rng, sizeof(ca->rng));
    ca->nonce_next = 1;
    ca->started_ms = cf_wall_ms();
    b = ca->base;
    buf_printf(&ca->dir_json,
               "{\"newNonce\":\"%s/acme/new-nonce\",\"newAccount\":\"%s/acme/new-acct\","
               "\"newOrder\":\"%s/acme/new-order\",\"revokeCert\":\"%s/acme/revoke-cert\","
               "\"keyChange\":\"%s/acme/key-change\",\"renewalInfo\":\"%s/acme/renewal-info\","
               "\"meta\":{\"termsOfService\":\"%s/terms\",\"externalAccountRequired\":%s}}",
               b, b, b, b, b, b, b, o->eab_kid ? "true" : "false");
    *out = ca;
    return 0;
}

void mc_ca_free(struct mc_ca *ca)
{
    if (!ca)
        return;
    for (size_t i = 0; i < ca->naccts; i++) {
        EVP_PKEY_free(ca->accts[i].pkey);
        free(ca->accts[i].contact);
    }
    for (size_t i = 0; i < ca->o.cert_cache; i++)
        free(ca->cache[i].pem);
    free(ca->cache);
    free(ca->accts);
    free(ca->orders);
    free(ca->authzs);
    free(ca->nonce_used);
    mc_rl_free(ca->rl);
    mc_map_cleanup(&ca->by_thumb);
    mc_map_cleanup(&ca->issued_sets);
    mc_map_cleanup(&ca->replaced);
    buf_cleanup(&ca->arena);
    buf_cleanup(&ca->scratch);
    buf_cleanup(&ca->prot);
    buf_cleanup(&ca->iprot);
    buf_cleanup(&ca->payload);
    buf_cleanup(&ca->ipayload);
    buf_cleanup(&ca->sigin);
    buf_cleanup(&ca->dir_json);
    buf_cleanup(&ca->other_spki);
    free(ca);
}

struct mc_stats *mc_ca_stats(struct mc_ca *ca)
{
    return &ca->st;
}

void mc_ca_stats_json(struct mc_ca *ca, struct buf *b)
{
    const struct mc_stats *s = &ca->st;
    struct rusage ru;
    uint64_t total = 0, viol = 0;
    double user, sys;

    getrusage(RUSAGE_SELF, &ru);
    user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    for (int e = 0; e < MC_EP__COUNT; e++)
        total += s->requests[e];
    for (int k = 0; k < MC_RL__COUNT; k++)
        viol += s->rl_denied[k];
    buf_printf(b,
               "{\"uptime_s\":%.3f,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"cpu_s\":%.3f,"
               "\"peak_rss_bytes\":%lld,",
               (double)(cf_wall_ms() - ca->started_ms) / 1000.0, user, sys, user + sys,
               (long long)ru.ru_maxrss * 1024);
    buf_printf(b, "\"requests\":{\"total\":%llu,\"by_endpoint\":{", (unsigned long long)total);
    for (int e = 0; e < MC_EP__COUNT; e++)
        buf_printf(b, "%s\"%s\":%llu", e ? "," : "", mc_ep_name((enum mc_ep)e),
                   (unsigned long long)s->requests[e]);
    buf_printf(b,
               "},\"by_status_class\":{\"2xx\":%llu,\"3xx\":%llu,\"4xx\":%llu,\"5xx\":%llu},"
               "\"problems\":%llu},",
               (unsigned long long)s->status_class[2], (unsigned long long)s->status_class[3],
               (unsigned long long)s->status_class[4], (unsigned long long)s->status_class[5],
               (unsigned long long)s->problems);
    buf_printf(b,
               "\"accounts\":%llu,\"orders\":%llu,\"orders_invalid\":%llu,\"authz_valid\":%llu,"
               "\"authz_invalid\":%llu,\"certs_issued\":%llu,\"certs_downloaded\":%llu,"
               "\"certs_resigned\":%llu,\"key_changes\":%llu,\"revocations\":%llu,"
               "\"renewal_info\":%llu,\"replaced\":%llu,",
               (unsigned long long)s->accounts, (unsigned long long)s->orders,
               (unsigned long long)s->orders_invalid, (unsigned long long)s->authz_valid,
               (unsigned long long)s->authz_invalid, (unsigned long long)s->certs_issued,
               (unsigned long long)s->certs_downloaded, (unsigned long long)s->certs_rebuilt,
               (unsigned long long)s->key_changes, (unsigned long long)s->revocations,
               (unsigned long long)s->renewal_info, (unsigned long long)s->replaced);
    buf_printf(b,
               "\"nonces\":{\"issued\":%llu,\"bad_replayed\":%llu,\"bad_unknown\":%llu,"
               "\"bad_expired\":%llu,\"bad_malformed\":%llu},",
               (unsigned long long)s->nonces, (unsigned long long)s->bad_nonce_replayed,
               (unsigned long long)s->bad_nonce_unknown, (unsigned long long)s->bad_nonce_expired,
               (unsigned long long)s->bad_nonce_malformed);
    buf_printf(b,
               "\"signatures\":{\"verify\":%s,\"jws_verified\":%llu,\"jws_failed\":%llu,"
               "\"csr_verified\":%llu},",
               ca->o.verify_jws ? "true" : "false", (unsigned long long)s->jws_verified,
               (unsigned long long)s->jws_failed, (unsigned long long)s->csr_verified);
    buf_printf(b,
               "\"injected\":{\"rate_limited_429\":%llu,\"unavailable_503\":%llu,"
               "\"bad_nonce\":%llu,\"drop\":%llu,\"hang\":%llu},",
               (unsigned long long)s->inj_429, (unsigned long long)s->inj_503,
               (unsigned long long)s->inj_bad_nonce, (unsigned long long)s->inj_drop,
               (unsigned long long)s->inj_hang);
    buf_puts(b, "\"hostile\":{");
    for (int m = 1; m < MC_HX__COUNT; m++)
        buf_printf(b, "%s\"%s\":%llu", m > 1 ? "," : "", mc_hx_name((enum mc_hx)m),
                   (unsigned long long)s->hostile[m]);
    buf_puts(b, "},");
    buf_printf(b, "\"rate_limit_violations\":%llu,\"rate_limited\":{", (unsigned long long)viol);
    for (int k = 0; k < MC_RL__COUNT; k++)
        buf_printf(b, "%s\"%s\":%llu", k ? "," : "", mc_rl_kind_name((enum mc_rl_kind)k),
                   (unsigned long long)s->rl_denied[k]);
    buf_puts(b, "},\"limits\":");
    if (ca->rl)
        mc_rl_format(b, ca->o.limits);
    else
        buf_puts(b, "null");
    if (ca->dns) {
        struct mc_dnsval_stats d;
        mc_dnsval_get_stats(ca->dns, &d);
        buf_printf(b,
                   ",\"dns\":{\"queries\":%llu,\"answers\":%llu,\"timeouts\":%llu,"
                   "\"inflight\":%llu,\"queued\":%llu}",
                   (unsigned long long)d.queries, (unsigned long long)d.answers,
                   (unsigned long long)d.timeouts, (unsigned long long)d.inflight,
                   (unsigned long long)d.queued);
    }
    buf_printf(b,
               ",\"transport\":{\"connections\":%llu,\"open\":%llu,\"h2\":%llu,\"http1\":%llu,"
               "\"tls_failed\":%llu,\"dropped\":%llu,\"streams\":%llu,\"bytes_in\":%llu,"
               "\"bytes_out\":%llu}}",
               (unsigned long long)s->conns_accepted, (unsigned long long)s->conns_open,
               (unsigned long long)s->conns_h2, (unsigned long long)s->conns_h1,
               (unsigned long long)s->tls_failed, (unsigned long long)s->conns_dropped,
               (unsigned long long)s->streams, (unsigned long long)s->bytes_in,
               (unsigned long long)s->bytes_out);
}
