/*
 * order.c - the per-host issuance pipeline (see order.h).
 *
 * One thing is in flight at a time per job (j->busy): a request to the CA
 * (j->op), or a DNS check, a group commit or a key generation (j->wait); the
 * steps of RFC 8555 §7.4 depend on each other. Waiting between polls, checks
 * and retries is the job's timer; a second timer carries the deadline (and
 * cancel). When the deadline fires while something is in flight, the
 * request is abandoned (acme_client_abandon: its callback never runs) and
 * the wait is detached (its struct order_wait outlives the job and is freed
 * by its own callback, which always comes: commits run every loop turn, DNS
 * checks are bounded and run at dns_checker_free, pool work always
 * completes). So the job can end at once, and its memory goes in the close
 * callback of its last timer, after the caller's callback ran.
 *
 * Every request is a "step": its URL, payload and callback are kept so a
 * transient failure (5xx, transport error, timeout, a badNonce the client
 * gave up on) is sent again after a backoff, ACME_ORDER_STEP_TRIES times
 * at most. The CA's JSON is parsed into short-lived heap structs; the job
 * keeps only the URLs it needs, so thousands of jobs stay small.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "commit.h"
#include "err.h"
#include "hostname.h"
#include "log.h"
#include "order.h"
#include "timeutil.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Finalize answered orderNotReady: re-read the order at most this often before giving up. */
#define RESYNC_MAX 3

struct acme_order_job;

/*
 * struct order_wait is one DNS check, group commit or key generation in
 * flight. It is its callback's argument, not the job, so that a job which
 * ended meanwhile (deadline, cancel) only detaches it (j = NULL).
 */
struct order_wait {
    struct acme_order_job *j; /* NULL once the job ended without it */
    /* Commits: what comes next. */
    void (*then)(struct acme_order_job *j, int status);
    uv_work_t work; /* key generation on the pool */
    enum crypto_key_type type;
    struct crypto_key *key; /* made on the pool; owned here until taken */
    int rc;
};

struct acme_order_job {
    uv_timer_t timer;    /* first step, waits between polls, checks and retries */
    uv_timer_t deadline; /* the job's deadline; fired at once by a cancel */
    int open_handles;    /* the job is freed when both timers have closed */
    enum acme_order_state state;
    int64_t state_since_ns;               /* monotonic time of the last transition */
    uint64_t stage_ns[ACME_ORDER__COUNT]; /* time spent in each state */
    struct acme_order_opts o;
    acme_order_cb cb;
    void *cb_arg;
    char host[HOSTNAME_MAX + 1];
    char zone[HOSTNAME_MAX + 1];
    char target[HOSTNAME_MAX + 1]; /* owner of the TXT record */
    char replaces[ACME_ARI_CERT_ID_MAX + 1];
    int busy;                /* a request (op) or a wait is in flight */
    struct acme_op *op;      /* the request in flight */
    struct order_wait *wait; /* the check, commit or key generation in flight */
    int canceled;            /* acme_order_cancel was called */
    int published;           /* txt_value is in the store (or queued) */
    int finished;            /* the callback ran (or is running) */
    int gate_held;           /* this job counts against o.gate */
    int gate_queued;         /* waiting in o.gate's line */
    struct acme_order_job *gate_next;
    int resumed;               /* going on with a stored pending order */
    int sent_replaces;         /* the last newOrder carried "replaces" */
    int replaces_dropped;      /* the CA said alreadyReplaced: newOrder without it */
    int key_stored;            /* cert_key is durable in the pending order */
    int resyncs;               /* orderNotReady answers to finalize */
    const char *afresh_why;    /* the stored order is dropped for this reason (static text) */
    int64_t sweep_retry_after; /* the stored order's Retry-After, for go_on after the sweep */
    char txt_value[128];
    int tries;             /* propagation checks made for the current authorization */
    int64_t poll_until_ms; /* end of the current poll phase (wall clock) */
    int poll_delay_ms;     /* the wait before the poll armed or in flight; 0: none yet */
    int poll_first;        /* that poll is the phase's first, after a learnt delay */
    enum acme_poll_kind poll_kind;
    int64_t deadline_ms; /* end of the job (wall clock) */
    /* The step in progress: sent again as it is on a transient failure. */
    char *url; /* heap strings (NULL: none) keep a job small: thousands are in flight */
    char *payload;
    acme_client_post_cb step_cb;
    int step_tries;
    int retrying; /* the timer sends the step again */
    /* What the job keeps of the order (RFC 8555 §7.1.3). */
    char *order_url;
    enum acme_status ostatus;
    size_t nauthz;
    char **authz; /* nauthz URLs */
    char *finalize_url, *cert_url;
    int64_t expires;
    /* ...and of the authorization being worked on (§7.1.4, §8.4). */
    size_t authz_i;
    char *ch_url;
    char *ch_token;
    struct crypto_key *cert_key;
    struct buf key_pem; /* cert_key as PKCS#8 PEM; wiped before it is freed */
    struct buf chain;
    struct crypto_cert_info *leaf; /* chain's leaf, once verify parsed it */
    /* The outcome. */
    int error;
    enum acme_order_state failed_in;
    char *error_text;
    int64_t retry_after;
    int ca_paused;
    int terminal;
    char problem_type[128];
};

const char *acme_order_state_name(enum acme_order_state s)
{
    switch (s) {
    case ACME_ORDER_RESUME:
        return "resume";
    case ACME_ORDER_NEW_ORDER:
        return "new_order";
    case ACME_ORDER_STORE_ORDER:
        return "store_order";
    case ACME_ORDER_AUTHZ:
        return "authz";
    case ACME_ORDER_PUBLISH:
        return "publish";
    case ACME_ORDER_PROPAGATE:
        return "propagate";
    case ACME_ORDER_RESPOND:
        return "respond";
    case ACME_ORDER_POLL_AUTHZ:
        return "poll_authz";
    case ACME_ORDER_READY:
        return "ready";
    case ACME_ORDER_KEYGEN:
        return "keygen";
    case ACME_ORDER_STORE_KEY:
        return "store_key";
    case ACME_ORDER_FINALIZE:
        return "finalize";
    case ACME_ORDER_POLL_ORDER:
        return "poll_order";
    case ACME_ORDER_DOWNLOAD:
        return "download";
    case ACME_ORDER_VERIFY:
        return "verify";
    case ACME_ORDER_DONE:
        return "done";
    case ACME_ORDER_FAILED:
        return "failed";
    case ACME_ORDER__COUNT:
        break;
    }
    return "unknown";
}

enum acme_order_state acme_order_state_of(const struct acme_order_job *j)
{
    return j->state;
}

/* acme_order_set_state is the one place the state changes; it logs every transition. */
static void acme_order_set_state(struct acme_order_job *j, enum acme_order_state s)
{
    int64_t now = cf_mono_ns();
    if (j->state < ACME_ORDER__COUNT && j->state_since_ns)
        j->stage_ns[j->state] += (uint64_t)(now - j->state_since_ns);
    j->state_since_ns = now;
    log_event(LOG_DEBUG, "acme_order_state", "host", j->host, "from",
              acme_order_state_name(j->state), "to", acme_order_state_name(s), NULL);
    j->state = s;
}

static void free_order_view(struct acme_order_job *j)
{
    for (size_t i = 0; i < j->nauthz; i++)
        free(j->authz[i]);
    free(j->authz);
    free(j->finalize_url);
    free(j->cert_url);
    j->authz = NULL;
    j->nauthz = 0;
    j->finalize_url = j->cert_url = NULL;
}

/* set_str replaces the heap string *dst with a copy of src (NULL or "": none). */
static void set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src && src[0] ? xstrdup(src) : NULL;
}

/* nz is s, or "" for none. */
static const char *nz(const char *s)
{
    return s ? s : "";
}

