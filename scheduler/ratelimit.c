/*
 * ratelimit.c - GCRA buckets mirroring the CA's rate limits: the profiles,
 * the table of buckets, admission, and the persisted form.
 *
 * A bucket of a limit with emission interval T (microseconds) and burst B
 * keeps TAT, its theoretical arrival time; tau = B * T. Taking a token at
 * now is allowed when max(TAT, now) + T - tau <= now, and then sets TAT to
 * max(TAT, now) + T. The bucket holds floor((now + tau - max(TAT, now)) / T)
 * tokens, so it is full (B tokens) whenever TAT <= now.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "ratelimit.h"
#include "timeutil.h"

#define SEC_MS INT64_C(1000)
#define HOUR_MS (3600 * SEC_MS)
#define DAY_MS (24 * HOUR_MS)
#define PERIOD_MAX_MS (366 * DAY_MS)
#define REFILL_MAX_US (3660 * DAY_MS * 1000)
#define COUNT_MAX 1000000000u

static const char *const kind_names[RL_KIND__COUNT] = {
    [RL_NEW_ORDERS] = "new_orders",
    [RL_CERTS_PER_DOMAIN] = "certs_per_domain",
    [RL_DUPLICATE_CERTS] = "duplicate_certs",
    [RL_FAILED_AUTHZ] = "failed_authz",
    [RL_EP_NEW_NONCE] = "ep_new_nonce",
    [RL_EP_NEW_ORDER] = "ep_new_order",
    [RL_EP_ARI] = "ep_ari",
    [RL_EP_OTHER] = "ep_other",
};

const char *rl_kind_name(enum rl_kind kind)
{
    if ((unsigned)kind >= RL_KIND__COUNT)
        return "?";
    return kind_names[kind];
}

/* Profiles. */

void rl_profile_none(struct rl_profile *p)
{
    memset(p, 0, sizeof(*p));
}

static void set_limit(struct rl_profile *p, enum rl_kind kind, uint32_t count, int64_t period_ms,
                      uint32_t burst)
{
    p->limit[kind].count = count;
    p->limit[kind].period_ms = period_ms;
    p->limit[kind].burst = burst == count ? 0 : burst;
}

void rl_profile_letsencrypt(struct rl_profile *p)
{
    rl_profile_none(p);
    /*
     * https://letsencrypt.org/docs/rate-limits/ (updated June 12, 2025),
     * "Certificate Issuance Limits": each refills one token every
     * period / count (36 s, 202 min, 34 h, 12 min), from a full bucket of
     * count.
     */
    set_limit(p, RL_NEW_ORDERS, 300, 3 * HOUR_MS, 0);
    set_limit(p, RL_CERTS_PER_DOMAIN, 50, 7 * DAY_MS, 0);
    set_limit(p, RL_DUPLICATE_CERTS, 5, 7 * DAY_MS, 0);
    set_limit(p, RL_FAILED_AUTHZ, 5, HOUR_MS, 0);
    /*
     * Same page, "Overall Requests Limit": per IP address and endpoint,
     * enforced by the load balancers, with a published burst capacity that
     * is smaller than the per-second count for these four. The row for
     * everything else under /acme/ (250/s, burst 125) covers the endpoints
     * not listed separately (orders, authorizations, challenges, finalize,
     * certificate downloads).
     */
    set_limit(p, RL_EP_NEW_NONCE, 20, SEC_MS, 10);
    set_limit(p, RL_EP_NEW_ORDER, 300, SEC_MS, 200);
    set_limit(p, RL_EP_ARI, 1000, SEC_MS, 100);
    set_limit(p, RL_EP_OTHER, 250, SEC_MS, 125);
}

static bool url_is(const char *url, const char *want)
{
    size_t n = strlen(url), w = strlen(want);
    if (n == w + 1 && url[w] == '/')
        n = w;
    return n == w && strncasecmp(url, want, w) == 0;
}

bool rl_directory_is_letsencrypt(const char *directory_url)
{
    static const char *const le[] = {
        "https://acme-v02.api.letsencrypt.org/directory",
        "https://acme-staging-v02.api.letsencrypt.org/directory",
    };
    for (size_t i = 0; directory_url && i < sizeof(le) / sizeof(le[0]); i++) {
        if (url_is(directory_url, le[i]))
            return true;
    }
    return false;
}

