/*
 * udpq.c - a plain UDP client for questions to one DNS server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include "buf.h"
#include "crypto.h"
#include "dnswire.h"
#include "err.h"
#include "udpq.h"

#define QUERY_MAX 320       /* a question for a 255-octet name, with OPT */
#define UDPQ_EDNS_SIZE 1232 /* the UDP payload size our OPT record offers */
#define SEND_BATCH 64       /* datagrams per sendmmsg */
#define ID_POOL 256         /* random IDs drawn from the CSPRNG at once */
#define NO_SLOT UINT32_MAX

struct slot {
    uint8_t used;
    uint8_t queued; /* in the send batch */
    uint16_t id;
    int tries_left;
    uint32_t next_free;
    uint64_t deadline; /* uv_now milliseconds */
    uint64_t sent_at;
    uint64_t wait_ms; /* this try's timeout; doubles on each retry */
    dns_answer_cb cb;
    void *arg;
    size_t qlen;
    uint8_t qbuf[QUERY_MAX];
};

/* A question waiting for a slot, kept in a ring (no allocation per question). */
struct waiting {
    dns_answer_cb cb;
    void *arg;
    uint16_t qlen;
    uint8_t qbuf[QUERY_MAX];
};

struct udpq {
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_timer_t timer;
    uv_idle_t flush; /* active while the send batch is not empty */
    int handles_open;
    int closing;
    int fd;
    int timeout_ms, tries, rd;
    size_t nslots, used, inflight;
    struct slot *slots;
    uint32_t free_head;
    /* ID -> slot: open addressing, linear probing, slot index + 1 (0 = empty). */
    uint32_t *ids;
    size_t ids_mask;
    /* Slots whose datagram leaves with the next sendmmsg. */
    uint32_t *sendq;
    size_t nsend;
    /* The line of questions waiting for a slot: a ring of wcap entries. */
    struct waiting *wring;
    size_t wcap, whead, wcount;
    uint64_t timer_due; /* 0 = not armed */
    uint64_t srtt_ms;   /* smoothed round-trip time of first tries, 0 = unknown */
    uint16_t id_pool[ID_POOL];
    size_t id_left;
    uint16_t id_fallback;
    int no_gso; /* the kernel refused UDP_SEGMENT once: sendmmsg from then on */
    struct udpq_stats stats;
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
        free(q->ids);
        free(q->sendq);
        free(q->wring);
        free(q);
    }
}

/*
 * next_id draws a message ID from the CSPRNG (with the random source port,
 * 32 bits for a spoofer to guess), 256 at a time: one RAND_bytes call per
 * question cost more than the rest of sending it.
 */
static uint16_t next_id(struct udpq *q)
{
    if (q->id_left == 0) {
        if (crypto_random(q->id_pool, sizeof(q->id_pool)) != 0)
            return (uint16_t)(q->id_fallback++ * 40503u);
        q->id_left = ID_POOL;
    }
    return q->id_pool[--q->id_left];
}

/* ---- the ID index ---- */

static size_t ids_find(const struct udpq *q, uint16_t id)
{
    for (size_t i = id & q->ids_mask;; i = (i + 1) & q->ids_mask) {
        uint32_t v = q->ids[i];
        if (v == 0)
            return SIZE_MAX;
        if (q->slots[v - 1].id == id)
            return i;
    }
}

static void ids_add(struct udpq *q, uint16_t id, uint32_t slot)
{
    size_t i = id & q->ids_mask;
    while (q->ids[i])
        i = (i + 1) & q->ids_mask;
    q->ids[i] = slot + 1;
}

/* ids_del empties position pos and moves later entries of its run back (no tombstones). */
static void ids_del(struct udpq *q, size_t pos)
{
    size_t i = pos, j = pos;
    for (;;) {
        j = (j + 1) & q->ids_mask;
        if (q->ids[j] == 0)
            break;
        size_t home = q->slots[q->ids[j] - 1].id & q->ids_mask;
        /* The entry at j may fill the hole at i unless its home lies cyclically in (i, j]. */
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        q->ids[i] = q->ids[j];
        i = j;
    }
    q->ids[i] = 0;
}

/* ---- sending ---- */

static void arm_timer(struct udpq *q, uint64_t deadline);
static void on_timer(uv_timer_t *t);

