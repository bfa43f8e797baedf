/*
 * test_authserver.c - the embedded authoritative server's answers, built
 * through authsrv_answer from crafted queries, without sockets: every kind
 * of answer, case preservation, EDNS sizes and truncation, REFUSED, NOTIMP,
 * FORMERR, BADVERS, NOTAUTH, and malformed messages dropped. Also the
 * store's tree of published names (empty non-terminals).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "authserver.h"
#include "dnswire.h"
#include "err.h"
#include "store.h"

#define ZONE "acme.cdn.test"
#define BIG_NAME "big." ZONE
#define NVALUES_BIG 30

struct fixture {
    char dir[64];
    struct store *st;
    struct authsrv *srv;
};

static void publish(struct store *st, const char *name, const char *value, int add)
{
    struct store_batch *b = store_batch_new(st);
    if (add)
        store_batch_txt_add(b, name, value);
    else
        store_batch_txt_del(b, name, value);
    assert_int_equal(store_batch_commit(b), 0);
    store_batch_free(b);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cf-test-authsrv-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (store_open(&f->st, f->dir, NULL) != 0)
        return -1;
    struct store_batch *b = store_batch_new(f->st);
    /* A wildcard and its apex share one target: two values at one name. */
    store_batch_txt_add(b, "www.example.com." ZONE, "digest-one");
    store_batch_txt_add(b, "www.example.com." ZONE, "digest-two");
    store_batch_txt_add(b, "habcdefghijklmnopqrstuvwxyz234567." ZONE, "hashed");
    store_batch_txt_add(b, "other.zone.test", "outside");
    for (int i = 0; i < NVALUES_BIG; i++) {
        char v[120];
        snprintf(v, sizeof(v), "%02d-%0100d", i, 0);
        store_batch_txt_add(b, BIG_NAME, v);
    }
    if (store_batch_commit(b) != 0)
        return -1;
    store_batch_free(b);
    struct authsrv_ns ns[] = {
        {"ns1." ZONE, "192.0.2.53"},
        {"ns1." ZONE, "2001:db8::53"},
        {"ns.dns." ZONE, "192.0.2.54"},
        {"ns.provider.test", NULL},
    };
    struct authsrv_opts o = {.zone = ZONE, .ns = ns, .n_ns = 4};
    if (authsrv_new(&f->srv, NULL, f->st, &o) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    authsrv_free(f->srv);
    store_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/*
 * make_query writes a query for name (text, case kept: the writer would
 * lower it) into out: flags2 the third header octet (RD = 0x01, opcode
 * << 3), an OPT record advertising edns_size when not 0, with version and
 * DO. Returns its length.
 */
static size_t make_query_ex(uint8_t *out, uint16_t id, uint8_t flags2, const char *name,
                            uint16_t qtype, uint16_t qclass, uint16_t edns_size, uint8_t version,
                            int do_bit)
{
    size_t o = 12;
    memset(out, 0, 12);
    out[0] = (uint8_t)(id >> 8);
    out[1] = (uint8_t)id;
    out[2] = flags2;
    out[5] = 1;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        out[o++] = (uint8_t)l;
        memcpy(out + o, p, l);
        o += l;
        p += l + (dot ? 1 : 0);
    }
    out[o++] = 0;
    out[o++] = (uint8_t)(qtype >> 8);
    out[o++] = (uint8_t)qtype;
    out[o++] = (uint8_t)(qclass >> 8);
    out[o++] = (uint8_t)qclass;
    if (edns_size) {
        out[11] = 1;
        const uint8_t opt[11] = {
            0, 0, 41, (uint8_t)(edns_size >> 8), (uint8_t)edns_size, 0, version, do_bit ? 0x80 : 0,
            0, 0, 0};
        memcpy(out + o, opt, sizeof(opt));
        o += sizeof(opt);
    }
    return o;
}

static size_t make_query(uint8_t *out, const char *name, uint16_t qtype, uint16_t edns_size)
{
    return make_query_ex(out, 0x1234, 0, name, qtype, DNSWIRE_CLASS_IN, edns_size, 0, 0);
}

/* ask answers q over UDP (max_udp 1232) or TCP (0) and parses the answer into m. */
static size_t ask(struct fixture *f, struct dnswire_msg *m, uint8_t *ans, const uint8_t *q,
                  size_t qlen, size_t max_udp)
{
    size_t alen = 0;
    assert_int_equal(authsrv_answer(f->srv, ans, 65535, &alen, q, qlen, max_udp), 0);
    assert_int_equal(dnswire_msg_parse(m, ans, alen), 0);
    assert_int_equal(m->hdr.qr, 1);
    assert_int_equal(m->hdr.id, (q[0] << 8) | q[1]);
    return alen;
}

