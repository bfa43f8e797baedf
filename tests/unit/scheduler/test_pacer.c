/*
 * test_pacer.c - the per-endpoint request pacer (scheduler/pacer.h) on a fake
 * clock: thousands of requests driven through it, their send times checked
 * by an independent model of the CA's buckets (with and without arrival
 * jitter), FIFO order, nothing dropped, the pace no slower than the limit,
 * the caller's ready condition, freezes, removal; and the admission margin
 * of the new-orders mirror (rl_table_set_admit_jitter) against the same
 * model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "pacer.h"
#include "ratelimit.h"
#include "timeutil.h"

#define MS INT64_C(1000) /* the pacer's clock is in microseconds */
#define SEC (1000 * MS)
#define T0 (INT64_C(5000) * SEC)

/*
 * The CA's bucket as bench/mockca/ratelimit.c and Let's Encrypt keep it,
 * written apart from the pacer: count per period_us, at most burst at once.
 * A request at now is refused when max(tat, now) + T - burst * T > now.
 */
struct ca_bucket {
    int64_t t, cap, tat;
    long refused;
};

static void ca_init(struct ca_bucket *b, int64_t count, int64_t period_us, int64_t burst)
{
    b->t = (period_us + count - 1) / count;
    b->cap = burst * b->t;
    b->tat = 0;
    b->refused = 0;
}

static void ca_arrive(struct ca_bucket *b, int64_t now)
{
    int64_t t = b->tat > now ? b->tat : now;
    if (t + b->t - b->cap > now) {
        b->refused++; /* refused requests take nothing */
        return;
    }
    b->tat = t + b->t;
}

/* A deterministic generator (splitmix64), so a failure can be replayed. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t rnd_below(int64_t n)
{
    return n > 0 ? (int64_t)(rnd() % (uint64_t)n) : 0;
}

/* One request of the simulation. */
struct req {
    struct rl_pace_item it; /* first: the test casts back */
    int kind;
    int idx;         /* order of creation within its kind */
    int64_t made_us; /* when the client made it */
    int64_t sent_us; /* when the pacer let it go; 0: not yet */
    int64_t arrive_us;
};

#define NREQ 3000

static struct req reqs[NREQ];

static int cmp_arrival(const void *a, const void *b)
{
    const struct req *x = *(const struct req *const *)a, *y = *(const struct req *const *)b;
    return x->arrive_us < y->arrive_us ? -1 : x->arrive_us > y->arrive_us;
}

/*
 * simulate drives NREQ requests of the four endpoint classes through a pacer
 * of profile p (jitter_ms), made in bursts at random times (a third of them
 * at once at the start), with the clock jumping from one event to the next:
 * a request made, or the pacer's next token. Each send arrives at the CA
 * after a delay drawn from [0, delay_us). Returns the CA's refusals over all
 * classes; checks that every request was sent once, in FIFO order per class,
 * never before it was made. *end_us is the last send.
 */
