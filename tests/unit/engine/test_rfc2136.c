/*
 * test_rfc2136.c - the RFC 2136 provisioner against a fake primary on the
 * same libuv loop.
 *
 * The fake listens on 127.0.0.1 (UDP and TCP on one port chosen by the
 * kernel), parses every UPDATE it receives with dnswire (zone section,
 * ADD class IN vs DELETE_RR class NONE, TSIG present and valid) and answers
 * as the test asks: signed NOERROR, NOTAUTH with TSIG error BADSIG, REFUSED
 * and other rcodes, unsigned or wrongly signed NOERROR, a wrong ID, nothing,
 * TC (then over TCP), garbage first. Problems seen inside callbacks are
 * recorded and asserted after the loop returns (an assert inside a libuv
 * callback would jump out of uv_run).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "buf.h"
#include "dnswire.h"
#include "err.h"
#include "log.h"
#include "rfc2136.h"

#define ZONE "acme.cdn.test"
/* base64 of "rfc2136-unit-test-secret-0123456" and of another secret. */
#define SECRET_B64 "cmZjMjEzNi11bml0LXRlc3Qtc2VjcmV0LTAxMjM0NTY="
#define OTHER_B64 "b3RoZXItc2VjcmV0LW5vdC10aGUtcmlnaHQtb25lISE="

enum fake_mode {
    FAKE_NOERROR,   /* signed NOERROR */
    FAKE_BADSIG,    /* NOTAUTH, unsigned TSIG record with error BADSIG (RFC 8945 §5.3.2) */
    FAKE_RCODE,     /* signed answer with rcode fake.rcode */
    FAKE_UNSIGNED,  /* NOERROR without TSIG */
    FAKE_OTHER_KEY, /* NOERROR signed with another secret */
    FAKE_WRONG_ID,  /* signed NOERROR with ID + 1 */
    FAKE_SILENT,    /* no answer */
    FAKE_TC,        /* TC over UDP; signed NOERROR over TCP */
    FAKE_GARBAGE,   /* junk datagrams first, then signed NOERROR */
    FAKE_DELAY,     /* signed NOERROR after 50 ms */
    FAKE_TC_BAD_ID, /* TC over UDP; over TCP a signed NOERROR with ID + 1 */
};

struct fake;

struct fconn {
    uv_tcp_t tcp;
    struct fake *f;
    uint8_t in[2 + 65535];
    size_t len;
    struct fconn *next;
};

struct delayed {
    uv_timer_t timer;
    struct fake *f;
    uint8_t pkt[2048];
    size_t len;
};

struct fake {
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_tcp_t listener;
    struct sockaddr_in peer; /* the client's UDP address, for delayed answers */
    int port;
    enum fake_mode mode;
    uint16_t rcode;
    struct dnswire_tsig_key key, other;
    int udp_msgs, tcp_msgs, answers;
    size_t changes[64]; /* changes per message, in arrival order */
    uint16_t ids[64];
    int nmsgs;
    struct buf log;    /* "+name=value" / "-name=value", messages separated by '|' */
    struct buf events; /* "R<n>" received, "A<n>" answered (n = arrival number) */
    char problem[256]; /* the first thing wrong with a request */
    struct fconn *conns;
};

static uv_loop_t loop;
static struct fake fake;
static char key_path[64];

