/*
 * run.c - the nightly run (see run.h).
 *
 * Ownership: struct run lives on run_fleet's stack for the whole uv_run; a
 * struct run_host belongs to the run from its start until run_host_done
 * puts it on the spare list. A host is in exactly one place at a time:
 * checking (DNS callbacks pending), waiting for an order slot (r->queue),
 * ordering (its job's callback pending), or done. The run ends when every
 * host taken is done; then the clients are freed and their handles close,
 * which ends uv_run.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#include "authserver.h"
#include "backoff.h"
#include "buf.h"
#include "checks.h"
#include "client.h"
#include "commit.h"
#include "crypto.h"
#include "http.h"
#include "log.h"
#include "observe.h"
#include "order.h"
#include "ratelimit.h"
#include "renewal.h"
#include "rfc2136.h"
#include "run.h"
#include "stats.h"
#include "timeutil.h"

#define RUN_LEVEL_HORIZON (400 * 86400LL)
#define RUN_PROGRESS_MS 1000
/* After the deadline, what is still in flight gets this long to come back. */
#define RUN_GRACE_MS 45000
/*
 * How much the time from admitting an order to its newOrder reaching the CA
 * may vary between orders (an order slot, the order gate's group commit,
 * the client's pacer, a busy loop turn): the new-orders mirror keeps this
 * margin (rl_table_set_admit_jitter).
 */
#define RUN_ADMIT_JITTER_MS 1000

enum run_host_step {
    RH_CHECK,  /* delegation and liveness checks in flight */
    RH_ARI,    /* renewalInfo request in flight */
    RH_QUEUED, /* admitted; waiting for an order slot */
    RH_ORDER,  /* the ACME order in flight */
};

struct run_host {
    struct run *r;
    struct run_host *next;          /* queue or spare list */
    struct run_host *onext, *oprev; /* the run's list of hosts ordering */
    enum run_host_step step;
    int pending;                    /* checks not yet reported */
    int64_t t_start_ns, t_admit_ns; /* monotonic: pipeline started, admitted for an order */
    enum sched_action action;
    struct acme_order_job *job;
    struct host_record rec;
    uint8_t deleg, live;
    char deleg_seen[HOSTNAME_MAX + 1];
    char deleg_error[160];
    char live_detail[160];
};

struct run {
    const struct run_opts *o;
    struct run_summary *sum;
    uv_loop_t loop;
    uv_timer_t deadline_timer, progress_timer;
    uv_timer_t finish_timer;         /* teardown runs from here, never inside a client's callback */
    uv_timer_t rl_timer;             /* wakes the hosts waiting for a rate-limit token */
    struct run_host *rlq, *rlq_tail; /* hosts waiting for a token within this run */
    int64_t rl_wake_ms;              /* when rl_timer fires (scheduler clock), 0: idle */
    struct http_client *http;
    struct acme_client *client;
    struct dns_checker *dc;
    struct committer *commit;
    struct authsrv *dns;
    struct rfc2136 *rfc2136;      /* TXT records to an external primary, when configured */
    struct acme_order_gate *gate; /* bounds the orders a crash could orphan */
    struct crypto_key *account_key;
    struct rl_table *rl;
    struct sched_leveler *level;
    int leveler_tried;
    enum crypto_key_type key_type;
    int64_t t0_ns;     /* monotonic start */
    int64_t clock0_ms; /* the scheduler clock at t0 */
    char **names;
    size_t nnames, next, done, active;
    size_t orders_active;
    struct run_host *queue, *queue_tail;
    struct run_host *ordering; /* hosts whose order is in flight, for the deadline */
    struct run_host *spare;
    int started;  /* pipelines may start (the account is ready) */
    int stopping; /* the deadline passed: start nothing new */
    int torn_down;
    int store_errors;
    int commit_watched;               /* on_commit_done waits for the next group commit */
    size_t pend_issued, pend_renewed; /* certificates queued, not yet committed */
    int64_t drain_since_ns;
    /* --stats-json: latencies and the timeline */
    struct run_hist h_check, h_queue, h_order, h_stage[ACME_ORDER__COUNT];
    struct buf timeline;
    size_t max_active, max_orders;
    char account_url[ACME_URL_MAX];
};

static void start_more(struct run *r);
static void teardown(struct run *r);

/* run_now_ms is the scheduler's clock: the test clock advances with real time. */
static int64_t run_now_ms(const struct run *r)
{
    return r->clock0_ms + (cf_mono_ns() - r->t0_ns) / 1000000;
}

static int64_t run_now(const struct run *r)
{
    return run_now_ms(r) / 1000;
}

static void count_error(struct run_summary *s, int code)
{
    for (size_t i = 0; i < s->n_errors; i++)
        if (s->errors[i].code == code) {
            s->errors[i].count++;
            return;
        }
    if (s->n_errors < RUN_ERROR_CLASSES) {
        s->errors[s->n_errors].code = code;
        s->errors[s->n_errors].count = 1;
        s->n_errors++;
    }
}

