/*
 * rfc2136.c - the RFC 2136 provisioner: batched, TSIG-signed UPDATE messages
 * to one primary, over UDP or TCP, on the libuv loop.
 *
 * Life of a change: rfc2136_add_txt/del_txt append it to the queue and arm a
 * zero timer; at the next loop iteration the flush packs the queue into
 * messages (struct msg), which are signed, sent and put on the in-flight
 * list, kept in deadline order (every (re)send gets now + timeout and goes
 * to the tail, so one timer for the head serves them all). An answer, the
 * last deadline or rfc2136_free finishes the message and runs the callbacks
 * of its changes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "dnswire.h"
#include "err.h"
#include "log.h"
#include "rfc2136.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define DEFAULT_TIMEOUT_MS 3000
#define DEFAULT_TRIES 3
#define DEFAULT_TTL 60
#define DEFAULT_MAX_CHANGES 200
#define DEFAULT_MAX_INFLIGHT 8
#define MAX_INFLIGHT_LIMIT 1024
/* RFC 1035 §4.2.2: a message over TCP has a 16-bit length. */
#define MSG_MAX 65535
#define TCP_FRAME_MAX (2 + MSG_MAX)
/* Buckets of the in-flight guard (changes in flight, by name and value). */
#define GUARD_BUCKETS 1024
#define DETAIL_MAX 512

/* One queued or in-flight change. */
struct change {
    struct change *next;  /* in the queue, the failed list or its message */
    struct change *hnext; /* in its guard bucket while in flight */
    struct msg *m;        /* the message carrying it; NULL while queued */
    uint64_t hash;        /* of name and value, for the guard */
    enum dnswire_update_op op;
    uint8_t name[DNSWIRE_NAME_MAX]; /* wire form, lower case */
    size_t name_len;
    char *value;
    size_t value_len;
    int status;   /* a failure found when queued (failed list), else 0 */
    char *detail; /* its sentence */
    rfc2136_cb cb;
    void *arg;
};

enum msg_state {
    MSG_NEW,      /* built, not sent yet */
    MSG_UDP_WAIT, /* sent over UDP; waiting for the answer or the deadline */
    MSG_TCP_BUSY, /* a TCP connection carries the exchange */
    MSG_TCP_IDLE, /* the last TCP try failed early; the deadline starts the next */
};

static const char *const msg_state_names[] = {"new", "udp_wait", "tcp_busy", "tcp_idle"};

struct tcp_xfer;

/* One UPDATE message in flight. */
struct msg {
    struct rfc2136 *u;
    struct msg *prev, *next; /* the in-flight list, by deadline */
    enum msg_state state;
    uint16_t id;
    int tcp;           /* over TCP: too large for UDP, or truncated over UDP */
    int tries;         /* sends on the current transport */
    uint64_t deadline; /* loop time in ms */
    uint64_t started;
    struct change *changes, **changes_tail;
    size_t nchanges;
    uint8_t *wire; /* the signed request */
    size_t len;
    struct dnswire_tsig_mac mac; /* to verify the answer (RFC 8945 §5.3.2) */
    struct tcp_xfer *xfer;
    int sends;       /* every send, over both transports */
    int fail_status; /* how the last TCP try failed (0 = not yet) */
    char fail_detail[160];
    char ignored[96]; /* why the last answer with this ID was ignored */
    /* A NOERROR over UDP that failed TSIG verification, reported at the deadline. */
    int unverified;
    char unverified_detail[DETAIL_MAX];
};

/* One TCP exchange: connect, write the framed request, read one framed answer. */
struct tcp_xfer {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    struct rfc2136 *u;
    struct msg *m; /* NULL once the message no longer waits for it */
    uint8_t *wbuf; /* the request with its length prefix, owned here */
    size_t wlen;
    uint8_t *rbuf; /* TCP_FRAME_MAX octets, allocated at the first read */
    size_t rlen;
};

struct rfc2136 {
    uv_loop_t *loop;
    uv_udp_t udp; /* connected to the server: the kernel drops other sources */
    uv_timer_t flush_timer;
    uv_timer_t retry_timer;
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr;
    char server[80]; /* "127.0.10.31:53", "[::1]:53", for details and logs */
    uint8_t zone[DNSWIRE_NAME_MAX];
    size_t zone_len;
    char zone_text[DNSWIRE_NAME_TEXT_MAX];
    struct dnswire_tsig_key key;
    char key_text[DNSWIRE_NAME_TEXT_MAX];
    int timeout_ms;
    int tries;
    uint32_t ttl;
    size_t max_changes, max_inflight;

    struct change *queue, **queue_tail;
    struct change *failed, **failed_tail; /* refused when queued */
    struct msg *head, *tail;              /* in flight, by deadline */
    size_t ninflight;
    struct change *guard[GUARD_BUCKETS];
    size_t pending;
    int udp_err; /* the last error reported by the UDP socket (ICMP), 0 = none */

    int closing;
    int nhandles; /* open handles; the memory goes with the last one */
    struct rfc2136_stats st;
    uint8_t rbuf[MSG_MAX + 1]; /* one datagram at a time; +1 to see oversize */
};