static void ask_name(struct fixture *f, struct dnswire_msg *m, uint8_t *ans, const char *name,
                     uint16_t qtype)
{
    uint8_t q[512];
    size_t qlen = make_query(q, name, qtype, 1232);
    ask(f, m, ans, q, qlen, AUTHSRV_UDP_MAX);
}

static void name_text(char *out, const uint8_t *wire, size_t len)
{
    assert_int_equal(dnswire_name_to_text(out, DNSWIRE_NAME_TEXT_MAX, wire, len), 0);
}

/* expect_negative checks an NXDOMAIN or NODATA answer: no records, the SOA as authority. */
static void expect_negative(const struct dnswire_msg *m, uint16_t rcode)
{
    char text[DNSWIRE_NAME_TEXT_MAX];
    assert_int_equal(m->hdr.rcode, rcode);
    assert_int_equal(m->hdr.aa, 1);
    assert_int_equal(m->ancount, 0);
    assert_int_equal(m->nscount, 1);
    assert_int_equal(m->rr[0].type, DNSWIRE_TYPE_SOA);
    assert_int_equal(m->rr[0].ttl, 30); /* RFC 2308 §3: min(SOA TTL, minimum) */
    name_text(text, m->rr[0].name, m->rr[0].name_len);
    assert_string_equal(text, ZONE);
}

static void test_soa_ns(void **state)
{
    struct fixture *f = *state;
    struct dnswire_msg m;
    struct dnswire_soa soa;
    uint8_t ans[65535];
    char text[DNSWIRE_NAME_TEXT_MAX];

    ask_name(f, &m, ans, ZONE, DNSWIRE_TYPE_SOA);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_NOERROR);
    assert_int_equal(m.hdr.aa, 1);
    assert_int_equal(m.hdr.ra, 0);
    assert_int_equal(m.ancount, 1);
    assert_int_equal(dnswire_rdata_soa(&m, &m.rr[0], &soa), 0);
    name_text(text, soa.mname, soa.mname_len);
    assert_string_equal(text, "ns1." ZONE);
    name_text(text, soa.rname, soa.rname_len);
    assert_string_equal(text, "hostmaster." ZONE);
    assert_int_equal(soa.minimum, 30);
    assert_true(soa.serial > 0);
    uint32_t serial = soa.serial;
    dnswire_msg_cleanup(&m);

    /* The serial grows when records change. */
    publish(f->st, "new." ZONE, "v", 1);
    ask_name(f, &m, ans, ZONE, DNSWIRE_TYPE_SOA);
    assert_int_equal(dnswire_rdata_soa(&m, &m.rr[0], &soa), 0);
    assert_true(soa.serial > serial);
    dnswire_msg_cleanup(&m);

    /* NS: every name once; glue for those inside the zone only. */
    ask_name(f, &m, ans, ZONE, DNSWIRE_TYPE_NS);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_NOERROR);
    assert_int_equal(m.hdr.aa, 1);
    assert_int_equal(m.ancount, 3);
    const char *want[] = {"ns1." ZONE, "ns.dns." ZONE, "ns.provider.test"};
    for (size_t i = 0; i < 3; i++) {
        uint8_t w[DNSWIRE_NAME_MAX];
        size_t wl;
        assert_int_equal(dnswire_rdata_name(&m, &m.rr[i], w, &wl), 0);
        name_text(text, w, wl);
        assert_string_equal(text, want[i]);
    }
    /* A and AAAA of ns1, A of ns.dns, then OPT. */
    assert_int_equal(m.arcount, 4);
    assert_int_equal(m.rr[3].type, DNSWIRE_TYPE_A);
    assert_int_equal(m.rr[4].type, DNSWIRE_TYPE_AAAA);
    assert_int_equal(m.rr[5].type, DNSWIRE_TYPE_A);
    assert_int_equal(m.rr[6].type, DNSWIRE_TYPE_OPT);
    uint8_t a[4];
    assert_int_equal(dnswire_rdata_a(&m.rr[5], a), 0);
    assert_memory_equal(a, "\xc0\x00\x02\x36", 4);
    dnswire_msg_cleanup(&m);

    /* The nameservers' addresses are authoritative data of the zone. */
    ask_name(f, &m, ans, "ns1." ZONE, DNSWIRE_TYPE_AAAA);
    assert_int_equal(m.hdr.aa, 1);
    assert_int_equal(m.ancount, 1);
    assert_int_equal(m.rr[0].type, DNSWIRE_TYPE_AAAA);
    dnswire_msg_cleanup(&m);
    ask_name(f, &m, ans, "ns1." ZONE, DNSWIRE_TYPE_TXT);
    expect_negative(&m, DNSWIRE_RCODE_NOERROR);
    dnswire_msg_cleanup(&m);
    /* dns.<zone> is an empty non-terminal above ns.dns.<zone>. */
    ask_name(f, &m, ans, "dns." ZONE, DNSWIRE_TYPE_A);
    expect_negative(&m, DNSWIRE_RCODE_NOERROR);
    dnswire_msg_cleanup(&m);
}