static void set_fatal(struct run *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_fatal(struct run *r, int code, const char *fmt, ...)
{
    va_list ap;
    if (r->sum->fatal)
        return;
    r->sum->fatal = code;
    va_start(ap, fmt);
    str_vfmt(r->sum->fatal_text, sizeof(r->sum->fatal_text), fmt, ap);
    va_end(ap);
    log_event(LOG_ERROR, "run_fatal", "error", r->sum->fatal_text, NULL);
}

/* ---- the end of a host's pipeline ------------------------------------- */

static void on_commit_done(void *arg, int rc);

/* watch_commit has on_commit_done told how the next group commit goes. */
static void watch_commit(struct run *r)
{
    if (r->commit_watched)
        return;
    r->commit_watched = 1;
    committer_then(r->commit, on_commit_done, r);
}

/* run_host_store queues the host's record into this iteration's group commit. */
static void run_host_store(struct run_host *h)
{
    if (h->r->o->dry_run)
        return;
    store_batch_put_host(committer_batch(h->r->commit), &h->rec);
    watch_commit(h->r);
}

static void run_host_done(struct run_host *h)
{
    struct run *r = h->r;
    if (h->rec.state == HOST_AWAITING_DELEGATION)
        r->sum->waiting++;
    if (h->rec.state == HOST_STOPPED && h->rec.leftover)
        r->sum->leftover++;
    h->next = r->spare;
    r->spare = h;
    r->active--;
    r->done++;
    if (r->done == r->nnames) {
        teardown(r);
        return;
    }
    start_more(r);
}

/* ---- orders ------------------------------------------------------------ */

static void start_orders(struct run *r);

/* level_load builds the leveler from every stored renewal time, once, when first needed. */
static struct sched_leveler *level_get(struct run *r);

static int level_add_cb(void *ctx, const struct host_record *rec)
{
    struct sched_leveler *l = ctx;
    if (rec->renew_at > 0 && rec->state != HOST_STOPPED)
        sched_leveler_add(l, rec->renew_at);
    return 0;
}

static struct sched_leveler *level_get(struct run *r)
{
    if (r->leveler_tried)
        return r->level;
    r->leveler_tried = 1;
    r->level = sched_leveler_new(run_now(r), RUN_LEVEL_HORIZON);
    if (r->level && store_host_iter(r->o->st, NULL, level_add_cb, r->level) != 0) {
        /* Without the fleet's load a renewal still gets its jittered point. */
        sched_leveler_free(r->level);
        r->level = NULL;
    }
    return r->level;
}

/*
 * freeze_from_problem freezes the bucket a `rateLimited` answer names
 * (RFC 8555 §6.6; the limit is told apart by Let's Encrypt's detail text),
 * until its Retry-After, or a minute without one. New orders per account
 * are the guess for an answer to newOrder only: a 429 at any other step
 * (authorization, challenge, finalize, download) is an endpoint's request
 * rate, which the ACME client's pacer holds already, and freezing the
 * account's new orders for it would throw away their tokens.
 */
static void freeze_from_problem(struct run *r, const struct host_record *rec,
                                const struct acme_order_result *res)
{
    /* Retry-After is on the real clock; the buckets are on the scheduler's. */
    int64_t wait_ms = res->retry_after > 0 ? res->retry_after * 1000 - cf_wall_ms() : 60000;
    int64_t until = run_now_ms(r) + (wait_ms > 0 ? wait_ms : 1000);
    const char *t = res->error_text;
    if (strstr(t, "exact set"))
        rl_freeze(r->rl, RL_DUPLICATE_CERTS, rec->name, until);
    else if (strstr(t, "failed authorization"))
        rl_freeze(r->rl, RL_FAILED_AUTHZ, rec->name, until);
    else if (strstr(t, "already issued for") || strstr(t, "registered domain"))
        rl_freeze(r->rl, RL_CERTS_PER_DOMAIN, rec->regdom, until);
    else if (res->failed_in == ACME_ORDER_NEW_ORDER)
        rl_freeze(r->rl, RL_NEW_ORDERS, r->account_url, until);
}

/* store_cert fills rec from the new chain and queues chain and key into the group commit. */
static int store_cert(struct run_host *h, const struct acme_order_result *res)
{
    struct run *r = h->r;
    struct crypto_cert_info *own = NULL;
    const struct crypto_cert_info *info = res->leaf;
    struct buf id;
    int rc = 0;
    buf_init(&id);
    /* The order's own check parsed the chain already; parse only if it did not say. */
    if (!info) {
        own = xmalloc(sizeof(*own));
        rc = crypto_cert_parse_chain(res->chain_pem, res->chain_len, own, NULL);
        info = own;
    }
    if (rc)
        goto out_free;
    str_copy(h->rec.cert_serial, sizeof(h->rec.cert_serial), info->serial_hex);
    h->rec.not_before = info->not_before;
    h->rec.not_after = info->not_after;
    h->rec.ari_cert_id[0] = '\0';
    if (crypto_ari_cert_id(info, &id) == 0 && id.len < sizeof(h->rec.ari_cert_id))
        str_copy(h->rec.ari_cert_id, sizeof(h->rec.ari_cert_id), id.data);
    /* A new certificate: the old one's ARI window and renewal point are void. */
    h->rec.ari_start = h->rec.ari_end = h->rec.ari_retry_after = 0;
    if (h->rec.renew_at > 0 && r->level)
        sched_leveler_remove(r->level, h->rec.renew_at);
    h->rec.renew_at = 0;
    h->rec.certs_issued++;
    store_batch_put_cert(committer_batch(r->commit), h->rec.name, res->chain_pem, res->chain_len,
                         res->key_pem, res->key_len);
out_free:
    buf_cleanup(&id);
    free(own);
    return rc;
}

/* order_req describes h's order to the rate-limit buckets. */
static void order_req(const struct run_host *h, struct rl_order_req *req)
{
    const struct run *r = h->r;
    memset(req, 0, sizeof(*req));
    req->account = r->account_url;
    req->regdom = h->rec.regdom[0] ? h->rec.regdom : h->rec.name;
    req->names_key = h->rec.name;
    req->host = h->rec.name;
    req->ari_renewal = h->action == SCHED_RENEW && h->rec.ari_cert_id[0] &&
                       acme_client_directory(r->client)->renewal_info[0];
}

static void on_order(void *arg, const struct acme_order_result *res)
{
    struct run_host *h = arg;
    struct run *r = h->r;
    int64_t now = run_now(r);
    h->job = NULL;
    r->orders_active--;
    run_hist_add(&r->h_order, (uint64_t)(cf_mono_ns() - h->t_admit_ns) / 1000);
    for (int i = 0; res->stage_ns && i < ACME_ORDER__COUNT; i++)
        if (res->stage_ns[i])
            run_hist_add(&r->h_stage[i], res->stage_ns[i] / 1000);
    if (h->oprev)
        h->oprev->onext = h->onext;
    else
        r->ordering = h->onext;
    if (h->onext)
        h->onext->oprev = h->oprev;
    h->rec.order_url[0] = '\0';
    if (res->error == 0 && store_cert(h, res) == 0) {
        struct rl_order_req req;
        int64_t renew_at = 0;
        /* An order slower than the buckets' hold is accounted at issuance too. */
        order_req(h, &req);
        rl_note_issued(r->rl, &req, h->rec.order_started_at * 1000, run_now_ms(r));
        h->rec.order_started_at = 0;
        if (sched_renew_at(level_get(r), &renew_at, &h->rec, now) != 0)
            renew_at = now; /* not reached: the certificate was just parsed */
        /* Counted once the certificate is committed (on_commit_done). */
        if (h->action == SCHED_RENEW)
            r->pend_renewed++;
        else
            r->pend_issued++;
        sched_issue_ok(&h->rec, &r->o->policy, now, renew_at);
        log_event(LOG_INFO, "host_issued", "host", h->rec.name, "serial", h->rec.cert_serial,
                  "kind", h->action == SCHED_RENEW ? "renewal" : "issue", NULL);
    } else if (res->error == CF_ECANCELED || (r->stopping && res->error == CF_ETIMEOUT)) {
        /*
         * Cut off by the run's deadline: not the host's failure. The order
         * stays pending in the store and the next run resumes it.
         */
        h->rec.next_action = now;
        r->sum->deferred++;
    } else {
        int err = res->error ? res->error : CF_EPROTO;
        const char *text = res->error ? res->error_text : "the certificate does not parse";
        if (err == CF_ERATELIMIT) {
            freeze_from_problem(r, &h->rec, res);
            r->sum->rate_limited++;
        }
        if (res->terminal &&
            (res->failed_in == ACME_ORDER_POLL_AUTHZ || res->failed_in == ACME_ORDER_RESPOND))
            rl_note_failed_authz(r->rl, h->rec.name, run_now_ms(r));
        int64_t retry_after = 0;
        if (res->retry_after > 0)
            retry_after = now + (res->retry_after - cf_wall_ms() / 1000);
        if (res->ca_paused)
            sched_ca_paused(&h->rec, &r->o->policy, now, text);
        else
            sched_issue_failed(&h->rec, &r->o->policy, now, err, retry_after, text);
        if (h->rec.state == HOST_STOPPED)
            r->sum->stopped[h->rec.reason]++;
        r->sum->failed++;
        count_error(r->sum, err);
    }
    run_host_store(h);
    run_host_done(h);
    start_orders(r);
}

/* start_order starts h's order; returns 0 or a code (h is then not ordering). */
static int start_order(struct run_host *h)
{
    struct run *r = h->r;
    struct acme_order_opts o;
    memset(&o, 0, sizeof(o));
    o.loop = &r->loop;
    o.client = r->client;
    o.account_key = r->account_key;
    o.commit = r->commit;
    o.dns = r->dc;
    o.rfc2136 = r->rfc2136;
    o.gate = r->gate;
    o.validation_zone = r->o->cfg->validation_zone;
    o.host = h->rec.name;
    o.key_type = r->key_type;
    o.resume = 1;
    o.deadline_ms = cf_wall_ms() + r->o->order_deadline_ms;
    if (h->action == SCHED_RENEW && h->rec.ari_cert_id[0] &&
        acme_client_directory(r->client)->renewal_info[0])
        o.replaces = h->rec.ari_cert_id; /* RFC 9773 §5 */
    h->step = RH_ORDER;
    run_hist_add(&r->h_queue, (uint64_t)(cf_mono_ns() - h->t_admit_ns) / 1000);
    h->t_admit_ns = cf_mono_ns(); /* from here: the order's own time */
    r->orders_active++;
    if (r->orders_active > r->max_orders)
        r->max_orders = r->orders_active;
    r->sum->orders_started++;
    int rc = acme_order_start(&h->job, &o, on_order, h);
    if (rc) {
        r->orders_active--;
        return rc;
    }
    h->oprev = NULL;
    h->onext = r->ordering;
    if (r->ordering)
        r->ordering->oprev = h;
    r->ordering = h;
    return 0;
}

/* start_orders fills the free order slots from the queue. */
static void start_orders(struct run *r)
{
    while (r->queue && r->orders_active < r->o->order_concurrency && !r->torn_down) {
        struct run_host *h = r->queue;
        r->queue = h->next;
        if (!r->queue)
            r->queue_tail = NULL;
        h->next = NULL;
        if (r->stopping) {
            r->sum->deferred++;
            run_host_store(h);
            run_host_done(h);
            continue;
        }
        int rc = start_order(h);
        if (rc) {
            sched_issue_failed(&h->rec, &r->o->policy, run_now(r), rc, 0, cf_strerror(rc));
            r->sum->failed++;
            count_error(r->sum, rc);
            run_host_store(h);
            run_host_done(h);
        }
    }
}

/*
 * admit asks the rate-limit buckets for h's order. Admitted hosts enter the
 * order state (issuing or renewing, stored with this iteration's commit, so
 * a crash leaves them due for the next run, which resumes the order) and
 * queue for a slot; refused ones wait until the buckets allow them.
 */
/* A token due within this long (and before the deadline) is waited for in the run. */
#define RUN_RL_WAIT_MS (5 * 60 * 1000)

static void admit(struct run_host *h);

static void on_rl_timer(uv_timer_t *t)
{
    struct run *r = t->data;
    struct run_host *h = r->rlq;
    r->rlq = r->rlq_tail = NULL;
    r->rl_wake_ms = 0;
    /* In their order of arrival; whoever is still refused queues up again. */
    while (h) {
        struct run_host *next = h->next;
        h->next = NULL;
        if (r->stopping) {
            r->sum->deferred++;
            run_host_store(h);
            run_host_done(h);
        } else {
            admit(h);
        }
        h = next;
    }
}

/*
 * rl_wait parks h until retry_at (scheduler clock, ms) when that is soon
 * and before the deadline: a short Retry-After or an endpoint's pace must
 * not send the host to tomorrow's run. Returns 0 when parked.
 */
static int rl_wait(struct run_host *h, int64_t retry_at)
{
    struct run *r = h->r;
    int64_t now = run_now_ms(r);
    int64_t deadline = r->clock0_ms + r->o->deadline_ms;
    if (r->stopping || retry_at - now > RUN_RL_WAIT_MS || retry_at >= deadline)
        return -1;
    h->next = NULL;
    if (r->rlq_tail)
        r->rlq_tail->next = h;
    else
        r->rlq = h;
    r->rlq_tail = h;
    if (!r->rl_wake_ms || retry_at < r->rl_wake_ms) {
        r->rl_wake_ms = retry_at;
        uv_timer_start(&r->rl_timer, on_rl_timer, (uint64_t)(retry_at > now ? retry_at - now : 0),
                       0);
    }
    return 0;
}

static void admit(struct run_host *h)
{
    struct run *r = h->r;
    struct rl_order_req req;
    int64_t retry_at = 0, now = run_now(r);
    order_req(h, &req);
    if (rl_admit(r->rl, &req, run_now_ms(r), &retry_at) != 0) {
        if (rl_wait(h, retry_at) == 0)
            return;
        /* Not the host's failure: no order before the buckets allow one; re-checks go on. */
        sched_defer(&h->rec, &r->o->policy, now, retry_at / 1000 + 1);
        r->sum->rate_limited++;
        log_event(LOG_INFO, "host_rate_limited", "host", h->rec.name, NULL);
        run_host_store(h);
        run_host_done(h);
        return;
    }
    host_set_state(&h->rec, h->action == SCHED_RENEW ? HOST_RENEWING : HOST_ISSUING, STOP_NONE, now,
                   h->action == SCHED_RENEW ? "renewal due" : "delegation confirmed");
    if (!h->rec.order_started_at)
        h->rec.order_started_at = now;
    h->rec.next_action = now; /* a crash from here on: the next run resumes */
    run_host_store(h);
    h->step = RH_QUEUED;
    h->t_admit_ns = cf_mono_ns();
    h->next = NULL;
    if (r->queue_tail)
        r->queue_tail->next = h;
    else
        r->queue = h;
    r->queue_tail = h;
    start_orders(r);
}

/* ---- decisions ---------------------------------------------------------- */

static void plan_line(struct run *r, const struct run_host *h, const char *what)
{
    char when[32];
    if (!r->o->plan)
        return;
    cf_time_format(when, sizeof(when), h->rec.next_action);
    fprintf(r->o->plan, "%s\t%s%s%s\t%s\tnext %s\n", h->rec.name, host_state_name(h->rec.state),
            h->rec.state == HOST_STOPPED ? "/" : "",
            h->rec.state == HOST_STOPPED ? stop_reason_name(h->rec.reason) : "", what, when);
}

static void decide(struct run_host *h)
{
    struct run *r = h->r;
    int64_t now = run_now(r);
    uint8_t was_state = h->rec.state, was_reason = h->rec.reason;
    h->action = sched_decide(&h->rec, &r->o->policy, now);
    if (h->rec.state == HOST_STOPPED && (was_state != HOST_STOPPED || was_reason != h->rec.reason))
        r->sum->stopped[h->rec.reason]++;
    if (was_state == HOST_STOPPED && h->rec.state != HOST_STOPPED)
        r->sum->resumed[was_reason]++;
    if (sched_needs_alert(&h->rec)) {
        r->sum->alerts++;
        log_event(LOG_WARN, "host_alert", "host", h->rec.name, "reason",
                  "delegation removed while the host is still served by the CDN", "seen",
                  h->rec.deleg_seen, NULL);
    }
    if (r->o->dry_run) {
        if (h->action == SCHED_ISSUE)
            r->sum->planned_issue++;
        else if (h->action == SCHED_RENEW)
            r->sum->planned_renew++;
        plan_line(r, h,
                  h->action == SCHED_ISSUE   ? "would issue"
                  : h->action == SCHED_RENEW ? "would renew"
                                             : "nothing to do");
        run_host_done(h);
        return;
    }
    if (h->action == SCHED_NONE || r->stopping) {
        if (h->action != SCHED_NONE)
            r->sum->deferred++;
        run_host_store(h);
        run_host_done(h);
        return;
    }
    admit(h);
}

/* ---- ARI ------------------------------------------------------------------ */

static void on_ari(void *arg, const struct acme_renewal_reply *rep)
{
    struct run_host *h = arg;
    struct run *r = h->r;
    int64_t now = run_now(r);
    const struct acme_renewal_info *ri = rep->info;
    int64_t retry_after = rep->retry_after;
    if (rep->error == 0 && ri) {
        if (ri->start != h->rec.ari_start || ri->end != h->rec.ari_end) {
            h->rec.ari_start = ri->start;
            h->rec.ari_end = ri->end;
            /*
             * RFC 9773 §4.2: a point inside the new window (the stored one
             * is kept when the window still holds it; the leveler moves
             * the host's count along).
             */
            int64_t at;
            if (sched_renew_at(level_get(r), &at, &h->rec, now) == 0)
                h->rec.renew_at = at;
        }
        /* RFC 9773 §4.3: ask again after Retry-After (bounded to a day by the scheduler). */
        /* Retry-After is on the real clock; the record on the scheduler's. */
        int64_t wait = retry_after > 0 ? retry_after - cf_wall_ms() / 1000 : 6 * 3600;
        h->rec.ari_retry_after = now + (wait > 0 ? wait : 60);
    } else {
        log_event(LOG_INFO, "ari_failed", "host", h->rec.name, "error", rep->error_text, NULL);
        h->rec.ari_retry_after = now + 3600;
    }
    decide(h);
}

/* ari_wanted: the CA offers ARI and this host's window is worth asking for now. */
static int ari_wanted(struct run *r, const struct host_record *rec)
{
    if (r->o->dry_run || !r->client || !acme_client_directory(r->client) ||
        !acme_client_directory(r->client)->renewal_info[0])
        return 0;
    if (!rec->ari_cert_id[0] || (rec->state != HOST_ACTIVE && rec->state != HOST_RENEWING))
        return 0;
    return rec->ari_retry_after <= run_now(r);
}

/* ---- checks ------------------------------------------------------------------ */

static void checks_done(struct run_host *h)
{
    struct run *r = h->r;
    int64_t now = run_now(r);
    r->sum->checked++;
    run_hist_add(&r->h_check, (uint64_t)(cf_mono_ns() - h->t_start_ns) / 1000);
    sched_note_delegation(&h->rec, h->deleg, h->deleg_seen, now);
    sched_note_liveness(&h->rec, h->live, now);
    if (h->deleg == DELEG_ERROR)
        log_event(LOG_INFO, "host_check_error", "host", h->rec.name, "check", "delegation", "error",
                  h->deleg_error, NULL);
    int64_t ari_retry = 0;
    /* The renewalInfo endpoint has a request rate of its own (DESIGN.md §3); over it, ask next
     * time. */
    if (ari_wanted(r, &h->rec) &&
        rl_take(r->rl, RL_EP_ARI, r->o->cfg->directory, run_now_ms(r), &ari_retry) == 0) {
        h->step = RH_ARI;
        if (acme_client_renewal_info(r->client, h->rec.ari_cert_id, on_ari, h) == 0)
            return;
    }
    decide(h);
}

static void on_deleg(void *arg, const struct deleg_report *rep)
{
    struct run_host *h = arg;
    h->deleg = rep->result;
    str_copy(h->deleg_seen, sizeof(h->deleg_seen), rep->seen_target);
    str_copy(h->deleg_error, sizeof(h->deleg_error), rep->error);
    if (--h->pending == 0)
        checks_done(h);
}

static void on_live(void *arg, const struct live_report *rep)
{
    struct run_host *h = arg;
    h->live = rep->result;
    str_copy(h->live_detail, sizeof(h->live_detail), rep->detail);
    if (--h->pending == 0)
        checks_done(h);
}

/*
 * start_more tops the pipelines up to the concurrency, reading the records
 * of a refill in one read transaction.
 */
static void start_more(struct run *r)
{
    struct store_read *rd;
    if (!r->started || r->torn_down || r->next >= r->nnames)
        return;
    if (r->stopping) {
        /* Hosts never started stay due as they are. */
        r->sum->deferred += r->nnames - r->next;
        r->done += r->nnames - r->next;
        r->next = r->nnames;
        if (r->done == r->nnames)
            teardown(r);
        return;
    }
    if (r->active + r->o->concurrency / 8 > r->o->concurrency)
        return;
    if (store_read_begin(r->o->st, &rd) != 0) {
        set_fatal(r, CF_ESTORE, "the store %s cannot be read", store_path(r->o->st));
        r->stopping = 1;
        start_more(r);
        return;
    }
    while (r->active < r->o->concurrency && r->next < r->nnames) {
        const char *name = r->names[r->next++];
        struct run_host *h = r->spare;
        if (h)
            r->spare = h->next;
        else
            h = xmalloc(sizeof(*h));
        memset(h, 0, offsetof(struct run_host, rec));
        h->r = r;
        h->deleg_seen[0] = h->deleg_error[0] = h->live_detail[0] = '\0';
        h->deleg = DELEG_UNKNOWN;
        h->live = LIVE_UNKNOWN;
        int rc = store_read_host(rd, &h->rec, name);
        if (rc != 0 || h->rec.next_action == 0) {
            /* Removed meanwhile (or unreadable: named in the log, never guessed at). */
            if (rc && rc != CF_ENOTFOUND) {
                log_event(LOG_ERROR, "host_unreadable", "host", name, "error", cf_strerror(rc),
                          NULL);
                count_error(r->sum, rc);
            }
            h->next = r->spare;
            r->spare = h;
            r->done++;
            continue;
        }
        r->active++;
        if (r->active > r->max_active)
            r->max_active = r->active;
        r->sum->taken++;
        h->t_start_ns = cf_mono_ns();
        h->step = RH_CHECK;
        h->pending = 2;
        dns_check_delegation(r->dc, h->rec.name, h->rec.target, on_deleg, h);
        dns_check_liveness(r->dc, h->rec.name, on_live, h);
    }
    store_read_end(rd);
    if (r->done == r->nnames)
        teardown(r);
}

/* ---- the run's own life -------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

/* teardown_now frees the clients once every host is done; their handles' closing ends uv_run. */
static void teardown_now(struct run *r)
{
    if (r->torn_down)
        return;
    r->torn_down = 1;
    uv_close((uv_handle_t *)&r->finish_timer, on_timer_closed);
    uv_close((uv_handle_t *)&r->rl_timer, on_timer_closed);
    uv_timer_stop(&r->deadline_timer);
    uv_close((uv_handle_t *)&r->deadline_timer, on_timer_closed);
    if (!uv_is_closing((uv_handle_t *)&r->progress_timer))
        uv_close((uv_handle_t *)&r->progress_timer, on_timer_closed);
    if (r->client) {
        struct acme_client_stats cs;
        acme_client_get_stats(r->client, &cs);
        r->sum->acme_posts = cs.posts;
        r->sum->bad_nonce_retries = cs.bad_nonce_retries;
        r->sum->acme_paced = cs.paced;
        r->sum->acme_pace_wait_ms = cs.pace_wait_us / 1000;
        r->sum->acme_429 = cs.rate_limited;
    }
    acme_client_free(r->client);
    r->client = NULL;
    if (r->dc) {
        struct dns_checker_stats ds;
        dns_checker_stats(r->dc, &ds);
        r->sum->dns_queries = ds.queries;
    }
    dns_checker_free(r->dc);
    r->dc = NULL;
    http_client_free(r->http);
    r->http = NULL;
    authsrv_free(r->dns);
    r->dns = NULL;
    rfc2136_free(r->rfc2136);
    r->rfc2136 = NULL;
    if (r->commit) {
        struct committer_stats cs;
        /* The last records (and TXT withdrawals) are committed here. */
        if (committer_flush(r->commit) != 0)
            r->store_errors++;
        committer_get_stats(r->commit, &cs);
        r->sum->commits = cs.commits;
        if (cs.failures)
            r->store_errors++;
        committer_free(r->commit);
        r->commit = NULL;
    }
}

/* The last withdrawals at an RFC 2136 primary get this long to be answered. */
#define RUN_DRAIN_MS 10000

static void on_finish(uv_timer_t *t)
{
    struct run *r = t->data;
    /*
     * Withdrawals queued at the primary are sent on a later loop turn:
     * wait for them (bounded) rather than cancel them by freeing it.
     */
    if (r->rfc2136 && rfc2136_pending(r->rfc2136) > 0) {
        if (!r->drain_since_ns)
            r->drain_since_ns = cf_mono_ns();
        if (cf_mono_ns() - r->drain_since_ns < RUN_DRAIN_MS * 1000000LL) {
            uv_timer_start(&r->finish_timer, on_finish, 20, 0);
            return;
        }
        log_event(LOG_WARN, "rfc2136_drain_timeout", "server", r->o->cfg->rfc2136_server, NULL);
    }
    teardown_now(r);
}

/*
 * teardown ends the run on the next loop turn: the last host is often done
 * inside a callback of the DNS checker or the ACME client, which must not
 * be freed under its own feet.
 */
static void teardown(struct run *r)
{
    if (!r->torn_down && !uv_is_active((uv_handle_t *)&r->finish_timer))
        uv_timer_start(&r->finish_timer, on_finish, 0, 0);
}

static void progress(struct run *r, int final)
{
    double el = (double)(cf_mono_ns() - r->t0_ns) / 1e9;
    double rate = el > 0 ? (double)r->done / el : 0;
    char eta[32] = "-";
    if (!r->o->progress)
        return;
    if (rate > 0 && r->done < r->nnames) {
        double left = (double)(r->nnames - r->done) / rate;
        str_fmt(eta, sizeof(eta), "%dm%02ds", (int)(left / 60), (int)left % 60);
    }
    fprintf(r->o->progress,
            "\r\033[K%zu/%zu hosts  %.1f/s  ETA %s  issued %zu  renewed %zu  failed %zu  "
            "orders in flight %zu",
            r->done, r->nnames, rate, eta, r->sum->issued, r->sum->renewed, r->sum->failed,
            r->orders_active);
    if (final)
        fputc('\n', r->o->progress);
    fflush(r->o->progress);
}

static void on_progress(uv_timer_t *t)
{
    struct run *r = t->data;
    if (r->o->stats_json)
        buf_printf(&r->timeline, "%s[%.1f,%zu,%zu,%zu,%zu]", r->timeline.len ? "," : "",
                   (double)(cf_mono_ns() - r->t0_ns) / 1e9, r->done, r->active, r->orders_active,
                   r->sum->issued + r->sum->renewed);
    progress(r, 0);
}

/*
 * on_deadline stops admitting, cancels the orders in flight (they stay
 * pending in the store: the next run resumes them) and gives what is in
 * flight a grace period before it is abandoned.
 */
static void on_deadline(uv_timer_t *t)
{
    struct run *r = t->data;
    if (!r->stopping) {
        r->stopping = 1;
        log_event(LOG_WARN, "run_deadline", "done", "", NULL);
        start_more(r); /* defers the hosts not started */
        if (r->torn_down)
            return;
        start_orders(r); /* defers the queued ones */
        if (r->rlq)
            uv_timer_start(&r->rl_timer, on_rl_timer, 0, 0); /* and those waiting for tokens */
        if (r->torn_down)
            return;
        /*
         * Orders in flight end with CF_ECANCELED once their request comes
         * back (bounded by the HTTP timeout); cancel never calls back inside.
         */
        for (struct run_host *h = r->ordering; h; h = h->onext)
            acme_order_cancel(h->job);
        uv_timer_start(&r->deadline_timer, on_deadline, RUN_GRACE_MS, 0);
        return;
    }
    /* The grace period is over: end whatever did not come back. */
    set_fatal(r, CF_ETIMEOUT, "requests still in flight %d s after the deadline",
              RUN_GRACE_MS / 1000);
    r->sum->deferred += r->nnames - r->done;
    r->done = r->nnames;
    teardown(r);
}

/*
 * on_commit_done learns how the group commit of the latest iteration went.
 * Certificates count as issued only once stored. A failed commit (the store
 * full and its map at its cap, or broken) ends the run as the deadline does:
 * nothing new starts, since every later certificate would be lost with the
 * CA's work, the orders in flight are canceled (their pending orders stay
 * stored for the next run to resume) and the fatal error names the store.
 */
static void on_commit_done(void *arg, int rc)
{
    struct run *r = arg;
    r->commit_watched = 0;
    if (rc == 0) {
        r->sum->issued += r->pend_issued;
        r->sum->renewed += r->pend_renewed;
        r->pend_issued = r->pend_renewed = 0;
        /* Records queued by the other waiters of this commit go with the next one. */
        if (!r->torn_down && store_batch_count(committer_batch(r->commit)))
            watch_commit(r);
        return;
    }
    /* Not stored: the next run resumes these orders and downloads the certificates again. */
    r->sum->deferred += r->pend_issued + r->pend_renewed;
    r->pend_issued = r->pend_renewed = 0;
    r->store_errors++;
    set_fatal(r, rc, "cannot commit to the store %s: %s", store_path(r->o->st), cf_strerror(rc));
    if (r->stopping || r->torn_down)
        return;
    r->stopping = 1;
    start_more(r); /* defers the hosts not started */
    if (r->torn_down)
        return;
    start_orders(r); /* defers the queued ones */
    if (r->torn_down)
        return;
    for (struct run_host *h = r->ordering; h; h = h->onext)
        acme_order_cancel(h->job);
    uv_timer_start(&r->deadline_timer, on_deadline, RUN_GRACE_MS, 0);
}

/* ---- setup ------------------------------------------------------------------------ */

static void on_account(void *arg, int err, const char *detail)
{
    struct run *r = arg;
    if (err) {
        set_fatal(r, err, "the ACME account at %s: %s", r->o->cfg->directory, detail);
        r->done = r->nnames;
        teardown(r);
        return;
    }
    const char *url = acme_client_account_url(r->client);
    if (strcmp(url, r->account_url) != 0) {
        str_copy(r->account_url, sizeof(r->account_url), url);
        store_batch_put(committer_batch(r->commit), STORE_DB_ACCOUNT, "url", 3, url, strlen(url));
        log_event(LOG_INFO, "account_ready", "url", url, "detail", detail, NULL);
    }
    r->started = 1;
    start_more(r);
    if (r->nnames == 0)
        teardown(r);
}

struct collect {
    char **names;
    size_t n, cap, limit, due;
};

static int collect_cb(void *ctx, const char *name, int64_t due)
{
    struct collect *c = ctx;
    (void)due;
    c->due++;
    if (c->limit && c->n >= c->limit)
        return 0; /* keep counting what is due */
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->names = xrealloc(c->names, c->cap * sizeof(char *));
    }
    c->names[c->n++] = xstrdup(name);
    return 0;
}

