/*
 * client.c - the session with one ACME CA: directory, account, signed
 * requests, the nonce pool and badNonce retries (RFC 8555 §6.5, §7.2, §7.3).
 *
 * Every request in flight is a struct acme_op on the client's list. When the
 * client is freed the ops are detached (op->c = NULL): their http callbacks
 * then only free them, since the http_client is borrowed and may run them
 * later. Ops waiting in the pacer are not in the http_client and are freed
 * with the client.
 *
 * The pacer (scheduler/pacer.h). Every request to the CA, the directory,
 * newNonce, renewalInfo and every signed POST, badNonce retries included,
 * goes through op_send, which sends it at once when its endpoint class has
 * a token (and, for a signed one, the pool a nonce), and otherwise queues it
 * in its class's FIFO. The queues are released by pace_release, from a
 * timer at the time the next token is due and whenever a nonce arrives; the
 * token is taken just before the request is handed to the http_client, so
 * the send times, not the times requests were made, keep the CA's pace. A
 * queued request is never dropped: it leaves the queue by being sent, by
 * acme_client_abandon, or with the client.
 *
 * Callbacks to the caller may free the client. c->busy counts the frames
 * on the stack that still use c; acme_client_free inside one only marks it
 * closing, and the last frame frees the memory.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "err.h"
#include "log.h"
#include "pacer.h"
#include "timeutil.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

enum client_state {
    CLIENT_NEW = 0,   /* made, not started */
    CLIENT_DIRECTORY, /* GET directory in flight */
    CLIENT_ACCOUNT,   /* POST newAccount in flight */
    CLIENT_READY,     /* account URL known: signed requests allowed */
    CLIENT_FAILED,    /* start failed; a client is not restarted */
};

enum op_kind {
    OP_DIRECTORY = 0, /* GET the directory */
    OP_NONCE,         /* HEAD newNonce */
    OP_POST,          /* a signed POST (jwk for newAccount, kid otherwise) */
    OP_ARI,           /* GET renewalInfo/<certID> (RFC 9773 §4.2), unsigned */
};

struct acme_client;

struct acme_op {
    struct acme_op *prev, *next; /* c->ops: every op not yet finished */
    struct rl_pace_item pace;    /* its place in the pacer while waiting */
    struct acme_op *next_fail;   /* fail_signed_waiters' list */
    struct acme_client *c;       /* NULL once the client is freed */
    enum op_kind kind;
    int waiting;       /* queued in the pacer, not in the http_client */
    int64_t queued_us; /* when it was queued (pace_now_us) */
    int use_jwk;       /* newAccount: jwk instead of kid (RFC 8555 §6.2) */
    int retries;       /* badNonce retries so far */
    int abandoned;     /* acme_client_abandon: the answer is only read for its nonce */
    /*
     * keyChange (RFC 8555 §7.3.5): the new key (borrowed); the payload is
     * then the inner JWS, rebuilt at every send since it names c->key.
     */
    const struct crypto_key *new_key;
    char *url;
    char *payload;
    acme_client_post_cb cb;
    acme_renewal_info_cb ari_cb; /* OP_ARI */
    void *arg;
};

struct acme_client {
    uv_loop_t *loop;
    struct http_client *http;
    const struct crypto_key *key; /* the account key: switches on a keyChange 200 */
    char *directory_url;
    char *contact;
    char *eab_kid;
    unsigned char *eab_key;
    size_t eab_key_len;
    char *account_url;
    int max_retries;
    enum client_state state;
    struct acme_directory dir;
    int have_dir; /* dir was parsed */
    struct acme_nonce_pool pool;
    int nonce_inflight; /* a HEAD newNonce is queued or in flight */
    int key_changing;   /* a keyChange op is not finished */
    struct acme_op *ops;
    struct rl_pacer *pacer; /* the endpoint classes' buckets and queues */
    uv_timer_t *pace_timer; /* wakes pace_release; made when first needed */
    int64_t pace_wake_us;   /* when pace_timer is due; 0: not armed */
    acme_client_start_cb start_cb;
    void *start_arg;
    struct acme_client_stats stats;
    int first_poll_ms[ACME_POLL__COUNT]; /* learnt first-poll delays; 0: nothing learnt */
    int busy;                            /* frames on the stack using c */
    int closing;                         /* acme_client_free was called */
};

static const char *state_name(enum client_state s)
{
    switch (s) {
    case CLIENT_NEW:
        return "new";
    case CLIENT_DIRECTORY:
        return "directory";
    case CLIENT_ACCOUNT:
        return "account";
    case CLIENT_READY:
        return "ready";
    case CLIENT_FAILED:
        return "failed";
    }
    return "unknown";
}

