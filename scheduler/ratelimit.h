/*
 * ratelimit.h - the scheduler: rate-limit buckets mirroring the CA's limits.
 *
 * Pure logic (STYLE.md): time comes in as an argument, in milliseconds since
 * the epoch; nothing here does I/O or knows the event loop.
 *
 * Every limit is a token bucket kept as a GCRA ("generic cell rate
 * algorithm"), the way Let's Encrypt documents and implements its own: a
 * limit of count per period has the emission interval T = period / count and
 * a burst (capacity) of count unless said otherwise, so a full bucket admits
 * a burst and then refills one token every T. A bucket is one number, its
 * theoretical arrival time (TAT): the bucket is full whenever TAT <= now, and
 * each token taken pushes TAT T further. A bucket also has a frozen_until
 * time, set when the CA answered `rateLimited` with a Retry-After.
 *
 * Internally times are microseconds and T is rounded up to a whole
 * microsecond, so rounding only ever makes a bucket stricter than the CA's
 * (300 per second becomes 299.94 per second).
 *
 * Buckets live in a struct rl_table keyed by (kind, key). A full bucket
 * carries no information, so rl_table_gc drops those and the table stays
 * as large as the set of recently active keys.
 */
#ifndef CF_SCHEDULER_RATELIMIT_H
#define CF_SCHEDULER_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * The kinds of limit, and what a bucket's key is for each. Values are
 * stored (the first octet of a persisted key): append only.
 */
enum rl_kind {
    RL_NEW_ORDERS = 0,       /* new orders per account; key: the account URL */
    RL_CERTS_PER_DOMAIN = 1, /* certificates per registered domain; key: the domain */
    RL_DUPLICATE_CERTS = 2,  /* certificates per exact set of names; key: rl_names_key */
    RL_FAILED_AUTHZ = 3,     /* failed authorizations per hostname (per account at
                                the CA; a table serves one account, and sharing
                                a host's bucket across accounts is only
                                stricter); key: the host */
    RL_EP_NEW_NONCE = 4,     /* requests to newNonce; key: the caller's choice ("") */
    RL_EP_NEW_ORDER = 5,     /* requests to newOrder; rl_admit uses the key "" */
    RL_EP_ARI = 6,           /* requests to renewalInfo; key: the caller's choice */
    RL_EP_OTHER = 7,         /* requests to every other ACME endpoint */
    RL_KIND__COUNT
};

/*
 * rl_kind_name returns the kind's name in profile specs ("new_orders",
 * "certs_per_domain", "duplicate_certs", "failed_authz", "ep_new_nonce",
 * "ep_new_order", "ep_ari", "ep_other"), or "?" for an unknown kind.
 */
const char *rl_kind_name(enum rl_kind kind);

/*
 * One limit: count tokens per period_ms, at most burst at once (0 = count).
 * count == 0 means unlimited: the bucket then only ever holds a freeze.
 */
struct rl_limit {
    uint32_t count;
    uint32_t burst;
    int64_t period_ms;
};

/* A CA's limits, one per kind. */
struct rl_profile {
    struct rl_limit limit[RL_KIND__COUNT];
};

/* Times beyond this (year 33658) are clamped to it; negative times to 0. */
#define RL_TIME_MAX_MS INT64_C(1000000000000000)

/* rl_profile_none sets every limit of p to unlimited. */
void rl_profile_none(struct rl_profile *p);

/*
 * rl_profile_letsencrypt sets p to Let's Encrypt's published limits
 * (https://letsencrypt.org/docs/rate-limits/, updated June 12, 2025):
 * 300 new orders per account per 3 h; 50 certificates per registered domain
 * per 7 days; 5 certificates per exact set of identifiers per 7 days; 5
 * failed authorizations per identifier per account per hour; and the
 * "Overall Requests" per-endpoint limits with their published burst
 * capacities: new-nonce 20/s (burst 10), new-order 300/s (burst 200),
 * renewal-info 1000/s (burst 100), every other /acme/ endpoint 250/s
 * (burst 125).
 */