/* load_account reads the account key and URL, or makes and stores a key. */
static int load_account(struct run *r)
{
    struct buf pem, url;
    int rc;
    buf_init(&pem);
    buf_init(&url);
    rc = store_get(r->o->st, STORE_DB_ACCOUNT, "key", 3, &pem);
    if (rc == 0) {
        rc = crypto_key_from_pem(&r->account_key, pem.data, pem.len);
        if (rc)
            set_fatal(r, rc, "the account key stored in %s does not load", store_path(r->o->st));
    } else if (rc == CF_ENOTFOUND) {
        rc = crypto_key_generate(&r->account_key, CRYPTO_KEY_EC_P256);
        if (rc == 0)
            rc = crypto_key_to_pem(r->account_key, &pem);
        if (rc == 0) {
            /* Stored before the CA hears of it: a crash never orphans an account. */
            struct store_batch *b = store_batch_new(r->o->st);
            store_batch_put(b, STORE_DB_ACCOUNT, "key", 3, pem.data, pem.len);
            rc = store_batch_commit(b);
            store_batch_free(b);
        }
        if (rc)
            set_fatal(r, rc, "cannot make and store an account key: %s", cf_strerror(rc));
    } else {
        set_fatal(r, rc, "reading the account key from %s: %s", store_path(r->o->st),
                  cf_strerror(rc));
    }
    if (rc == 0 && store_get(r->o->st, STORE_DB_ACCOUNT, "url", 3, &url) == 0) {
        buf_putc(&url, '\0');
        str_copy(r->account_url, sizeof(r->account_url), url.data);
    }
    if (pem.data)
        memset(pem.data, 0, pem.len);
    buf_cleanup(&pem);
    buf_cleanup(&url);
    return rc;
}