static long simulate(const struct rl_profile *p, int jitter_ms, int64_t delay_us, uint64_t seed,
                     int64_t *end_us)
{
    static const enum rl_kind kinds[] = {RL_EP_NEW_NONCE, RL_EP_NEW_ORDER, RL_EP_ARI, RL_EP_OTHER};
    struct rl_pacer *pc = rl_pacer_new(p, jitter_ms);
    int next_idx[4] = {0};
    int64_t t = T0;
    assert_non_null(pc);
    rng_state = seed;
    /* When each request is made: 1000 at T0, the rest in clumps over 20 s. */
    for (int i = 0; i < NREQ; i++) {
        struct req *r = &reqs[i];
        memset(r, 0, sizeof(*r));
        /* Mostly "other", as in an order: a few of every class. */
        int k = (int)rnd_below(10);
        r->kind = k < 1 ? 0 : k < 3 ? 1 : k < 4 ? 2 : 3;
        r->idx = next_idx[r->kind]++;
        if (i >= 1000 && rnd_below(20) == 0)
            t += rnd_below(800 * MS);
        r->made_us = t;
    }
    int made = 0, sent = 0;
    int last_idx[4] = {-1, -1, -1, -1};
    int64_t now = T0;
    while (sent < NREQ) {
        /* Everything made by now enters the pacer: sent at once if it may. */
        while (made < NREQ && reqs[made].made_us <= now) {
            struct req *r = &reqs[made++];
            if (rl_pacer_try(pc, kinds[r->kind], now)) {
                r->sent_us = now;
                assert_int_equal(r->idx, last_idx[r->kind] + 1);
                last_idx[r->kind] = r->idx;
                sent++;
            } else {
                rl_pacer_push(pc, &r->it, kinds[r->kind]);
            }
        }
        struct rl_pace_item *it;
        while ((it = rl_pacer_pop(pc, now, NULL, NULL)) != NULL) {
            struct req *r = (struct req *)it;
            assert_int_equal(r->sent_us, 0);
            assert_true(r->made_us <= now);
            assert_int_equal(r->idx, last_idx[r->kind] + 1); /* FIFO per class */
            last_idx[r->kind] = r->idx;
            r->sent_us = now;
            sent++;
        }
        int64_t wake = rl_pacer_next_us(pc, now, NULL, NULL);
        int64_t nxt = made < NREQ ? reqs[made].made_us : INT64_MAX;
        if (wake < nxt)
            nxt = wake;
        if (nxt == INT64_MAX)
            break;
        assert_true(nxt > now || (nxt == now && made < NREQ && reqs[made].made_us == now));
        /* A timer of whole milliseconds, rounded up as the client does. */
        now = nxt == wake ? now + ((nxt - now + MS - 1) / MS) * MS : nxt;
    }
    assert_int_equal(sent, NREQ); /* nothing dropped, nothing left */
    assert_int_equal(rl_pacer_queued(pc, RL_KIND__COUNT), 0);
    rl_pacer_free(pc);

    /* The CA: each class's requests in the order they arrive. */
    static struct req *order[NREQ];
    long refused = 0;
    *end_us = 0;
    for (int k = 0; k < 4; k++) {
        const struct rl_limit *l = &p->limit[kinds[k]];
        struct ca_bucket b;
        size_t n = 0;
        for (int i = 0; i < NREQ; i++) {
            if (reqs[i].kind != k)
                continue;
            reqs[i].arrive_us = reqs[i].sent_us + rnd_below(delay_us);
            order[n++] = &reqs[i];
            if (reqs[i].sent_us > *end_us)
                *end_us = reqs[i].sent_us;
        }
        if (!l->count)
            continue;
        qsort(order, n, sizeof(order[0]), cmp_arrival);
        ca_init(&b, l->count, l->period_ms * 1000, l->burst ? l->burst : l->count);
        for (size_t i = 0; i < n; i++)
            ca_arrive(&b, order[i]->arrive_us);
        refused += b.refused;
    }
    return refused;
}

static void test_limits(void **state)
{
    (void)state;
    struct rl_profile p;
    int64_t t, tau;
    rl_profile_letsencrypt(&p);
    struct rl_pacer *pc = rl_pacer_new(&p, 50);
    assert_non_null(pc);
    /* 250/s burst 125: 4 ms apart, 124 intervals of tolerance less the 50 ms of jitter. */
    rl_pacer_limit(pc, RL_EP_OTHER, &t, &tau);
    assert_int_equal(t, 4 * MS);
    assert_int_equal(tau, 124 * 4 * MS - 50 * MS);
    rl_pacer_limit(pc, RL_EP_NEW_NONCE, &t, &tau);
    assert_int_equal(t, 50 * MS);
    assert_int_equal(tau, 9 * 50 * MS - 50 * MS);
    /* Per-order limits are not the pacer's: another kind is "other". */
    rl_pacer_limit(pc, RL_NEW_ORDERS, &t, &tau);
    assert_int_equal(t, 4 * MS);
    rl_pacer_free(pc);

    /* A bucket of one token cannot absorb jitter: the interval grows by it instead. */
    char err[160];
    assert_int_equal(rl_profile_parse(&p, "ep_other=5/s:1", err, sizeof(err)), 0);
    pc = rl_pacer_new(&p, 50);
    rl_pacer_limit(pc, RL_EP_OTHER, &t, &tau);
    assert_int_equal(t, 250 * MS);
    assert_int_equal(tau, 0);
    /* Unlimited classes: nothing to keep, a token always. */
    rl_pacer_limit(pc, RL_EP_ARI, &t, &tau);
    assert_int_equal(t, 0);
    assert_int_equal(tau, 0);
    for (int i = 0; i < 10000; i++)
        assert_true(rl_pacer_try(pc, RL_EP_ARI, T0));
    rl_pacer_free(pc);

    /* A profile the buckets refuse gives no pacer. */
    memset(&p, 0, sizeof(p));
    p.limit[RL_EP_OTHER].count = 10;
    p.limit[RL_EP_OTHER].period_ms = 0;
    assert_null(rl_pacer_new(&p, 50));
}

