/*
 * test_checks.c - the delegation check (engine/dns/checks.c) against a
 * scripted DNS world in the same loop: one server process on 127.0.0.1
 * and 127.0.0.2 (same port) that answers questions with RD set as a
 * recursive resolver and questions without as the authoritative servers
 * ns1.prov.test (127.0.0.1) and ns2.prov.test (127.0.0.2) of every zone.
 * It counts the questions it gets, so the tests pin down what the checker
 * asks: the zone-cut walk's NS question at the registered domain (no
 * separate NS question), nameserver addresses looked up once for all zones
 * of a provider, the CNAME fallback when that NS question fails, a
 * registered domain that is no apex, and a failed address lookup that is
 * not reused.
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

#include "checks.h"
#include "dnswire.h"
#include "err.h"
#include "record.h"

#define VZONE "acme.test"
#define MAX_COUNTS 256

/* ---- the scripted world ---- */

struct count {
    char name[128];
    uint16_t qtype;
    int rd;
    int n;
};

struct world {
    uv_udp_t udp[2]; /* 127.0.0.1 and 127.0.0.2, same port */
    int port;
    size_t ncounts;
    struct count counts[MAX_COUNTS];
    /* Switches. */
    int ns_servfail;        /* the resolver answers SERVFAIL to NS questions */
    int aaaa_servfail_once; /* the first AAAA question for ns2.prov.test gets SERVFAIL */
};

static struct world g_w;

static void count_q(const char *name, uint16_t qtype, int rd)
{
    for (size_t i = 0; i < g_w.ncounts; i++) {
        struct count *c = &g_w.counts[i];
        if (c->qtype == qtype && c->rd == rd && strcmp(c->name, name) == 0) {
            c->n++;
            return;
        }
    }
    assert_true(g_w.ncounts < MAX_COUNTS);
    struct count *c = &g_w.counts[g_w.ncounts++];
    snprintf(c->name, sizeof(c->name), "%.127s", name);
    c->qtype = qtype;
    c->rd = rd;
    c->n = 1;
}

/* asked returns how many questions (name, qtype, rd) the world got; rd -1 = either. */
static int asked(const char *name, uint16_t qtype, int rd)
{
    int n = 0;
    for (size_t i = 0; i < g_w.ncounts; i++) {
        const struct count *c = &g_w.counts[i];
        if (c->qtype == qtype && (rd < 0 || c->rd == rd) && strcmp(c->name, name) == 0)
            n += c->n;
    }
    return n;
}

static int asked_type(uint16_t qtype)
{
    int n = 0;
    for (size_t i = 0; i < g_w.ncounts; i++)
        if (g_w.counts[i].qtype == qtype)
            n += g_w.counts[i].n;
    return n;
}

/*
 * zone_of returns the zone holding name: the last two labels ("a.test"),
 * except that "flat.test" and "prov.test" are no zones (their names belong
 * to "test"), nor is a name of one label.
 */
static void zone_of(char *out, size_t cap, const char *name)
{
    const char *last2 = NULL;
    int dots = 0;
    for (size_t i = strlen(name); i > 0 && !last2; i--)
        if (name[i - 1] == '.' && ++dots == 2)
            last2 = name + i;
    if (!last2 && dots == 1)
        last2 = name;
    if (!last2 || strcmp(last2, "flat.test") == 0 || strcmp(last2, "prov.test") == 0)
        snprintf(out, cap, "test");
    else
        snprintf(out, cap, "%s", last2);
}

/*
 * host_alias: a host (three labels or more) is live behind a CNAME to the
 * CDN, as most customer hosts are, unless its first label is "notlive"
 * (then it has an address of its own: NODATA for CNAME).
 */
static int host_alias(const char *name)
{
    int dots = 0;
    for (const char *p = name; *p; p++)
        dots += *p == '.';
    return dots >= 2 && name[0] != '_' && strncmp(name, "notlive.", 8) != 0 &&
           strncmp(name, "ns1.", 4) != 0 && strncmp(name, "ns2.", 4) != 0;
}

/* The delegation CNAME of a host: every host but "missing.<zone>" has one. */
static int delegated_target(char *out, size_t cap, const char *qname)
{
    const char *p = "_acme-challenge.";
    if (strncmp(qname, p, strlen(p)) != 0)
        return 0;
    const char *host = qname + strlen(p);
    if (strncmp(host, "missing.", 8) == 0)
        return 0;
    snprintf(out, cap, "%s." VZONE, host);
    return 1;
}