static int limits_load_cb(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct run *r = ctx;
    if (rl_table_load(r->rl, key, klen, val, vlen) != 0)
        log_event(LOG_WARN, "rate_limit_state_ignored", "reason", "unreadable bucket", NULL);
    return 0;
}

static void limits_save_cb(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    store_batch_put(ctx, STORE_DB_LIMITS, key, klen, val, vlen);
}

/* limits_save replaces the stored bucket state by the table's (one transaction). */
static int limits_save(struct run *r)
{
    struct store_batch *b = store_batch_new(r->o->st);
    store_batch_drop(b, STORE_DB_LIMITS);
    rl_table_encode_each(r->rl, run_now_ms(r), limits_save_cb, b);
    int rc = store_batch_commit(b);
    store_batch_free(b);
    return rc;
}

/*
 * load_eab reads the EAB MAC key file (the CA's base64url text; surrounding
 * whitespace ignored) into key. Returns 0, or sets the fatal error naming the
 * file.
 */
static int load_eab(struct run *r, struct buf *key)
{
    const char *path = r->o->cfg->eab_hmac_file;
    char text[1024];
    size_t n;
    FILE *f = fopen(path, "r");
    if (!f) {
        set_fatal(r, CF_ECONFIG, "the EAB MAC key file %s cannot be read", path);
        return CF_ECONFIG;
    }
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *p = text;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    int rc = n ? crypto_b64url_decode(key, p, n) : CF_EPARSE;
    memset(text, 0, sizeof(text));
    if (rc || key->len == 0) {
        set_fatal(r, CF_ECONFIG, "the EAB MAC key in %s is not base64url", path);
        return CF_ECONFIG;
    }
    return 0;
}