static void problem(struct fake *f, const char *what)
{
    if (!f->problem[0])
        snprintf(f->problem, sizeof(f->problem), "%s", what);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* request_mac reads the MAC of the request's TSIG record (RFC 8945 §4.2). */
static int request_mac(const struct dnswire_msg *m, struct dnswire_tsig_mac *mac)
{
    const struct dnswire_rr *t = &m->rr[m->ancount + m->nscount + m->arcount - 1];
    uint8_t alg[DNSWIRE_NAME_MAX];
    size_t alg_len, off = t->rdata_off;
    if (dnswire_read_name(m->pkt, t->rdata_off + t->rdlen, &off, alg, &alg_len) != 0)
        return -1;
    mac->len = get16(m->pkt + off + 8);
    if (mac->len > DNSWIRE_TSIG_MAC_MAX)
        return -1;
    memcpy(mac->mac, m->pkt + off + 10, mac->len);
    return 0;
}

/*
 * fake_handle checks one request and writes the answer into out (cap
 * octets) per the mode; returns its length, 0 for no answer.
 */
static size_t fake_handle(struct fake *f, const uint8_t *pkt, size_t len, int tcp, uint8_t *out,
                          size_t cap)
{
    struct dnswire_msg m;
    struct dnswire_tsig_mac mac;
    struct dnswire_writer w;
    struct dnswire_header h;
    uint8_t zone[DNSWIRE_NAME_MAX];
    size_t zl, olen;
    char name[DNSWIRE_NAME_TEXT_MAX];
    uint8_t txt[4200];
    size_t tl;
    int n = f->nmsgs;

    if (dnswire_msg_parse(&m, pkt, len) != 0) {
        problem(f, "unparsable request");
        return 0;
    }
    if (n < 64) {
        f->changes[n] = m.nscount;
        f->ids[n] = m.hdr.id;
    }
    f->nmsgs++;
    if (tcp)
        f->tcp_msgs++;
    else
        f->udp_msgs++;
    buf_printf(&f->events, "R%d ", n + 1);
    dnswire_name_from_text(zone, &zl, ZONE);
    if (m.hdr.opcode != DNSWIRE_OPCODE_UPDATE || m.hdr.qr || m.qdcount != 1 ||
        m.qd[0].qtype != DNSWIRE_TYPE_SOA || m.qd[0].qclass != DNSWIRE_CLASS_IN ||
        !dnswire_name_equal(m.qd[0].name, m.qd[0].name_len, zone, zl))
        problem(f, "bad header or zone section");
    if (m.ancount != 0)
        problem(f, "prerequisites present");
    if (!m.has_tsig || m.arcount != 1)
        problem(f, "no TSIG record");
    else if (dnswire_tsig_verify(&f->key, NULL, pkt, len, NULL, (uint64_t)time(NULL)) != 0)
        problem(f, "TSIG does not verify");
    if (f->log.len)
        buf_putc(&f->log, '|');
    for (size_t i = m.ancount; i < m.ancount + m.nscount; i++) {
        const struct dnswire_rr *rr = &m.rr[i];
        if (rr->type != DNSWIRE_TYPE_TXT || dnswire_rdata_txt(rr, txt, sizeof(txt), &tl) != 0) {
            problem(f, "not a TXT change");
            continue;
        }
        dnswire_name_to_text(name, sizeof(name), rr->name, rr->name_len);
        if (rr->class == DNSWIRE_CLASS_IN && rr->ttl == 60)
            buf_putc(&f->log, '+');
        else if (rr->class == DNSWIRE_CLASS_NONE && rr->ttl == 0)
            buf_putc(&f->log, '-');
        else
            problem(f, "a change neither ADD (IN, TTL 60) nor DELETE_RR (NONE, TTL 0)");
        buf_printf(&f->log, "%s=%.*s", name, (int)tl, (const char *)txt);
        if (i + 1 < m.ancount + m.nscount)
            buf_putc(&f->log, ',');
    }
    if (m.has_tsig && request_mac(&m, &mac) != 0)
        problem(f, "bad request MAC");

    if (f->mode == FAKE_SILENT) {
        dnswire_msg_cleanup(&m);
        return 0;
    }
    memset(&h, 0, sizeof(h));
    h.id = m.hdr.id;
    h.qr = 1;
    h.opcode = DNSWIRE_OPCODE_UPDATE;
    switch (f->mode) {
    case FAKE_BADSIG:
        h.rcode = DNSWIRE_RCODE_NOTAUTH;
        break;
    case FAKE_RCODE:
        h.rcode = f->rcode;
        break;
    case FAKE_WRONG_ID:
        h.id = (uint16_t)(m.hdr.id + 1);
        break;
    case FAKE_TC:
        h.tc = !tcp;
        break;
    case FAKE_TC_BAD_ID:
        h.tc = !tcp;
        if (tcp)
            h.id = (uint16_t)(m.hdr.id + 1);
        break;
    default:
        break;
    }
    dnswire_writer_init(&w, out, cap);
    dnswire_write_header(&w, &h);
    dnswire_write_question(&w, zone, zl, DNSWIRE_TYPE_SOA, DNSWIRE_CLASS_IN);
    olen = w.len;
    dnswire_msg_cleanup(&m);

    switch (f->mode) {
    case FAKE_UNSIGNED:
        break;
    case FAKE_TC:
    case FAKE_TC_BAD_ID:
        if (tcp)
            dnswire_tsig_sign(&f->key, out, cap, &olen, (uint64_t)time(NULL), &mac, NULL);
        break;
    case FAKE_OTHER_KEY:
        dnswire_tsig_sign(&f->other, out, cap, &olen, (uint64_t)time(NULL), &mac, NULL);
        break;
    case FAKE_BADSIG: {
        /* RFC 8945 §5.3.2: an unsigned TSIG record (empty MAC) with error BADSIG. */
        static const uint8_t alg[] = "\x0bhmac-sha256";
        uint8_t *p = out + olen;
        uint64_t now = (uint64_t)time(NULL);
        memcpy(p, f->key.name, f->key.name_len);
        p += f->key.name_len;
        put16(p, DNSWIRE_TYPE_TSIG);
        put16(p + 2, DNSWIRE_CLASS_ANY);
        memset(p + 4, 0, 4);
        put16(p + 8, (uint16_t)(sizeof(alg) + 6 + 2 + 2 + 6));
        p += 10;
        memcpy(p, alg, sizeof(alg)); /* with its root label */
        p += sizeof(alg);
        for (int i = 0; i < 6; i++)
            p[i] = (uint8_t)(now >> (8 * (5 - i)));
        put16(p + 6, 300);
        put16(p + 8, 0); /* MAC size */
        put16(p + 10, h.id);
        put16(p + 12, DNSWIRE_RCODE_BADSIG);
        put16(p + 14, 0);
        p += 16;
        olen = (size_t)(p - out);
        put16(out + 10, 1); /* ARCOUNT */
        break;
    }
    default:
        dnswire_tsig_sign(&f->key, out, cap, &olen, (uint64_t)time(NULL), &mac, NULL);
        break;
    }
    return olen;
}

static void on_fake_sent(uv_udp_send_t *req, int status)
{
    (void)status;
    free(req);
}

static void fake_send_udp(struct fake *f, const uint8_t *pkt, size_t len, const struct sockaddr *to)
{
    uv_udp_send_t *req = malloc(sizeof(*req) + len);
    memcpy(req + 1, pkt, len);
    uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned int)len);
    if (uv_udp_send(req, &f->udp, &b, 1, to, on_fake_sent) != 0)
        free(req);
}