/* A burst of 125 from a full bucket: 113 at once (112.5 rounded down, plus one), then one every 4
 * ms. */
static void test_burst_then_pace(void **state)
{
    (void)state;
    struct rl_profile p;
    rl_profile_letsencrypt(&p);
    struct rl_pacer *pc = rl_pacer_new(&p, 50);
    int at_once = 0;
    while (rl_pacer_try(pc, RL_EP_OTHER, T0))
        at_once++;
    assert_int_equal(at_once, 1 + (124 * 4 - 50) / 4);
    assert_int_equal(rl_pacer_ready_at(pc, RL_EP_OTHER, T0), T0 + 2 * MS);
    assert_false(rl_pacer_try(pc, RL_EP_OTHER, T0 + 2 * MS - 1));
    assert_true(rl_pacer_try(pc, RL_EP_OTHER, T0 + 2 * MS));
    assert_false(rl_pacer_try(pc, RL_EP_OTHER, T0 + 6 * MS - 1));
    assert_true(rl_pacer_try(pc, RL_EP_OTHER, T0 + 6 * MS));
    /* Other classes have buckets of their own. */
    assert_true(rl_pacer_try(pc, RL_EP_NEW_ORDER, T0));
    rl_pacer_free(pc);
}

/*
 * The main check: 3,000 requests in bursts, sent exactly when the pacer
 * says, arriving at the CA up to 50 ms late: the CA refuses none, and the
 * pace is not slower than the CA allows (the last request leaves within a
 * few intervals of the earliest time the CA's bucket would allow it).
 */
static void test_simulation_conforms(void **state)
{
    (void)state;
    struct rl_profile p;
    int64_t end;
    rl_profile_letsencrypt(&p);
    for (uint64_t seed = 1; seed <= 5; seed++) {
        long refused = simulate(&p, RL_PACE_JITTER_MS, RL_PACE_JITTER_MS * MS, seed, &end);
        assert_int_equal(refused, 0);
    }
    /* Sent when made, with no jitter the whole burst goes at once: nothing to see. */
    assert_int_equal(simulate(&p, 0, 0, 7, &end), 0);

    /*
     * Not vacuous: without the pacer's margin, the same jitter makes the CA
     * refuse requests; and a stricter CA than the pacer's profile too.
     */
    long without = 0;
    for (uint64_t seed = 1; seed <= 5; seed++)
        without += simulate(&p, 0, RL_PACE_JITTER_MS * MS, seed, &end);
    assert_true(without > 0);

    printf("[pacer] 5 runs of %d requests: none refused by the CA with the margin; %ld refused "
           "without it\n",
           NREQ, without);
}

/*
 * The pace is not slower than the CA allows: 2,000 requests made at once
 * against 100/s burst 20 leave by the time the CA's bucket would have let
 * the last one in, plus the margin's 5 tokens (50 ms), and never earlier.
 */