static void on_flush(uv_timer_t *t);
static void on_retry(uv_timer_t *t);
static void msg_send(struct msg *m);
static void rearm(struct rfc2136 *u);

/* ---- Lifetime ---- */

static void destroy_if_closed(struct rfc2136 *u)
{
    if (!u->closing || u->nhandles > 0)
        return;
    dnswire_tsig_key_cleanup(&u->key);
    free(u);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct rfc2136 *u = h->data;
    u->nhandles--;
    destroy_if_closed(u);
}

static void on_xfer_closed(uv_handle_t *h)
{
    struct tcp_xfer *x = container_of(h, struct tcp_xfer, tcp);
    struct rfc2136 *u = x->u;
    free(x->wbuf);
    free(x->rbuf);
    free(x);
    u->nhandles--;
    destroy_if_closed(u);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void fmt_u64(char *dst, size_t n, uint64_t v)
{
    str_fmt(dst, n, "%llu", (unsigned long long)v);
}

/* ---- The in-flight guard ---- */

static uint64_t change_hash(const struct change *c)
{
    /* FNV-1a over the wire name, a separator and the value. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < c->name_len; i++)
        h = (h ^ c->name[i]) * 0x100000001b3ull;
    h = (h ^ 0x100) * 0x100000001b3ull;
    for (size_t i = 0; i < c->value_len; i++)
        h = (h ^ (uint8_t)c->value[i]) * 0x100000001b3ull;
    return h;
}

static int same_rr(const struct change *a, const struct change *b)
{
    return a->hash == b->hash && a->name_len == b->name_len && a->value_len == b->value_len &&
           memcmp(a->name, b->name, a->name_len) == 0 &&
           memcmp(a->value, b->value, a->value_len) == 0;
}

/* guard_find returns an in-flight change of the same name and value as c, or NULL. */
static struct change *guard_find(struct rfc2136 *u, const struct change *c)
{
    for (struct change *o = u->guard[c->hash % GUARD_BUCKETS]; o; o = o->hnext)
        if (same_rr(o, c))
            return o;
    return NULL;
}

static void guard_add(struct rfc2136 *u, struct change *c)
{
    struct change **b = &u->guard[c->hash % GUARD_BUCKETS];
    c->hnext = *b;
    *b = c;
}

static void guard_remove(struct rfc2136 *u, struct change *c)
{
    struct change **pp = &u->guard[c->hash % GUARD_BUCKETS];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    c->hnext = NULL;
}

/* ---- Changes ---- */

static void change_free(struct change *c)
{
    free(c->value);
    free(c->detail);
    free(c);
}

/*
 * change_done runs c's callback with the outcome and frees c. The callback
 * may call back into u, even rfc2136_free: u's memory outlives this call.
 */
static void change_done(struct rfc2136 *u, struct change *c, int status, const char *detail)
{
    u->pending--;
    if (status == 0)
        u->st.changes_ok++;
    else
        u->st.changes_failed++;
    if (c->cb)
        c->cb(c->arg, status, detail);
    change_free(c);
}

/*
 * change_size returns an upper bound of c's size in the update section: an
 * uncompressed owner, type, class, TTL and RDLENGTH, and the value split
 * into 255-octet character-strings (RFC 1035 §3.3.14).
 */
static size_t change_size(const struct change *c)
{
    size_t strings = c->value_len == 0 ? 1 : (c->value_len + 254) / 255;
    return c->name_len + 10 + strings + c->value_len;
}

static void schedule_flush(struct rfc2136 *u)
{
    if (!u->closing && !uv_is_active((uv_handle_t *)&u->flush_timer))
        uv_timer_start(&u->flush_timer, on_flush, 0, 0);
}

static void enqueue(struct rfc2136 *u, enum dnswire_update_op op, const char *name,
                    const char *value, rfc2136_cb cb, void *arg)
{
    struct change *c = xcalloc(1, sizeof(*c));
    c->op = op;
    c->cb = cb;
    c->arg = arg;
    u->pending++;
    c->value_len = value ? strlen(value) : 0;
    if (c->value_len > RFC2136_VALUE_MAX) {
        char d[DETAIL_MAX];
        str_fmt(d, sizeof(d), "TXT value of %zu octets for %.255s is over the limit of %d",
                c->value_len, name ? name : "(null)", RFC2136_VALUE_MAX);
        c->status = CF_ETOOBIG;
        c->detail = xstrdup(d);
    } else if (!name || dnswire_name_from_text(c->name, &c->name_len, name) != 0 ||
               !dnswire_name_in_zone(c->name, c->name_len, u->zone, u->zone_len)) {
        char d[DETAIL_MAX];
        str_fmt(d, sizeof(d), "%.255s is not a valid name in zone %s", name ? name : "(null)",
                u->zone_text);
        c->status = CF_EHOSTNAME;
        c->detail = xstrdup(d);
    }
    if (c->status != 0) {
        /* Reported from the loop, never from inside the caller's call. */
        *u->failed_tail = c;
        u->failed_tail = &c->next;
        schedule_flush(u);
        return;
    }
    c->value = xstrndup(value, c->value_len);
    c->hash = change_hash(c);
    *u->queue_tail = c;
    u->queue_tail = &c->next;
    schedule_flush(u);
}

void rfc2136_add_txt(struct rfc2136 *u, const char *name, const char *value, rfc2136_cb cb,
                     void *arg)
{
    enqueue(u, DNSWIRE_UPDATE_ADD, name, value, cb, arg);
}

void rfc2136_del_txt(struct rfc2136 *u, const char *name, const char *value, rfc2136_cb cb,
                     void *arg)
{
    enqueue(u, DNSWIRE_UPDATE_DELETE_RR, name, value, cb, arg);
}

/* ---- Messages ---- */

static void msg_set_state(struct msg *m, enum msg_state s)
{
    if (m->state != s && log_enabled(LOG_DEBUG)) {
        char id[8];
        str_fmt(id, sizeof(id), "%u", m->id);
        log_event(LOG_DEBUG, "rfc2136_msg_state", "server", m->u->server, "id", id, "from",
                  msg_state_names[m->state], "to", msg_state_names[s], NULL);
    }
    m->state = s;
}

static void list_append(struct rfc2136 *u, struct msg *m)
{
    m->prev = u->tail;
    m->next = NULL;
    if (u->tail)
        u->tail->next = m;
    else
        u->head = m;
    u->tail = m;
}

static void list_remove(struct rfc2136 *u, struct msg *m)
{
    if (!m->prev && u->head != m)
        return; /* not in the list */
    if (m->prev)
        m->prev->next = m->next;
    else
        u->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        u->tail = m->prev;
    m->prev = m->next = NULL;
}

static struct msg *find_msg(struct rfc2136 *u, uint16_t id)
{
    for (struct msg *m = u->head; m; m = m->next)
        if (m->id == id)
            return m;
    return NULL;
}

/* new_id returns a random message ID not used by a message in flight. */
static uint16_t new_id(struct rfc2136 *u)
{
    uint16_t id;
    do {
        if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
            id = (uint16_t)(rand() ^ (int)uv_hrtime());
    } while (find_msg(u, id));
    return id;
}

/* msg_drop_xfer closes the message's TCP connection, if any. */
static void msg_drop_xfer(struct msg *m)
{
    struct tcp_xfer *x = m->xfer;
    if (!x)
        return;
    m->xfer = NULL;
    x->m = NULL;
    uv_close((uv_handle_t *)&x->tcp, on_xfer_closed);
}

/*
 * msg_finish takes m out of flight, logs its outcome and runs the callbacks
 * of its changes with it (in order), then frees m (detail must not point
 * into m). Callbacks may queue changes or free u.
 */
static void msg_finish(struct msg *m, int status, const char *detail)
{
    struct rfc2136 *u = m->u;
    struct change *c, *next;
    char id[8], n[24], tries[8], ms[24];

    list_remove(u, m);
    msg_drop_xfer(m);
    u->ninflight--;
    for (c = m->changes; c; c = c->next)
        guard_remove(u, c);

    str_fmt(id, sizeof(id), "%u", m->id);
    fmt_u64(n, sizeof(n), m->nchanges);
    str_fmt(tries, sizeof(tries), "%d", m->tries);
    fmt_u64(ms, sizeof(ms), uv_now(u->loop) - m->started);
    log_event(status == 0 || status == CF_ECANCELED ? LOG_DEBUG : LOG_INFO, "rfc2136_update",
              "server", u->server, "zone", u->zone_text, "id", id, "changes", n, "transport",
              m->tcp ? "tcp" : "udp", "tries", tries, "ms", ms, "status", cf_errname(status),
              "detail", detail, NULL);

    c = m->changes;
    free(m->wire);
    free(m);
    for (; c; c = next) {
        next = c->next;
        change_done(u, c, status, detail);
    }
    if (!u->closing) {
        if (u->queue)
            schedule_flush(u);
        rearm(u);
    }
}

/*
 * msg_collect takes from the queue, in order, the changes of the next
 * message: at most max_changes, as many as fit 65535 octets with the TSIG
 * record, skipping (leaving queued) a change whose name and value are in
 * flight in another message. Returns NULL when nothing can be sent now.
 */
static struct msg *msg_collect(struct rfc2136 *u, size_t *size)
{
    /* Header, zone section (RFC 2136 §2.3), and the TSIG record of dnswire_tsig_sign. */
    size_t fixed = DNSWIRE_HEADER_LEN + u->zone_len + 4 + u->key.name_len + 71;
    size_t used = fixed;
    struct msg *m = xcalloc(1, sizeof(*m));
    struct change **pp = &u->queue, *c;

    m->u = u;
    m->changes_tail = &m->changes;
    while ((c = *pp) && m->nchanges < u->max_changes) {
        struct change *other = guard_find(u, c);
        if (other && other->m != m) {
            pp = &c->next; /* its twin is in flight: wait for its answer */
            continue;
        }
        size_t need = change_size(c);
        if (need > MSG_MAX - used)
            break;
        *pp = c->next;
        if (u->queue_tail == &c->next)
            u->queue_tail = pp;
        c->next = NULL;
        c->m = m;
        *m->changes_tail = c;
        m->changes_tail = &c->next;
        guard_add(u, c);
        m->nchanges++;
        used += need;
    }
    if (m->nchanges == 0) {
        free(m);
        return NULL;
    }
    *size = used;
    return m;
}

/* msg_start builds and signs m (size octets at most) and sends it. */
static void msg_start(struct rfc2136 *u, struct msg *m, size_t size)
{
    struct dnswire_update *ups = xcalloc(m->nchanges, sizeof(*ups));
    size_t i = 0;
    int rc;

    for (struct change *c = m->changes; c; c = c->next, i++) {
        ups[i].name = c->name;
        ups[i].name_len = c->name_len;
        ups[i].op = c->op;
        ups[i].ttl = u->ttl;
        ups[i].rdata.type = DNSWIRE_TYPE_TXT;
        ups[i].rdata.u.txt.data = (const uint8_t *)c->value;
        ups[i].rdata.u.txt.len = c->value_len;
    }
    m->wire = xmalloc(size);
    m->id = new_id(u);
    m->started = uv_now(u->loop);
    u->ninflight++;
    u->st.messages++;
    rc =
        dnswire_build_update(m->wire, size, &m->len, m->id, u->zone, u->zone_len, ups, m->nchanges);
    /* RFC 8945 §5.1: the TSIG record is the last one; the MAC is kept for the answer. */
    if (rc == 0)
        rc =
            dnswire_tsig_sign(&u->key, m->wire, size, &m->len, (uint64_t)time(NULL), NULL, &m->mac);
    free(ups);
    if (rc != 0) {
        char d[DETAIL_MAX];
        str_fmt(d, sizeof(d), "cannot build the UPDATE for zone %s: %s", u->zone_text,
                cf_strerror(rc));
        msg_finish(m, rc, d);
        return;
    }
    m->tcp = m->len > RFC2136_UDP_MAX;
    msg_send(m);
}

/*
 * on_flush runs once per loop iteration when something was queued (a zero
 * timer: it also runs when the loop has nothing else to do, unlike a
 * uv_check): it reports the changes refused when queued, then packs the
 * queue into messages while fewer than max_inflight are in flight. The rest
 * waits for an answer (msg_finish flushes again), which batches more under
 * load.
 */
static void on_flush(uv_timer_t *t)
{
    struct rfc2136 *u = t->data;
    struct change *failed = u->failed, *c;
    size_t size;

    u->failed = NULL;
    u->failed_tail = &u->failed;
    while (!u->closing && u->queue && u->ninflight < u->max_inflight) {
        struct msg *m = msg_collect(u, &size);
        if (!m)
            break;
        msg_start(u, m, size);
    }
    for (; failed; failed = c) {
        c = failed->next;
        change_done(u, failed, failed->status, failed->detail);
    }
}

/* ---- Transports ---- */

static void udp_send(struct msg *m)
{
    struct rfc2136 *u = m->u;
    uv_buf_t b = uv_buf_init((char *)m->wire, (unsigned int)m->len);
    int rc = uv_udp_try_send(&u->udp, &b, 1, NULL);
    /*
     * A connected UDP socket reports an earlier ICMP error (port unreachable)
     * at the next send, which fails without sending. The error is consumed,
     * so one more try sends the datagram.
     */
    if (rc == UV_ECONNREFUSED) {
        u->udp_err = rc;
        rc = uv_udp_try_send(&u->udp, &b, 1, NULL);
    }
    if (rc >= 0) {
        u->st.udp_sends++;
    } else {
        /* Lost like a dropped datagram: the deadline sends it again. */
        u->udp_err = rc;
        log_event(LOG_DEBUG, "rfc2136_send_failed", "server", u->server, "error", uv_strerror(rc),
                  NULL);
    }
    msg_set_state(m, MSG_UDP_WAIT);
}

/*
 * xfer_fail ends the TCP try of x's message early: the failure is kept for
 * the final detail, and the message waits for its deadline to try again (a
 * refused connection is not retried in a tight loop).
 */
static void xfer_fail(struct tcp_xfer *x, int status, const char *what)
{
    struct msg *m = x->m;
    if (!m)
        return;
    m->fail_status = status;
    str_fmt(m->fail_detail, sizeof(m->fail_detail), "%s", what);
    msg_drop_xfer(m);
    msg_set_state(m, MSG_TCP_IDLE);
}

static void xfer_fail_uv(struct tcp_xfer *x, int uverr, const char *stage)
{
    char what[128];
    str_fmt(what, sizeof(what), "%s: %s", stage, uv_strerror(uverr));
    xfer_fail(x, uverr == UV_ECONNREFUSED ? CF_ECONNREFUSED : CF_EDNS, what);
}

static void msg_answer(struct msg *m, const uint8_t *pkt, size_t len, int tcp);

static void on_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct tcp_xfer *x = container_of(h, struct tcp_xfer, tcp);
    (void)suggested;
    if (!x->rbuf)
        x->rbuf = xmalloc(TCP_FRAME_MAX);
    buf->base = (char *)x->rbuf + x->rlen;
    buf->len = TCP_FRAME_MAX - x->rlen;
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct tcp_xfer *x = container_of(s, struct tcp_xfer, tcp);
    size_t need;
    (void)buf;
    if (!x->m || nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF)
            xfer_fail(x, CF_EDNS, "the server closed the connection before answering");
        else
            xfer_fail_uv(x, (int)nread, "read");
        return;
    }
    x->rlen += (size_t)nread;
    /* RFC 1035 §4.2.2: a two-octet length, then the message; never more than that is kept. */
    if (x->rlen < 2)
        return;
    need = 2 + (size_t)get16(x->rbuf);
    if (need == 2) {
        xfer_fail(x, CF_EPROTO, "an empty answer");
        return;
    }
    if (x->rlen < need)
        return;
    uv_read_stop(s);
    msg_answer(x->m, x->rbuf + 2, need - 2, 1);
}

