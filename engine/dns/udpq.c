/*
 * udpq.c - a plain UDP client for questions to one authoritative address.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "dnswire.h"
#include "err.h"
#include "udpq.h"

#define QUERY_MAX 320       /* a question for a 255-octet name, with OPT */
#define UDPQ_EDNS_SIZE 1232 /* the UDP payload size our OPT record offers */

struct slot {
    int used;
    uint16_t id;
    int tries_left;
    uint64_t deadline; /* uv_now milliseconds */
    uint64_t sent_at;
    uint64_t wait_ms; /* this try's timeout; doubles on each retry */
    dns_answer_cb cb;
    void *arg;
    size_t qlen;
    uint8_t qbuf[QUERY_MAX];
};

struct waiting {
    struct waiting *next;
    dns_answer_cb cb;
    void *arg;
    size_t qlen;
    uint8_t qbuf[QUERY_MAX];
};

struct udpq {
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_timer_t timer;
    int handles_open;
    int closing;
    int timeout_ms, tries;
    size_t nslots, used, inflight;
    struct slot *slots;
    struct waiting *wait_head, *wait_tail;
    uint64_t timer_due; /* 0 = not armed */
    uint64_t srtt_ms;   /* smoothed round-trip time of first tries, 0 = unknown */
    uint16_t id_state[2];
};

/*
 * One receive buffer for every client: the loop is single-threaded and
 * libuv hands all datagrams of one recvmmsg to the callback before it
 * reads from another socket. Room for 16 datagrams of 64 KiB (libuv's
 * UV__UDP_DGRAM_MAXSIZE slices), so one system call reads up to 16 answers.
 */
static char g_rbuf[16 * 65536];

static void on_closed(uv_handle_t *h)
{
    struct udpq *q = h->data;
    if (--q->handles_open == 0) {
        free(q->slots);
        free(q);
    }
}

static uint16_t next_id(struct udpq *q)
{
    uint16_t id;
    /* IDs from the CSPRNG: with the random source port, 32 bits for a spoofer to guess. */
    if (crypto_random(&id, sizeof(id)) != 0)
        id = (uint16_t)(q->id_state[0]++ * 40503u);
    return id;
}

static void arm_timer(struct udpq *q, uint64_t deadline);

static void on_timer(uv_timer_t *t);

static void send_slot(struct udpq *q, struct slot *s)
{
    uv_buf_t b = uv_buf_init((char *)s->qbuf, (unsigned)s->qlen);
    /* Connected socket: no address. A full socket buffer is a lost packet: the timer retries. */
    (void)uv_udp_try_send(&q->udp, &b, 1, NULL);
    s->sent_at = uv_now(q->loop);
    s->deadline = s->sent_at + s->wait_ms;
    arm_timer(q, s->deadline);
}

/*
 * first_wait is the first try's timeout: four smoothed RTTs of this address
 * (at least 200 ms), capped by the configured timeout. One lost datagram
 * among a hundred thousand then costs a fraction of a second, not 1.5 s.
 */
static uint64_t first_wait(const struct udpq *q)
{
    uint64_t t = (uint64_t)q->timeout_ms;
    if (q->srtt_ms) {
        uint64_t a = 4 * q->srtt_ms < 200 ? 200 : 4 * q->srtt_ms;
        t = a < t ? a : t;
    }
    return t;
}

static struct slot *free_slot(struct udpq *q)
{
    for (size_t i = 0; i < q->nslots; i++)
        if (!q->slots[i].used)
            return &q->slots[i];
    return NULL;
}

static int id_in_use(const struct udpq *q, uint16_t id)
{
    for (size_t i = 0; i < q->nslots; i++)
        if (q->slots[i].used && q->slots[i].id == id)
            return 1;
    return 0;
}

static void start_slot(struct udpq *q, struct slot *s, const uint8_t *qbuf, size_t qlen,
                       dns_answer_cb cb, void *arg)
{
    uint16_t id;
    do
        id = next_id(q);
    while (id_in_use(q, id));
    s->used = 1;
    s->id = id;
    s->cb = cb;
    s->arg = arg;
    s->tries_left = q->tries;
    s->wait_ms = first_wait(q);
    s->qlen = qlen;
    memcpy(s->qbuf, qbuf, qlen);
    s->qbuf[0] = (uint8_t)(id >> 8);
    s->qbuf[1] = (uint8_t)id;
    q->used++;
    send_slot(q, s);
}