/* forget_key drops the certificate key and wipes its PEM. */
static void forget_key(struct acme_order_job *j)
{
    crypto_key_free(j->cert_key);
    j->cert_key = NULL;
    j->key_stored = 0;
    if (j->key_pem.data)
        memset(j->key_pem.data, 0, j->key_pem.len);
    buf_reset(&j->key_pem);
}

static void on_handle_close(uv_handle_t *h)
{
    struct acme_order_job *j = h->data;
    if (--j->open_handles > 0)
        return;
    forget_key(j);
    buf_cleanup(&j->key_pem);
    buf_cleanup(&j->chain);
    free(j->leaf);
    free_order_view(j);
    free(j->payload);
    free(j->url);
    free(j->order_url);
    free(j->ch_url);
    free(j->ch_token);
    free(j->error_text);
    free(j);
}

/*
 * drop_inflight lets go of what is in flight: the request is abandoned
 * (its callback never runs), a wait detached (its callback frees it).
 */
static void drop_inflight(struct acme_order_job *j)
{
    if (j->op) {
        acme_client_abandon(j->o.client, j->op);
        j->op = NULL;
    }
    if (j->wait) {
        j->wait->j = NULL;
        j->wait = NULL;
    }
    j->busy = 0;
}

/*
 * withdraw removes the published TXT value. A failure is logged, not
 * reported: the certificate is what the caller waits for, and a stale TXT
 * value is harmless (the next publish for the host adds to the set).
 */
static void withdraw(struct acme_order_job *j)
{
    if (!j->published)
        return;
    if (j->o.rfc2136)
        /* RFC 2136 §2.5.4; a failure is logged by the provisioner, and harmless. */
        rfc2136_del_txt(j->o.rfc2136, j->target, j->txt_value, NULL, NULL);
    else
        /* Queued into this iteration's group commit; a failed commit is logged there. */
        store_batch_txt_del(committer_batch(j->o.commit), j->target, j->txt_value);
    j->published = 0;
}

/*
 * finish withdraws the TXT record, forgets the pending order when it is of
 * no further use, runs the callback once and closes the job.
 */
static void gate_unlink(struct acme_order_job *j);
static void gate_release(struct acme_order_job *j);

static void finish(struct acme_order_job *j)
{
    struct acme_order_result r;
    if (j->finished)
        return;
    j->finished = 1;
    uv_timer_stop(&j->timer);
    uv_timer_stop(&j->deadline);
    if (j->o.gate) {
        gate_unlink(j);
        gate_release(j);
    }
    drop_inflight(j);
    /*
     * Once the challenge was answered the CA may validate at any moment,
     * even after we stopped waiting (a deadline, a CA that froze): a job
     * ending for a transient reason leaves the value published, and the
     * run that resumes the order takes it over and withdraws it.
     */
    if (!(j->error && !j->terminal &&
          (j->state == ACME_ORDER_RESPOND || j->state == ACME_ORDER_POLL_AUTHZ ||
           j->failed_in == ACME_ORDER_RESPOND || j->failed_in == ACME_ORDER_POLL_AUTHZ)))
        withdraw(j);
    /*
     * Queued before the callback runs, so the caller's own changes (the
     * certificate, the host record) join the same commit: a crash cannot
     * leave the certificate stored and the order pending, nor the reverse.
     */
    if ((!j->error || j->terminal) && (j->order_url || j->o.resume))
        store_batch_del_pending(committer_batch(j->o.commit), j->host);
    memset(&r, 0, sizeof(r));
    r.host = j->host;
    r.order_url = nz(j->order_url);
    r.error = j->error;
    r.error_text = j->error ? nz(j->error_text) : "";
    r.failed_in = j->error ? j->failed_in : ACME_ORDER_DONE;
    r.retry_after = j->error ? j->retry_after : 0;
    r.ca_paused = j->ca_paused;
    r.problem_type = j->error ? j->problem_type : "";
    r.terminal = j->error ? j->terminal : 0;
    r.resumed = j->resumed;
    r.stage_ns = j->stage_ns;
    r.leaf = j->error ? NULL : j->leaf;
    if (!j->error) {
        r.chain_pem = j->chain.data;
        r.chain_len = j->chain.len;
        r.key_pem = j->key_pem.data;
        r.key_len = j->key_pem.len;
        log_event(LOG_INFO, "acme_order_done", "host", j->host, "order", nz(j->order_url),
                  "resumed", j->resumed ? "yes" : "no", NULL);
    } else {
        log_event(LOG_WARN, "acme_order_failed", "host", j->host, "state",
                  acme_order_state_name(j->failed_in), "error", nz(j->error_text), "terminal",
                  j->terminal ? "yes" : "no", NULL);
    }
    j->cb(j->cb_arg, &r);
    /* The key's PEM was only lent to the callback. */
    forget_key(j);
    uv_close((uv_handle_t *)&j->timer, on_handle_close);
    uv_close((uv_handle_t *)&j->deadline, on_handle_close);
}