static void on_tcp_write(uv_write_t *req, int status)
{
    struct tcp_xfer *x = container_of(req, struct tcp_xfer, write);
    if (status < 0 && x->m)
        xfer_fail_uv(x, status, "write");
}

static void on_tcp_connect(uv_connect_t *req, int status)
{
    struct tcp_xfer *x = container_of(req, struct tcp_xfer, connect);
    uv_buf_t b;
    int rc;
    if (!x->m)
        return; /* closed meanwhile: status is UV_ECANCELED */
    if (status < 0) {
        xfer_fail_uv(x, status, "connect");
        return;
    }
    b = uv_buf_init((char *)x->wbuf, (unsigned int)x->wlen);
    rc = uv_write(&x->write, (uv_stream_t *)&x->tcp, &b, 1, on_tcp_write);
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&x->tcp, on_tcp_alloc, on_tcp_read);
    if (rc < 0)
        xfer_fail_uv(x, rc, "write");
}

/* tcp_start opens a connection for one try of m (RFC 7766: one message, one answer). */
static void tcp_start(struct msg *m)
{
    struct rfc2136 *u = m->u;
    struct tcp_xfer *x = xcalloc(1, sizeof(*x));
    int rc;

    x->u = u;
    x->m = m;
    x->wlen = m->len + 2;
    x->wbuf = xmalloc(x->wlen);
    put16(x->wbuf, (uint16_t)m->len);
    memcpy(x->wbuf + 2, m->wire, m->len);
    uv_tcp_init(u->loop, &x->tcp);
    u->nhandles++;
    m->xfer = x;
    u->st.tcp_exchanges++;
    msg_set_state(m, MSG_TCP_BUSY);
    rc = uv_tcp_connect(&x->connect, &x->tcp, &u->addr.sa, on_tcp_connect);
    if (rc < 0)
        xfer_fail_uv(x, rc, "connect");
}