static int collect_txt(const struct dnswire_msg *m, char vals[][256], size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < m->ancount && n < max; i++) {
        uint8_t v[256];
        size_t vl;
        assert_int_equal(m->rr[i].type, DNSWIRE_TYPE_TXT);
        assert_int_equal(dnswire_rdata_txt(&m->rr[i], v, sizeof(v) - 1, &vl), 0);
        memcpy(vals[n], v, vl);
        vals[n][vl] = '\0';
        n++;
    }
    return (int)n;
}

static void test_txt(void **state)
{
    struct fixture *f = *state;
    struct dnswire_msg m;
    uint8_t ans[65535];
    char vals[8][256];

    ask_name(f, &m, ans, "www.example.com." ZONE, DNSWIRE_TYPE_TXT);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_NOERROR);
    assert_int_equal(m.hdr.aa, 1);
    assert_int_equal(collect_txt(&m, vals, 8), 2);
    assert_string_equal(vals[0], "digest-one");
    assert_string_equal(vals[1], "digest-two");
    assert_int_equal(m.rr[0].ttl, 60);
    assert_int_equal(m.nscount, 0);
    dnswire_msg_cleanup(&m);

    ask_name(f, &m, ans, "habcdefghijklmnopqrstuvwxyz234567." ZONE, DNSWIRE_TYPE_TXT);
    assert_int_equal(collect_txt(&m, vals, 8), 1);
    assert_string_equal(vals[0], "hashed");
    dnswire_msg_cleanup(&m);

    /* ANY (RFC 8482): one RRset, here the TXT set; at the apex the SOA. */
    ask_name(f, &m, ans, "www.example.com." ZONE, DNSWIRE_TYPE_ANY);
    assert_int_equal(collect_txt(&m, vals, 8), 2);
    dnswire_msg_cleanup(&m);
    ask_name(f, &m, ans, ZONE, DNSWIRE_TYPE_ANY);
    assert_int_equal(m.ancount, 1);
    assert_int_equal(m.rr[0].type, DNSWIRE_TYPE_SOA);
    dnswire_msg_cleanup(&m);

    /* What is published after the server started is served. */
    publish(f->st, "late.example.net." ZONE, "late-value", 1);
    ask_name(f, &m, ans, "late.example.net." ZONE, DNSWIRE_TYPE_TXT);
    assert_int_equal(collect_txt(&m, vals, 8), 1);
    assert_string_equal(vals[0], "late-value");
    dnswire_msg_cleanup(&m);
}

