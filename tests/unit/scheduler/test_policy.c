/*
 * test_policy.c - the per-host policy (scheduler/policy.h) in simulated time.
 *
 * A struct sim plays one host's life as the nightly run would: at each
 * visit the delegation and liveness checks report what the scenario says
 * (sched_note_delegation, sched_note_liveness), sched_decide decides, and an
 * order it asks for gets the scenario's outcome (a 90-day certificate, a
 * failure, the CA's pause). Visits happen once a night (a run starting at
 * 03:00 that handles the host 25 minutes in, when the host was due at the
 * run's start), exactly when the host is due, or at times a test picks.
 * Every visit checks the invariants: next_action set, never in the past, at
 * most a day ahead; an order only on a confirmed delegation and after the
 * backoff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backoff.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "observe.h"
#include "policy.h"
#include "record.h"

#define MINUTE 60LL
#define HOUR 3600LL
#define DAY 86400LL
/* Night 0's run starts at 03:00 UTC. */
#define T0 ((int64_t)1800000000 / DAY * DAY + 3 * HOUR)
#define RUN_OFFSET (25 * MINUTE)
#define CERT_LIFE (90 * DAY)
#define FAIL_MAX 4096

struct sim {
    struct host_record rec;
    struct sched_policy p;
    int64_t now;
    /* What the next checks and orders say. */
    enum deleg_result deleg;
    enum live_result live;
    int fail;            /* 0: orders succeed; else the CF_* code they fail with */
    int paused;          /* orders get the CA's "paused" answer */
    int64_t retry_after; /* Retry-After of failures, relative (0: none) */
    /* What happened. */
    enum sched_action act;
    unsigned visits, issued, renewed, failed;
    int64_t fail_at[FAIL_MAX];
};

static void sim_init(struct sim *s, const char *name)
{
    memset(s, 0, sizeof(*s));
    host_record_init(&s->rec);
    str_copy(s->rec.name, sizeof(s->rec.name), name);
    str_fmt(s->rec.target, sizeof(s->rec.target), "%s.acme.cdn.example.net", name);
    s->rec.state = HOST_AWAITING_DELEGATION;
    s->rec.created_at = s->rec.state_since = s->rec.next_action = T0;
    sched_policy_defaults(&s->p);
    s->now = T0;
    s->deleg = DELEG_MISSING;
    s->live = LIVE_NOT_LIVE;
}

static int64_t sim_day(const struct sim *s)
{
    return (s->now - T0) / DAY;
}

static void check_invariants(const struct sim *s)
{
    const struct host_record *r = &s->rec;
    int64_t longest = s->p.recheck_active > s->p.await_max ? s->p.recheck_active : s->p.await_max;
    assert_true(r->next_action > 0);
    assert_true(r->next_action >= s->now);
    assert_true(r->next_action - s->now <= longest);
    assert_true(r->state < HOST_STATE__COUNT);
    if (r->state == HOST_STOPPED) {
        assert_true(r->reason != STOP_NONE);
        assert_true(r->next_action - s->now <= s->p.recheck_active);
    } else {
        assert_int_equal(r->reason, STOP_NONE);
        assert_int_equal(r->leftover, 0);
    }
}

/* sim_order plays the order the run starts for act, with the scenario's outcome. */
static void sim_order(struct sim *s, enum sched_action act)
{
    struct host_record *r = &s->rec;
    if (act == SCHED_ISSUE) {
        assert_true(r->state == HOST_DELEGATED || r->state == HOST_ISSUING);
        host_set_state(r, HOST_ISSUING, STOP_NONE, s->now, "order started");
    } else {
        assert_int_equal(r->state, HOST_RENEWING);
        assert_true(r->not_after > s->now);
    }
    if (s->paused) {
        sched_ca_paused(r, &s->p, s->now, "urn:ietf:params:acme:error:rejectedIdentifier paused");
        return;
    }
    if (s->fail) {
        assert_true(s->failed < FAIL_MAX);
        s->fail_at[s->failed++] = s->now;
        sched_issue_failed(r, &s->p, s->now, s->fail, s->retry_after ? s->now + s->retry_after : 0,
                           "simulated failure");
        return;
    }
    /* As the run does: the certificate's fields first, then the policy. */
    r->not_before = s->now;
    r->not_after = s->now + CERT_LIFE;
    r->certs_issued++;
    if (act == SCHED_RENEW)
        s->renewed++;
    else
        s->issued++;
    sched_issue_ok(r, &s->p, s->now, s->now + 60 * DAY + sched_jitter(r->name, DAY));
    assert_int_equal(r->state, HOST_ACTIVE);
}

/* sim_visit is one run's pipeline for the host at s->now. */
static enum sched_action sim_visit(struct sim *s)
{
    struct host_record *r = &s->rec;
    sched_note_delegation(r, s->deleg, s->deleg == DELEG_WRONG_TARGET ? "other.example.net" : NULL,
                          s->now);
    sched_note_liveness(r, s->live, s->now);
    s->visits++;
    s->act = sched_decide(r, &s->p, s->now);
    check_invariants(s);
    if (s->act != SCHED_NONE) {
        /* DESIGN.md §1 item 2: an order only on a delegation confirmed everywhere. */
        assert_int_equal(s->deleg, DELEG_CONFIRMED);
        assert_true(r->retry_at <= s->now);
        assert_int_equal(r->next_action, s->now);
        sim_order(s, s->act);
        check_invariants(s);
    }
    return s->act;
}

static enum sched_action sim_at(struct sim *s, int64_t t)
{
    assert_true(t >= s->now);
    s->now = t;
    return sim_visit(s);
}

/* sim_due visits the host exactly when it is due (a run that never sleeps). */
static enum sched_action sim_due(struct sim *s)
{
    return sim_at(s, s->rec.next_action > s->now ? s->rec.next_action : s->now);
}