/*
 * msg_send sends m once more over its transport and puts it at the tail of
 * the in-flight list with a new deadline. Every try sends the same signed
 * octets: RFC 2136 additions and class NONE deletions are idempotent, and
 * the time signed stays well inside the fudge.
 */
static void msg_send(struct msg *m)
{
    struct rfc2136 *u = m->u;
    if (m->sends++ > 0)
        u->st.retransmits++;
    m->tries++;
    m->fail_status = 0;
    m->fail_detail[0] = '\0';
    m->deadline = uv_now(u->loop) + (uint64_t)u->timeout_ms;
    list_append(u, m);
    if (m->tcp)
        tcp_start(m);
    else
        udp_send(m);
    rearm(u);
}

/* ---- Answers ---- */

static int rcode_status(uint16_t rcode)
{
    switch (rcode) {
    case DNSWIRE_RCODE_REFUSED:
        return CF_EDNS_REFUSED;
    case DNSWIRE_RCODE_SERVFAIL:
        return CF_EDNS_SERVFAIL;
    case DNSWIRE_RCODE_FORMERR:
    case DNSWIRE_RCODE_NOTIMP:
        return CF_EDNS_FORMERR;
    default:
        /* NOTAUTH (also TSIG failures, RFC 8945 §5.3.2), NOTZONE, YXDOMAIN... */
        return CF_EDNS_UPDATE;
    }
}