static void on_delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_delay(uv_timer_t *t)
{
    struct delayed *d = t->data;
    d->f->answers++;
    buf_printf(&d->f->events, "A ");
    fake_send_udp(d->f, d->pkt, d->len, (const struct sockaddr *)&d->f->peer);
    uv_close((uv_handle_t *)t, on_delayed_closed);
}

static void on_fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[65536];
    (void)h;
    (void)suggested;
    buf->base = rbuf;
    buf->len = sizeof(rbuf);
}

static void on_fake_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    struct fake *f = h->data;
    uint8_t out[2048];
    size_t olen;
    (void)flags;
    if (nread <= 0 || !addr)
        return;
    memcpy(&f->peer, addr, sizeof(f->peer));
    olen = fake_handle(f, (const uint8_t *)buf->base, (size_t)nread, 0, out, sizeof(out));
    if (olen == 0)
        return;
    if (f->mode == FAKE_GARBAGE) {
        /* Too short; our ID with QR clear; our ID and a body that does not parse; noise. */
        uint8_t junk[1000];
        fake_send_udp(f, (const uint8_t *)"\x01\x02\x03", 3, addr);
        memcpy(junk, out, 12);
        junk[2] &= 0x7f;
        fake_send_udp(f, junk, 12, addr);
        memcpy(junk, out, olen);
        junk[5] = 9; /* QDCOUNT 9 */
        fake_send_udp(f, junk, olen, addr);
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (uint8_t)(i * 131 + 7);
        fake_send_udp(f, junk, sizeof(junk), addr);
        /* A forged NOERROR: our ID, no TSIG (the signed answer follows). */
        uint8_t zone[DNSWIRE_NAME_MAX];
        size_t zl;
        dnswire_name_from_text(zone, &zl, ZONE);
        memcpy(junk, out, 12 + zl + 4);
        put16(junk + 10, 0);
        fake_send_udp(f, junk, 12 + zl + 4, addr);
    }
    if (f->mode == FAKE_DELAY) {
        struct delayed *d = calloc(1, sizeof(*d));
        d->f = f;
        memcpy(d->pkt, out, olen);
        d->len = olen;
        uv_timer_init(f->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, on_delay, 50, 0);
        return;
    }
    f->answers++;
    buf_printf(&f->events, "A ");
    fake_send_udp(f, out, olen, addr);
}

static void on_fconn_closed(uv_handle_t *h)
{
    struct fconn *c = h->data;
    struct fconn **pp = &c->f->conns;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
    free(c);
}

static void on_fconn_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void on_fconn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fconn *c = h->data;
    (void)suggested;
    buf->base = (char *)c->in + c->len;
    buf->len = sizeof(c->in) - c->len;
}

static void on_fconn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct fconn *c = s->data;
    size_t need;
    (void)buf;
    if (nread < 0) {
        uv_close((uv_handle_t *)s, on_fconn_closed);
        return;
    }
    c->len += (size_t)nread;
    if (c->len < 2)
        return;
    need = 2 + (size_t)get16(c->in);
    if (c->len < need)
        return;
    uv_write_t *req = malloc(sizeof(*req) + 2 + 2048);
    uint8_t *out = (uint8_t *)(req + 1);
    size_t olen = fake_handle(c->f, c->in + 2, need - 2, 1, out + 2, 2048);
    c->len = 0;
    if (olen == 0) {
        free(req);
        return;
    }
    c->f->answers++;
    buf_printf(&c->f->events, "A ");
    put16(out, (uint16_t)olen);
    uv_buf_t b = uv_buf_init((char *)out, (unsigned int)olen + 2);
    if (uv_write(req, s, &b, 1, on_fconn_written) != 0)
        free(req);
}

