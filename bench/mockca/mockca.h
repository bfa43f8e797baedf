/*
 * mockca.h - certfleet-mockca: the bench harness's mock ACME CA (RFC 8555,
 * RFC 9773 renewal information) on one libuv loop.
 *
 * The parts, each in its own file:
 *   main.c       flags, setup, signals, the stats file
 *   net.c        TCP listener, TLS (libssl), HTTP/2 (nghttp2) and a minimal
 *                HTTP/1.1 fallback, the latency queue
 *   acme.c       routing, JWS checks, nonces, accounts, orders,
 *                authorizations, challenges, finalize, certificates, ARI,
 *                key change, revocation, error injection, hostile answers
 *   jose.c       a JSON tokenizer that never allocates, base64, JWK, JWS
 *   der.c        a DER writer and reader
 *   certs.c      the mock's CA hierarchy, TLS server and leaf certificates, CSRs
 *   ratelimit.c  Let's Encrypt's limits as GCRA buckets
 *   dnsval.c     dns-01 validation over UDP, as a real CA does it
 *
 * Everything runs on the loop thread; nothing here is thread-safe. The
 * crypto library is BoringSSL (or OpenSSL 3 with -DCF_CRYPTO=openssl),
 * through the API the two share, like engine/crypto. The mock deliberately
 * shares no ACME, JOSE or rate-limit code with certfleet's engine: it is the
 * judge of that code, and a bug mirrored on both sides would go unnoticed.
 */
#ifndef CF_BENCH_MOCKCA_H
#define CF_BENCH_MOCKCA_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include <openssl/evp.h>

#include "buf.h"

/* Bounds on what clients send. */
#define MC_MAX_NAMES 100         /* identifiers per order (Let's Encrypt's limit) */
#define MC_NAME_MAX 253          /* one DNS name */
#define MC_PATH_MAX 1024         /* :path of a request */
#define MC_BODY_MAX (128 * 1024) /* a request body (a JWS with an RSA-4096 CSR fits) */
#define MC_URL_MAX 256           /* URLs the mock makes */

/* ---- jose.c: JSON, base64, JWK, JWS ------------------------------------------ */

enum mc_jtype { MC_J_OBJ = 1, MC_J_ARR, MC_J_STR, MC_J_NUM, MC_J_TRUE, MC_J_FALSE, MC_J_NULL };

/* One JSON value: strings point at their raw text, between the quotes. */
struct mc_jtok {
    uint8_t type;
    uint8_t esc;    /* a string with backslash escapes */
    uint32_t start; /* offset of the raw text (strings: after the quote) */
    uint32_t len;
    int32_t end;  /* index of the first token after this value's subtree */
    int32_t size; /* members (objects) or elements (arrays) */
};

#define MC_JSON_MAX_TOK 1024
#define MC_JSON_MAX_DEPTH 16

/* struct mc_json is a parsed document; it points into the text it was given. */
struct mc_json {
    const char *s;
    size_t len;
    int n;
    struct mc_jtok t[MC_JSON_MAX_TOK];
};

/*
 * mc_json_parse tokenizes the len bytes at s (one JSON value, RFC 8259,
 * whitespace around it allowed) into j. Returns 0, or CF_EPARSE for bad
 * JSON, more than MC_JSON_MAX_TOK values or nesting deeper than
 * MC_JSON_MAX_DEPTH. s must outlive j's use.
 */
int mc_json_parse(struct mc_json *j, const char *s, size_t len);

/* mc_json_get returns the token of member key of object obj, or -1. */
int mc_json_get(const struct mc_json *j, int obj, const char *key);

/*
 * mc_json_str copies string token tok, unescaped, into out (cap bytes,
 * NUL-terminated) and returns its length, or -1 when tok is not a string,
 * does not fit, or holds \u escapes outside ASCII or a NUL.
 */
int mc_json_str(const struct mc_json *j, int tok, char *out, size_t cap);

/* mc_json_is_true returns 1 when tok is the literal true. */
int mc_json_is_true(const struct mc_json *j, int tok);