/* tsig_error_text describes a TSIG error field (RFC 8945 §3) into out. */
static void tsig_error_text(char *out, size_t n, uint16_t e, const char *key)
{
    switch (e) {
    case DNSWIRE_RCODE_BADSIG:
        str_fmt(out, n, "TSIG error BADSIG with key %s (wrong secret?)", key);
        break;
    case DNSWIRE_RCODE_BADKEY:
        str_fmt(out, n, "TSIG error BADKEY: key %s is unknown to the server", key);
        break;
    case DNSWIRE_RCODE_BADTIME:
        str_fmt(out, n, "TSIG error BADTIME: the clocks differ by more than %d s",
                DNSWIRE_TSIG_FUDGE);
        break;
    case DNSWIRE_RCODE_BADTRUNC:
        str_fmt(out, n, "TSIG error BADTRUNC with key %s", key);
        break;
    default:
        str_fmt(out, n, "TSIG error %u with key %s", e, key);
        break;
    }
}

/*
 * answer_ignored handles an answer that cannot be m's. Over UDP it is
 * dropped and m keeps waiting (it may be forged; the real answer can still
 * come); over TCP the connection is m's own, so the try has failed.
 */
static void answer_ignored(struct msg *m, int tcp, const char *why)
{
    struct rfc2136 *u = m->u;
    if (tcp) {
        xfer_fail(m->xfer, CF_EPROTO, why);
        return;
    }
    u->st.ignored_answers++;
    str_fmt(m->ignored, sizeof(m->ignored), "%s", why);
    log_event(LOG_DEBUG, "rfc2136_answer_ignored", "server", u->server, "why", why, NULL);
}