/* sim_night runs the next night's run; returns 1 when the host was due at its start. */
static int sim_night(struct sim *s)
{
    int64_t start = T0 + ((s->now - T0) / DAY + 1) * DAY;
    s->now = start;
    if (s->rec.next_action > start)
        return 0;
    sim_at(s, start + RUN_OFFSET);
    return 1;
}

/* sim_next_visit runs nights until the host is due at one (after a visit at an odd hour). */
static void sim_next_visit(struct sim *s)
{
    int64_t from = s->now;
    while (!sim_night(s))
        assert_true(s->now - from <= DAY);
}

/* sim_nights_until runs nights until the run of day `day` (included), asserting daily visits. */
static void sim_nights_until(struct sim *s, int64_t day)
{
    while (sim_day(s) < day)
        assert_true(sim_night(s));
}

/* sim_active brings a new host to active with a first certificate at s->now. */
static void sim_active(struct sim *s, enum live_result live)
{
    s->deleg = DELEG_CONFIRMED;
    s->live = live;
    assert_int_equal(sim_visit(s), SCHED_ISSUE);
    assert_int_equal(s->rec.state, HOST_ACTIVE);
    assert_int_equal(s->issued, 1);
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_defaults(void **state)
{
    (void)state;
    struct sched_policy p;
    sched_policy_defaults(&p);
    assert_int_equal(p.offboard_grace, 72 * HOUR);
    assert_int_equal(p.offboard_min_checks, 3);
    assert_int_equal(p.deleg_grace, 72 * HOUR);
    assert_int_equal(p.deleg_min_checks, 3);
    assert_int_equal(p.fail_stop_after, 7 * DAY);
    assert_int_equal(p.recheck_active, DAY);
    assert_int_equal(p.await_first, 10 * MINUTE);
    assert_int_equal(p.await_max, DAY);
    assert_int_equal(p.recheck_error, HOUR);
}

/* The new fields of the record survive the store's encoding. */
static void test_record_fields(void **state)
{
    (void)state;
    struct host_record a, b;
    struct buf enc;
    host_record_init(&a);
    str_copy(a.name, sizeof(a.name), "www.example.com");
    a.deleg_bad_since = T0 + 1;
    a.live_bad_since = T0 + 2;
    a.retry_at = T0 + 3;
    a.rearmed = 1;
    buf_init(&enc);
    host_record_encode(&enc, &a);
    assert_int_equal(host_record_decode(&b, enc.data, enc.len), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    buf_cleanup(&enc);
}

/* Awaiting hosts are re-checked at a rising interval, capped at a day; no state change. */
static void test_awaiting_interval(void **state)
{
    (void)state;
    static const enum deleg_result bad[] = {DELEG_MISSING, DELEG_PROPAGATING, DELEG_WRONG_TARGET};
    struct sim s;
    int64_t prev = 0, iv = 0;
    sim_init(&s, "await.example.com");
    for (int i = 0; i < 40; i++) {
        s.deleg = bad[i % 3];
        assert_int_equal(sim_due(&s), SCHED_NONE);
        assert_int_equal(s.rec.state, HOST_AWAITING_DELEGATION);
        iv = s.rec.next_action - s.now;
        if (i == 0)
            assert_true(iv > 0 && iv <= 10 * MINUTE);
        assert_true(iv >= prev);
        assert_true(iv <= DAY);
        if (i == 1)
            assert_true(iv > prev); /* it rises */
        prev = iv;
    }
    assert_true(iv >= 18 * HOUR); /* it got to the cap, and stayed there */
    /* A check error is no evidence: the interval does not rise. */
    sim_init(&s, "await2.example.com");
    sim_due(&s);
    sim_due(&s);
    prev = s.rec.next_action - s.now;
    s.deleg = DELEG_ERROR;
    sim_due(&s);
    assert_int_equal(s.rec.next_action - s.now, prev);
    assert_int_equal(s.rec.state, HOST_AWAITING_DELEGATION);
    /* Unchecked for weeks: still awaiting, never abandoned. */
    sim_init(&s, "await3.example.com");
    for (int i = 0; i < 30; i++)
        sim_nights_until(&s, sim_day(&s) + 1);
    assert_int_equal(s.rec.state, HOST_AWAITING_DELEGATION);
}

/* Confirmed delegation: delegated and SCHED_ISSUE, even before the host is live (migration). */
static void test_issue_before_traffic(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "shop.example.com");
    assert_int_equal(sim_due(&s), SCHED_NONE);
    assert_int_equal(sim_due(&s), SCHED_NONE);
    s.deleg = DELEG_CONFIRMED;
    s.live = LIVE_NOT_LIVE;
    sched_note_delegation(&s.rec, s.deleg, NULL, s.now + 60);
    sched_note_liveness(&s.rec, s.live, s.now + 60);
    s.now += 60;
    assert_int_equal(sched_decide(&s.rec, &s.p, s.now), SCHED_ISSUE);
    assert_int_equal(s.rec.state, HOST_DELEGATED);
    assert_int_equal(s.rec.next_action, s.now);
    sim_order(&s, SCHED_ISSUE);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_int_equal(s.rec.failures, 0);
    /* next_action = min(renew_at, next daily re-check). */
    assert_true(s.rec.next_action > s.now && s.rec.next_action <= s.now + DAY);
    assert_true(s.rec.next_action < s.rec.renew_at);

    /* Liveness unknown (a check error) does not hold a first certificate either. */
    sim_init(&s, "shop2.example.com");
    s.live = LIVE_ERROR;
    s.deleg = DELEG_CONFIRMED;
    assert_int_equal(sim_visit(&s), SCHED_ISSUE);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
}

/* delegated and issuing (an order interrupted by a crash) → SCHED_ISSUE. */
static void test_resume_order(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "crash.example.com");
    host_set_state(&s.rec, HOST_ISSUING, STOP_NONE, s.now, "order started");
    str_copy(s.rec.order_url, sizeof(s.rec.order_url), "https://ca.example/order/1");
    s.deleg = DELEG_CONFIRMED;
    sched_note_delegation(&s.rec, s.deleg, NULL, s.now);
    assert_int_equal(sched_decide(&s.rec, &s.p, s.now), SCHED_ISSUE);
    assert_int_equal(s.rec.state, HOST_ISSUING);
    assert_string_equal(s.rec.order_url, "https://ca.example/order/1"); /* the engine's */

    sim_init(&s, "crash2.example.com");
    host_set_state(&s.rec, HOST_DELEGATED, STOP_NONE, s.now, "delegation confirmed");
    s.deleg = DELEG_CONFIRMED;
    assert_int_equal(sim_visit(&s), SCHED_ISSUE);

    /* A check error: wait (no order on an unconfirmed delegation), look again within the hour. */
    sim_init(&s, "crash3.example.com");
    host_set_state(&s.rec, HOST_ISSUING, STOP_NONE, s.now, "order started");
    s.deleg = DELEG_ERROR;
    assert_int_equal(sim_visit(&s), SCHED_NONE);
    assert_int_equal(s.rec.state, HOST_ISSUING);
    assert_true(s.rec.next_action > s.now && s.rec.next_action <= s.now + HOUR);
    s.deleg = DELEG_CONFIRMED;
    assert_int_equal(sim_due(&s), SCHED_ISSUE);

    /* The CNAME went away before the first certificate: back to awaiting. */
    sim_init(&s, "crash4.example.com");
    host_set_state(&s.rec, HOST_DELEGATED, STOP_NONE, s.now, "delegation confirmed");
    s.deleg = DELEG_MISSING;
    assert_int_equal(sim_visit(&s), SCHED_NONE);
    assert_int_equal(s.rec.state, HOST_AWAITING_DELEGATION);
}

