/*
 * renewal.c - renewal windows, the fleet leveler, renewal times.
 *
 * The leveler is a segment tree of minima over the hour counts: leaves hold
 * the counts, each inner node the minimum of its two children, and padding
 * leaves past the last hour hold UINT32_MAX so they never win. Adding or
 * removing a renewal updates one leaf and its ancestors; finding the least
 * loaded hour of a window is a range minimum and one descent. A 90-day
 * certificate's window is 173 hours wide and an ARI window can span weeks;
 * a scan per placement would cost a 100,000-host import 100,000 times that.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "backoff.h"
#include "buf.h"
#include "err.h"
#include "renewal.h"

struct sched_leveler {
    int64_t origin; /* start of hour 0, a multiple of SCHED_LEVELER_SLOT */
    int64_t end;    /* origin + nslots hours */
    size_t nslots;
    size_t size;    /* leaves in the tree: the power of two >= nslots */
    uint32_t *tree; /* 2 * size nodes; node 1 is the root, leaf i is size + i */
};

/* Counts stop one below the padding value, so a full hour still sorts first. */
#define LOAD_MAX (UINT32_MAX - 1)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && a < 0)
        q--;
    return q;
}

/* pct percent of v >= 0, rounded down, without overflowing for any v. */
static int64_t percent_of(int64_t v, int64_t pct)
{
    return v / 100 * pct + v % 100 * pct / 100;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static uint32_t min32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

int sched_renewal_window(const struct host_record *rec, int64_t *start, int64_t *end)
{
    if (rec->not_before <= 0 || rec->not_after <= 0)
        return CF_ENOTFOUND;
    if (rec->not_after <= rec->not_before)
        return -EINVAL;
    /*
     * RFC 9773 §4.2: a window whose end does not follow its start is invalid
     * and treated as no answer. One that ended before this certificate
     * existed belongs to an earlier certificate.
     */
    if (rec->ari_start > 0 && rec->ari_end > rec->ari_start && rec->ari_end > rec->not_before) {
        *start = rec->ari_start;
        *end = rec->ari_end;
        return 0;
    }
    int64_t life = rec->not_after - rec->not_before;
    *start = rec->not_before + percent_of(life, SCHED_RENEW_START_PCT);
    *end = rec->not_before + percent_of(life, SCHED_RENEW_END_PCT);
    return 0;
}

struct sched_leveler *sched_leveler_new(int64_t origin, int64_t horizon_s)
{
    if (horizon_s <= 0 || horizon_s > SCHED_LEVELER_MAX_HORIZON)
        return NULL;
    int64_t o = floor_div(origin, SCHED_LEVELER_SLOT) * SCHED_LEVELER_SLOT;
    /* The hour holding origin + horizon_s - 1 is the last one. */
    size_t nslots = (size_t)((origin - o + horizon_s - 1) / SCHED_LEVELER_SLOT + 1);
    if (o > INT64_MAX - (int64_t)nslots * SCHED_LEVELER_SLOT)
        return NULL;

    struct sched_leveler *l = xcalloc(1, sizeof(*l));
    l->origin = o;
    l->nslots = nslots;
    l->end = o + (int64_t)nslots * SCHED_LEVELER_SLOT;
    l->size = 1;
    while (l->size < nslots)
        l->size *= 2;
    l->tree = xcalloc(2 * l->size, sizeof(*l->tree));
    for (size_t i = nslots; i < l->size; i++)
        l->tree[l->size + i] = UINT32_MAX;
    for (size_t n = l->size - 1; n >= 1; n--)
        l->tree[n] = min32(l->tree[2 * n], l->tree[2 * n + 1]);
    return l;
}

void sched_leveler_free(struct sched_leveler *l)
{
    if (l == NULL)
        return;
    free(l->tree);
    free(l);
}

/* slot_of returns the hour holding t, or -1 outside the horizon. */
static int64_t slot_of(const struct sched_leveler *l, int64_t t)
{
    /* Compare before subtracting: t may be anything, even INT64_MIN. */
    if (t < l->origin || t >= l->end)
        return -1;
    return (t - l->origin) / SCHED_LEVELER_SLOT;
}

static int64_t slot_start(const struct sched_leveler *l, int64_t slot)
{
    return l->origin + slot * SCHED_LEVELER_SLOT;
}

static void set_leaf(struct sched_leveler *l, size_t slot, uint32_t v)
{
    size_t n = l->size + slot;
    l->tree[n] = v;
    for (n /= 2; n >= 1; n /= 2)
        l->tree[n] = min32(l->tree[2 * n], l->tree[2 * n + 1]);
}

void sched_leveler_add(struct sched_leveler *l, int64_t t)
{
    int64_t s = slot_of(l, t);
    if (s < 0)
        return;
    uint32_t v = l->tree[l->size + (size_t)s];
    if (v < LOAD_MAX)
        set_leaf(l, (size_t)s, v + 1);
}

void sched_leveler_remove(struct sched_leveler *l, int64_t t)
{
    int64_t s = slot_of(l, t);
    if (s < 0)
        return;
    uint32_t v = l->tree[l->size + (size_t)s];
    if (v > 0)
        set_leaf(l, (size_t)s, v - 1);
}

uint32_t sched_leveler_load(const struct sched_leveler *l, int64_t t)
{
    int64_t s = slot_of(l, t);
    return s < 0 ? 0 : l->tree[l->size + (size_t)s];
}

/* range_min returns the smallest count of slots [a, b), a < b. */
static uint32_t range_min(const struct sched_leveler *l, size_t a, size_t b)
{
    uint32_t m = UINT32_MAX;
    for (a += l->size, b += l->size; a < b; a /= 2, b /= 2) {
        if (a & 1)
            m = min32(m, l->tree[a++]);
        if (b & 1)
            m = min32(m, l->tree[--b]);
    }
    return m;
}

/*
 * first_at_most returns the first slot of [a, b) whose count is <= m, or -1,
 * searching node (which covers slots [nl, nr)). Subtrees whose minimum is
 * above m are skipped whole, so with m the range's minimum the descent
 * visits O(log size) nodes.
 */
static int64_t first_at_most(const struct sched_leveler *l, size_t node, size_t nl, size_t nr,
                             size_t a, size_t b, uint32_t m)
{
    if (nr <= a || b <= nl || l->tree[node] > m)
        return -1;
    if (nr - nl == 1)
        return (int64_t)nl;
    size_t mid = nl + (nr - nl) / 2;
    int64_t r = first_at_most(l, 2 * node, nl, mid, a, b, m);
    if (r < 0)
        r = first_at_most(l, 2 * node + 1, mid, nr, a, b, m);
    return r;
}

/* jitter_point returns start + sched_jitter(name, end - start), end > start. */
static int64_t jitter_point(const char *name, int64_t start, int64_t end)
{
    /* Unsigned, so that any two int64 times have a width. */
    uint64_t span = (uint64_t)end - (uint64_t)start;
    if (span > (uint64_t)INT64_MAX)
        span = (uint64_t)INT64_MAX;
    return start + sched_jitter(name, (int64_t)span);
}

int64_t sched_leveler_place(struct sched_leveler *l, const char *name, int64_t start, int64_t end)
{
    if (end <= start)
        return start;
    int64_t cs = max64(start, l->origin);
    int64_t ce = min64(end, l->end);
    if (ce <= cs)
        return jitter_point(name, start, end);

    int64_t p = jitter_point(name, cs, ce);
    size_t a = (size_t)slot_of(l, cs);
    size_t b = (size_t)slot_of(l, ce - 1) + 1;
    size_t s0 = (size_t)slot_of(l, p);

    /* The least-loaded slot, searching cyclically from the jitter point's. */
    uint32_t m_hi = range_min(l, s0, b);
    uint32_t m_lo = s0 > a ? range_min(l, a, s0) : UINT32_MAX;
    int64_t s;
    if (m_hi <= m_lo)
        s = first_at_most(l, 1, 0, l->size, s0, b, m_hi);
    else
        s = first_at_most(l, 1, 0, l->size, a, s0, m_lo);

    /*
     * s is in [a, b) (the range's minimum is there to be found), so its hour
     * meets the window and hi > lo; the checks say so for the analyzer.
     */
    int64_t t = p;
    if (s >= 0 && (size_t)s != s0) {
        int64_t off = (p - l->origin) % SCHED_LEVELER_SLOT;
        int64_t lo = max64(cs, slot_start(l, s));
        int64_t hi = min64(ce, slot_start(l, s) + SCHED_LEVELER_SLOT);
        t = slot_start(l, s) + off;
        if ((t < lo || t >= hi) && hi > lo)
            t = lo + off % (hi - lo);
    }
    sched_leveler_add(l, t);
    return t;
}

int sched_renew_at(struct sched_leveler *l, int64_t *out, const struct host_record *rec,
                   int64_t now)
{
    int64_t start, end;
    int err = sched_renewal_window(rec, &start, &end);
    if (err < 0)
        return err;

    if (rec->renew_at != 0 && rec->renew_at >= start && rec->renew_at < end) {
        *out = rec->renew_at;
        return 0;
    }
    if (l != NULL && rec->renew_at != 0)
        sched_leveler_remove(l, rec->renew_at);

    int64_t t;
    start = max64(start, now);
    if (end <= start) {
        /* RFC 9773 §4.2: a selected time in the past means renewing now. */
        t = now;
        if (l != NULL)
            sched_leveler_add(l, t);
    } else if (l == NULL || end - start < SCHED_LEVELER_SLOT) {
        /* Less than an hour gives the leveler nothing to choose from. */
        t = jitter_point(rec->name, start, end);
        if (l != NULL)
            sched_leveler_add(l, t);
    } else {
        t = sched_leveler_place(l, rec->name, start, end);
    }
    *out = t;
    return 0;
}