static void test_negative(void **state)
{
    struct fixture *f = *state;
    struct dnswire_msg m;
    uint8_t ans[65535];
    static const struct {
        const char *name;
        uint16_t qtype;
        uint16_t rcode;
    } cases[] = {
        /* NODATA: the name has TXT values, not this type. */
        {"www.example.com." ZONE, DNSWIRE_TYPE_A, DNSWIRE_RCODE_NOERROR},
        {"www.example.com." ZONE, DNSWIRE_TYPE_CNAME, DNSWIRE_RCODE_NOERROR},
        /* Empty non-terminals: values are published below them. */
        {"example.com." ZONE, DNSWIRE_TYPE_TXT, DNSWIRE_RCODE_NOERROR},
        {"com." ZONE, DNSWIRE_TYPE_TXT, DNSWIRE_RCODE_NOERROR},
        /* The apex exists, with no TXT and no A. */
        {ZONE, DNSWIRE_TYPE_TXT, DNSWIRE_RCODE_NOERROR},
        {ZONE, DNSWIRE_TYPE_A, DNSWIRE_RCODE_NOERROR},
        /* Nothing at or below these. */
        {"nope." ZONE, DNSWIRE_TYPE_TXT, DNSWIRE_RCODE_NXDOMAIN},
        {"ww.example.com." ZONE, DNSWIRE_TYPE_TXT, DNSWIRE_RCODE_NXDOMAIN},
        {"x.www.example.com." ZONE, DNSWIRE_TYPE_TXT, DNSWIRE_RCODE_NXDOMAIN},
        {"ample.com." ZONE, DNSWIRE_TYPE_TXT, DNSWIRE_RCODE_NXDOMAIN},
        {"*.example.com." ZONE, DNSWIRE_TYPE_TXT, DNSWIRE_RCODE_NXDOMAIN},
        {"ns2." ZONE, DNSWIRE_TYPE_A, DNSWIRE_RCODE_NXDOMAIN},
        {"m." ZONE, DNSWIRE_TYPE_TXT, DNSWIRE_RCODE_NXDOMAIN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ask_name(f, &m, ans, cases[i].name, cases[i].qtype);
        expect_negative(&m, cases[i].rcode);
        dnswire_msg_cleanup(&m);
    }

    /* A label holding a dot can match nothing stored (and nothing below). */
    uint8_t q[512];
    size_t qlen = make_query(q, "x.example.com." ZONE, DNSWIRE_TYPE_TXT, 0);
    memcpy(q + 12, "\x01.", 2);
    ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    expect_negative(&m, DNSWIRE_RCODE_NXDOMAIN);
    dnswire_msg_cleanup(&m);

    /* Withdrawing the last value removes the name, and its empty non-terminals. */
    publish(f->st, "gone.sub." ZONE, "v", 1);
    ask_name(f, &m, ans, "sub." ZONE, DNSWIRE_TYPE_TXT);
    expect_negative(&m, DNSWIRE_RCODE_NOERROR);
    dnswire_msg_cleanup(&m);
    publish(f->st, "gone.sub." ZONE, "v", 0);
    ask_name(f, &m, ans, "gone.sub." ZONE, DNSWIRE_TYPE_TXT);
    expect_negative(&m, DNSWIRE_RCODE_NXDOMAIN);
    dnswire_msg_cleanup(&m);
    ask_name(f, &m, ans, "sub." ZONE, DNSWIRE_TYPE_TXT);
    expect_negative(&m, DNSWIRE_RCODE_NXDOMAIN);
    dnswire_msg_cleanup(&m);
}

static void test_case_preserved(void **state)
{
    struct fixture *f = *state;
    struct dnswire_msg m;
    uint8_t q[512], ans[65535];
    char text[DNSWIRE_NAME_TEXT_MAX];
    const char *mixed = "wWw.ExAmPlE.cOm.AcMe.CdN.TeSt";
    size_t qlen = make_query(q, mixed, DNSWIRE_TYPE_TXT, 1232);
    ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_NOERROR);
    assert_int_equal(m.ancount, 2);
    /* The question comes back octet for octet (0x20 clients check it). */
    assert_memory_equal(ans + 12, q + 12, strlen(mixed) + 2 + 4);
    name_text(text, m.qd[0].name, m.qd[0].name_len);
    assert_string_equal(text, mixed);
    name_text(text, m.rr[0].name, m.rr[0].name_len);
    assert_string_equal(text, mixed);
    dnswire_msg_cleanup(&m);

    /* Negative answers too. */
    qlen = make_query(q, "NoPe.AcMe.CdN.TeSt", DNSWIRE_TYPE_TXT, 0);
    ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_NXDOMAIN);
    name_text(text, m.qd[0].name, m.qd[0].name_len);
    assert_string_equal(text, "NoPe.AcMe.CdN.TeSt");
    dnswire_msg_cleanup(&m);
}