/* A live host is checked every night and renewed in time, for years. */
static void test_renewal_lifecycle(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "www.example.com");
    sim_active(&s, LIVE_LIVE);
    int64_t renew_at = s.rec.renew_at;
    unsigned visits = s.visits;
    while (sim_day(&s) < 400) {
        assert_true(sim_night(&s)); /* at least daily */
        assert_true(s.rec.not_after > s.now);
        assert_int_equal(s.rec.state, HOST_ACTIVE);
        if (s.act == SCHED_RENEW) {
            /* Renewed on the first night from renew_at on. */
            assert_true(s.now >= renew_at && s.now - renew_at < DAY);
            renew_at = s.rec.renew_at;
        } else {
            assert_true(s.now < renew_at);
        }
    }
    assert_int_equal(s.visits - visits, 400);
    assert_true(s.renewed >= 6 && s.renewed <= 7);

    /* Due, but the delegation check failed: the renewal waits an hour, then goes. */
    sim_init(&s, "www2.example.com");
    sim_active(&s, LIVE_LIVE);
    s.deleg = DELEG_ERROR;
    assert_int_equal(sim_at(&s, s.rec.renew_at), SCHED_NONE);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_true(s.rec.next_action <= s.now + HOUR);
    /* A liveness error on a host known live does not hold it. */
    s.deleg = DELEG_CONFIRMED;
    s.live = LIVE_ERROR;
    assert_int_equal(sim_due(&s), SCHED_RENEW);
    assert_int_equal(s.renewed, 1);
}

/* never_live: issued before traffic, stopped at renewal time, resumes the day it goes live. */
static void test_never_live(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "migrating.example.com");
    sim_active(&s, LIVE_NOT_LIVE);
    int64_t renew_at = s.rec.renew_at;
    /* Not live for two months: not offboarded (it never was live), and not renewed. */
    while (s.rec.state == HOST_ACTIVE)
        assert_true(sim_night(&s));
    assert_int_equal(s.rec.state, HOST_STOPPED);
    assert_int_equal(s.rec.reason, STOP_NEVER_LIVE);
    assert_true(s.now >= renew_at && s.now - renew_at < DAY);
    assert_int_equal(s.renewed, 0);
    assert_int_equal(s.rec.leftover, 1); /* the CNAME still points at us */
    assert_false(sched_needs_alert(&s.rec));
    /* Re-checked daily; no renewal while not live. */
    sim_nights_until(&s, 75);
    assert_int_equal(s.rec.reason, STOP_NEVER_LIVE);
    assert_int_equal(s.renewed, 0);
    /* Day 75 it goes live, the certificate still valid: renewed at once. */
    s.live = LIVE_LIVE;
    assert_true(sim_night(&s));
    assert_int_equal(s.act, SCHED_RENEW);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_int_equal(s.rec.leftover, 0);
    assert_int_equal(s.renewed, 1);

    /* Goes live after the certificate expired: a new certificate (SCHED_ISSUE). */
    sim_init(&s, "migrating2.example.com");
    sim_active(&s, LIVE_NOT_LIVE);
    sim_nights_until(&s, 100);
    assert_int_equal(s.rec.reason, STOP_NEVER_LIVE);
    assert_true(s.rec.not_after < s.now);
    s.live = LIVE_LIVE;
    assert_true(sim_night(&s));
    assert_int_equal(s.act, SCHED_ISSUE);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_int_equal(s.issued, 2);

    /* Near miss: the liveness check fails at renewal time: no stop, look again in an hour. */
    sim_init(&s, "migrating3.example.com");
    sim_active(&s, LIVE_NOT_LIVE);
    s.live = LIVE_ERROR;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sim_at(&s, s.rec.renew_at + i * HOUR), SCHED_NONE);
        assert_int_equal(s.rec.state, HOST_ACTIVE);
        assert_true(s.rec.next_action <= s.now + HOUR);
    }
    s.live = LIVE_NOT_LIVE;
    assert_int_equal(sim_due(&s), SCHED_NONE);
    assert_int_equal(s.rec.reason, STOP_NEVER_LIVE);

    /* A host that went live once is never "never live": it is renewed. */
    sim_init(&s, "migrating4.example.com");
    sim_active(&s, LIVE_NOT_LIVE);
    sim_nights_until(&s, 30);
    s.live = LIVE_LIVE;
    sim_nights_until(&s, 70);
    assert_true(s.renewed == 1);
}

