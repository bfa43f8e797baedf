/*
 * ratelimit.c - the limits the mock CA enforces, as Let's Encrypt does:
 * token buckets kept as GCRA theoretical arrival times (TAT), one per
 * (kind, key), a full bucket admitting a burst and refilling one token
 * every period / count.
 *
 * Written apart from certfleet's scheduler/ratelimit.c on purpose: the mock
 * judges whether the client keeps within the limits, and a judge sharing the
 * judged code would agree with its bugs. Only the spec grammar is the same,
 * so one string configures both sides of a scenario.
 *
 * Let's Encrypt's published limits (https://letsencrypt.org/docs/rate-limits/,
 * June 2025): 10 new accounts per IP per 3 h; 300 new orders per account per
 * 3 h; 50 certificates per registered domain per 7 days; 5 certificates per
 * exact set of identifiers per 7 days; 5 failed authorizations per
 * identifier per account per hour; and per IP and endpoint: new-nonce 20/s
 * (burst 10), new-account 5/s (burst 15), new-order 300/s (burst 200),
 * revoke-cert 10/s (burst 100), renewal-info 1000/s (burst 100), /directory
 * 40/s (burst 40), any other /acme/ path 250/s (burst 125).
 *
 * Keys are 64-bit hashes of the real keys (account, domain, set of names):
 * two keys that collide share a bucket, which can only make the mock
 * stricter, with a probability around n^2 / 2^65.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mockca.h"

#define HOUR_MS (3600 * INT64_C(1000))
#define DAY_MS (24 * HOUR_MS)

static const char *const kind_names[MC_RL__COUNT] = {
    [MC_RL_NEW_ORDERS] = "new_orders",
    [MC_RL_CERTS_PER_DOMAIN] = "certs_per_domain",
    [MC_RL_DUPLICATE_CERTS] = "duplicate_certs",
    [MC_RL_FAILED_AUTHZ] = "failed_authz",
    [MC_RL_NEW_ACCOUNTS] = "new_accounts",
    [MC_RL_EP_NEW_NONCE] = "ep_new_nonce",
    [MC_RL_EP_NEW_ACCOUNT] = "ep_new_account",
    [MC_RL_EP_NEW_ORDER] = "ep_new_order",
    [MC_RL_EP_REVOKE] = "ep_revoke",
    [MC_RL_EP_ARI] = "ep_ari",
    [MC_RL_EP_DIRECTORY] = "ep_directory",
    [MC_RL_EP_OTHER] = "ep_other",
};

const char *mc_rl_kind_name(enum mc_rl_kind k)
{
    return (unsigned)k < MC_RL__COUNT ? kind_names[k] : "?";
}

static void letsencrypt(struct mc_rl_limit l[MC_RL__COUNT])
{
    memset(l, 0, sizeof(l[0]) * MC_RL__COUNT);
    l[MC_RL_NEW_ACCOUNTS] = (struct mc_rl_limit){10, 10, 3 * HOUR_MS};
    l[MC_RL_NEW_ORDERS] = (struct mc_rl_limit){300, 300, 3 * HOUR_MS};
    l[MC_RL_CERTS_PER_DOMAIN] = (struct mc_rl_limit){50, 50, 7 * DAY_MS};
    l[MC_RL_DUPLICATE_CERTS] = (struct mc_rl_limit){5, 5, 7 * DAY_MS};
    l[MC_RL_FAILED_AUTHZ] = (struct mc_rl_limit){5, 5, HOUR_MS};
    l[MC_RL_EP_NEW_NONCE] = (struct mc_rl_limit){20, 10, 1000};
    l[MC_RL_EP_NEW_ACCOUNT] = (struct mc_rl_limit){5, 15, 1000};
    l[MC_RL_EP_NEW_ORDER] = (struct mc_rl_limit){300, 200, 1000};
    l[MC_RL_EP_REVOKE] = (struct mc_rl_limit){10, 100, 1000};
    l[MC_RL_EP_ARI] = (struct mc_rl_limit){1000, 100, 1000};
    l[MC_RL_EP_DIRECTORY] = (struct mc_rl_limit){40, 40, 1000};
    l[MC_RL_EP_OTHER] = (struct mc_rl_limit){250, 125, 1000};
}

/* parse_duration reads "3h", "7d", "1h30m", "500ms", "s" (a missing number is 1) into ms. */
static int parse_duration(const char *s, size_t n, int64_t *out)
{
    int64_t total = 0;
    size_t i = 0;

    if (n == 0)
        return -1;
    while (i < n) {
        int64_t v = 0, unit;
        size_t d = i;
        while (i < n && isdigit((unsigned char)s[i]) && v < INT64_C(1000000000))
            v = v * 10 + (s[i++] - '0');
        if (i == d)
            v = 1;
        if (n - i >= 2 && s[i] == 'm' && s[i + 1] == 's') {
            unit = 1;
            i += 2;
        } else if (i < n && s[i] == 's') {
            unit = 1000;
            i++;
        } else if (i < n && s[i] == 'm') {
            unit = 60 * 1000;
            i++;
        } else if (i < n && s[i] == 'h') {
            unit = HOUR_MS;
            i++;
        } else if (i < n && s[i] == 'd') {
            unit = DAY_MS;
            i++;
        } else {
            return -1;
        }
        total += v * unit;
    }
    if (total <= 0 || total > 366 * DAY_MS)
        return -1;
    *out = total;
    return 0;
}