void rl_profile_letsencrypt(struct rl_profile *p);

/*
 * rl_profile_for_directory sets p to the default profile of the CA at
 * directory_url: Let's Encrypt's for its production and staging directories
 * (https://acme-v02.api.letsencrypt.org/directory,
 * https://acme-staging-v02.api.letsencrypt.org/directory; compared without
 * regard to case and one trailing '/'), none for any other CA (DESIGN.md §3:
 * another CA has the limits its configuration names). directory_url may be
 * NULL (none). Returns 0: there is always a profile.
 */
int rl_profile_for_directory(struct rl_profile *p, const char *directory_url);

/* rl_directory_is_letsencrypt tells whether directory_url is one of those two. */
bool rl_directory_is_letsencrypt(const char *directory_url);

/*
 * rl_profile_parse sets p from a text spec for config files:
 *
 *   spec  = item *("," item)
 *   item  = "letsencrypt" | "none"          (a base profile; first item only)
 *         | NAME "=" ("none" | COUNT "/" [DURATION] [":" BURST])
 *
 * NAME is an rl_kind_name; DURATION is cf_duration_parse's ("1s", "3h",
 * "7d", "1h30m") or milliseconds ("500ms"); a unit alone is one of it
 * ("20/s"), and no DURATION at all means 1s. Without a base the profile starts
 * from none; later items override earlier ones. Spaces around items and
 * around '=' are ignored. Examples: "letsencrypt", "none",
 * "letsencrypt,new_orders=600/3h,certs_per_domain=none",
 * "ep_new_nonce=20/s:10". On error, p is unchanged, a message naming the
 * bad part of the input goes to err (errlen bytes, may be 0), and the
 * result is CF_ECONFIG. Returns 0 on success.
 */
int rl_profile_parse(struct rl_profile *p, const char *spec, char *err, size_t errlen);

/*
 * rl_profile_format appends p to out as a spec that rl_profile_parse reads
 * back to the same profile ("none,new_orders=300/3h,...").
 */
void rl_profile_format(struct buf *out, const struct rl_profile *p);

/*
 * rl_profile_check returns 0 if every limit of p can be kept (at most one
 * token per microsecond; period from 1 ms to 366 days; a full burst refills
 * in at most 3660 days), or CF_ECONFIG with a message in err.
 */
int rl_profile_check(const struct rl_profile *p, char *err, size_t errlen);

struct rl_table;

/*
 * rl_table_new returns a new, empty table (every bucket full) for profile p,
 * which is copied; NULL only if rl_profile_check refuses p (the profiles of
 * rl_profile_parse and the built-in ones always pass).
 */
struct rl_table *rl_table_new(const struct rl_profile *p);
/* rl_table_free frees t; accepts NULL. */
void rl_table_free(struct rl_table *t);
/* rl_table_count returns how many buckets t holds (full ones not yet dropped included). */
size_t rl_table_count(const struct rl_table *t);
/* rl_table_profile returns t's profile (owned by t, lives as long as t). */
const struct rl_profile *rl_table_profile(const struct rl_table *t);

/*
 * rl_table_set_admit_jitter makes rl_admit keep a margin of jitter_ms (at
 * most RL_ISSUE_HOLD_MS; 0, the default: none) on the new-orders bucket.
 * The CA counts a new order when the newOrder request arrives, some time
 * after admission (an order slot, the order gate, the client's pacer, the
 * network), and that time varies: an order that arrives sooner after its
 * admission than the one before it did would find the CA's bucket empty if
 * the mirror admitted it the moment a token was due. With the margin, a
 * bucket that is not full admits only once the token has been there for
 * jitter_ms, so arrivals up to jitter_ms apart in their delays still
 * conform. It costs jitter_ms of the bucket's refill once per burst (a
 * token at most for Let's Encrypt's 36 s per new order), not the long-term
 * rate.
 */