/* An operator's re-arm gets a never-live host one renewal; the next one stops again. */
static void test_rearm_never_live(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "rearm.example.com");
    sim_active(&s, LIVE_NOT_LIVE);
    while (s.rec.state == HOST_ACTIVE)
        sim_night(&s);
    assert_int_equal(s.rec.reason, STOP_NEVER_LIVE);
    sched_rearm(&s.rec, s.now);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_int_equal(s.rec.next_action, s.now);
    assert_int_equal(s.rec.leftover, 0);
    assert_true(sim_night(&s));
    assert_int_equal(s.act, SCHED_RENEW);
    assert_int_equal(s.rec.rearmed, 0);
    while (s.rec.state == HOST_ACTIVE)
        sim_night(&s);
    assert_int_equal(s.rec.reason, STOP_NEVER_LIVE);
    assert_int_equal(s.renewed, 1);
}

/* offboarded: not live 72 h and 3 checks after having been live; left when live again. */
static void test_offboarded(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "leaving.example.com");
    sim_active(&s, LIVE_LIVE);
    sim_nights_until(&s, 9);
    s.live = LIVE_NOT_LIVE;
    sim_nights_until(&s, 12); /* nights 10, 11, 12: 3 checks over 48 h */
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_true(sim_night(&s)); /* night 13: 72 h */
    assert_int_equal(s.rec.state, HOST_STOPPED);
    assert_int_equal(s.rec.reason, STOP_OFFBOARDED);
    assert_int_equal(s.rec.leftover, 1); /* _acme-challenge still points at us */
    assert_false(sched_needs_alert(&s.rec));
    /* Never renewed while offboarded; checked daily; the leftover goes with the CNAME. */
    sim_nights_until(&s, 70);
    assert_int_equal(s.rec.leftover, 1);
    s.deleg = DELEG_ERROR; /* no evidence: the flag stays */
    assert_true(sim_night(&s));
    assert_int_equal(s.rec.leftover, 1);
    s.deleg = DELEG_MISSING;
    assert_true(sim_night(&s));
    assert_int_equal(s.rec.leftover, 0);
    sim_nights_until(&s, 99);
    assert_int_equal(s.rec.reason, STOP_OFFBOARDED);
    assert_int_equal(s.renewed, 0);
    /* Live again and delegated again, the certificate expired: a new one. */
    s.live = LIVE_LIVE;
    s.deleg = DELEG_CONFIRMED;
    assert_true(sim_night(&s));
    assert_int_equal(s.act, SCHED_ISSUE);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_int_equal(s.issued, 2);

    /* Back within the certificate's life: active again, renewed when due. */
    sim_init(&s, "leaving2.example.com");
    sim_active(&s, LIVE_LIVE);
    s.live = LIVE_NOT_LIVE;
    sim_nights_until(&s, 5);
    assert_int_equal(s.rec.reason, STOP_OFFBOARDED);
    sim_nights_until(&s, 20);
    s.live = LIVE_LIVE;
    assert_true(sim_night(&s));
    assert_int_equal(s.act, SCHED_NONE);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    sim_nights_until(&s, 70);
    assert_int_equal(s.renewed, 1);
}

/*
 * A renewal falls due while a host that was live is not live (the grace is
 * running): it waits for the question to settle, renewed if the host comes
 * back, offboarded if not. A failure series from before a stop does not
 * carry over to after the host comes back.
 */
static void test_renewal_waits_for_liveness(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "unsure.example.com");
    sim_active(&s, LIVE_LIVE);
    int64_t due_day = (s.rec.renew_at - T0) / DAY + 1; /* the first night it is due */
    sim_nights_until(&s, due_day - 1);
    s.live = LIVE_NOT_LIVE;
    assert_true(sim_night(&s)); /* due, not live once */
    assert_int_equal(s.act, SCHED_NONE);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_true(sim_night(&s));
    assert_int_equal(s.act, SCHED_NONE);
    s.live = LIVE_LIVE;
    assert_true(sim_night(&s));
    assert_int_equal(s.act, SCHED_RENEW);

    sim_init(&s, "unsure2.example.com");
    sim_active(&s, LIVE_LIVE);
    due_day = (s.rec.renew_at - T0) / DAY + 1;
    sim_nights_until(&s, due_day - 1);
    s.live = LIVE_NOT_LIVE;
    sim_nights_until(&s, due_day + 3);
    assert_int_equal(s.rec.reason, STOP_OFFBOARDED);
    assert_int_equal(s.renewed, 0);

    /* Renewals failing for five days, then gone for four, then back: a fresh series. */
    sim_init(&s, "unsure3.example.com");
    sim_active(&s, LIVE_LIVE);
    due_day = (s.rec.renew_at - T0) / DAY + 1;
    s.fail = CF_EACME;
    sim_nights_until(&s, due_day + 5);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_true(s.rec.failures >= 5);
    s.live = LIVE_NOT_LIVE;
    sim_nights_until(&s, due_day + 9);
    assert_int_equal(s.rec.reason, STOP_OFFBOARDED);
    s.live = LIVE_LIVE;
    assert_true(sim_night(&s));
    assert_int_equal(s.act, SCHED_RENEW);
    assert_int_equal(s.rec.state, HOST_ACTIVE); /* failed again, but not "failing" */
    assert_int_equal(s.rec.failures, 1);
}