/* send_plain sends the questions of ss (n of them) with sendmmsg. */
static void send_plain(struct udpq *q, struct slot **ss, size_t n)
{
    struct mmsghdr mm[SEND_BATCH];
    struct iovec iov[SEND_BATCH];
    size_t done = 0;
    memset(mm, 0, n * sizeof(mm[0]));
    for (size_t k = 0; k < n; k++) {
        iov[k].iov_base = ss[k]->qbuf;
        iov[k].iov_len = ss[k]->qlen;
        mm[k].msg_hdr.msg_iov = &iov[k];
        mm[k].msg_hdr.msg_iovlen = 1;
    }
    while (done < n) {
        int sent = sendmmsg(q->fd, mm + done, (unsigned)(n - done), MSG_DONTWAIT);
        q->stats.batches++;
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break; /* the socket buffer is full */
        if (sent <= 0) {
            done++; /* this datagram failed (a pending ICMP error, say): the next may not */
            continue;
        }
        q->stats.sent += (uint64_t)sent;
        done += (size_t)sent;
    }
}

/*
 * send_train sends the questions of ss (n of them, each of seg octets but
 * the last, which may be shorter) as one UDP GSO train (UDP_SEGMENT, Linux
 * 4.18): one trip through the network stack, cut into n datagrams at the
 * end. On loopback, where the sender also pays for delivering, that took a
 * fifth off a fleet check's CPU. Returns 0 (sent, or lost to a full socket
 * buffer: the timer retries), or -1 when the caller must send them plainly.
 */
static int send_train(struct udpq *q, struct slot **ss, size_t n, size_t seg)
{
    static uint8_t train[SEND_BATCH * QUERY_MAX]; /* one loop thread, like g_rbuf */
    /* Aligned for struct cmsghdr, and cleared: the kernel reads the padding too. */
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    uint16_t gso = (uint16_t)seg;
    size_t len = 0;
    for (size_t k = 0; k < n; k++) {
        memcpy(train + len, ss[k]->qbuf, ss[k]->qlen);
        len += ss[k]->qlen;
    }
    struct iovec iov = {.iov_base = train, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(gso));
    memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
    ssize_t rc;
    do
        rc = sendmsg(q->fd, &mh, MSG_DONTWAIT);
    while (rc < 0 && errno == EINTR);
    q->stats.batches++;
    if (rc >= 0) {
        q->stats.sent += n;
        q->stats.trains++;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    if (errno == EINVAL || errno == EOPNOTSUPP || errno == ENOPROTOOPT || errno == EIO)
        q->no_gso = 1; /* a kernel or device without UDP GSO: never again */
    return -1;
}

/*
 * g_gso: UDP GSO trains allowed (CERTFLEET_DNS_GSO=0 turns them off, to
 * compare or to rule them out); read once.
 */
static int g_gso = -1;

/*
 * flush_sends sends the batch, at most SEND_BATCH questions per system
 * call. A GSO train's datagrams all have one size but the last, so the
 * questions go longest first, and each run of one length with the next
 * shorter question leaves as one train; a question left alone goes with
 * sendmmsg. Questions keep their own sizes: no padding.
 */
static void flush_sends(struct udpq *q)
{
    struct slot *ss[SEND_BATCH], *plain[SEND_BATCH];
    size_t next = 0;
    if (g_gso < 0) {
        const char *e = getenv("CERTFLEET_DNS_GSO");
        g_gso = !(e && strcmp(e, "0") == 0);
    }
    while (next < q->nsend) {
        size_t n = 0, nplain = 0;
        while (n < SEND_BATCH && next < q->nsend) {
            struct slot *s = &q->slots[q->sendq[next++]];
            if (!s->queued)
                continue;
            s->queued = 0;
            if (s->used) /* else answered (an earlier try) before this try left */
                ss[n++] = s;
        }
        if (n < 2 || !g_gso || q->no_gso) {
            send_plain(q, ss, n);
            continue;
        }
        for (size_t i = 1; i < n; i++)
            for (size_t k = i; k > 0 && ss[k - 1]->qlen < ss[k]->qlen; k--) {
                struct slot *t = ss[k];
                ss[k] = ss[k - 1];
                ss[k - 1] = t;
            }
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j + 1 < n && ss[j + 1]->qlen == ss[i]->qlen)
                j++;
            if (j + 1 < n)
                j++; /* the shorter tail */
            if (j == i || q->no_gso || send_train(q, ss + i, j - i + 1, ss[i]->qlen) != 0)
                for (size_t k = i; k <= j; k++)
                    plain[nplain++] = ss[k];
            i = j + 1;
        }
        send_plain(q, plain, nplain);
    }
    q->nsend = 0;
}