int rl_profile_for_directory(struct rl_profile *p, const char *directory_url)
{
    if (rl_directory_is_letsencrypt(directory_url))
        rl_profile_letsencrypt(p);
    else
        rl_profile_none(p);
    return 0;
}

static uint32_t burst_of(const struct rl_limit *l)
{
    return l->burst ? l->burst : l->count;
}

/* interval_us returns T rounded up to a whole microsecond; 0 for unlimited. */
static int64_t interval_us(const struct rl_limit *l)
{
    if (!l->count)
        return 0;
    return (l->period_ms * 1000 + l->count - 1) / l->count;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(err, errlen, fmt, ap);
    va_end(ap);
}

static int limit_check(const struct rl_limit *l, const char *name, char *err, size_t errlen)
{
    if (!l->count)
        return 0;
    if (l->count > COUNT_MAX) {
        set_err(err, errlen, "rate limit %s: count %u is above %u", name, l->count, COUNT_MAX);
        return CF_ECONFIG;
    }
    if (l->period_ms < 1 || l->period_ms > PERIOD_MAX_MS) {
        set_err(err, errlen, "rate limit %s: the period must be from 1ms to 366d", name);
        return CF_ECONFIG;
    }
    if ((int64_t)l->count > l->period_ms * 1000) {
        set_err(err, errlen, "rate limit %s: more than one per microsecond", name);
        return CF_ECONFIG;
    }
    if (burst_of(l) > REFILL_MAX_US / interval_us(l)) {
        set_err(err, errlen, "rate limit %s: a burst of %u takes longer than 3660d to refill", name,
                burst_of(l));
        return CF_ECONFIG;
    }
    return 0;
}

