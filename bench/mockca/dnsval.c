/*
 * dnsval.c - dns-01 validation (RFC 8555 §8.4) the way a CA does it: ask
 * for TXT at _acme-challenge.<name>, follow the CNAME the customer set up,
 * and compare the records with the expected digest.
 *
 * A small UDP client of its own rather than c-ares: one socket, at most
 * SLOTS questions in flight (the rest wait in a FIFO), the query ID names
 * the slot, and one timer scans for timeouts. Two modes:
 *   recursive      RD set, the server (a resolver) follows the CNAME and the
 *                  answer holds the chain and the TXT records;
 *   authoritative  RD clear; when an answer ends in a CNAME without TXT, the
 *                  target is asked again at the same address (a server that
 *                  holds both the customer's and the validation zone).
 * EDNS(0) with a 4096-octet buffer; a truncated answer fails the validation
 * (no TCP fallback: the records here are small).
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mockca.h"
#include "timeutil.h"

#define SLOTS 4096
#define SLOT_BITS 12
#define MAX_HOPS 8
#define TICK_MS 100
#define NAME_MAX_TEXT 255

struct query {
    uint32_t authz;
    uint16_t id;
    uint8_t in_use, hops, tries;
    int64_t sent_ms;
    char name[NAME_MAX_TEXT + 1]; /* the name asked now, no trailing dot */
    char expected[48];
};

struct waiting {
    uint32_t authz;
    char name[NAME_MAX_TEXT + 1];
    char expected[48];
};

struct mc_dnsval {
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_timer_t timer;
    struct sockaddr_storage server;
    int recurse, timeout_ms, tries;
    mc_dnsval_cb cb;
    void *cb_arg;
    struct query q[SLOTS];
    uint16_t free_slots[SLOTS];
    int nfree;
    uint16_t gen;
    int handles_open;   /* while closing: the last close callback frees */
    struct waiting *wq; /* ring */
    size_t wq_head, wq_len, wq_cap;
    struct mc_dnsval_stats st;
};

static uint8_t rbuf[65536];

/* encode_query writes a TXT question for name into out (512 bytes); returns its length or 0. */
static size_t encode_query(uint8_t *out, uint16_t id, const char *name, int recurse)
{
    size_t n = 12;
    const char *p = name;

    memset(out, 0, 12);
    out[0] = (uint8_t)(id >> 8);
    out[1] = (uint8_t)id;
    out[2] = recurse ? 0x01 : 0x00; /* RD */
    out[5] = 1;                     /* QDCOUNT */
    out[11] = 1;                    /* ARCOUNT: OPT */
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63 || n + l + 1 > 300)
            return 0;
        out[n++] = (uint8_t)l;
        memcpy(out + n, p, l);
        n += l;
        p += l;
        if (*p == '.')
            p++;
    }
    out[n++] = 0;
    out[n++] = 0;
    out[n++] = 16; /* TXT */
    out[n++] = 0;
    out[n++] = 1; /* IN */
    /* OPT (RFC 6891 §6.1.2): root name, type 41, class = UDP payload size. */
    static const uint8_t opt[] = {0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0};
    memcpy(out + n, opt, sizeof(opt));
    return n + sizeof(opt);
}

static void send_query(struct mc_dnsval *v, struct query *q)
{
    uint8_t msg[512];
    size_t n = encode_query(msg, q->id, q->name, v->recurse);
    uv_buf_t b = uv_buf_init((char *)msg, (unsigned)n);

    q->sent_ms = cf_wall_ms();
    q->tries++;
    v->st.queries++;
    /* A full socket buffer is not an error here: the timeout sends again. */
    if (n)
        uv_udp_try_send(&v->udp, &b, 1, (const struct sockaddr *)&v->server);
}

static void start_waiting(struct mc_dnsval *v);

static void finish(struct mc_dnsval *v, struct query *q, enum mc_verr err)
{
    uint32_t authz = q->authz;
    uint16_t slot = (uint16_t)(q - v->q);

    q->in_use = 0;
    v->free_slots[v->nfree++] = slot;
    v->st.inflight--;
    v->cb(v->cb_arg, authz, err);
    start_waiting(v);
}

static void launch(struct mc_dnsval *v, uint32_t authz, const char *name, const char *expected)
{
    uint16_t slot = v->free_slots[--v->nfree];
    struct query *q = &v->q[slot];

    /* The ID carries the slot and a generation, so a late answer to a reused slot is ignored. */
    v->gen = (uint16_t)((v->gen + 1) & ((1u << (16 - SLOT_BITS)) - 1));
    q->id = (uint16_t)((v->gen << SLOT_BITS) | slot);
    q->authz = authz;
    q->in_use = 1;
    q->hops = 0;
    q->tries = 0;
    str_copy(q->name, sizeof(q->name), name);
    str_copy(q->expected, sizeof(q->expected), expected);
    v->st.inflight++;
    send_query(v, q);
}

static void start_waiting(struct mc_dnsval *v)
{
    while (v->nfree > 0 && v->wq_len > 0) {
        struct waiting w = v->wq[v->wq_head];
        v->wq_head = (v->wq_head + 1) % v->wq_cap;
        v->wq_len--;
        v->st.queued = v->wq_len;
        launch(v, w.authz, w.name, w.expected);
    }
}