static void fail(struct acme_order_job *j, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* fail records err and "<host>: <state> <url>: <text>", moves to FAILED and finishes. */
static void fail(struct acme_order_job *j, int err, const char *fmt, ...)
{
    char text[768], full[1024];
    va_list ap;
    if (j->finished)
        return;
    va_start(ap, fmt);
    str_vfmt(text, sizeof(text), fmt, ap);
    va_end(ap);
    j->error = err ? err : CF_EACME;
    j->failed_in = j->state;
    if (j->url)
        str_fmt(full, sizeof(full), "%s: %s %s: %s", j->host, acme_order_state_name(j->state),
                j->url, text);
    else
        str_fmt(full, sizeof(full), "%s: %s: %s", j->host, acme_order_state_name(j->state), text);
    set_str(&j->error_text, full);
    acme_order_set_state(j, ACME_ORDER_FAILED);
    finish(j);
}

/* fail_terminal is fail for verdicts that make the order useless (result.terminal). */
static void fail_terminal(struct acme_order_job *j, int err, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail_terminal(struct acme_order_job *j, int err, const char *type, const char *fmt, ...)
{
    char text[768];
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(text, sizeof(text), fmt, ap);
    va_end(ap);
    j->terminal = 1;
    if (type)
        str_copy(j->problem_type, sizeof(j->problem_type), type);
    fail(j, err, "%s", text);
}

/*
 * transient says whether a reply is worth sending again: no answer or a
 * transport failure (RFC 8555 does not make the CA's availability a
 * verdict), a server error (5xx, 503 with its Retry-After), or a badNonce
 * that the client's own retries did not get past (RFC 8555 §6.5).
 */
static int transient(const struct acme_client_reply *r)
{
    if (r->error == CF_ETIMEOUT || r->error == CF_EHTTP)
        return 1;
    if (r->status >= 500 && r->status <= 599)
        return 1;
    return r->problem && acme_problem_is(r->problem, "badNonce");
}

/*
 * fail_reply fails with what a CA reply says and classifies it: Let's
 * Encrypt's paused answer (ca_paused, terminal), a rate limit (CF_ERATELIMIT
 * with the Retry-After, RFC 8555 §6.6: the order is still good), another
 * 4xx (terminal: the CA refused this request for good), or a transient
 * failure whose retries ran out.
 */
static void fail_reply(struct acme_order_job *j, const struct acme_client_reply *r,
                       const char *what)
{
    int err = r->error;
    j->retry_after = r->retry_after;
    if (r->problem)
        str_copy(j->problem_type, sizeof(j->problem_type), r->problem->type);
    if (r->problem && acme_problem_is_paused(r->problem)) {
        j->ca_paused = 1;
        j->terminal = 1;
        err = CF_EACME;
    } else if (r->error == CF_ERATELIMIT || r->status == 429) {
        err = CF_ERATELIMIT;
    } else if (r->status >= 400 && r->status <= 499 && !transient(r)) {
        j->terminal = 1;
    }
    if (r->problem)
        fail(j, err, "%s: HTTP %d %s: %s", what, r->status, r->problem->type, r->problem->detail);
    else if (r->error)
        fail(j, err, "%s: HTTP %d: %s", what, r->status, r->error_text);
    else if (r->status >= 300 && r->status <= 399)
        /* The http client follows no redirect (DESIGN.md §6); say where it pointed. */
        fail(j, CF_EPROTO, "%s: unexpected HTTP %d redirect to %s (not followed)", what, r->status,
             r->location ? r->location : "nowhere");
    else
        fail(j, CF_EPROTO, "%s: unexpected HTTP %d", what, r->status);
}

/*
 * media_type_is returns 1 when the Content-Type value ct names the media
 * type want: type and subtype compared case-insensitively, parameters
 * (";charset=...") ignored (RFC 9110 §8.3.1). 0 for another type or none.
 */
static int media_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    if (!ct)
        return 0;
    ct += strspn(ct, " \t");
    if (strncasecmp(ct, want, n) != 0)
        return 0;
    ct += n;
    ct += strspn(ct, " \t");
    return *ct == '\0' || *ct == ';';
}

/*
 * check_ctype fails the job and returns -1 when r is not labelled want:
 * ACME objects are application/json (RFC 8555 §7.1), certificate chains
 * application/pem-certificate-chain (§7.4.2). A body labelled otherwise (an
 * HTML page from a proxy or a broken CA) is not read as one of them.
 */
static int check_ctype(struct acme_order_job *j, const struct acme_client_reply *r,
                       const char *want, int terminal)
{
    if (media_type_is(r->content_type, want))
        return 0;
    if (terminal)
        j->terminal = 1;
    fail(j, CF_EPROTO, "Content-Type %s, not %s", r->content_type ? r->content_type : "missing",
         want);
    return -1;
}

static void send_step(struct acme_order_job *j)
{
    j->step_tries++;
    j->busy = 1;
    int rc = acme_client_post_op(j->o.client, &j->op, nz(j->url), j->payload, j->step_cb, j);
    if (rc) {
        j->busy = 0;
        j->op = NULL;
        fail(j, rc, "cannot send: %s", cf_strerror(rc));
    }
}

/* step starts a request with its own budget of tries; payload "" is POST-as-GET (§6.3). */
static void step(struct acme_order_job *j, const char *url, const char *payload,
                 acme_client_post_cb cb)
{
    set_str(&j->url, url);
    free(j->payload);
    j->payload = xstrdup(payload);
    j->step_cb = cb;
    j->step_tries = 0;
    send_step(j);
}

/*
 * come_back is the first thing every callback of a request does: the job is
 * no longer busy. Returns 1 when the job was finished meanwhile.
 */
static int come_back(struct acme_order_job *j)
{
    j->busy = 0;
    j->op = NULL;
    if (j->canceled) {
        fail(j, CF_ECANCELED, "canceled");
        return 1;
    }
    return j->finished;
}

static void on_timer(uv_timer_t *t);

/*
 * retry_later arms the timer to send the step again when r is transient and
 * tries are left: after ACME_ORDER_BACKOFF_MS doubled per try, or the CA's
 * Retry-After (RFC 9110 §10.2.3, with 503 §15.6.4), capped at
 * ACME_ORDER_RETRY_AFTER_MAX_MS. The deadline still bounds the job. Returns
 * 1 when a retry is on its way.
 */
static int retry_later(struct acme_order_job *j, const struct acme_client_reply *r)
{
    char tries[16], delay_s[24];
    int64_t delay;
    if (!transient(r) || j->step_tries >= ACME_ORDER_STEP_TRIES)
        return 0;
    delay = (int64_t)ACME_ORDER_BACKOFF_MS << (j->step_tries - 1);
    if (r->retry_after > 0) {
        delay = r->retry_after * 1000 - cf_wall_ms();
        if (delay < 100)
            delay = 100;
    }
    if (delay > ACME_ORDER_RETRY_AFTER_MAX_MS)
        delay = ACME_ORDER_RETRY_AFTER_MAX_MS;
    str_fmt(tries, sizeof(tries), "%d", j->step_tries);
    str_fmt(delay_s, sizeof(delay_s), "%lld", (long long)delay);
    log_event(LOG_INFO, "acme_order_retry", "host", j->host, "state",
              acme_order_state_name(j->state), "url", nz(j->url), "try", tries, "delay_ms", delay_s,
              "error", r->problem ? r->problem->type : r->error_text, NULL);
    j->retrying = 1;
    uv_timer_start(&j->timer, on_timer, (uint64_t)delay, 0);
    return 1;
}

/* back is come_back and retry_later: returns 1 when the callback has nothing more to do. */
static int back(struct acme_order_job *j, const struct acme_client_reply *r)
{
    return come_back(j) || retry_later(j, r);
}

/*
 * start_polling begins a poll phase of kind k: the phase's budget starts
 * now and its first poll comes after the client's learnt delay (or the
 * CA's Retry-After), never at once: a CA does not validate or issue within
 * the round trip that asked it to.
 */
static void start_polling(struct acme_order_job *j, enum acme_poll_kind k)
{
    j->poll_until_ms = cf_wall_ms() + j->o.poll_max_ms;
    j->poll_kind = k;
    j->poll_delay_ms = 0;
    j->poll_first = 0;
}

/*
 * polled is the first thing a poll's answer does once it parsed: the first
 * poll of a phase tells the client how soon this CA was done (done: the
 * object left pending or processing).
 */
static void polled(struct acme_order_job *j, int done)
{
    if (!j->poll_first)
        return;
    j->poll_first = 0;
    acme_client_first_poll_seen(j->o.client, j->poll_kind, j->poll_delay_ms, done);
}

/*
 * wait_then arms the timer for the next poll: Retry-After when the CA gave
 * one (RFC 8555 §7.4, §8.2, never sooner than the configured interval);
 * else the client's learnt delay for a phase's first poll, then twice the
 * previous wait per poll up to the configured interval. Fails with a
 * timeout when that would pass the poll phase's end (a first poll is still
 * made, at the end).
 */
static void wait_then(struct acme_order_job *j, int64_t retry_after, const char *what)
{
    int64_t now = cf_wall_ms();
    int64_t delay;
    int first = j->poll_delay_ms == 0;
    j->poll_first = 0;
    if (retry_after > 0) {
        delay = retry_after * 1000 - now;
        if (delay < j->o.poll_interval_ms)
            delay = j->o.poll_interval_ms;
        if (delay > ACME_ORDER_RETRY_AFTER_MAX_MS)
            delay = ACME_ORDER_RETRY_AFTER_MAX_MS;
    } else if (first) {
        delay = acme_client_first_poll_ms(j->o.client, j->poll_kind, j->o.poll_interval_ms);
        j->poll_first = 1;
    } else {
        delay = 2 * (int64_t)j->poll_delay_ms;
        if (delay > j->o.poll_interval_ms)
            delay = j->o.poll_interval_ms;
    }
    if (now + delay > j->poll_until_ms) {
        if (!first) {
            fail(j, CF_ETIMEOUT, "%s after %d ms", what, j->o.poll_max_ms);
            return;
        }
        delay = j->poll_until_ms > now ? j->poll_until_ms - now : 0;
        j->poll_first = 0;
    }
    j->poll_delay_ms = delay > 0 ? (int)delay : 1;
    uv_timer_start(&j->timer, on_timer, (uint64_t)delay, 0);
}

/* wait_new makes the job busy with a wait (a check, commit or key generation). */
static struct order_wait *wait_new(struct acme_order_job *j)
{
    struct order_wait *w = xcalloc(1, sizeof(*w));
    w->j = j;
    j->wait = w;
    j->busy = 1;
    return w;
}

/*
 * wait_done is the first thing a wait's callback does: frees w and returns
 * its job, or NULL when the job ended meanwhile (or is ending: canceled).
 */
static struct acme_order_job *wait_done(struct order_wait *w)
{
    struct acme_order_job *j = w->j;
    crypto_key_free(w->key);
    free(w);
    if (!j)
        return NULL;
    j->wait = NULL;
    j->busy = 0;
    if (j->canceled) {
        fail(j, CF_ECANCELED, "canceled");
        return NULL;
    }
    return j;
}

static void on_commit(void *arg, int status)
{
    struct order_wait *w = arg;
    void (*then)(struct acme_order_job *, int) = w->then;
    struct acme_order_job *j = wait_done(w);
    if (j)
        then(j, status);
}

/* commit_then waits until the changes queued so far are durable, then calls then. */
static void commit_then(struct acme_order_job *j, void (*then)(struct acme_order_job *, int))
{
    struct order_wait *w = wait_new(j);
    w->then = then;
    committer_then(j->o.commit, on_commit, w);
}

static void new_order(struct acme_order_job *j);
static void next_authz(struct acme_order_job *j);
static void keygen(struct acme_order_job *j);
static void start_poll_order(struct acme_order_job *j, int64_t retry_after);
static void download(struct acme_order_job *j);

/*
 * order_scratch returns this thread's struct acme_order to parse into. The
 * struct is over 100 KiB (room for ACME_MAX_AUTHZ URLs): allocated once per
 * thread rather than for every order a CA sends, where malloc and free of
 * a block that size (heap consolidation, fresh pages) cost more than the
 * parse. Valid until the next call on the thread: callers copy what they
 * keep before anything else runs.
 */
static struct acme_order *order_scratch(void)
{
    static _Thread_local struct acme_order *scratch;
    if (!scratch)
        scratch = xmalloc(sizeof(*scratch));
    return scratch;
}

/* keep_order_view replaces what the job keeps of the order with what o says. */
static void keep_order_view(struct acme_order_job *j, const struct acme_order *o)
{
    free_order_view(j);
    j->ostatus = o->status;
    j->expires = o->expires;
    j->authz = xcalloc(o->nauthz ? o->nauthz : 1, sizeof(*j->authz));
    for (j->nauthz = 0; j->nauthz < o->nauthz; j->nauthz++)
        j->authz[j->nauthz] = xstrdup(o->authz[j->nauthz]);
    j->finalize_url = xstrdup(o->finalize);
    j->cert_url = xstrdup(o->certificate);
}

/*
 * parse_order reads an order object and keeps what the job needs of it.
 * Fails the job and returns -1 when the object does not parse.
 */
static int parse_order(struct acme_order_job *j, const struct acme_client_reply *r)
{
    const char *perr = NULL;
    struct acme_order *o;
    if (check_ctype(j, r, "application/json", 0))
        return -1;
    o = order_scratch();
    if (acme_order_parse(o, r->body, r->body_len, &perr) != 0) {
        fail(j, CF_EPROTO, "bad order object: %s", perr ? perr : "parse error");
        return -1;
    }
    keep_order_view(j, o);
    if (o->status == ACME_ST_INVALID) {
        /* RFC 8555 §7.1.6: an invalid order is final; its error says why. */
        if (o->has_error)
            fail_terminal(j, CF_EACME, o->error.type, "order is invalid: %s: %s", o->error.type,
                          o->error.detail);
        else
            fail_terminal(j, CF_EACME, NULL, "order is invalid");
        return -1;
    }
    return 0;
}

/* ours says whether the job holds the durable key of the order's CSR. */
static int ours(const struct acme_order_job *j)
{
    return j->cert_key && j->key_stored;
}

/*
 * go_on moves on from the order's status (RFC 8555 §7.1.6): pending → the
 * authorizations; ready → a key and finalize; processing → poll; valid →
 * download. A processing or valid order whose key the job does not hold is
 * of no use: its certificate could never be served.
 */
static void go_on(struct acme_order_job *j, int64_t retry_after)
{
    switch (j->ostatus) {
    case ACME_ST_PENDING:
        j->authz_i = 0;
        next_authz(j);
        return;
    case ACME_ST_READY:
        keygen(j);
        return;
    case ACME_ST_PROCESSING:
    case ACME_ST_VALID:
        if (!ours(j)) {
            fail_terminal(j, CF_EPROTO, NULL, "order is %s; its key is unknown",
                          acme_status_name(j->ostatus));
            return;
        }
        if (j->ostatus == ACME_ST_VALID)
            download(j);
        else
            start_poll_order(j, retry_after);
        return;
    default:
        fail(j, CF_EPROTO, "order status %s", acme_status_name(j->ostatus));
    }
}

static void on_order_stored(struct acme_order_job *j, int status)
{
    if (j->o.gate)
        gate_release(j);
    if (status) {
        fail(j, status, "storing the order URL: %s", cf_strerror(status));
        return;
    }
    go_on(j, 0);
}

static void on_new_order(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (back(j, r))
        return;
    /* RFC 9773 §5: the replaced certificate has a successor already; ask without it. */
    if (j->sent_replaces && r->problem && acme_problem_is(r->problem, "alreadyReplaced")) {
        log_event(LOG_INFO, "acme_order_replaces_dropped", "host", j->host, "replaces", j->replaces,
                  "detail", r->problem->detail, NULL);
        j->replaces_dropped = 1;
        new_order(j);
        return;
    }
    if (r->error || r->status != 201) {
        fail_reply(j, r, "newOrder refused");
        return;
    }
    /* RFC 8555 §7.4: the order's URL is in Location; later polls need it. */
    if (!r->location || !r->location[0] || strlen(r->location) >= ACME_URL_MAX) {
        fail(j, CF_EPROTO, "newOrder answer has no usable Location");
        return;
    }
    set_str(&j->order_url, r->location);
    if (parse_order(j, r))
        return;
    if (j->ostatus == ACME_ST_PENDING && j->nauthz == 0) {
        fail(j, CF_EPROTO, "pending order without authorizations");
        return;
    }
    /*
     * The order URL is made durable before anything else happens to the
     * order, so a restart resumes it (opts.resume) instead of creating
     * another: new orders are rate limited (300 per account per 3 hours).
     */
    acme_order_set_state(j, ACME_ORDER_STORE_ORDER);
    store_batch_put_pending(committer_batch(j->o.commit), j->host, nz(j->order_url), NULL, 0);
    commit_then(j, on_order_stored);
}

struct acme_order_gate {
    int max, held;
    struct acme_order_job *head, *tail; /* waiting, first come first served */
};

struct acme_order_gate *acme_order_gate_new(int max)
{
    struct acme_order_gate *g = xcalloc(1, sizeof(*g));
    g->max = max > 0 ? max : 1;
    return g;
}

void acme_order_gate_free(struct acme_order_gate *g)
{
    free(g);
}

static void send_new_order(struct acme_order_job *j);

/* gate_unlink takes a waiting job out of the line (it ends). */
static void gate_unlink(struct acme_order_job *j)
{
    struct acme_order_gate *g = j->o.gate;
    struct acme_order_job **pp, *prev = NULL;
    if (!j->gate_queued)
        return;
    for (pp = &g->head; *pp; prev = *pp, pp = &(*pp)->gate_next) {
        if (*pp != j)
            continue;
        *pp = j->gate_next;
        if (g->tail == j)
            g->tail = prev;
        break;
    }
    j->gate_queued = 0;
    j->gate_next = NULL;
}

/* gate_release lets the next job in line send its newOrder: j's URL is durable, or j ended. */
static void gate_release(struct acme_order_job *j)
{
    struct acme_order_gate *g = j->o.gate;
    if (!j->gate_held)
        return;
    j->gate_held = 0;
    g->held--;
    while (g->head && g->held < g->max) {
        struct acme_order_job *w = g->head;
        g->head = w->gate_next;
        if (!g->head)
            g->tail = NULL;
        w->gate_queued = 0;
        w->gate_next = NULL;
        w->gate_held = 1;
        g->held++;
        send_new_order(w);
    }
}

/* new_order POSTs newOrder for the host (RFC 8555 §7.4), with "replaces" (RFC 9773 §5). */
static void new_order(struct acme_order_job *j)
{
    struct acme_order_gate *g = j->o.gate;
    acme_order_set_state(j, ACME_ORDER_NEW_ORDER);
    set_str(&j->order_url, NULL);
    if (g && !j->gate_held) {
        if (g->held >= g->max) {
            /* In line: the deadline (or a cancel) still ends the job from here. */
            j->gate_queued = 1;
            if (g->tail)
                g->tail->gate_next = j;
            else
                g->head = j;
            g->tail = j;
            return;
        }
        j->gate_held = 1;
        g->held++;
    }
    send_new_order(j);
}

static void send_new_order(struct acme_order_job *j)
{
    struct buf payload;
    buf_init(&payload);
    buf_puts(&payload, "{\"identifiers\":[{\"type\":\"dns\",\"value\":");
    buf_json_string(&payload, j->host, strlen(j->host));
    buf_puts(&payload, "}]");
    j->sent_replaces = j->replaces[0] && !j->replaces_dropped;
    if (j->sent_replaces) {
        buf_puts(&payload, ",\"replaces\":");
        buf_json_string(&payload, j->replaces, strlen(j->replaces));
    }
    buf_putc(&payload, '}');
    step(j, acme_client_directory(j->o.client)->new_order, payload.data, on_new_order);
    buf_cleanup(&payload);
}

/* start_afresh drops the stored pending order and creates a new one. */
static void start_afresh(struct acme_order_job *j, const char *why)
{
    log_event(LOG_INFO, "acme_order_resume_dropped", "host", j->host, "order", nz(j->order_url),
              "why", why, NULL);
    /* Queued before the new order's own pending entry, which then replaces nothing. */
    store_batch_del_pending(committer_batch(j->o.commit), j->host);
    j->resumed = 0;
    forget_key(j);
    free_order_view(j);
    new_order(j);
}

static void withdraw_leftover(struct acme_order_job *j);
static void on_stale_authz(void *arg, const struct acme_client_reply *r);

/*
 * next_stale reads the next authorization of the stored order, then either
 * starts a new order (afresh_why set) or goes on with this one.
 */
static void next_stale(struct acme_order_job *j)
{
    if (j->authz_i >= j->nauthz) {
        j->authz_i = 0;
        if (j->afresh_why)
            start_afresh(j, j->afresh_why);
        else
            go_on(j, j->sweep_retry_after);
        return;
    }
    step(j, j->authz[j->authz_i], "", on_stale_authz);
}

/*
 * sweep_leftovers withdraws the TXT values a stored order may have left
 * published. A run cut off after answering a challenge leaves its value
 * (see finish), as does a crash; the run that resumes the order withdraws
 * it when it reads the authorization, but an order that has gone past its
 * authorizations (ready, processing, valid) or is dropped (invalid,
 * expired) is never read that way. The value follows from the
 * authorization's token, so each authorization is read once more; errors
 * only skip the withdrawal. Resuming is rare (a crash, a deadline), so this
 * costs nothing in a normal run.
 */
static void sweep_leftovers(struct acme_order_job *j, int64_t retry_after)
{
    j->sweep_retry_after = retry_after;
    j->authz_i = 0;
    next_stale(j);
}

/* drop_stale ends a stored order that can no longer be finished (after a sweep). */
static void drop_stale(struct acme_order_job *j, const struct acme_order *o, const char *why)
{
    keep_order_view(j, o);
    j->afresh_why = why;
    sweep_leftovers(j, 0);
}

static void on_stale_authz(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    const char *perr = NULL;
    if (back(j, r))
        return;
    if (!r->error && r->status == 200) {
        struct acme_authz *a = xmalloc(sizeof(*a));
        if (acme_authz_parse(a, r->body, r->body_len, &perr) == 0 && a->has_dns01) {
            set_str(&j->ch_token, a->dns01_token);
            withdraw_leftover(j);
        }
        free(a);
    }
    set_str(&j->ch_token, NULL);
    j->authz_i++;
    next_stale(j);
}

/* on_resume reads the stored order again and goes on from its status, or starts afresh. */
static void on_resume(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    struct acme_order *o;
    const char *perr = NULL;
    if (back(j, r))
        return;
    if (r->error == CF_ERATELIMIT || r->status == 429 || transient(r)) {
        fail_reply(j, r, "stored order fetch failed"); /* keeps the pending order */
        return;
    }
    if (r->error || r->status != 200) {
        /*
         * 404 and the like: the CA no longer knows the order (orders expire,
         * RFC 8555 §7.1.3) or it is not this account's: a new one it is.
         */
        char why[64];
        str_fmt(why, sizeof(why), "HTTP %d", r->status);
        start_afresh(j, why);
        return;
    }
    o = order_scratch();
    int bad = acme_order_parse(o, r->body, r->body_len, &perr) != 0;
    enum acme_status st = bad ? ACME_ST_UNKNOWN : o->status;
    int64_t expires = bad ? 0 : o->expires;
    if (bad) {
        start_afresh(j, perr ? perr : "the order does not parse");
        return;
    }
    /* §7.1.6: invalid is final; an expired order cannot be finalized. */
    if (st == ACME_ST_INVALID || st == ACME_ST_EXPIRED || st == ACME_ST_DEACTIVATED ||
        st == ACME_ST_REVOKED || (expires && expires <= cf_wall_ms() / 1000)) {
        drop_stale(j, o, st == ACME_ST_INVALID ? "invalid" : "expired");
        return;
    }
    if ((st == ACME_ST_PROCESSING || st == ACME_ST_VALID) && !ours(j)) {
        drop_stale(j, o, "issued or issuing for a key that was not stored");
        return;
    }
    if (parse_order(j, r))
        return;
    log_event(LOG_INFO, "acme_order_resumed", "host", j->host, "order", nz(j->order_url), "status",
              acme_status_name(j->ostatus), NULL);
    if (j->ostatus == ACME_ST_PENDING)
        go_on(j, r->retry_after); /* reading the authorizations withdraws leftovers */
    else
        sweep_leftovers(j, r->retry_after);
}

static void on_authz(void *arg, const struct acme_client_reply *r);
static void on_ready(void *arg, const struct acme_client_reply *r);

/* next_authz fetches authorization authz_i, or moves on to finalize when all are done. */
static void next_authz(struct acme_order_job *j)
{
    if (j->authz_i >= j->nauthz) {
        /*
         * Every authorization was seen valid, so the order is ready (RFC
         * 8555 §7.1.6), and §7.4 has the client finalize once it believes
         * the requirements are met: no read of the order first. A CA that
         * has not caught up answers orderNotReady, and on_finalize reads
         * the order and waits for it then.
         */
        keygen(j);
        return;
    }
    acme_order_set_state(j, ACME_ORDER_AUTHZ);
    step(j, j->authz[j->authz_i], "", on_authz);
}

/* What a job needs of an authorization besides the challenge URL and token it keeps. */
struct authz_view {
    enum acme_status status;
    int has_dns01;
    enum acme_status dns01_status;
};

/*
 * parse_authz reads an authorization (RFC 8555 §7.1.4) into v and the
 * dns-01 challenge's URL and token into the job; fails the job and returns
 * -1 if the reply is an error, does not parse or is invalid.
 */
static int parse_authz(struct acme_order_job *j, const struct acme_client_reply *r,
                       struct authz_view *v)
{
    const char *perr = NULL;
    int rc = -1;
    if (r->error || r->status != 200) {
        fail_reply(j, r, "authorization fetch failed");
        return -1;
    }
    if (check_ctype(j, r, "application/json", 0))
        return -1;
    struct acme_authz *a = xmalloc(sizeof(*a));
    if (acme_authz_parse(a, r->body, r->body_len, &perr) != 0) {
        fail(j, CF_EPROTO, "bad authorization object: %s", perr ? perr : "parse error");
        goto out_free_authz;
    }
    v->status = a->status;
    v->has_dns01 = a->has_dns01;
    v->dns01_status = a->dns01_status;
    set_str(&j->ch_url, a->dns01_url);
    set_str(&j->ch_token, a->dns01_token);
    if (a->status == ACME_ST_INVALID) {
        /* §7.1.6: an invalid authorization (its challenge failed) is final. */
        if (a->has_error)
            fail_terminal(j, CF_EACME, a->error.type, "authorization is invalid: %s: %s",
                          a->error.type, a->error.detail);
        else
            fail_terminal(j, CF_EACME, NULL, "authorization is invalid");
        goto out_free_authz;
    }
    if (a->status != ACME_ST_VALID && a->status != ACME_ST_PENDING) {
        fail_terminal(j, CF_EACME, NULL, "authorization is %s", acme_status_name(a->status));
        goto out_free_authz;
    }
    rc = 0;
out_free_authz:
    free(a);
    return rc;
}

static void publish(struct acme_order_job *j);
static void poll_authz(struct acme_order_job *j, int64_t retry_after);

/*
 * withdraw_leftover queues the removal of the TXT value a killed run may
 * have published for this authorization: the run that resumes it never
 * publishes it again when the authorization is already valid. Removing an
 * absent value changes nothing.
 */
static void withdraw_leftover(struct acme_order_job *j)
{
    struct buf v;
    buf_init(&v);
    if (j->ch_token && acme_dns01_value(&v, j->ch_token, j->o.account_key) == 0) {
        if (j->o.rfc2136)
            rfc2136_del_txt(j->o.rfc2136, j->target, v.data, NULL, NULL);
        else
            store_batch_txt_del(committer_batch(j->o.commit), j->target, v.data);
    }
    buf_cleanup(&v);
}

static void on_authz(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    struct authz_view v;
    if (back(j, r) || parse_authz(j, r, &v))
        return;
    if (v.status == ACME_ST_VALID) {
        /* RFC 8555 §7.1.4: a CA may reuse a valid authorization; nothing to do. */
        if (j->resumed)
            withdraw_leftover(j);
        j->authz_i++;
        next_authz(j);
        return;
    }
    if (!v.has_dns01) {
        fail_terminal(j, CF_EACME, NULL, "authorization offers no dns-01 challenge");
        return;
    }
    if (v.dns01_status == ACME_ST_PROCESSING || v.dns01_status == ACME_ST_VALID) {
        /*
         * Answered already (a restart): only wait for the verdict. The value
         * the killed run published is this one (same token, same account
         * key): take it over, so it is withdrawn when the job ends.
         */
        struct buf val;
        buf_init(&val);
        if (acme_dns01_value(&val, nz(j->ch_token), j->o.account_key) == 0) {
            withdraw(j);
            str_copy(j->txt_value, sizeof(j->txt_value), val.data);
            j->published = 1;
        }
        buf_cleanup(&val);
        poll_authz(j, 0);
        return;
    }
    publish(j);
}

static void check_txt(struct acme_order_job *j);

static void on_published(struct acme_order_job *j, int status)
{
    if (status) {
        j->published = 0; /* the commit applied nothing */
        fail(j, status, "publishing TXT at %s: %s", j->target, cf_strerror(status));
        return;
    }
    j->tries = 0;
    acme_order_set_state(j, ACME_ORDER_PROPAGATE);
    check_txt(j);
}

/* on_rfc2136_added: the primary answered the UPDATE that adds our value. */
static void on_rfc2136_added(void *arg, int status, const char *detail)
{
    struct acme_order_job *j = wait_done(arg);
    if (!j)
        return;
    if (status) {
        j->published = 0;
        fail(j, status, "publishing TXT at %s: %s", j->target, detail);
        return;
    }
    on_published(j, 0);
}

/* publish writes the dns-01 value at the host's challenge target (RFC 8555 §8.4). */
static void publish(struct acme_order_job *j)
{
    struct buf v;
    int rc;
    acme_order_set_state(j, ACME_ORDER_PUBLISH);
    buf_init(&v);
    rc = acme_dns01_value(&v, nz(j->ch_token), j->o.account_key);
    if (rc) {
        buf_cleanup(&v);
        fail(j, rc, "dns-01 value: %s", cf_strerror(rc));
        return;
    }
    /* A second authorization of the same target replaces the value we published. */
    withdraw(j);
    str_copy(j->txt_value, sizeof(j->txt_value), v.data);
    buf_cleanup(&v);
    j->published = 1;
    if (j->o.rfc2136) {
        /* One UPDATE per loop iteration carries every job's value (rfc2136.h). */
        rfc2136_add_txt(j->o.rfc2136, j->target, j->txt_value, on_rfc2136_added, wait_new(j));
        return;
    }
    /* Published with this iteration's group commit; propagation starts once it is durable. */
    store_batch_txt_add(committer_batch(j->o.commit), j->target, j->txt_value);
    commit_then(j, on_published);
}

static void on_txt(void *arg, const struct txt_report *r);

static void check_txt(struct acme_order_job *j)
{
    j->tries++;
    struct order_wait *w = wait_new(j);
    dns_check_txt(j->o.dns, j->zone, j->target, j->txt_value, on_txt, w);
}

static void on_respond(void *arg, const struct acme_client_reply *r);

static void on_txt(void *arg, const struct txt_report *r)
{
    struct acme_order_job *j = wait_done(arg);
    if (!j)
        return;
    if (r->ready) {
        acme_order_set_state(j, ACME_ORDER_RESPOND);
        /* RFC 8555 §7.5.1: an empty object tells the CA to validate now. */
        step(j, nz(j->ch_url), "{}", on_respond);
        return;
    }
    if (j->tries >= j->o.propagate_tries) {
        fail(j, CF_ETIMEOUT,
             "TXT at %s not served by every server of %s after %d checks "
             "(%zu of %zu ready)%s%s",
             j->target, j->zone, j->tries, r->nready, r->nservers, r->error[0] ? ": " : "",
             r->error);
        return;
    }
    uv_timer_start(&j->timer, on_timer, (uint64_t)j->o.propagate_interval_ms, 0);
}

static void on_respond(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (back(j, r))
        return;
    /*
     * A response sent again may meet a challenge the first one already
     * started (the lost answer was the CA's): the authorization says how it
     * went either way.
     */
    if ((r->error || r->status != 200) && j->step_tries == 1) {
        fail_reply(j, r, "challenge response refused");
        return;
    }
    poll_authz(j, r->error ? 0 : r->retry_after);
}

static void on_poll_authz(void *arg, const struct acme_client_reply *r);

/* poll_authz waits for the authorization's verdict; retry_after is the response's (§8.2). */
static void poll_authz(struct acme_order_job *j, int64_t retry_after)
{
    acme_order_set_state(j, ACME_ORDER_POLL_AUTHZ);
    start_polling(j, ACME_POLL_AUTHZ);
    wait_then(j, retry_after, "authorization still pending");
}

static void on_poll_authz(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    struct authz_view v;
    if (back(j, r) || parse_authz(j, r, &v))
        return;
    polled(j, v.status != ACME_ST_PENDING);
    if (v.status == ACME_ST_VALID) {
        j->authz_i++;
        next_authz(j);
        return;
    }
    wait_then(j, r->retry_after, "authorization still pending");
}

static void on_ready(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (back(j, r))
        return;
    if (r->error || r->status != 200) {
        fail_reply(j, r, "order fetch failed");
        return;
    }
    if (parse_order(j, r))
        return;
    polled(j, j->ostatus != ACME_ST_PENDING);
    if (j->ostatus == ACME_ST_PENDING)
        wait_then(j, r->retry_after, "order not ready");
    else
        go_on(j, r->retry_after);
}

static void finalize(struct acme_order_job *j);

static void on_key_stored(struct acme_order_job *j, int status)
{
    if (status) {
        fail(j, status, "storing the certificate key: %s", cf_strerror(status));
        return;
    }
    j->key_stored = 1;
    finalize(j);
}

/*
 * got_key takes the fresh key and makes it durable beside the order URL
 * before finalize is sent: once the CA has the CSR, a restart must be able
 * to download the certificate and serve it with this key.
 */
static void got_key(struct acme_order_job *j, int rc, struct crypto_key *key)
{
    if (rc) {
        crypto_key_free(key);
        fail(j, rc, "key generation (%s): %s", crypto_key_type_name(j->o.key_type),
             cf_strerror(rc));
        return;
    }
    forget_key(j);
    j->cert_key = key;
    rc = crypto_key_to_pem(key, &j->key_pem);
    if (rc) {
        fail(j, rc, "key to PEM: %s", cf_strerror(rc));
        return;
    }
    acme_order_set_state(j, ACME_ORDER_STORE_KEY);
    store_batch_put_pending(committer_batch(j->o.commit), j->host, nz(j->order_url),
                            j->key_pem.data, j->key_pem.len);
    commit_then(j, on_key_stored);
}

/* on_keygen_work runs on the libuv thread pool: RSA key generation would stall the loop. */
static void on_keygen_work(uv_work_t *req)
{
    struct order_wait *w = container_of(req, struct order_wait, work);
    w->rc = crypto_key_generate(&w->key, w->type);
}

static void on_keygen_done(uv_work_t *req, int status)
{
    struct order_wait *w = container_of(req, struct order_wait, work);
    struct crypto_key *key = w->key;
    int rc = status ? status : w->rc;
    w->key = NULL;
    struct acme_order_job *j = wait_done(w);
    if (!j) {
        crypto_key_free(key);
        return;
    }
    got_key(j, rc, key);
}

/*
 * keygen makes the certificate's key: EC keys inline (well under a
 * millisecond), RSA keys on the thread pool (DESIGN.md §3: the loop never
 * blocks on RSA key generation). A key already durable for this order (a
 * resumed order, a finalize sent again) is used as it is.
 */
static void keygen(struct acme_order_job *j)
{
    if (ours(j)) {
        finalize(j);
        return;
    }
    acme_order_set_state(j, ACME_ORDER_KEYGEN);
    if (j->o.key_type >= CRYPTO_KEY_RSA2048) {
        struct order_wait *w = wait_new(j);
        w->type = j->o.key_type;
        int rc = uv_queue_work(j->o.loop, &w->work, on_keygen_work, on_keygen_done);
        if (rc) {
            drop_inflight(j);
            free(w);
            fail(j, rc, "key generation: %s", uv_strerror(rc));
        }
        return;
    }
    struct crypto_key *key = NULL;
    int rc = crypto_key_generate(&key, j->o.key_type);
    got_key(j, rc, key);
}

static void on_finalize(void *arg, const struct acme_client_reply *r);

/* finalize sends the CSR of the job's key for the host (RFC 8555 §7.4). */
static void finalize(struct acme_order_job *j)
{
    struct buf der, payload;
    const char *names[1] = {j->host};
    int rc;
    acme_order_set_state(j, ACME_ORDER_FINALIZE);
    buf_init(&der);
    buf_init(&payload);
    rc = crypto_csr_new(j->cert_key, &der, names, 1);
    if (rc) {
        fail(j, rc, "CSR: %s", cf_strerror(rc));
        goto out_free_bufs;
    }
    buf_puts(&payload, "{\"csr\":\"");
    crypto_b64url_encode(&payload, der.data, der.len);
    buf_puts(&payload, "\"}");
    step(j, j->finalize_url, payload.data, on_finalize);
out_free_bufs:
    buf_cleanup(&der);
    buf_cleanup(&payload);
}

static void on_poll_order(void *arg, const struct acme_client_reply *r);

static void on_finalize(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (back(j, r))
        return;
    /*
     * RFC 8555 §7.4: orderNotReady means the order is not (or no longer)
     * ready, e.g. a finalize sent again after its first answer was lost:
     * read the order and go on from what it says.
     */
    if (r->problem && acme_problem_is(r->problem, "orderNotReady") && j->resyncs < RESYNC_MAX) {
        j->resyncs++;
        acme_order_set_state(j, ACME_ORDER_READY);
        start_polling(j, ACME_POLL_ORDER);
        step(j, nz(j->order_url), "", on_ready);
        return;
    }
    if (r->error || r->status != 200) {
        fail_reply(j, r, "finalize refused");
        return;
    }
    if (parse_order(j, r))
        return;
    start_poll_order(j, r->retry_after);
}

/* start_poll_order waits for the order to turn valid (RFC 8555 §7.4: processing, then valid). */
static void start_poll_order(struct acme_order_job *j, int64_t retry_after)
{
    acme_order_set_state(j, ACME_ORDER_POLL_ORDER);
    start_polling(j, ACME_POLL_ORDER);
    set_str(&j->url, j->order_url);
    if (j->ostatus == ACME_ST_VALID && j->cert_url && j->cert_url[0])
        download(j);
    else
        wait_then(j, retry_after, "order not valid");
}

static void on_poll_order(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (back(j, r))
        return;
    if (r->error || r->status != 200) {
        fail_reply(j, r, "order fetch failed");
        return;
    }
    if (parse_order(j, r))
        return;
    polled(j, j->ostatus != ACME_ST_PROCESSING);
    if (j->ostatus == ACME_ST_VALID && j->cert_url[0])
        download(j);
    else
        wait_then(j, r->retry_after, "order not valid");
}

static void on_download(void *arg, const struct acme_client_reply *r);

static void download(struct acme_order_job *j)
{
    if (!ours(j)) {
        /* A valid order we did not finalize: its key is not ours. */
        fail_terminal(j, CF_EPROTO, NULL, "order is valid; its key is unknown");
        return;
    }
    if (!j->cert_url || !j->cert_url[0]) {
        fail(j, CF_EPROTO, "valid order without a certificate URL");
        return;
    }
    acme_order_set_state(j, ACME_ORDER_DOWNLOAD);
    /* RFC 8555 §7.4.2: POST-as-GET the certificate URL. */
    step(j, j->cert_url, "", on_download);
}

/*
 * verify checks the chain before anyone stores it: our name, our key (one
 * parse of the chain for both; the leaf is kept for the result).
 */
static void verify(struct acme_order_job *j)
{
    struct crypto_cert_info *leaf = xmalloc(sizeof(*leaf));
    size_t n = 0, i;
    int ours_key = 0;
    acme_order_set_state(j, ACME_ORDER_VERIFY);
    int rc =
        crypto_cert_parse_chain_key(j->chain.data, j->chain.len, j->cert_key, leaf, &n, &ours_key);
    if (rc) {
        fail_terminal(j, rc, NULL,
                      "broken certificate chain (a block that does not parse, or a certificate "
                      "not issued by the next): %s",
                      cf_strerror(rc));
        goto out_free_leaf;
    }
    for (i = 0; i < leaf->n_names; i++)
        if (strcasecmp(leaf->names[i], j->host) == 0)
            break;
    if (i == leaf->n_names) {
        fail_terminal(j, CF_EPROTO, NULL, "certificate %s does not name the host",
                      leaf->serial_hex);
        goto out_free_leaf;
    }
    if (!ours_key) {
        fail_terminal(j, CF_ECRYPTO, NULL, "certificate %s is not for our key: %s",
                      leaf->serial_hex, cf_strerror(CF_ECRYPTO));
        goto out_free_leaf;
    }
    log_event(LOG_DEBUG, "acme_order_verified", "host", j->host, "serial", leaf->serial_hex, NULL);
    acme_order_set_state(j, ACME_ORDER_DONE);
    free(j->leaf);
    j->leaf = leaf; /* lent to the callback; freed with the job */
    finish(j);
    return;
out_free_leaf:
    free(leaf);
}

static void on_download(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (back(j, r))
        return;
    if (r->error || r->status != 200) {
        fail_reply(j, r, "certificate download failed");
        return;
    }
    if (check_ctype(j, r, "application/pem-certificate-chain", 1))
        return;
    if (r->body_len == 0 || r->body_len > CRYPTO_CHAIN_MAX_BYTES) {
        fail_terminal(j, CF_ETOOBIG, NULL, "certificate body of %zu bytes", r->body_len);
        return;
    }
    buf_reset(&j->chain);
    buf_append(&j->chain, r->body, r->body_len);
    verify(j);
}

static void on_timer(uv_timer_t *t)
{
    struct acme_order_job *j = container_of(t, struct acme_order_job, timer);
    if (j->canceled) {
        fail(j, CF_ECANCELED, "canceled");
        return;
    }
    if (j->retrying) {
        j->retrying = 0;
        send_step(j);
        return;
    }
    switch (j->state) {
    case ACME_ORDER_PROPAGATE:
        check_txt(j);
        break;
    case ACME_ORDER_POLL_AUTHZ:
        step(j, j->authz[j->authz_i], "", on_poll_authz);
        break;
    case ACME_ORDER_READY:
        step(j, nz(j->order_url), "", on_ready);
        break;
    case ACME_ORDER_POLL_ORDER:
        step(j, nz(j->order_url), "", on_poll_order);
        break;
    default:
        fail(j, CF_EPROTO, "timer in state %s", acme_order_state_name(j->state));
    }
}

/* on_deadline ends the job whatever it waits on: the deadline passed, or a cancel. */
static void on_deadline(uv_timer_t *t)
{
    struct acme_order_job *j = container_of(t, struct acme_order_job, deadline);
    if (j->canceled) {
        fail(j, CF_ECANCELED, "canceled");
        return;
    }
    fail(j, CF_ETIMEOUT, "deadline passed while in %s", acme_order_state_name(j->state));
}

/*
 * resume_stored looks for the host's pending order. Returns 1 when one was
 * found and is being fetched, 0 when the job should create a new order.
 */
static int resume_stored(struct acme_order_job *j)
{
    struct buf url, key;
    int found = 0;
    buf_init(&url);
    buf_init(&key);
    /* A short read transaction on the loop thread, as every store read of the engine. */
    int rc =
        store_get_pending(store_batch_store(committer_batch(j->o.commit)), j->host, &url, &key);
    if (rc == CF_ENOTFOUND)
        goto out_free_bufs;
    if (rc || url.len == 0 || url.len >= ACME_URL_MAX || strncmp(url.data, "https://", 8) != 0) {
        log_event(LOG_WARN, "acme_order_pending_unreadable", "host", j->host, "error",
                  rc ? cf_strerror(rc) : "not an https URL", NULL);
        store_batch_del_pending(committer_batch(j->o.commit), j->host);
        goto out_free_bufs;
    }
    set_str(&j->order_url, url.data);
    if (key.len > 0) {
        if (crypto_key_from_pem(&j->cert_key, key.data, key.len) == 0) {
            buf_append(&j->key_pem, key.data, key.len);
            j->key_stored = 1;
        } else {
            /* Without its key, a processing or valid order is dropped in on_resume. */
            log_event(LOG_WARN, "acme_order_pending_key_unreadable", "host", j->host, NULL);
        }
    }
    j->resumed = 1;
    found = 1;
    acme_order_set_state(j, ACME_ORDER_RESUME);
    /* RFC 8555 §7.1.3: POST-as-GET the order for its current status. */
    step(j, nz(j->order_url), "", on_resume);
out_free_bufs:
    if (key.data)
        memset(key.data, 0, key.len);
    buf_cleanup(&key);
    buf_cleanup(&url);
    return found;
}

/* on_first runs the first step from the loop, so the callback never runs inside start. */
static void on_first(uv_timer_t *t)
{
    struct acme_order_job *j = container_of(t, struct acme_order_job, timer);
    if (j->canceled) {
        fail(j, CF_ECANCELED, "canceled");
        return;
    }
    if (j->o.resume && resume_stored(j))
        return;
    new_order(j);
}

int acme_order_start(struct acme_order_job **out, const struct acme_order_opts *o, acme_order_cb cb,
                     void *arg)
{
    struct acme_order_job *j;
    int64_t now = cf_wall_ms(), delay;
    if (out)
        *out = NULL;
    if (!o || !o->loop || !o->client || !o->account_key || !o->commit || !o->dns ||
        !o->validation_zone || !o->host || !cb || !acme_client_directory(o->client) ||
        strlen(o->host) > HOSTNAME_MAX || strlen(o->validation_zone) > HOSTNAME_MAX ||
        o->key_type < CRYPTO_KEY_EC_P256 || o->key_type > CRYPTO_KEY_RSA4096 ||
        (o->replaces && o->replaces[0] && !acme_ari_cert_id_ok(o->replaces)))
        return CF_EUSAGE;
    j = xcalloc(1, sizeof(*j));
    j->o = *o;
    str_copy(j->host, sizeof(j->host), o->host);
    str_copy(j->zone, sizeof(j->zone), o->validation_zone);
    if (o->replaces)
        str_copy(j->replaces, sizeof(j->replaces), o->replaces);
    j->o.host = j->host;
    j->o.validation_zone = j->zone;
    j->o.replaces = j->replaces;
    if (j->o.propagate_interval_ms <= 0)
        j->o.propagate_interval_ms = ACME_ORDER_PROPAGATE_INTERVAL_MS;
    if (j->o.propagate_tries <= 0)
        j->o.propagate_tries = ACME_ORDER_PROPAGATE_TRIES;
    if (j->o.poll_interval_ms <= 0)
        j->o.poll_interval_ms = ACME_ORDER_POLL_INTERVAL_MS;
    if (j->o.poll_max_ms <= 0)
        j->o.poll_max_ms = ACME_ORDER_POLL_MAX_MS;
    if (hostname_challenge_target(j->target, j->host, j->zone) != 0) {
        free(j);
        return CF_EHOSTNAME;
    }
    j->deadline_ms = o->deadline_ms > 0 ? o->deadline_ms : now + ACME_ORDER_DEADLINE_MS;
    j->cb = cb;
    j->cb_arg = arg;
    buf_init(&j->chain);
    buf_init(&j->key_pem);
    j->state = ACME_ORDER_NEW_ORDER;
    j->state_since_ns = cf_mono_ns();
    log_event(LOG_DEBUG, "acme_order_state", "host", j->host, "from", "start", "to",
              o->resume ? "resume?" : acme_order_state_name(j->state), NULL);
    uv_timer_init(o->loop, &j->timer);
    uv_timer_init(o->loop, &j->deadline);
    j->timer.data = j->deadline.data = j;
    j->open_handles = 2;
    uv_timer_start(&j->timer, on_first, 0, 0);
    delay = j->deadline_ms - now;
    uv_timer_start(&j->deadline, on_deadline, (uint64_t)(delay > 0 ? delay : 0), 0);
    if (out)
        *out = j;
    return 0;
}

void acme_order_cancel(struct acme_order_job *j)
{
    if (!j || j->finished || j->canceled)
        return;
    j->canceled = 1;
    /* On the next loop turn, not inside this call; a request in flight is abandoned there. */
    uv_timer_start(&j->deadline, on_deadline, 0, 0);
}