static void put_name(uint8_t *w, size_t *wl, const char *text)
{
    assert_int_equal(dnswire_name_from_text(w, wl, text), 0);
}

static void add_soa(struct dnswire_writer *wr, const char *zone)
{
    uint8_t zw[DNSWIRE_NAME_MAX];
    size_t zl;
    struct dnswire_soa soa = {
        .serial = 1, .refresh = 60, .retry = 60, .expire = 600, .minimum = 60};
    put_name(zw, &zl, zone);
    put_name(soa.mname, &soa.mname_len, "ns1.prov.test");
    put_name(soa.rname, &soa.rname_len, "hostmaster.prov.test");
    struct dnswire_rdata rd = {.type = DNSWIRE_TYPE_SOA};
    rd.u.soa = &soa;
    assert_int_equal(
        dnswire_write_rr(wr, DNSWIRE_SECTION_AUTHORITY, zw, zl, DNSWIRE_CLASS_IN, 60, &rd), 0);
}

static void add_name_rr(struct dnswire_writer *wr, const uint8_t *owner, size_t ol, uint16_t type,
                        const char *target)
{
    uint8_t tw[DNSWIRE_NAME_MAX];
    size_t tl;
    put_name(tw, &tl, target);
    struct dnswire_rdata rd = {.type = type};
    rd.u.name.wire = tw;
    rd.u.name.len = tl;
    assert_int_equal(
        dnswire_write_rr(wr, DNSWIRE_SECTION_ANSWER, owner, ol, DNSWIRE_CLASS_IN, 60, &rd), 0);
}

/* answer builds the world's answer to one question into out; returns its length. */
static size_t answer(uint8_t *out, size_t cap, const struct dnswire_msg *q)
{
    char name[DNSWIRE_NAME_TEXT_MAX], zone[DNSWIRE_NAME_TEXT_MAX], target[DNSWIRE_NAME_TEXT_MAX];
    const struct dnswire_question *qd = &q->qd[0];
    int rd = q->hdr.rd;
    struct dnswire_writer wr;
    struct dnswire_header h = {.id = q->hdr.id, .qr = 1, .aa = !rd, .rd = rd, .ra = rd};
    assert_int_equal(dnswire_name_to_text(name, sizeof(name), qd->name, qd->name_len), 0);
    for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    count_q(name, qd->qtype, rd);
    zone_of(zone, sizeof(zone), name);
    dnswire_writer_init(&wr, out, cap);
    int servfail = (rd && qd->qtype == DNSWIRE_TYPE_NS && g_w.ns_servfail) ||
                   (rd && qd->qtype == DNSWIRE_TYPE_AAAA && g_w.aaaa_servfail_once &&
                    strcmp(name, "ns2.prov.test") == 0 && g_w.aaaa_servfail_once-- > 0);
    if (servfail) {
        h.rcode = DNSWIRE_RCODE_SERVFAIL;
        h.aa = 0;
    }
    assert_int_equal(dnswire_write_header(&wr, &h), 0);
    assert_int_equal(
        dnswire_write_question(&wr, qd->name, qd->name_len, qd->qtype, DNSWIRE_CLASS_IN), 0);
    if (servfail)
        goto out;
    if (qd->qtype == DNSWIRE_TYPE_CNAME && delegated_target(target, sizeof(target), name)) {
        add_name_rr(&wr, qd->name, qd->name_len, DNSWIRE_TYPE_CNAME, target);
    } else if (qd->qtype == DNSWIRE_TYPE_CNAME && host_alias(name)) {
        add_name_rr(&wr, qd->name, qd->name_len, DNSWIRE_TYPE_CNAME, "edge.cdn.test");
    } else if (qd->qtype == DNSWIRE_TYPE_NS && strcmp(name, zone) == 0) {
        add_name_rr(&wr, qd->name, qd->name_len, DNSWIRE_TYPE_NS, "ns1.prov.test");
        add_name_rr(&wr, qd->name, qd->name_len, DNSWIRE_TYPE_NS, "ns2.prov.test");
    } else if (qd->qtype == DNSWIRE_TYPE_A &&
               (strcmp(name, "ns1.prov.test") == 0 || strcmp(name, "ns2.prov.test") == 0)) {
        struct dnswire_rdata a = {.type = DNSWIRE_TYPE_A};
        a.u.a[0] = 127;
        a.u.a[3] = name[2] == '1' ? 1 : 2;
        assert_int_equal(dnswire_write_rr(&wr, DNSWIRE_SECTION_ANSWER, qd->name, qd->name_len,
                                          DNSWIRE_CLASS_IN, 60, &a),
                         0);
    } else {
        /* Host names and apexes exist (NODATA); _acme-challenge names without CNAME do not. */
        if (strncmp(name, "_acme-challenge.", 16) == 0)
            h.rcode = DNSWIRE_RCODE_NXDOMAIN;
        assert_int_equal(dnswire_write_header(&wr, &h), 0);
        add_soa(&wr, zone);
    }
out:
    assert_int_equal(dnswire_write_opt(&wr, 1232, 0), 0);
    return wr.len;
}

