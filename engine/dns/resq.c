/*
 * resq.c - questions to the recursive resolver: udpq for UDP, c-ares for TCP
 * and failover, identical questions in flight coalesced.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dnswire.h"
#include "err.h"
#include "resq.h"
#include "udpq.h"

/* c-ares's share: TC retries and failover are rare, so a few at a time suffice. */
#define CARES_FALLBACK_INFLIGHT 64

/* One asker of a question. The first is kept inside the question itself. */
struct rwait {
    struct rwait *next;
    dns_answer_cb cb;
    void *arg;
};

/* One distinct question in flight, in the hash table until its answer is handed out. */
struct rq {
    struct resq *r;
    struct rq *hnext;
    uint64_t hash;
    uint16_t qtype;
    uint8_t via_cares; /* sent, or sent again, through c-ares */
    size_t wlen;
    uint8_t wire[DNSWIRE_NAME_MAX]; /* lower case (dnswire_name_from_text) */
    struct rwait first;
    struct rwait *more, *more_tail;
};

struct resq {
    uv_loop_t *loop;
    enum resq_client client;
    struct udpq *udp;    /* NULL in RESQ_CARES */
    struct dns_chan *ch; /* c-ares: TC retries, failover, or everything in RESQ_CARES */
    int failover;        /* several system resolvers: a UDP timeout is asked again via c-ares */
    struct rq **buckets; /* chained hash table of the questions in flight */
    size_t nbuckets, count;
    struct rq *free_rq; /* spare question and waiter records */
    struct rwait *free_w;
    int closing;
    int busy; /* inside on_answer: resq_free waits until it returns */
    int free_pending;
    struct resq_stats stats;
};

