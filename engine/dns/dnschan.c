/*
 * dnschan.c - c-ares channels driven by the libuv loop.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "buf.h"
#include "config.h"
#include "dnschan.h"
#include "dnswire.h"
#include "err.h"

/* One watched socket. c-ares says when to add, change and drop it. */
struct sock_watch {
    uv_poll_t poll;
    ares_socket_t fd;
    struct dns_chan *ch;
    struct sock_watch *next;
};

struct query {
    struct dns_chan *ch;
    dns_answer_cb cb;
    void *arg;
    struct query *next; /* in the wait queue */
    size_t qlen;
    uint8_t qbuf[]; /* kept only while queued */
};

struct dns_chan {
    uv_loop_t *loop;
    ares_channel ares;
    uv_timer_t timer;
    uv_prepare_t prepare;
    struct sock_watch *watches;
    size_t inflight; /* callbacks owed, queued or sent */
    size_t sent;     /* handed to c-ares */
    size_t max_sent;
    struct query *wait_head, *wait_tail;
    int rd;
    int closing;
    int timer_dirty;
    int handles_open;
};

static void on_watch_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct dns_chan *ch = h->data;
    if (--ch->handles_open == 0)
        free(ch);
}

static void on_timer(uv_timer_t *t);

/*
 * rearm_timer sets the timer to c-ares's next timeout. ares_timeout walks
 * every outstanding query in c-ares 1.18, so it runs once per loop
 * iteration (from the prepare handle), not once per query sent.
 */
static void rearm_timer(struct dns_chan *ch)
{
    ch->timer_dirty = 0;
    if (ch->closing)
        return;
    struct timeval tv, *t = ares_timeout(ch->ares, NULL, &tv);
    if (!t) {
        uv_timer_stop(&ch->timer);
        return;
    }
    uint64_t ms = (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000;
    uv_timer_start(&ch->timer, on_timer, ms ? ms : 1, 0);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock_watch *w = p->data;
    struct dns_chan *ch = w->ch;
    ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
    /* An error on the socket: let c-ares read it and fail the queries on it. */
    if (status < 0 || (events & UV_READABLE))
        rfd = w->fd;
    if (status == 0 && (events & UV_WRITABLE))
        wfd = w->fd;
    ares_process_fd(ch->ares, rfd, wfd);
    ch->timer_dirty = 1;
}

static void on_prepare(uv_prepare_t *p)
{
    struct dns_chan *ch = p->data;
    if (ch->timer_dirty)
        rearm_timer(ch);
}

static void on_timer(uv_timer_t *t)
{
    struct dns_chan *ch = t->data;
    ares_process_fd(ch->ares, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearm_timer(ch);
}

/* c-ares: socket fd wants (readable, writable) watching; (0, 0) = it is about to close. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_chan *ch = data;
    struct sock_watch **pp = &ch->watches, *w;
    while ((w = *pp) && w->fd != fd)
        pp = &w->next;
    if (!readable && !writable) {
        if (w) {
            *pp = w->next;
            /* uv_close stops polling now, before c-ares closes the descriptor. */
            uv_close((uv_handle_t *)&w->poll, on_watch_closed);
        }
        return;
    }
    if (!w) {
        w = xcalloc(1, sizeof(*w));
        w->fd = fd;
        w->ch = ch;
        if (uv_poll_init_socket(ch->loop, &w->poll, fd) != 0) {
            free(w);
            return; /* the query on it times out */
        }
        w->poll.data = w;
        w->next = ch->watches;
        ch->watches = w;
    }
    uv_poll_start(&w->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

int dns_chan_new(struct dns_chan **out, uv_loop_t *loop, const char *server,
                 const struct dns_chan_opts *opts)
{
    struct ares_options ao;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
    struct dns_chan *ch = xcalloc(1, sizeof(*ch));
    int rc;

    memset(&ao, 0, sizeof(ao));
    ao.sock_state_cb = on_sock_state;
    ao.sock_state_cb_data = ch;
    ao.timeout = opts && opts->timeout_ms ? opts->timeout_ms : 2000;
    ao.tries = opts && opts->tries ? opts->tries : 2;
    /*
     * We build our own queries (ares_send), so search lists do not apply.
     * NOCHECKRESP: hand SERVFAIL, REFUSED and NOTIMP answers over instead of
     * retrying and reporting ECONNREFUSED (c-ares 1.18); the callers check
     * the rcode and that the answer is for their question.
     */
    ao.flags =
        ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_STAYOPEN | ARES_FLAG_NOCHECKRESP;
    if (opts && opts->norecurse)
        ao.flags |= ARES_FLAG_NORECURSE;
    if (opts && opts->edns) {
        ao.flags |= ARES_FLAG_EDNS;
        ao.ednspsz = 1232;
        mask |= ARES_OPT_EDNSPSZ;
    }
    ch->loop = loop;
    ch->rd = !(opts && opts->norecurse);
    if (ares_init_options(&ch->ares, &ao, mask) != ARES_SUCCESS) {
        free(ch);
        return CF_EDNS;
    }
    if (server) {
        char host[64], csv[96];
        int port;
        if (config_parse_addr(server, host, sizeof(host), &port, 53) != 0) {
            rc = CF_ECONFIG;
            goto out_destroy;
        }
        if (strchr(host, ':'))
            snprintf(csv, sizeof(csv), "[%s]:%d", host, port);
        else
            snprintf(csv, sizeof(csv), "%s:%d", host, port);
        if (ares_set_servers_ports_csv(ch->ares, csv) != ARES_SUCCESS) {
            rc = CF_ECONFIG;
            goto out_destroy;
        }
    }
    ch->max_sent = opts && opts->max_inflight ? opts->max_inflight : 1000;
    uv_timer_init(loop, &ch->timer);
    ch->timer.data = ch;
    uv_prepare_init(loop, &ch->prepare);
    ch->prepare.data = ch;
    uv_prepare_start(&ch->prepare, on_prepare);
    /* The prepare handle must not keep the loop alive by itself. */
    uv_unref((uv_handle_t *)&ch->prepare);
    ch->handles_open = 2;
    *out = ch;
    return 0;

out_destroy:
    ares_destroy(ch->ares);
    free(ch);
    return rc;
}

static void on_ares_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct query *q = arg;
    struct dns_chan *ch = q->ch;
    (void)timeouts;
    int rc;
    switch (status) {
    case ARES_SUCCESS:
        rc = 0;
        break;
    /*
     * c-ares maps RCODEs to these. For NXDOMAIN and NODATA the answer is
     * handed over; for SERVFAIL, REFUSED, FORMERR and NOTIMP c-ares 1.18
     * keeps it (it tried the next server), so only the code says what
     * happened.
     */
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
        rc = abuf && alen > 0 ? 0 : CF_EDNS;
        break;
    case ARES_ESERVFAIL:
        rc = abuf && alen > 0 ? 0 : CF_EDNS_SERVFAIL;
        break;
    case ARES_EREFUSED:
        rc = abuf && alen > 0 ? 0 : CF_EDNS_REFUSED;
        break;
    case ARES_ENOTIMP:
    case ARES_EFORMERR:
        rc = abuf && alen > 0 ? 0 : CF_EDNS_FORMERR;
        break;
    case ARES_ECONNREFUSED:
        rc = CF_ECONNREFUSED;
        break;
    case ARES_ETIMEOUT:
        rc = CF_ETIMEOUT;
        break;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        rc = CF_ECANCELED;
        break;
    default:
        rc = CF_EDNS;
        break;
    }
    ch->inflight--;
    ch->sent--;
    ch->timer_dirty = 1;
    q->cb(q->arg, rc, rc == 0 ? abuf : NULL, rc == 0 ? (size_t)alen : 0);
    free(q);
    /* A slot is free: send the next waiting query. */
    while (!ch->closing && ch->wait_head && ch->sent < ch->max_sent) {
        struct query *w = ch->wait_head;
        ch->wait_head = w->next;
        if (!ch->wait_head)
            ch->wait_tail = NULL;
        ch->sent++;
        ares_send(ch->ares, w->qbuf, (int)w->qlen, on_ares_answer, w);
    }
}