static void on_fake_conn(uv_stream_t *server, int status)
{
    struct fake *f = server->data;
    struct fconn *c;
    if (status < 0)
        return;
    c = calloc(1, sizeof(*c));
    c->f = f;
    uv_tcp_init(f->loop, &c->tcp);
    c->tcp.data = c;
    c->next = f->conns;
    f->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_fconn_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_fconn_alloc, on_fconn_read);
}

static struct dnswire_tsig_key parse_key(const char *b64)
{
    struct dnswire_tsig_key k;
    const char *reason;
    char text[256];
    snprintf(text, sizeof(text), "hmac-sha256:cf-update.:%s\n", b64);
    assert_int_equal(dnswire_tsig_key_parse(&k, text, strlen(text), &reason), 0);
    return k;
}

/* fake_start binds UDP to 127.0.0.1:0, then TCP to the same port. */
static void fake_start(struct fake *f, enum fake_mode mode)
{
    struct sockaddr_in a;
    int len = sizeof(a);
    memset(f, 0, sizeof(*f));
    f->loop = &loop;
    f->mode = mode;
    f->key = parse_key(SECRET_B64);
    f->other = parse_key(OTHER_B64);
    buf_init(&f->log);
    buf_init(&f->events);
    for (int attempt = 0; attempt < 20; attempt++) {
        assert_int_equal(uv_udp_init(&loop, &f->udp), 0);
        f->udp.data = f;
        uv_ip4_addr("127.0.0.1", 0, &a);
        assert_int_equal(uv_udp_bind(&f->udp, (const struct sockaddr *)&a, 0), 0);
        assert_int_equal(uv_udp_getsockname(&f->udp, (struct sockaddr *)&a, &len), 0);
        f->port = ntohs(a.sin_port);
        assert_int_equal(uv_tcp_init(&loop, &f->listener), 0);
        f->listener.data = f;
        if (uv_tcp_bind(&f->listener, (const struct sockaddr *)&a, 0) == 0 &&
            uv_listen((uv_stream_t *)&f->listener, 16, on_fake_conn) == 0)
            break;
        /* The port is taken for TCP: try another. */
        uv_close((uv_handle_t *)&f->udp, NULL);
        uv_close((uv_handle_t *)&f->listener, NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
        f->port = 0;
    }
    assert_int_not_equal(f->port, 0);
    assert_int_equal(uv_udp_recv_start(&f->udp, on_fake_alloc, on_fake_udp), 0);
}

static void fake_stop(struct fake *f)
{
    uv_close((uv_handle_t *)&f->udp, NULL);
    uv_close((uv_handle_t *)&f->listener, NULL);
    for (struct fconn *c = f->conns; c; c = c->next)
        if (!uv_is_closing((uv_handle_t *)&c->tcp))
            uv_close((uv_handle_t *)&c->tcp, on_fconn_closed);
    dnswire_tsig_key_cleanup(&f->key);
    dnswire_tsig_key_cleanup(&f->other);
}

static void fake_cleanup(struct fake *f)
{
    buf_cleanup(&f->log);
    buf_cleanup(&f->events);
}

/* ---- The client side ---- */

struct result {
    int calls;
    int status;
    char detail[512];
};

static int done_count, done_goal;
static struct rfc2136 *freed_in_callback;

static void on_done(void *arg, int status, const char *detail)
{
    struct result *r = arg;
    r->calls++;
    r->status = status;
    snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "(null)");
    if (++done_count >= done_goal)
        uv_stop(&loop);
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
    uv_stop(&loop);
}