/* setup_network starts the clients of a real run (not a dry run). */
static int setup_network(struct run *r)
{
    const struct config *cfg = r->o->cfg;
    int rc;
    if (!cfg->directory[0]) {
        set_fatal(r, CF_ECONFIG, "no ACME directory is configured (certfleet init --directory)");
        return CF_ECONFIG;
    }
    rc = crypto_key_type_parse(&r->key_type, cfg->key_type[0] ? cfg->key_type : "ec256");
    if (rc) {
        set_fatal(r, CF_ECONFIG, "key type '%s' in config.json is unknown", cfg->key_type);
        return CF_ECONFIG;
    }
    rc = committer_new(&r->commit, &r->loop, r->o->st);
    if (rc) {
        set_fatal(r, rc, "the store %s: %s", store_path(r->o->st), cf_strerror(rc));
        return rc;
    }
    if ((rc = load_account(r)) != 0)
        return rc;
    /*
     * The validation zone is served from this process while it runs, unless
     * TXT records go to an external primary (RFC 2136) or `certfleet
     * serve-dns` already serves this store at the address.
     */
    if (cfg->rfc2136_server[0]) {
        struct rfc2136_opts uo;
        const char *why = NULL;
        memset(&uo, 0, sizeof(uo));
        uo.server = cfg->rfc2136_server;
        uo.zone = cfg->validation_zone;
        uo.tsig_key_file = cfg->tsig_key_file;
        rc = rfc2136_new(&r->rfc2136, &r->loop, &uo, &why);
        if (rc) {
            set_fatal(r, rc == CF_ECONFIG ? CF_ECONFIG : rc,
                      "RFC 2136 publishing to %s (key file %s): %s", cfg->rfc2136_server,
                      cfg->tsig_key_file, why ? why : cf_strerror(rc));
            return rc;
        }
    } else if (cfg->dns_listen[0]) {
        static struct authsrv_conf_space space;
        struct authsrv_opts ao;
        authsrv_opts_from_config(&ao, &space, cfg, NULL);
        rc = authsrv_new(&r->dns, &r->loop, r->o->st, &ao);
        if (rc == UV_EADDRINUSE) {
            log_event(LOG_INFO, "dns_listen_in_use", "listen", cfg->dns_listen, "assume",
                      "certfleet serve-dns serves this store", NULL);
            r->dns = NULL;
        } else if (rc) {
            set_fatal(r, rc, "the validation zone's server cannot listen on %s: %s",
                      cfg->dns_listen, cf_strerror(rc));
            return rc;
        }
    }
    struct http_opts ho;
    memset(&ho, 0, sizeof(ho));
    ho.ca_bundle = cfg->ca_bundle[0] ? cfg->ca_bundle : NULL;
    r->http = http_client_new(&r->loop, &ho);
    if (!r->http) {
        set_fatal(r, CF_EHTTP, "cannot set up the HTTP client (CA bundle '%s')", cfg->ca_bundle);
        return CF_EHTTP;
    }
    struct acme_client_opts co;
    memset(&co, 0, sizeof(co));
    co.directory_url = cfg->directory;
    co.contact_email = cfg->email;
    co.account_key = r->account_key;
    co.account_url = r->account_url;
    co.pace = rl_table_profile(r->rl); /* the endpoints' request rates of the run's profile */
    struct buf eab;
    buf_init(&eab);
    if (cfg->eab_kid[0] && !r->account_url[0]) {
        if ((rc = load_eab(r, &eab)) != 0) {
            buf_cleanup(&eab);
            return rc;
        }
        co.eab_kid = cfg->eab_kid;
        co.eab_key = eab.data;
        co.eab_key_len = eab.len;
    }
    rc = acme_client_new(&r->client, &r->loop, r->http, &co);
    if (eab.data)
        memset(eab.data, 0, eab.len);
    buf_cleanup(&eab);
    if (rc == 0)
        rc = acme_client_start(r->client, on_account, r);
    if (rc)
        set_fatal(r, rc, "cannot start the ACME client for %s: %s", cfg->directory,
                  cf_strerror(rc));
    return rc;
}