static void test_edns_truncation(void **state)
{
    struct fixture *f = *state;
    struct dnswire_msg m;
    uint8_t q[512], ans[65535];
    char vals[NVALUES_BIG][256] = {{0}};
    size_t qlen, alen;

    /* No EDNS: 512 octets at most, truncated to the question, no OPT. */
    qlen = make_query(q, BIG_NAME, DNSWIRE_TYPE_TXT, 0);
    alen = ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    assert_true(alen <= 512);
    assert_int_equal(m.hdr.tc, 1);
    assert_int_equal(m.hdr.aa, 1);
    assert_int_equal(m.qdcount, 1);
    assert_int_equal(m.ancount + m.nscount + m.arcount, 0);
    assert_int_equal(m.edns.present, 0);
    dnswire_msg_cleanup(&m);

    /* EDNS 4096: capped at 1232, still too small; the OPT is kept. */
    qlen = make_query(q, BIG_NAME, DNSWIRE_TYPE_TXT, 4096);
    alen = ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    assert_true(alen <= AUTHSRV_UDP_MAX);
    assert_int_equal(m.hdr.tc, 1);
    assert_int_equal(m.ancount, 0);
    assert_int_equal(m.edns.present, 1);
    assert_int_equal(m.edns.udp_size, AUTHSRV_UDP_MAX);
    dnswire_msg_cleanup(&m);

    /* TCP: the whole set. */
    alen = ask(f, &m, ans, q, qlen, 0);
    assert_true(alen > AUTHSRV_UDP_MAX);
    assert_int_equal(m.hdr.tc, 0);
    assert_int_equal(collect_txt(&m, vals, NVALUES_BIG), NVALUES_BIG);
    assert_int_equal(vals[NVALUES_BIG - 1][0], '2');
    dnswire_msg_cleanup(&m);

    /* A small answer fits in whatever the client allows; a size below 512 reads as 512. */
    qlen = make_query(q, "www.example.com." ZONE, DNSWIRE_TYPE_TXT, 100);
    alen = ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    assert_true(alen <= DNSWIRE_UDP_MIN);
    assert_int_equal(m.hdr.tc, 0);
    assert_int_equal(m.ancount, 2);
    dnswire_msg_cleanup(&m);

    /* DO is echoed; version 1 gets BADVERS (extended rcode 1, header 0), no data. */
    qlen = make_query_ex(q, 7, 0, ZONE, DNSWIRE_TYPE_SOA, DNSWIRE_CLASS_IN, 1232, 0, 1);
    ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    assert_int_equal(m.edns.do_bit, 1);
    assert_int_equal(m.edns.version, 0);
    dnswire_msg_cleanup(&m);
    qlen = make_query_ex(q, 8, 0, ZONE, DNSWIRE_TYPE_SOA, DNSWIRE_CLASS_IN, 1232, 1, 0);
    ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_BADVERS);
    assert_int_equal(ans[3] & 0xf, 0);
    assert_int_equal(m.ancount, 0);
    assert_int_equal(m.edns.present, 1);
    assert_int_equal(m.edns.version, 0);
    dnswire_msg_cleanup(&m);

    struct authsrv_stats st;
    authsrv_get_stats(f->srv, &st);
    assert_true(st.truncated >= 2);
    assert_true(st.rcode[AUTHSRV_RCODE_BADVERS] >= 1);
}