static void client_set_state(struct acme_client *c, enum client_state s)
{
    if (c->state == s)
        return;
    log_event(LOG_DEBUG, "acme_client_state", "ca", c->directory_url, "from", state_name(c->state),
              "to", state_name(s), NULL);
    c->state = s;
}

static void on_pace_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void client_destroy(struct acme_client *c)
{
    if (c->pace_timer) {
        /* The handle's memory goes in its close callback, on a later loop turn. */
        c->pace_timer->data = NULL;
        uv_close((uv_handle_t *)c->pace_timer, on_pace_timer_closed);
    }
    rl_pacer_free(c->pacer);
    free(c->directory_url);
    free(c->contact);
    free(c->eab_kid);
    if (c->eab_key)
        memset(c->eab_key, 0, c->eab_key_len);
    free(c->eab_key);
    free(c->account_url);
    free(c);
}

/* client_unbusy leaves a frame that used c; frees c if it was freed meanwhile. */
static void client_unbusy(struct acme_client *c)
{
    if (--c->busy == 0 && c->closing)
        client_destroy(c);
}

static struct acme_op *op_new(struct acme_client *c, enum op_kind kind)
{
    struct acme_op *op = xcalloc(1, sizeof(*op));
    op->c = c;
    op->kind = kind;
    op->next = c->ops;
    if (c->ops)
        c->ops->prev = op;
    c->ops = op;
    return op;
}

static void op_unlink(struct acme_op *op)
{
    struct acme_client *c = op->c;
    if (!c)
        return;
    if (op->prev)
        op->prev->next = op->next;
    else
        c->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
    op->c = NULL;
}

static void op_free(struct acme_op *op)
{
    if (op->new_key && op->c)
        op->c->key_changing = 0;
    op_unlink(op);
    free(op->url);
    free(op->payload);
    free(op);
}

/*
 * op_finish delivers r to op's callback and frees op. The callback may free
 * the client; callers hold c->busy.
 */
static void op_finish(struct acme_op *op, const struct acme_client_reply *r)
{
    acme_client_post_cb cb = op->cb;
    void *arg = op->arg;
    op_free(op);
    if (cb)
        cb(arg, r);
}

static void op_fail(struct acme_op *op, int err, const char *text)
{
    struct acme_client_reply r;
    memset(&r, 0, sizeof(r));
    r.error = err;
    r.error_text = text;
    r.body = "";
    r.retry_after = 0;
    r.bad_nonce_retries = op->retries;
    op_finish(op, &r);
}

static void on_nonce_done(void *arg, const struct http_resp *r);
static void on_post_done(void *arg, const struct http_resp *r);
static void on_directory_done(void *arg, const struct http_resp *r);
static void on_ari_done(void *arg, const struct http_resp *r);
static int op_send(struct acme_op *op);
static int op_transmit(struct acme_op *op);

/* ---- the pacer ---------------------------------------------------------- */

/* pace_now_us is the pacer's clock: monotonic microseconds. */
static int64_t pace_now_us(void)
{
    return (int64_t)(uv_hrtime() / 1000);
}

/*
 * op_class returns the endpoint class op's request counts against: the
 * newNonce, newOrder and renewalInfo rates have their own; everything else
 * (the directory, newAccount, keyChange, orders, authorizations,
 * challenges, finalize, certificates) is Let's Encrypt's "every other
 * endpoint". The directory and newAccount have limits of their own at Let's
 * Encrypt (40/s, 5/s burst 15) that one request per client start cannot
 * reach; counting them as "other" can only make the pace stricter.
 */
static enum rl_kind op_class(const struct acme_op *op)
{
    const struct acme_client *c = op->c;
    switch (op->kind) {
    case OP_NONCE:
        return RL_EP_NEW_NONCE;
    case OP_ARI:
        return RL_EP_ARI;
    case OP_POST:
        if (c->have_dir && op->url && c->dir.new_order[0] && strcmp(op->url, c->dir.new_order) == 0)
            return RL_EP_NEW_ORDER;
        return RL_EP_OTHER;
    case OP_DIRECTORY:
        break;
    }
    return RL_EP_OTHER;
}

/* op_signed: the request is a JWS and needs a nonce from the pool. */
static int op_signed(const struct acme_op *op)
{
    return op->kind == OP_POST;
}

/* What pace_release learns from the pacer's questions. */
struct pace_ask {
    struct acme_client *c;
    int nonce_blocked; /* a signed head had its token but no nonce */
};