int rl_profile_check(const struct rl_profile *p, char *err, size_t errlen)
{
    for (int k = 0; k < RL_KIND__COUNT; k++) {
        int rc = limit_check(&p->limit[k], kind_names[k], err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

static void format_duration(struct buf *out, int64_t ms)
{
    static const struct {
        int64_t ms;
        char unit;
    } units[] = {{DAY_MS, 'd'}, {HOUR_MS, 'h'}, {60 * SEC_MS, 'm'}, {SEC_MS, 's'}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms % units[i].ms == 0) {
            buf_printf(out, "%lld%c", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    buf_printf(out, "%lldms", (long long)ms);
}

void rl_profile_format(struct buf *out, const struct rl_profile *p)
{
    buf_puts(out, "none");
    for (int k = 0; k < RL_KIND__COUNT; k++) {
        const struct rl_limit *l = &p->limit[k];
        if (!l->count)
            continue;
        buf_printf(out, ",%s=%u/", kind_names[k], l->count);
        format_duration(out, l->period_ms);
        if (l->burst && l->burst != l->count)
            buf_printf(out, ":%u", l->burst);
    }
}

/* A piece of the spec: [s, s + n). */
struct span {
    const char *s;
    size_t n;
};

static struct span trim(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return (struct span){s, n};
}

static bool span_is(struct span a, const char *word)
{
    return a.n == strlen(word) && memcmp(a.s, word, a.n) == 0;
}

/* Error messages quote at most this much of one piece of the input. */
#define QUOTE_MAX 64
#define Q(sp) (int)((sp).n < QUOTE_MAX ? (sp).n : QUOTE_MAX), (sp).s

static int parse_u32(struct span a, uint32_t *out)
{
    uint64_t v = 0;
    if (!a.n || a.n > 10)
        return CF_ECONFIG;
    for (size_t i = 0; i < a.n; i++) {
        if (a.s[i] < '0' || a.s[i] > '9')
            return CF_ECONFIG;
        v = v * 10 + (uint64_t)(a.s[i] - '0');
    }
    if (v > UINT32_MAX)
        return CF_ECONFIG;
    *out = (uint32_t)v;
    return 0;
}

/*
 * parse_period reads "NNNms" or what cf_duration_parse reads; a unit without
 * a number is one of it ("s", "h"), and nothing at all is 1s.
 */
static int parse_period(struct span a, int64_t *out_ms)
{
    char tmp[32];
    size_t n = 0;
    if (!a.n) {
        *out_ms = SEC_MS;
        return 0;
    }
    if (a.n + 1 >= sizeof(tmp))
        return CF_ECONFIG;
    if (a.s[0] < '0' || a.s[0] > '9')
        tmp[n++] = '1';
    memcpy(tmp + n, a.s, a.n);
    n += a.n;
    tmp[n] = '\0';
    if (n > 2 && tmp[n - 2] == 'm' && tmp[n - 1] == 's') {
        uint32_t v;
        if (parse_u32((struct span){tmp, n - 2}, &v))
            return CF_ECONFIG;
        *out_ms = v;
        return 0;
    }
    int64_t secs;
    if (cf_duration_parse(&secs, tmp) || secs > PERIOD_MAX_MS / SEC_MS)
        return CF_ECONFIG;
    *out_ms = secs * SEC_MS;
    return 0;
}

/* parse_limit reads "none" or COUNT/[DURATION][:BURST] of item into *l. */
static int parse_limit(struct rl_limit *l, struct span val, struct span item, const char *name,
                       char *err, size_t errlen)
{
    if (span_is(val, "none")) {
        memset(l, 0, sizeof(*l));
        return 0;
    }
    const char *slash = memchr(val.s, '/', val.n);
    if (!slash) {
        set_err(err, errlen,
                "rate limits: \"%.*s\" in \"%.*s\" is not COUNT/DURATION[:BURST] or none", Q(val),
                Q(item));
        return CF_ECONFIG;
    }
    struct span count = trim(val.s, (size_t)(slash - val.s));
    struct span rest = {slash + 1, val.n - (size_t)(slash - val.s) - 1};
    const char *colon = memchr(rest.s, ':', rest.n);
    struct span period = trim(rest.s, colon ? (size_t)(colon - rest.s) : rest.n);
    struct span burst =
        colon ? trim(colon + 1, rest.n - (size_t)(colon - rest.s) - 1) : (struct span){NULL, 0};
    struct rl_limit nl = {0};
    if (parse_u32(count, &nl.count) || nl.count == 0) {
        set_err(err, errlen,
                "rate limits: bad count \"%.*s\" in \"%.*s\" (a number from 1; "
                "none for no limit)",
                Q(count), Q(item));
        return CF_ECONFIG;
    }
    if (parse_period(period, &nl.period_ms)) {
        set_err(err, errlen, "rate limits: bad duration \"%.*s\" in \"%.*s\" (like 1s, 3h, 7d)",
                Q(period), Q(item));
        return CF_ECONFIG;
    }
    if (colon && (parse_u32(burst, &nl.burst) || nl.burst == 0)) {
        set_err(err, errlen, "rate limits: bad burst \"%.*s\" in \"%.*s\" (a number from 1)",
                Q(burst), Q(item));
        return CF_ECONFIG;
    }
    if (nl.burst == nl.count)
        nl.burst = 0;
    char why[160];
    if (limit_check(&nl, name, why, sizeof(why))) {
        set_err(err, errlen, "rate limits: \"%.*s\": %s", Q(item), why);
        return CF_ECONFIG;
    }
    *l = nl;
    return 0;
}

int rl_profile_parse(struct rl_profile *p, const char *spec, char *err, size_t errlen)
{
    struct rl_profile np;
    rl_profile_none(&np);
    if (!spec)
        spec = "";
    const char *s = spec;
    for (int idx = 0;; idx++) {
        const char *end = strchr(s, ',');
        if (!end)
            end = s + strlen(s);
        struct span item = trim(s, (size_t)(end - s));
        const char *eq = item.n ? memchr(item.s, '=', item.n) : NULL;
        if (!item.n) {
            if (!*spec)
                set_err(err, errlen, "rate limits: empty profile (letsencrypt, none, or limits)");
            else
                set_err(err, errlen, "rate limits: empty item %d in \"%.*s\"", idx + 1,
                        Q(trim(spec, strlen(spec))));
            return CF_ECONFIG;
        }
        if (!eq) {
            bool le = span_is(item, "letsencrypt"), none = span_is(item, "none");
            if ((le || none) && idx > 0) {
                set_err(err, errlen, "rate limits: the base profile \"%.*s\" must come first",
                        Q(item));
                return CF_ECONFIG;
            }
            if (!le && !none) {
                set_err(err, errlen,
                        "rate limits: unknown profile \"%.*s\" (letsencrypt, none, or NAME=LIMIT)",
                        Q(item));
                return CF_ECONFIG;
            }
            if (le)
                rl_profile_letsencrypt(&np);
        } else {
            struct span name = trim(item.s, (size_t)(eq - item.s));
            struct span val = trim(eq + 1, item.n - (size_t)(eq - item.s) - 1);
            int kind = -1;
            for (int k = 0; k < RL_KIND__COUNT; k++) {
                if (span_is(name, kind_names[k]))
                    kind = k;
            }
            if (kind < 0) {
                set_err(err, errlen,
                        "rate limits: unknown limit \"%.*s\" in \"%.*s\" (new_orders, "
                        "certs_per_domain, duplicate_certs, failed_authz, ep_new_nonce, "
                        "ep_new_order, ep_ari, ep_other)",
                        Q(name), Q(item));
                return CF_ECONFIG;
            }
            int rc = parse_limit(&np.limit[kind], val, item, kind_names[kind], err, errlen);
            if (rc)
                return rc;
        }
        if (!*end)
            break;
        s = end + 1;
    }
    *p = np;
    return 0;
}

/* Keys. */

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* mix is splitmix64's finalizer, so keys that differ in one byte spread apart. */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

/* A bucket's identity: the kind and the (folded) key, with its hash. */
struct bkey {
    uint8_t kind;
    size_t len;
    uint64_t hash;
    char s[RL_KEY_MAX + 1];
};

static void bkey_hash(struct bkey *k)
{
    k->hash = mix(fnv(fnv(FNV_OFFSET, &k->kind, 1), k->s, k->len));
}

/*
 * bkey_one sets k to kind and key (NULL: ""), folded if longer than
 * RL_KEY_MAX (ratelimit.h, rl_order_key).
 */
static void bkey_one(struct bkey *k, enum rl_kind kind, const char *key)
{
    size_t len = key ? strlen(key) : 0;
    if (len <= RL_KEY_MAX) {
        memcpy(k->s, key ? key : "", len);
    } else {
        memcpy(k->s, key, RL_KEY_MAX - 17);
        snprintf(k->s + RL_KEY_MAX - 17, 18, "#%016llx",
                 (unsigned long long)mix(fnv(FNV_OFFSET, key, len)));
        len = RL_KEY_MAX;
    }
    k->s[len] = '\0';
    k->kind = (uint8_t)kind;
    k->len = len;
    bkey_hash(k);
}

/* bkey_order sets k to the key rl_admit uses for kind; CF_EUSAGE if it uses none. */
static int bkey_order(struct bkey *k, enum rl_kind kind, const struct rl_order_req *req)
{
    if (!req->account || !req->regdom || !req->names_key || !req->host)
        return CF_EUSAGE;
    switch (kind) {
    case RL_NEW_ORDERS:
        bkey_one(k, kind, req->account);
        return 0;
    case RL_CERTS_PER_DOMAIN:
        bkey_one(k, kind, req->regdom);
        return 0;
    case RL_DUPLICATE_CERTS:
        bkey_one(k, kind, req->names_key);
        return 0;
    case RL_FAILED_AUTHZ:
        bkey_one(k, kind, req->host);
        return 0;
    case RL_EP_NEW_ORDER:
        bkey_one(k, kind, "");
        return 0;
    default:
        return CF_EUSAGE;
    }
}

int rl_order_key(char *out, size_t outlen, enum rl_kind kind, const struct rl_order_req *req)
{
    struct bkey k;
    if (outlen < RL_KEY_MAX + 1)
        return CF_EUSAGE;
    int rc = bkey_order(&k, kind, req);
    if (rc)
        return rc;
    memcpy(out, k.s, k.len + 1);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void rl_names_key(struct buf *out, const char *const *names, size_t n)
{
    char **v = xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i] = xstrdup(names[i]);
        for (char *c = v[i]; *c; c++) {
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        }
    }
    qsort(v, n, sizeof(*v), cmp_str);
    size_t written = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(v[i], v[i - 1]) == 0)
            continue;
        if (written++)
            buf_putc(out, ',');
        buf_puts(out, v[i]);
    }
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The table. */

struct bucket {
    uint64_t hash;
    int64_t tat_us;    /* theoretical arrival time; <= now: full */
    int64_t frozen_ms; /* nothing admitted before this */
    uint8_t kind;
    uint16_t klen;
    char key[]; /* klen bytes and a NUL */
};

struct rl_table {
    struct rl_profile prof;
    int64_t t_us[RL_KIND__COUNT];   /* emission interval T; 0: unlimited */
    int64_t tau_us[RL_KIND__COUNT]; /* burst * T */
    struct bucket **slots;          /* open addressing, linear probing */
    size_t cap, count;
    int64_t admit_jitter_us; /* rl_table_set_admit_jitter */
};

struct rl_table *rl_table_new(const struct rl_profile *p)
{
    if (rl_profile_check(p, NULL, 0))
        return NULL;
    struct rl_table *t = xcalloc(1, sizeof(*t));
    t->prof = *p;
    for (int k = 0; k < RL_KIND__COUNT; k++) {
        t->t_us[k] = interval_us(&p->limit[k]);
        t->tau_us[k] = t->t_us[k] * burst_of(&p->limit[k]);
    }
    return t;
}

void rl_table_free(struct rl_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i]);
    free(t->slots);
    free(t);
}

size_t rl_table_count(const struct rl_table *t)
{
    return t->count;
}

const struct rl_profile *rl_table_profile(const struct rl_table *t)
{
    return &t->prof;
}

void rl_table_set_admit_jitter(struct rl_table *t, int64_t jitter_ms)
{
    t->admit_jitter_us =
        jitter_ms > 0 ? (jitter_ms > RL_ISSUE_HOLD_MS ? RL_ISSUE_HOLD_MS : jitter_ms) * 1000 : 0;
}

static struct bucket **slot_for(const struct rl_table *t, const struct bkey *k)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)k->hash & mask;; i = (i + 1) & mask) {
        struct bucket *b = t->slots[i];
        if (!b || (b->hash == k->hash && b->kind == k->kind && b->klen == k->len &&
                   memcmp(b->key, k->s, k->len) == 0))
            return &t->slots[i];
    }
}