/* finish_slot frees s, runs its callback, then lets a waiting question in. */
static void finish_slot(struct udpq *q, struct slot *s, int status, const uint8_t *ans, size_t len)
{
    dns_answer_cb cb = s->cb;
    void *arg = s->arg;
    s->used = 0;
    q->used--;
    q->inflight--;
    cb(arg, status, ans, len);
    while (!q->closing && q->wait_head && q->used < q->nslots) {
        struct waiting *w = q->wait_head;
        q->wait_head = w->next;
        if (!q->wait_head)
            q->wait_tail = NULL;
        start_slot(q, free_slot(q), w->qbuf, w->qlen, w->cb, w->arg);
        free(w);
    }
}

static void arm_timer(struct udpq *q, uint64_t deadline)
{
    if (q->closing || (q->timer_due && q->timer_due <= deadline))
        return;
    uint64_t now = uv_now(q->loop);
    q->timer_due = deadline;
    uv_timer_start(&q->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct udpq *q = t->data;
    uint64_t now = uv_now(q->loop), next = 0;
    q->timer_due = 0;
    for (size_t i = 0; i < q->nslots; i++) {
        struct slot *s = &q->slots[i];
        if (!s->used)
            continue;
        if (s->deadline > now) {
            if (!next || s->deadline < next)
                next = s->deadline;
            continue;
        }
        if (--s->tries_left > 0) {
            s->wait_ms =
                s->wait_ms * 2 < (uint64_t)q->timeout_ms ? s->wait_ms * 2 : (uint64_t)q->timeout_ms;
            send_slot(q, s); /* same ID: a late answer to the first try still counts */
            continue;
        }
        finish_slot(q, s, CF_ETIMEOUT, NULL, 0);
    }
    if (next)
        arm_timer(q, next);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    *b = uv_buf_init(g_rbuf, sizeof(g_rbuf));
}

/* question_matches compares the answer's question section with the one we sent. */
static int question_matches(const struct slot *s, const uint8_t *ans, size_t len)
{
    size_t off = DNSWIRE_HEADER_LEN, qoff = DNSWIRE_HEADER_LEN;
    uint8_t a[DNSWIRE_NAME_MAX], b[DNSWIRE_NAME_MAX];
    size_t al, bl;
    if (len < DNSWIRE_HEADER_LEN || ans[4] != 0 || ans[5] != 1)
        return 0;
    if (dnswire_read_name(ans, len, &off, a, &al) != 0 ||
        dnswire_read_name(s->qbuf, s->qlen, &qoff, b, &bl) != 0 || off + 4 > len ||
        !dnswire_name_equal(a, al, b, bl))
        return 0;
    return memcmp(ans + off, s->qbuf + qoff, 4) == 0; /* qtype and qclass */
}

static void on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *b, const struct sockaddr *from,
                    unsigned flags)
{
    struct udpq *q = u->data;
    (void)from;
    (void)flags;
    /* nread == 0 with no address ends a recvmmsg batch; errors (ICMP unreachable) and
     * runts are left to the timer. */
    if (nread < DNSWIRE_HEADER_LEN)
        return;
    const uint8_t *ans = (const uint8_t *)b->base;
    uint16_t id = (uint16_t)(ans[0] << 8 | ans[1]);
    if (!(ans[2] & 0x80))
        return; /* not a response */
    for (size_t i = 0; i < q->nslots; i++) {
        struct slot *s = &q->slots[i];
        if (!s->used || s->id != id)
            continue;
        if (!question_matches(s, ans, (size_t)nread))
            return; /* a forgery or a confused server: keep waiting for the real one */
        if (ans[2] & 0x02) {
            finish_slot(q, s, CF_EDNS, NULL, 0); /* TC: see udpq_query */
            return;
        }
        if ((size_t)nread > UDPQ_EDNS_SIZE) {
            /*
             * RFC 6891 §6.2.3: we said we take 1232 octets. A larger answer
             * without TC is broken or forged, and is never believed.
             */
            finish_slot(q, s, CF_ETOOBIG, NULL, 0);
            return;
        }
        if (s->tries_left == q->tries) {
            uint64_t rtt = uv_now(q->loop) - s->sent_at;
            q->srtt_ms = q->srtt_ms ? (7 * q->srtt_ms + rtt) / 8 : (rtt ? rtt : 1);
        }
        finish_slot(q, s, 0, ans, (size_t)nread);
        return;
    }
}