/* Near misses of offboarded: 2 checks only, 71 h only, check errors, flapping. */
static void test_offboarded_near_misses(void **state)
{
    (void)state;
    struct sim s;
    int64_t t;

    /* Two checks over 80 h: not enough checks. The third one (81 h) is. */
    sim_init(&s, "nm1.example.com");
    sim_active(&s, LIVE_LIVE);
    t = s.now + DAY;
    s.live = LIVE_NOT_LIVE;
    sim_at(&s, t);
    sim_at(&s, t + 80 * HOUR);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    sim_at(&s, t + 81 * HOUR);
    assert_int_equal(s.rec.reason, STOP_OFFBOARDED);

    /* Four checks over 71 h: not long enough. 72 h is. */
    sim_init(&s, "nm2.example.com");
    sim_active(&s, LIVE_LIVE);
    t = s.now + DAY;
    s.live = LIVE_NOT_LIVE;
    sim_at(&s, t);
    sim_at(&s, t + 24 * HOUR);
    sim_at(&s, t + 48 * HOUR);
    sim_at(&s, t + 71 * HOUR);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    sim_at(&s, t + 72 * HOUR);
    assert_int_equal(s.rec.reason, STOP_OFFBOARDED);

    /* One not-live check, then errors for ten days: never offboarded. */
    sim_init(&s, "nm3.example.com");
    sim_active(&s, LIVE_LIVE);
    s.live = LIVE_NOT_LIVE;
    assert_true(sim_night(&s));
    s.live = LIVE_ERROR;
    sim_nights_until(&s, 11);
    assert_int_equal(s.rec.state, HOST_ACTIVE);

    /* Errors for five days start nothing: the grace starts at the first not-live check. */
    sim_init(&s, "nm4.example.com");
    sim_active(&s, LIVE_LIVE);
    s.live = LIVE_ERROR;
    sim_nights_until(&s, 5);
    s.live = LIVE_NOT_LIVE;
    sim_nights_until(&s, 8); /* nights 6, 7, 8: 48 h */
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    s.live = LIVE_ERROR; /* an error on night 9 does not stop it either */
    assert_true(sim_night(&s));
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    s.live = LIVE_NOT_LIVE;
    assert_true(sim_night(&s)); /* night 10: 96 h since the first not-live check */
    assert_int_equal(s.rec.reason, STOP_OFFBOARDED);

    /* Flapping: a live check in between starts the count again. */
    sim_init(&s, "nm5.example.com");
    sim_active(&s, LIVE_LIVE);
    for (int i = 0; i < 30; i++) {
        s.live = i % 3 == 2 ? LIVE_LIVE : LIVE_NOT_LIVE;
        assert_true(sim_night(&s));
        assert_int_equal(s.rec.state, HOST_ACTIVE);
    }

    /* `certfleet check` folds checks in without deciding: an old streak is not reused. */
    sim_init(&s, "nm6.example.com");
    sim_active(&s, LIVE_LIVE);
    s.live = LIVE_NOT_LIVE;
    t = s.now + DAY;
    sim_at(&s, t); /* a streak starts (seen by the policy) */
    sched_note_liveness(&s.rec, LIVE_LIVE, t + 10 * HOUR);     /* check: live again */
    sched_note_liveness(&s.rec, LIVE_NOT_LIVE, t + 20 * HOUR); /* check: not live */
    sched_note_liveness(&s.rec, LIVE_NOT_LIVE, t + 40 * HOUR); /* check: not live */
    sim_at(&s, t + 73 * HOUR); /* 3 checks, but 73 h only from the old streak's start */
    assert_int_equal(s.rec.state, HOST_ACTIVE);
}

/* delegation_removed: the CNAME gone or wrong for 72 h and 3 checks; alert while live. */
static void test_delegation_removed(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "cname.example.com");
    sim_active(&s, LIVE_LIVE);
    sim_nights_until(&s, 9);
    s.deleg = DELEG_MISSING;
    sim_nights_until(&s, 12);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_false(sched_needs_alert(&s.rec));
    assert_true(sim_night(&s));
    assert_int_equal(s.rec.state, HOST_STOPPED);
    assert_int_equal(s.rec.reason, STOP_DELEGATION_REMOVED);
    assert_true(sched_needs_alert(&s.rec)); /* still served by the CDN */
    assert_int_equal(s.rec.leftover, 0);
    /* Stays stopped, alerting every night (also through a liveness check error). */
    s.live = LIVE_ERROR;
    sim_nights_until(&s, 30);
    assert_true(sched_needs_alert(&s.rec));
    s.live = LIVE_LIVE;
    /* The customer puts the CNAME back: active again, no alert, renewed when due. */
    s.deleg = DELEG_CONFIRMED;
    assert_true(sim_night(&s));
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_false(sched_needs_alert(&s.rec));
    sim_nights_until(&s, 70);
    assert_int_equal(s.renewed, 1);

    /* A wrong target or a CNAME on only some servers counts as well. */
    sim_init(&s, "cname2.example.com");
    sim_active(&s, LIVE_LIVE);
    s.deleg = DELEG_WRONG_TARGET;
    assert_true(sim_night(&s));
    assert_string_equal(s.rec.deleg_seen, "other.example.net");
    s.deleg = DELEG_PROPAGATING;
    assert_true(sim_night(&s));
    s.deleg = DELEG_WRONG_TARGET;
    assert_true(sim_night(&s));
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    s.deleg = DELEG_PROPAGATING; /* the check that ends the grace */
    assert_true(sim_night(&s));
    assert_int_equal(s.rec.reason, STOP_DELEGATION_REMOVED);

    /* Not live any more either: the customer left altogether (offboarded, no alert). */
    sim_init(&s, "cname3.example.com");
    sim_active(&s, LIVE_LIVE);
    s.deleg = DELEG_MISSING;
    s.live = LIVE_NOT_LIVE;
    sim_nights_until(&s, 4);
    assert_int_equal(s.rec.reason, STOP_OFFBOARDED);
    assert_false(sched_needs_alert(&s.rec));

    /* Removed while the host is not live (but not yet offboarded): no alert. */
    sim_init(&s, "cname4.example.com");
    sim_active(&s, LIVE_LIVE);
    s.deleg = DELEG_MISSING;
    sim_nights_until(&s, 2);
    s.live = LIVE_NOT_LIVE;
    assert_true(sim_night(&s));
    assert_true(sim_night(&s));
    assert_int_equal(s.rec.reason, STOP_DELEGATION_REMOVED);
    assert_false(sched_needs_alert(&s.rec));
}