static bool pace_ready(void *ctx, const struct rl_pace_item *it)
{
    struct pace_ask *a = ctx;
    const struct acme_op *op = container_of(it, struct acme_op, pace);
    if (!op_signed(op) || a->c->pool.count > 0)
        return true;
    a->nonce_blocked = 1;
    return false;
}

static void pace_release(struct acme_client *c);

static void on_pace_timer(uv_timer_t *t)
{
    struct acme_client *c = t->data;
    if (!c)
        return;
    c->pace_wake_us = 0;
    c->busy++;
    pace_release(c);
    client_unbusy(c);
}

/*
 * pace_arm sets the timer to the time the pacer has something to send next
 * (nothing if that waits for a nonce only: a nonce's arrival releases it).
 */
static void pace_arm(struct acme_client *c)
{
    int64_t now = pace_now_us();
    struct pace_ask ask = {c, 0};
    int64_t next = rl_pacer_next_us(c->pacer, now, pace_ready, &ask);
    if (next == INT64_MAX) {
        if (c->pace_timer && c->pace_wake_us)
            uv_timer_stop(c->pace_timer);
        c->pace_wake_us = 0;
        return;
    }
    if (c->pace_wake_us && c->pace_wake_us <= next)
        return; /* already due by then: it re-arms for what is left */
    if (!c->pace_timer) {
        c->pace_timer = xmalloc(sizeof(*c->pace_timer));
        uv_timer_init(c->loop, c->pace_timer);
        c->pace_timer->data = c;
    }
    /* uv timers count whole milliseconds: round up, never wake before the token. */
    int64_t ms = next > now ? (next - now + 999) / 1000 : 0;
    c->pace_wake_us = next;
    uv_timer_start(c->pace_timer, on_pace_timer, (uint64_t)ms, 0);
}

/*
 * fail_signed_waiters fails every signed request in the pacer with err:
 * nothing will bring them a nonce. Callers hold c->busy; a callback may free
 * c (then acme_client_free has freed the rest, which ends the loop).
 */
static void fail_signed_waiters(struct acme_client *c, int err, const char *text)
{
    struct acme_op *list = NULL;
    for (struct acme_op *op = c->ops; op; op = op->next) {
        if (op->waiting && op_signed(op) && rl_pacer_remove(c->pacer, &op->pace)) {
            op->next_fail = list;
            list = op;
        }
    }
    while (list && !c->closing) {
        struct acme_op *op = list;
        list = op->next_fail;
        op->waiting = 0;
        op_fail(op, err, text);
    }
}

/* start_nonce_head asks newNonce for one nonce (RFC 8555 §7.2), through the pacer. */
static int start_nonce_head(struct acme_client *c)
{
    struct acme_op *op = op_new(c, OP_NONCE);
    int err = op_send(op);
    if (err) {
        op_free(op);
        return err;
    }
    c->nonce_inflight = 1;
    return 0;
}

/*
 * pace_release sends what the pacer lets go now, oldest first, asks for a
 * nonce when a signed request has its token but no nonce, and sets the
 * timer for the rest. Callers hold c->busy; a callback run from here (a
 * failed send) may free c, which ends the loop.
 */
static void pace_release(struct acme_client *c)
{
    struct pace_ask ask = {c, 0};
    struct rl_pace_item *it;
    while (!c->closing) {
        int64_t now = pace_now_us();
        ask.nonce_blocked = 0;
        if (!(it = rl_pacer_pop(c->pacer, now, pace_ready, &ask)))
            break;
        struct acme_op *op = container_of(it, struct acme_op, pace);
        op->waiting = 0;
        c->stats.pace_wait_us += (uint64_t)(now - op->queued_us);
        /* Its token is taken and pace_ready saw a nonce for it. */
        int err = op_transmit(op);
        if (err)
            op_fail(op, err, cf_strerror(err));
    }
    if (c->closing)
        return;
    if (ask.nonce_blocked && !c->nonce_inflight) {
        int err = start_nonce_head(c);
        /* Nothing will bring a nonce: fail the waiters rather than strand them. */
        if (err)
            fail_signed_waiters(c, err, cf_strerror(err));
        if (c->closing)
            return;
    }
    pace_arm(c);
}

/*
 * pace_rate_limited holds op's endpoint class after the CA answered it
 * 429 (RFC 8555 §6.6: rateLimited), until retry_after (absolute Unix
 * seconds; 0: a second from now), at most ACME_CLIENT_PACE_FREEZE_MAX_MS.
 * Not for newOrder: there a 429 is mostly an order limit (per account,
 * domain, names) that the caller's buckets handle (scheduler/ratelimit.h),
 * and holding every newOrder for one domain's limit would be wrong.
 */
