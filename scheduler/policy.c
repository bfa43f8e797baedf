/*
 * policy.c - the per-host decisions of the nightly run (see policy.h).
 */
#include <stdint.h>
#include <stdio.h>

#include "backoff.h"
#include "buf.h"
#include "err.h"
#include "policy.h"

#define MINUTE ((int64_t)60)
#define HOUR ((int64_t)3600)
#define DAY ((int64_t)86400)

/* No interval shorter than this, whatever the configuration: a re-run must not spin on a host. */
#define MIN_INTERVAL MINUTE

void sched_policy_defaults(struct sched_policy *p)
{
    p->offboard_grace = 72 * HOUR;
    p->offboard_min_checks = 3;
    p->deleg_grace = 72 * HOUR;
    p->deleg_min_checks = 3;
    p->fail_stop_after = 7 * DAY;
    p->recheck_active = DAY;
    p->await_first = 10 * MINUTE;
    p->await_max = DAY;
    p->recheck_error = HOUR;
}

/* ---- what the record says ------------------------------------------------ */

/* A conclusive delegation check that did not confirm (errors are not conclusive). */
static int deleg_bad(uint8_t r)
{
    return r == DELEG_MISSING || r == DELEG_WRONG_TARGET || r == DELEG_PROPAGATING;
}

/* had_cert: the host has had a certificate, so the abandonment rules apply. */
static int had_cert(const struct host_record *rec)
{
    return rec->certs_issued > 0 || rec->not_after > 0;
}

static int cert_valid(const struct host_record *rec, int64_t now)
{
    return rec->not_after > now;
}

/*
 * renew_point is when the current certificate is due for renewal: the
 * stored renew_at, or, when the caller never chose one, where a third of
 * the lifetime remains (a 90-day lifetime assumed without not_before).
 * 0 (due now) without any certificate time.
 */
static int64_t renew_point(const struct host_record *rec)
{
    if (rec->renew_at > 0)
        return rec->renew_at;
    if (rec->not_after <= 0)
        return 0;
    int64_t life = rec->not_before > 0 && rec->not_before < rec->not_after
                       ? rec->not_after - rec->not_before
                       : 90 * DAY;
    return rec->not_after - life / 3;
}

enum live_evidence {
    EV_LIVE,    /* the last conclusive liveness check saw it live */
    EV_GONE,    /* seen live before, not live since */
    EV_NEVER,   /* never seen live, and the check just made says not live */
    EV_UNKNOWN, /* never seen live, and the check just made was not conclusive */
};

static enum live_evidence live_evidence(const struct host_record *rec)
{
    if (rec->live_last_seen > 0)
        return rec->live_bad_checks == 0 ? EV_LIVE : EV_GONE;
    return rec->live_result == LIVE_NOT_LIVE ? EV_NEVER : EV_UNKNOWN;
}

/* liveness_waived: the liveness condition does not apply to this host's next order. */
static int liveness_waived(const struct host_record *rec)
{
    return !had_cert(rec) || rec->rearmed;
}

static int offboarded(const struct host_record *rec, const struct sched_policy *p, int64_t now)
{
    return rec->live_first_seen > 0 && rec->live_result == LIVE_NOT_LIVE &&
           rec->live_bad_checks >= p->offboard_min_checks && rec->live_bad_since > 0 &&
           now - rec->live_bad_since >= p->offboard_grace;
}

static int delegation_removed(const struct host_record *rec, const struct sched_policy *p,
                              int64_t now)
{
    return deleg_bad(rec->deleg_result) && rec->deleg_bad_checks >= p->deleg_min_checks &&
           rec->deleg_bad_since > 0 && now - rec->deleg_bad_since >= p->deleg_grace;
}

/* ---- when to look again -------------------------------------------------- */

/*
 * due_in returns now plus between 3/4 and 7/8 of interval, spread by the
 * name (policy.h: a daily run at a fixed hour finds the host due).
 */
static int64_t due_in(const struct host_record *rec, int64_t now, int64_t interval)
{
    if (interval < MIN_INTERVAL)
        interval = MIN_INTERVAL;
    return now + interval - interval / 8 - sched_jitter(rec->name, interval / 8);
}

