/*
 * order.c - the per-host issuance pipeline (see order.h).
 *
 * One request or check is in flight at a time per job (j->busy): the steps
 * of RFC 8555 §7.4 depend on each other. Waiting between polls and checks is
 * the job's one uv_timer. The job is freed in that timer's close callback,
 * after the caller's callback ran, so nothing can reach freed memory: the
 * acme_client and dns_checker callbacks only come back while busy is set,
 * and the job is never torn down while busy.
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

struct acme_order_job {
    uv_timer_t timer; /* propagation retries and polls */
    enum acme_order_state state;
    struct acme_order_opts o;
    acme_order_cb cb;
    void *cb_arg;
    char host[HOSTNAME_MAX + 1];
    char zone[HOSTNAME_MAX + 1];
    char target[HOSTNAME_MAX + 1]; /* owner of the TXT record */
    int busy;                      /* a request or check is in flight */
    int canceled;                  /* acme_order_cancel was called */
    int published;                 /* txt_value is in the store */
    int finished;                  /* the callback ran (or is running) */
    char txt_value[128];
    int tries;              /* propagation checks made for the current authorization */
    int64_t deadline_ms;    /* end of the current poll phase (wall clock) */
    char url[ACME_URL_MAX]; /* the URL of the step in progress, for errors */
    char order_url[ACME_URL_MAX];
    struct acme_order order; /* the last order object seen */
    size_t authz_i;          /* the authorization being worked on */
    struct acme_authz authz;
    struct crypto_key *cert_key;
    struct buf chain;
    int error;
    enum acme_order_state failed_in;
    char error_text[1024];
};