void mc_dnsval_start(struct mc_dnsval *v, uint32_t authz, const char *name, const char *expected)
{
    char qname[NAME_MAX_TEXT + 1];

    str_fmt(qname, sizeof(qname), "_acme-challenge.%s", name);
    if (v->nfree > 0 && v->wq_len == 0) {
        launch(v, authz, qname, expected);
        return;
    }
    if (v->wq_len == v->wq_cap) {
        size_t ncap = v->wq_cap ? v->wq_cap * 2 : 1024;
        struct waiting *n = xmalloc(ncap * sizeof(*n));
        for (size_t i = 0; i < v->wq_len; i++)
            n[i] = v->wq[(v->wq_head + i) % v->wq_cap];
        free(v->wq);
        v->wq = n;
        v->wq_cap = ncap;
        v->wq_head = 0;
    }
    {
        struct waiting *w = &v->wq[(v->wq_head + v->wq_len) % v->wq_cap];
        w->authz = authz;
        str_copy(w->name, sizeof(w->name), qname);
        str_copy(w->expected, sizeof(w->expected), expected);
        v->wq_len++;
        v->st.queued = v->wq_len;
    }
}

/*
 * read_name decodes the (possibly compressed, RFC 1035 §4.1.4) name at *off
 * of msg into out (lower case, no trailing dot) and moves *off past it.
 * Returns 0 or -1.
 */
static int read_name(const uint8_t *msg, size_t len, size_t *off, char *out)
{
    size_t p = *off, n = 0;
    int jumped = 0, guard = 0;

    for (;;) {
        uint8_t l;
        if (p >= len || ++guard > 128)
            return -1;
        l = msg[p];
        if ((l & 0xc0) == 0xc0) {
            if (p + 1 >= len)
                return -1;
            if (!jumped)
                *off = p + 2;
            jumped = 1;
            p = ((size_t)(l & 0x3f) << 8) | msg[p + 1];
            continue;
        }
        if (l & 0xc0)
            return -1;
        p++;
        if (l == 0)
            break;
        if (p + l > len || n + l + 1 > NAME_MAX_TEXT)
            return -1;
        if (n)
            out[n++] = '.';
        for (size_t i = 0; i < l; i++) {
            char c = (char)msg[p + i];
            out[n++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        p += l;
    }
    out[n] = '\0';
    if (!jumped)
        *off = p;
    return 0;
}

static int name_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b + 32) : *b;
        if (x != y)
            return 0;
    }
    return *a == *b;
}

struct rr {
    char owner[NAME_MAX_TEXT + 1];
    uint16_t type;
    size_t rdata, rdlen;
};

#define MAX_RR 64

/* answer handles one parsed answer for q. */
static void answer(struct mc_dnsval *v, struct query *q, const uint8_t *msg, size_t len)
{
    static struct rr rrs[MAX_RR];
    size_t off = 12, nrr = 0;
    unsigned flags = ((unsigned)msg[2] << 8) | msg[3];
    unsigned qd = ((unsigned)msg[4] << 8) | msg[5], an = ((unsigned)msg[6] << 8) | msg[7];
    char qn[NAME_MAX_TEXT + 1], cur[NAME_MAX_TEXT + 1];
    int found_txt = 0;

    v->st.answers++;
    if (flags & 0x0200) {
        finish(v, q, MC_VERR_TRUNCATED);
        return;
    }
    if (qd != 1 || read_name(msg, len, &off, qn) != 0 || off + 4 > len || !name_eq(qn, q->name))
        return; /* not the answer to this question: wait for the right one or the timeout */
    off += 4;
    switch (flags & 0xf) {
    case 0:
        break;
    case 3:
        finish(v, q, MC_VERR_NXDOMAIN);
        return;
    default:
        finish(v, q, MC_VERR_SERVFAIL);
        return;
    }
    for (unsigned i = 0; i < an && nrr < MAX_RR; i++) {
        struct rr *r = &rrs[nrr];
        if (read_name(msg, len, &off, r->owner) != 0 || off + 10 > len) {
            finish(v, q, MC_VERR_BAD_ANSWER);
            return;
        }
        r->type = (uint16_t)((msg[off] << 8) | msg[off + 1]);
        r->rdlen = ((size_t)msg[off + 8] << 8) | msg[off + 9];
        r->rdata = off + 10;
        off += 10 + r->rdlen;
        if (off > len) {
            finish(v, q, MC_VERR_BAD_ANSWER);
            return;
        }
        if (r->type == 5 || r->type == 16)
            nrr++;
    }
    /* Follow the CNAME chain from the question's name within the answer. */
    str_copy(cur, sizeof(cur), q->name);
    for (int hop = 0;; hop++) {
        int moved = 0;
        for (size_t i = 0; i < nrr; i++) {
            if (rrs[i].type == 5 && name_eq(rrs[i].owner, cur)) {
                size_t o = rrs[i].rdata;
                if (read_name(msg, len, &o, cur) != 0) {
                    finish(v, q, MC_VERR_BAD_ANSWER);
                    return;
                }
                moved = 1;
                break;
            }
        }
        if (!moved)
            break;
        if (hop + q->hops >= MAX_HOPS) {
            finish(v, q, MC_VERR_CNAME_LOOP);
            return;
        }
    }
    for (size_t i = 0; i < nrr; i++) {
        char txt[1024];
        size_t tl = 0, o, end;
        if (rrs[i].type != 16 || !name_eq(rrs[i].owner, cur))
            continue;
        found_txt = 1;
        /* One TXT record is its character-strings joined (RFC 8555 §8.4 compares the whole). */
        for (o = rrs[i].rdata, end = o + rrs[i].rdlen; o < end;) {
            size_t l = msg[o++];
            if (o + l > end || tl + l >= sizeof(txt))
                break;
            memcpy(txt + tl, msg + o, l);
            tl += l;
            o += l;
        }
        if (tl == strlen(q->expected) && memcmp(txt, q->expected, tl) == 0) {
            finish(v, q, MC_VERR_NONE);
            return;
        }
    }
    if (found_txt) {
        finish(v, q, MC_VERR_WRONG_TXT);
        return;
    }
    if (!v->recurse && !name_eq(cur, q->name)) {
        /* An authoritative server answered with the CNAME only: ask for the target. */
        q->hops = (uint8_t)(q->hops + 1);
        if (q->hops >= MAX_HOPS) {
            finish(v, q, MC_VERR_CNAME_LOOP);
            return;
        }
        str_copy(q->name, sizeof(q->name), cur);
        q->tries = 0;
        send_query(v, q);
        return;
    }
    finish(v, q, MC_VERR_NO_TXT);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    *b = uv_buf_init((char *)rbuf, sizeof(rbuf));
}