int udpq_new(struct udpq **out, uv_loop_t *loop, const char *addr, int port, int timeout_ms,
             int tries, size_t max_inflight)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) != 0)
        return CF_ECONFIG;
    struct udpq *q = xcalloc(1, sizeof(*q));
    q->loop = loop;
    q->timeout_ms = timeout_ms > 0 ? timeout_ms : 1500;
    q->tries = tries > 0 ? tries : 3;
    q->nslots = max_inflight ? max_inflight : 256;
    q->slots = xcalloc(q->nslots, sizeof(*q->slots));
    int rc = uv_udp_init_ex(loop, &q->udp, AF_UNSPEC | UV_UDP_RECVMMSG);
    if (rc) {
        free(q->slots);
        free(q);
        return rc;
    }
    q->udp.data = q;
    uv_timer_init(loop, &q->timer);
    q->timer.data = q;
    q->handles_open = 2;
    rc = uv_udp_connect(&q->udp, (const struct sockaddr *)&ss);
    if (rc == 0) {
        /*
         * Room for every answer in flight while the loop is busy elsewhere:
         * a datagram costs a few KB of buffer, and the default 208 KB
         * dropped answers at 256 in flight (each a 1.5 s retry).
         */
        int rcvbuf = 4 << 20;
        uv_recv_buffer_size((uv_handle_t *)&q->udp, &rcvbuf);
        rc = uv_udp_recv_start(&q->udp, on_alloc, on_recv);
    }
    if (rc) {
        q->closing = 1;
        uv_close((uv_handle_t *)&q->udp, on_closed);
        uv_close((uv_handle_t *)&q->timer, on_closed);
        return rc;
    }
    *out = q;
    return 0;
}

int udpq_query(struct udpq *q, const char *name, uint16_t qtype, dns_answer_cb cb, void *arg)
{
    uint8_t qbuf[QUERY_MAX];
    size_t qlen;
    if (q->closing)
        return CF_ECANCELED;
    int rc = dnswire_build_query(qbuf, sizeof(qbuf), &qlen, 0, name, qtype, 0, UDPQ_EDNS_SIZE);
    if (rc)
        return rc;
    q->inflight++;
    struct slot *s = q->used < q->nslots ? free_slot(q) : NULL;
    if (s) {
        start_slot(q, s, qbuf, qlen, cb, arg);
        return 0;
    }
    struct waiting *w = xmalloc(sizeof(*w));
    w->next = NULL;
    w->cb = cb;
    w->arg = arg;
    w->qlen = qlen;
    memcpy(w->qbuf, qbuf, qlen);
    if (q->wait_tail)
        q->wait_tail->next = w;
    else
        q->wait_head = w;
    q->wait_tail = w;
    return 0;
}

size_t udpq_inflight(const struct udpq *q)
{
    return q->inflight;
}

void udpq_free(struct udpq *q)
{
    if (!q)
        return;
    q->closing = 1;
    for (size_t i = 0; i < q->nslots; i++)
        if (q->slots[i].used)
            finish_slot(q, &q->slots[i], CF_ECANCELED, NULL, 0);
    while (q->wait_head) {
        struct waiting *w = q->wait_head;
        q->wait_head = w->next;
        q->inflight--;
        w->cb(w->arg, CF_ECANCELED, NULL, 0);
        free(w);
    }
    uv_close((uv_handle_t *)&q->udp, on_closed);
    uv_close((uv_handle_t *)&q->timer, on_closed);
}