static void test_delegation_removed_near_misses(void **state)
{
    (void)state;
    struct sim s;
    int64_t t;

    /* Two checks over 80 h. */
    sim_init(&s, "dn1.example.com");
    sim_active(&s, LIVE_LIVE);
    t = s.now + DAY;
    s.deleg = DELEG_MISSING;
    sim_at(&s, t);
    sim_at(&s, t + 80 * HOUR);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    sim_at(&s, t + 81 * HOUR);
    assert_int_equal(s.rec.reason, STOP_DELEGATION_REMOVED);

    /* Four checks over 71 h. */
    sim_init(&s, "dn2.example.com");
    sim_active(&s, LIVE_LIVE);
    t = s.now + DAY;
    s.deleg = DELEG_MISSING;
    sim_at(&s, t);
    sim_at(&s, t + 24 * HOUR);
    sim_at(&s, t + 48 * HOUR);
    sim_at(&s, t + 71 * HOUR);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    sim_at(&s, t + 72 * HOUR);
    assert_int_equal(s.rec.reason, STOP_DELEGATION_REMOVED);

    /* Check errors (timeouts, SERVFAIL) for weeks: nothing happens, not even at renewal time. */
    sim_init(&s, "dn3.example.com");
    sim_active(&s, LIVE_LIVE);
    s.deleg = DELEG_ERROR;
    sim_nights_until(&s, 40);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    /* Then one missing check: the grace starts now, not at the last confirmation. */
    s.deleg = DELEG_MISSING;
    sim_nights_until(&s, 43);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_true(sim_night(&s));
    assert_int_equal(s.rec.reason, STOP_DELEGATION_REMOVED);

    /* Missing once, then errors: never stopped. */
    sim_init(&s, "dn4.example.com");
    sim_active(&s, LIVE_LIVE);
    s.deleg = DELEG_MISSING;
    assert_true(sim_night(&s));
    s.deleg = DELEG_ERROR;
    sim_nights_until(&s, 10);
    assert_int_equal(s.rec.state, HOST_ACTIVE);

    /* A delegation still missing at renewal time (within the grace): the renewal waits. */
    sim_init(&s, "dn5.example.com");
    sim_active(&s, LIVE_LIVE);
    s.deleg = DELEG_MISSING;
    assert_int_equal(sim_at(&s, s.rec.renew_at), SCHED_NONE);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    s.deleg = DELEG_CONFIRMED;
    assert_int_equal(sim_due(&s), SCHED_RENEW);
}

/* The failure backoff: 1 min, 10 min, 100 min, then daily; Retry-After wins when later. */
static void test_backoff_sequence(void **state)
{
    (void)state;
    /* A day-long step ends an eighth early so tomorrow's run at the same hour takes it. */
    static const int64_t want[] = {60, 600, 6000, 21 * HOUR, 21 * HOUR, 21 * HOUR};
    struct sim s;
    sim_init(&s, "failing.example.com");
    s.deleg = DELEG_CONFIRMED;
    s.live = LIVE_LIVE;
    s.fail = CF_EACME;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        unsigned before = s.failed;
        while (s.failed == before)
            sim_due(&s);
        assert_int_equal(s.rec.failures, i + 1);
        assert_int_equal(s.rec.retry_at - s.now, want[i]);
        assert_int_equal(s.rec.state, HOST_DELEGATED);
        assert_string_equal(s.rec.last_error, "simulated failure");
        if (i > 0)
            assert_int_equal(s.fail_at[i] - s.fail_at[i - 1], want[i - 1]);
    }
    for (int i = 1; i <= 10; i++)
        assert_int_equal(sched_backoff_delay((uint32_t)i), i == 1   ? 60
                                                           : i == 2 ? 600
                                                           : i == 3 ? 6000
                                                                    : DAY);

    /* A later Retry-After wins; an earlier one does not shorten the backoff. */
    sim_init(&s, "retry.example.com");
    s.deleg = DELEG_CONFIRMED;
    s.fail = CF_EHTTP;
    s.retry_after = 3 * HOUR;
    sim_visit(&s);
    assert_int_equal(s.rec.retry_at - s.now, 3 * HOUR);
    assert_int_equal(s.rec.next_action, s.rec.retry_at);
    s.retry_after = 10;
    sim_due(&s);
    assert_int_equal(s.rec.retry_at - s.now, 600);

    /* A renewal that fails keeps the host active on its valid certificate, in backoff. */
    sim_init(&s, "renewfail.example.com");
    sim_active(&s, LIVE_LIVE);
    s.fail = CF_ETIMEOUT;
    assert_int_equal(sim_at(&s, s.rec.renew_at), SCHED_RENEW);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    assert_int_equal(s.rec.failures, 1);
    assert_int_equal(s.rec.next_action, s.now + 60);
    /* Called before the backoff ends (a re-run): no order. */
    assert_int_equal(sim_at(&s, s.now + 30), SCHED_NONE);
    assert_int_equal(s.rec.next_action, s.now + 30);
    s.fail = 0;
    assert_int_equal(sim_due(&s), SCHED_RENEW);
    assert_int_equal(s.rec.failures, 0);
    assert_int_equal(s.rec.retry_at, 0);
    assert_string_equal(s.rec.last_error, "");
}