static void cpu_seconds(double *out)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *out = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void run_record(struct run *r)
{
    struct buf b;
    unsigned char key[8];
    uint64_t t = (uint64_t)r->sum->started_at;
    struct run_summary *s = r->sum;
    for (int i = 0; i < 8; i++)
        key[i] = (unsigned char)(t >> (56 - 8 * i));
    buf_init(&b);
    buf_printf(&b,
               "{\"started_at\":%lld,\"elapsed_s\":%.3f,\"due\":%zu,\"taken\":%zu,"
               "\"issued\":%zu,\"renewed\":%zu,\"failed\":%zu,\"rate_limited\":%zu,"
               "\"deferred\":%zu,\"fatal\":\"%s\"}",
               (long long)s->started_at, s->elapsed_s, s->due, s->taken, s->issued, s->renewed,
               s->failed, s->rate_limited, s->deferred, s->fatal ? cf_errname(s->fatal) : "");
    struct store_batch *bt = store_batch_new(r->o->st);
    store_batch_put(bt, STORE_DB_RUNS, key, sizeof(key), b.data, b.len);
    if (store_batch_commit(bt) != 0)
        r->store_errors++;
    store_batch_free(bt);
    buf_cleanup(&b);
}

/* write_stats writes the --stats-json report (see run.h). */
static int write_stats(struct run *r)
{
    const struct run_summary *s = r->sum;
    struct buf b;
    FILE *f;
    int rc = 0;
    buf_init(&b);
    buf_printf(&b,
               "{\"elapsed_s\":%.3f,\"due\":%zu,\"taken\":%zu,\"checked\":%zu,\"issued\":%zu,"
               "\"renewed\":%zu,\"failed\":%zu,\"rate_limited\":%zu,\"deferred\":%zu,"
               "\"cpu_s\":%.3f,\"acme_posts\":%llu,\"bad_nonce_retries\":%llu,"
               "\"dns_queries\":%llu,\"commits\":%llu,\"max_in_flight\":%zu,"
               "\"max_orders_in_flight\":%zu,\"acme_paced\":%llu,\"acme_pace_wait_ms\":%llu,"
               "\"acme_429\":%llu,\"fatal\":",
               s->elapsed_s, s->due, s->taken, s->checked, s->issued, s->renewed, s->failed,
               s->rate_limited, s->deferred, s->cpu_s, (unsigned long long)s->acme_posts,
               (unsigned long long)s->bad_nonce_retries, (unsigned long long)s->dns_queries,
               (unsigned long long)s->commits, r->max_active, r->max_orders,
               (unsigned long long)s->acme_paced, (unsigned long long)s->acme_pace_wait_ms,
               (unsigned long long)s->acme_429);
    buf_json_string(&b, s->fatal_text, strlen(s->fatal_text));
    buf_puts(&b, ",\"errors\":{");
    for (size_t i = 0; i < s->n_errors; i++)
        buf_printf(&b, "%s\"%s\":%zu", i ? "," : "", cf_errname(s->errors[i].code),
                   s->errors[i].count);
    buf_puts(&b, "},\"stages\":{\"dns_check\":");
    run_hist_json(&b, &r->h_check);
    buf_puts(&b, ",\"order_queue\":");
    run_hist_json(&b, &r->h_queue);
    buf_puts(&b, ",\"order_total\":");
    run_hist_json(&b, &r->h_order);
    for (int i = 0; i < ACME_ORDER__COUNT; i++) {
        if (!r->h_stage[i].n)
            continue;
        buf_printf(&b, ",\"order_%s\":", acme_order_state_name((enum acme_order_state)i));
        run_hist_json(&b, &r->h_stage[i]);
    }
    buf_puts(&b, "},\"timeline\":[");
    buf_append(&b, r->timeline.data ? r->timeline.data : "", r->timeline.len);
    buf_puts(&b, "]}\n");
    f = fopen(r->o->stats_json, "w");
    if (!f || fwrite(b.data, 1, b.len, f) != b.len)
        rc = CF_ESTORE;
    if (f && fclose(f) != 0)
        rc = CF_ESTORE;
    buf_cleanup(&b);
    return rc;
}