/* mc_json_raw sets *p, *n to the raw text of tok (strings without their quotes). */
void mc_json_raw(const struct mc_json *j, int tok, const char **p, size_t *n);

/*
 * mc_b64url_decode decodes the len base64url characters at in (RFC 4648 §5,
 * no padding, strict: unused bits zero) into out (cap bytes). Returns the
 * decoded length, or -1.
 */
long mc_b64url_decode(uint8_t *out, size_t cap, const char *in, size_t len);

/* mc_b64url_encode appends base64url(data) without padding to out. */
void mc_b64url_encode(struct buf *out, const void *data, size_t len);

/* mc_b64url_str writes base64url(data) to out (NUL-terminated; 4*len/3+2 bytes); returns its
 * length. */
size_t mc_b64url_str(char *out, const void *data, size_t len);

/* mc_b64_encode appends standard base64 (RFC 4648 §4, padded) to out, a newline every 64
 * characters. */
void mc_b64_pem(struct buf *out, const void *data, size_t len);

/* Key types the mock accepts (account keys and certificate keys). */
enum mc_key_type { MC_KEY_NONE = 0, MC_KEY_EC256, MC_KEY_EC384, MC_KEY_RSA };

/* A public JWK as received (RFC 7517), with its thumbprint and SPKI. */
struct mc_jwk {
    enum mc_key_type type;
    uint8_t thumb[32];  /* RFC 7638 thumbprint, SHA-256 */
    char thumb_b64[44]; /* the same, base64url */
    uint8_t spki[640];  /* DER SubjectPublicKeyInfo */
    size_t spki_len;
};

/*
 * mc_jwk_parse reads the JWK object tok of j into k: EC P-256 or P-384
 * (coordinates of exactly the field size) or RSA with a 2048..4096-bit
 * modulus. The point is not checked here (mc_key_from_spki does that).
 * Returns 0, or CF_EPARSE with *why set.
 */
int mc_jwk_parse(struct mc_jwk *k, const struct mc_json *j, int tok, const char **why);

/* mc_key_from_spki returns a new public key from DER SPKI, or NULL when it does not parse. */
EVP_PKEY *mc_key_from_spki(const uint8_t *spki, size_t len);

/*
 * mc_jws_verify checks a JWS signature (RFC 7515, RFC 7518 §3) made with
 * alg ("ES256", "ES384", "RS256") over input with pkey, whose type is type.
 * Returns 0, CF_EUSAGE when alg does not fit the key, or CF_ECRYPTO.
 */
int mc_jws_verify(EVP_PKEY *pkey, enum mc_key_type type, const char *alg, const uint8_t *sig,
                  size_t sig_len, const void *input, size_t len);

/* mc_hash64 returns a 64-bit hash of data (not cryptographic; keys of the mock's maps). */
uint64_t mc_hash64(const void *data, size_t len, uint64_t seed);

/* ---- der.c ------------------------------------------------------------------ */

/* struct mc_der writes DER into a buffer; constructed values nest by begin/end. */
struct mc_der {
    struct buf *b;
    size_t open[16];
    int depth;
};

void mc_der_init(struct mc_der *w, struct buf *b);
/* mc_der_begin opens a constructed value with tag; mc_der_end closes the innermost. */
void mc_der_begin(struct mc_der *w, unsigned tag);
void mc_der_end(struct mc_der *w);
/* mc_der_put writes a primitive value. */
void mc_der_put(struct mc_der *w, unsigned tag, const void *p, size_t n);
/* mc_der_raw appends bytes that are DER already. */
void mc_der_raw(struct mc_der *w, const void *p, size_t n);
/* mc_der_uint writes an INTEGER from n unsigned big-endian bytes (minimal form). */
void mc_der_uint(struct mc_der *w, const uint8_t *be, size_t n);
/* mc_der_time writes t (Unix seconds) as UTCTime (1950..2049) or GeneralizedTime (RFC 5280
 * §4.1.2.5). */
void mc_der_time(struct mc_der *w, int64_t t);

/* struct mc_der_r reads DER: [p, end) is what is left. */
struct mc_der_r {
    const uint8_t *p, *end;
};