int dns_chan_query(struct dns_chan *ch, const char *name, uint16_t qtype, dns_answer_cb cb,
                   void *arg)
{
    uint8_t qbuf[DNSWIRE_UDP_MIN];
    size_t qlen;
    if (ch->closing)
        return CF_ECANCELED;
    /* The id is replaced by c-ares; EDNS is added by c-ares when configured. */
    int rc = dnswire_build_query(qbuf, sizeof(qbuf), &qlen, 0, name, qtype, ch->rd, 0);
    if (rc)
        return rc;
    ch->inflight++;
    ch->timer_dirty = 1;
    if (ch->sent >= ch->max_sent) {
        /* Over the cap: wait in line (a resolver drops floods; so may an authority). */
        struct query *q = xmalloc(sizeof(*q) + qlen);
        q->ch = ch;
        q->cb = cb;
        q->arg = arg;
        q->next = NULL;
        q->qlen = qlen;
        memcpy(q->qbuf, qbuf, qlen);
        if (ch->wait_tail)
            ch->wait_tail->next = q;
        else
            ch->wait_head = q;
        ch->wait_tail = q;
        return 0;
    }
    struct query *q = xmalloc(sizeof(*q));
    q->ch = ch;
    q->cb = cb;
    q->arg = arg;
    q->next = NULL;
    ch->sent++;
    ares_send(ch->ares, qbuf, (int)qlen, on_ares_answer, q);
    return 0;
}

int dns_chan_servers(struct dns_chan *ch, char (*addrs)[48], int *ports, size_t cap)
{
    struct ares_addr_port_node *list = NULL;
    size_t n = 0;
    if (ares_get_servers_ports(ch->ares, &list) != ARES_SUCCESS)
        return CF_EDNS;
    for (struct ares_addr_port_node *s = list; s; s = s->next, n++) {
        if (n >= cap)
            continue;
        if (!inet_ntop(s->family,
                       s->family == AF_INET ? (const void *)&s->addr.addr4
                                            : (const void *)&s->addr.addr6,
                       addrs[n], 48))
            addrs[n][0] = '\0';
        ports[n] = s->udp_port ? s->udp_port : 53;
    }
    ares_free_data(list);
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

size_t dns_chan_inflight(const struct dns_chan *ch)
{
    return ch->inflight;
}

void dns_chan_free(struct dns_chan *ch)
{
    if (!ch)
        return;
    /*
     * ares_destroy runs every pending callback with ARES_EDESTRUCTION; a
     * callback that queries again is refused because closing is set.
     */
    ch->closing = 1;
    ares_destroy(ch->ares);
    /* Queries still waiting in line were never sent: they end here. */
    while (ch->wait_head) {
        struct query *w = ch->wait_head;
        ch->wait_head = w->next;
        ch->inflight--;
        w->cb(w->arg, CF_ECANCELED, NULL, 0);
        free(w);
    }
    ch->wait_tail = NULL;
    while (ch->watches) {
        struct sock_watch *w = ch->watches;
        ch->watches = w->next;
        uv_close((uv_handle_t *)&w->poll, on_watch_closed);
    }
    uv_close((uv_handle_t *)&ch->timer, on_handle_closed);
    uv_close((uv_handle_t *)&ch->prepare, on_handle_closed);
}