static struct bucket *find(const struct rl_table *t, const struct bkey *k)
{
    return t->cap ? *slot_for(t, k) : NULL;
}

/* rehash moves every bucket of t into a fresh array of ncap (a power of two) slots. */
static void rehash(struct rl_table *t, size_t ncap)
{
    struct bucket **ns = xcalloc(ncap, sizeof(*ns));
    for (size_t i = 0; i < t->cap; i++) {
        struct bucket *b = t->slots[i];
        if (!b)
            continue;
        size_t j = (size_t)b->hash & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = b;
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
}

static struct bucket *find_or_add(struct rl_table *t, const struct bkey *k)
{
    if ((t->count + 1) * 4 > t->cap * 3)
        rehash(t, t->cap ? t->cap * 2 : 64);
    struct bucket **s = slot_for(t, k);
    if (!*s) {
        struct bucket *b = xmalloc(sizeof(*b) + k->len + 1);
        b->hash = k->hash;
        b->tat_us = 0;
        b->frozen_ms = 0;
        b->kind = k->kind;
        b->klen = (uint16_t)k->len;
        memcpy(b->key, k->s, k->len + 1);
        *s = b;
        t->count++;
    }
    return *s;
}

static int64_t clamp_ms(int64_t ms)
{
    return ms < 0 ? 0 : ms > RL_TIME_MAX_MS ? RL_TIME_MAX_MS : ms;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* ms_ceil returns the first millisecond at or after us (>= 0). */
static int64_t ms_ceil(int64_t us)
{
    return (us + 999) / 1000;
}

/*
 * allow_at_us returns the earliest time (microseconds) at which bucket b
 * (NULL: full) of kind gives a token; a time <= now means now.
 */
static int64_t allow_at_us(const struct rl_table *t, unsigned kind, const struct bucket *b)
{
    if (!b)
        return 0;
    int64_t at = b->frozen_ms * 1000;
    if (t->t_us[kind])
        at = max64(at, b->tat_us + t->t_us[kind] - t->tau_us[kind]);
    return at;
}

/*
 * spend takes a token of kind from the bucket of k at now_us (as if at
 * now_us for GCRA: TAT = max(TAT, now_us) + T). Unless forced, the caller
 * has checked that one is there; a forced spend may go into debt, by at
 * most one more burst.
 */
static void spend(struct rl_table *t, const struct bkey *k, int64_t now_us, bool force)
{
    int64_t T = t->t_us[k->kind];
    if (!T)
        return; /* unlimited: nothing to count */
    struct bucket *b = find_or_add(t, k);
    int64_t tat = max64(b->tat_us, now_us) + T;
    int64_t debt_max = now_us + 2 * t->tau_us[k->kind];
    if (force && tat > debt_max)
        tat = max64(b->tat_us, debt_max);
    b->tat_us = tat;
}

/* One bucket consulted by rl_admit. */
struct check {
    struct bkey key;
    bool take;   /* take a token; else only require one */
    bool hold;   /* take it as of now + RL_ISSUE_HOLD_MS */
    bool jitter; /* keep the table's admission jitter as a margin */
};

int rl_admit(struct rl_table *t, const struct rl_order_req *req, int64_t now_ms,
             int64_t *retry_at_ms)
{
    /*
     * Certificates per domain and duplicate certificates are taken here,
     * at admission, though the CA counts them when it issues (Boulder
     * checks them at new-order and spends them at finalize): an order that
     * then fails has used tokens the CA still has. That is conservative,
     * and simpler than a second accounting step at issuance, provided the
     * token is taken as of the latest time the CA may spend it: a spend at
     * now into a full bucket would leave the mirror ahead of a CA that
     * spends minutes later (the CA's bucket stays clipped at its burst
     * meanwhile, ours refills). Hence the hold (RL_ISSUE_HOLD_MS), and
     * rl_note_issued for orders slower than that.
     *
     * ARI renewals: "Renewals coordinated by ARI offer the unique benefit
     * of being exempt from all rate limits ... If the new order includes at
     * least one identifier matching the certificate it intends to replace
     * and the certificate has not been previously replaced using ARI"
     * (https://letsencrypt.org/docs/rate-limits/, "ARI Renewals"). Only
     * the two limits renewals of every kind are exempt from ("Non-ARI
     * Renewals": New Orders per Account and New Certificates per Registered
     * Domain) are skipped: whether the CA takes an order as an ARI renewal
     * depends on its own records, so the duplicate and failed-authorization
     * buckets are still kept, and the endpoint rate is a load balancer's.
     *
     * The admission jitter (rl_table_set_admit_jitter) is kept for new
     * orders only: it is the one bucket the CA spends when the newOrder
     * arrives that is taken here at now. The others are held an hour
     * (far more than any jitter), only required (failed authorizations),
     * or an endpoint's request rate, which the ACME client paces when the
     * request is sent.
     */
    static const struct {
        enum rl_kind kind;
        bool take;
        bool hold; /* spent by the CA at issuance */
        bool renewal_exempt;
        bool jitter;
    } plan[] = {
        {RL_NEW_ORDERS, true, false, true, true},
        {RL_CERTS_PER_DOMAIN, true, true, true, false},
        {RL_DUPLICATE_CERTS, true, true, false, false},
        {RL_FAILED_AUTHZ, false, false, false, false},
        {RL_EP_NEW_ORDER, true, false, false, false},
    };
    struct check c[sizeof(plan) / sizeof(plan[0])];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
        if (req->ari_renewal && plan[i].renewal_exempt)
            continue;
        int rc = bkey_order(&c[n].key, plan[i].kind, req);
        if (rc)
            return rc;
        c[n].take = plan[i].take;
        c[n].jitter = plan[i].jitter;
        c[n++].hold = plan[i].hold;
    }
    now_ms = clamp_ms(now_ms);
    int64_t now_us = now_ms * 1000, at = 0;
    for (size_t i = 0; i < n; i++) {
        const struct bucket *b = find(t, &c[i].key);
        int64_t a = allow_at_us(t, c[i].key.kind, b);
        /*
         * With a margin J, a token counts only once the bucket has held it
         * for J: admissions then conform to the limit with its tolerance
         * cut by J, so newOrders that reach the CA up to J late relative to
         * each other still conform to the CA's own bucket (pacer.h has the
         * argument). A bucket never used, or full, has no arrival to be late
         * relative to.
         */
        if (c[i].jitter && b && t->t_us[c[i].key.kind] &&
            b->tat_us > now_us - t->tau_us[c[i].key.kind])
            a += t->admit_jitter_us;
        at = max64(at, a);
    }
    if (at > now_us) {
        if (retry_at_ms)
            *retry_at_ms = max64(now_ms, ms_ceil(at));
        return CF_ERATELIMIT;
    }
    for (size_t i = 0; i < n; i++) {
        if (c[i].take)
            spend(t, &c[i].key, now_us + (c[i].hold ? RL_ISSUE_HOLD_MS * 1000 : 0), false);
    }
    return 0;
}

int rl_note_issued(struct rl_table *t, const struct rl_order_req *req, int64_t admitted_ms,
                   int64_t issued_ms)
{
    struct bkey k;
    admitted_ms = clamp_ms(admitted_ms);
    issued_ms = clamp_ms(issued_ms);
    int64_t late_us = (issued_ms - admitted_ms - RL_ISSUE_HOLD_MS) * 1000;
    for (int i = 0; i < 2; i++) {
        enum rl_kind kind = i ? RL_DUPLICATE_CERTS : RL_CERTS_PER_DOMAIN;
        int rc = bkey_order(&k, kind, req);
        if (rc)
            return rc;
        if (late_us <= 0 || !t->t_us[kind] || (kind == RL_CERTS_PER_DOMAIN && req->ari_renewal))
            continue;
        /*
         * Our spend was at admitted + hold; the CA's at issued. If the
         * bucket is full at issued (or gc dropped it), every earlier spend,
         * ours included, is absorbed, and the CA's is a plain spend at
         * issued. Otherwise, moving one spend later by late_us moves the
         * final TAT later by at most late_us.
         */
        struct bucket *b = find(t, &k);
        if (!b || b->tat_us <= issued_ms * 1000)
            spend(t, &k, issued_ms * 1000, false);
        else
            b->tat_us += late_us;
    }
    return 0;
}

int rl_take(struct rl_table *t, enum rl_kind kind, const char *key, int64_t now_ms,
            int64_t *retry_at_ms)
{
    struct bkey k;
    if ((unsigned)kind >= RL_KIND__COUNT)
        return CF_EUSAGE;
    bkey_one(&k, kind, key);
    now_ms = clamp_ms(now_ms);
    int64_t at = allow_at_us(t, kind, find(t, &k));
    if (at > now_ms * 1000) {
        if (retry_at_ms)
            *retry_at_ms = max64(now_ms, ms_ceil(at));
        return CF_ERATELIMIT;
    }
    spend(t, &k, now_ms * 1000, false);
    return 0;
}

void rl_note_failed_authz(struct rl_table *t, const char *host, int64_t now_ms)
{
    struct bkey k;
    bkey_one(&k, RL_FAILED_AUTHZ, host);
    spend(t, &k, clamp_ms(now_ms) * 1000, true);
}

void rl_freeze(struct rl_table *t, enum rl_kind kind, const char *key, int64_t until_ms)
{
    struct bkey k;
    if ((unsigned)kind >= RL_KIND__COUNT)
        return;
    bkey_one(&k, kind, key);
    until_ms = clamp_ms(until_ms);
    struct bucket *b = find_or_add(t, &k);
    b->frozen_ms = max64(b->frozen_ms, until_ms);
    /* The CA's bucket gives its next token at until: its TAT is until + tau - T. */
    if (t->t_us[kind])
        b->tat_us = max64(b->tat_us, until_ms * 1000 + t->tau_us[kind] - t->t_us[kind]);
}

int64_t rl_retry_at(const struct rl_table *t, enum rl_kind kind, const char *key, int64_t now_ms)
{
    struct bkey k;
    now_ms = clamp_ms(now_ms);
    if ((unsigned)kind >= RL_KIND__COUNT)
        return now_ms;
    bkey_one(&k, kind, key);
    return max64(now_ms, ms_ceil(allow_at_us(t, kind, find(t, &k))));
}

uint32_t rl_available(const struct rl_table *t, enum rl_kind kind, const char *key, int64_t now_ms)
{
    struct bkey k;
    if ((unsigned)kind >= RL_KIND__COUNT)
        return 0;
    bkey_one(&k, kind, key);
    now_ms = clamp_ms(now_ms);
    const struct bucket *b = find(t, &k);
    if (b && b->frozen_ms > now_ms)
        return 0;
    int64_t T = t->t_us[kind];
    if (!T)
        return UINT32_MAX;
    int64_t now_us = now_ms * 1000;
    int64_t room = now_us + t->tau_us[kind] - max64(b ? b->tat_us : 0, now_us);
    return room <= 0 ? 0 : (uint32_t)(room / T);
}

static bool bucket_trivial(const struct bucket *b, int64_t now_ms)
{
    return b->tat_us <= now_ms * 1000 && b->frozen_ms <= now_ms;
}

size_t rl_table_gc(struct rl_table *t, int64_t now_ms)
{
    now_ms = clamp_ms(now_ms);
    size_t dropped = 0;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i] && bucket_trivial(t->slots[i], now_ms)) {
            free(t->slots[i]);
            t->slots[i] = NULL;
            dropped++;
        }
    }
    if (!dropped)
        return 0;
    /* Holes break linear probing: rebuild, shrinking to a load of at most 1/2. */
    t->count -= dropped;
    size_t ncap = 64;
    while (ncap < t->count * 2)
        ncap *= 2;
    rehash(t, ncap);
    return dropped;
}