/*
 * mc_der_next reads the next value (one-octet tags, definite lengths in
 * minimal form up to 4 octets) from r: its tag into *tag, its content into
 * *content, and (if tlv is not NULL) the whole encoding into *tlv, *tlv_len.
 * Returns 0 or CF_EPARSE.
 */
int mc_der_next(struct mc_der_r *r, unsigned *tag, struct mc_der_r *content, const uint8_t **tlv,
                size_t *tlv_len);

/* mc_der_expect is mc_der_next that also requires the tag. */
int mc_der_expect(struct mc_der_r *r, unsigned tag, struct mc_der_r *content, const uint8_t **tlv,
                  size_t *tlv_len);

#define MC_DER_SEQ 0x30
#define MC_DER_SET 0x31
#define MC_DER_INT 0x02
#define MC_DER_BITS 0x03
#define MC_DER_OCTETS 0x04
#define MC_DER_NULL 0x05
#define MC_DER_OID 0x06
#define MC_DER_BOOL 0x01

/* ---- certs.c ---------------------------------------------------------------- */

#define MC_KEY_ID_LEN 20
#define MC_SERIAL_LEN 16

/* The mock's CA: a root and an issuing intermediate, both ECDSA P-256. */
struct mc_issuer {
    EVP_PKEY *root_key, *key;
    struct buf root_pem, pem;   /* certificates as PEM */
    struct buf name;            /* the intermediate's subject, DER */
    struct buf root_name;       /* the root's subject, DER */
    uint8_t ski[MC_KEY_ID_LEN]; /* the intermediate's subject key identifier */
    uint8_t root_ski[MC_KEY_ID_LEN];
    EVP_MD_CTX *md; /* reused for signing */
};

/*
 * mc_issuer_init makes the CA hierarchy into is: read from dir when dir
 * holds one (root-key.pem, root.pem, issuer-key.pem, issuer.pem), else
 * generated, and written to dir when dir is not NULL. Returns 0, or an
 * error with a message in err.
 */
int mc_issuer_init(struct mc_issuer *is, const char *dir, char *err, size_t errlen);
void mc_issuer_cleanup(struct mc_issuer *is);

/*
 * mc_tls_identity makes the TLS server's key and certificate (DER), signed
 * by the root, for the DNS names and IP addresses given (4 or 16 octets
 * each), valid for 30 days. Returns 0 or CF_ECRYPTO.
 */
int mc_tls_identity(struct mc_issuer *is, EVP_PKEY **key, struct buf *cert_der,
                    const char *const *dns, size_t ndns, const uint8_t (*ips)[16],
                    const size_t *ip_lens, size_t nips);

/* A leaf certificate to issue. */
struct mc_leaf {
    uint8_t serial[MC_SERIAL_LEN];
    int64_t not_before, not_after;
    const uint8_t *spki;
    size_t spki_len;
    enum mc_key_type key_type;
    const char *const *names;
    size_t nnames;
};

/*
 * mc_spki_new_p256 appends the DER SubjectPublicKeyInfo of a fresh P-256
 * key (the private half is thrown away) to out. Returns 0 or CF_ECRYPTO.
 */
int mc_spki_new_p256(struct buf *out);

/* mc_issue_leaf signs the leaf l with the intermediate and appends it as PEM to out. Returns 0 or
 * CF_ECRYPTO. */
int mc_issue_leaf(struct mc_issuer *is, struct buf *out, const struct mc_leaf *l);

/* A parsed PKCS#10 request (RFC 2986); every pointer is into the DER given. */
struct mc_csr {
    const uint8_t *cri, *spki, *sigalg, *sig;
    size_t cri_len, spki_len, sigalg_len, sig_len;
    enum mc_key_type key_type;
    const uint8_t *cn;
    size_t cn_len; /* 0: no CN */
    size_t n;
    struct {
        const uint8_t *p;
        size_t len;
    } names[MC_MAX_NAMES];
};

/*
 * mc_csr_parse parses a DER CSR: its key (mc_key_type), the dNSNames of its
 * subjectAltName extension request and its CN. Returns 0, or CF_EPARSE or
 * CF_ETOOBIG with *why set.
 */