static void pace_rate_limited(struct acme_client *c, enum rl_kind cls, int64_t retry_after)
{
    c->stats.rate_limited++;
    if (cls == RL_EP_NEW_ORDER)
        return;
    int64_t wait_ms = retry_after > 0 ? retry_after * 1000 - cf_wall_ms() : 1000;
    if (wait_ms < 1000)
        wait_ms = 1000; /* Retry-After has whole seconds: the next one at the earliest */
    if (wait_ms > ACME_CLIENT_PACE_FREEZE_MAX_MS)
        wait_ms = ACME_CLIENT_PACE_FREEZE_MAX_MS;
    rl_pacer_freeze(c->pacer, cls, pace_now_us() + wait_ms * 1000);
    char ms[24];
    str_fmt(ms, sizeof(ms), "%lld", (long long)wait_ms);
    log_event(LOG_INFO, "acme_endpoint_rate_limited", "ca", c->directory_url, "class",
              rl_kind_name(cls), "hold_ms", ms, NULL);
}

/* ---- sending -------------------------------------------------------------- */

/*
 * op_transmit hands op to the http_client now; a signed op takes a nonce
 * from the pool, which the caller has checked is not empty. Returns 0 or an
 * error (op untouched).
 */
static int op_transmit(struct acme_op *op)
{
    struct acme_client *c = op->c;
    char nonce[ACME_NONCE_MAX];
    struct buf body;
    struct http_req req;
    int err;

    memset(&req, 0, sizeof(req));
    switch (op->kind) {
    case OP_DIRECTORY:
        req.method = HTTP_GET;
        req.url = c->directory_url;
        return http_request(c->http, &req, on_directory_done, op);
    case OP_NONCE:
        req.method = HTTP_HEAD;
        req.url = c->dir.new_nonce;
        return http_request(c->http, &req, on_nonce_done, op);
    case OP_ARI:
        req.method = HTTP_GET;
        req.url = op->url;
        return http_request(c->http, &req, on_ari_done, op);
    case OP_POST:
        break;
    }
    if (acme_nonce_take(&c->pool, nonce) != 0)
        return CF_EPROTO; /* not reached: pace_ready and op_send checked the pool */
    buf_init(&body);
    if (op->new_key) {
        /*
         * RFC 8555 §7.3.5: the inner JWS (new key, no nonce) names the
         * current key as oldKey; the outer one is signed by it with kid.
         */
        struct buf inner;
        buf_init(&inner);
        err = acme_key_change_payload(&inner, op->new_key, c->key, c->account_url, op->url);
        if (err == 0)
            err = acme_jws_build(&body, c->key, c->account_url, nonce, op->url, inner.data);
        buf_cleanup(&inner);
    } else {
        err = acme_jws_build(&body, c->key, op->use_jwk ? NULL : c->account_url, nonce, op->url,
                             op->payload);
    }
    if (err)
        goto out_free_body;
    req.method = HTTP_POST;
    req.url = op->url;
    req.body = body.data;
    req.body_len = body.len;
    req.content_type = "application/jose+json"; /* RFC 8555 §6.2 */
    err = http_request(c->http, &req, on_post_done, op);
    if (err == 0)
        c->stats.posts++;
out_free_body:
    buf_cleanup(&body);
    return err;
}

/*
 * op_send sends op now when its class has a token, nothing of its class
 * waits before it, and (signed) the pool has a nonce; otherwise it queues op
 * in the pacer (FIFO per class), asks for a nonce if only that is missing,
 * and sets the timer. No callback runs from here. Returns 0 or an error (op
 * untouched, not queued).
 */
static int op_send(struct acme_op *op)
{
    struct acme_client *c = op->c;
    enum rl_kind cls = op_class(op);
    int64_t now = pace_now_us();
    int have_nonce = !op_signed(op) || c->pool.count > 0;

    if (have_nonce && rl_pacer_try(c->pacer, cls, now))
        return op_transmit(op);
    op->waiting = 1;
    op->queued_us = now;
    rl_pacer_push(c->pacer, &op->pace, cls);
    if (!have_nonce && !c->nonce_inflight && rl_pacer_ready_at(c->pacer, cls, now) <= now) {
        int err = start_nonce_head(c);
        if (err) {
            rl_pacer_remove(c->pacer, &op->pace);
            op->waiting = 0;
            return err;
        }
    }
    c->stats.paced++;
    pace_arm(c);
    return 0;
}