static void test_refused_notimp_formerr(void **state)
{
    struct fixture *f = *state;
    struct dnswire_msg m;
    uint8_t q[512], ans[65535];
    size_t qlen, alen;
    static const char *outside[] = {"example.org", "cdn.test", "xacme.cdn.test", "other.zone.test",
                                    "."};

    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        qlen = make_query_ex(q, 9, 0x01, strcmp(outside[i], ".") ? outside[i] : "",
                             DNSWIRE_TYPE_TXT, DNSWIRE_CLASS_IN, 1232, 0, 0);
        alen = ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
        assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_REFUSED);
        assert_int_equal(m.hdr.aa, 0);
        assert_int_equal(m.hdr.ra, 0);
        assert_int_equal(m.hdr.rd, 1);
        assert_int_equal(m.ancount + m.nscount, 0);
        /* No amplification: the answer is no larger than the query. */
        assert_true(alen <= qlen);
        dnswire_msg_cleanup(&m);
    }
    /* Another class (CH version.bind), even for our names. */
    qlen = make_query_ex(q, 10, 0, "version.bind", DNSWIRE_TYPE_TXT, 3, 0, 0, 0);
    ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_REFUSED);
    dnswire_msg_cleanup(&m);
    qlen = make_query_ex(q, 10, 0, ZONE, DNSWIRE_TYPE_SOA, 3, 0, 0, 0);
    ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_REFUSED);
    dnswire_msg_cleanup(&m);
    /* No zone transfers. */
    qlen = make_query(q, ZONE, 252, 0);
    ask(f, &m, ans, q, qlen, 0);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_REFUSED);
    dnswire_msg_cleanup(&m);

    /* Opcodes other than QUERY: NOTIFY (4), UPDATE (5), IQUERY (1). */
    static const uint8_t opcodes[] = {1, 2, 4, 5, 15};
    for (size_t i = 0; i < sizeof(opcodes); i++) {
        qlen = make_query_ex(q, 11, (uint8_t)(opcodes[i] << 3), ZONE, DNSWIRE_TYPE_SOA,
                             DNSWIRE_CLASS_IN, 0, 0, 0);
        ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
        assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_NOTIMP);
        assert_int_equal(m.hdr.opcode, opcodes[i]);
        assert_int_equal(m.ancount, 0);
        dnswire_msg_cleanup(&m);
    }

    /* FORMERR: two questions, none, two OPT records, a meta-type as the question. */
    qlen = make_query(q, ZONE, DNSWIRE_TYPE_SOA, 0);
    memcpy(q + qlen, q + 12, qlen - 12);
    q[5] = 2;
    ask(f, &m, ans, q, qlen + qlen - 12, AUTHSRV_UDP_MAX);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_FORMERR);
    assert_int_equal(m.qdcount, 0);
    dnswire_msg_cleanup(&m);
    memset(q, 0, 12);
    ask(f, &m, ans, q, 12, AUTHSRV_UDP_MAX);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_FORMERR);
    dnswire_msg_cleanup(&m);
    qlen = make_query(q, ZONE, DNSWIRE_TYPE_SOA, 1232);
    memcpy(q + qlen, q + qlen - 11, 11);
    q[11] = 2;
    ask(f, &m, ans, q, qlen + 11, AUTHSRV_UDP_MAX);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_FORMERR);
    assert_int_equal(m.edns.present, 0);
    dnswire_msg_cleanup(&m);
    qlen = make_query(q, ZONE, DNSWIRE_TYPE_OPT, 0);
    ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_FORMERR);
    dnswire_msg_cleanup(&m);
}

static void test_tsig_notauth(void **state)
{
    struct fixture *f = *state;
    struct dnswire_msg m;
    uint8_t q[512], ans[65535];
    struct dnswire_tsig_key key;
    const char *reason;
    const char *text = "somekey:ZG5zd2lyZS10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWI=";
    size_t qlen;
    assert_int_equal(dnswire_tsig_key_parse(&key, text, strlen(text), &reason), 0);
    assert_int_equal(dnswire_build_query(q, sizeof(q), &qlen, 77, "www.example.com." ZONE,
                                         DNSWIRE_TYPE_TXT, 0, 0),
                     0);
    assert_int_equal(dnswire_tsig_sign(&key, q, sizeof(q), &qlen, 1700000000, NULL, NULL), 0);
    ask(f, &m, ans, q, qlen, AUTHSRV_UDP_MAX);
    /* RFC 8945 §5.2.1: an unknown key is NOTAUTH with an unsigned BADKEY TSIG. */
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_NOTAUTH);
    assert_int_equal(m.ancount, 0);
    assert_int_equal(m.has_tsig, 1);
    const struct dnswire_rr *t = &m.rr[m.ancount + m.nscount + m.arcount - 1];
    assert_int_equal(t->type, DNSWIRE_TYPE_TSIG);
    /* algorithm, time 6, fudge 2, MAC size 0, original id, error BADKEY, other 0 */
    const uint8_t *tail = t->rdata + t->rdlen - 8;
    assert_int_equal(tail[0] << 8 | tail[1], 0);
    assert_int_equal(tail[2] << 8 | tail[3], 77);
    assert_int_equal(tail[4] << 8 | tail[5], DNSWIRE_RCODE_BADKEY);
    dnswire_msg_cleanup(&m);
    dnswire_tsig_key_cleanup(&key);
}

static void expect_dropped(struct fixture *f, const uint8_t *q, size_t qlen)
{
    uint8_t ans[65535];
    size_t alen = 0;
    assert_int_equal(authsrv_answer(f->srv, ans, sizeof(ans), &alen, q, qlen, AUTHSRV_UDP_MAX),
                     CF_EPARSE);
    assert_int_equal(authsrv_answer(f->srv, ans, sizeof(ans), &alen, q, qlen, 0), CF_EPARSE);
}