void rl_table_set_admit_jitter(struct rl_table *t, int64_t jitter_ms);

/*
 * What one ACME order needs from the limits. Strings are borrowed for the
 * call only; none may be NULL.
 */
struct rl_order_req {
    const char *account;   /* account URL */
    const char *regdom;    /* registered domain of the names (public suffix list) */
    const char *names_key; /* rl_names_key of the order's names */
    const char *host;      /* the identifier whose failed authorizations count */
    bool ari_renewal;      /* the order carries ARI `replaces` for a certificate
                              not yet replaced */
};

/*
 * The CA spends certificates per domain and duplicate certificates when it
 * issues, not when the order is created. rl_admit takes them at admission
 * as if spent this much later, which keeps the mirror at least as strict as
 * the CA for every order issued within that time (a spend deferred into a
 * full bucket loses the refill meanwhile, so taking it early at now would
 * not be). Orders that take longer go through rl_note_issued.
 */
#define RL_ISSUE_HOLD_MS INT64_C(3600000) /* 1 h */

/*
 * rl_admit is the admission check for one new ACME order at now_ms. These
 * buckets are consulted together:
 *   - RL_NEW_ORDERS (account) and RL_CERTS_PER_DOMAIN (regdom), unless
 *     req->ari_renewal;
 *   - RL_DUPLICATE_CERTS (names_key);
 *   - RL_FAILED_AUTHZ (host): must have a token left, which is not
 *     taken (rl_note_failed_authz takes it when a failure happens);
 *   - RL_EP_NEW_ORDER (""): the request itself.
 * If every one allows the order, all take their token (certificates per
 * domain and duplicates as of now_ms + RL_ISSUE_HOLD_MS) and 0 is returned.
 * Otherwise nothing is taken, *retry_at_ms (may be NULL) is set to the
 * earliest time at which all of them would allow it (if nothing else takes
 * tokens meanwhile), and CF_ERATELIMIT is returned. CF_EUSAGE if a string of
 * req is NULL.
 */
int rl_admit(struct rl_table *t, const struct rl_order_req *req, int64_t now_ms,
             int64_t *retry_at_ms);

/*
 * rl_note_issued tells the table, when it happens, that the order req
 * admitted at admitted_ms was issued at issued_ms (now). Nothing is needed
 * within RL_ISSUE_HOLD_MS; after that, the certificates per domain (unless
 * ARI) and duplicate buckets account for the CA's later spend: a bucket
 * that is full by then takes a token at issued_ms, another has its TAT
 * pushed by the excess (a spend moved later by d moves TAT by at most d).
 * Returns 0, or CF_EUSAGE.
 */
int rl_note_issued(struct rl_table *t, const struct rl_order_req *req, int64_t admitted_ms,
                   int64_t issued_ms);

/*
 * rl_take takes one token from bucket (kind, key) at now_ms: 0 if it had one,
 * else CF_ERATELIMIT with *retry_at_ms (may be NULL) set to when it will.
 * For the per-endpoint request rates, before each request.
 */
int rl_take(struct rl_table *t, enum rl_kind kind, const char *key, int64_t now_ms,
            int64_t *retry_at_ms);

/*
 * rl_note_failed_authz takes a token of RL_FAILED_AUTHZ for host at now_ms,
 * whether or not one is left: the CA has counted the failure
 * already, so the bucket may go into debt (by at most one burst).
 */
void rl_note_failed_authz(struct rl_table *t, const char *host, int64_t now_ms);

/*
 * rl_freeze records a `rateLimited` answer whose Retry-After says until_ms
 * for bucket (kind, key): nothing is admitted from it before until_ms, and
 * afterwards it refills from empty, since the CA's answer means its own
 * bucket holds its next token at until_ms and no more (for a limited kind,
 * TAT becomes at least until + (burst - 1) * T). A later freeze never
 * shortens an earlier one. Applies to unlimited kinds too: every CA gets the
 * reactive handling (DESIGN.md §3).
 */
