/*
 * policy.h - the per-host decisions of the nightly run: when to issue, when
 * to renew, when to stop, when to come back, and when to look again
 * (DESIGN.md §1 item 5, §3 "Per-host state" and "Scheduler rules").
 *
 * Pure logic (STYLE.md): the record, the policy and the time (Unix seconds)
 * come in; the record's state, bookkeeping and next_action go out. Nothing
 * here does I/O or knows the event loop. Every state change goes through
 * host_set_state, which logs it with a reason.
 *
 * The run, for each due host: both DNS checks → sched_note_delegation and
 * sched_note_liveness (observe.h) → sched_decide → for SCHED_ISSUE or
 * SCHED_RENEW an ACME order, whose outcome goes to sched_issue_ok,
 * sched_issue_failed or sched_ca_paused → the record is stored. Every
 * function here leaves rec->next_action set (never 0, never before now).
 *
 * Evidence. A DNS check that failed on our side or on the way (deleg_result
 * or live_result ERROR: timeouts, SERVFAIL) is evidence of nothing: it never
 * starts a grace period, never stops a host and never lets one resume. A
 * grace period starts at the first conclusive bad check after the last good
 * one (rec->deleg_bad_since, rec->live_bad_since, kept here) and is over
 * when it has lasted its time AND has seen its number of bad checks, and the
 * check just made is bad too.
 *
 * An order (issue or renewal) is only started when the delegation check just
 * made confirmed the CNAME on every authoritative server (DESIGN.md §1 item
 * 2), and not before rec->retry_at (failure backoff, the CA's Retry-After, a
 * deferral). A host that never had a certificate needs nothing more: the
 * certificate comes before the traffic (the migration use case). A host that
 * had one is renewed (or re-issued after its certificate expired) only when
 * it is live by the last conclusive liveness check:
 *   - never seen live, and the check just made says not live: it stops as
 *     never_live, at renewal time, without a grace period;
 *   - never seen live, and the check just made failed: the renewal waits
 *     (re-checked after recheck_error); an error decides nothing;
 *   - seen live before, but not live now: the renewal waits for the
 *     offboarding question to settle (live again: renewed; gone for the
 *     grace period: offboarded). A renewal falls due with about a third of
 *     the lifetime left, far more than the 72 h grace.
 * An operator's sched_rearm lets the next order skip the liveness condition.
 *
 * States and what leaves them:
 *   awaiting_delegation  the CNAME is not confirmed yet; re-checked at a
 *                        rising interval (await_first doubling per
 *                        unconfirmed check, capped at await_max). Confirmed:
 *                        delegated and SCHED_ISSUE.
 *   delegated, issuing   SCHED_ISSUE (issuing: an order was in flight, the
 *                        engine resumes it). A host without a certificate
 *                        whose CNAME is no longer confirmed goes back to
 *                        awaiting_delegation.
 *   active, renewing     re-checked at least daily; SCHED_RENEW (state
 *                        renewing) once rec->renew_at has come. An expired
 *                        certificate makes the host delegated (SCHED_ISSUE).
 *   stopped/offboarded   it had been live and was not live for offboard_grace
 *                        and offboard_min_checks checks. Leaves when a check
 *                        sees it live: active (delegated if its certificate
 *                        expired), where the delegation rules apply again.
 *   stopped/delegation_removed  the CNAME was missing, wrong or only on some
 *                        servers for deleg_grace and deleg_min_checks checks.
 *                        sched_needs_alert tells whether the host is still
 *                        served by the CDN. Leaves when the CNAME is confirmed.
 *   stopped/never_live   see above. Leaves when a check sees the host live
 *                        (then SCHED_RENEW, or SCHED_ISSUE if expired).
 *   stopped/failing      failures went on for fail_stop_after. sched_rearm only.
 *   stopped/ca_paused    the CA paused the hostname. sched_rearm only.
 *   stopped/removed      the operator's `remove`. sched_rearm only.
 * The two abandonment rules with grace periods (offboarded, then
 * delegation_removed) apply to every host that has had a certificate: a
 * customer who left altogether is offboarded, not alerted about.
 * A stopped host (any reason) is re-checked daily; while its last
 * conclusive delegation check confirmed the CNAME, rec->leftover is 1 (the
 * customer can be reminded to delete it).
 */
#ifndef CF_SCHEDULER_POLICY_H
#define CF_SCHEDULER_POLICY_H

#include <stdint.h>

#include "record.h"

/*
 * struct sched_policy: the knobs of the abandonment and re-check rules, in
 * seconds unless said otherwise. sched_policy_defaults fills in the values
 * given in each comment; the run may change them from its configuration.
 */
struct sched_policy {
    int64_t offboard_grace;       /* not live this long → offboarded: 72 h */
    uint32_t offboard_min_checks; /* and at least this many not-live checks: 3 */
    int64_t deleg_grace;          /* CNAME missing/wrong this long → delegation_removed: 72 h */
    uint32_t deleg_min_checks;    /* and at least this many such checks: 3 */
    int64_t fail_stop_after;      /* continuous failure this long → failing: 7 days */
    int64_t recheck_active; /* longest time between checks of active and stopped hosts: 1 day */
    int64_t await_first;    /* first re-check of a host awaiting its delegation: 10 min */
    int64_t await_max;      /* ... doubling per unconfirmed check, capped here: 1 day */
    int64_t recheck_error;  /* an order waits on a failed check: look again after 1 h */
};