/* run_until runs the loop until done_count reaches goal or ms pass. */
static void run_until(int goal, uint64_t ms)
{
    uv_timer_t guard;
    done_goal = goal;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, on_guard, ms, 0);
    if (done_count < goal)
        uv_run(&loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static int setup(void **state)
{
    const char *text =
        "key \"cf-update\" {\n\talgorithm hmac-sha256;\n\tsecret \"" SECRET_B64 "\";\n};\n";
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    snprintf(key_path, sizeof(key_path), "/tmp/cf-rfc2136-key-XXXXXX");
    int fd = mkstemp(key_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    done_count = 0;
    done_goal = 0;
    freed_in_callback = NULL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(key_path);
    /* Every handle must be closed: uv_loop_close fails otherwise. */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

static struct rfc2136 *client(int timeout_ms, int tries, size_t max_changes)
{
    struct rfc2136_opts o;
    struct rfc2136 *u = NULL;
    const char *reason = NULL;
    char server[32];
    snprintf(server, sizeof(server), "127.0.0.1:%d", fake.port);
    memset(&o, 0, sizeof(o));
    o.server = server;
    o.zone = ZONE;
    o.tsig_key_file = key_path;
    o.timeout_ms = timeout_ms;
    o.tries = tries;
    o.max_changes = max_changes;
    assert_int_equal(rfc2136_new(&u, &loop, &o, &reason), 0);
    return u;
}

static void finish(struct rfc2136 *u)
{
    rfc2136_free(u);
    fake_stop(&fake);
    uv_run(&loop, UV_RUN_DEFAULT);
    fake_cleanup(&fake);
}

/* One change against the fake in a mode; returns its result. */
static struct result one_change(enum fake_mode mode, uint16_t rcode, int timeout_ms, int tries)
{
    struct result r = {0};
    fake_start(&fake, mode);
    fake.rcode = rcode;
    struct rfc2136 *u = client(timeout_ms, tries, 0);
    rfc2136_add_txt(u, "www.example.com." ZONE, "digest-1", on_done, &r);
    run_until(1, 5000);
    assert_int_equal(r.calls, 1);
    assert_string_equal(fake.problem, "");
    finish(u);
    return r;
}

/* ---- Tests ---- */

/*
 * test_batch_udp: changes queued in one loop iteration travel in one UDP
 * message, in order, ADD with class IN and the TTL, DELETE_RR with class
 * NONE (the wildcard's value at the shared name stays), TSIG-signed.
 */
static void test_batch_udp(void **state)
{
    struct result r[6];
    struct rfc2136_stats st;
    (void)state;
    memset(r, 0, sizeof(r));
    fake_start(&fake, FAKE_NOERROR);
    struct rfc2136 *u = client(1000, 2, 0);
    rfc2136_add_txt(u, "a." ZONE, "va", on_done, &r[0]);
    rfc2136_add_txt(u, "b." ZONE ".", "vb", on_done, &r[1]);
    rfc2136_add_txt(u, "Shared." ZONE, "apex", on_done, &r[2]);
    rfc2136_add_txt(u, "shared." ZONE, "wild", on_done, &r[3]);
    rfc2136_del_txt(u, "shared." ZONE, "apex", on_done, &r[4]);
    rfc2136_del_txt(u, "old." ZONE, "gone", on_done, &r[5]);
    assert_int_equal(rfc2136_pending(u), 6);
    assert_int_equal(done_count, 0); /* never called from inside the call */
    run_until(6, 5000);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 0);
        assert_non_null(strstr(r[i].detail, "NOERROR"));
    }
    assert_string_equal(fake.problem, "");
    assert_int_equal(fake.udp_msgs, 1);
    assert_int_equal(fake.tcp_msgs, 0);
    assert_string_equal(fake.log.data, "+a.acme.cdn.test=va,+b.acme.cdn.test=vb,"
                                       "+shared.acme.cdn.test=apex,+shared.acme.cdn.test=wild,"
                                       "-shared.acme.cdn.test=apex,-old.acme.cdn.test=gone");
    rfc2136_stats(u, &st);
    assert_int_equal(st.messages, 1);
    assert_int_equal(st.udp_sends, 1);
    assert_int_equal(st.tcp_exchanges, 0);
    assert_int_equal(st.changes_ok, 6);
    assert_int_equal(rfc2136_pending(u), 0);
    finish(u);
}

/*
 * test_batch_tcp: 450 changes with max_changes 200 are three messages of
 * 200, 200 and 50 changes; each is over 1232 octets, so over TCP.
 */
static void test_batch_tcp(void **state)
{
    static struct result r[450];
    struct rfc2136_stats st;
    char name[64], value[64];
    (void)state;
    memset(r, 0, sizeof(r));
    fake_start(&fake, FAKE_NOERROR);
    struct rfc2136 *u = client(2000, 2, 200);
    for (int i = 0; i < 450; i++) {
        snprintf(name, sizeof(name), "host%d.example.com.%s", i, ZONE);
        snprintf(value, sizeof(value), "value-%d-0123456789abcdef0123456789abcdef", i);
        rfc2136_add_txt(u, name, value, on_done, &r[i]);
    }
    run_until(450, 10000);
    for (int i = 0; i < 450; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 0);
    }
    assert_string_equal(fake.problem, "");
    assert_int_equal(fake.nmsgs, 3);
    assert_int_equal(fake.tcp_msgs, 3);
    assert_int_equal(fake.udp_msgs, 0);
    assert_int_equal(fake.changes[0] + fake.changes[1] + fake.changes[2], 450);
    for (int i = 0; i < 3; i++)
        assert_true(fake.changes[i] == 200 || fake.changes[i] == 50);
    rfc2136_stats(u, &st);
    assert_int_equal(st.messages, 3);
    assert_int_equal(st.tcp_exchanges, 3);
    assert_int_equal(st.changes_ok, 450);
    finish(u);
}