int run_fleet(const struct run_opts *opts, struct run_summary *out)
{
    struct run r;
    struct run_opts o = *opts;
    struct collect due = {NULL, 0, 0, 0, 0};
    struct rl_profile prof;
    char perr[256];
    double cpu0, cpu1;
    int rc;
    memset(out, 0, sizeof(*out));
    memset(&r, 0, sizeof(r));
    if (!o.concurrency)
        o.concurrency = RUN_CONCURRENCY;
    if (!o.order_concurrency)
        o.order_concurrency = RUN_ORDER_CONCURRENCY;
    if (!o.deadline_ms)
        o.deadline_ms = RUN_DEADLINE_MS;
    if (!o.order_deadline_ms)
        o.order_deadline_ms = RUN_ORDER_DEADLINE_MS;
    if (o.order_deadline_ms > o.deadline_ms)
        o.order_deadline_ms = o.deadline_ms;
    r.o = &o;
    r.sum = out;
    r.gate = acme_order_gate_new(o.new_order_concurrency ? (int)o.new_order_concurrency : 1);
    cpu_seconds(&cpu0);
    r.t0_ns = cf_mono_ns();
    r.clock0_ms = o.now ? o.now * 1000 : cf_wall_ms();
    out->started_at = run_now(&r);

    if (o.rate_limits && o.rate_limits[0])
        rc = rl_profile_parse(&prof, o.rate_limits, perr, sizeof(perr));
    else
        rc = rl_profile_for_directory(&prof, o.cfg->directory);
    if (rc) {
        set_fatal(&r, CF_ECONFIG, "rate limits: %s", perr);
        return CF_ECONFIG;
    }
    r.rl = rl_table_new(&prof);
    if (!r.rl) {
        set_fatal(&r, CF_ECONFIG, "rate limits: the profile is not valid");
        return CF_ECONFIG;
    }
    /* Admission comes before the newOrder reaches the CA, and by varying times (ratelimit.h). */
    rl_table_set_admit_jitter(r.rl, RUN_ADMIT_JITTER_MS);
    if ((rc = store_db_iter(o.st, STORE_DB_LIMITS, limits_load_cb, &r)) != 0) {
        set_fatal(&r, rc, "reading rate-limit state from %s: %s", store_path(o.st),
                  cf_strerror(rc));
        goto out_free;
    }

    due.limit = o.limit;
    rc = store_due_iter(o.st, out->started_at, collect_cb, &due);
    if (rc) {
        set_fatal(&r, rc, "reading the due index of %s: %s", store_path(o.st), cf_strerror(rc));
        goto out_free;
    }
    out->due = due.due;
    r.names = due.names;
    r.nnames = due.n;
    str_fmt(perr, sizeof(perr), "%zu", due.due);
    log_event(LOG_INFO, "run_start", "due", perr, "dry_run", o.dry_run ? "true" : "false", NULL);

    uv_loop_init(&r.loop);
    uv_timer_init(&r.loop, &r.deadline_timer);
    uv_timer_init(&r.loop, &r.progress_timer);
    uv_timer_init(&r.loop, &r.finish_timer);
    uv_timer_init(&r.loop, &r.rl_timer);
    r.rl_timer.data = &r;
    r.deadline_timer.data = r.progress_timer.data = r.finish_timer.data = &r;
    uv_timer_start(&r.deadline_timer, on_deadline, (uint64_t)o.deadline_ms, 0);
    buf_init(&r.timeline);
    if (o.progress || o.stats_json)
        uv_timer_start(&r.progress_timer, on_progress, RUN_PROGRESS_MS, RUN_PROGRESS_MS);

    const char *targets[CONFIG_MAX_CDN_TARGETS];
    for (size_t i = 0; i < o.cfg->n_cdn_targets; i++)
        targets[i] = o.cfg->cdn_targets[i];
    struct dns_checker_opts dopts = {
        .resolver = o.cfg->resolver[0] ? o.cfg->resolver : NULL,
        .cdn_targets = targets,
        .n_cdn_targets = o.cfg->n_cdn_targets,
        .auth_port = o.cfg->dns_auth_port,
        .max_checks = o.concurrency * 2 + o.order_concurrency,
    };
    rc = dns_checker_new(&r.dc, &r.loop, &dopts);
    if (rc)
        set_fatal(&r, rc, "cannot set up DNS (resolver '%s'): %s", o.cfg->resolver,
                  cf_strerror(rc));
    else if (!o.dry_run)
        rc = setup_network(&r);
    if (rc) {
        teardown(&r);
    } else if (o.dry_run) {
        r.started = 1;
        if (r.nnames == 0)
            teardown(&r);
        else
            start_more(&r);
    }
    uv_run(&r.loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&r.loop) != 0)
        log_event(LOG_WARN, "run_loop_busy", "detail", "handles left open at the end", NULL);
    progress(&r, 1);

    if (!o.dry_run && !out->fatal && limits_save(&r) != 0)
        r.store_errors++;
    out->elapsed_s = (double)(cf_mono_ns() - r.t0_ns) / 1e9;
    cpu_seconds(&cpu1);
    out->cpu_s = cpu1 - cpu0;
    if (!o.dry_run && r.started)
        run_record(&r);
    if (o.stats_json && write_stats(&r) != 0)
        log_event(LOG_WARN, "stats_not_written", "path", o.stats_json, NULL);
    if (r.store_errors && !out->fatal)
        set_fatal(&r, CF_ESTORE, "changes could not be committed to %s", store_path(o.st));
    str_fmt(perr, sizeof(perr), "%.3f", out->elapsed_s);
    log_event(LOG_INFO, "run_end", "elapsed", perr, "fatal", out->fatal ? out->fatal_text : "",
              NULL);
    rc = out->fatal;
out_free:
    while (r.spare) {
        struct run_host *h = r.spare;
        r.spare = h->next;
        free(h);
    }
    for (size_t i = 0; i < due.n; i++)
        free(due.names[i]);
    free(due.names);
    buf_cleanup(&r.timeline);
    crypto_key_free(r.account_key);
    rl_table_free(r.rl);
    sched_leveler_free(r.level);
    acme_order_gate_free(r.gate);
    return out->fatal ? out->fatal : rc;
}