static void on_flush(uv_idle_t *h)
{
    struct udpq *q = h->data;
    uv_idle_stop(&q->flush);
    flush_sends(q);
}

/*
 * queue_send puts s's datagram into the batch. An idle handle flushes it in
 * the next loop iteration, before the loop polls (an active idle handle
 * keeps the poll from blocking), so every question of one iteration leaves
 * with one system call.
 */
static void queue_send(struct udpq *q, struct slot *s)
{
    s->sent_at = uv_now(q->loop);
    s->deadline = s->sent_at + s->wait_ms;
    arm_timer(q, s->deadline);
    if (s->queued)
        return;
    s->queued = 1;
    q->sendq[q->nsend++] = (uint32_t)(s - q->slots);
    if (q->nsend == 1)
        uv_idle_start(&q->flush, on_flush);
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

static void start_slot(struct udpq *q, const uint8_t *qbuf, size_t qlen, dns_answer_cb cb,
                       void *arg)
{
    uint32_t si = q->free_head;
    struct slot *s = &q->slots[si];
    uint16_t id;
    q->free_head = s->next_free;
    do
        id = next_id(q);
    while (ids_find(q, id) != SIZE_MAX);
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
    ids_add(q, id, si);
    q->used++;
    queue_send(q, s);
}

/* finish_slot frees s, runs its callback, then lets waiting questions in. */
static void finish_slot(struct udpq *q, struct slot *s, size_t idpos, int status,
                        const uint8_t *ans, size_t len)
{
    dns_answer_cb cb = s->cb;
    void *arg = s->arg;
    ids_del(q, idpos);
    s->used = 0;
    s->next_free = q->free_head;
    q->free_head = (uint32_t)(s - q->slots);
    q->used--;
    q->inflight--;
    cb(arg, status, ans, len);
    while (!q->closing && q->wcount && q->used < q->nslots) {
        struct waiting *w = &q->wring[q->whead];
        q->whead = (q->whead + 1) & (q->wcap - 1);
        q->wcount--;
        start_slot(q, w->qbuf, w->qlen, w->cb, w->arg);
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
            queue_send(q, s); /* same ID: a late answer to the first try still counts */
            continue;
        }
        q->stats.timeouts++;
        finish_slot(q, s, ids_find(q, s->id), CF_ETIMEOUT, NULL, 0);
    }
    if (next)
        arm_timer(q, next);
}

/* ---- receiving ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    *b = uv_buf_init(g_rbuf, sizeof(g_rbuf));
}

/*
 * question_matches compares the answer's question section with the one we
 * sent: one question, the same name (ignoring case), type and class.
 */
static int question_matches(const struct slot *s, const uint8_t *ans, size_t len)
{
    size_t off = DNSWIRE_HEADER_LEN;
    uint8_t a[DNSWIRE_NAME_MAX];
    size_t al;
    /* Our own question: the name starts at 12 and ends 4 octets before the OPT record. */
    size_t ql = s->qlen - DNSWIRE_HEADER_LEN - 4 - 11;
    if (len < DNSWIRE_HEADER_LEN || ans[4] != 0 || ans[5] != 1)
        return 0;
    if (dnswire_read_name(ans, len, &off, a, &al) != 0 || off + 4 > len ||
        !dnswire_name_equal(a, al, s->qbuf + DNSWIRE_HEADER_LEN, ql))
        return 0;
    return memcmp(ans + off, s->qbuf + DNSWIRE_HEADER_LEN + ql, 4) == 0; /* qtype and qclass */
}