/* Continuous failure for fail_stop_after stops the host (failing); only a re-arm resumes it. */
static void test_failing(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "broken.example.com");
    s.deleg = DELEG_CONFIRMED;
    s.live = LIVE_LIVE;
    s.fail = CF_EACME;
    while (s.rec.state != HOST_STOPPED)
        sim_due(&s);
    assert_int_equal(s.rec.reason, STOP_FAILING);
    int64_t first = s.fail_at[0], last = s.fail_at[s.failed - 1];
    assert_true(last - first >= 7 * DAY);
    assert_true(s.fail_at[s.failed - 2] - first < 7 * DAY);
    assert_int_equal(s.rec.leftover, 1);
    /* Never left by itself, even when everything would work now. */
    s.fail = 0;
    sim_next_visit(&s);
    for (int i = 0; i < 30; i++) {
        assert_true(sim_night(&s));
        assert_int_equal(s.act, SCHED_NONE);
    }
    assert_int_equal(s.rec.reason, STOP_FAILING);
    sched_rearm(&s.rec, s.now);
    assert_int_equal(s.rec.state, HOST_AWAITING_DELEGATION);
    assert_int_equal(s.rec.failures, 0);
    assert_int_equal(s.rec.next_action, s.now);
    assert_true(sim_night(&s));
    assert_int_equal(s.act, SCHED_ISSUE);
    assert_int_equal(s.rec.state, HOST_ACTIVE);

    /* Renewals failing for a week stop an active host too; re-armed, it renews. */
    sim_init(&s, "broken2.example.com");
    sim_active(&s, LIVE_LIVE);
    s.fail = CF_EACME;
    while (s.rec.state != HOST_STOPPED)
        sim_night(&s);
    assert_int_equal(s.rec.reason, STOP_FAILING);
    assert_true(s.failed >= 7);
    sched_rearm(&s.rec, s.now);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
    s.fail = 0;
    assert_true(sim_night(&s));
    assert_int_equal(s.act, SCHED_RENEW);
}

/*
 * Never more than 5 failed authorizations per hostname per hour (the CA's
 * limit): even a run that looks at the host every minute, ignoring
 * next_action, gets at most 3 orders in an hour from a failing host.
 */
static void test_failed_authz_bound(void **state)
{
    (void)state;
    static const int64_t retry_afters[] = {0, 1, 30};
    for (size_t k = 0; k < sizeof(retry_afters) / sizeof(retry_afters[0]); k++) {
        struct sim s;
        sim_init(&s, "bound.example.com");
        s.deleg = DELEG_CONFIRMED;
        s.live = LIVE_LIVE;
        s.fail = CF_EACME;
        s.retry_after = retry_afters[k];
        for (int m = 0; m < 3 * 24 * 60; m++)
            sim_at(&s, T0 + m * MINUTE);
        assert_true(s.failed >= 5);
        for (unsigned i = 0; i < s.failed; i++) {
            unsigned in_hour = 0;
            for (unsigned j = i; j < s.failed && s.fail_at[j] < s.fail_at[i] + HOUR; j++)
                in_hour++;
            assert_true(in_hour <= 5);
            assert_true(in_hour <= 3);
        }
    }
}

/* ca_paused: the CA's pause stops the host; only sched_rearm leaves it. */
static void test_ca_paused(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "paused.example.com");
    s.deleg = DELEG_CONFIRMED;
    s.live = LIVE_LIVE;
    s.paused = 1;
    sim_visit(&s);
    assert_int_equal(s.rec.state, HOST_STOPPED);
    assert_int_equal(s.rec.reason, STOP_CA_PAUSED);
    assert_true(strstr(s.rec.last_error, "paused") != NULL);
    assert_int_equal(s.rec.leftover, 1);
    s.paused = 0;
    for (int i = 0; i < 20; i++) {
        assert_true(sim_night(&s));
        assert_int_equal(s.act, SCHED_NONE);
        assert_int_equal(s.rec.reason, STOP_CA_PAUSED);
    }
    sched_rearm(&s.rec, s.now);
    assert_true(sim_night(&s));
    assert_int_equal(s.act, SCHED_ISSUE);
    assert_int_equal(s.rec.state, HOST_ACTIVE);

    /* Paused at renewal: re-armed with its certificate still valid, it goes back to active. */
    sim_init(&s, "paused2.example.com");
    sim_active(&s, LIVE_LIVE);
    s.paused = 1;
    sim_at(&s, s.rec.renew_at);
    assert_int_equal(s.rec.reason, STOP_CA_PAUSED);
    sched_rearm(&s.rec, s.now + HOUR);
    assert_int_equal(s.rec.state, HOST_ACTIVE);
}

/* The CA's rateLimited is no failure of the host: not counted, its Retry-After honoured. */
static void test_rate_limited(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "limited.example.com");
    s.deleg = DELEG_CONFIRMED;
    s.live = LIVE_LIVE;
    s.fail = CF_ERATELIMIT;
    s.retry_after = 2 * DAY + HOUR;
    sim_visit(&s);
    int64_t until = s.rec.retry_at;
    assert_int_equal(until, s.now + 2 * DAY + HOUR);
    assert_int_equal(s.rec.failures, 0);
    assert_int_equal(s.rec.state, HOST_DELEGATED);
    s.fail = 0;
    /* Checked every night meanwhile, no order before Retry-After. */
    while (s.issued == 0) {
        assert_true(sim_night(&s));
        assert_true(s.act == SCHED_NONE || s.now >= until);
    }
    assert_true(s.now - until < DAY);

    /* The run could not start the order (its own bucket): sched_defer, no failure. */
    sim_init(&s, "deferred.example.com");
    sim_active(&s, LIVE_LIVE);
    s.now = s.rec.renew_at;
    sched_note_delegation(&s.rec, DELEG_CONFIRMED, NULL, s.now);
    sched_note_liveness(&s.rec, LIVE_LIVE, s.now);
    assert_int_equal(sched_decide(&s.rec, &s.p, s.now), SCHED_RENEW);
    sched_defer(&s.rec, &s.p, s.now, s.now + 5 * HOUR);
    assert_int_equal(s.rec.state, HOST_RENEWING);
    assert_int_equal(s.rec.failures, 0);
    assert_int_equal(s.rec.next_action, s.now + 5 * HOUR);
    assert_int_equal(sim_at(&s, s.now + HOUR), SCHED_NONE);
    assert_int_equal(sim_due(&s), SCHED_RENEW);
    assert_int_equal(s.renewed, 1);
}