int mc_csr_parse(struct mc_csr *c, const uint8_t *der, size_t len, const char **why);

/* mc_csr_verify checks the CSR's self-signature. Returns 0 or CF_ECRYPTO with *why. */
int mc_csr_verify(const struct mc_csr *c, const char **why);

/*
 * mc_spki_type returns the mc_key_type of a DER SubjectPublicKeyInfo: EC
 * P-256 or P-384, or RSA with a 2048, 3072 or 4096-bit modulus; MC_KEY_NONE
 * for anything else.
 */
enum mc_key_type mc_spki_type(const uint8_t *spki, size_t len);

/*
 * mc_cert_serial finds the serial (content octets) and the subject public
 * key info of a DER certificate. Returns 0 or CF_EPARSE.
 */
int mc_cert_serial(const uint8_t *der, size_t len, const uint8_t **serial, size_t *serial_len,
                   const uint8_t **spki, size_t *spki_len);

/* ---- ratelimit.c ------------------------------------------------------------ */

/* The limits the mock enforces, Let's Encrypt's names where the scheduler has them. */
enum mc_rl_kind {
    MC_RL_NEW_ORDERS = 0,   /* new orders per account */
    MC_RL_CERTS_PER_DOMAIN, /* certificates per registered domain */
    MC_RL_DUPLICATE_CERTS,  /* certificates per exact set of identifiers */
    MC_RL_FAILED_AUTHZ,     /* failed authorizations per identifier per account */
    MC_RL_NEW_ACCOUNTS,     /* new accounts per IP address */
    MC_RL_EP_NEW_NONCE,     /* requests per IP to each endpoint ... */
    MC_RL_EP_NEW_ACCOUNT,
    MC_RL_EP_NEW_ORDER,
    MC_RL_EP_REVOKE,
    MC_RL_EP_ARI,
    MC_RL_EP_DIRECTORY,
    MC_RL_EP_OTHER, /* every other /acme/ endpoint */
    MC_RL__COUNT
};

struct mc_rl_limit {
    uint32_t count; /* 0: unlimited */
    uint32_t burst; /* 0: count */
    int64_t period_ms;
};

struct mc_rl;

/* mc_rl_kind_name returns the kind's name in specs and stats ("new_orders"). */
const char *mc_rl_kind_name(enum mc_rl_kind k);

/*
 * mc_rl_parse reads a spec into limits: "none", "letsencrypt", then
 * comma-separated overrides NAME=none|COUNT/DURATION[:BURST] (the grammar of
 * certfleet's rl_profile_parse, so one string configures both). scale > 1
 * shortens every period by that factor (fast scenarios). Returns 0 or
 * CF_ECONFIG with a message in err.
 */
int mc_rl_parse(struct mc_rl_limit limits[MC_RL__COUNT], const char *spec, double scale, char *err,
                size_t errlen);

/* mc_rl_format appends limits to out as JSON ({"new_orders":"300/10800000ms:300",...}). */
void mc_rl_format(struct buf *out, const struct mc_rl_limit limits[MC_RL__COUNT]);

struct mc_rl *mc_rl_new(const struct mc_rl_limit limits[MC_RL__COUNT]);
void mc_rl_free(struct mc_rl *rl);

/* mc_rl_enabled returns 1 when kind k has a limit. */
int mc_rl_enabled(const struct mc_rl *rl, enum mc_rl_kind k);

/*
 * mc_rl_check returns 0 when bucket (k, key) has a token at now_ms, else
 * the milliseconds until it has one. Nothing is taken.
 */
int64_t mc_rl_check(struct mc_rl *rl, enum mc_rl_kind k, uint64_t key, int64_t now_ms);

/* mc_rl_take takes a token (the bucket may go into debt by at most one burst). */
void mc_rl_take(struct mc_rl *rl, enum mc_rl_kind k, uint64_t key, int64_t now_ms);

/* mc_rl_refund gives a token back (an order that failed does not count as issued). */
void mc_rl_refund(struct mc_rl *rl, enum mc_rl_kind k, uint64_t key, int64_t now_ms);