static void on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *b, const struct sockaddr *from,
                    unsigned flags)
{
    struct udpq *q = u->data;
    (void)from;
    (void)flags;
    /* nread == 0 with no address ends a recvmmsg batch; errors (ICMP unreachable) and
     * runts are left to the timer. */
    if (nread < DNSWIRE_HEADER_LEN || q->closing)
        return;
    const uint8_t *ans = (const uint8_t *)b->base;
    uint16_t id = (uint16_t)(ans[0] << 8 | ans[1]);
    size_t pos;
    if (!(ans[2] & 0x80) || (pos = ids_find(q, id)) == SIZE_MAX) {
        q->stats.ignored++; /* not a response, or a late or forged one */
        return;
    }
    struct slot *s = &q->slots[q->ids[pos] - 1];
    if (!question_matches(s, ans, (size_t)nread)) {
        q->stats.ignored++; /* a forgery or a confused server: keep waiting for the real one */
        return;
    }
    if (ans[2] & 0x02) {
        q->stats.truncated++;
        finish_slot(q, s, pos, CF_EDNS, NULL, 0); /* TC: see udpq_query */
        return;
    }
    if ((size_t)nread > UDPQ_EDNS_SIZE) {
        /*
         * RFC 6891 §6.2.3: we said we take 1232 octets. A larger answer
         * without TC is broken or forged, and is never believed.
         */
        finish_slot(q, s, pos, CF_ETOOBIG, NULL, 0);
        return;
    }
    if (s->tries_left == q->tries) {
        uint64_t rtt = uv_now(q->loop) - s->sent_at;
        q->srtt_ms = q->srtt_ms ? (7 * q->srtt_ms + rtt) / 8 : (rtt ? rtt : 1);
    }
    q->stats.answers++;
    finish_slot(q, s, pos, 0, ans, (size_t)nread);
}

/* ---- public API ---- */

int udpq_new(struct udpq **out, uv_loop_t *loop, const char *addr, const struct udpq_opts *o)
{
    struct sockaddr_storage ss;
    int port = o && o->port ? o->port : 53;
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) != 0)
        return CF_ECONFIG;
    struct udpq *q = xcalloc(1, sizeof(*q));
    q->loop = loop;
    q->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms : 1500;
    q->tries = o && o->tries > 0 ? o->tries : 3;
    q->rd = o && o->rd;
    q->nslots = o && o->max_inflight ? o->max_inflight : 256;
    if (q->nslots > 16384)
        q->nslots = 16384; /* a quarter of the ID space: IDs stay quick to draw */
    q->slots = xcalloc(q->nslots, sizeof(*q->slots));
    for (size_t i = 0; i < q->nslots; i++)
        q->slots[i].next_free = i + 1 < q->nslots ? (uint32_t)(i + 1) : NO_SLOT;
    size_t m = 16;
    while (m < 2 * q->nslots)
        m *= 2;
    q->ids = xcalloc(m, sizeof(*q->ids));
    q->ids_mask = m - 1;
    q->sendq = xcalloc(q->nslots, sizeof(*q->sendq));
    int rc = uv_udp_init_ex(loop, &q->udp, AF_UNSPEC | UV_UDP_RECVMMSG);
    if (rc) {
        free(q->slots);
        free(q->ids);
        free(q->sendq);
        free(q);
        return rc;
    }
    q->udp.data = q;
    uv_timer_init(loop, &q->timer);
    q->timer.data = q;
    uv_idle_init(loop, &q->flush);
    q->flush.data = q;
    q->handles_open = 3;
    rc = uv_udp_connect(&q->udp, (const struct sockaddr *)&ss);
    if (rc == 0) {
        /*
         * Room for every answer in flight while the loop is busy elsewhere:
         * a datagram costs a few KB of buffer, and the default 208 KB
         * dropped answers at 256 in flight (each a 1.5 s retry).
         */
        int rcvbuf = 4 << 20;
        uv_recv_buffer_size((uv_handle_t *)&q->udp, &rcvbuf);
        uv_os_fd_t fd;
        rc = uv_fileno((uv_handle_t *)&q->udp, &fd);
        q->fd = fd;
    }
    if (rc == 0)
        rc = uv_udp_recv_start(&q->udp, on_alloc, on_recv);
    if (rc) {
        q->closing = 1;
        uv_close((uv_handle_t *)&q->udp, on_closed);
        uv_close((uv_handle_t *)&q->timer, on_closed);
        uv_close((uv_handle_t *)&q->flush, on_closed);
        return rc;
    }
    *out = q;
    return 0;
}