/*
 * msg_answer classifies an answer with m's ID (len octets at pkt, bounded by
 * the caller's buffer) and finishes m, unless it is truncated (RFC 2136
 * §3.8 and RFC 1035 §4.2.1: try again over TCP) or not an answer to m.
 */
static void msg_answer(struct msg *m, const uint8_t *pkt, size_t len, int tcp)
{
    struct rfc2136 *u = m->u;
    struct dnswire_header h;
    struct dnswire_msg r;
    char d[DETAIL_MAX], te[160];
    uint16_t rcode, terr = 0;
    int has_tsig, vrc, status;

    if (dnswire_header_parse(&h, pkt, len) != 0 || h.id != m->id || !h.qr ||
        h.opcode != DNSWIRE_OPCODE_UPDATE) {
        answer_ignored(m, tcp, "an answer with another ID or opcode");
        return;
    }
    if (h.tc) {
        if (tcp) {
            answer_ignored(m, tcp, "a truncated answer over TCP");
            return;
        }
        log_event(LOG_DEBUG, "rfc2136_truncated", "server", u->server, NULL);
        list_remove(u, m);
        m->tcp = 1;
        m->tries = 0;
        msg_send(m);
        return;
    }
    if (dnswire_msg_parse(&r, pkt, len) != 0) {
        answer_ignored(m, tcp, "a malformed answer");
        return;
    }
    /* RFC 2136 §3.8: the answer echoes the zone section; when present it must be ours. */
    if (r.qdcount > 1 || (r.qdcount == 1 && (r.qd[0].qtype != DNSWIRE_TYPE_SOA ||
                                             !dnswire_name_equal(r.qd[0].name, r.qd[0].name_len,
                                                                 u->zone, u->zone_len)))) {
        dnswire_msg_cleanup(&r);
        answer_ignored(m, tcp, "an answer for another zone");
        return;
    }
    rcode = r.hdr.rcode;
    has_tsig = r.has_tsig;
    dnswire_msg_cleanup(&r);
    /* RFC 8945 §5.3.2: the answer is signed with the request's MAC. */
    vrc = dnswire_tsig_verify(&u->key, &terr, pkt, len, &m->mac, (uint64_t)time(NULL));
    if (!tcp)
        u->udp_err = 0;

    if (rcode == DNSWIRE_RCODE_NOERROR) {
        if (vrc == 0) {
            status = 0;
            str_fmt(d, sizeof(d), "NOERROR from %s for zone %s", u->server, u->zone_text);
        } else if (!has_tsig) {
            status = CF_EPROTO;
            str_fmt(d, sizeof(d),
                    "unsigned NOERROR answer from %s for zone %s (TSIG key %s expected): "
                    "not trusted",
                    u->server, u->zone_text, u->key_text);
        } else if (terr != 0) {
            status = CF_EPROTO;
            tsig_error_text(te, sizeof(te), terr, u->key_text);
            str_fmt(d, sizeof(d), "NOERROR answer from %s for zone %s with %s", u->server,
                    u->zone_text, te);
        } else {
            status = CF_EPROTO;
            str_fmt(d, sizeof(d),
                    "NOERROR answer from %s for zone %s fails TSIG verification with key %s "
                    "(another key, a wrong MAC or time): not trusted",
                    u->server, u->zone_text, u->key_text);
        }
        if (status != 0 && !tcp) {
            /*
             * Over UDP it may be forged, or a late answer to an earlier
             * message that had the same ID: the signed answer can still
             * come. It is the outcome if none does before the deadline
             * (the server answered, so there is no retransmission).
             */
            m->unverified = 1;
            str_fmt(m->unverified_detail, sizeof(m->unverified_detail), "%s", d);
            u->st.ignored_answers++;
            log_event(LOG_DEBUG, "rfc2136_answer_unverified", "server", u->server, "detail", d,
                      NULL);
            return;
        }
    } else {
        /*
         * An error rcode is believed signed or not (RFC 8945 §5.3.2: BADSIG
         * and BADKEY answers cannot be signed): a forged one can only make
         * the changes fail, and their pipelines try again later.
         */
        status = rcode_status(rcode);
        if (terr != 0) {
            tsig_error_text(te, sizeof(te), terr, u->key_text);
            str_fmt(d, sizeof(d), "%s from %s for zone %s: %s", dnswire_rcode_str(rcode), u->server,
                    u->zone_text, te);
        } else if (rcode == DNSWIRE_RCODE_REFUSED) {
            str_fmt(d, sizeof(d), "REFUSED by %s for zone %s", u->server, u->zone_text);
        } else if (rcode == DNSWIRE_RCODE_NOTAUTH) {
            str_fmt(d, sizeof(d),
                    "NOTAUTH from %s for zone %s: the server is not authoritative for the "
                    "zone or does not let key %s update it",
                    u->server, u->zone_text, u->key_text);
        } else if (rcode == DNSWIRE_RCODE_NOTZONE) {
            str_fmt(d, sizeof(d), "NOTZONE from %s for zone %s: a name outside the zone", u->server,
                    u->zone_text);
        } else {
            const char *name = dnswire_rcode_str(rcode);
            if (strcmp(name, "UNKNOWN") == 0)
                str_fmt(d, sizeof(d), "rcode %u from %s for zone %s", rcode, u->server,
                        u->zone_text);
            else
                str_fmt(d, sizeof(d), "%s from %s for zone %s", name, u->server, u->zone_text);
        }
    }
    msg_finish(m, status, d);
}

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct rfc2136 *u = h->data;
    (void)suggested;
    buf->base = (char *)u->rbuf;
    buf->len = sizeof(u->rbuf);
}