static uint64_t hash_q(const uint8_t *wire, size_t wlen, uint16_t qtype)
{
    uint64_t h = 1469598103934665603ULL ^ qtype;
    for (size_t i = 0; i < wlen; i++) {
        h ^= wire[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static struct rq **find_slot(struct resq *r, uint64_t h, const uint8_t *wire, size_t wlen,
                             uint16_t qtype)
{
    struct rq **pp = &r->buckets[h & (r->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->hnext) {
        struct rq *q = *pp;
        if (q->hash == h && q->qtype == qtype && q->wlen == wlen &&
            memcmp(q->wire, wire, wlen) == 0)
            break;
    }
    return pp;
}

static void grow(struct resq *r)
{
    size_t n = r->nbuckets * 2;
    struct rq **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < r->nbuckets; i++) {
        struct rq *q = r->buckets[i];
        while (q) {
            struct rq *next = q->hnext;
            q->hnext = b[q->hash & (n - 1)];
            b[q->hash & (n - 1)] = q;
            q = next;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->nbuckets = n;
}

static void unlink_rq(struct resq *r, struct rq *q)
{
    struct rq **pp = &r->buckets[q->hash & (r->nbuckets - 1)];
    while (*pp && *pp != q)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = q->hnext;
        r->count--;
    }
}

static void really_free(struct resq *r)
{
    while (r->free_rq) {
        struct rq *q = r->free_rq;
        r->free_rq = q->hnext;
        free(q);
    }
    while (r->free_w) {
        struct rwait *w = r->free_w;
        r->free_w = w->next;
        free(w);
    }
    free(r->buckets);
    free(r);
}

static int send_cares(struct resq *r, struct rq *q);

static void on_answer(void *arg, int status, const uint8_t *ans, size_t len)
{
    struct rq *q = arg;
    struct resq *r = q->r;
    if (!q->via_cares && !r->closing &&
        (status == CF_EDNS || (status == CF_ETIMEOUT && r->failover))) {
        /* udpq's CF_EDNS is a TC answer: c-ares asks again and goes on over TCP. */
        if (status == CF_EDNS)
            r->stats.tc_retries++;
        if (send_cares(r, q) == 0)
            return;
    }
    unlink_rq(r, q);
    r->busy++;
    /* Every asker in turn; one that asks the same again starts a new question. */
    q->first.cb(q->first.arg, status, ans, len);
    struct rwait *w = q->more;
    while (w) {
        struct rwait *next = w->next;
        w->cb(w->arg, status, ans, len);
        w->next = r->free_w;
        r->free_w = w;
        w = next;
    }
    q->hnext = r->free_rq;
    r->free_rq = q;
    if (--r->busy == 0 && r->free_pending)
        really_free(r);
}

static int send_cares(struct resq *r, struct rq *q)
{
    char text[DNSWIRE_NAME_TEXT_MAX];
    if (!r->ch || dnswire_name_to_text(text, sizeof(text), q->wire, q->wlen) != 0)
        return CF_EDNS;
    q->via_cares = 1;
    r->stats.cares++;
    return dns_chan_query(r->ch, text, q->qtype, on_answer, q);
}

int resq_query(struct resq *r, const char *name, uint16_t qtype, dns_answer_cb cb, void *arg)
{
    uint8_t wire[DNSWIRE_NAME_MAX];
    size_t wlen;
    if (r->closing)
        return CF_ECANCELED;
    if (dnswire_name_from_text(wire, &wlen, name) != 0)
        return CF_EPARSE;
    r->stats.asked++;
    uint64_t h = hash_q(wire, wlen, qtype);
    struct rq **pp = find_slot(r, h, wire, wlen, qtype);
    if (*pp) {
        struct rq *q = *pp;
        struct rwait *w = r->free_w;
        if (w)
            r->free_w = w->next;
        else
            w = xmalloc(sizeof(*w));
        w->next = NULL;
        w->cb = cb;
        w->arg = arg;
        if (q->more_tail)
            q->more_tail->next = w;
        else
            q->more = w;
        q->more_tail = w;
        r->stats.coalesced++;
        return 0;
    }
    struct rq *q = r->free_rq;
    if (q)
        r->free_rq = q->hnext;
    else
        q = xmalloc(sizeof(*q));
    q->r = r;
    q->hash = h;
    q->qtype = qtype;
    q->via_cares = 0;
    q->wlen = wlen;
    memcpy(q->wire, wire, wlen);
    q->first.next = NULL;
    q->first.cb = cb;
    q->first.arg = arg;
    q->more = q->more_tail = NULL;
    /* In the table before sending: c-ares may answer from inside dns_chan_query. */
    q->hnext = *pp;
    *pp = q;
    r->count++;
    /* c-ares may run on_answer (and recycle q) from inside the call; then it returns 0. */
    int rc;
    if (r->udp) {
        r->stats.udp++;
        rc = udpq_query_wire(r->udp, wire, wlen, qtype, on_answer, q);
    } else {
        rc = send_cares(r, q);
    }
    if (rc != 0) {
        unlink_rq(r, q);
        q->hnext = r->free_rq;
        r->free_rq = q;
        return rc;
    }
    if (r->count * 2 > r->nbuckets)
        grow(r);
    return 0;
}

int resq_new(struct resq **out, uv_loop_t *loop, const char *server, const struct resq_opts *o)
{
    struct resq *r = xcalloc(1, sizeof(*r));
    struct dns_chan_opts co = {
        .norecurse = 0,
        .timeout_ms = o && o->timeout_ms ? o->timeout_ms : 1500,
        .tries = o && o->tries ? o->tries : 3,
        .edns = 1,
    };
    size_t inflight = o && o->max_inflight ? o->max_inflight : 500;
    int rc;
    r->loop = loop;
    r->client = o ? o->client : RESQ_UDP;
    r->nbuckets = 256;
    r->buckets = xcalloc(r->nbuckets, sizeof(*r->buckets));
    co.max_inflight = r->client == RESQ_CARES ? inflight : CARES_FALLBACK_INFLIGHT;
    rc = dns_chan_new(&r->ch, loop, server, &co);
    if (rc)
        goto out_free;
    if (r->client == RESQ_UDP) {
        char addrs[2][48];
        int ports[2];
        struct udpq_opts uo = {
            .timeout_ms = co.timeout_ms,
            .tries = co.tries,
            .max_inflight = inflight,
            .rd = 1,
        };
        int n = dns_chan_servers(r->ch, addrs, ports, 2);
        if (n <= 0) {
            rc = n < 0 ? n : CF_ECONFIG;
            goto out_free_chan;
        }
        /* Our own first server; c-ares's list when the system has several. */
        r->failover = server == NULL && n > 1;
        uo.port = ports[0];
        if (udpq_new(&r->udp, loop, addrs[0], &uo) != 0) {
            /* An address our client cannot use (a link-local one, say): c-ares asks. */
            r->udp = NULL;
            r->client = RESQ_CARES;
            r->failover = 0;
        }
    }
    *out = r;
    return 0;
out_free_chan:
    dns_chan_free(r->ch);
out_free:
    free(r->buckets);
    free(r);
    return rc;
}

size_t resq_inflight(const struct resq *r)
{
    return r->count;
}

void resq_get_stats(const struct resq *r, struct resq_stats *out)
{
    *out = r->stats;
}

void resq_free(struct resq *r)
{
    if (!r)
        return;
    r->closing = 1;
    r->busy++;
    /* Each cancels what it holds; the askers hear CF_ECANCELED. */
    udpq_free(r->udp);
    r->udp = NULL;
    dns_chan_free(r->ch);
    r->ch = NULL;
    r->free_pending = 1;
    if (--r->busy == 0)
        really_free(r);
}