/* await_interval: await_first doubled per unconfirmed check after the first, capped. */
static int64_t await_interval(const struct host_record *rec, const struct sched_policy *p)
{
    int64_t iv = p->await_first > MIN_INTERVAL ? p->await_first : MIN_INTERVAL;
    int64_t cap = p->await_max > iv ? p->await_max : iv;
    for (uint32_t n = 1; n < rec->deleg_bad_checks && iv < cap; n++)
        iv = iv > cap / 2 ? cap : iv * 2;
    return iv < cap ? iv : cap;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/*
 * order_wait returns when a host that wants an order may have it: now when
 * nothing holds it back, else the time to look again (policy.h).
 */
static int64_t order_wait(const struct host_record *rec, const struct sched_policy *p, int64_t now)
{
    int64_t daily = due_in(rec, now, p->recheck_active);
    if (rec->retry_at > now)
        return min64(rec->retry_at, daily);
    if (rec->deleg_result != DELEG_CONFIRMED) {
        if (!deleg_bad(rec->deleg_result))
            return due_in(rec, now, p->recheck_error);
        return had_cert(rec) ? daily : due_in(rec, now, await_interval(rec, p));
    }
    if (!liveness_waived(rec)) {
        switch (live_evidence(rec)) {
        case EV_LIVE:
            break;
        case EV_UNKNOWN:
            return due_in(rec, now, p->recheck_error);
        case EV_GONE:
        case EV_NEVER:
            return daily;
        }
    }
    return now;
}

int64_t sched_next_action(const struct host_record *rec, const struct sched_policy *p, int64_t now)
{
    int64_t t;
    switch (rec->state) {
    case HOST_AWAITING_DELEGATION:
        t = due_in(rec, now, await_interval(rec, p));
        break;
    case HOST_DELEGATED:
    case HOST_ISSUING:
        t = order_wait(rec, p, now);
        break;
    case HOST_ACTIVE:
    case HOST_RENEWING:
        if (!cert_valid(rec, now) || renew_point(rec) <= now)
            t = order_wait(rec, p, now);
        else
            t = min64(renew_point(rec), due_in(rec, now, p->recheck_active));
        break;
    default: /* stopped */
        t = due_in(rec, now, p->recheck_active);
        break;
    }
    return t > now ? t : now;
}

/* ---- bookkeeping ----------------------------------------------------------- */

/*
 * note_streaks keeps the start of the current run of bad checks. It is set
 * at the first conclusive bad check this function sees after the last good
 * one: a start older than the last good check belongs to an earlier run
 * (checks folded in by `certfleet check`, which does not decide), so it is
 * started again. Errors leave it alone: they neither start nor end a run.
 */
static void note_streaks(struct host_record *rec, int64_t now)
{
    if (rec->deleg_result == DELEG_CONFIRMED) {
        rec->deleg_bad_since = 0;
    } else if (deleg_bad(rec->deleg_result) &&
               (rec->deleg_bad_since <= 0 || rec->deleg_bad_since <= rec->deleg_last_ok)) {
        rec->deleg_bad_since = rec->deleg_checked_at > 0 ? rec->deleg_checked_at : now;
    }
    if (rec->live_result == LIVE_LIVE) {
        rec->live_bad_since = 0;
    } else if (rec->live_result == LIVE_NOT_LIVE &&
               (rec->live_bad_since <= 0 || rec->live_bad_since <= rec->live_last_seen)) {
        rec->live_bad_since = rec->live_checked_at > 0 ? rec->live_checked_at : now;
    }
}

/*
 * update_leftover: a stopped host whose CNAME still points at us (the last
 * conclusive check confirmed it) is a leftover delegation; a missing or
 * changed CNAME clears it; an error or a CNAME on only some servers
 * (propagating) leaves the last answer standing.
 */
static void update_leftover(struct host_record *rec)
{
    int gone = rec->deleg_result == DELEG_MISSING || rec->deleg_result == DELEG_WRONG_TARGET;
    if (rec->state == HOST_STOPPED && rec->deleg_result == DELEG_CONFIRMED)
        rec->leftover = 1;
    else if (rec->state != HOST_STOPPED || gone)
        rec->leftover = 0;
}

static void clear_failures(struct host_record *rec)
{
    rec->failures = 0;
    rec->first_failure_at = 0;
    rec->retry_at = 0;
}

/* finish: the bookkeeping every entry point ends with. */
static void finish(struct host_record *rec, const struct sched_policy *p, int64_t now)
{
    update_leftover(rec);
    rec->next_action = sched_next_action(rec, p, now);
}

static const char *hours(char *buf, size_t n, const char *what, uint32_t checks, int64_t since,
                         int64_t now)
{
    str_fmt(buf, n, "%s for %u checks over %lld h", what, (unsigned)checks,
            (long long)((now - since) / HOUR));
    return buf;
}

/* resume_why returns why a stopped host resumes now, or NULL when it stays stopped. */
static const char *resume_why(const struct host_record *rec)
{
    switch (rec->reason) {
    case STOP_OFFBOARDED:
        return rec->live_result == LIVE_LIVE ? "live again" : NULL;
    case STOP_NEVER_LIVE:
        return rec->live_result == LIVE_LIVE ? "went live" : NULL;
    case STOP_DELEGATION_REMOVED:
        return rec->deleg_result == DELEG_CONFIRMED ? "delegation confirmed again" : NULL;
    default:
        /* failing, ca_paused, removed: only an operator's sched_rearm. */
        return NULL;
    }
}

/* ---- decisions -------------------------------------------------------------- */

enum sched_action sched_decide(struct host_record *rec, const struct sched_policy *p, int64_t now)
{
    enum sched_action act = SCHED_NONE;
    char why[96];

    note_streaks(rec, now);
    if (rec->state == HOST_STOPPED) {
        const char *w = resume_why(rec);
        if (!w)
            goto out;
        /* A fresh start: failures before the stop are not "continuous" with new ones. */
        clear_failures(rec);
        host_set_state(rec, cert_valid(rec, now) ? HOST_ACTIVE : HOST_DELEGATED, STOP_NONE, now, w);
    }

    /*
     * The abandonment rules with grace periods, for hosts that have had a
     * certificate. Offboarded first: a customer who left altogether
     * (hostname and CNAME gone) is not a case for an alert.
     */
    if (had_cert(rec)) {
        if (offboarded(rec, p, now)) {
            host_set_state(rec, HOST_STOPPED, STOP_OFFBOARDED, now,
                           hours(why, sizeof(why), "not live", rec->live_bad_checks,
                                 rec->live_bad_since, now));
            goto out;
        }
        if (delegation_removed(rec, p, now)) {
            host_set_state(rec, HOST_STOPPED, STOP_DELEGATION_REMOVED, now,
                           hours(why, sizeof(why), "delegation not confirmed",
                                 rec->deleg_bad_checks, rec->deleg_bad_since, now));
            goto out;
        }
    }

    switch (rec->state) {
    case HOST_AWAITING_DELEGATION:
        if (rec->deleg_result != DELEG_CONFIRMED)
            goto out;
        host_set_state(rec, HOST_DELEGATED, STOP_NONE, now, "delegation confirmed");
        act = SCHED_ISSUE;
        break;
    case HOST_DELEGATED:
    case HOST_ISSUING:
        if (!had_cert(rec) && deleg_bad(rec->deleg_result)) {
            host_set_state(rec, HOST_AWAITING_DELEGATION, STOP_NONE, now,
                           "delegation no longer confirmed");
            goto out;
        }
        act = SCHED_ISSUE;
        break;
    case HOST_ACTIVE:
    case HOST_RENEWING:
        if (!cert_valid(rec, now)) {
            host_set_state(rec, HOST_DELEGATED, STOP_NONE, now, "certificate expired");
            act = SCHED_ISSUE;
        } else if (renew_point(rec) <= now) {
            act = SCHED_RENEW;
        } else {
            host_set_state(rec, HOST_ACTIVE, STOP_NONE, now, "renewal not due");
            goto out;
        }
        break;
    default:
        goto out;
    }

    /* An order is wanted. Should the host have one at all, and may it now? */
    if (!liveness_waived(rec) && live_evidence(rec) == EV_NEVER) {
        host_set_state(rec, HOST_STOPPED, STOP_NEVER_LIVE, now, "never live by renewal time");
        act = SCHED_NONE;
        goto out;
    }
    if (order_wait(rec, p, now) > now) {
        if (rec->state == HOST_RENEWING)
            host_set_state(rec, HOST_ACTIVE, STOP_NONE, now, "renewal waits");
        act = SCHED_NONE;
        goto out;
    }
    if (act == SCHED_RENEW)
        host_set_state(rec, HOST_RENEWING, STOP_NONE, now, "renewal due");
out:
    finish(rec, p, now);
    return act;
}

void sched_issue_ok(struct host_record *rec, const struct sched_policy *p, int64_t now,
                    int64_t renew_at)
{
    clear_failures(rec);
    rec->last_error[0] = '\0';
    rec->rearmed = 0;
    rec->renew_at = renew_at;
    host_set_state(rec, HOST_ACTIVE, STOP_NONE, now,
                   rec->state == HOST_RENEWING ? "certificate renewed" : "certificate issued");
    finish(rec, p, now);
}

/* back_from_order: the order is over without a certificate; wait where the host was. */
static void back_from_order(struct host_record *rec, int64_t now, const char *why)
{
    if (rec->state == HOST_ISSUING)
        host_set_state(rec, HOST_DELEGATED, STOP_NONE, now, why);
    else if (rec->state == HOST_RENEWING)
        host_set_state(rec, HOST_ACTIVE, STOP_NONE, now, why);
}

void sched_issue_failed(struct host_record *rec, const struct sched_policy *p, int64_t now, int err,
                        int64_t retry_after, const char *text)
{
    str_copy(rec->last_error, sizeof(rec->last_error), text ? text : cf_strerror(err));
    if (err == CF_ERATELIMIT) {
        /* The account's or the domain's limit, not the host's failure: nothing counted. */
        uint32_t next = rec->failures < UINT32_MAX ? rec->failures + 1 : rec->failures;
        rec->retry_at = retry_after > now ? retry_after : now + sched_backoff_delay(next);
        back_from_order(rec, now, "rate limited");
        finish(rec, p, now);
        return;
    }
    if (rec->failures == 0 || rec->first_failure_at <= 0)
        rec->first_failure_at = now;
    if (rec->failures < UINT32_MAX)
        rec->failures++;
    int64_t delay = sched_backoff_delay(rec->failures);
    /* A day-long wait ends an eighth early, so that tomorrow's run at this hour takes the host. */
    if (delay >= DAY)
        delay -= delay / 8;
    rec->retry_at = now + delay;
    if (retry_after > rec->retry_at)
        rec->retry_at = retry_after;
    if (now - rec->first_failure_at >= p->fail_stop_after) {
        char why[96];
        str_fmt(why, sizeof(why), "%u failures over %lld days", (unsigned)rec->failures,
                (long long)((now - rec->first_failure_at) / DAY));
        host_set_state(rec, HOST_STOPPED, STOP_FAILING, now, why);
    } else {
        back_from_order(rec, now, "order failed");
    }
    finish(rec, p, now);
}

void sched_ca_paused(struct host_record *rec, const struct sched_policy *p, int64_t now,
                     const char *text)
{
    str_copy(rec->last_error, sizeof(rec->last_error),
             text ? text : "the CA paused issuance for this hostname");
    host_set_state(rec, HOST_STOPPED, STOP_CA_PAUSED, now, "paused by the CA");
    finish(rec, p, now);
}

void sched_defer(struct host_record *rec, const struct sched_policy *p, int64_t now, int64_t until)
{
    if (until > rec->retry_at)
        rec->retry_at = until;
    finish(rec, p, now);
}

void sched_rearm(struct host_record *rec, int64_t now)
{
    clear_failures(rec);
    rec->last_error[0] = '\0';
    /* The operator's word outweighs the evidence so far: grace periods start again. */
    rec->deleg_bad_checks = rec->live_bad_checks = 0;
    rec->deleg_bad_since = rec->live_bad_since = 0;
    rec->rearmed = 1;
    if (rec->state == HOST_STOPPED)
        host_set_state(rec, cert_valid(rec, now) ? HOST_ACTIVE : HOST_AWAITING_DELEGATION,
                       STOP_NONE, now, "re-armed by an operator");
    update_leftover(rec);
    rec->next_action = now;
}

int sched_needs_alert(const struct host_record *rec)
{
    return rec->state == HOST_STOPPED && rec->reason == STOP_DELEGATION_REMOVED &&
           live_evidence(rec) == EV_LIVE;
}
