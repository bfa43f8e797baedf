/*
 * test_ratelimit.c - GCRA buckets, admission, freeze, ARI exemption,
 * profiles, persistence, gc, and a 180-day fleet simulation checked by an
 * independent model of the CA.
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

#include "backoff.h"
#include "buf.h"
#include "err.h"
#include "ratelimit.h"

#define SEC INT64_C(1000)
#define MINUTE (60 * SEC)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

/* An arbitrary start: 2023-11-14T22:13:20Z. */
#define T0 INT64_C(1700000000000)

#define ACCT "https://acme-v02.api.letsencrypt.org/acme/acct/1"

static struct rl_table *table_for(const struct rl_profile *p)
{
    struct rl_table *t = rl_table_new(p);
    assert_non_null(t);
    return t;
}

static struct rl_table *table_le(void)
{
    struct rl_profile p;
    rl_profile_letsencrypt(&p);
    return table_for(&p);
}

static struct rl_order_req order(const char *regdom, const char *host, bool ari)
{
    return (struct rl_order_req){
        .account = ACCT, .regdom = regdom, .names_key = host, .host = host, .ari_renewal = ari};
}

static void test_gcra_burst_and_refill(void **state)
{
    (void)state;
    struct rl_table *t = table_le();
    int64_t retry = 0;
    const int64_t T = 36 * SEC; /* 3 h / 300 */

    /* A full bucket: a burst of 300, then one every 36 s. */
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0), 300);
    for (int i = 0; i < 300; i++)
        assert_int_equal(rl_take(t, RL_NEW_ORDERS, ACCT, T0, &retry), 0);
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0), 0);
    assert_int_equal(rl_take(t, RL_NEW_ORDERS, ACCT, T0, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + T);
    assert_int_equal(rl_retry_at(t, RL_NEW_ORDERS, ACCT, T0), T0 + T);
    assert_int_equal(rl_take(t, RL_NEW_ORDERS, ACCT, T0 + T - 1, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + T);
    assert_int_equal(rl_take(t, RL_NEW_ORDERS, ACCT, T0 + T, &retry), 0);
    assert_int_equal(rl_take(t, RL_NEW_ORDERS, ACCT, T0 + T, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + 2 * T);
    /* Refill: 9 tokens nine intervals later, full again after 301 intervals. */
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0 + 10 * T), 9);
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0 + 10 * T - 1), 8);
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0 + 300 * T), 299);
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0 + 301 * T), 300);
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0 + 400 * T), 300);

    /* Other accounts have their own bucket. */
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, "acct/2", T0), 300);

    /* New-order endpoint: 300/s with a burst of 200; T = 3333.3 us, kept as 3334. */
    for (int i = 0; i < 200; i++)
        assert_int_equal(rl_take(t, RL_EP_NEW_ORDER, "", T0, &retry), 0);
    assert_int_equal(rl_take(t, RL_EP_NEW_ORDER, "", T0, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + 4);
    /* New-nonce: 20/s with a burst of 10; T = 50 ms. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(rl_take(t, RL_EP_NEW_NONCE, "", T0, &retry), 0);
    assert_int_equal(rl_take(t, RL_EP_NEW_NONCE, "", T0, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + 50);
    assert_int_equal(rl_take(t, RL_EP_NEW_NONCE, "", T0 + 50, &retry), 0);
    assert_int_equal(rl_available(t, RL_EP_NEW_NONCE, "", T0 + 50 + 500), 10);

    /* Certificates per domain: 7 d / 50 = 201.6 min; duplicates: 7 d / 5 = 33.6 h. */
    for (int i = 0; i < 50; i++)
        assert_int_equal(rl_take(t, RL_CERTS_PER_DOMAIN, "example.com", T0, NULL), 0);
    assert_int_equal(rl_retry_at(t, RL_CERTS_PER_DOMAIN, "example.com", T0), T0 + 12096 * SEC);
    for (int i = 0; i < 5; i++)
        assert_int_equal(rl_take(t, RL_DUPLICATE_CERTS, "a.example.com", T0, NULL), 0);
    assert_int_equal(rl_retry_at(t, RL_DUPLICATE_CERTS, "a.example.com", T0), T0 + 120960 * SEC);

    /* Unlimited kinds always admit. */
    struct rl_profile none;
    rl_profile_none(&none);
    struct rl_table *u = table_for(&none);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(rl_take(u, RL_NEW_ORDERS, ACCT, T0, NULL), 0);
    assert_int_equal(rl_available(u, RL_NEW_ORDERS, ACCT, T0), UINT32_MAX);
    assert_int_equal(rl_table_count(u), 0);
    rl_table_free(u);
    rl_table_free(t);
    rl_table_free(NULL);
}