static void on_nonce_done(void *arg, const struct http_resp *r)
{
    struct acme_op *op = arg;
    struct acme_client *c = op->c;
    op_free(op);
    if (!c)
        return;
    c->busy++;
    c->nonce_inflight = 0;
    c->stats.nonce_heads++;
    if (r->replay_nonce)
        acme_nonce_put(&c->pool, r->replay_nonce);
    if (r->status == 429)
        pace_rate_limited(c, RL_EP_NEW_NONCE, r->retry_after);
    if (c->pool.count > 0) {
        pace_release(c);
        goto out_unbusy;
    }
    /* No nonce came back: the signed requests waiting fail with what went wrong. */
    int err = r->error ? r->error : r->status == 429 ? CF_ERATELIMIT : CF_EPROTO;
    const char *text = r->error ? r->error_text : "newNonce gave no Replay-Nonce";
    log_event(LOG_WARN, "acme_nonce_failed", "ca", c->directory_url, "error", text, NULL);
    fail_signed_waiters(c, err, text);
    if (!c->closing)
        pace_release(c); /* the unsigned ones go on */
out_unbusy:
    client_unbusy(c);
}

static void on_post_done(void *arg, const struct http_resp *r)
{
    struct acme_op *op = arg;
    struct acme_client *c = op->c;
    struct acme_problem prob;
    struct acme_client_reply rep;

    if (!c) {
        op_free(op);
        return;
    }
    c->busy++;
    /* RFC 8555 §6.5: every response carries a fresh nonce, errors included. */
    if (r->replay_nonce) {
        acme_nonce_put(&c->pool, r->replay_nonce);
        c->stats.nonces_from_responses++;
    }
    if (op->abandoned) {
        /* Nobody waits for this answer any more: its nonce was all it had to give. */
        op_free(op);
        pace_release(c);
        goto out_unbusy;
    }

    memset(&rep, 0, sizeof(rep));
    rep.status = r->status;
    rep.error = r->error;
    rep.error_text = r->error_text ? r->error_text : "";
    rep.body = r->body.data ? r->body.data : "";
    rep.body_len = r->body.len;
    rep.content_type = r->content_type;
    rep.location = r->location;
    rep.retry_after = r->retry_after;
    rep.nlinks = r->nlinks;
    rep.links = r->links;

    if (!r->error && r->status >= 400) {
        rep.error = CF_EACME;
        rep.error_text = "ACME error";
        if (r->body.len > 0 && acme_problem_parse(&prob, rep.body, r->body.len) == 0) {
            rep.problem = &prob;
            rep.error_text = prob.detail[0] ? prob.detail : prob.type;
            /* RFC 8555 §6.5: retry a rejected nonce with a fresh one. */
            if (acme_problem_is(&prob, "badNonce") && op->retries < c->max_retries) {
                op->retries++;
                c->stats.bad_nonce_retries++;
                log_event(LOG_DEBUG, "acme_bad_nonce_retry", "url", op->url, NULL);
                int err = op_send(op);
                if (err)
                    op_fail(op, err, cf_strerror(err));
                if (!c->closing)
                    pace_release(c);
                goto out_unbusy;
            }
            if (acme_problem_is(&prob, "rateLimited"))
                rep.error = CF_ERATELIMIT;
        }
        /* RFC 8555 §6.6: this endpoint waits for the Retry-After, whoever asks next. */
        if (r->status == 429)
            pace_rate_limited(c, op_class(op), r->retry_after);
    }
    rep.bad_nonce_retries = op->retries;
    if (op->new_key && rep.error == 0) {
        if (r->status == 200) {
            /* RFC 8555 §7.3.5: from now on the account is the new key's. */
            c->key = op->new_key;
            log_event(LOG_INFO, "acme_key_changed", "ca", c->directory_url, "account",
                      c->account_url, NULL);
        } else {
            rep.error = CF_EPROTO;
            rep.error_text = "keyChange: unexpected HTTP status";
        }
    }
    if (op->new_key && rep.error)
        log_event(LOG_WARN, "acme_key_change_failed", "ca", c->directory_url, "error",
                  rep.error_text, NULL);
    /* The waiters get this answer's nonce before the callback makes new requests. */
    pace_release(c);
    if (c->closing) {
        op_free(op); /* the client is gone: so is the callback's job */
        goto out_unbusy;
    }
    op_finish(op, &rep);
out_unbusy:
    client_unbusy(c);
}

static void start_finish(struct acme_client *c, int err, const char *detail)
{
    client_set_state(c, err ? CLIENT_FAILED : CLIENT_READY);
    if (err)
        log_event(LOG_WARN, "acme_client_start_failed", "ca", c->directory_url, "error", detail,
                  NULL);
    if (c->start_cb)
        c->start_cb(c->start_arg, err, detail);
}