static int addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    struct rfc2136 *u = h->data;
    struct dnswire_header hdr;
    struct msg *m;

    if (u->closing)
        return;
    if (nread < 0) {
        /* An ICMP error on the connected socket: kept for the timeout's detail. */
        u->udp_err = (int)nread;
        return;
    }
    if (nread == 0 || !addr)
        return;
    /* Bounded: the buffer holds 65536 octets, and a longer datagram is cut (PARTIAL). */
    if ((flags & UV_UDP_PARTIAL) || (size_t)nread > MSG_MAX || !addr_equal(addr, &u->addr.sa) ||
        dnswire_header_parse(&hdr, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        u->st.ignored_answers++;
        return;
    }
    m = find_msg(u, hdr.id);
    if (!m || m->tcp || m->state != MSG_UDP_WAIT) {
        u->st.ignored_answers++;
        log_event(LOG_DEBUG, "rfc2136_answer_ignored", "server", u->server, "why",
                  "no message waits for this ID", NULL);
        return;
    }
    msg_answer(m, (const uint8_t *)buf->base, (size_t)nread, 0);
}

/* ---- Timeouts ---- */

static void rearm(struct rfc2136 *u)
{
    uint64_t now, delay;
    if (u->closing)
        return;
    if (!u->head) {
        uv_timer_stop(&u->retry_timer);
        return;
    }
    now = uv_now(u->loop);
    delay = u->head->deadline > now ? u->head->deadline - now : 0;
    uv_timer_start(&u->retry_timer, on_retry, delay, 0);
}

/* give_up finishes m after its last try with the reason that try ended. */
static void give_up(struct msg *m)
{
    struct rfc2136 *u = m->u;
    char d[DETAIL_MAX];
    int status = CF_ETIMEOUT;

    if (m->tcp && m->fail_status != 0) {
        status = m->fail_status;
        str_fmt(d, sizeof(d), "TCP exchange with %s for zone %s failed (%d tries): %s", u->server,
                u->zone_text, m->tries, m->fail_detail);
    } else if (m->tcp) {
        str_fmt(d, sizeof(d), "no answer from %s for zone %s after %d tries of %d ms over TCP",
                u->server, u->zone_text, m->tries, u->timeout_ms);
    } else {
        char extra[160] = "";
        if (m->ignored[0])
            str_fmt(extra, sizeof(extra), " (ignored: %s)", m->ignored);
        else if (u->udp_err)
            str_fmt(extra, sizeof(extra), " (the socket reported: %s)", uv_strerror(u->udp_err));
        str_fmt(d, sizeof(d), "no answer from %s for zone %s after %d tries of %d ms over UDP%s",
                u->server, u->zone_text, m->tries, u->timeout_ms, extra);
    }
    msg_finish(m, status, d);
}

static void on_retry(uv_timer_t *t)
{
    struct rfc2136 *u = t->data;
    uint64_t now = uv_now(u->loop);
    struct msg *m;

    /* Callbacks may free u: checked before each message. */
    while (!u->closing && (m = u->head) && m->deadline <= now) {
        list_remove(u, m);
        if (m->state == MSG_TCP_BUSY) {
            m->fail_status = 0; /* timed out, not failed */
            msg_drop_xfer(m);
        }
        if (m->unverified) {
            char d[DETAIL_MAX]; /* msg_finish frees m before the callbacks */
            str_fmt(d, sizeof(d), "%s", m->unverified_detail);
            msg_finish(m, CF_EPROTO, d);
            continue;
        }
        if (m->tries < u->tries) {
            log_event(LOG_DEBUG, "rfc2136_retry", "server", u->server, "transport",
                      m->tcp ? "tcp" : "udp", NULL);
            msg_send(m);
            continue;
        }
        give_up(m);
    }
    rearm(u);
}

/* ---- Lifecycle ---- */