void rl_freeze(struct rl_table *t, enum rl_kind kind, const char *key, int64_t until_ms);

/*
 * rl_retry_at returns the earliest time >= now_ms at which bucket
 * (kind, key) has a token (now_ms if it has one now).
 */
int64_t rl_retry_at(const struct rl_table *t, enum rl_kind kind, const char *key, int64_t now_ms);

/*
 * rl_available returns how many tokens bucket (kind, key) holds at now_ms
 * (UINT32_MAX for an unlimited kind that is not frozen, 0 while frozen).
 */
uint32_t rl_available(const struct rl_table *t, enum rl_kind kind, const char *key, int64_t now_ms);

/*
 * rl_names_key appends to out the RL_DUPLICATE_CERTS key of n names: the set
 * of names lower-cased, sorted, without repeats, joined by ','. Let's
 * Encrypt ignores case and order when it compares sets of identifiers.
 */
void rl_names_key(struct buf *out, const char *const *names, size_t n);

/* Keys longer than RL_KEY_MAX bytes are folded (see rl_order_key). */
#define RL_KEY_MAX 400

/*
 * rl_order_key writes to out (outlen >= RL_KEY_MAX + 1) the key rl_admit
 * uses for kind when admitting req: for rl_freeze on the bucket a
 * `rateLimited` answer to that order names. A key longer than RL_KEY_MAX
 * bytes is folded to its first RL_KEY_MAX - 17 bytes, '#' and 16 hex digits
 * of a 64-bit hash of the whole key; this holds for every function taking a
 * key. Two keys folded together share a bucket, which can only make the
 * limits stricter. Returns 0, or CF_EUSAGE (outlen too small, unknown kind,
 * a NULL string in req).
 */
int rl_order_key(char *out, size_t outlen, enum rl_kind kind, const struct rl_order_req *req);

/*
 * rl_table_gc drops the buckets that are full and not frozen at now_ms (they
 * carry no information) and returns how many it dropped.
 */
size_t rl_table_gc(struct rl_table *t, int64_t now_ms);

/*
 * Persistence, for the store's STORE_DB_LIMITS. One record per bucket that
 * is not full or is frozen at the time of encoding:
 *
 *   key   = kind (1 octet) || key bytes (1..RL_KEY_MAX octets, no NUL)
 *   value = version (1 octet, 1) || TAT in microseconds since the epoch
 *           (8 octets, big-endian) || frozen_until in milliseconds since the
 *           epoch (8 octets, big-endian)
 *
 * Both times are between 0 and RL_TIME_MAX_MS (times 1000 for TAT), and
 * version 1 is exactly 17 octets. A change of meaning or layout takes a new
 * version, which older builds refuse rather than misread.
 */
#define RL_STATE_VERSION 1
#define RL_STATE_LEN 17

/* rl_encode_cb receives one record; key and val live for the call only. */
typedef void (*rl_encode_cb)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen);

/*
 * rl_table_encode_each calls cb for each bucket of t that carries
 * information at now_ms, in no particular order, and returns how many.
 */
size_t rl_table_encode_each(const struct rl_table *t, int64_t now_ms, rl_encode_cb cb, void *ctx);

/*
 * rl_table_load restores one record written by rl_table_encode_each. If the
 * bucket exists already, the stricter of the two states is kept. Returns 0;
 * CF_ENEWER_SCHEMA for a newer version or an unknown kind (a newer
 * certfleet wrote it: the caller may skip it); CF_ECORRUPT for anything
 * else malformed, leaving t unchanged.
 */
int rl_table_load(struct rl_table *t, const void *key, size_t klen, const void *val, size_t vlen);

#endif