static void on_account_done(void *arg, const struct acme_client_reply *r)
{
    struct acme_client *c = arg;
    if (r->error) {
        start_finish(c, r->error, r->error_text);
        return;
    }
    /* RFC 8555 §7.3: 201 for a new account, 200 for an existing one (§7.3.1). */
    if ((r->status != 200 && r->status != 201) || !r->location || !r->location[0]) {
        start_finish(c, CF_EPROTO, "newAccount: no account URL in the response");
        return;
    }
    free(c->account_url);
    c->account_url = xstrdup(r->location);
    start_finish(c, 0, r->status == 201 ? "created" : "existing");
}

static int start_new_account(struct acme_client *c)
{
    struct buf p;
    struct acme_op *op = op_new(c, OP_POST);
    buf_init(&p);
    buf_puts(&p, "{\"termsOfServiceAgreed\":true");
    if (c->contact) {
        struct buf m;
        buf_init(&m);
        buf_printf(&m, "mailto:%s", c->contact);
        buf_puts(&p, ",\"contact\":[");
        buf_json_string(&p, m.data, m.len);
        buf_putc(&p, ']');
        buf_cleanup(&m);
    }
    if (c->eab_kid) {
        /* RFC 8555 §7.3.4: the binding is a JWS over our JWK, MACed with the CA's key. */
        buf_puts(&p, ",\"externalAccountBinding\":");
        int err =
            acme_eab_build(&p, c->key, c->eab_kid, c->eab_key, c->eab_key_len, c->dir.new_account);
        if (err) {
            buf_cleanup(&p);
            op_free(op);
            return err;
        }
    } else if (c->dir.external_account_required) {
        buf_cleanup(&p);
        op_free(op);
        return CF_ECONFIG;
    }
    buf_putc(&p, '}');
    op->use_jwk = 1;
    op->url = xstrdup(c->dir.new_account);
    op->payload = xstrdup(p.data);
    op->cb = on_account_done;
    op->arg = c;
    buf_cleanup(&p);
    client_set_state(c, CLIENT_ACCOUNT);
    int err = op_send(op);
    if (err)
        op_free(op);
    return err;
}

static void on_directory_done(void *arg, const struct http_resp *r)
{
    struct acme_op *op = arg;
    struct acme_client *c = op->c;
    const char *perr = NULL;
    op_free(op);
    if (!c)
        return;
    c->busy++;
    if (r->replay_nonce)
        acme_nonce_put(&c->pool, r->replay_nonce);
    if (r->error) {
        start_finish(c, r->error, r->error_text);
        goto out_unbusy;
    }
    if (r->status != 200) {
        start_finish(c, CF_EACME, "directory: unexpected HTTP status");
        goto out_unbusy;
    }
    if (acme_directory_parse(&c->dir, r->body.data ? r->body.data : "", r->body.len, &perr)) {
        start_finish(c, CF_EPARSE, perr ? perr : "directory does not parse");
        goto out_unbusy;
    }
    c->have_dir = 1;
    if (c->account_url) {
        start_finish(c, 0, "known");
        goto out_unbusy;
    }
    int err = start_new_account(c);
    if (err == CF_ECONFIG)
        start_finish(c, err,
                     "the CA requires External Account Binding (init --eab-kid --eab-hmac-file)");
    else if (err)
        start_finish(c, err, cf_strerror(err));
out_unbusy:
    client_unbusy(c);
}

int acme_client_new(struct acme_client **out, uv_loop_t *loop, struct http_client *http,
                    const struct acme_client_opts *o)
{
    *out = NULL;
    struct rl_profile prof;
    if (!o || !o->directory_url || !o->directory_url[0] || !o->account_key || !http || !loop)
        return CF_EUSAGE;
    if (o->max_bad_nonce_retries < 0 ||
        o->max_bad_nonce_retries > ACME_CLIENT_BAD_NONCE_RETRIES_MAX)
        return CF_EUSAGE;
    if (o->pace)
        prof = *o->pace;
    else
        rl_profile_for_directory(&prof, o->directory_url);
    struct rl_pacer *pacer = rl_pacer_new(&prof, o->pace_jitter_ms == 0  ? RL_PACE_JITTER_MS
                                                 : o->pace_jitter_ms < 0 ? 0
                                                                         : o->pace_jitter_ms);
    if (!pacer)
        return CF_EUSAGE;
    struct acme_client *c = xcalloc(1, sizeof(*c));
    c->pacer = pacer;
    c->loop = loop;
    c->http = http;
    c->key = o->account_key;
    c->directory_url = xstrdup(o->directory_url);
    if (o->contact_email && o->contact_email[0])
        c->contact = xstrdup(o->contact_email);
    if (o->account_url && o->account_url[0])
        c->account_url = xstrdup(o->account_url);
    if (o->eab_kid && o->eab_kid[0] && o->eab_key && o->eab_key_len) {
        c->eab_kid = xstrdup(o->eab_kid);
        c->eab_key = xmalloc(o->eab_key_len);
        memcpy(c->eab_key, o->eab_key, o->eab_key_len);
        c->eab_key_len = o->eab_key_len;
    }
    c->max_retries =
        o->max_bad_nonce_retries ? o->max_bad_nonce_retries : ACME_CLIENT_BAD_NONCE_RETRIES;
    acme_nonce_pool_init(&c->pool);
    *out = c;
    return 0;
}