static void test_admit_all_or_nothing(void **state)
{
    (void)state;
    struct rl_table *t = table_le();
    int64_t retry = 0;
    char host[64];
    const int64_t H = RL_ISSUE_HOLD_MS, T = 12096 * SEC, Td = 120960 * SEC;

    /*
     * Certificates for example.com are taken as of T0 + H, when the CA may
     * spend them: from a full bucket of 50, 49 go at once and the 50th at
     * T0 + H.
     */
    for (int i = 0; i < 49; i++) {
        snprintf(host, sizeof(host), "h%d.example.com", i);
        struct rl_order_req r = order("example.com", host, false);
        assert_int_equal(rl_admit(t, &r, T0, &retry), 0);
    }
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0), 251);
    assert_int_equal(rl_available(t, RL_EP_NEW_ORDER, "", T0), 151);

    /* The 50th is refused now and takes nothing from the other buckets. */
    struct rl_order_req r50 = order("example.com", "h49.example.com", false);
    assert_int_equal(rl_admit(t, &r50, T0, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + H);
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0), 251);
    assert_int_equal(rl_available(t, RL_EP_NEW_ORDER, "", T0), 151);
    assert_int_equal(rl_available(t, RL_DUPLICATE_CERTS, "h49.example.com", T0), 5);
    /* Another registered domain is not affected. */
    struct rl_order_req other = order("example.net", "www.example.net", false);
    assert_int_equal(rl_admit(t, &other, T0, &retry), 0);

    /* Duplicates: four of the same set now, the fifth at T0 + H. */
    struct rl_order_req d = order("example.org", "www.example.org", false);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rl_admit(t, &d, T0, &retry), 0);
    uint32_t orders_before = rl_available(t, RL_NEW_ORDERS, ACCT, T0);
    uint32_t domain_before = rl_available(t, RL_CERTS_PER_DOMAIN, "example.org", T0);
    assert_int_equal(rl_admit(t, &d, T0, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + H);
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0), orders_before);
    assert_int_equal(rl_available(t, RL_CERTS_PER_DOMAIN, "example.org", T0), domain_before);

    /* Failed authorizations are required, not taken, by admission. */
    struct rl_order_req f = order("example.info", "f.example.info", false);
    assert_int_equal(rl_admit(t, &f, T0, &retry), 0);
    assert_int_equal(rl_available(t, RL_FAILED_AUTHZ, "f.example.info", T0), 5);
    for (int i = 0; i < 5; i++)
        rl_note_failed_authz(t, "f.example.info", T0 + i * MINUTE);
    assert_int_equal(rl_admit(t, &f, T0 + 5 * MINUTE, &retry), CF_ERATELIMIT);
    /* Five failures a minute apart: TAT = T0 + 60 min, so a token is back at T0 + 12 min. */
    assert_int_equal(retry, T0 + 12 * MINUTE);
    /* Another host's failures are its own. */
    rl_note_failed_authz(t, "g.example.info", T0);
    assert_int_equal(rl_available(t, RL_FAILED_AUTHZ, "f.example.info", T0 + 5 * MINUTE), 0);
    assert_int_equal(rl_available(t, RL_FAILED_AUTHZ, "g.example.info", T0 + 5 * MINUTE), 4);
    /* Failures beyond the limit put the bucket in debt, at most one burst deep. */
    for (int i = 0; i < 100; i++)
        rl_note_failed_authz(t, "www.example.org", T0);
    assert_int_equal(rl_retry_at(t, RL_FAILED_AUTHZ, "www.example.org", T0),
                     T0 + 2 * HOUR - 4 * 12 * MINUTE);

    /* Three buckets refuse (domain, duplicates, failures): the retry time is the latest. */
    struct rl_order_req three = order("example.com", "www.example.org", false);
    assert_int_equal(rl_admit(t, &three, T0 + 5 * MINUTE, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + 72 * MINUTE);

    /* At T0 + H the 50th certificate for example.com goes, the 51st waits a T. */
    assert_int_equal(rl_admit(t, &r50, T0 + H - 1, &retry), CF_ERATELIMIT);
    assert_int_equal(rl_admit(t, &r50, T0 + H, &retry), 0);
    struct rl_order_req r51 = order("example.com", "h50.example.com", false);
    assert_int_equal(rl_admit(t, &r51, T0 + H, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + H + T);
    assert_int_equal(rl_admit(t, &r51, T0 + H + T, &retry), 0);
    /* The fifth duplicate (its failures' debt is paid by now), then one every 33.6 h. */
    assert_int_equal(rl_admit(t, &d, T0 + H + T, &retry), 0);
    assert_int_equal(rl_admit(t, &d, T0 + H + T, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + H + Td);

    /* The new-order endpoint counts too: 200 at once, then 3.334 ms each. */
    struct rl_table *t2 = table_le();
    for (int i = 0; i < 200; i++) {
        snprintf(host, sizeof(host), "e%d.example.com", i);
        struct rl_order_req r = order(host, host, false);
        assert_int_equal(rl_admit(t2, &r, T0, &retry), 0);
    }
    struct rl_order_req r201 = order("x.example", "x.example", false);
    assert_int_equal(rl_admit(t2, &r201, T0, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + 4);
    assert_int_equal(rl_available(t2, RL_NEW_ORDERS, ACCT, T0), 100);
    assert_int_equal(rl_admit(t2, &r201, T0 + 4, &retry), 0);

    /* Bad requests. */
    struct rl_order_req bad = r201;
    bad.regdom = NULL;
    assert_int_equal(rl_admit(t2, &bad, T0, &retry), CF_EUSAGE);
    rl_table_free(t2);
    rl_table_free(t);
}

static void test_freeze(void **state)
{
    (void)state;
    struct rl_table *t = table_le();
    int64_t retry = 0;
    const int64_t until = T0 + 10 * MINUTE;

    rl_freeze(t, RL_NEW_ORDERS, ACCT, until);
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0), 0);
    assert_int_equal(rl_take(t, RL_NEW_ORDERS, ACCT, T0, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, until);
    struct rl_order_req r = order("example.com", "www.example.com", false);
    assert_int_equal(rl_admit(t, &r, until - 1, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, until);
    /* At until the CA has one token, then refills one every 36 s. */
    assert_int_equal(rl_admit(t, &r, until, &retry), 0);
    assert_int_equal(rl_take(t, RL_NEW_ORDERS, ACCT, until, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, until + 36 * SEC);
    /* A shorter freeze does not shorten it; a longer one extends it. */
    rl_freeze(t, RL_NEW_ORDERS, ACCT, T0 + MINUTE);
    assert_int_equal(rl_retry_at(t, RL_NEW_ORDERS, ACCT, T0), until + 36 * SEC);
    rl_freeze(t, RL_NEW_ORDERS, ACCT, T0 + DAY);
    assert_int_equal(rl_retry_at(t, RL_NEW_ORDERS, ACCT, T0), T0 + DAY);

    /* An unlimited kind still honours a freeze (every CA gets Retry-After). */
    struct rl_profile none;
    rl_profile_none(&none);
    struct rl_table *u = table_for(&none);
    rl_freeze(u, RL_EP_OTHER, "", T0 + 5 * SEC);
    assert_int_equal(rl_take(u, RL_EP_OTHER, "", T0, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + 5 * SEC);
    assert_int_equal(rl_available(u, RL_EP_OTHER, "", T0), 0);
    assert_int_equal(rl_take(u, RL_EP_OTHER, "", T0 + 5 * SEC, &retry), 0);
    assert_int_equal(rl_take(u, RL_EP_OTHER, "", T0 + 5 * SEC, &retry), 0);
    /* And an order whose bucket rl_order_key names. */
    char key[RL_KEY_MAX + 1];
    struct rl_order_req ur = order("example.com", "www.example.com", false);
    assert_int_equal(rl_order_key(key, sizeof(key), RL_CERTS_PER_DOMAIN, &ur), 0);
    assert_string_equal(key, "example.com");
    rl_freeze(u, RL_CERTS_PER_DOMAIN, key, T0 + HOUR);
    assert_int_equal(rl_admit(u, &ur, T0, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + HOUR);
    assert_int_equal(rl_admit(u, &ur, T0 + HOUR, &retry), 0);
    assert_int_equal(rl_order_key(key, sizeof(key), RL_FAILED_AUTHZ, &ur), 0);
    assert_string_equal(key, "www.example.com");
    assert_int_equal(rl_order_key(key, sizeof(key), RL_EP_NEW_NONCE, &ur), CF_EUSAGE);
    assert_int_equal(rl_order_key(key, 10, RL_NEW_ORDERS, &ur), CF_EUSAGE);
    rl_table_free(u);
    rl_table_free(t);
}

static void test_ari_exemption(void **state)
{
    (void)state;
    struct rl_table *t = table_le();
    int64_t retry = 0;

    /* Drain the account's new orders and example.com's certificates. */
    for (int i = 0; i < 300; i++)
        assert_int_equal(rl_take(t, RL_NEW_ORDERS, ACCT, T0, NULL), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(rl_take(t, RL_CERTS_PER_DOMAIN, "example.com", T0, NULL), 0);
    rl_freeze(t, RL_NEW_ORDERS, ACCT, T0 + DAY);

    struct rl_order_req plain = order("example.com", "www.example.com", false);
    struct rl_order_req ari = order("example.com", "www.example.com", true);
    assert_int_equal(rl_admit(t, &plain, T0, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + DAY);
    assert_int_equal(rl_admit(t, &ari, T0, &retry), 0);
    /* Exempt buckets are untouched by it... */
    assert_int_equal(rl_retry_at(t, RL_CERTS_PER_DOMAIN, "example.com", T0), T0 + 12096 * SEC);
    /* ...but duplicates still count: three more now, the fifth after the hold, then none. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(rl_admit(t, &ari, T0, &retry), 0);
    assert_int_equal(rl_admit(t, &ari, T0, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + RL_ISSUE_HOLD_MS);
    assert_int_equal(rl_admit(t, &ari, retry, &retry), 0);
    assert_int_equal(rl_admit(t, &ari, T0 + RL_ISSUE_HOLD_MS, &retry), CF_ERATELIMIT);
    assert_int_equal(retry, T0 + RL_ISSUE_HOLD_MS + 120960 * SEC);
    rl_table_free(t);
}

static void test_late_issuance(void **state)
{
    (void)state;
    struct rl_table *t = table_le();
    const int64_t T = 12096 * SEC, Td = 120960 * SEC;
    struct rl_order_req r = order("late.example", "www.late.example", false);

    /* Issued within the hold: nothing to do. */
    assert_int_equal(rl_admit(t, &r, T0, NULL), 0);
    assert_int_equal(rl_note_issued(t, &r, T0, T0 + 30 * MINUTE), 0);
    assert_int_equal(rl_retry_at(t, RL_CERTS_PER_DOMAIN, "late.example", T0 + 49 * T), T0 + 49 * T);
    rl_table_free(t);

    /*
     * Issued 3 h after admission, 2 h past the hold: the CA spent at
     * T0 + 3 h, so its buckets are full again at T0 + 3 h + T; the mirror's
     * must not be earlier.
     */
    t = table_le();
    assert_int_equal(rl_admit(t, &r, T0, NULL), 0);
    assert_int_equal(rl_note_issued(t, &r, T0, T0 + 3 * HOUR), 0);
    assert_int_equal(rl_available(t, RL_CERTS_PER_DOMAIN, "late.example", T0 + 3 * HOUR), 49);
    assert_int_equal(rl_available(t, RL_CERTS_PER_DOMAIN, "late.example", T0 + 3 * HOUR + T - 1),
                     49);
    assert_int_equal(rl_available(t, RL_CERTS_PER_DOMAIN, "late.example", T0 + 3 * HOUR + T), 50);
    assert_int_equal(
        rl_available(t, RL_DUPLICATE_CERTS, "www.late.example", T0 + 3 * HOUR + Td - 1), 4);
    assert_int_equal(rl_available(t, RL_DUPLICATE_CERTS, "www.late.example", T0 + 3 * HOUR + Td),
                     5);
    /* Even if gc dropped the buckets meanwhile. */
    rl_table_free(t);
    t = table_le();
    assert_int_equal(rl_admit(t, &r, T0, NULL), 0);
    assert_int_equal(rl_table_gc(t, T0 + 2 * DAY), 4);
    assert_int_equal(rl_note_issued(t, &r, T0, T0 + 2 * DAY), 0);
    assert_int_equal(rl_available(t, RL_CERTS_PER_DOMAIN, "late.example", T0 + 2 * DAY), 49);
    assert_int_equal(rl_available(t, RL_DUPLICATE_CERTS, "www.late.example", T0 + 2 * DAY), 4);
    /* An ARI renewal never touched certificates per domain. */
    struct rl_order_req ari = order("late.example", "ari.late.example", true);
    assert_int_equal(rl_admit(t, &ari, T0 + 3 * DAY, NULL), 0);
    assert_int_equal(rl_note_issued(t, &ari, T0 + 3 * DAY, T0 + 4 * DAY), 0);
    assert_int_equal(rl_available(t, RL_CERTS_PER_DOMAIN, "late.example", T0 + 4 * DAY), 50);
    assert_int_equal(rl_available(t, RL_DUPLICATE_CERTS, "ari.late.example", T0 + 4 * DAY), 4);
    struct rl_order_req bad = r;
    bad.names_key = NULL;
    assert_int_equal(rl_note_issued(t, &bad, T0, T0 + DAY), CF_EUSAGE);
    rl_table_free(t);
}

static void test_names_key(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    const char *names[] = {"WWW.example.com", "example.com", "b.example.com", "www.example.com"};
    rl_names_key(&b, names, 4);
    assert_string_equal(b.data, "b.example.com,example.com,www.example.com");
    buf_reset(&b);
    rl_names_key(&b, names + 1, 1);
    assert_string_equal(b.data, "example.com");
    buf_cleanup(&b);

    /* Long keys are folded, distinct ones stay distinct. */
    char a[1200], c[1200];
    memset(a, 'a', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memcpy(c, a, sizeof(a));
    c[sizeof(c) - 2] = 'c';
    struct rl_table *t = table_le();
    for (int i = 0; i < 5; i++)
        assert_int_equal(rl_take(t, RL_DUPLICATE_CERTS, a, T0, NULL), 0);
    assert_int_equal(rl_available(t, RL_DUPLICATE_CERTS, a, T0), 0);
    assert_int_equal(rl_available(t, RL_DUPLICATE_CERTS, c, T0), 5);
    char key[RL_KEY_MAX + 1];
    struct rl_order_req r = order("example.com", a, false);
    assert_int_equal(rl_order_key(key, sizeof(key), RL_DUPLICATE_CERTS, &r), 0);
    assert_int_equal(strlen(key), RL_KEY_MAX);
    assert_int_equal(key[RL_KEY_MAX - 17], '#');
    assert_int_equal(rl_available(t, RL_DUPLICATE_CERTS, key, T0), 0);
    rl_table_free(t);
}

static void profile_eq(const struct rl_profile *a, const struct rl_profile *b)
{
    for (int k = 0; k < RL_KIND__COUNT; k++) {
        assert_int_equal(a->limit[k].count, b->limit[k].count);
        if (a->limit[k].count) {
            assert_int_equal(a->limit[k].period_ms, b->limit[k].period_ms);
            assert_int_equal(a->limit[k].burst ? a->limit[k].burst : a->limit[k].count,
                             b->limit[k].burst ? b->limit[k].burst : b->limit[k].count);
        }
    }
}

static void test_profiles(void **state)
{
    (void)state;
    struct rl_profile le, p, q;
    char err[256];
    rl_profile_letsencrypt(&le);
    assert_int_equal(le.limit[RL_NEW_ORDERS].count, 300);
    assert_int_equal(le.limit[RL_NEW_ORDERS].period_ms, 3 * HOUR);
    assert_int_equal(le.limit[RL_CERTS_PER_DOMAIN].count, 50);
    assert_int_equal(le.limit[RL_CERTS_PER_DOMAIN].period_ms, 7 * DAY);
    assert_int_equal(le.limit[RL_DUPLICATE_CERTS].count, 5);
    assert_int_equal(le.limit[RL_FAILED_AUTHZ].period_ms, HOUR);
    assert_int_equal(le.limit[RL_EP_NEW_NONCE].count, 20);
    assert_int_equal(le.limit[RL_EP_NEW_NONCE].burst, 10);
    assert_int_equal(le.limit[RL_EP_ARI].count, 1000);
    assert_int_equal(le.limit[RL_EP_OTHER].count, 250);
    assert_int_equal(rl_profile_check(&le, err, sizeof(err)), 0);

    assert_int_equal(rl_profile_for_directory(&p, "https://acme-v02.api.letsencrypt.org/directory"),
                     0);
    profile_eq(&p, &le);
    assert_int_equal(
        rl_profile_for_directory(&p, "https://ACME-STAGING-v02.api.letsencrypt.org/directory/"), 0);
    profile_eq(&p, &le);
    assert_int_equal(rl_profile_for_directory(&p, "https://localhost:14000/dir"), 0);
    assert_int_equal(p.limit[RL_NEW_ORDERS].count, 0);
    assert_int_equal(rl_profile_for_directory(&p, NULL), 0);
    assert_int_equal(p.limit[RL_NEW_ORDERS].count, 0);
    assert_true(rl_directory_is_letsencrypt("https://acme-v02.api.letsencrypt.org/directory"));
    assert_false(rl_directory_is_letsencrypt("https://acme-v02.api.letsencrypt.org/directory/x"));
    assert_false(rl_directory_is_letsencrypt("http://acme-v02.api.letsencrypt.org/directory"));
    assert_false(rl_directory_is_letsencrypt("https://acme.zerossl.com/v2/DV90"));
    assert_false(rl_directory_is_letsencrypt(NULL));

    assert_int_equal(rl_profile_parse(&p, "letsencrypt", err, sizeof(err)), 0);
    profile_eq(&p, &le);
    assert_int_equal(rl_profile_parse(&p, " none ", err, sizeof(err)), 0);
    for (int k = 0; k < RL_KIND__COUNT; k++)
        assert_int_equal(p.limit[k].count, 0);
    assert_int_equal(rl_profile_parse(&p, "letsencrypt,new_orders=600/3h,certs_per_domain=none",
                                      err, sizeof(err)),
                     0);
    assert_int_equal(p.limit[RL_NEW_ORDERS].count, 600);
    assert_int_equal(p.limit[RL_NEW_ORDERS].period_ms, 3 * HOUR);
    assert_int_equal(p.limit[RL_CERTS_PER_DOMAIN].count, 0);
    assert_int_equal(p.limit[RL_DUPLICATE_CERTS].count, 5);
    assert_int_equal(rl_profile_parse(&p,
                                      "ep_new_nonce = 20/s:10 , failed_authz=3/1h30m, "
                                      "ep_other=5/500ms, duplicate_certs=2/7d:2",
                                      err, sizeof(err)),
                     0);
    assert_int_equal(p.limit[RL_EP_NEW_NONCE].count, 20);
    assert_int_equal(p.limit[RL_EP_NEW_NONCE].period_ms, SEC);
    assert_int_equal(p.limit[RL_EP_NEW_NONCE].burst, 10);
    assert_int_equal(p.limit[RL_FAILED_AUTHZ].period_ms, 90 * MINUTE);
    assert_int_equal(p.limit[RL_EP_OTHER].period_ms, 500);
    assert_int_equal(p.limit[RL_DUPLICATE_CERTS].burst, 0);
    assert_int_equal(p.limit[RL_NEW_ORDERS].count, 0);

    /* Format and parse back. */
    struct buf b;
    buf_init(&b);
    rl_profile_format(&b, &p);
    assert_int_equal(rl_profile_parse(&q, b.data, err, sizeof(err)), 0);
    profile_eq(&p, &q);
    buf_reset(&b);
    rl_profile_format(&b, &le);
    assert_string_equal(b.data, "none,new_orders=300/3h,certs_per_domain=50/7d,duplicate_certs=5/"
                                "7d,failed_authz=5/1h,ep_new_nonce=20/1s:10,ep_new_order=300/1s:"
                                "200,ep_ari=1000/1s:100,ep_other=250/1s:125");
    assert_int_equal(rl_profile_parse(&q, b.data, err, sizeof(err)), 0);
    profile_eq(&le, &q);
    buf_cleanup(&b);

    /* Bad specs: CF_ECONFIG, p untouched, and the message names the bad part. */
    static const struct {
        const char *spec;
        const char *part;
    } bad[] = {
        {"", "empty"},
        {"letsencrpyt", "\"letsencrpyt\""},
        {"letsencrypt,new_ordrs=600/3h", "\"new_ordrs\""},
        {"letsencrypt,none", "must come first"},
        {"letsencrypt,,new_orders=1/1s", "empty item 2"},
        {"letsencrypt,", "empty item 2"},
        {"new_orders=600", "\"600\""},
        {"new_orders=abc/3h", "\"abc\""},
        {"new_orders=0/3h", "\"0\""},
        {"new_orders=-5/3h", "\"-5\""},
        {"new_orders=99999999999/3h", "\"99999999999\""},
        {"new_orders=600/3x", "\"3x\""},
        {"new_orders=600/400d", "\"400d\""},
        {"certs_per_domain=50/7d:", "bad burst \"\""},
        {"certs_per_domain=50/7d:x", "\"x\""},
        {"ep_other=2000000/1ms", "microsecond"},
        {"ep_other=1/366d:1000000", "refill"},
        {"=5/1s", "unknown limit \"\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        q = le;
        err[0] = '\0';
        int rc = rl_profile_parse(&q, bad[i].spec, err, sizeof(err));
        if (rc != CF_ECONFIG || !strstr(err, bad[i].part))
            fail_msg("spec \"%s\": rc %d, err \"%s\", want \"%s\"", bad[i].spec, rc, err,
                     bad[i].part);
        profile_eq(&q, &le);
    }
    assert_int_equal(rl_profile_parse(&q, NULL, NULL, 0), CF_ECONFIG);

    /* A profile built in code is checked by rl_table_new. */
    rl_profile_none(&p);
    p.limit[RL_NEW_ORDERS].count = 10;
    p.limit[RL_NEW_ORDERS].period_ms = 0;
    assert_int_equal(rl_profile_check(&p, err, sizeof(err)), CF_ECONFIG);
    assert_non_null(strstr(err, "new_orders"));
    assert_null(rl_table_new(&p));
    assert_string_equal(rl_kind_name(RL_FAILED_AUTHZ), "failed_authz");
    assert_string_equal(rl_kind_name((enum rl_kind)99), "?");
}

/* Records collected from rl_table_encode_each. */
struct rec {
    uint8_t key[1 + RL_KEY_MAX];
    size_t klen;
    uint8_t val[64];
    size_t vlen;
};

struct recs {
    struct rec *v;
    size_t n, cap;
};

static void collect(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct recs *rs = ctx;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->v = realloc(rs->v, rs->cap * sizeof(*rs->v));
        assert_non_null(rs->v);
    }
    struct rec *r = &rs->v[rs->n++];
    assert_true(klen >= 1 && klen <= sizeof(r->key));
    assert_true(vlen <= sizeof(r->val));
    memcpy(r->key, key, klen);
    r->klen = klen;
    memcpy(r->val, val, vlen);
    r->vlen = vlen;
}

static void test_persistence(void **state)
{
    (void)state;
    struct rl_table *t = table_le();
    for (int i = 0; i < 120; i++)
        assert_int_equal(rl_take(t, RL_NEW_ORDERS, ACCT, T0, NULL), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(rl_take(t, RL_CERTS_PER_DOMAIN, "example.com", T0, NULL), 0);
    assert_int_equal(rl_take(t, RL_DUPLICATE_CERTS, "www.example.com", T0, NULL), 0);
    rl_note_failed_authz(t, "www.example.com", T0);
    rl_freeze(t, RL_EP_OTHER, "", T0 + 30 * SEC);
    assert_int_equal(rl_take(t, RL_EP_NEW_NONCE, "", T0 - 10 * SEC, NULL), 0); /* full by T0 */

    struct recs rs = {0};
    assert_int_equal(rl_table_encode_each(t, T0, collect, &rs), 5);
    assert_int_equal(rs.n, 5);
    for (size_t i = 0; i < rs.n; i++) {
        assert_int_equal(rs.v[i].vlen, RL_STATE_LEN);
        assert_int_equal(rs.v[i].val[0], RL_STATE_VERSION);
        assert_true(rs.v[i].key[0] < RL_KIND__COUNT);
        assert_int_not_equal(rs.v[i].key[0], RL_EP_NEW_NONCE);
        if (rs.v[i].key[0] == RL_CERTS_PER_DOMAIN) {
            assert_int_equal(rs.v[i].klen, 1 + strlen("example.com"));
            assert_memory_equal(rs.v[i].key + 1, "example.com", rs.v[i].klen - 1);
        }
    }

    /* Restore into a fresh table: every bucket answers the same, at any time. */
    struct rl_table *u = table_le();
    for (size_t i = 0; i < rs.n; i++)
        assert_int_equal(rl_table_load(u, rs.v[i].key, rs.v[i].klen, rs.v[i].val, rs.v[i].vlen), 0);
    static const struct {
        enum rl_kind kind;
        const char *key;
    } probe[] = {
        {RL_NEW_ORDERS, ACCT},
        {RL_CERTS_PER_DOMAIN, "example.com"},
        {RL_DUPLICATE_CERTS, "www.example.com"},
        {RL_FAILED_AUTHZ, "www.example.com"},
        {RL_EP_OTHER, ""},
        {RL_EP_NEW_NONCE, ""},
    };
    static const int64_t at[] = {T0,        T0 + 29 * SEC, T0 + 30 * SEC,
                                 T0 + HOUR, T0 + 3 * DAY,  T0 + 8 * DAY};
    for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
        for (size_t j = 0; j < sizeof(at) / sizeof(at[0]); j++) {
            assert_int_equal(rl_available(t, probe[i].kind, probe[i].key, at[j]),
                             rl_available(u, probe[i].kind, probe[i].key, at[j]));
            assert_int_equal(rl_retry_at(t, probe[i].kind, probe[i].key, at[j]),
                             rl_retry_at(u, probe[i].kind, probe[i].key, at[j]));
        }
    }
    /* Loading again keeps the stricter state. */
    assert_int_equal(rl_take(u, RL_NEW_ORDERS, ACCT, T0, NULL), 0);
    uint32_t avail = rl_available(u, RL_NEW_ORDERS, ACCT, T0);
    for (size_t i = 0; i < rs.n; i++)
        assert_int_equal(rl_table_load(u, rs.v[i].key, rs.v[i].klen, rs.v[i].val, rs.v[i].vlen), 0);
    assert_int_equal(rl_available(u, RL_NEW_ORDERS, ACCT, T0), avail);

    /* Malformed records: refused, table unchanged, never a crash. */
    struct rec g = rs.v[0];
    size_t n_before = rl_table_count(u);
    uint8_t v[RL_STATE_LEN + 1], k[2 + RL_KEY_MAX];
    memcpy(v, g.val, RL_STATE_LEN);
    assert_int_equal(rl_table_load(u, g.key, 0, g.val, g.vlen), CF_ECORRUPT);
    assert_int_equal(rl_table_load(u, NULL, 1, g.val, g.vlen), CF_ECORRUPT);
    assert_int_equal(rl_table_load(u, g.key, g.klen, NULL, 0), CF_ECORRUPT);
    assert_int_equal(rl_table_load(u, g.key, g.klen, g.val, RL_STATE_LEN - 1), CF_ECORRUPT);
    v[RL_STATE_LEN] = 0;
    assert_int_equal(rl_table_load(u, g.key, g.klen, v, RL_STATE_LEN + 1), CF_ECORRUPT);
    v[0] = 0;
    assert_int_equal(rl_table_load(u, g.key, g.klen, v, RL_STATE_LEN), CF_ECORRUPT);
    v[0] = RL_STATE_VERSION + 1;
    assert_int_equal(rl_table_load(u, g.key, g.klen, v, RL_STATE_LEN), CF_ENEWER_SCHEMA);
    v[0] = RL_STATE_VERSION;
    memset(v + 1, 0xff, 8); /* TAT beyond RL_TIME_MAX_MS */
    assert_int_equal(rl_table_load(u, g.key, g.klen, v, RL_STATE_LEN), CF_ECORRUPT);
    memcpy(k, g.key, g.klen);
    k[0] = RL_KIND__COUNT + 3;
    assert_int_equal(rl_table_load(u, k, g.klen, g.val, g.vlen), CF_ENEWER_SCHEMA);
    memcpy(k,
           "\x01"
           "ex\0mple",
           9);
    assert_int_equal(rl_table_load(u, k, 9, g.val, g.vlen), CF_ECORRUPT);
    memset(k, 'a', sizeof(k));
    k[0] = RL_DUPLICATE_CERTS;
    assert_int_equal(rl_table_load(u, k, 2 + RL_KEY_MAX, g.val, g.vlen), CF_ECORRUPT);
    assert_int_equal(rl_table_count(u), n_before);
    assert_int_equal(rl_table_load(u, k, 1 + RL_KEY_MAX, g.val, g.vlen), 0);

    /* Random bytes: any answer but a crash; whatever loads is in range. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 20000; i++) {
        uint8_t rk[8], rv[RL_STATE_LEN];
        for (size_t j = 0; j < sizeof(rk); j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            rk[j] = (uint8_t)x;
        }
        for (size_t j = 0; j < sizeof(rv); j++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            rv[j] = (uint8_t)(j == 0 ? x % 3 : j < 4 || (j > 8 && j < 12) ? 0 : x);
        }
        int rc = rl_table_load(u, rk, 1 + x % 8, rv, 1 + (x >> 8) % RL_STATE_LEN);
        assert_true(rc == 0 || rc == CF_ECORRUPT || rc == CF_ENEWER_SCHEMA);
    }
    rl_table_gc(u, RL_TIME_MAX_MS);
    assert_int_equal(rl_table_count(u), 0);
    free(rs.v);
    rl_table_free(u);
    rl_table_free(t);
}

static void test_gc(void **state)
{
    (void)state;
    /* Domains refill slowly here (one per 14.4 h), so they outlive the duplicates. */
    struct rl_profile p;
    assert_int_equal(rl_profile_parse(&p, "letsencrypt,certs_per_domain=50/30d", NULL, 0), 0);
    struct rl_table *t = table_for(&p);
    char host[64], dom[64];
    int64_t retry;
    /* One order every 40 s (new orders refill every 36 s), a third of them ARI renewals. */
    const int64_t end = T0 + 3000 * 40 * SEC;
    for (int i = 0; i < 3000; i++) {
        snprintf(host, sizeof(host), "h%d.d%d.example", i, i % 100);
        snprintf(dom, sizeof(dom), "d%d.example", i % 100);
        struct rl_order_req r = order(dom, host, i % 3 == 0);
        assert_int_equal(rl_admit(t, &r, T0 + i * 40 * SEC, &retry), 0);
    }
    rl_freeze(t, RL_EP_ARI, "", T0 + 30 * DAY);
    /* new orders + endpoint + 100 domains + 3000 duplicates + 1 freeze */
    assert_int_equal(rl_table_count(t), 2 + 100 + 3000 + 1);
    uint32_t before[100];
    for (int d = 0; d < 100; d++) {
        snprintf(dom, sizeof(dom), "d%d.example", d);
        before[d] = rl_available(t, RL_CERTS_PER_DOMAIN, dom, end);
        assert_true(before[d] < 50);
    }
    /* New orders and the endpoint are full again 40 s after the last order. */
    assert_int_equal(rl_table_gc(t, end), 2);
    size_t live = rl_table_count(t);
    /* The state that remains is the same after the rebuild. */
    for (int d = 0; d < 100; d++) {
        snprintf(dom, sizeof(dom), "d%d.example", d);
        assert_int_equal(rl_available(t, RL_CERTS_PER_DOMAIN, dom, end), before[d]);
    }
    /* Taken 40 s before the end, as of an hour after it: 3 tokens and 40 min short of 4. */
    assert_int_equal(rl_available(t, RL_DUPLICATE_CERTS, "h2999.d99.example", end), 3);
    assert_int_equal(rl_retry_at(t, RL_DUPLICATE_CERTS, "h2999.d99.example", end + 4 * DAY),
                     end + 4 * DAY);
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, end), 300);
    assert_int_equal(rl_table_gc(t, end), 0);
    assert_int_equal(rl_table_count(t), live);
    /* Duplicates are full again 33.6 h after their order, domains 20 x 14.4 h after their first. */
    assert_int_equal(rl_table_gc(t, T0 + 3 * DAY), 3000);
    assert_int_equal(rl_table_count(t), 101);
    assert_int_equal(rl_table_gc(t, T0 + 13 * DAY), 100);
    assert_int_equal(rl_retry_at(t, RL_EP_ARI, "", T0 + 13 * DAY), T0 + 30 * DAY);
    /* A frozen bucket refills from empty after the freeze: 99 ms for a burst of 100 at 1/ms. */
    assert_int_equal(rl_table_gc(t, T0 + 30 * DAY), 0);
    assert_int_equal(rl_available(t, RL_EP_ARI, "", T0 + 30 * DAY), 1);
    assert_int_equal(rl_table_gc(t, T0 + 30 * DAY + 99), 1);
    assert_int_equal(rl_table_count(t), 0);
    /* Still usable afterwards. */
    assert_int_equal(rl_take(t, RL_NEW_ORDERS, ACCT, T0 + 31 * DAY, NULL), 0);
    assert_int_equal(rl_available(t, RL_NEW_ORDERS, ACCT, T0 + 31 * DAY), 299);
    rl_table_free(t);
}

/*
 * The fleet simulation.
 *
 * The checker is a model of the CA written apart from ratelimit.c: a token
 * bucket per limit that counts fractional tokens in floating point, kept in
 * arrays indexed by domain and host, with the CA's own order of accounting
 * (Boulder: new orders and the endpoint spent at new-order; certificates
 * per domain and duplicates checked at new-order and spent at issuance;
 * failed authorizations checked at new-order and spent on failure). A
 * new-order request it would refuse is a violation. It exempts ARI renewals
 * from new orders and certificates per domain only, like rl_admit, which is
 * stricter than Let's Encrypt.
 */

#define N_HOSTS 10000
#define N_DOMAINS 400
#define SIM_DAYS 180
#define STEP MINUTE
#define ORDER_TIME (2 * MINUTE)
#define EPS 1e-6

struct ca_limit {
    bool on;
    double cap, per_ms;
};

struct ca_bucket {
    double tokens;
    int64_t last;
};

struct mock_ca {
    struct ca_limit lim[RL_KIND__COUNT];
    struct ca_bucket orders, endpoint, dom[N_DOMAINS], dup[N_HOSTS], fail[N_HOSTS];
    long violations[RL_KIND__COUNT];
    double low[RL_KIND__COUNT]; /* fewest tokens seen by an accepted request */
};

static void ca_init(struct mock_ca *ca, const struct rl_profile *p, int64_t start)
{
    memset(ca, 0, sizeof(*ca));
    for (int k = 0; k < RL_KIND__COUNT; k++) {
        const struct rl_limit *l = &p->limit[k];
        ca->lim[k].on = l->count > 0;
        ca->lim[k].cap = l->burst ? l->burst : l->count;
        ca->lim[k].per_ms = l->count ? (double)l->count / (double)l->period_ms : 0;
        ca->low[k] = 1e18;
    }
    struct ca_bucket full = {1e18, start}; /* clipped to cap at first use */
    ca->orders = ca->endpoint = full;
    for (int i = 0; i < N_DOMAINS; i++)
        ca->dom[i] = full;
    for (int i = 0; i < N_HOSTS; i++)
        ca->dup[i] = ca->fail[i] = full;
}

static double ca_level(struct mock_ca *ca, enum rl_kind k, struct ca_bucket *b, int64_t now)
{
    const struct ca_limit *l = &ca->lim[k];
    double v = b->tokens + (double)(now - b->last) * l->per_ms;
    b->tokens = v < l->cap ? v : l->cap;
    b->last = now;
    return b->tokens;
}

/* ca_check: a request needing one token of k; false (a violation) if there is none. */
static bool ca_check(struct mock_ca *ca, enum rl_kind k, struct ca_bucket *b, int64_t now)
{
    if (!ca->lim[k].on)
        return true;
    double v = ca_level(ca, k, b, now);
    if (v < 1 - EPS) {
        ca->violations[k]++;
        return false;
    }
    if (v < ca->low[k])
        ca->low[k] = v;
    return true;
}

static void ca_spend(struct mock_ca *ca, enum rl_kind k, struct ca_bucket *b, int64_t now)
{
    if (!ca->lim[k].on)
        return;
    ca_level(ca, k, b, now);
    b->tokens -= 1;
}

/*
 * ca_new_order is a newOrder request: it counts a violation for each limit
 * that refuses it and is then refused; else it spends what new-order spends.
 */
static bool ca_new_order(struct mock_ca *ca, int host, int dom, bool ari, int64_t now)
{
    bool ok = ca_check(ca, RL_EP_NEW_ORDER, &ca->endpoint, now);
    if (!ari) {
        ok &= ca_check(ca, RL_NEW_ORDERS, &ca->orders, now);
        ok &= ca_check(ca, RL_CERTS_PER_DOMAIN, &ca->dom[dom], now);
    }
    ok &= ca_check(ca, RL_DUPLICATE_CERTS, &ca->dup[host], now);
    ok &= ca_check(ca, RL_FAILED_AUTHZ, &ca->fail[host], now);
    if (!ok)
        return false;
    ca_spend(ca, RL_EP_NEW_ORDER, &ca->endpoint, now);
    if (!ari)
        ca_spend(ca, RL_NEW_ORDERS, &ca->orders, now);
    return true;
}

static void ca_issue(struct mock_ca *ca, int host, int dom, bool ari, int64_t now)
{
    if (!ari)
        ca_spend(ca, RL_CERTS_PER_DOMAIN, &ca->dom[dom], now);
    ca_spend(ca, RL_DUPLICATE_CERTS, &ca->dup[host], now);
}

static long ca_violations(const struct mock_ca *ca)
{
    long n = 0;
    for (int k = 0; k < RL_KIND__COUNT; k++)
        n += ca->violations[k];
    return n;
}

/* A deterministic PRNG (xorshift64*), so the simulation is the same every run. */
static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return rnd_state * 2685821657736338717ULL;
}

struct sim_host {
    char name[32];
    int dom;
    bool ari_capable; /* renews with ARI `replaces` */
    bool broken;      /* validation always fails (DNS never delegated) */
    bool has_cert;    /* holds a certificate the next order replaces */
    bool order_ari;   /* the order in flight is an ARI renewal */
    uint32_t failures;
    int64_t not_after;
};

struct heap_ent {
    int64_t at;
    int host;
};

struct heap {
    struct heap_ent *v;
    size_t n;
};

static void heap_push(struct heap *h, int64_t at, int host)
{
    size_t i = h->n++;
    while (i > 0 && h->v[(i - 1) / 2].at > at) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = (struct heap_ent){at, host};
}

static struct heap_ent heap_pop(struct heap *h)
{
    struct heap_ent top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1].at < h->v[c].at)
            c++;
        if (h->v[c].at >= last.at)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

/* A FIFO of host numbers, as a ring. */
struct fifo {
    int *v;
    size_t cap, head, n;
};

static void fifo_push(struct fifo *q, int host)
{
    assert_true(q->n < q->cap);
    q->v[(q->head + q->n++) % q->cap] = host;
}

static void fifo_push_front(struct fifo *q, int host)
{
    assert_true(q->n < q->cap);
    q->head = (q->head + q->cap - 1) % q->cap;
    q->v[q->head] = host;
    q->n++;
}

static int fifo_pop(struct fifo *q)
{
    int host = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->n--;
    return host;
}

struct sim_stats {
    long orders, orders_ari, issued_first, issued_renewal, issued_ari, failed, refused;
    long refused_host; /* by a host's own bucket: duplicates, failures */
    long slow_orders;  /* issued or failed later than RL_ISSUE_HOLD_MS */
    long expired;      /* certificates that ran out before a successor */
    long never_issued;
    size_t peak_buckets, buckets_after_gc;
    long demand_achieved, demand_allowed, demand_runs, first_achieved, first_allowed;
    int64_t first_end;
    long dom0_issued;
};

/* order_time: most orders take minutes, one in 50 three to six hours (slow DNS, a slow CA). */
static int64_t order_time(struct sim_stats *st)
{
    if (rnd() % 50)
        return ORDER_TIME;
    st->slow_orders++;
    return 3 * HOUR + (int64_t)(rnd() % (3 * HOUR));
}

static void restore_one(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    assert_int_equal(rl_table_load(ctx, key, klen, val, vlen), 0);
}

/* sim_restart writes the table out and reads it into a new one, as a restart would. */
static struct rl_table *sim_restart(struct rl_table *t, const struct rl_profile *p, int64_t now)
{
    struct rl_table *u = table_for(p);
    size_t n = rl_table_encode_each(t, now, restore_one, u);
    assert_int_equal(n, rl_table_count(u));
    rl_table_free(t);
    return u;
}

static void run_sim(const char *label, const struct rl_profile *prof, struct sim_stats *st)
{
    static struct sim_host hosts[N_HOSTS];
    static char regdoms[N_DOMAINS][24];
    static struct mock_ca ca;
    static int in_flight[N_HOSTS];
    static int64_t done_at[N_HOSTS], admitted_at[N_HOSTS];
    static struct fifo domq[N_DOMAINS];
    static int64_t dom_next[N_DOMAINS];
    static int dom_size[N_DOMAINS];
    struct fifo ariq = {0};
    struct heap due = {0};
    size_t n_flight = 0;
    memset(st, 0, sizeof(*st));
    rnd_state = 88172645463325252ULL;

    /* Zipf-sized domains: ~1500, ~760, ~500 hosts ... down to a handful each. */
    double hsum = 0;
    for (int d = 0; d < N_DOMAINS; d++)
        hsum += 1.0 / (d + 1);
    int assigned = 0;
    for (int d = 0; d < N_DOMAINS; d++) {
        dom_size[d] = (int)(N_HOSTS / (hsum * (d + 1)));
        if (dom_size[d] < 1)
            dom_size[d] = 1;
        assigned += dom_size[d];
    }
    for (int d = N_DOMAINS - 1; assigned < N_HOSTS; d = d ? d - 1 : N_DOMAINS - 1) {
        dom_size[d]++;
        assigned++;
    }
    assert_int_equal(assigned, N_HOSTS);
    int h = 0;
    for (int d = 0; d < N_DOMAINS; d++) {
        snprintf(regdoms[d], sizeof(regdoms[d]), "cust%03d.com", d);
        domq[d] =
            (struct fifo){calloc((size_t)dom_size[d], sizeof(int)), (size_t)dom_size[d], 0, 0};
        dom_next[d] = 0;
        for (int i = 0; i < dom_size[d]; i++, h++) {
            struct sim_host *x = &hosts[h];
            memset(x, 0, sizeof(*x));
            snprintf(x->name, sizeof(x->name), "h%d.cust%03d.com", h, d);
            x->dom = d;
            x->ari_capable = rnd() % 10 < 8;
            x->broken = rnd() % 200 == 0;
        }
    }
    ariq.cap = N_HOSTS;
    ariq.v = calloc(N_HOSTS, sizeof(int));
    due.v = calloc(N_HOSTS, sizeof(*due.v));
    for (int i = 0; i < N_HOSTS; i++)
        heap_push(&due, T0, i); /* everyone wants a certificate from day 0 */
    ca_init(&ca, prof, T0);
    struct rl_table *t = table_for(prof);
    const double orders_per_ms = ca.lim[RL_NEW_ORDERS].per_ms;
    bool in_run = false;
    double run_tokens = 0;
    int64_t run_start = 0, run_last = 0;
    long run_achieved = 0;
    int rot = 0;

    for (int64_t now = T0; now < T0 + SIM_DAYS * DAY; now += STEP) {
        /* Orders finish: issued, or failed validation. */
        for (size_t i = 0; i < n_flight;) {
            int hi = in_flight[i];
            struct sim_host *x = &hosts[hi];
            if (done_at[hi] > now) {
                i++;
                continue;
            }
            in_flight[i] = in_flight[--n_flight];
            if (x->broken || rnd() % 100 < 3) {
                rl_note_failed_authz(t, x->name, now);
                ca_spend(&ca, RL_FAILED_AUTHZ, &ca.fail[hi], now);
                st->failed++;
                x->failures++;
                heap_push(&due, now + sched_backoff_delay(x->failures) * SEC, hi);
                continue;
            }
            ca_issue(&ca, hi, x->dom, x->order_ari, now);
            struct rl_order_req r = order(regdoms[x->dom], x->name, x->order_ari);
            assert_int_equal(rl_note_issued(t, &r, admitted_at[hi], now), 0);
            if (x->order_ari)
                st->issued_ari++;
            else if (x->has_cert)
                st->issued_renewal++;
            else
                st->issued_first++;
            if (x->dom == 0 && !x->order_ari)
                st->dom0_issued++;
            if (x->has_cert && x->not_after < now)
                st->expired++;
            x->has_cert = true;
            x->failures = 0;
            x->not_after = now + 90 * DAY;
            /* Renew after 60 days, spread over two more by per-host jitter. */
            heap_push(&due, now + 60 * DAY + sched_jitter(x->name, 2 * DAY), hi);
        }
        /* Hosts falling due join their queue. */
        while (due.n && due.v[0].at <= now) {
            int hi = heap_pop(&due).host;
            /* Renewals go before first certificates: a renewal must not wait out its expiry. */
            if (hosts[hi].has_cert && hosts[hi].ari_capable)
                fifo_push(&ariq, hi);
            else if (hosts[hi].has_cert)
                fifo_push_front(&domq[hosts[hi].dom], hi);
            else
                fifo_push(&domq[hosts[hi].dom], hi);
        }

        long admitted_plain = 0;
        double tokens_at_start = ca_level(&ca, RL_NEW_ORDERS, &ca.orders, now);
        /*
         * Within the step, the loop waits (as the engine's timer would) for
         * the account-wide buckets, the endpoint rate and new orders, when
         * they refill before the next step: tnow is that sub-step time.
         */
        int64_t tnow = now;
        /* ARI renewals: no account or domain budget, only their own buckets. */
        for (size_t n = ariq.n; n > 0; n--) {
            if (rl_available(t, RL_EP_NEW_ORDER, "", tnow) == 0) {
                tnow = rl_retry_at(t, RL_EP_NEW_ORDER, "", tnow);
                if (tnow >= now + STEP)
                    break;
            }
            int hi = fifo_pop(&ariq);
            struct sim_host *x = &hosts[hi];
            struct rl_order_req r = order(regdoms[x->dom], x->name, true);
            int64_t retry;
            if (rl_admit(t, &r, tnow, &retry) != 0) {
                st->refused++;
                st->refused_host++;
                heap_push(&due, retry, hi);
                continue;
            }
            ca_new_order(&ca, hi, x->dom, true, tnow);
            st->orders++;
            st->orders_ari++;
            x->order_ari = true;
            admitted_at[hi] = tnow;
            done_at[hi] = tnow + order_time(st);
            in_flight[n_flight++] = hi;
        }
        /*
         * Everything else, domain by domain (round robin), while the account
         * has new orders and the endpoint has requests; a domain out of
         * certificates waits for its retry time.
         */
        bool account_out = tnow >= now + STEP;
        for (int i = 0; i < N_DOMAINS && !account_out; i++) {
            int d = (rot + i) % N_DOMAINS;
            if (!domq[d].n || dom_next[d] > tnow)
                continue;
            while (domq[d].n) {
                if (rl_available(t, RL_NEW_ORDERS, ACCT, tnow) == 0 ||
                    rl_available(t, RL_EP_NEW_ORDER, "", tnow) == 0) {
                    int64_t a = rl_retry_at(t, RL_NEW_ORDERS, ACCT, tnow);
                    int64_t b = rl_retry_at(t, RL_EP_NEW_ORDER, "", tnow);
                    tnow = a > b ? a : b;
                    if (tnow >= now + STEP) {
                        account_out = true;
                        break;
                    }
                }
                int hi = domq[d].v[domq[d].head];
                struct sim_host *x = &hosts[hi];
                struct rl_order_req r = order(regdoms[d], x->name, false);
                int64_t retry;
                if (rl_admit(t, &r, tnow, &retry) == 0) {
                    fifo_pop(&domq[d]);
                    ca_new_order(&ca, hi, d, false, tnow);
                    st->orders++;
                    admitted_plain++;
                    x->order_ari = false;
                    admitted_at[hi] = tnow;
                    done_at[hi] = tnow + order_time(st);
                    in_flight[n_flight++] = hi;
                    continue;
                }
                st->refused++;
                if (rl_retry_at(t, RL_CERTS_PER_DOMAIN, regdoms[d], tnow) > tnow) {
                    dom_next[d] = rl_retry_at(t, RL_CERTS_PER_DOMAIN, regdoms[d], tnow);
                } else {
                    /* This host's own limit (duplicates, failures): it waits alone. */
                    st->refused_host++;
                    fifo_pop(&domq[d]);
                    heap_push(&due, retry, hi);
                    continue;
                }
                break;
            }
        }
        rot = (rot + 1) % N_DOMAINS;

        /*
         * Demand: the account ran out while some domain could still have
         * taken an order. Over each run of such steps, compare the orders
         * admitted with the most the CA's bucket allowed (its tokens at the
         * run's start plus its refill up to the end of the run's last step).
         */
        bool demand = false;
        if (account_out) {
            for (int d = 0; d < N_DOMAINS && !demand; d++)
                demand = domq[d].n && dom_next[d] <= tnow;
        }
        if (demand) {
            if (!in_run) {
                in_run = true;
                run_start = now;
                run_tokens = tokens_at_start;
                run_achieved = 0;
            }
            run_last = now;
            run_achieved += admitted_plain;
        }
        if (in_run && (!demand || now + STEP >= T0 + SIM_DAYS * DAY)) {
            in_run = false;
            /* Admissions of the run's last step may happen until its end. */
            long allowed =
                (long)(run_tokens + (double)(run_last + STEP - run_start) * orders_per_ms + EPS);
            st->demand_achieved += run_achieved;
            st->demand_allowed += allowed;
            st->demand_runs++;
            if (!st->first_end) {
                st->first_end = run_last;
                st->first_achieved = run_achieved;
                st->first_allowed = allowed;
            }
        }

        /* Hourly gc, and two restarts that go through the persisted form. */
        if ((now - T0) % HOUR == 0) {
            if (rl_table_count(t) > st->peak_buckets)
                st->peak_buckets = rl_table_count(t);
            rl_table_gc(t, now);
        }
        if (now == T0 + 30 * DAY || now == T0 + 100 * DAY + 7 * MINUTE)
            t = sim_restart(t, prof, now);
    }
    rl_table_gc(t, T0 + SIM_DAYS * DAY);
    st->buckets_after_gc = rl_table_count(t);
    for (int i = 0; i < N_HOSTS; i++)
        st->never_issued += !hosts[i].has_cert;

    printf("[%s] %d hosts, %d domains (largest %d, smallest %d), %d days\n", label, N_HOSTS,
           N_DOMAINS, dom_size[0], dom_size[N_DOMAINS - 1], SIM_DAYS);
    printf("[%s] orders %ld (ARI %ld, slower than the hold %ld), refused by rl_admit %ld (%ld by "
           "a host's own bucket), failed validations %ld\n",
           label, st->orders, st->orders_ari, st->slow_orders, st->refused, st->refused_host,
           st->failed);
    printf("[%s] issued: first %ld, ARI renewals %ld, other renewals %ld; never issued %ld; "
           "expired before renewal %ld\n",
           label, st->issued_first, st->issued_ari, st->issued_renewal, st->never_issued,
           st->expired);
    double dom_budget = ca.lim[RL_CERTS_PER_DOMAIN].cap +
                        (double)(SIM_DAYS * DAY) * ca.lim[RL_CERTS_PER_DOMAIN].per_ms;
    printf("[%s] largest domain: %ld certificates counted against it, of a budget of %.0f "
           "(%.1f%%)\n",
           label, st->dom0_issued, dom_budget, 100.0 * st->dom0_issued / dom_budget);
    printf("[%s] new orders while demand exceeded the budget (%ld runs): %ld of %ld allowed "
           "(%.2f%%); first backlog (to day %.2f): %ld of %ld\n",
           label, st->demand_runs, st->demand_achieved, st->demand_allowed,
           st->demand_allowed ? 100.0 * st->demand_achieved / st->demand_allowed : 0.0,
           (double)(st->first_end - T0) / DAY, st->first_achieved, st->first_allowed);
    printf("[%s] buckets: peak %zu, after the last gc %zu\n", label, st->peak_buckets,
           st->buckets_after_gc);
    printf("[%s] checker: violations %ld; fewest tokens seen by an accepted order:", label,
           ca_violations(&ca));
    for (int k = 0; k < RL_KIND__COUNT; k++) {
        if (ca.lim[k].on && ca.low[k] < 1e17)
            printf(" %s %.3f", rl_kind_name((enum rl_kind)k), ca.low[k]);
    }
    printf("\n");
    fflush(stdout);

    for (int k = 0; k < RL_KIND__COUNT; k++) {
        if (ca.violations[k])
            fail_msg("[%s] %ld violations of %s", label, ca.violations[k],
                     rl_kind_name((enum rl_kind)k));
    }
    assert_true(st->demand_allowed > 0);
    assert_true(st->demand_achieved * 100 >= st->demand_allowed * 90);
    assert_true(st->first_achieved * 100 >= st->first_allowed * 90);
    /* The limits that should bind did bind. */
    assert_true(ca.low[RL_NEW_ORDERS] < 2);
    /* The largest domain used most of its certificates budget (failed orders use some). */
    assert_true(st->dom0_issued * 100 >= (long)(dom_budget * 85));
    assert_true(st->refused_host > 0);
    assert_int_equal(st->expired, 0);
    assert_true(st->buckets_after_gc < N_HOSTS);

    for (int d = 0; d < N_DOMAINS; d++)
        free(domq[d].v);
    free(ariq.v);
    free(due.v);
    rl_table_free(t);
}

/* The checker is not vacuous: orders that skip rl_admit are caught. */
static void test_checker_catches_overuse(void **state)
{
    (void)state;
    static struct mock_ca ca;
    struct rl_profile p;
    rl_profile_letsencrypt(&p);
    p.limit[RL_EP_NEW_ORDER].count = 0;
    ca_init(&ca, &p, T0);
    for (int i = 0; i < 300; i++)
        ca_new_order(&ca, i, i % N_DOMAINS, false, T0 + i);
    assert_int_equal(ca_violations(&ca), 0);
    assert_false(ca_new_order(&ca, 300, 300, false, T0 + 300));
    assert_int_equal(ca.violations[RL_NEW_ORDERS], 1);
    /* 36 s later there is one again. */
    assert_true(ca_new_order(&ca, 301, 301, false, T0 + 36 * SEC + 300));
    assert_int_equal(ca.violations[RL_NEW_ORDERS], 1);
    /* Certificates per domain are spent at issuance (51 here, past the check). */
    for (int i = 0; i < 51; i++) {
        assert_true(ca_new_order(&ca, 1000 + i, 7, true, T0 + DAY));
        ca_issue(&ca, 1000 + i, 7, false, T0 + DAY);
    }
    assert_int_equal(ca.violations[RL_CERTS_PER_DOMAIN], 0);
    assert_false(ca_new_order(&ca, 2000, 7, false, T0 + DAY));
    assert_int_equal(ca.violations[RL_CERTS_PER_DOMAIN], 1);
    /* Duplicates: checked at new-order, spent at issuance. */
    for (int i = 0; i < 5; i++) {
        assert_true(ca_new_order(&ca, 3000, 8, true, T0 + 2 * DAY));
        ca_issue(&ca, 3000, 8, true, T0 + 2 * DAY);
    }
    assert_false(ca_new_order(&ca, 3000, 8, true, T0 + 2 * DAY));
    assert_int_equal(ca.violations[RL_DUPLICATE_CERTS], 1);
}

static void test_fleet_simulation(void **state)
{
    (void)state;
    struct sim_stats st;
    struct rl_profile le, tight;
    char err[256];
    rl_profile_letsencrypt(&le);
    run_sim("letsencrypt", &le, &st);

    const char *spec = "letsencrypt,new_orders=120/3h,certs_per_domain=20/7d,"
                       "duplicate_certs=3/7d,failed_authz=2/1h,ep_new_order=5/1s:3";
    assert_int_equal(rl_profile_parse(&tight, spec, err, sizeof(err)), 0);
    printf("[tight] profile %s\n", spec);
    run_sim("tight", &tight, &st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gcra_burst_and_refill),
        cmocka_unit_test(test_admit_all_or_nothing),
        cmocka_unit_test(test_freeze),
        cmocka_unit_test(test_ari_exemption),
        cmocka_unit_test(test_late_issuance),
        cmocka_unit_test(test_names_key),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_persistence),
        cmocka_unit_test(test_gc),
        cmocka_unit_test(test_checker_catches_overuse),
        cmocka_unit_test(test_fleet_simulation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