int rfc2136_new(struct rfc2136 **out, uv_loop_t *loop, const struct rfc2136_opts *o,
                const char **reason)
{
    struct rfc2136 *u = xcalloc(1, sizeof(*u));
    const char *why = NULL;
    char host[64];
    int port, rc;

    *out = NULL;
    u->loop = loop;
    u->queue_tail = &u->queue;
    u->failed_tail = &u->failed;
    if (!o->server || config_parse_addr(o->server, host, sizeof(host), &port, 53) != 0) {
        rc = CF_ECONFIG;
        why = "the server must be ADDR[:PORT] or [V6ADDR]:PORT with a numeric address";
        goto out_free;
    }
    if (strchr(host, ':')) {
        rc = uv_ip6_addr(host, port, &u->addr.in6);
        str_fmt(u->server, sizeof(u->server), "[%s]:%d", host, port);
    } else {
        rc = uv_ip4_addr(host, port, &u->addr.in);
        str_fmt(u->server, sizeof(u->server), "%s:%d", host, port);
    }
    if (rc != 0) {
        rc = CF_ECONFIG;
        why = "the server address is not numeric";
        goto out_free;
    }
    if (!o->zone || dnswire_name_from_text(u->zone, &u->zone_len, o->zone) != 0 ||
        dnswire_name_to_text(u->zone_text, sizeof(u->zone_text), u->zone, u->zone_len) != 0) {
        rc = CF_ECONFIG;
        why = "the zone is not a valid domain name";
        goto out_free;
    }
    if (!o->tsig_key_file || !*o->tsig_key_file) {
        rc = CF_ECONFIG;
        why = "a TSIG key file is required";
        goto out_free;
    }
    rc = dnswire_tsig_key_load(&u->key, o->tsig_key_file, &why);
    if (rc != 0)
        goto out_free;
    dnswire_name_to_text(u->key_text, sizeof(u->key_text), u->key.name, u->key.name_len);
    if (o->timeout_ms < 0 || o->tries < 0) {
        rc = CF_ECONFIG;
        why = "the timeout and the number of tries cannot be negative";
        goto out_free_key;
    }
    u->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    u->tries = o->tries ? o->tries : DEFAULT_TRIES;
    u->ttl = o->ttl ? o->ttl : DEFAULT_TTL;
    u->max_changes = o->max_changes ? o->max_changes : DEFAULT_MAX_CHANGES;
    u->max_inflight = o->max_inflight ? o->max_inflight : DEFAULT_MAX_INFLIGHT;
    if (u->max_inflight > MAX_INFLIGHT_LIMIT)
        u->max_inflight = MAX_INFLIGHT_LIMIT;

    uv_timer_init(loop, &u->flush_timer);
    uv_timer_init(loop, &u->retry_timer);
    u->flush_timer.data = u->retry_timer.data = u;
    u->nhandles = 2;
    rc = uv_udp_init(loop, &u->udp);
    if (rc == 0) {
        u->udp.data = u;
        u->nhandles++;
        rc = uv_udp_connect(&u->udp, &u->addr.sa);
        if (rc == 0)
            rc = uv_udp_recv_start(&u->udp, on_udp_alloc, on_udp_recv);
    }
    if (rc != 0) {
        /* The handles are open: they free u once closed, as rfc2136_free does. */
        why = "cannot open a UDP socket to the server";
        u->closing = 1;
        if (u->nhandles == 3)
            uv_close((uv_handle_t *)&u->udp, on_handle_closed);
        uv_close((uv_handle_t *)&u->flush_timer, on_handle_closed);
        uv_close((uv_handle_t *)&u->retry_timer, on_handle_closed);
        if (reason)
            *reason = why;
        return rc;
    }
    *out = u;
    return 0;

out_free_key:
    dnswire_tsig_key_cleanup(&u->key);
out_free:
    free(u);
    if (reason)
        *reason = why;
    return rc;
}

void rfc2136_stats(const struct rfc2136 *u, struct rfc2136_stats *out)
{
    *out = u->st;
}

size_t rfc2136_pending(const struct rfc2136 *u)
{
    return u->pending;
}

void rfc2136_free(struct rfc2136 *u)
{
    static const char canceled[] = "canceled: the RFC 2136 provisioner was closed";
    if (!u || u->closing)
        return;
    u->closing = 1;
    uv_close((uv_handle_t *)&u->udp, on_handle_closed);
    uv_close((uv_handle_t *)&u->flush_timer, on_handle_closed);
    uv_close((uv_handle_t *)&u->retry_timer, on_handle_closed);
    /*
     * No message is sent once closing is set, so the in-flight list is
     * taken whole. Callbacks may queue more changes: they are canceled too,
     * until nothing is left.
     */
    struct msg *inflight = u->head, *m;
    u->head = u->tail = NULL;
    while ((m = inflight)) {
        inflight = m->next;
        m->prev = m->next = NULL;
        msg_finish(m, CF_ECANCELED, canceled);
    }
    for (;;) {
        struct change *c;
        if ((c = u->failed)) {
            u->failed = c->next;
            if (!u->failed)
                u->failed_tail = &u->failed;
            change_done(u, c, c->status, c->detail);
        } else if ((c = u->queue)) {
            u->queue = c->next;
            if (!u->queue)
                u->queue_tail = &u->queue;
            change_done(u, c, CF_ECANCELED, canceled);
        } else {
            break;
        }
    }
}
