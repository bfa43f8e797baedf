/*
 * test_udpq.c - the UDP client for DNS questions (engine/dns/udpq.c) and
 * the resolver client on top of it (engine/dns/resq.c), against a scripted
 * DNS server on 127.0.0.1 in the same loop: answers handed over, RD as
 * configured, answers for other questions or IDs ignored, TC and oversized
 * answers refused, retries, the in-flight cap and its waiting line, one
 * sendmmsg per loop iteration, cancellation; identical resolver questions
 * sent once, a TC answer asked again over TCP through c-ares.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "dnswire.h"
#include "err.h"
#include "resq.h"
#include "udpq.h"

enum mode {
    M_ANSWER,     /* the right answer */
    M_DROP_FIRST, /* drop each question's first try, answer the second */
    M_DROP,       /* never answer */
    M_OTHER_NAME, /* an answer whose question names another name, then nothing */
    M_OTHER_THEN, /* an answer for another name, then the right one */
    M_BAD_ID,     /* the right answer under another ID */
    M_TC,         /* TC set over UDP; the full answer over TCP */
    M_OVERSIZED,  /* 1,400 octets without TC */
    M_HOLD,       /* keep every question; the test answers them later */
};

#define MAX_HELD 256

struct server {
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_tcp_t tcp;
    int port;
    enum mode mode;
    int udp_questions; /* datagrams received */
    int tcp_questions; /* messages received over TCP */
    int rd_seen, rd_clear_seen;
    int seen_per_id[65536];
    /* M_HOLD: questions kept, with their sources. */
    size_t nheld, max_held_at_once;
    struct {
        uint8_t q[512];
        size_t len;
        struct sockaddr_storage from;
    } held[MAX_HELD];
};

static struct server g_srv;

/* ---- the scripted server ---- */

/* make_answer writes the answer to query q (qlen octets) into out; returns its length. */
static size_t make_answer(uint8_t *out, const uint8_t *q, size_t qlen, int tc, size_t pad_to)
{
    size_t off = DNSWIRE_HEADER_LEN;
    uint8_t name[DNSWIRE_NAME_MAX];
    size_t nl;
    assert_int_equal(dnswire_read_name(q, qlen, &off, name, &nl), 0);
    off += 4; /* type and class */
    memcpy(out, q, off);
    out[2] = (uint8_t)(0x80 | 0x04 | (q[2] & 0x01) | (tc ? 0x02 : 0)); /* QR AA RD TC */
    out[3] = 0x80;                                                     /* RA */
    out[6] = 0;
    out[7] = 1; /* ANCOUNT */
    out[8] = out[9] = out[10] = out[11] = 0;
    static const uint8_t rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};
    memcpy(out + off, rr, sizeof(rr));
    off += sizeof(rr);
    uint16_t extra = 0;
    while (off + sizeof(rr) <= pad_to) {
        memcpy(out + off, rr, sizeof(rr));
        off += sizeof(rr);
        extra++;
    }
    out[10] = (uint8_t)(extra >> 8);
    out[11] = (uint8_t)extra;
    return off;
}

static void send_udp(const uint8_t *buf, size_t len, const struct sockaddr *to)
{
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    assert_true(uv_udp_try_send(&g_srv.udp, &b, 1, to) == (int)len);
}

static void srv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(sz);
    b->len = sz;
}