/* mc_rl_limit returns the limit of kind k. */
const struct mc_rl_limit *mc_rl_get(const struct mc_rl *rl, enum mc_rl_kind k);

/* ---- the map used by several parts: 64-bit keys to 32-bit values ------------- */

struct mc_map {
    uint64_t *keys; /* 0 is the empty slot; key 0 is stored as 1 */
    uint32_t *vals;
    size_t cap, n;
};
void mc_map_init(struct mc_map *m);
void mc_map_cleanup(struct mc_map *m);
/* mc_map_get returns 1 and sets *val when key is present. */
int mc_map_get(const struct mc_map *m, uint64_t key, uint32_t *val);
void mc_map_put(struct mc_map *m, uint64_t key, uint32_t val);

/* ---- dnsval.c --------------------------------------------------------------- */

/* Outcomes of one dns-01 validation. */
enum mc_verr {
    MC_VERR_NONE = 0,
    MC_VERR_NO_TXT,     /* NOERROR, no TXT at the (CNAME target) name */
    MC_VERR_WRONG_TXT,  /* TXT records, none with the expected value */
    MC_VERR_NXDOMAIN,   /* the name does not exist */
    MC_VERR_SERVFAIL,   /* SERVFAIL, REFUSED or another error rcode */
    MC_VERR_TIMEOUT,    /* no answer after the retries */
    MC_VERR_CNAME_LOOP, /* too many CNAMEs */
    MC_VERR_TRUNCATED,  /* TC set: the answer did not fit */
    MC_VERR_BAD_ANSWER, /* an answer that does not parse */
    MC_VERR_RATELIMIT,  /* (not DNS) refused by the failed-authorization limit */
};

/* mc_dnsval_cb gets the authorization id back with the outcome. */
typedef void (*mc_dnsval_cb)(void *arg, uint32_t authz, enum mc_verr err);

struct mc_dnsval;

struct mc_dnsval_opts {
    const struct sockaddr *server; /* resolver or authoritative address */
    int recurse;                   /* RD bit */
    int timeout_ms;                /* per try */
    int tries;
};

int mc_dnsval_new(struct mc_dnsval **out, uv_loop_t *loop, const struct mc_dnsval_opts *o,
                  mc_dnsval_cb cb, void *arg);
/* mc_dnsval_free stops everything; pending validations never report. Accepts NULL. */
void mc_dnsval_free(struct mc_dnsval *v);

/*
 * mc_dnsval_start looks up TXT at _acme-challenge.<name> (following CNAMEs,
 * in the answer or by asking again for the target) and reports through the
 * callback whether one record is expected (43 base64url characters).
 */
void mc_dnsval_start(struct mc_dnsval *v, uint32_t authz, const char *name, const char *expected);

struct mc_dnsval_stats {
    uint64_t queries, answers, timeouts, inflight, queued;
};
void mc_dnsval_get_stats(const struct mc_dnsval *v, struct mc_dnsval_stats *s);

/* ---- acme.c ----------------------------------------------------------------- */

enum mc_method { MC_M_OTHER = 0, MC_M_GET, MC_M_HEAD, MC_M_POST };

/* The endpoints, for routing, stats and error injection. */
enum mc_ep {
    MC_EP_DIRECTORY = 0,
    MC_EP_NEW_NONCE,
    MC_EP_NEW_ACCOUNT,
    MC_EP_NEW_ORDER,
    MC_EP_REVOKE,
    MC_EP_KEY_CHANGE,
    MC_EP_RENEWAL_INFO,
    MC_EP_ACCOUNT,
    MC_EP_ORDER,
    MC_EP_AUTHZ,
    MC_EP_CHALLENGE,
    MC_EP_FINALIZE,
    MC_EP_CERT,
    MC_EP_ISSUER,
    MC_EP_STATS,
    MC_EP_UNKNOWN,
    MC_EP__COUNT
};

/* mc_ep_name returns the endpoint's name ("new-order"), as stats and --inject-on use it. */
const char *mc_ep_name(enum mc_ep ep);