/* test_split_by_size: large values split messages at 65535 octets, not at max_changes. */
static void test_split_by_size(void **state)
{
    static struct result r[300];
    static char value[1001];
    char name[64];
    (void)state;
    memset(r, 0, sizeof(r));
    memset(value, 'x', 1000);
    fake_start(&fake, FAKE_NOERROR);
    struct rfc2136 *u = client(2000, 2, 1000);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "h%d.%s", i, ZONE);
        rfc2136_add_txt(u, name, value, on_done, &r[i]);
    }
    run_until(300, 10000);
    for (int i = 0; i < 300; i++)
        assert_int_equal(r[i].status, 0);
    assert_string_equal(fake.problem, "");
    /* About 1020 octets a change: at most 64 in a message, so five messages. */
    assert_int_equal(fake.nmsgs, 5);
    size_t total = 0;
    for (int i = 0; i < fake.nmsgs; i++) {
        assert_true(fake.changes[i] <= 64);
        total += fake.changes[i];
    }
    assert_int_equal(total, 300);
    finish(u);
}

static void test_notauth_badsig(void **state)
{
    char want[96];
    (void)state;
    struct result r = one_change(FAKE_BADSIG, 0, 1000, 2);
    assert_int_equal(r.status, CF_EDNS_UPDATE);
    snprintf(want, sizeof(want), "NOTAUTH from 127.0.0.1:%d for zone acme.cdn.test", fake.port);
    assert_non_null(strstr(r.detail, want));
    assert_non_null(strstr(r.detail, "BADSIG"));
    assert_non_null(strstr(r.detail, "cf-update"));
    assert_int_equal(fake.nmsgs, 1); /* a clear answer: not retried */
}

static void test_refused(void **state)
{
    char want[96];
    (void)state;
    struct result r = one_change(FAKE_RCODE, DNSWIRE_RCODE_REFUSED, 1000, 2);
    assert_int_equal(r.status, CF_EDNS_REFUSED);
    snprintf(want, sizeof(want), "REFUSED by 127.0.0.1:%d for zone acme.cdn.test", fake.port);
    assert_string_equal(r.detail, want);
}