static void test_malformed_dropped(void **state)
{
    struct fixture *f = *state;
    uint8_t q[600];
    size_t qlen = make_query(q, "www.example.com." ZONE, DNSWIRE_TYPE_TXT, 1232);
    struct authsrv_stats before, after;
    authsrv_get_stats(f->srv, &before);

    expect_dropped(f, q, 0);
    expect_dropped(f, q, 11);
    /* Every cut short of the whole message. */
    for (size_t n = 12; n < qlen; n++)
        if (n != qlen - 11) /* the message without its OPT record is a valid query */
            expect_dropped(f, q, n);
    /* Trailing octets. */
    q[qlen] = 0;
    expect_dropped(f, q, qlen + 1);
    /* A response (QR set) is never answered: no reflection loops. */
    q[2] |= 0x80;
    expect_dropped(f, q, qlen);
    q[2] &= 0x7f;
    /* A compression pointer pointing at itself or forward. */
    uint8_t loop[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 16, 0, 1};
    expect_dropped(f, loop, sizeof(loop));
    loop[13] = 14;
    expect_dropped(f, loop, sizeof(loop));
    /* A label running past the end; counts claiming records that are not there. */
    uint8_t past[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 'a', 'b'};
    expect_dropped(f, past, sizeof(past));
    qlen = make_query(q, ZONE, DNSWIRE_TYPE_SOA, 0);
    q[7] = 5;
    expect_dropped(f, q, qlen);
    /* Garbage. */
    srand(1);
    for (int i = 0; i < 2000; i++) {
        uint8_t g[300], ans[2048];
        size_t alen, glen = (size_t)(rand() % (int)sizeof(g));
        for (size_t k = 0; k < glen; k++)
            g[k] = (uint8_t)rand();
        authsrv_answer(f->srv, ans, sizeof(ans), &alen, g, glen, AUTHSRV_UDP_MAX);
    }
    authsrv_get_stats(f->srv, &after);
    assert_true(after.dropped >= before.dropped + 40);

    /* And the server still answers. */
    struct dnswire_msg m;
    uint8_t ans[65535];
    ask_name(f, &m, ans, "www.example.com." ZONE, DNSWIRE_TYPE_TXT);
    assert_int_equal(m.ancount, 2);
    dnswire_msg_cleanup(&m);
}

static void test_store_tree(void **state)
{
    struct fixture *f = *state;
    struct store_read *rd;
    assert_int_equal(store_read_begin(f->st, &rd), 0);
    assert_int_equal(store_read_txt_below(rd, "example.com." ZONE, strlen("example.com." ZONE)), 1);
    assert_int_equal(store_read_txt_below(rd, "com." ZONE, strlen("com." ZONE)), 1);
    assert_int_equal(store_read_txt_below(rd, ZONE, strlen(ZONE)), 1);
    assert_int_equal(
        store_read_txt_below(rd, "www.example.com." ZONE, strlen("www.example.com." ZONE)), 0);
    assert_int_equal(store_read_txt_below(rd, "ample.com." ZONE, strlen("ample.com." ZONE)), 0);
    assert_int_equal(store_read_txt_below(rd, "example.co." ZONE, strlen("example.co." ZONE)), 0);
    assert_int_equal(store_read_txt_below(rd, "", 0), 1);
    uint64_t id = store_read_txn_id(rd);
    store_read_reset(rd);
    publish(f->st, "a.b.c." ZONE, "v", 1);
    assert_int_equal(store_read_renew(rd), 0);
    assert_true(store_read_txn_id(rd) > id);
    assert_int_equal(store_read_txt_below(rd, "b.c." ZONE, strlen("b.c." ZONE)), 1);
    store_read_end(rd);

    /* A store reopened rebuilds a missing tree (written before it existed). */
    struct store_batch *b = store_batch_new(f->st);
    store_batch_del(b, STORE_DB_DNS_TREE, "test.cdn.acme.c.b.a", 19);
    assert_int_equal(store_batch_commit(b), 0);
    store_batch_free(b);
    authsrv_free(f->srv);
    f->srv = NULL;
    store_close(f->st);
    assert_int_equal(store_open(&f->st, f->dir, NULL), 0);
    assert_int_equal(store_read_begin(f->st, &rd), 0);
    assert_int_equal(store_read_txt_below(rd, "b.c." ZONE, strlen("b.c." ZONE)), 1);
    store_read_end(rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_soa_ns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_case_preserved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edns_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_notimp_formerr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tsig_notauth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_tree, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