/* One request, as the transport hands it over; pointers live for the call. */
struct mc_request {
    enum mc_method method;
    const char *path;
    size_t path_len;
    int jose;         /* Content-Type is application/jose+json */
    const char *body; /* NUL-terminated */
    size_t body_len;
    int too_big;   /* the body passed MC_BODY_MAX and was cut */
    uint64_t peer; /* the client's address, for per-IP limits */
};

enum mc_ctype { MC_CT_NONE = 0, MC_CT_JSON, MC_CT_PROBLEM, MC_CT_PEM, MC_CT_HTML };

/*
 * Hostile answers (acme.c, README "Hostile answers"): what a broken or
 * malicious CA may send a client, one mode per order. A mode is chosen for
 * every order by --hostile, or per order by its first identifier: a
 * leftmost label "hx-<mode>" (or "hx-<mode>-<anything>") selects <mode>.
 */
enum mc_hx {
    MC_HX_NONE = 0,
    MC_HX_HUGE_ORDER,         /* newOrder: an order object of 5 MiB */
    MC_HX_BIG_ORDER,          /* newOrder: valid JSON of 300 KiB */
    MC_HX_MANY_AUTHZ,         /* newOrder: 1,000 authorization URLs */
    MC_HX_TRUNC_ORDER,        /* newOrder: the order object cut in half */
    MC_HX_TYPES_ORDER,        /* newOrder: members of the wrong JSON types */
    MC_HX_DEEP_ORDER,         /* newOrder: arrays nested 100,000 deep */
    MC_HX_TRUNC_AUTHZ,        /* authorizations cut in half */
    MC_HX_TYPES_AUTHZ,        /* authorizations whose dns-01 token is a number */
    MC_HX_CTYPE_JSON,         /* every JSON answer about the order as text/html */
    MC_HX_CTYPE_CERT,         /* the certificate chain as text/html */
    MC_HX_OTHER_NAMES,        /* a leaf for other names (the CSR's key) */
    MC_HX_OTHER_KEY,          /* a leaf for the order's names and another key */
    MC_HX_GARBAGE_PEM,        /* a CERTIFICATE block that is not DER, then the intermediate */
    MC_HX_NOT_PEM,            /* a body without any PEM block */
    MC_HX_EMPTY_CHAIN,        /* an empty body */
    MC_HX_BAD_ISSUER,         /* the leaf, then the root, which did not issue it */
    MC_HX_HUGE_CERT,          /* a chain of 5 MiB */
    MC_HX_REDIRECT_ORDER,     /* the order and finalize URLs answer 307 to http:// */
    MC_HX_REDIRECT_CERT,      /* the certificate URL answers 301 to http:// */
    MC_HX_PROCESSING_FOREVER, /* a finalized order stays processing (Retry-After: 1) */
    MC_HX_PENDING_FOREVER,    /* an answered challenge never ends: authz pending (Retry-After: 1) */
    MC_HX__COUNT
};

/* mc_hx_name returns the mode's name ("other-key"), as --hostile and host names spell it. */
const char *mc_hx_name(enum mc_hx m);

/* mc_hx_parse returns the mode named s, or -1. */
int mc_hx_parse(const char *s);

/* One response; the transport owns the memory. */
struct mc_response {
    int status;
    enum mc_ctype ctype;
    struct buf *body;
    char nonce[32]; /* "" for none */
    char location[MC_URL_MAX];
    char links[2]
              [MC_URL_MAX + 24]; /* Link field values: <url>;rel="up" and the directory's "index" */
    int nlinks;
    int retry_after; /* seconds; 0 for none */
    int head;        /* a HEAD request: headers only */
};

/* What the transport does with a request once handled. */
enum mc_action {
    MC_ACT_RESPOND = 0,
    MC_ACT_DROP, /* close the connection without an answer */
    MC_ACT_HANG, /* never answer this request */
};