static void test_other_rcodes(void **state)
{
    static const struct {
        uint16_t rcode;
        int status;
        const char *word;
    } cases[] = {
        {DNSWIRE_RCODE_SERVFAIL, CF_EDNS_SERVFAIL, "SERVFAIL from"},
        {DNSWIRE_RCODE_FORMERR, CF_EDNS_FORMERR, "FORMERR"},
        {DNSWIRE_RCODE_NOTIMP, CF_EDNS_FORMERR, "NOTIMP"},
        {DNSWIRE_RCODE_NOTZONE, CF_EDNS_UPDATE, "NOTZONE from"},
        {DNSWIRE_RCODE_NOTAUTH, CF_EDNS_UPDATE, "not authoritative"},
        {DNSWIRE_RCODE_YXRRSET, CF_EDNS_UPDATE, "YXRRSET"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        done_count = 0;
        struct result r = one_change(FAKE_RCODE, cases[i].rcode, 1000, 2);
        assert_int_equal(r.status, cases[i].status);
        assert_non_null(strstr(r.detail, cases[i].word));
        assert_non_null(strstr(r.detail, "acme.cdn.test"));
    }
}

static void test_unsigned_noerror(void **state)
{
    (void)state;
    uint64_t t0 = uv_hrtime();
    struct result r = one_change(FAKE_UNSIGNED, 0, 200, 2);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(r.status, CF_EPROTO);
    assert_non_null(strstr(r.detail, "unsigned NOERROR"));
    /* Reported at the deadline of the try, without a retransmission. */
    assert_int_equal(fake.udp_msgs, 1);
    assert_true(ms >= 190 && ms < 1000);
}

static void test_other_key_noerror(void **state)
{
    (void)state;
    struct result r = one_change(FAKE_OTHER_KEY, 0, 200, 2);
    assert_int_equal(r.status, CF_EPROTO);
    assert_non_null(strstr(r.detail, "fails TSIG verification"));
}

/* test_wrong_id: answers with another ID are ignored: the change times out after every try. */
static void test_wrong_id(void **state)
{
    (void)state;
    struct result r = one_change(FAKE_WRONG_ID, 0, 100, 3);
    assert_int_equal(r.status, CF_ETIMEOUT);
    assert_int_equal(fake.udp_msgs, 3);
    assert_int_equal(fake.answers, 3);
    assert_non_null(strstr(r.detail, "after 3 tries of 100 ms"));
}

/* test_silence: retransmissions of the same message, then CF_ETIMEOUT within the bound. */
static void test_silence(void **state)
{
    char want[128];
    (void)state;
    uint64_t t0 = uv_hrtime();
    struct result r = one_change(FAKE_SILENT, 0, 150, 2);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(r.status, CF_ETIMEOUT);
    snprintf(want, sizeof(want),
             "no answer from 127.0.0.1:%d for zone acme.cdn.test after 2 tries of 150 ms over UDP",
             fake.port);
    assert_string_equal(r.detail, want);
    assert_int_equal(fake.udp_msgs, 2);
    assert_int_equal(fake.ids[0], fake.ids[1]);
    assert_true(ms >= 290 && ms < 1500);
}

/* test_tc: a truncated UDP answer sends the same message over TCP. */
static void test_tc(void **state)
{
    (void)state;
    struct result r = one_change(FAKE_TC, 0, 1000, 2);
    assert_int_equal(r.status, 0);
    assert_int_equal(fake.udp_msgs, 1);
    assert_int_equal(fake.tcp_msgs, 1);
    assert_int_equal(fake.ids[0], fake.ids[1]);
}

/*
 * test_garbage: junk with and without the message's ID, and an unsigned
 * NOERROR with it, do not end the message: the signed answer that follows
 * does.
 */
static void test_garbage(void **state)
{
    struct result r = {0};
    struct rfc2136_stats st;
    (void)state;
    fake_start(&fake, FAKE_GARBAGE);
    struct rfc2136 *u = client(1000, 2, 0);
    rfc2136_add_txt(u, "g." ZONE, "v", on_done, &r);
    run_until(1, 5000);
    assert_int_equal(r.status, 0);
    rfc2136_stats(u, &st);
    assert_true(st.ignored_answers >= 4);
    assert_int_equal(fake.udp_msgs, 1);
    finish(u);
}

/* test_bad_input: names outside the zone and oversized values fail alone, from the loop. */
static void test_bad_input(void **state)
{
    struct result r[4];
    static char big[RFC2136_VALUE_MAX + 2];
    (void)state;
    memset(r, 0, sizeof(r));
    memset(big, 'b', sizeof(big) - 1);
    fake_start(&fake, FAKE_NOERROR);
    struct rfc2136 *u = client(1000, 2, 0);
    rfc2136_add_txt(u, "www.other.test", "v", on_done, &r[0]);
    rfc2136_add_txt(u, "bad..name." ZONE, "v", on_done, &r[1]);
    rfc2136_del_txt(u, "ok." ZONE, big, on_done, &r[2]);
    rfc2136_add_txt(u, "ok." ZONE, "v", on_done, &r[3]);
    assert_int_equal(done_count, 0);
    run_until(4, 5000);
    assert_int_equal(r[0].status, CF_EHOSTNAME);
    assert_non_null(
        strstr(r[0].detail, "www.other.test is not a valid name in zone acme.cdn.test"));
    assert_int_equal(r[1].status, CF_EHOSTNAME);
    assert_int_equal(r[2].status, CF_ETOOBIG);
    assert_int_equal(r[3].status, 0);
    assert_int_equal(fake.nmsgs, 1);
    assert_string_equal(fake.log.data, "+ok.acme.cdn.test=v");
    finish(u);
}

/*
 * test_order_guard: a delete queued while the add of the same record is in
 * flight waits for the add's answer; an unrelated change goes at once.
 */
static void test_order_guard(void **state)
{
    struct result r[3];
    (void)state;
    memset(r, 0, sizeof(r));
    fake_start(&fake, FAKE_DELAY);
    struct rfc2136 *u = client(2000, 2, 0);
    rfc2136_add_txt(u, "x." ZONE, "vx", on_done, &r[0]);
    done_goal = 100;
    while (fake.nmsgs < 1)
        uv_run(&loop, UV_RUN_ONCE);
    rfc2136_del_txt(u, "x." ZONE, "vx", on_done, &r[1]);
    rfc2136_add_txt(u, "y." ZONE, "vy", on_done, &r[2]);
    run_until(3, 5000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].status, 0);
    assert_string_equal(fake.log.data, "+x.acme.cdn.test=vx|+y.acme.cdn.test=vy|"
                                       "-x.acme.cdn.test=vx");
    /* The delete (third message) arrived after the first answer. */
    assert_non_null(strstr(fake.events.data, "R1 R2 A "));
    assert_non_null(strstr(fake.events.data, "A R3 "));
    finish(u);
}

/* test_free_cancels: queued and in-flight changes get CF_ECANCELED inside rfc2136_free. */
static void test_free_cancels(void **state)
{
    struct result r[3];
    (void)state;
    memset(r, 0, sizeof(r));
    fake_start(&fake, FAKE_SILENT);
    struct rfc2136 *u = client(1000, 2, 0);
    rfc2136_add_txt(u, "a." ZONE, "v", on_done, &r[0]);
    done_goal = 100;
    while (fake.nmsgs < 1)
        uv_run(&loop, UV_RUN_ONCE);
    rfc2136_add_txt(u, "b." ZONE, "v", on_done, &r[1]);   /* queued */
    rfc2136_add_txt(u, "bad.other", "v", on_done, &r[2]); /* refused, not yet reported */
    rfc2136_free(u);
    assert_int_equal(r[0].status, CF_ECANCELED);
    assert_int_equal(r[1].status, CF_ECANCELED);
    assert_int_equal(r[2].status, CF_EHOSTNAME);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].calls, 1);
    fake_stop(&fake);
    uv_run(&loop, UV_RUN_DEFAULT);
    fake_cleanup(&fake);
}