/* leftover: set on stopped hosts whose CNAME still points at us, cleared when it is gone. */
static void test_leftover(void **state)
{
    (void)state;
    static const struct {
        enum deleg_result r;
        int leftover;
    } steps[] = {
        {DELEG_CONFIRMED, 1}, {DELEG_ERROR, 1},        {DELEG_PROPAGATING, 1},
        {DELEG_MISSING, 0},   {DELEG_ERROR, 0},        {DELEG_PROPAGATING, 0},
        {DELEG_CONFIRMED, 1}, {DELEG_WRONG_TARGET, 0}, {DELEG_CONFIRMED, 1},
    };
    struct sim s;
    sim_init(&s, "removed.example.com");
    sim_active(&s, LIVE_LIVE);
    host_set_state(&s.rec, HOST_STOPPED, STOP_REMOVED, s.now, "removed by an operator");
    s.rec.next_action = s.now;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        s.deleg = steps[i].r;
        assert_true(sim_night(&s));
        assert_int_equal(s.rec.leftover, steps[i].leftover);
        /* Removed by the operator: never left automatically, live and delegated as it is. */
        assert_int_equal(s.rec.state, HOST_STOPPED);
        assert_int_equal(s.rec.reason, STOP_REMOVED);
        assert_int_equal(s.act, SCHED_NONE);
    }
    sim_nights_until(&s, 200);
    assert_int_equal(s.rec.reason, STOP_REMOVED);
    assert_int_equal(s.renewed + s.issued, 1);
    /* A host that is not stopped is never a leftover. */
    sched_rearm(&s.rec, s.now);
    assert_int_equal(s.rec.leftover, 0);
    assert_int_equal(s.rec.state, HOST_AWAITING_DELEGATION); /* its certificate expired */
}

/* A tiny deterministic generator for the random walk. */
static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/*
 * Random lives: any sequence of observations, outcomes, early and late
 * visits, deferrals and re-arms keeps next_action set, never in the past and
 * at most a day ahead, orders only on confirmed delegations, and failed
 * orders within the per-hour bound.
 */
static void test_random_walk(void **state)
{
    (void)state;
    static const enum deleg_result dr[] = {DELEG_CONFIRMED, DELEG_CONFIRMED,    DELEG_CONFIRMED,
                                           DELEG_MISSING,   DELEG_WRONG_TARGET, DELEG_PROPAGATING,
                                           DELEG_ERROR};
    static const enum live_result lr[] = {LIVE_LIVE, LIVE_LIVE, LIVE_NOT_LIVE, LIVE_ERROR};
    static const int fails[] = {0, 0, 0, CF_EACME, CF_ETIMEOUT, CF_ERATELIMIT};
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    struct sim *s = malloc(sizeof(*s));
    assert_non_null(s);
    for (int h = 0; h < 200; h++) {
        char name[64];
        str_fmt(name, sizeof(name), "host%d.example.com", h);
        sim_init(s, name);
        unsigned since_rearm = 0;
        for (int step = 0; step < 500 && s->failed < FAIL_MAX - 1; step++) {
            uint64_t r = rng_next(&x);
            if (r % 50 == 0) {
                s->deleg = dr[rng_next(&x) % 7];
                s->live = lr[rng_next(&x) % 4];
            } else if (r % 5 == 0) {
                s->deleg = dr[rng_next(&x) % 7];
            } else if (r % 7 == 0) {
                s->live = lr[rng_next(&x) % 4];
            }
            s->fail = fails[rng_next(&x) % 6];
            s->paused = rng_next(&x) % 400 == 0;
            s->retry_after = rng_next(&x) % 4 == 0 ? (int64_t)(rng_next(&x) % (3 * DAY)) : 0;
            switch (rng_next(&x) % 4) {
            case 0:
                sim_due(s);
                break;
            case 1: /* early: a re-run */
                sim_at(s, s->now + (int64_t)(rng_next(&x) % HOUR));
                break;
            case 2:
                sim_night(s);
                break;
            default: /* late: a missed night */
                sim_at(s, s->now + (int64_t)(rng_next(&x) % (3 * DAY)));
                break;
            }
            /* Never more than 5 failed orders in an hour (re-arms aside: an operator's call). */
            if (s->failed > since_rearm) {
                int64_t last = s->fail_at[s->failed - 1];
                unsigned in_hour = 0;
                for (unsigned j = s->failed; j > since_rearm && s->fail_at[j - 1] > last - HOUR;
                     j--)
                    in_hour++;
                assert_true(in_hour <= 5);
            }
            if (rng_next(&x) % 300 == 0) {
                sched_rearm(&s->rec, s->now);
                check_invariants(s);
                since_rearm = s->failed;
            }
            if (rng_next(&x) % 100 == 0 && s->rec.state != HOST_STOPPED) {
                sched_defer(&s->rec, &s->p, s->now, s->now + (int64_t)(rng_next(&x) % DAY));
                check_invariants(s);
            }
            assert_true(sched_next_action(&s->rec, &s->p, s->now) >= s->now);
        }
    }
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_record_fields),
        cmocka_unit_test(test_awaiting_interval),
        cmocka_unit_test(test_issue_before_traffic),
        cmocka_unit_test(test_resume_order),
        cmocka_unit_test(test_renewal_lifecycle),
        cmocka_unit_test(test_never_live),
        cmocka_unit_test(test_rearm_never_live),
        cmocka_unit_test(test_offboarded),
        cmocka_unit_test(test_offboarded_near_misses),
        cmocka_unit_test(test_renewal_waits_for_liveness),
        cmocka_unit_test(test_delegation_removed),
        cmocka_unit_test(test_delegation_removed_near_misses),
        cmocka_unit_test(test_backoff_sequence),
        cmocka_unit_test(test_failing),
        cmocka_unit_test(test_failed_authz_bound),
        cmocka_unit_test(test_ca_paused),
        cmocka_unit_test(test_rate_limited),
        cmocka_unit_test(test_leftover),
        cmocka_unit_test(test_random_walk),
    };
    /* Transitions are logged (host_set_state); CF_TEST_LOG=1 shows them. */
    const char *show = getenv("CF_TEST_LOG");
    log_setup(show && strcmp(show, "1") == 0 ? LOG_INFO : LOG_OFF, 0, stderr);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