/* sched_policy_defaults fills p with the defaults above. */
void sched_policy_defaults(struct sched_policy *p);

enum sched_action {
    SCHED_NONE,  /* nothing to order now; rec->next_action says when to look again */
    SCHED_ISSUE, /* order a certificate (the first, or one after the last expired) */
    SCHED_RENEW, /* order the replacement of the current, still valid, certificate */
};

/*
 * sched_decide applies the policy to rec after the run's checks have been
 * folded in (sched_note_delegation, sched_note_liveness) and returns what
 * to order now. It makes the state changes (through host_set_state, with a
 * reason), keeps the grace-period bookkeeping and rec->leftover, and sets
 * rec->next_action: now when an order is returned (the outcome functions
 * below set the next time; a host whose outcome never comes, a crash, stays
 * due), else the next re-check.
 *
 * For SCHED_ISSUE the host is left delegated (or issuing, when an order was
 * in flight); the run moves it to issuing when it starts the order. For
 * SCHED_RENEW the host is left renewing. A run that does not start the
 * order after all (rate-limit bucket empty, deadline) calls sched_defer.
 */
enum sched_action sched_decide(struct host_record *rec, const struct sched_policy *p, int64_t now);

/*
 * sched_issue_ok records a certificate issued at now: the host becomes
 * active, failures and backoff are cleared, rec->renew_at is set to
 * renew_at (chosen by the caller: renewal.h's sched_renew_at) and
 * rec->next_action to the earlier of renew_at and the next daily re-check.
 * The caller has already stored the certificate's fields in rec (serial,
 * not_before, not_after, certs_issued, ARI); the order fields (order_url,
 * order_started_at) are the engine's too: neither is touched here.
 */
void sched_issue_ok(struct host_record *rec, const struct sched_policy *p, int64_t now,
                    int64_t renew_at);

/*
 * sched_issue_failed records a failed order at now. err is the order's CF_*
 * code, retry_after the CA's Retry-After as a Unix time (0: none), text the
 * error for rec->last_error (NULL: cf_strerror(err)).
 *
 * A failure counts: the n-th consecutive one makes the host wait
 * sched_backoff_delay(n) (1 min, 10 min, 100 min, then daily; a day-long
 * wait is shortened by an eighth so that a run at the same hour the next
 * day finds the host due), or until retry_after when that is later. A
 * failure fail_stop_after or more after the first of the series stops the
 * host as failing. Otherwise the host goes back to where it was before the
 * order (issuing → delegated, renewing → active) to wait out its backoff.
 *
 * CF_ERATELIMIT (the CA's rateLimited) is not the host's failure: it is not
 * counted; the host waits until retry_after (or the next backoff step when
 * the CA gave none). Let's Encrypt's "paused" answer goes to
 * sched_ca_paused instead. A run cut off by its deadline (CF_ECANCELED) is
 * no failure either: the caller leaves the record pending for the next run
 * or calls sched_defer.
 */
void sched_issue_failed(struct host_record *rec, const struct sched_policy *p, int64_t now, int err,
                        int64_t retry_after, const char *text);

/*
 * sched_ca_paused stops the host as ca_paused at now: the CA refuses to
 * issue for this hostname until someone unpauses it with the CA. text goes
 * to rec->last_error (NULL: a generic text). Only sched_rearm leaves it.
 */
void sched_ca_paused(struct host_record *rec, const struct sched_policy *p, int64_t now,
                     const char *text);

/*
 * sched_defer records that the run did not start (or did not finish) the
 * order sched_decide asked for, through no fault of the host: a rate-limit
 * bucket is empty until `until`, the run's --limit or deadline. No failure
 * is counted and the state is kept; no order starts before until (now when
 * until is earlier), while the host is still re-checked at least daily.
 */
void sched_defer(struct host_record *rec, const struct sched_policy *p, int64_t now, int64_t until);

/*
 * sched_rearm is the operator's "try again" at now. Failures, backoff and
 * the grace periods are cleared (the bad-check counters restart), and the
 * next order skips the liveness condition (so a never_live host is renewed
 * once). A stopped host, whatever its reason, goes back to active when its
 * certificate is still valid, else to awaiting_delegation; other states are
 * kept. rec->next_action becomes now: the next run looks at the host.
 */
void sched_rearm(struct host_record *rec, int64_t now);

/*
 * sched_needs_alert returns 1 when rec is stopped as delegation_removed
 * while the hostname is still served by the CDN (its last conclusive
 * liveness check saw it live): its certificate will expire under the
 * CDN's traffic. 0 otherwise. The run reports it on every run the
 * condition holds.
 */
int sched_needs_alert(const struct host_record *rec);

/*
 * sched_next_action returns the time (>= now) at which rec should be looked
 * at next, from its state and observations; the functions above store it
 * in rec->next_action. Per state: awaiting_delegation at the rising
 * interval; active at the earlier of its renewal time and the next daily
 * re-check; stopped at the next daily re-check; a host with an order to
 * make now at now, or, when the order waits, at retry_at (backoff), after
 * recheck_error (a failed check) or at the next daily re-check (bad
 * evidence, waiting for a grace period to settle), whichever applies.
 *
 * Re-check intervals are upper bounds: a host is made due between 3/4 and
 * 7/8 of the interval after now (spread by a hash of its name), so that a
 * run once a day at a fixed hour finds every host due however late in the
 * previous run it was handled, and hosts imported together spread out.
 */
int64_t sched_next_action(const struct host_record *rec, const struct sched_policy *p, int64_t now);

#endif