/* Persistence (ratelimit.h). */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

size_t rl_table_encode_each(const struct rl_table *t, int64_t now_ms, rl_encode_cb cb, void *ctx)
{
    uint8_t key[1 + RL_KEY_MAX], val[RL_STATE_LEN];
    size_t n = 0;
    now_ms = clamp_ms(now_ms);
    for (size_t i = 0; i < t->cap; i++) {
        const struct bucket *b = t->slots[i];
        if (!b || bucket_trivial(b, now_ms))
            continue;
        key[0] = b->kind;
        memcpy(key + 1, b->key, b->klen);
        val[0] = RL_STATE_VERSION;
        put_be64(val + 1, (uint64_t)b->tat_us);
        put_be64(val + 9, (uint64_t)b->frozen_ms);
        cb(ctx, key, 1 + (size_t)b->klen, val, sizeof(val));
        n++;
    }
    return n;
}

int rl_table_load(struct rl_table *t, const void *key, size_t klen, const void *val, size_t vlen)
{
    const uint8_t *k = key, *v = val;
    if (!k || klen < 1 || klen > 1 + RL_KEY_MAX || !v || vlen < 1 || v[0] == 0)
        return CF_ECORRUPT;
    if (v[0] > RL_STATE_VERSION)
        return CF_ENEWER_SCHEMA;
    if (vlen != RL_STATE_LEN || memchr(k + 1, '\0', klen - 1))
        return CF_ECORRUPT;
    if (k[0] >= RL_KIND__COUNT)
        return CF_ENEWER_SCHEMA;
    uint64_t tat = get_be64(v + 1), frozen = get_be64(v + 9);
    if (tat > (uint64_t)RL_TIME_MAX_MS * 1000 || frozen > (uint64_t)RL_TIME_MAX_MS)
        return CF_ECORRUPT;
    struct bkey bk;
    bk.kind = k[0];
    bk.len = klen - 1;
    memcpy(bk.s, k + 1, bk.len);
    bk.s[bk.len] = '\0';
    bkey_hash(&bk);
    struct bucket *b = find_or_add(t, &bk);
    b->tat_us = max64(b->tat_us, (int64_t)tat);
    b->frozen_ms = max64(b->frozen_ms, (int64_t)frozen);
    return 0;
}