static void on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *addr,
                    unsigned flags)
{
    struct mc_dnsval *v = h->data;
    const uint8_t *msg = (const uint8_t *)b->base;
    struct query *q;
    uint16_t id;

    (void)flags;
    if (n < 12 || !addr)
        return;
    id = (uint16_t)((msg[0] << 8) | msg[1]);
    q = &v->q[id & (SLOTS - 1)];
    if (!q->in_use || q->id != id || !(msg[2] & 0x80))
        return;
    answer(v, q, msg, (size_t)n);
}

static void on_tick(uv_timer_t *t)
{
    struct mc_dnsval *v = t->data;
    int64_t now = cf_wall_ms();

    for (size_t i = 0; i < SLOTS; i++) {
        struct query *q = &v->q[i];
        if (!q->in_use || now - q->sent_ms < v->timeout_ms)
            continue;
        if (q->tries < v->tries) {
            send_query(v, q);
            continue;
        }
        v->st.timeouts++;
        finish(v, q, MC_VERR_TIMEOUT);
    }
}

int mc_dnsval_new(struct mc_dnsval **out, uv_loop_t *loop, const struct mc_dnsval_opts *o,
                  mc_dnsval_cb cb, void *arg)
{
    struct mc_dnsval *v = xcalloc(1, sizeof(*v));
    struct sockaddr_storage any;
    int rc;

    v->loop = loop;
    memcpy(&v->server, o->server,
           o->server->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in));
    v->recurse = o->recurse;
    v->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
    v->tries = o->tries > 0 ? o->tries : 3;
    v->cb = cb;
    v->cb_arg = arg;
    for (int i = 0; i < SLOTS; i++)
        v->free_slots[i] = (uint16_t)(SLOTS - 1 - i);
    v->nfree = SLOTS;
    memset(&any, 0, sizeof(any));
    if (o->server->sa_family == AF_INET6)
        uv_ip6_addr("::", 0, (struct sockaddr_in6 *)&any);
    else
        uv_ip4_addr("0.0.0.0", 0, (struct sockaddr_in *)&any);
    uv_udp_init(loop, &v->udp);
    v->udp.data = v;
    rc = uv_udp_bind(&v->udp, (const struct sockaddr *)&any, 0);
    if (rc == 0) {
        int size = 4 << 20;
        uv_recv_buffer_size((uv_handle_t *)&v->udp, &size);
        rc = uv_udp_recv_start(&v->udp, on_alloc, on_recv);
    }
    uv_timer_init(loop, &v->timer);
    v->timer.data = v;
    if (rc == 0)
        rc = uv_timer_start(&v->timer, on_tick, TICK_MS, TICK_MS);
    if (rc) {
        mc_dnsval_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct mc_dnsval *v = h->data;

    /* libuv runs close callbacks in no promised order: the last one frees. */
    if (--v->handles_open == 0) {
        free(v->wq);
        free(v);
    }
}

void mc_dnsval_free(struct mc_dnsval *v)
{
    if (!v)
        return;
    v->handles_open = 2;
    uv_close((uv_handle_t *)&v->timer, on_closed);
    uv_close((uv_handle_t *)&v->udp, on_closed);
}

void mc_dnsval_get_stats(const struct mc_dnsval *v, struct mc_dnsval_stats *s)
{
    *s = v->st;
}