static int parse_item(struct mc_rl_limit l[MC_RL__COUNT], const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n), *v, *slash, *colon;
    size_t nl, vl;
    int k;
    char *end;
    unsigned long count, burst = 0;
    int64_t period = 1000;

    if (!eq)
        return -1;
    nl = (size_t)(eq - s);
    while (nl && s[nl - 1] == ' ')
        nl--;
    for (k = 0; k < MC_RL__COUNT; k++)
        if (strlen(kind_names[k]) == nl && memcmp(kind_names[k], s, nl) == 0)
            break;
    if (k == MC_RL__COUNT)
        return -1;
    v = eq + 1;
    vl = n - (size_t)(v - s);
    while (vl && *v == ' ') {
        v++;
        vl--;
    }
    if (vl == 4 && memcmp(v, "none", 4) == 0) {
        l[k] = (struct mc_rl_limit){0, 0, 0};
        return 0;
    }
    count = strtoul(v, &end, 10);
    if (end == v || count == 0 || count > 100000000)
        return -1;
    slash = end;
    colon = memchr(v, ':', vl);
    if (slash < v + vl && *slash == '/') {
        size_t dl = (size_t)((colon ? colon : v + vl) - (slash + 1));
        if (dl && parse_duration(slash + 1, dl, &period) != 0)
            return -1;
    } else if (slash != (colon ? colon : v + vl)) {
        return -1;
    }
    if (colon) {
        burst = strtoul(colon + 1, &end, 10);
        if (end != v + vl || burst == 0 || burst > 100000000)
            return -1;
    }
    l[k] = (struct mc_rl_limit){(uint32_t)count, (uint32_t)burst, period};
    return 0;
}

int mc_rl_parse(struct mc_rl_limit limits[MC_RL__COUNT], const char *spec, double scale, char *err,
                size_t errlen)
{
    struct mc_rl_limit l[MC_RL__COUNT];
    const char *p = spec;
    int first = 1;

    memset(l, 0, sizeof(l));
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && *p == ' ') {
            p++;
            n--;
        }
        while (n && p[n - 1] == ' ')
            n--;
        if (first && n == 11 && memcmp(p, "letsencrypt", 11) == 0) {
            letsencrypt(l);
        } else if (first && n == 4 && memcmp(p, "none", 4) == 0) {
            memset(l, 0, sizeof(l));
        } else if (parse_item(l, p, n) != 0) {
            str_fmt(err, errlen,
                    "--ratelimit: cannot read '%.*s' (want letsencrypt, none, or "
                    "NAME=none|COUNT/DURATION[:BURST])",
                    (int)n, p);
            return CF_ECONFIG;
        }
        first = 0;
        p += n;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
    }
    if (scale < 1) {
        str_fmt(err, errlen, "--ratelimit-scale must be at least 1");
        return CF_ECONFIG;
    }
    for (int k = 0; k < MC_RL__COUNT; k++) {
        if (l[k].count && scale > 1) {
            l[k].period_ms = (int64_t)((double)l[k].period_ms / scale);
            if (l[k].period_ms < 1)
                l[k].period_ms = 1;
        }
    }
    memcpy(limits, l, sizeof(l));
    return 0;
}