static void on_srv_udp(uv_udp_t *u, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                       unsigned flags)
{
    (void)u;
    (void)flags;
    const uint8_t *q = (const uint8_t *)b->base;
    uint8_t out[2048];
    if (n < DNSWIRE_HEADER_LEN || !from) {
        free(b->base);
        return;
    }
    uint16_t id = (uint16_t)(q[0] << 8 | q[1]);
    g_srv.udp_questions++;
    if (q[2] & 0x01)
        g_srv.rd_seen++;
    else
        g_srv.rd_clear_seen++;
    int seen = g_srv.seen_per_id[id]++;
    size_t len;
    switch (g_srv.mode) {
    case M_ANSWER:
        len = make_answer(out, q, (size_t)n, 0, 0);
        send_udp(out, len, from);
        break;
    case M_DROP_FIRST:
        if (seen > 0) {
            len = make_answer(out, q, (size_t)n, 0, 0);
            send_udp(out, len, from);
        }
        break;
    case M_DROP:
        break;
    case M_OTHER_NAME:
    case M_OTHER_THEN:
        len = make_answer(out, q, (size_t)n, 0, 0);
        out[13] ^= 0x01; /* the first letter of the question's name: another name */
        send_udp(out, len, from);
        if (g_srv.mode == M_OTHER_THEN) {
            len = make_answer(out, q, (size_t)n, 0, 0);
            send_udp(out, len, from);
        }
        break;
    case M_BAD_ID:
        len = make_answer(out, q, (size_t)n, 0, 0);
        out[1] ^= 0x5a;
        send_udp(out, len, from);
        break;
    case M_TC:
        len = make_answer(out, q, (size_t)n, 1, 0);
        send_udp(out, len, from);
        break;
    case M_OVERSIZED:
        len = make_answer(out, q, (size_t)n, 0, 1400);
        assert_true(len > 1232);
        send_udp(out, len, from);
        break;
    case M_HOLD:
        assert_true(g_srv.nheld < MAX_HELD);
        memcpy(g_srv.held[g_srv.nheld].q, q, (size_t)n);
        g_srv.held[g_srv.nheld].len = (size_t)n;
        memcpy(&g_srv.held[g_srv.nheld].from, from,
               from->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                          : sizeof(struct sockaddr_in6));
        g_srv.nheld++;
        if (g_srv.nheld > g_srv.max_held_at_once)
            g_srv.max_held_at_once = g_srv.nheld;
        break;
    }
    free(b->base);
}

/* answer_held answers every held question and empties the list. */
static void answer_held(void)
{
    uint8_t out[2048];
    for (size_t i = 0; i < g_srv.nheld; i++) {
        size_t len = make_answer(out, g_srv.held[i].q, g_srv.held[i].len, 0, 0);
        send_udp(out, len, (const struct sockaddr *)&g_srv.held[i].from);
    }
    g_srv.nheld = 0;
}

/* TCP (RFC 7766 framing): one connection, messages answered in full. */
struct tconn {
    uv_tcp_t h;
    uint8_t buf[4096];
    size_t len;
};

static void on_tconn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_twritten(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void tconn_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    struct tconn *c = h->data;
    (void)sz;
    b->base = (char *)c->buf + c->len;
    b->len = sizeof(c->buf) - c->len;
}

static void on_tread(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct tconn *c = s->data;
    (void)b;
    if (n < 0) {
        uv_close((uv_handle_t *)&c->h, on_tconn_closed);
        return;
    }
    c->len += (size_t)n;
    while (c->len >= 2) {
        size_t ml = (size_t)c->buf[0] << 8 | c->buf[1];
        if (c->len < 2 + ml)
            break;
        g_srv.tcp_questions++;
        uint8_t *out = malloc(2 + 2048);
        size_t len = make_answer(out + 2, c->buf + 2, ml, 0, 0);
        out[0] = (uint8_t)(len >> 8);
        out[1] = (uint8_t)len;
        uv_write_t *w = malloc(sizeof(*w));
        w->data = out;
        uv_buf_t wb = uv_buf_init((char *)out, (unsigned)(len + 2));
        uv_write(w, s, &wb, 1, on_twritten);
        memmove(c->buf, c->buf + 2 + ml, c->len - 2 - ml);
        c->len -= 2 + ml;
    }
}

static void on_tcp_conn(uv_stream_t *srv, int status)
{
    assert_int_equal(status, 0);
    struct tconn *c = calloc(1, sizeof(*c));
    uv_tcp_init(srv->loop, &c->h);
    c->h.data = c;
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&c->h), 0);
    uv_read_start((uv_stream_t *)&c->h, tconn_alloc, on_tread);
}