void acme_client_free(struct acme_client *c)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    while (c->ops) {
        struct acme_op *op = c->ops;
        if (op->waiting)
            op_free(op);
        else
            op_unlink(op); /* freed by its http callback */
    }
    if (c->pace_timer)
        uv_timer_stop(c->pace_timer);
    c->pace_wake_us = 0;
    if (c->busy == 0)
        client_destroy(c);
}

int acme_client_start(struct acme_client *c, acme_client_start_cb cb, void *arg)
{
    if (c->state != CLIENT_NEW)
        return CF_EUSAGE;
    c->start_cb = cb;
    c->start_arg = arg;
    struct acme_op *op = op_new(c, OP_DIRECTORY);
    int err = op_send(op);
    if (err) {
        op_free(op);
        return err;
    }
    client_set_state(c, CLIENT_DIRECTORY);
    return 0;
}

int acme_client_post(struct acme_client *c, const char *url, const char *payload_json,
                     acme_client_post_cb cb, void *arg)
{
    return acme_client_post_op(c, NULL, url, payload_json, cb, arg);
}

int acme_client_post_op(struct acme_client *c, struct acme_op **out, const char *url,
                        const char *payload_json, acme_client_post_cb cb, void *arg)
{
    if (c->state != CLIENT_READY || !url || !payload_json)
        return CF_EUSAGE;
    struct acme_op *op = op_new(c, OP_POST);
    op->url = xstrdup(url);
    op->payload = xstrdup(payload_json);
    op->cb = cb;
    op->arg = arg;
    int err = op_send(op);
    if (err)
        op_free(op);
    else if (out)
        *out = op;
    return err;
}

void acme_client_abandon(struct acme_client *c, struct acme_op *op)
{
    if (!op || op->c != c || op->abandoned)
        return;
    if (op->waiting) {
        /* Not sent yet: take it out of the pacer and drop it. */
        rl_pacer_remove(c->pacer, &op->pace);
        op_free(op);
        pace_arm(c);
        return;
    }
    op->abandoned = 1;
    op->cb = NULL;
    op->arg = NULL;
}

static void on_ari_done(void *arg, const struct http_resp *r)
{
    struct acme_op *op = arg;
    struct acme_client *c = op->c;
    acme_renewal_info_cb cb = op->ari_cb;
    void *cb_arg = op->arg;
    struct acme_renewal_reply rep;
    struct acme_renewal_info info;
    struct acme_problem prob;
    const char *perr = NULL;
    const char *body = r->body.data ? r->body.data : "";

    op_free(op);
    if (!c)
        return;
    c->busy++;
    if (r->replay_nonce) {
        acme_nonce_put(&c->pool, r->replay_nonce);
        pace_release(c); /* a nonce for a signed request that waits */
        if (c->closing)
            goto out_unbusy;
    }
    memset(&rep, 0, sizeof(rep));
    rep.status = r->status;
    rep.error = r->error;
    rep.error_text = r->error ? r->error_text : "";
    if (r->retry_after > 0) {
        /* RFC 9773 §4.3: under a minute counts as a minute, over a day as a day. */
        int64_t now = cf_wall_ms() / 1000;
        rep.retry_after = r->retry_after;
        if (rep.retry_after < now + ACME_ARI_RETRY_MIN_S)
            rep.retry_after = now + ACME_ARI_RETRY_MIN_S;
        if (rep.retry_after > now + ACME_ARI_RETRY_MAX_S)
            rep.retry_after = now + ACME_ARI_RETRY_MAX_S;
    }
    if (!r->error && r->status == 429)
        pace_rate_limited(c, RL_EP_ARI, r->retry_after);
    if (!r->error && r->status >= 400) {
        rep.error = CF_EACME;
        rep.error_text = "renewalInfo: ACME error";
        if (r->body.len > 0 && acme_problem_parse(&prob, body, r->body.len) == 0) {
            rep.problem = &prob;
            rep.error_text = prob.detail[0] ? prob.detail : prob.type;
        }
    } else if (!r->error && r->status != 200) {
        rep.error = CF_EPROTO;
        rep.error_text = "renewalInfo: unexpected HTTP status";
    } else if (!r->error) {
        /* RFC 9773 §4.2: an invalid object is treated as no answer at all. */
        if (acme_renewal_info_parse(&info, body, r->body.len, &perr) == 0) {
            rep.info = &info;
        } else {
            rep.error = CF_EPARSE;
            rep.error_text = perr ? perr : "renewalInfo does not parse";
        }
    }
    cb(cb_arg, &rep);
out_unbusy:
    client_unbusy(c);
}