static void srv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(sz);
    b->len = sz;
}

static void on_srv(uv_udp_t *u, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                   unsigned flags)
{
    (void)flags;
    struct dnswire_msg q;
    uint8_t out[1232];
    if (n > 0 && from && dnswire_msg_parse(&q, (const uint8_t *)b->base, (size_t)n) == 0) {
        if (q.qdcount == 1) {
            size_t len = answer(out, sizeof(out), &q);
            uv_buf_t ob = uv_buf_init((char *)out, (unsigned)len);
            assert_true(uv_udp_try_send(u, &ob, 1, from) == (int)len);
        }
        dnswire_msg_cleanup(&q);
    }
    free(b->base);
}

static void world_start(uv_loop_t *loop)
{
    memset(&g_w, 0, sizeof(g_w));
    for (int attempt = 0; attempt < 50 && !g_w.port; attempt++) {
        struct sockaddr_in sa;
        int len = sizeof(sa);
        uv_ip4_addr("127.0.0.1", 0, &sa);
        assert_int_equal(uv_udp_init(loop, &g_w.udp[0]), 0);
        assert_int_equal(uv_udp_bind(&g_w.udp[0], (const struct sockaddr *)&sa, 0), 0);
        assert_int_equal(uv_udp_getsockname(&g_w.udp[0], (struct sockaddr *)&sa, &len), 0);
        int port = ntohs(sa.sin_port);
        uv_ip4_addr("127.0.0.2", port, &sa);
        assert_int_equal(uv_udp_init(loop, &g_w.udp[1]), 0);
        if (uv_udp_bind(&g_w.udp[1], (const struct sockaddr *)&sa, 0) == 0) {
            g_w.port = port;
            break;
        }
        uv_close((uv_handle_t *)&g_w.udp[0], NULL);
        uv_close((uv_handle_t *)&g_w.udp[1], NULL);
        uv_run(loop, UV_RUN_NOWAIT);
    }
    assert_true(g_w.port > 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(uv_udp_recv_start(&g_w.udp[i], srv_alloc, on_srv), 0);
}

/* ---- the checker ---- */

struct result {
    int done;
    uint8_t result;
    char zone[HOSTNAME_MAX + 1];
    size_t nservers;
    char error[160];
};

static int g_done;

static void on_deleg(void *arg, const struct deleg_report *r)
{
    struct result *res = arg;
    res->done++;
    res->result = r->result;
    res->nservers = r->nservers;
    snprintf(res->zone, sizeof(res->zone), "%s", r->zone);
    snprintf(res->error, sizeof(res->error), "%s", r->error);
    g_done++;
}

static void on_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void run_until(uv_loop_t *loop, int want)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uint64_t end = uv_now(loop) + 10000;
    while (g_done < want && uv_now(loop) < end) {
        uv_timer_start(&t, on_stop, 10, 0);
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(g_done, want);
}

static struct dns_checker *new_checker(uv_loop_t *loop, size_t max_checks)
{
    char res[64];
    struct dns_checker *dc;
    snprintf(res, sizeof(res), "127.0.0.1:%d", g_w.port);
    struct dns_checker_opts o = {.resolver = res,
                                 .auth_port = g_w.port,
                                 .timeout_ms = 500,
                                 .tries = 2,
                                 .max_checks = max_checks};
    assert_int_equal(dns_checker_new(&dc, loop, &o), 0);
    return dc;
}

static void check(struct dns_checker *dc, const char *host, struct result *r)
{
    char target[HOSTNAME_MAX + 1];
    snprintf(target, sizeof(target), "%.200s." VZONE, host);
    dns_check_delegation(dc, host, target, on_deleg, r);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void finish(uv_loop_t *loop, struct dns_checker *dc)
{
    dns_checker_free(dc);
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- tests ---- */

static void test_zones_share_a_provider(void **state)
{
    (void)state;
    static const char *hosts[] = {"www.a.test", "shop.a.test", "www.b.test",    "missing.b.test",
                                  "www.c.test", "api.c.test",  "notlive.h.test"};
    enum { N = sizeof(hosts) / sizeof(hosts[0]) };
    struct result r[N];
    uv_loop_t loop;
    uv_loop_init(&loop);
    world_start(&loop);
    /* One check at a time: each zone is walked, and each later zone finds the provider known. */
    struct dns_checker *dc = new_checker(&loop, 1);
    memset(r, 0, sizeof(r));
    g_done = 0;
    for (int i = 0; i < N; i++)
        check(dc, hosts[i], &r[i]);
    run_until(&loop, N);
    for (int i = 0; i < N; i++) {
        char zone[64];
        snprintf(zone, sizeof(zone), "%s", strchr(hosts[i], '.') + 1);
        assert_int_equal(r[i].done, 1);
        assert_int_equal(r[i].result,
                         strncmp(hosts[i], "missing.", 8) == 0 ? DELEG_MISSING : DELEG_CONFIRMED);
        assert_string_equal(r[i].zone, zone);
        assert_int_equal(r[i].nservers, 2);
    }
    /* The walk's question at each registered domain is NS, and there is no other NS question. */
    assert_int_equal(asked("a.test", DNSWIRE_TYPE_NS, 1), 1);
    assert_int_equal(asked("b.test", DNSWIRE_TYPE_NS, 1), 1);
    assert_int_equal(asked("c.test", DNSWIRE_TYPE_NS, 1), 1);
    assert_int_equal(asked("a.test", DNSWIRE_TYPE_CNAME, -1), 0);
    /* A host with its own address ends its walk there (the SOA): then the zone's NS question. */
    assert_int_equal(asked("notlive.h.test", DNSWIRE_TYPE_CNAME, 1), 1);
    assert_int_equal(asked("h.test", DNSWIRE_TYPE_NS, 1), 1);
    assert_int_equal(asked("h.test", DNSWIRE_TYPE_CNAME, 1), 0);
    assert_int_equal(asked_type(DNSWIRE_TYPE_NS), 4);
    /* The provider's nameservers: looked up once for three zones. */
    assert_int_equal(asked("ns1.prov.test", DNSWIRE_TYPE_A, 1), 1);
    assert_int_equal(asked("ns1.prov.test", DNSWIRE_TYPE_AAAA, 1), 1);
    assert_int_equal(asked("ns2.prov.test", DNSWIRE_TYPE_A, 1), 1);
    assert_int_equal(asked("ns2.prov.test", DNSWIRE_TYPE_AAAA, 1), 1);
    /* Every host asked at both addresses, recursion off. */
    assert_int_equal(asked("_acme-challenge.www.a.test", DNSWIRE_TYPE_CNAME, 0), 2);
    struct dns_checker_stats st;
    dns_checker_stats(dc, &st);
    assert_int_equal(st.zones, 4);
    assert_int_equal(st.ns_cached, 6); /* b.test, c.test and h.test found both names known */
    assert_true(st.resolver_udp > 0);
    assert_int_equal(st.resolver_cares, 0);
    finish(&loop, dc);
}

static void test_ns_question_fails_then_cname(void **state)
{
    (void)state;
    struct result r = {0};
    uv_loop_t loop;
    uv_loop_init(&loop);
    world_start(&loop);
    /* A resolver that fails the NS question: the walk asks CNAME there, and the zone's NS fails. */
    g_w.ns_servfail = 1;
    struct dns_checker *dc = new_checker(&loop, 10);
    g_done = 0;
    check(dc, "www.d.test", &r);
    run_until(&loop, 1);
    assert_int_equal(asked("d.test", DNSWIRE_TYPE_NS, 1), 2); /* the walk's, then the zone's */
    assert_int_equal(asked("d.test", DNSWIRE_TYPE_CNAME, 1), 1);
    assert_int_equal(r.result, DELEG_ERROR);
    assert_non_null(strstr(r.error, "SERVFAIL"));
    finish(&loop, dc);
}

static void test_registered_domain_not_an_apex(void **state)
{
    (void)state;
    struct result r = {0};
    uv_loop_t loop;
    uv_loop_init(&loop);
    world_start(&loop);
    struct dns_checker *dc = new_checker(&loop, 10);
    g_done = 0;
    check(dc, "www.flat.test", &r);
    run_until(&loop, 1);
    assert_int_equal(r.result, DELEG_CONFIRMED);
    assert_string_equal(r.zone, "test"); /* from the SOA of the NODATA answer */
    assert_int_equal(asked("flat.test", DNSWIRE_TYPE_NS, 1), 1);
    assert_int_equal(asked("test", DNSWIRE_TYPE_NS, 1), 1);
    finish(&loop, dc);
}

static void test_failed_address_lookup_not_reused(void **state)
{
    (void)state;
    struct result r[2];
    memset(r, 0, sizeof(r));
    uv_loop_t loop;
    uv_loop_init(&loop);
    world_start(&loop);
    g_w.aaaa_servfail_once = 1;
    struct dns_checker *dc = new_checker(&loop, 1);
    g_done = 0;
    check(dc, "www.e.test", &r[0]);
    check(dc, "www.f.test", &r[1]);
    run_until(&loop, 2);
    assert_int_equal(r[0].result, DELEG_CONFIRMED);
    assert_int_equal(r[1].result, DELEG_CONFIRMED);
    /* ns2's lookup had a SERVFAIL: asked again for the second zone; ns1's came from the cache. */
    assert_int_equal(asked("ns2.prov.test", DNSWIRE_TYPE_A, 1), 2);
    assert_int_equal(asked("ns2.prov.test", DNSWIRE_TYPE_AAAA, 1), 2);
    assert_int_equal(asked("ns1.prov.test", DNSWIRE_TYPE_A, 1), 1);
    finish(&loop, dc);
}

static void test_many_hosts_one_walk(void **state)
{
    (void)state;
    enum { N = 50 };
    struct result r[N];
    char host[N][64];
    memset(r, 0, sizeof(r));
    uv_loop_t loop;
    uv_loop_init(&loop);
    world_start(&loop);
    struct dns_checker *dc = new_checker(&loop, 1000);
    g_done = 0;
    /* All at once: one walk for the domain, the others wait for it. */
    for (int i = 0; i < N; i++) {
        snprintf(host[i], sizeof(host[i]), "h%d.g.test", i);
        check(dc, host[i], &r[i]);
    }
    run_until(&loop, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].result, DELEG_CONFIRMED);
    assert_int_equal(asked("g.test", DNSWIRE_TYPE_NS, 1), 1);
    assert_int_equal(asked("ns1.prov.test", DNSWIRE_TYPE_A, 1), 1);
    /* Two addresses a host, and one walk: its host's challenge name and the host. */
    assert_int_equal(asked_type(DNSWIRE_TYPE_CNAME), 2 * N + 2);
    finish(&loop, dc);
}

static void test_waiting_checks_end_when_closed(void **state)
{
    (void)state;
    enum { N = 4 };
    struct result r[N];
    char host[N][64];
    memset(r, 0, sizeof(r));
    uv_loop_t loop;
    uv_loop_init(&loop);
    world_start(&loop);
    /* One slot: the first check starts, the others wait without a check of their own. */
    struct dns_checker *dc = new_checker(&loop, 1);
    g_done = 0;
    for (int i = 0; i < N; i++) {
        snprintf(host[i], sizeof(host[i]), "w%d.a.test", i);
        check(dc, host[i], &r[i]);
    }
    assert_int_equal(dns_checker_inflight(dc), N);
    assert_int_equal(g_done, 0);
    /* Closed before any answer: every check reports once, an error, none confirmed. */
    finish(&loop, dc);
    assert_int_equal(g_done, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].done, 1);
        assert_int_equal(r[i].result, DELEG_ERROR);
    }
    for (int i = 1; i < N; i++)
        assert_non_null(strstr(r[i].error, "closed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zones_share_a_provider),
        cmocka_unit_test(test_ns_question_fails_then_cname),
        cmocka_unit_test(test_registered_domain_not_an_apex),
        cmocka_unit_test(test_failed_address_lookup_not_reused),
        cmocka_unit_test(test_many_hosts_one_walk),
        cmocka_unit_test(test_waiting_checks_end_when_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