/* The options of the CA (flags). */
struct mc_opts {
    const char *base_url;      /* "https://HOST:PORT" */
    int verify_jws;            /* verify JWS and CSR signatures */
    int validate_dns;          /* dns-01 over DNS; else valid at once */
    int validation_ms;         /* with --validate none: how long a challenge is processing */
    int processing_ms;         /* how long a finalized order is processing */
    int64_t lifetime_s;        /* of certificates */
    int64_t order_lifetime_s;  /* of orders and authorizations */
    double ari_start, ari_end; /* the ARI window, fractions of the lifetime */
    int ari_retry_after;       /* Retry-After of renewalInfo answers, seconds */
    /* Error injection, probabilities 0..1, on the endpoints in inject_mask. */
    double p429, p503, pbadnonce, pdrop, phang;
    uint32_t inject_mask;
    int retry_after; /* Retry-After of injected 429 and 503 answers */
    int ratelimit;   /* enforce limits */
    struct mc_rl_limit limits[MC_RL__COUNT];
    const char *eab_kid; /* NULL: no external account binding */
    const uint8_t *eab_key;
    size_t eab_key_len;
    size_t cert_cache;  /* certificates kept as PEM */
    enum mc_hx hostile; /* --hostile: the mode of every order; MC_HX_NONE: by host name */
    uint64_t seed;      /* 0: random */
};

/* Counters for the stats file. */
struct mc_stats {
    uint64_t requests[MC_EP__COUNT];
    uint64_t status_class[6]; /* 1xx..5xx by first digit */
    uint64_t problems;        /* problem documents sent */
    uint64_t accounts, orders, authz_valid, authz_invalid, certs_issued, certs_downloaded,
        certs_rebuilt, key_changes, revocations, renewal_info, replaced, orders_invalid;
    uint64_t nonces, bad_nonce_replayed, bad_nonce_unknown, bad_nonce_expired, bad_nonce_malformed;
    uint64_t jws_verified, jws_failed, csr_verified;
    uint64_t inj_429, inj_503, inj_bad_nonce, inj_drop, inj_hang;
    uint64_t hostile[MC_HX__COUNT];   /* hostile answers sent, by mode */
    uint64_t rl_denied[MC_RL__COUNT]; /* 429 rateLimited from the limits: the client's violations */
    /* Transport. */
    uint64_t conns_accepted, conns_open, conns_h2, conns_h1, tls_failed, conns_dropped;
    uint64_t streams, bytes_in, bytes_out;
};

struct mc_ca;

/*
 * mc_ca_new makes the CA on loop with o (copied; its strings and issuer are
 * borrowed and outlive the CA). Returns 0 or an error (err says).
 */
int mc_ca_new(struct mc_ca **out, uv_loop_t *loop, const struct mc_opts *o,
              struct mc_issuer *issuer, char *err, size_t errlen);
void mc_ca_free(struct mc_ca *ca);

/* mc_ca_set_dnsval gives the CA its DNS client for --validate dns (borrowed; NULL: none). */
void mc_ca_set_dnsval(struct mc_ca *ca, struct mc_dnsval *dns);

/* mc_ca_dnsval_done is the mc_dnsval_cb of the CA (arg is the CA). */
void mc_ca_dnsval_done(void *arg, uint32_t authz, enum mc_verr err);

/*
 * mc_ca_handle answers one request into rs (rs->body is empty on entry and
 * owned by the caller). Returns what the transport is to do.
 */
enum mc_action mc_ca_handle(struct mc_ca *ca, const struct mc_request *rq, struct mc_response *rs);

/* mc_ca_stats returns the CA's counters (the transport adds to them). */
struct mc_stats *mc_ca_stats(struct mc_ca *ca);

/* mc_ca_stats_json appends the stats document to out. */
void mc_ca_stats_json(struct mc_ca *ca, struct buf *out);

/* ---- net.c ------------------------------------------------------------------ */

struct mc_net;

struct mc_net_opts {
    const struct sockaddr *listen;
    EVP_PKEY *key;       /* the TLS server key (borrowed) */
    const uint8_t *cert; /* its certificate, DER (copied) */
    size_t cert_len;
    int latency_ms;       /* added to every answer */
    uint32_t max_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
    int max_conns;
};

int mc_net_new(struct mc_net **out, uv_loop_t *loop, const struct mc_net_opts *o, struct mc_ca *ca,
               char *err, size_t errlen);
/* mc_net_close closes the listener and every connection; handles close on the loop. */
void mc_net_close(struct mc_net *n);

#endif