int acme_client_renewal_info(struct acme_client *c, const char *cert_id, acme_renewal_info_cb cb,
                             void *arg)
{
    struct buf url;
    if (!c->have_dir || !cert_id || !cb || !acme_ari_cert_id_ok(cert_id))
        return CF_EUSAGE;
    if (!c->dir.renewal_info[0])
        return CF_ENOTFOUND;
    buf_init(&url);
    /* RFC 9773 §4.2: the certID is a path segment appended to the renewalInfo URL. */
    buf_puts(&url, c->dir.renewal_info);
    if (url.len == 0 || url.data[url.len - 1] != '/')
        buf_putc(&url, '/');
    buf_puts(&url, cert_id);
    struct acme_op *op = op_new(c, OP_ARI);
    op->url = xstrdup(url.data);
    op->ari_cb = cb;
    op->arg = arg;
    buf_cleanup(&url);
    int err = op_send(op);
    if (err)
        op_free(op);
    return err;
}

int acme_client_key_change(struct acme_client *c, const struct crypto_key *new_key,
                           acme_client_post_cb cb, void *arg)
{
    if (c->state != CLIENT_READY || !new_key || new_key == c->key || c->key_changing ||
        !c->dir.key_change[0])
        return CF_EUSAGE;
    struct acme_op *op = op_new(c, OP_POST);
    op->new_key = new_key;
    op->url = xstrdup(c->dir.key_change);
    op->cb = cb;
    op->arg = arg;
    int err = op_send(op);
    if (err) {
        op_free(op);
        return err;
    }
    c->key_changing = 1;
    return 0;
}

const char *acme_client_account_url(const struct acme_client *c)
{
    return c->account_url;
}

const struct acme_directory *acme_client_directory(const struct acme_client *c)
{
    return c->have_dir ? &c->dir : NULL;
}

void acme_client_get_stats(const struct acme_client *c, struct acme_client_stats *out)
{
    *out = c->stats;
}

/* The longest first-poll delay kept: far beyond any job's poll interval. */
#define FIRST_POLL_MAX_MS 60000

int acme_client_first_poll_ms(const struct acme_client *c, enum acme_poll_kind kind, int cap_ms)
{
    int ms = (unsigned)kind < ACME_POLL__COUNT ? c->first_poll_ms[kind] : 0;
    if (ms <= 0)
        ms = ACME_POLL_FIRST_START_MS;
    if (ms > cap_ms)
        ms = cap_ms;
    if (ms < ACME_POLL_FIRST_MIN_MS && cap_ms >= ACME_POLL_FIRST_MIN_MS)
        ms = ACME_POLL_FIRST_MIN_MS;
    return ms;
}

void acme_client_first_poll_seen(struct acme_client *c, enum acme_poll_kind kind, int delay_ms,
                                 int done)
{
    int *est;
    if ((unsigned)kind >= ACME_POLL__COUNT || delay_ms <= 0)
        return;
    est = &c->first_poll_ms[kind];
    /*
     * Judged by the delay this job waited, not by the estimate now: jobs
     * polled together report together, and fifty answers to one delay must
     * move the estimate once, not fifty times.
     */
    if (done) {
        int sooner = delay_ms - delay_ms / 10;
        if (*est <= 0 || sooner < *est)
            *est = sooner < ACME_POLL_FIRST_MIN_MS ? ACME_POLL_FIRST_MIN_MS : sooner;
    } else {
        int later = delay_ms > FIRST_POLL_MAX_MS / 2 ? FIRST_POLL_MAX_MS : 2 * delay_ms;
        if (later > *est)
            *est = later;
    }
}