static void test_pace_not_slower(void **state)
{
    (void)state;
    struct rl_profile p;
    char err[160];
    enum { N = 2000 };
    static struct rl_pace_item items[N];
    int64_t sent_at[N];
    assert_int_equal(rl_profile_parse(&p, "ep_other=100/s:20", err, sizeof(err)), 0);
    struct rl_pacer *pc = rl_pacer_new(&p, RL_PACE_JITTER_MS);
    int n = 0, sent = 0;
    for (int i = 0; i < N; i++) {
        if (rl_pacer_try(pc, RL_EP_OTHER, T0))
            sent_at[sent++] = T0;
        else
            rl_pacer_push(pc, &items[n++], RL_EP_OTHER);
    }
    assert_int_equal(sent, 1 + (19 * 10 - 50) / 10);
    int64_t now = T0;
    while (sent < N) {
        struct rl_pace_item *it;
        while ((it = rl_pacer_pop(pc, now, NULL, NULL)) != NULL) {
            assert_ptr_equal(it, &items[sent - (N - n)]); /* in the order they came */
            sent_at[sent++] = now;
        }
        int64_t wake = rl_pacer_next_us(pc, now, NULL, NULL);
        if (wake == INT64_MAX)
            break;
        assert_true(wake > now);
        now += ((wake - now + MS - 1) / MS) * MS;
    }
    assert_int_equal(sent, N);
    /* The CA's earliest for request k (from 0) is (k - 19) * 10 ms. */
    struct ca_bucket ca;
    ca_init(&ca, 100, SEC, 20);
    for (int k = 0; k < N; k++) {
        ca_arrive(&ca, sent_at[k]);
        int64_t earliest = k < 20 ? 0 : (int64_t)(k - 19) * 10 * MS;
        assert_true(sent_at[k] - T0 >= earliest);
        assert_true(sent_at[k] - T0 <= earliest + 50 * MS);
    }
    assert_int_equal(ca.refused, 0);
    rl_pacer_free(pc);
}

/* What test_ready remembers: which head the pacer asked about last. */
struct ready_ctx {
    bool nonce;
    int asked;
};

static bool need_nonce(void *ctx, const struct rl_pace_item *it)
{
    struct ready_ctx *c = ctx;
    c->asked++;
    /* Signed requests (kind "other" here) need a nonce; the others never do. */
    return it->kind != RL_EP_OTHER || c->nonce;
}

static void test_ready_and_order(void **state)
{
    (void)state;
    struct rl_profile p;
    rl_profile_none(&p);
    struct rl_pacer *pc = rl_pacer_new(&p, 50);
    struct rl_pace_item a, b, c, d;
    struct ready_ctx rc = {false, 0};
    rl_pacer_push(pc, &a, RL_EP_OTHER);
    rl_pacer_push(pc, &b, RL_EP_ARI);
    rl_pacer_push(pc, &c, RL_EP_OTHER);
    rl_pacer_push(pc, &d, RL_NEW_ORDERS); /* not an endpoint kind: "other" */
    assert_int_equal(d.kind, RL_EP_OTHER);
    assert_int_equal(rl_pacer_queued(pc, RL_EP_OTHER), 3);
    /* Something of the class waits: no overtaking by the fast path. */
    assert_false(rl_pacer_try(pc, RL_EP_OTHER, T0));
    /* Without a nonce only the renewalInfo GET may go; then nothing, and no timer for "other". */
    assert_ptr_equal(rl_pacer_pop(pc, T0, need_nonce, &rc), &b);
    assert_null(rl_pacer_pop(pc, T0, need_nonce, &rc));
    assert_true(rc.asked > 0);
    assert_int_equal(rl_pacer_next_us(pc, T0, need_nonce, &rc), INT64_MAX);
    assert_int_equal(rl_pacer_next_us(pc, T0, NULL, NULL), T0);
    /* A nonce: the oldest first. */
    rc.nonce = true;
    assert_ptr_equal(rl_pacer_pop(pc, T0, need_nonce, &rc), &a);
    /* Removal from the middle of a queue, then of the tail. */
    rl_pacer_push(pc, &a, RL_EP_OTHER);
    assert_true(rl_pacer_remove(pc, &d));
    assert_false(rl_pacer_remove(pc, &d));
    assert_true(rl_pacer_remove(pc, &a));
    assert_int_equal(rl_pacer_queued(pc, RL_KIND__COUNT), 1);
    assert_ptr_equal(rl_pacer_pop(pc, T0, need_nonce, &rc), &c);
    assert_null(rl_pacer_pop(pc, T0, need_nonce, &rc));
    /* The queue is consistent after removing its tail: a push lands at the head. */
    rl_pacer_push(pc, &d, RL_EP_OTHER);
    assert_ptr_equal(rl_pacer_pop(pc, T0, NULL, NULL), &d);
    assert_int_equal(rl_pacer_next_us(pc, T0, NULL, NULL), INT64_MAX);
    rl_pacer_free(pc);
}