static void on_done_free(void *arg, int status, const char *detail)
{
    on_done(arg, status, detail);
    if (freed_in_callback) {
        struct rfc2136 *u = freed_in_callback;
        freed_in_callback = NULL;
        rfc2136_free(u);
    }
}

/* test_free_in_callback: the first callback frees the provisioner; the rest still run once. */
static void test_free_in_callback(void **state)
{
    struct result r[4];
    (void)state;
    memset(r, 0, sizeof(r));
    fake_start(&fake, FAKE_TC); /* the answer comes over TCP: a connection is open */
    struct rfc2136 *u = client(1000, 2, 2);
    freed_in_callback = u;
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "f%d.%s", i, ZONE);
        rfc2136_add_txt(u, name, "v", on_done_free, &r[i]);
    }
    run_until(4, 5000);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_true(r[i].status == 0 || r[i].status == CF_ECANCELED);
    }
    /*
     * Two messages of two changes: the one answered first succeeds whole
     * (its second callback runs after the free); the other is canceled
     * unless its answer was already handled.
     */
    assert_int_equal(r[0].status, r[1].status);
    assert_int_equal(r[2].status, r[3].status);
    assert_true(r[0].status == 0 || r[2].status == 0);
    fake_stop(&fake);
    uv_run(&loop, UV_RUN_DEFAULT);
    fake_cleanup(&fake);
}

/* test_tcp_refused: no TCP listener after TC: the last try's error is reported. */
static void test_tcp_refused(void **state)
{
    struct result r = {0};
    (void)state;
    fake_start(&fake, FAKE_TC);
    uv_close((uv_handle_t *)&fake.listener, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_tcp_init(&loop, &fake.listener); /* closed again by fake_stop */
    struct rfc2136 *u = client(100, 2, 0);
    rfc2136_add_txt(u, "r." ZONE, "v", on_done, &r);
    run_until(1, 5000);
    assert_int_equal(r.status, CF_ECONNREFUSED);
    assert_non_null(strstr(r.detail, "TCP exchange with 127.0.0.1:"));
    assert_non_null(strstr(r.detail, "connection refused"));
    finish(u);
}

/* test_tcp_wrong_id: over TCP an answer with another ID fails the try. */
static void test_tcp_wrong_id(void **state)
{
    (void)state;
    struct result r = one_change(FAKE_TC_BAD_ID, 0, 500, 2);
    assert_int_equal(r.status, CF_EPROTO);
    assert_non_null(strstr(r.detail, "TCP exchange with 127.0.0.1:"));
    assert_non_null(strstr(r.detail, "another ID"));
    assert_int_equal(fake.udp_msgs, 1);
    assert_int_equal(fake.tcp_msgs, 2);
}

static void test_new_errors(void **state)
{
    struct rfc2136_opts o;
    struct rfc2136 *u = NULL;
    const char *reason = NULL;
    (void)state;
    memset(&o, 0, sizeof(o));
    o.server = "192.0.2.1:5300";
    o.zone = ZONE;
    o.tsig_key_file = key_path;

    o.server = "not-an-address";
    assert_int_equal(rfc2136_new(&u, &loop, &o, &reason), CF_ECONFIG);
    assert_non_null(strstr(reason, "server"));
    o.server = "[::1]:5353";
    o.zone = "bad..zone";
    assert_int_equal(rfc2136_new(&u, &loop, &o, &reason), CF_ECONFIG);
    assert_non_null(strstr(reason, "zone"));
    o.zone = ZONE;
    o.tsig_key_file = "/nonexistent/key";
    assert_int_equal(rfc2136_new(&u, &loop, &o, &reason), -ENOENT);
    assert_non_null(reason);
    o.tsig_key_file = NULL;
    assert_int_equal(rfc2136_new(&u, &loop, &o, &reason), CF_ECONFIG);
    o.tsig_key_file = key_path;
    o.server = "127.0.0.1:5300";
    assert_int_equal(rfc2136_new(&u, &loop, &o, &reason), 0);
    assert_non_null(u);
    rfc2136_free(u);
    rfc2136_free(NULL);
}

int main(void)
{
    /* Every log event is formatted (and checked by the sanitizers), and kept off the output. */
    FILE *devnull = fopen("/dev/null", "w");
    log_setup(LOG_DEBUG, 1, devnull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_udp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_by_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notauth_badsig, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_rcodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsigned_noerror, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_key_noerror, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_wrong_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_errors, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (devnull)
        fclose(devnull);
    return rc;
}