const char *acme_order_state_name(enum acme_order_state s)
{
    switch (s) {
    case ACME_ORDER_NEW_ORDER:
        return "new_order";
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
    log_event(LOG_DEBUG, "acme_order_state", "host", j->host, "from",
              acme_order_state_name(j->state), "to", acme_order_state_name(s), NULL);
    j->state = s;
}

static void on_timer_close(uv_handle_t *h)
{
    struct acme_order_job *j = container_of((uv_timer_t *)h, struct acme_order_job, timer);
    crypto_key_free(j->cert_key);
    buf_cleanup(&j->chain);
    free(j);
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
    /* Queued into this iteration's group commit; a failed commit is logged there. */
    store_batch_txt_del(committer_batch(j->o.commit), j->target, j->txt_value);
    j->published = 0;
}

/* finish withdraws the TXT record, runs the callback once and closes the job. */
static void finish(struct acme_order_job *j)
{
    struct buf key_pem;
    struct acme_order_result r;
    if (j->finished)
        return;
    j->finished = 1;
    uv_timer_stop(&j->timer);
    withdraw(j);
    buf_init(&key_pem);
    memset(&r, 0, sizeof(r));
    r.host = j->host;
    r.order_url = j->order_url;
    r.error = j->error;
    r.error_text = j->error ? j->error_text : "";
    r.failed_in = j->error ? j->failed_in : ACME_ORDER_DONE;
    if (!j->error) {
        r.chain_pem = j->chain.data;
        r.chain_len = j->chain.len;
        if (crypto_key_to_pem(j->cert_key, &key_pem) == 0) {
            r.key_pem = key_pem.data;
            r.key_len = key_pem.len;
        }
        log_event(LOG_INFO, "acme_order_done", "host", j->host, "order", j->order_url, NULL);
    } else {
        log_event(LOG_WARN, "acme_order_failed", "host", j->host, "state",
                  acme_order_state_name(j->failed_in), "error", j->error_text, NULL);
    }
    j->cb(j->cb_arg, &r);
    /* Wipe the private key's PEM: it was only lent to the callback. */
    if (key_pem.data)
        memset(key_pem.data, 0, key_pem.len);
    buf_cleanup(&key_pem);
    uv_close((uv_handle_t *)&j->timer, on_timer_close);
}

static void fail(struct acme_order_job *j, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* fail records err and "<host>: <state> <url>: <text>", moves to FAILED and finishes. */
static void fail(struct acme_order_job *j, int err, const char *fmt, ...)
{
    char text[768];
    va_list ap;
    va_start(ap, fmt);
    str_vfmt(text, sizeof(text), fmt, ap);
    va_end(ap);
    j->error = err ? err : CF_EACME;
    j->failed_in = j->state;
    if (j->url[0])
        str_fmt(j->error_text, sizeof(j->error_text), "%s: %s %s: %s", j->host,
                acme_order_state_name(j->state), j->url, text);
    else
        str_fmt(j->error_text, sizeof(j->error_text), "%s: %s: %s", j->host,
                acme_order_state_name(j->state), text);
    acme_order_set_state(j, ACME_ORDER_FAILED);
    finish(j);
}

/* fail_reply fails with what a CA reply says: the problem's detail, or the transport's text. */
static void fail_reply(struct acme_order_job *j, const struct acme_client_reply *r,
                       const char *what)
{
    if (r->problem)
        fail(j, r->error, "%s: HTTP %d %s: %s", what, r->status, r->problem->type,
             r->problem->detail);
    else if (r->error)
        fail(j, r->error, "%s: HTTP %d: %s", what, r->status, r->error_text);
    else
        fail(j, CF_EPROTO, "%s: unexpected HTTP %d", what, r->status);
}

static void post(struct acme_order_job *j, const char *url, const char *payload,
                 acme_client_post_cb cb)
{
    str_copy(j->url, sizeof(j->url), url);
    j->busy = 1;
    int rc = acme_client_post(j->o.client, url, payload, cb, j);
    if (rc) {
        j->busy = 0;
        fail(j, rc, "cannot send: %s", cf_strerror(rc));
    }
}

/*
 * come_back is the first thing every callback of a request or check does:
 * the job is no longer busy, and a cancel that arrived meanwhile ends it.
 * Returns 1 when the job was finished.
 */
static int come_back(struct acme_order_job *j)
{
    j->busy = 0;
    if (j->canceled) {
        fail(j, CF_ECANCELED, "canceled");
        return 1;
    }
    return 0;
}

/*
 * wait_then arms the timer for the next poll: Retry-After when the CA gave
 * one (RFC 8555 §7.4, §8.2), else the configured interval; fails with a
 * timeout when that would pass the poll phase's deadline.
 */
static void on_timer(uv_timer_t *t);
static void wait_then(struct acme_order_job *j, int64_t retry_after, const char *what)
{
    int64_t now = cf_wall_ms();
    int64_t delay = j->o.poll_interval_ms;
    if (retry_after > 0) {
        delay = retry_after * 1000 - now;
        if (delay < j->o.poll_interval_ms)
            delay = j->o.poll_interval_ms;
        if (delay > ACME_ORDER_RETRY_AFTER_MAX_MS)
            delay = ACME_ORDER_RETRY_AFTER_MAX_MS;
    }
    if (now + delay > j->deadline_ms) {
        fail(j, CF_ETIMEOUT, "%s after %d ms", what, j->o.poll_max_ms);
        return;
    }
    uv_timer_start(&j->timer, on_timer, (uint64_t)delay, 0);
}

static void next_authz(struct acme_order_job *j);
static void check_ready(struct acme_order_job *j);
static void download(struct acme_order_job *j);

/* fail_invalid fails because the CA declared `what` invalid, with its problem when it gave one. */
static void fail_invalid(struct acme_order_job *j, const char *what, int has_error,
                         const struct acme_problem *p)
{
    if (has_error)
        fail(j, CF_EACME, "%s is invalid: %s: %s", what, p->type, p->detail);
    else
        fail(j, CF_EACME, "%s is invalid", what);
}

/* parse_order reads an order object into j->order; fails the job and returns -1 if it cannot. */
static int parse_order(struct acme_order_job *j, const struct acme_client_reply *r)
{
    const char *perr = NULL;
    if (acme_order_parse(&j->order, r->body, r->body_len, &perr) != 0) {
        fail(j, CF_EPROTO, "bad order object: %s", perr ? perr : "parse error");
        return -1;
    }
    if (j->order.status == ACME_ST_INVALID) {
        fail_invalid(j, "order", j->order.has_error, &j->order.error);
        return -1;
    }
    return 0;
}

/* after_order moves on from an order object: authorizations, finalization or download. */
static void after_order(struct acme_order_job *j)
{
    switch (j->order.status) {
    case ACME_ST_VALID:
        download(j);
        return;
    case ACME_ST_READY:
        check_ready(j);
        return;
    case ACME_ST_PENDING:
        j->authz_i = 0;
        next_authz(j);
        return;
    default:
        fail(j, CF_EPROTO, "order status %s", acme_status_name(j->order.status));
    }
}

static void on_new_order(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (come_back(j))
        return;
    if (r->error || r->status != 201) {
        fail_reply(j, r, "newOrder refused");
        return;
    }
    /* RFC 8555 §7.4: the order's URL is in Location; later polls need it. */
    if (!r->location || !r->location[0]) {
        fail(j, CF_EPROTO, "newOrder answer has no Location");
        return;
    }
    str_copy(j->order_url, sizeof(j->order_url), r->location);
    if (parse_order(j, r))
        return;
    if (j->order.nauthz == 0 && j->order.status == ACME_ST_PENDING) {
        fail(j, CF_EPROTO, "pending order without authorizations");
        return;
    }
    after_order(j);
}

static void on_authz(void *arg, const struct acme_client_reply *r);

/* next_authz fetches authorization authz_i, or checks the order when all are done. */
static void next_authz(struct acme_order_job *j)
{
    if (j->authz_i >= j->order.nauthz) {
        check_ready(j);
        return;
    }
    acme_order_set_state(j, ACME_ORDER_AUTHZ);
    post(j, j->order.authz[j->authz_i], "", on_authz);
}

static void publish(struct acme_order_job *j);
static void poll_authz(struct acme_order_job *j);

/* parse_authz reads an authorization into j->authz; fails the job and returns -1 if it cannot. */
static int parse_authz(struct acme_order_job *j, const struct acme_client_reply *r)
{
    const char *perr = NULL;
    if (r->error || r->status != 200) {
        fail_reply(j, r, "authorization fetch failed");
        return -1;
    }
    if (acme_authz_parse(&j->authz, r->body, r->body_len, &perr) != 0) {
        fail(j, CF_EPROTO, "bad authorization object: %s", perr ? perr : "parse error");
        return -1;
    }
    if (j->authz.status == ACME_ST_INVALID) {
        fail_invalid(j, "authorization", j->authz.has_error, &j->authz.error);
        return -1;
    }
    if (j->authz.status != ACME_ST_VALID && j->authz.status != ACME_ST_PENDING) {
        fail(j, CF_EACME, "authorization is %s", acme_status_name(j->authz.status));
        return -1;
    }
    return 0;
}

static void on_authz(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (come_back(j) || parse_authz(j, r))
        return;
    if (j->authz.status == ACME_ST_VALID) {
        /* RFC 8555 §7.1.4: a CA may reuse a valid authorization; nothing to do. */
        j->authz_i++;
        next_authz(j);
        return;
    }
    if (!j->authz.has_dns01) {
        fail(j, CF_EACME, "authorization offers no dns-01 challenge");
        return;
    }
    if (j->authz.dns01_status == ACME_ST_PROCESSING || j->authz.dns01_status == ACME_ST_VALID) {
        /* Answered already (a restart): only wait for the verdict. */
        poll_authz(j);
        return;
    }
    publish(j);
}

static void check_txt(struct acme_order_job *j);
static void on_published(void *arg, int status);

/* publish writes the dns-01 value at the host's challenge target (RFC 8555 §8.4). */
static void publish(struct acme_order_job *j)
{
    struct buf v;
    int rc;
    acme_order_set_state(j, ACME_ORDER_PUBLISH);
    buf_init(&v);
    rc = acme_dns01_value(&v, j->authz.dns01_token, j->o.account_key);
    if (rc) {
        buf_cleanup(&v);
        fail(j, rc, "dns-01 value: %s", cf_strerror(rc));
        return;
    }
    /* A second authorization of the same target replaces the value we published. */
    withdraw(j);
    str_copy(j->txt_value, sizeof(j->txt_value), v.data);
    buf_cleanup(&v);
    /* Published with this iteration's group commit; propagation starts once it is durable. */
    store_batch_txt_add(committer_batch(j->o.commit), j->target, j->txt_value);
    j->published = 1;
    j->busy = 1;
    committer_then(j->o.commit, on_published, j);
}

static void on_published(void *arg, int status)
{
    struct acme_order_job *j = arg;
    if (come_back(j))
        return;
    if (status) {
        j->published = 0; /* the commit applied nothing */
        fail(j, status, "publishing TXT at %s: %s", j->target, cf_strerror(status));
        return;
    }
    j->tries = 0;
    acme_order_set_state(j, ACME_ORDER_PROPAGATE);
    check_txt(j);
}

static void on_txt(void *arg, const struct txt_report *r);

static void check_txt(struct acme_order_job *j)
{
    j->tries++;
    j->busy = 1;
    dns_check_txt(j->o.dns, j->zone, j->target, j->txt_value, on_txt, j);
}

static void on_respond(void *arg, const struct acme_client_reply *r);

static void on_txt(void *arg, const struct txt_report *r)
{
    struct acme_order_job *j = arg;
    if (come_back(j))
        return;
    if (r->ready) {
        acme_order_set_state(j, ACME_ORDER_RESPOND);
        /* RFC 8555 §7.5.1: an empty object tells the CA to validate now. */
        post(j, j->authz.dns01_url, "{}", on_respond);
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
    if (come_back(j))
        return;
    if (r->error || r->status != 200) {
        fail_reply(j, r, "challenge response refused");
        return;
    }
    poll_authz(j);
}

static void on_poll_authz(void *arg, const struct acme_client_reply *r);

static void poll_authz(struct acme_order_job *j)
{
    acme_order_set_state(j, ACME_ORDER_POLL_AUTHZ);
    j->deadline_ms = cf_wall_ms() + j->o.poll_max_ms;
    post(j, j->order.authz[j->authz_i], "", on_poll_authz);
}

static void on_poll_authz(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (come_back(j) || parse_authz(j, r))
        return;
    if (j->authz.status == ACME_ST_VALID) {
        j->authz_i++;
        next_authz(j);
        return;
    }
    wait_then(j, r->retry_after, "authorization still pending");
}

static void on_ready(void *arg, const struct acme_client_reply *r);

/*
 * check_ready fetches the order before finalizing: RFC 8555 §7.1.6 has the
 * order become ready once every authorization is valid, and finalizing a
 * pending order is an orderNotReady error.
 */
static void check_ready(struct acme_order_job *j)
{
    if (j->state != ACME_ORDER_READY) {
        acme_order_set_state(j, ACME_ORDER_READY);
        j->deadline_ms = cf_wall_ms() + j->o.poll_max_ms;
    }
    post(j, j->order_url, "", on_ready);
}

static void finalize(struct acme_order_job *j);

static void on_ready(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (come_back(j))
        return;
    if (r->error || r->status != 200) {
        fail_reply(j, r, "order fetch failed");
        return;
    }
    if (parse_order(j, r))
        return;
    if (j->order.status == ACME_ST_READY)
        finalize(j);
    else if (j->order.status == ACME_ST_VALID || j->order.status == ACME_ST_PROCESSING)
        fail(j, CF_EPROTO, "order is %s before we finalized it", acme_status_name(j->order.status));
    else
        wait_then(j, r->retry_after, "order not ready");
}

static void on_finalize(void *arg, const struct acme_client_reply *r);

/* finalize makes a fresh P-256 key and sends its CSR (RFC 8555 §7.4). */
static void finalize(struct acme_order_job *j)
{
    struct buf der, payload;
    const char *names[1] = {j->host};
    int rc;
    acme_order_set_state(j, ACME_ORDER_FINALIZE);
    crypto_key_free(j->cert_key);
    j->cert_key = NULL;
    rc = crypto_key_generate(&j->cert_key, CRYPTO_KEY_EC_P256);
    if (rc) {
        fail(j, rc, "key generation: %s", cf_strerror(rc));
        return;
    }
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
    post(j, j->order.finalize, payload.data, on_finalize);
out_free_bufs:
    buf_cleanup(&der);
    buf_cleanup(&payload);
}

static void on_poll_order(void *arg, const struct acme_client_reply *r);

static void on_finalize(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (come_back(j))
        return;
    if (r->error || r->status != 200) {
        fail_reply(j, r, "finalize refused");
        return;
    }
    if (parse_order(j, r))
        return;
    acme_order_set_state(j, ACME_ORDER_POLL_ORDER);
    j->deadline_ms = cf_wall_ms() + j->o.poll_max_ms;
    str_copy(j->url, sizeof(j->url), j->order_url);
    if (j->order.status == ACME_ST_VALID && j->order.certificate[0])
        download(j);
    else
        wait_then(j, r->retry_after, "order not valid");
}

static void on_poll_order(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (come_back(j))
        return;
    if (r->error || r->status != 200) {
        fail_reply(j, r, "order fetch failed");
        return;
    }
    if (parse_order(j, r))
        return;
    if (j->order.status == ACME_ST_VALID && j->order.certificate[0])
        download(j);
    else
        wait_then(j, r->retry_after, "order not valid");
}

static void on_download(void *arg, const struct acme_client_reply *r);

static void download(struct acme_order_job *j)
{
    if (!j->cert_key) {
        /* A valid order we did not finalize: its key is not ours. */
        fail(j, CF_EPROTO, "order was already valid; its key is unknown");
        return;
    }
    if (!j->order.certificate[0]) {
        fail(j, CF_EPROTO, "valid order without a certificate URL");
        return;
    }
    acme_order_set_state(j, ACME_ORDER_DOWNLOAD);
    post(j, j->order.certificate, "", on_download);
}

/* verify checks the chain before anyone stores it: our name, our key. */
static void verify(struct acme_order_job *j)
{
    struct crypto_cert_info *leaf = xmalloc(sizeof(*leaf));
    size_t n = 0, i;
    acme_order_set_state(j, ACME_ORDER_VERIFY);
    int rc = crypto_cert_parse_chain(j->chain.data, j->chain.len, leaf, &n);
    if (rc) {
        fail(j, rc, "certificate chain does not parse: %s", cf_strerror(rc));
        goto out_free_leaf;
    }
    for (i = 0; i < leaf->n_names; i++)
        if (strcasecmp(leaf->names[i], j->host) == 0)
            break;
    if (i == leaf->n_names) {
        fail(j, CF_EPROTO, "certificate %s does not name the host", leaf->serial_hex);
        goto out_free_leaf;
    }
    rc = crypto_cert_matches_key(j->chain.data, j->chain.len, j->cert_key);
    if (rc) {
        fail(j, rc, "certificate %s is not for our key: %s", leaf->serial_hex, cf_strerror(rc));
        goto out_free_leaf;
    }
    log_event(LOG_DEBUG, "acme_order_verified", "host", j->host, "serial", leaf->serial_hex, NULL);
    acme_order_set_state(j, ACME_ORDER_DONE);
    finish(j);
out_free_leaf:
    free(leaf);
}

static void on_download(void *arg, const struct acme_client_reply *r)
{
    struct acme_order_job *j = arg;
    if (come_back(j))
        return;
    if (r->error || r->status != 200) {
        fail_reply(j, r, "certificate download failed");
        return;
    }
    if (r->body_len == 0 || r->body_len > CRYPTO_CHAIN_MAX_BYTES) {
        fail(j, CF_ETOOBIG, "certificate body of %zu bytes", r->body_len);
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
    switch (j->state) {
    case ACME_ORDER_PROPAGATE:
        check_txt(j);
        break;
    case ACME_ORDER_POLL_AUTHZ:
        post(j, j->order.authz[j->authz_i], "", on_poll_authz);
        break;
    case ACME_ORDER_READY:
        check_ready(j);
        break;
    case ACME_ORDER_POLL_ORDER:
        post(j, j->order_url, "", on_poll_order);
        break;
    default:
        fail(j, CF_EPROTO, "timer in state %s", acme_order_state_name(j->state));
    }
}

/* on_first runs the first step from the loop, so the callback never runs inside start. */
static void on_first(uv_timer_t *t)
{
    struct acme_order_job *j = container_of(t, struct acme_order_job, timer);
    struct buf payload;
    if (j->canceled) {
        fail(j, CF_ECANCELED, "canceled");
        return;
    }
    buf_init(&payload);
    buf_puts(&payload, "{\"identifiers\":[{\"type\":\"dns\",\"value\":");
    buf_json_string(&payload, j->host, strlen(j->host));
    buf_puts(&payload, "}]}");
    post(j, acme_client_directory(j->o.client)->new_order, payload.data, on_new_order);
    buf_cleanup(&payload);
}

int acme_order_start(struct acme_order_job **out, const struct acme_order_opts *o, acme_order_cb cb,
                     void *arg)
{
    struct acme_order_job *j;
    if (out)
        *out = NULL;
    if (!o || !o->loop || !o->client || !o->account_key || !o->commit || !o->dns ||
        !o->validation_zone || !o->host || !cb || !acme_client_directory(o->client) ||
        strlen(o->host) > HOSTNAME_MAX || strlen(o->validation_zone) > HOSTNAME_MAX)
        return CF_EUSAGE;
    j = xcalloc(1, sizeof(*j));
    j->o = *o;
    str_copy(j->host, sizeof(j->host), o->host);
    str_copy(j->zone, sizeof(j->zone), o->validation_zone);
    j->o.host = j->host;
    j->o.validation_zone = j->zone;
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
    j->cb = cb;
    j->cb_arg = arg;
    buf_init(&j->chain);
    j->state = ACME_ORDER_NEW_ORDER;
    log_event(LOG_DEBUG, "acme_order_state", "host", j->host, "from", "start", "to",
              acme_order_state_name(j->state), NULL);
    uv_timer_init(o->loop, &j->timer);
    uv_timer_start(&j->timer, on_first, 0, 0);
    if (out)
        *out = j;
    return 0;
}

void acme_order_cancel(struct acme_order_job *j)
{
    if (!j || j->finished || j->canceled)
        return;
    j->canceled = 1;
    /*
     * Waiting on the timer: nothing is in flight, so end on the next loop
     * turn (on_timer and on_first see the flag), not inside this call.
     */
    if (!j->busy && uv_is_active((uv_handle_t *)&j->timer))
        uv_timer_start(&j->timer, on_timer, 0, 0);
}