static void server_start(uv_loop_t *loop, enum mode mode)
{
    memset(&g_srv, 0, sizeof(g_srv));
    g_srv.loop = loop;
    g_srv.mode = mode;
    /* UDP on an ephemeral port, then TCP on the same number (c-ares uses both). */
    for (int attempt = 0; attempt < 50; attempt++) {
        struct sockaddr_in sa;
        int len = sizeof(sa);
        uv_ip4_addr("127.0.0.1", 0, &sa);
        assert_int_equal(uv_udp_init(loop, &g_srv.udp), 0);
        assert_int_equal(uv_udp_bind(&g_srv.udp, (const struct sockaddr *)&sa, 0), 0);
        assert_int_equal(uv_udp_getsockname(&g_srv.udp, (struct sockaddr *)&sa, &len), 0);
        g_srv.port = ntohs(sa.sin_port);
        assert_int_equal(uv_tcp_init(loop, &g_srv.tcp), 0);
        if (uv_tcp_bind(&g_srv.tcp, (const struct sockaddr *)&sa, 0) == 0 &&
            uv_listen((uv_stream_t *)&g_srv.tcp, 16, on_tcp_conn) == 0)
            break;
        uv_close((uv_handle_t *)&g_srv.udp, NULL);
        uv_close((uv_handle_t *)&g_srv.tcp, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        g_srv.port = 0;
    }
    assert_true(g_srv.port > 0);
    assert_int_equal(uv_udp_recv_start(&g_srv.udp, srv_alloc, on_srv_udp), 0);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    /* Accepted TCP connections carry their struct tconn. */
    uv_close(h, h->type == UV_TCP && h->data ? on_tconn_closed : NULL);
}

static void loop_finish(uv_loop_t *loop)
{
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- answers collected by the callbacks ---- */

struct result {
    int called;
    int status;
    size_t len;
    uint8_t qname0; /* first letter of the answer's question name */
};

static int g_done;

static void on_answer(void *arg, int status, const uint8_t *ans, size_t len)
{
    struct result *r = arg;
    r->called++;
    r->status = status;
    r->len = len;
    if (status == 0) {
        assert_non_null(ans);
        assert_true(len > 13);
        r->qname0 = ans[13];
    }
    g_done++;
}

static void on_stop_timer(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* run_until runs the loop until `want` callbacks ran or ms passed. */
static void run_until(uv_loop_t *loop, int want, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uint64_t end = uv_now(loop) + ms;
    while (g_done < want && uv_now(loop) < end) {
        uv_timer_start(&t, on_stop_timer, 10, 0);
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static struct udpq *new_client(uv_loop_t *loop, int rd, size_t inflight, int timeout_ms, int tries)
{
    struct udpq *q;
    struct udpq_opts o = {.port = g_srv.port,
                          .timeout_ms = timeout_ms,
                          .tries = tries,
                          .max_inflight = inflight,
                          .rd = rd};
    assert_int_equal(udpq_new(&q, loop, "127.0.0.1", &o), 0);
    return q;
}

/* ---- udpq ---- */

static void test_answer_and_rd(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_start(&loop, M_ANSWER);
    struct udpq *norec = new_client(&loop, 0, 8, 1000, 2);
    struct udpq *rec = new_client(&loop, 1, 8, 1000, 2);
    struct result r1 = {0}, r2 = {0};
    g_done = 0;
    assert_int_equal(udpq_query(norec, "www.Example.test", DNSWIRE_TYPE_A, on_answer, &r1), 0);
    assert_int_equal(udpq_query(rec, "www.example.test", DNSWIRE_TYPE_A, on_answer, &r2), 0);
    assert_int_equal(r1.called + r2.called, 0); /* never from inside the call */
    run_until(&loop, 2, 3000);
    assert_int_equal(r1.called, 1);
    assert_int_equal(r1.status, 0);
    assert_int_equal(r2.status, 0);
    assert_int_equal(g_srv.rd_seen, 1);
    assert_int_equal(g_srv.rd_clear_seen, 1);
    assert_int_equal(udpq_inflight(norec), 0);
    assert_int_equal(udpq_query(norec, "bad..name", DNSWIRE_TYPE_A, on_answer, &r1), CF_EPARSE);
    udpq_free(norec);
    udpq_free(rec);
    loop_finish(&loop);
}

static void test_other_question_ignored(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* An answer naming another question is dropped; the right one still counts. */
    server_start(&loop, M_OTHER_THEN);
    struct udpq *q = new_client(&loop, 0, 8, 300, 1);
    struct result r = {0};
    g_done = 0;
    assert_int_equal(udpq_query(q, "www.example.test", DNSWIRE_TYPE_A, on_answer, &r), 0);
    run_until(&loop, 1, 3000);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.qname0, 'w');
    struct udpq_stats st;
    udpq_get_stats(q, &st);
    assert_int_equal(st.ignored, 1);
    udpq_free(q);
    loop_finish(&loop);

    /* Only the wrong one: the question times out. */
    uv_loop_init(&loop);
    server_start(&loop, M_OTHER_NAME);
    q = new_client(&loop, 0, 8, 100, 2);
    memset(&r, 0, sizeof(r));
    g_done = 0;
    assert_int_equal(udpq_query(q, "www.example.test", DNSWIRE_TYPE_A, on_answer, &r), 0);
    run_until(&loop, 1, 3000);
    assert_int_equal(r.called, 1);
    assert_int_equal(r.status, CF_ETIMEOUT);
    assert_int_equal(g_srv.udp_questions, 2); /* both tries */
    udpq_free(q);
    loop_finish(&loop);
}

static void test_bad_id_times_out(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_start(&loop, M_BAD_ID);
    struct udpq *q = new_client(&loop, 0, 8, 100, 1);
    struct result r = {0};
    g_done = 0;
    assert_int_equal(udpq_query(q, "www.example.test", DNSWIRE_TYPE_A, on_answer, &r), 0);
    run_until(&loop, 1, 3000);
    assert_int_equal(r.status, CF_ETIMEOUT);
    udpq_free(q);
    loop_finish(&loop);
}

static void test_tc_and_oversized(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_start(&loop, M_TC);
    struct udpq *q = new_client(&loop, 0, 8, 1000, 2);
    struct result r = {0};
    g_done = 0;
    assert_int_equal(udpq_query(q, "www.example.test", DNSWIRE_TYPE_A, on_answer, &r), 0);
    run_until(&loop, 1, 3000);
    assert_int_equal(r.status, CF_EDNS);
    g_srv.mode = M_OVERSIZED;
    memset(&r, 0, sizeof(r));
    g_done = 0;
    assert_int_equal(udpq_query(q, "www.example.test", DNSWIRE_TYPE_A, on_answer, &r), 0);
    run_until(&loop, 1, 3000);
    assert_int_equal(r.status, CF_ETOOBIG);
    udpq_free(q);
    loop_finish(&loop);
}

static void test_retry(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_start(&loop, M_DROP_FIRST);
    struct udpq *q = new_client(&loop, 0, 8, 100, 3);
    struct result r[5];
    memset(r, 0, sizeof(r));
    g_done = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(udpq_query(q, "www.example.test", DNSWIRE_TYPE_A, on_answer, &r[i]), 0);
    run_until(&loop, 5, 3000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(r[i].status, 0);
    assert_int_equal(g_srv.udp_questions, 10); /* each question twice, same ID */
    udpq_free(q);
    loop_finish(&loop);
}

static void test_inflight_cap_and_batching(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_start(&loop, M_HOLD);
    struct udpq *q = new_client(&loop, 0, 4, 2000, 1);
    struct result r[40];
    memset(r, 0, sizeof(r));
    g_done = 0;
    for (int i = 0; i < 40; i++) {
        char name[64];
        snprintf(name, sizeof(name), "h%d.example.test", i);
        assert_int_equal(udpq_query(q, name, DNSWIRE_TYPE_A, on_answer, &r[i]), 0);
    }
    assert_int_equal(udpq_inflight(q), 40);
    /* Until answers come, only the first 4 leave, and together. */
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(g_srv.nheld, 4);
    struct udpq_stats st;
    udpq_get_stats(q, &st);
    assert_int_equal(st.sent, 4);
    assert_int_equal(st.batches, 1);
    while (g_done < 40) {
        answer_held();
        run_until(&loop, g_done + 1, 2000);
    }
    for (int i = 0; i < 40; i++)
        assert_int_equal(r[i].status, 0);
    assert_true(g_srv.max_held_at_once <= 4);
    assert_int_equal(udpq_inflight(q), 0);
    udpq_free(q);
    loop_finish(&loop);
}

/*
 * Questions of several sizes in one loop iteration: trains of equal sizes
 * (UDP GSO) and sendmmsg for the rest; every question arrives whole, as its
 * own datagram.
 */
static void test_gso_trains(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_start(&loop, M_HOLD);
    struct udpq *q = new_client(&loop, 0, 64, 2000, 1);
    struct result r[30];
    char names[30][64];
    memset(r, 0, sizeof(r));
    g_done = 0;
    for (int i = 0; i < 30; i++) {
        /* Ten lengths, three questions each, shuffled; "s" and "ss" differ by one octet. */
        int len = 1 + (i * 7) % 10;
        snprintf(names[i], sizeof(names[i]), "%.*s%d.example.test", len, "ssssssssss", i % 3);
        assert_int_equal(udpq_query(q, names[i], DNSWIRE_TYPE_A, on_answer, &r[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(g_srv.nheld, 30);
    /* Each datagram is one whole question (make_answer parses it), every name once. */
    int seen[30] = {0};
    for (size_t k = 0; k < g_srv.nheld; k++) {
        char text[DNSWIRE_NAME_TEXT_MAX];
        uint8_t w[DNSWIRE_NAME_MAX];
        size_t off = DNSWIRE_HEADER_LEN, wl;
        assert_int_equal(dnswire_read_name(g_srv.held[k].q, g_srv.held[k].len, &off, w, &wl), 0);
        assert_int_equal(off + 4 + 11, g_srv.held[k].len); /* type, class, OPT: nothing more */
        assert_int_equal(dnswire_name_to_text(text, sizeof(text), w, wl), 0);
        for (int i = 0; i < 30; i++)
            if (strcmp(text, names[i]) == 0)
                seen[i]++;
    }
    for (int i = 0; i < 30; i++)
        assert_int_equal(seen[i], 1);
    struct udpq_stats st;
    udpq_get_stats(q, &st);
    assert_int_equal(st.sent, 30);
    if (st.trains == 0)
        print_message("no UDP GSO on this kernel: sendmmsg only\n");
    else
        assert_true(st.batches < 30);
    answer_held();
    run_until(&loop, 30, 3000);
    for (int i = 0; i < 30; i++)
        assert_int_equal(r[i].status, 0);
    udpq_free(q);
    loop_finish(&loop);
}

static void test_free_cancels(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_start(&loop, M_DROP);
    struct udpq *q = new_client(&loop, 0, 2, 2000, 1);
    struct result r[5];
    memset(r, 0, sizeof(r));
    g_done = 0;
    for (int i = 0; i < 5; i++)
        assert_int_equal(udpq_query(q, "www.example.test", DNSWIRE_TYPE_A, on_answer, &r[i]), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    udpq_free(q);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].called, 1);
        assert_int_equal(r[i].status, CF_ECANCELED);
    }
    loop_finish(&loop);
}

/* ---- resq ---- */

static struct resq *new_resolver(uv_loop_t *loop, enum resq_client client)
{
    char server[64];
    struct resq *r;
    struct resq_opts o = {.timeout_ms = 500, .tries = 2, .max_inflight = 16, .client = client};
    snprintf(server, sizeof(server), "127.0.0.1:%d", g_srv.port);
    assert_int_equal(resq_new(&r, loop, server, &o), 0);
    return r;
}

static void test_resq_coalesces(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_start(&loop, M_ANSWER);
    struct resq *rq = new_resolver(&loop, RESQ_UDP);
    struct result r[12];
    memset(r, 0, sizeof(r));
    g_done = 0;
    /* Ten askers of one question (any case), one of another type, one of another name. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(resq_query(rq, i % 2 ? "WWW.example.test" : "www.example.test",
                                    DNSWIRE_TYPE_A, on_answer, &r[i]),
                         0);
    assert_int_equal(resq_query(rq, "www.example.test", DNSWIRE_TYPE_AAAA, on_answer, &r[10]), 0);
    assert_int_equal(resq_query(rq, "ftp.example.test", DNSWIRE_TYPE_A, on_answer, &r[11]), 0);
    assert_int_equal(resq_inflight(rq), 3);
    run_until(&loop, 12, 3000);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(r[i].called, 1);
        assert_int_equal(r[i].status, 0);
    }
    assert_int_equal(g_srv.udp_questions, 3);
    assert_int_equal(g_srv.rd_seen, 3);
    struct resq_stats st;
    resq_get_stats(rq, &st);
    assert_int_equal(st.asked, 12);
    assert_int_equal(st.coalesced, 9);
    assert_int_equal(resq_inflight(rq), 0);
    /* Answered: the same question again is asked again. */
    memset(r, 0, sizeof(r));
    assert_int_equal(resq_query(rq, "www.example.test", DNSWIRE_TYPE_A, on_answer, &r[0]), 0);
    run_until(&loop, 13, 3000);
    assert_int_equal(r[0].status, 0);
    assert_int_equal(g_srv.udp_questions, 4);
    resq_free(rq);
    loop_finish(&loop);
}

static void test_resq_tc_goes_tcp(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_start(&loop, M_TC);
    struct resq *rq = new_resolver(&loop, RESQ_UDP);
    struct result r[2];
    memset(r, 0, sizeof(r));
    g_done = 0;
    assert_int_equal(resq_query(rq, "big.example.test", DNSWIRE_TYPE_A, on_answer, &r[0]), 0);
    assert_int_equal(resq_query(rq, "big.example.test", DNSWIRE_TYPE_A, on_answer, &r[1]), 0);
    run_until(&loop, 2, 5000);
    assert_int_equal(r[0].status, 0);
    assert_int_equal(r[1].status, 0);
    assert_true(g_srv.tcp_questions >= 1);
    struct resq_stats st;
    resq_get_stats(rq, &st);
    assert_int_equal(st.tc_retries, 1);
    assert_int_equal(st.cares, 1);
    resq_free(rq);
    loop_finish(&loop);
}

static void test_resq_cares_client_and_cancel(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_start(&loop, M_ANSWER);
    struct resq *rq = new_resolver(&loop, RESQ_CARES);
    struct result r[3];
    memset(r, 0, sizeof(r));
    g_done = 0;
    assert_int_equal(resq_query(rq, "a.example.test", DNSWIRE_TYPE_A, on_answer, &r[0]), 0);
    assert_int_equal(resq_query(rq, "a.example.test", DNSWIRE_TYPE_A, on_answer, &r[1]), 0);
    run_until(&loop, 2, 3000);
    assert_int_equal(r[0].status, 0);
    assert_int_equal(r[1].status, 0);
    assert_int_equal(g_srv.udp_questions, 1);
    /* Pending at free: cancelled, once. */
    g_srv.mode = M_DROP;
    assert_int_equal(resq_query(rq, "b.example.test", DNSWIRE_TYPE_A, on_answer, &r[2]), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    resq_free(rq);
    assert_int_equal(r[2].called, 1);
    assert_int_equal(r[2].status, CF_ECANCELED);
    loop_finish(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_and_rd),
        cmocka_unit_test(test_other_question_ignored),
        cmocka_unit_test(test_bad_id_times_out),
        cmocka_unit_test(test_tc_and_oversized),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_inflight_cap_and_batching),
        cmocka_unit_test(test_gso_trains),
        cmocka_unit_test(test_free_cancels),
        cmocka_unit_test(test_resq_coalesces),
        cmocka_unit_test(test_resq_tc_goes_tcp),
        cmocka_unit_test(test_resq_cares_client_and_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