/*
 * build_query writes the question: header (ID filled in later, RD as
 * configured), the name, type, class IN, and an OPT record offering
 * UDPQ_EDNS_SIZE octets (RFC 6891 §6.1.2). Returns the length.
 */
static size_t build_query(const struct udpq *q, uint8_t *out, const uint8_t *wire, size_t wl,
                          uint16_t qtype)
{
    static const uint8_t opt[11] = {0, 0, 41, UDPQ_EDNS_SIZE >> 8, UDPQ_EDNS_SIZE & 0xff, 0, 0, 0,
                                    0, 0, 0};
    uint8_t *p = out;
    memset(p, 0, DNSWIRE_HEADER_LEN);
    p[2] = q->rd ? 0x01 : 0x00; /* opcode QUERY; RD */
    p[5] = 1;                   /* QDCOUNT */
    p[11] = 1;                  /* ARCOUNT: the OPT record */
    p += DNSWIRE_HEADER_LEN;
    memcpy(p, wire, wl);
    p += wl;
    *p++ = (uint8_t)(qtype >> 8);
    *p++ = (uint8_t)qtype;
    *p++ = 0;
    *p++ = DNSWIRE_CLASS_IN;
    memcpy(p, opt, sizeof(opt));
    p += sizeof(opt);
    return (size_t)(p - out);
}

int udpq_query_wire(struct udpq *q, const uint8_t *wire, size_t wire_len, uint16_t qtype,
                    dns_answer_cb cb, void *arg)
{
    uint8_t qbuf[QUERY_MAX];
    if (q->closing)
        return CF_ECANCELED;
    if (dnswire_name_check(wire, wire_len) != 0)
        return CF_EPARSE;
    size_t qlen = build_query(q, qbuf, wire, wire_len, qtype);
    q->inflight++;
    if (q->used < q->nslots) {
        start_slot(q, qbuf, qlen, cb, arg);
        return 0;
    }
    if (q->wcount == q->wcap) {
        /* Grow the ring, unrolled so the line starts at 0 again. */
        size_t ncap = q->wcap ? q->wcap * 2 : 256;
        struct waiting *n = xmalloc(ncap * sizeof(*n));
        for (size_t i = 0; i < q->wcount; i++)
            n[i] = q->wring[(q->whead + i) & (q->wcap - 1)];
        free(q->wring);
        q->wring = n;
        q->wcap = ncap;
        q->whead = 0;
    }
    struct waiting *w = &q->wring[(q->whead + q->wcount) & (q->wcap - 1)];
    q->wcount++;
    w->cb = cb;
    w->arg = arg;
    w->qlen = (uint16_t)qlen;
    memcpy(w->qbuf, qbuf, qlen);
    return 0;
}

int udpq_query(struct udpq *q, const char *name, uint16_t qtype, dns_answer_cb cb, void *arg)
{
    uint8_t wire[DNSWIRE_NAME_MAX];
    size_t wl;
    if (dnswire_name_from_text(wire, &wl, name) != 0)
        return CF_EPARSE;
    return udpq_query_wire(q, wire, wl, qtype, cb, arg);
}

size_t udpq_inflight(const struct udpq *q)
{
    return q->inflight;
}

void udpq_get_stats(const struct udpq *q, struct udpq_stats *out)
{
    *out = q->stats;
}

void udpq_free(struct udpq *q)
{
    if (!q)
        return;
    q->closing = 1;
    q->nsend = 0; /* nothing more leaves */
    for (size_t i = 0; i < q->nslots; i++)
        if (q->slots[i].used)
            finish_slot(q, &q->slots[i], ids_find(q, q->slots[i].id), CF_ECANCELED, NULL, 0);
    while (q->wcount) {
        struct waiting *w = &q->wring[q->whead];
        q->whead = (q->whead + 1) & (q->wcap - 1);
        q->wcount--;
        q->inflight--;
        w->cb(w->arg, CF_ECANCELED, NULL, 0);
    }
    uv_close((uv_handle_t *)&q->udp, on_closed);
    uv_close((uv_handle_t *)&q->timer, on_closed);
    uv_close((uv_handle_t *)&q->flush, on_closed);
}