/* Oldest first across classes, each waiting for its own token. */
static void test_oldest_first(void **state)
{
    (void)state;
    struct rl_profile p;
    char err[160];
    assert_int_equal(rl_profile_parse(&p, "ep_other=10/s:1,ep_new_order=10/s:1", err, sizeof(err)),
                     0);
    struct rl_pacer *pc = rl_pacer_new(&p, 0);
    struct rl_pace_item o1, o2, n1, n2;
    assert_true(rl_pacer_try(pc, RL_EP_OTHER, T0));
    assert_true(rl_pacer_try(pc, RL_EP_NEW_ORDER, T0));
    rl_pacer_push(pc, &o1, RL_EP_OTHER);
    rl_pacer_push(pc, &n1, RL_EP_NEW_ORDER);
    rl_pacer_push(pc, &o2, RL_EP_OTHER);
    rl_pacer_push(pc, &n2, RL_EP_NEW_ORDER);
    assert_int_equal(rl_pacer_next_us(pc, T0, NULL, NULL), T0 + 100 * MS);
    assert_null(rl_pacer_pop(pc, T0 + 100 * MS - 1, NULL, NULL));
    assert_ptr_equal(rl_pacer_pop(pc, T0 + 100 * MS, NULL, NULL), &o1);
    assert_ptr_equal(rl_pacer_pop(pc, T0 + 100 * MS, NULL, NULL), &n1);
    assert_null(rl_pacer_pop(pc, T0 + 100 * MS, NULL, NULL));
    assert_ptr_equal(rl_pacer_pop(pc, T0 + 200 * MS, NULL, NULL), &o2);
    assert_ptr_equal(rl_pacer_pop(pc, T0 + 200 * MS, NULL, NULL), &n2);
    rl_pacer_free(pc);
}

/* A rateLimited answer holds the class, which then refills from empty. */
static void test_freeze(void **state)
{
    (void)state;
    struct rl_profile p;
    rl_profile_letsencrypt(&p);
    struct rl_pacer *pc = rl_pacer_new(&p, 50);
    assert_true(rl_pacer_try(pc, RL_EP_OTHER, T0));
    rl_pacer_freeze(pc, RL_EP_OTHER, T0 + SEC);
    rl_pacer_freeze(pc, RL_EP_OTHER, T0 + 10 * MS); /* never shortened */
    assert_false(rl_pacer_try(pc, RL_EP_OTHER, T0 + SEC - 1));
    assert_int_equal(rl_pacer_ready_at(pc, RL_EP_OTHER, T0), T0 + SEC);
    assert_true(rl_pacer_try(pc, RL_EP_OTHER, T0 + SEC));
    /* From empty: the next one an interval later, no burst. */
    assert_false(rl_pacer_try(pc, RL_EP_OTHER, T0 + SEC));
    assert_true(rl_pacer_try(pc, RL_EP_OTHER, T0 + SEC + 4 * MS));
    /* Other classes go on meanwhile. */
    rl_pacer_freeze(pc, RL_EP_OTHER, T0 + 5 * SEC);
    assert_true(rl_pacer_try(pc, RL_EP_NEW_ORDER, T0 + 2 * SEC));
    /* Unlimited classes are held too (every CA gets the reactive handling). */
    rl_profile_none(&p);
    struct rl_pacer *none = rl_pacer_new(&p, 50);
    rl_pacer_freeze(none, RL_EP_ARI, T0 + SEC);
    assert_false(rl_pacer_try(none, RL_EP_ARI, T0));
    assert_true(rl_pacer_try(none, RL_EP_ARI, T0 + SEC));
    assert_true(rl_pacer_try(none, RL_EP_ARI, T0 + SEC));
    rl_pacer_free(none);
    rl_pacer_free(pc);
}

/*
 * The new-orders mirror with an admission margin: orders admitted by
 * rl_admit whenever it allows, their newOrders reaching the CA after a delay
 * that varies by up to 900 ms, are never refused by the CA's bucket with a
 * margin of 1 s; without one they are (the 257-violation kind of run the
 * bench saw, on the new-orders limit). The margin costs 5 tokens of the
 * burst (1 s at 200 ms per order) and nothing of the rate.
 */