void mc_rl_format(struct buf *out, const struct mc_rl_limit limits[MC_RL__COUNT])
{
    buf_putc(out, '{');
    for (int k = 0; k < MC_RL__COUNT; k++) {
        const struct mc_rl_limit *l = &limits[k];
        if (k)
            buf_putc(out, ',');
        if (!l->count)
            buf_printf(out, "\"%s\":null", kind_names[k]);
        else
            buf_printf(out, "\"%s\":{\"count\":%u,\"burst\":%u,\"period_ms\":%lld}", kind_names[k],
                       l->count, l->burst ? l->burst : l->count, (long long)l->period_ms);
    }
    buf_putc(out, '}');
}

struct mc_rl {
    struct mc_rl_limit lim[MC_RL__COUNT];
    int64_t t_us[MC_RL__COUNT];   /* emission interval T */
    int64_t cap_us[MC_RL__COUNT]; /* burst * T */
    struct mc_map idx;
    int64_t *tat; /* microseconds */
    size_t n, cap;
};

struct mc_rl *mc_rl_new(const struct mc_rl_limit limits[MC_RL__COUNT])
{
    struct mc_rl *rl = xcalloc(1, sizeof(*rl));

    memcpy(rl->lim, limits, sizeof(rl->lim));
    for (int k = 0; k < MC_RL__COUNT; k++) {
        const struct mc_rl_limit *l = &limits[k];
        if (!l->count)
            continue;
        /* Rounded up: rounding may only make the mock stricter than the CA it mimics. */
        rl->t_us[k] = (l->period_ms * 1000 + l->count - 1) / l->count;
        rl->cap_us[k] = rl->t_us[k] * (l->burst ? l->burst : l->count);
    }
    mc_map_init(&rl->idx);
    return rl;
}

void mc_rl_free(struct mc_rl *rl)
{
    if (!rl)
        return;
    mc_map_cleanup(&rl->idx);
    free(rl->tat);
    free(rl);
}

int mc_rl_enabled(const struct mc_rl *rl, enum mc_rl_kind k)
{
    return rl && rl->lim[k].count != 0;
}

const struct mc_rl_limit *mc_rl_get(const struct mc_rl *rl, enum mc_rl_kind k)
{
    return &rl->lim[k];
}

static uint64_t bucket_key(enum mc_rl_kind k, uint64_t key)
{
    return mc_hash64(&key, sizeof(key), (uint64_t)k + 1);
}

/* slot returns the TAT of bucket (k, key), created full (TAT 0) when create is set; NULL if absent.
 */
static int64_t *slot(struct mc_rl *rl, enum mc_rl_kind k, uint64_t key, int create)
{
    uint64_t bk = bucket_key(k, key);
    uint32_t i;

    if (mc_map_get(&rl->idx, bk, &i))
        return &rl->tat[i];
    if (!create)
        return NULL;
    if (rl->n == rl->cap) {
        rl->cap = rl->cap ? rl->cap * 2 : 1024;
        rl->tat = xrealloc(rl->tat, rl->cap * sizeof(*rl->tat));
    }
    rl->tat[rl->n] = 0;
    mc_map_put(&rl->idx, bk, (uint32_t)rl->n);
    return &rl->tat[rl->n++];
}

int64_t mc_rl_check(struct mc_rl *rl, enum mc_rl_kind k, uint64_t key, int64_t now_ms)
{
    int64_t now = now_ms * 1000, *tat, t, wait;

    if (!mc_rl_enabled(rl, k))
        return 0;
    tat = slot(rl, k, key, 0);
    if (!tat)
        return 0;
    t = *tat > now ? *tat : now;
    /* A token is there when taking it keeps TAT within burst * T of now. */
    wait = t + rl->t_us[k] - rl->cap_us[k] - now;
    if (wait <= 0)
        return 0;
    return (wait + 999) / 1000;
}

void mc_rl_take(struct mc_rl *rl, enum mc_rl_kind k, uint64_t key, int64_t now_ms)
{
    int64_t now = now_ms * 1000, *tat;

    if (!mc_rl_enabled(rl, k))
        return;
    tat = slot(rl, k, key, 1);
    *tat = (*tat > now ? *tat : now) + rl->t_us[k];
    /* Debt is bounded: one burst beyond full use. */
    if (*tat > now + 2 * rl->cap_us[k])
        *tat = now + 2 * rl->cap_us[k];
}

void mc_rl_refund(struct mc_rl *rl, enum mc_rl_kind k, uint64_t key, int64_t now_ms)
{
    int64_t now = now_ms * 1000, *tat;

    if (!mc_rl_enabled(rl, k))
        return;
    tat = slot(rl, k, key, 0);
    if (!tat)
        return;
    *tat -= rl->t_us[k];
    if (*tat < now)
        *tat = now;
}