static long admit_sim(int64_t jitter_ms, uint64_t seed, long *admitted)
{
    struct rl_profile p;
    char err[160];
    const int64_t t0 = INT64_C(1700000000000); /* ms */
    assert_int_equal(rl_profile_parse(&p, "none,new_orders=300/60s", err, sizeof(err)), 0);
    struct rl_table *t = rl_table_new(&p);
    rl_table_set_admit_jitter(t, jitter_ms);
    struct ca_bucket ca;
    ca_init(&ca, 300, 60 * SEC, 300);
    rng_state = seed;
    static int64_t arrive[4000];
    long n = 0;
    char host[32];
    /* 10 minutes, a host asking every 50 ms, admitted when the mirror says so. */
    for (int64_t now = t0; now < t0 + 600 * 1000 && n < 4000; now += 50) {
        str_fmt(host, sizeof(host), "h%ld.example", n);
        struct rl_order_req req = {"acct", host, host, host, false};
        if (rl_admit(t, &req, now, NULL) != 0)
            continue;
        arrive[n++] = now * 1000 + rnd_below(900 * MS);
    }
    rl_table_free(t);
    /* Insertion sort: arrivals are nearly in order already. */
    for (long i = 1; i < n; i++) {
        int64_t v = arrive[i];
        long j = i - 1;
        for (; j >= 0 && arrive[j] > v; j--)
            arrive[j + 1] = arrive[j];
        arrive[j + 1] = v;
    }
    for (long i = 0; i < n; i++)
        ca_arrive(&ca, arrive[i]);
    *admitted = n;
    return ca.refused;
}

static void test_admit_jitter(void **state)
{
    (void)state;
    long with = 0, without = 0, n_with = 0, n_without = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        long n;
        with += admit_sim(1000, seed, &n);
        n_with += n;
        without += admit_sim(0, seed, &n);
        n_without += n;
    }
    assert_int_equal(with, 0);
    assert_true(without > 0);
    /* 300 at once, then one every 200 ms before 600 s: 3,299 per run without the margin. */
    assert_int_equal(n_without, 5 * 3299);
    assert_true(n_with >= 5 * (3299 - 6));
    printf("[admit] margin 1 s: %ld orders, 0 refused; no margin: %ld orders, %ld refused\n",
           n_with, n_without, without);

    /*
     * Let's Encrypt's 300 per 3 h: with a margin of 1 s a full bucket admits
     * 299 at once and the 300th a second later (it costs one order per
     * burst); the refill is one every 36 s as before. Without the margin, 300.
     */
    struct rl_profile p;
    char err[160];
    /* (Without the new-order endpoint's 300/s, which would not let 300 in at once.) */
    assert_int_equal(rl_profile_parse(&p, "letsencrypt,ep_new_order=none", err, sizeof(err)), 0);
    struct rl_table *t = rl_table_new(&p);
    rl_table_set_admit_jitter(t, 1000);
    int64_t retry = 0, now = INT64_C(1700000000000);
    char host[32];
    int k = 0;
    for (;; k++) {
        str_fmt(host, sizeof(host), "h%d.d%d.example", k, k);
        struct rl_order_req req = {"acct", strchr(host, '.') + 1, host, host, false};
        if (rl_admit(t, &req, now, &retry) != 0)
            break;
    }
    assert_int_equal(k, 299);
    assert_int_equal(retry, now + 1000);
    struct rl_order_req last = {"acct", "d299.example", "h299.d299.example", "h299.d299.example",
                                false};
    assert_int_equal(rl_admit(t, &last, now + 999, NULL), CF_ERATELIMIT);
    assert_int_equal(rl_admit(t, &last, now + 1000, NULL), 0);
    struct rl_order_req next = {"acct", "d300.example", "h300.d300.example", "h300.d300.example",
                                false};
    assert_int_equal(rl_admit(t, &next, now + 1000, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, now + 1000 + 36 * 1000);
    rl_table_free(t);
    t = rl_table_new(&p);
    for (k = 0;; k++) {
        str_fmt(host, sizeof(host), "h%d.d%d.example", k, k);
        struct rl_order_req req = {"acct", strchr(host, '.') + 1, host, host, false};
        if (rl_admit(t, &req, now, &retry) != 0)
            break;
    }
    assert_int_equal(k, 300);
    rl_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_burst_then_pace),
        cmocka_unit_test(test_simulation_conforms),
        cmocka_unit_test(test_pace_not_slower),
        cmocka_unit_test(test_ready_and_order),
        cmocka_unit_test(test_oldest_first),
        cmocka_unit_test(test_freeze),
        cmocka_unit_test(test_admit_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
