/*
 * test_dnswire.c - the DNS message codec: names, parser, writer, builders,
 * TSIG and key files.
 *
 * The captured packets below come from knot 3.2 on loopback (kdig, knotd,
 * knsupdate), zone acme.test, TSIG key cf-update. with the secret
 * "dnswire-test-secret-0123456789ab"; see the comments at each.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dnswire.h"
#include "err.h"

/* The test key, base64 of "dnswire-test-secret-0123456789ab". */
#define TEST_SECRET_B64 "ZG5zd2lyZS10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWI="

/* kdig's query for www.acme.test A (+norec +edns=0 +bufsize=1232). */
static const uint8_t kdig_query_www_a[] = {
    0x9d, 0x5c, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x77,
    0x77, 0x77, 0x04, 0x61, 0x63, 0x6d, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

/* knotd's answer: a CNAME to ns1.acme.test and its A record. */
static const uint8_t knot_resp_www_a[] = {
    0x9d, 0x5c, 0x84, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x03, 0x77, 0x77, 0x77,
    0x04, 0x61, 0x63, 0x6d, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0,
    0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x06, 0x03, 0x6e, 0x73, 0x31, 0xc0,
    0x10, 0xc0, 0x2b, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x04, 0x7f, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

/* knotd's answer to txt.acme.test TXT: one record, two strings. */
static const uint8_t knot_resp_txt[] = {
    0xbc, 0x21, 0x84, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x03, 0x74, 0x78, 0x74,
    0x04, 0x61, 0x63, 0x6d, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x10, 0x00, 0x01, 0xc0,
    0x0c, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x1a, 0x0b, 0x68, 0x65, 0x6c, 0x6c,
    0x6f, 0x20, 0x77, 0x6f, 0x72, 0x6c, 0x64, 0x0d, 0x73, 0x65, 0x63, 0x6f, 0x6e, 0x64, 0x20, 0x73,
    0x74, 0x72, 0x69, 0x6e, 0x67, 0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

/* knotd's NXDOMAIN for nope.acme.test A, SOA in the authority section. */
static const uint8_t knot_resp_nxdomain[] = {
    0x2d, 0x70, 0x84, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x04, 0x6e, 0x6f, 0x70,
    0x65, 0x04, 0x61, 0x63, 0x6d, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x01, 0x00, 0x01,
    0xc0, 0x11, 0x00, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x27, 0x03, 0x6e, 0x73, 0x31,
    0xc0, 0x11, 0x0a, 0x68, 0x6f, 0x73, 0x74, 0x6d, 0x61, 0x73, 0x74, 0x65, 0x72, 0xc0, 0x11, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x00, 0x02, 0x58, 0x00, 0x01, 0x51, 0x80, 0x00,
    0x00, 0x00, 0x3c, 0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

/* knotd's answer to acme.test NS with DO set: NS, glue A and AAAA. */
static const uint8_t knot_resp_ns[] = {
    0x9b, 0x58, 0x84, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x61, 0x63,
    0x6d, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x02, 0x00, 0x01, 0xc0, 0x0c, 0x00,
    0x02, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x06, 0x03, 0x6e, 0x73, 0x31, 0xc0, 0x0c,
    0xc0, 0x27, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x04, 0x7f, 0x00, 0x00,
    0x01, 0xc0, 0x27, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x10, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00};

/* knsupdate's signed UPDATE (key cf-update., time 1795883423). */
static const uint8_t knsupdate_req[] = {
    0x4c, 0xf6, 0x28, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x04, 0x61, 0x63,
    0x6d, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x06, 0x00, 0x01, 0x0f, 0x5f, 0x61,
    0x63, 0x6d, 0x65, 0x2d, 0x63, 0x68, 0x61, 0x6c, 0x6c, 0x65, 0x6e, 0x67, 0x65, 0x02, 0x68,
    0x31, 0xc0, 0x0c, 0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 0x03, 0x61,
    0x62, 0x63, 0x03, 0x6f, 0x6c, 0x64, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0xfe, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x01, 0x09, 0x63, 0x66, 0x2d, 0x75, 0x70, 0x64, 0x61,
    0x74, 0x65, 0x00, 0x00, 0xfa, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3d, 0x0b, 0x68,
    0x6d, 0x61, 0x63, 0x2d, 0x73, 0x68, 0x61, 0x32, 0x35, 0x36, 0x00, 0x00, 0x00, 0x6b, 0x0b,
    0x01, 0x9f, 0x01, 0x2c, 0x00, 0x20, 0xc0, 0x4b, 0x61, 0xe4, 0x71, 0xcf, 0x39, 0x9c, 0x8e,
    0x52, 0x7a, 0x65, 0x54, 0xf5, 0x9d, 0x5a, 0x9c, 0x03, 0xc8, 0xdb, 0x24, 0xea, 0x41, 0x90,
    0x6e, 0x22, 0x6f, 0x63, 0x74, 0xe4, 0xba, 0xc1, 0x4c, 0xf6, 0x00, 0x00, 0x00, 0x00};

/* the UPDATE this code signed and knotd accepted (time 1795883439). */
static const uint8_t knot_accepted_req[] = {
    0x12, 0x34, 0x28, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x04, 0x61, 0x63, 0x6d,
    0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x06, 0x00, 0x01, 0x0f, 0x5f, 0x61, 0x63, 0x6d,
    0x65, 0x2d, 0x63, 0x68, 0x61, 0x6c, 0x6c, 0x65, 0x6e, 0x67, 0x65, 0x02, 0x68, 0x31, 0xc0, 0x0c,
    0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x10, 0x0f, 0x74, 0x6f, 0x6b, 0x65, 0x6e,
    0x2d, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x2d, 0x31, 0x32, 0x33, 0x02, 0x68, 0x32, 0xc0, 0x0c, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x07, 0x09, 0x63, 0x66,
    0x2d, 0x75, 0x70, 0x64, 0x61, 0x74, 0x65, 0x00, 0x00, 0xfa, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x3d, 0x0b, 0x68, 0x6d, 0x61, 0x63, 0x2d, 0x73, 0x68, 0x61, 0x32, 0x35, 0x36, 0x00, 0x00,
    0x00, 0x6b, 0x0b, 0x01, 0xaf, 0x01, 0x2c, 0x00, 0x20, 0x32, 0x94, 0x94, 0x86, 0x2a, 0xb5, 0x78,
    0xa0, 0xc5, 0xde, 0xcb, 0x88, 0x58, 0x64, 0x44, 0xf6, 0xea, 0xf0, 0x07, 0x81, 0xf0, 0x62, 0x19,
    0x20, 0xce, 0xdd, 0x88, 0x76, 0xe3, 0xa8, 0x6e, 0x8a, 0x12, 0x34, 0x00, 0x00, 0x00, 0x00};

/* knotd's signed NOERROR answer to knot_accepted_req. */
static const uint8_t knot_update_resp[] = {
    0x12, 0x34, 0xa8, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x61, 0x63, 0x6d,
    0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x06, 0x00, 0x01, 0x09, 0x63, 0x66, 0x2d, 0x75,
    0x70, 0x64, 0x61, 0x74, 0x65, 0x00, 0x00, 0xfa, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3d,
    0x0b, 0x68, 0x6d, 0x61, 0x63, 0x2d, 0x73, 0x68, 0x61, 0x32, 0x35, 0x36, 0x00, 0x00, 0x00, 0x6b,
    0x0b, 0x01, 0xaf, 0x01, 0x2c, 0x00, 0x20, 0x2f, 0x44, 0x66, 0x0d, 0xd4, 0xc5, 0x2c, 0x19, 0x7d,
    0x51, 0xc6, 0xc6, 0xb9, 0x31, 0x37, 0x9a, 0xaf, 0x16, 0x20, 0x0c, 0x16, 0xad, 0x80, 0x20, 0x94,
    0x36, 0x5a, 0xd5, 0xc6, 0xad, 0x3e, 0x6d, 0x12, 0x34, 0x00, 0x00, 0x00, 0x00};

/* knotd's NOTAUTH answer to an UPDATE signed with a wrong secret (TSIG error BADSIG, no MAC). */
static const uint8_t knot_badsig_resp[] = {
    0x12, 0x34, 0xa8, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x61, 0x63, 0x6d,
    0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x06, 0x00, 0x01, 0x09, 0x63, 0x66, 0x2d, 0x75,
    0x70, 0x64, 0x61, 0x74, 0x65, 0x00, 0x00, 0xfa, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1d,
    0x0b, 0x68, 0x6d, 0x61, 0x63, 0x2d, 0x73, 0x68, 0x61, 0x32, 0x35, 0x36, 0x00, 0x00, 0x00, 0x6b,
    0x0b, 0x01, 0xb2, 0x01, 0x2c, 0x00, 0x00, 0x12, 0x34, 0x00, 0x10, 0x00, 0x00};

/* wire turns a text name into wire form, failing the test when it cannot. */
static size_t wire(uint8_t *out, const char *text)
{
    size_t len = 0;
    assert_int_equal(dnswire_name_from_text(out, &len, text), 0);
    return len;
}

/* decode_all runs the decoder of every record's type, as the fuzz target does. */
static int decode_all(const struct dnswire_msg *m)
{
    size_t nrr = m->ancount + m->nscount + m->arcount;
    int bad = 0;
    for (size_t i = 0; i < nrr; i++) {
        const struct dnswire_rr *r = &m->rr[i];
        uint8_t name[DNSWIRE_NAME_MAX], addr[16], *txt = malloc(r->rdlen + 1);
        struct dnswire_soa soa;
        size_t len;
        int rc = 0;
        switch (r->type) {
        case DNSWIRE_TYPE_A:
            rc = dnswire_rdata_a(r, addr);
            break;
        case DNSWIRE_TYPE_AAAA:
            rc = dnswire_rdata_aaaa(r, addr);
            break;
        case DNSWIRE_TYPE_NS:
        case DNSWIRE_TYPE_CNAME:
        case DNSWIRE_TYPE_DNAME:
        case DNSWIRE_TYPE_PTR:
            rc = dnswire_rdata_name(m, r, name, &len);
            break;
        case DNSWIRE_TYPE_TXT:
            rc = dnswire_rdata_txt(r, txt, r->rdlen, &len);
            break;
        case DNSWIRE_TYPE_SOA:
            rc = dnswire_rdata_soa(m, r, &soa);
            break;
        default:
            break;
        }
        free(txt);
        if (rc != 0) {
            assert_int_equal(rc, CF_EPARSE);
            bad++;
        }
    }
    return bad;
}

/* parse_ok parses a message that must be well-formed, decoders included. */
static void parse_ok(struct dnswire_msg *m, const uint8_t *pkt, size_t len)
{
    assert_int_equal(dnswire_msg_parse(m, pkt, len), 0);
    assert_int_equal(decode_all(m), 0);
}

static void assert_parse_fails(const uint8_t *pkt, size_t len)
{
    struct dnswire_msg m;
    assert_int_equal(dnswire_msg_parse(&m, pkt, len), CF_EPARSE);
    assert_null(m.rr);
    assert_null(m.qd);
    dnswire_msg_cleanup(&m);
}

/* ---- Names ---- */

static void test_name_from_text(void **state)
{
    uint8_t w[DNSWIRE_NAME_MAX];
    size_t len;
    (void)state;

    assert_int_equal(dnswire_name_from_text(w, &len, "WWW.Example.COM"), 0);
    assert_int_equal(len, 17);
    assert_memory_equal(w, "\3www\7example\3com", 17);
    assert_int_equal(dnswire_name_from_text(w, &len, "www.example.com."), 0);
    assert_int_equal(len, 17);
    assert_int_equal(dnswire_name_from_text(w, &len, "."), 0);
    assert_int_equal(len, 1);
    assert_int_equal(w[0], 0);
    assert_int_equal(dnswire_name_from_text(w, &len, "_acme-challenge.x"), 0);
    assert_memory_equal(w, "\17_acme-challenge\1x", 19);
    /* RFC 1035 §5.1 escapes; letters are lower-cased even when escaped. */
    assert_int_equal(dnswire_name_from_text(w, &len, "a\\.b.\\065\\000"), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(w, "\3a.b\2a\0\0", 8);

    const char *bad[] = {"",       "..",     ".a",       "a..b", "a b",   "a\\",    "a\\25",
                         "a\\256", "a\\2x5", "\x80.com", "a\tb", "a.b..", "a\\\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(dnswire_name_from_text(w, &len, bad[i]), CF_EPARSE);

    /* Labels of 63 octets pass, 64 do not. */
    char text[600];
    memset(text, 'a', 63);
    text[63] = '\0';
    assert_int_equal(dnswire_name_from_text(w, &len, text), 0);
    assert_int_equal(len, 65);
    memset(text, 'a', 64);
    text[64] = '\0';
    assert_int_equal(dnswire_name_from_text(w, &len, text), CF_EPARSE);

    /* Three 63-octet labels and one of 61 make 255 wire octets; 62 makes 256. */
    size_t n = 0;
    for (int l = 0; l < 4; l++) {
        size_t ll = l < 3 ? 63 : 61;
        memset(text + n, 'b', ll);
        n += ll;
        text[n++] = '.';
    }
    text[n] = '\0';
    assert_int_equal(dnswire_name_from_text(w, &len, text), 0);
    assert_int_equal(len, 255);
    text[n - 1] = 'b';
    text[n] = '\0';
    assert_int_equal(dnswire_name_from_text(w, &len, text), CF_EPARSE);
    /* Many short labels overflow the same way. */
    n = 0;
    for (int l = 0; l < 128; l++) {
        text[n++] = 'c';
        text[n++] = '.';
    }
    text[n] = '\0';
    assert_int_equal(dnswire_name_from_text(w, &len, text), CF_EPARSE);
    text[254] = '\0'; /* 127 labels: 255 octets */
    assert_int_equal(dnswire_name_from_text(w, &len, text), 0);
    assert_int_equal(len, 255);
}

static void test_name_to_text(void **state)
{
    uint8_t w[DNSWIRE_NAME_MAX];
    char text[DNSWIRE_NAME_TEXT_MAX];
    size_t len;
    (void)state;

    len = wire(w, "www.example.com");
    assert_int_equal(dnswire_name_to_text(text, sizeof(text), w, len), 0);
    assert_string_equal(text, "www.example.com");
    assert_int_equal(dnswire_name_to_text(text, sizeof(text), (const uint8_t *)"", 1), 0);
    assert_string_equal(text, ".");

    static const uint8_t odd[] = {5, 'a', '.', ' ', '\\', 0xff, 3, 'B', '"', ';', 0};
    assert_int_equal(dnswire_name_to_text(text, sizeof(text), odd, sizeof(odd)), 0);
    assert_string_equal(text, "a\\.\\032\\\\\\255.B\\\"\\;");
    /* And back: the same name, lower-cased. */
    assert_int_equal(dnswire_name_from_text(w, &len, text), 0);
    assert_int_equal(len, sizeof(odd));
    assert_memory_equal(w, "\5a. \\\xff\3b\";", sizeof(odd));

    len = wire(w, "www.example.com");
    assert_int_equal(dnswire_name_to_text(text, 16, w, len), 0);
    assert_int_equal(dnswire_name_to_text(text, 15, w, len), CF_ETOOBIG);
    assert_int_equal(dnswire_name_to_text(text, 1, (const uint8_t *)"", 1), CF_ETOOBIG);
    /* Invalid wire names. */
    assert_int_equal(dnswire_name_to_text(text, sizeof(text), (const uint8_t *)"\3ab", 3),
                     CF_EPARSE);
    assert_int_equal(dnswire_name_to_text(text, sizeof(text), (const uint8_t *)"\1a\0\0", 4),
                     CF_EPARSE);
    static const uint8_t lab64[] = {64};
    assert_int_equal(dnswire_name_check(lab64, 1), CF_EPARSE);
    assert_int_equal(dnswire_name_check(w, 0), CF_EPARSE);
}

static void test_name_compare(void **state)
{
    uint8_t a[DNSWIRE_NAME_MAX], b[DNSWIRE_NAME_MAX], z[DNSWIRE_NAME_MAX];
    size_t al, bl, zl;
    (void)state;

    al = wire(a, "www.example.com");
    memcpy(b, "\3WwW\7EXAMPLE\3cOm", 17);
    bl = 17;
    assert_true(dnswire_name_equal(a, al, b, bl));
    assert_false(dnswire_name_equal(a, al, b, bl - 1));
    bl = wire(b, "www.example.org");
    assert_false(dnswire_name_equal(a, al, b, bl));

    zl = wire(z, "EXAMPLE.com");
    assert_true(dnswire_name_in_zone(a, al, z, zl));
    assert_true(dnswire_name_in_zone(z, zl, z, zl));
    assert_true(dnswire_name_in_zone(a, al, (const uint8_t *)"", 1));
    bl = wire(b, "wwwexample.com");
    assert_false(dnswire_name_in_zone(b, bl, z, zl)); /* not at a label boundary */
    assert_false(dnswire_name_in_zone(z, zl, a, al));
    bl = wire(b, "com");
    assert_false(dnswire_name_in_zone(b, bl, z, zl));
}

/* ---- Reading compressed names ---- */

/* put copies n octets of a byte string literal (no NUL) into a test message. */
static void put(uint8_t *dst, const char *bytes, size_t n)
{
    memcpy(dst, bytes, n);
}

static void test_read_name(void **state)
{
    uint8_t out[DNSWIRE_NAME_MAX];
    size_t off, len;
    (void)state;

    /* "example.com" at 12, "www" + pointer to 12 at 25. */
    uint8_t msg[64] = {0};
    put(msg + 12, "\7example\3com", 13);
    put(msg + 25, "\3www\xc0\x0c", 6);
    off = 25;
    assert_int_equal(dnswire_read_name(msg, 31, &off, out, &len), 0);
    assert_int_equal(off, 31);
    assert_int_equal(len, 17);
    assert_memory_equal(out, "\3www\7example\3com", 17);
    off = 12;
    assert_int_equal(dnswire_read_name(msg, 31, &off, out, &len), 0);
    assert_int_equal(off, 25);

    /* A pointer to itself. */
    msg[31] = 0xc0;
    msg[32] = 31;
    off = 31;
    assert_int_equal(dnswire_read_name(msg, 33, &off, out, &len), CF_EPARSE);
    assert_int_equal(off, 31);
    /* A backward pointer that loops: label at 33, pointer at 35 back to 33. */
    put(msg + 33, "\1a\xc0\x21", 4);
    off = 33;
    assert_int_equal(dnswire_read_name(msg, 37, &off, out, &len), CF_EPARSE);
    /* Two pointers pointing at each other. */
    put(msg + 40, "\xc0\x2a\xc0\x28", 4);
    off = 42;
    assert_int_equal(dnswire_read_name(msg, 44, &off, out, &len), CF_EPARSE);
    off = 40;
    assert_int_equal(dnswire_read_name(msg, 44, &off, out, &len), CF_EPARSE);
    /* A forward pointer, to a valid name. */
    put(msg + 12, "\xc0\x20", 2);
    put(msg + 32, "\3com", 5);
    off = 12;
    assert_int_equal(dnswire_read_name(msg, 37, &off, out, &len), CF_EPARSE);
    /* A pointer past the end, and one cut in half. */
    put(msg + 12, "\1a\xc0\x3f", 4);
    off = 12;
    assert_int_equal(dnswire_read_name(msg, 16, &off, out, &len), CF_EPARSE);
    off = 12;
    assert_int_equal(dnswire_read_name(msg, 15, &off, out, &len), CF_EPARSE);
    /* A label running past the end, a missing root label, an empty input. */
    put(msg + 12, "\5ab", 3);
    off = 12;
    assert_int_equal(dnswire_read_name(msg, 15, &off, out, &len), CF_EPARSE);
    put(msg + 12, "\2ab", 3);
    off = 12;
    assert_int_equal(dnswire_read_name(msg, 15, &off, out, &len), CF_EPARSE);
    off = 15;
    assert_int_equal(dnswire_read_name(msg, 15, &off, out, &len), CF_EPARSE);
    /* The reserved label types 01 and 10. */
    msg[12] = 0x41;
    off = 12;
    assert_int_equal(dnswire_read_name(msg, 20, &off, out, &len), CF_EPARSE);
    msg[12] = 0x81;
    off = 12;
    assert_int_equal(dnswire_read_name(msg, 20, &off, out, &len), CF_EPARSE);
}

static void test_read_name_limits(void **state)
{
    uint8_t msg[2048] = {0}, out[DNSWIRE_NAME_MAX];
    size_t off, len, n = 12, prev = 0;
    (void)state;

    /* Four 63-octet labels chained by pointers: 257 octets, refused. */
    for (int i = 0; i < 4; i++) {
        size_t here = n;
        msg[n++] = 63;
        memset(msg + n, 'x', 63);
        n += 63;
        if (i == 0) {
            msg[n++] = 0;
        } else {
            msg[n++] = (uint8_t)(0xc0 | (prev >> 8));
            msg[n++] = (uint8_t)prev;
        }
        prev = here;
    }
    off = prev;
    assert_int_equal(dnswire_read_name(msg, n, &off, out, &len), CF_EPARSE);
    /* Three of them are 193 octets, fine. */
    off = 12 + 65 + 66;
    assert_int_equal(dnswire_read_name(msg, n, &off, out, &len), 0);
    assert_int_equal(len, 193);

    /* A chain of pointers, each to the one before: 128 hops pass, 129 do not. */
    memset(msg, 0, sizeof(msg));
    msg[12] = 0;
    n = 13;
    prev = 12;
    for (int i = 0; i < 129; i++) {
        msg[n] = (uint8_t)(0xc0 | (prev >> 8));
        msg[n + 1] = (uint8_t)prev;
        prev = n;
        n += 2;
    }
    off = prev - 2; /* 128 pointers */
    assert_int_equal(dnswire_read_name(msg, n, &off, out, &len), 0);
    assert_int_equal(len, 1);
    off = prev; /* 129 pointers */
    assert_int_equal(dnswire_read_name(msg, n, &off, out, &len), CF_EPARSE);
}

/* ---- Parsing ---- */

/* A query for "a." type A with one answer 192.0.2.1, built by hand. */
static const uint8_t small_answer[] = {
    0x00, 0x01, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, /* header */
    0x01, 'a',  0x00, 0x00, 0x01, 0x00, 0x01,                               /* question */
    0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x80, 0x00, 0x00, 0x10, 0x00, 0x04, /* rr */
    0xc0, 0x00, 0x02, 0x01};

static void test_parse_small(void **state)
{
    struct dnswire_msg m;
    uint8_t addr[16], pkt[64];
    (void)state;

    parse_ok(&m, small_answer, sizeof(small_answer));
    assert_int_equal(m.hdr.id, 1);
    assert_true(m.hdr.qr && m.hdr.rd && m.hdr.ra && !m.hdr.aa && !m.hdr.tc);
    assert_int_equal(m.qdcount, 1);
    assert_int_equal(m.ancount, 1);
    assert_int_equal(m.rr[0].section, DNSWIRE_SECTION_ANSWER);
    assert_int_equal(m.rr[0].ttl, 0); /* top bit set: RFC 2181 §8 */
    assert_int_equal(dnswire_rdata_a(&m.rr[0], addr), 0);
    assert_memory_equal(addr, "\xc0\x00\x02\x01", 4);
    assert_int_equal(dnswire_rdata_aaaa(&m.rr[0], addr), -EINVAL);
    assert_false(m.edns.present);
    dnswire_msg_cleanup(&m);

    /* Truncated anywhere: refused, never read past the end. */
    for (size_t n = 0; n < sizeof(small_answer); n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, small_answer, n);
        assert_parse_fails(copy, n);
        free(copy);
    }
    /* A trailing octet. */
    memcpy(pkt, small_answer, sizeof(small_answer));
    pkt[sizeof(small_answer)] = 0;
    assert_parse_fails(pkt, sizeof(small_answer) + 1);
    /* RDLENGTH past the end. */
    memcpy(pkt, small_answer, sizeof(small_answer));
    pkt[30] = 5;
    assert_parse_fails(pkt, sizeof(small_answer));
    /* An A record of 5 octets parses, but its decoder refuses it. */
    pkt[sizeof(small_answer)] = 9;
    assert_int_equal(dnswire_msg_parse(&m, pkt, sizeof(small_answer) + 1), 0);
    assert_int_equal(dnswire_rdata_a(&m.rr[0], addr), CF_EPARSE);
    dnswire_msg_cleanup(&m);
    /* Counts that cannot fit: 65535 answers in 35 octets. */
    memcpy(pkt, small_answer, sizeof(small_answer));
    pkt[6] = pkt[7] = 0xff;
    assert_parse_fails(pkt, sizeof(small_answer));
    pkt[6] = 0;
    pkt[7] = 2; /* two answers, one present */
    assert_parse_fails(pkt, sizeof(small_answer));
    pkt[7] = 1;
    pkt[5] = 2; /* two questions */
    assert_parse_fails(pkt, sizeof(small_answer));
    /* A question name with a label over 63 octets (0x40 is a reserved type). */
    memcpy(pkt, small_answer, sizeof(small_answer));
    pkt[12] = 0x40;
    assert_parse_fails(pkt, sizeof(small_answer));
    /* A forward pointer in the answer's owner. */
    memcpy(pkt, small_answer, sizeof(small_answer));
    pkt[20] = 0x20;
    assert_parse_fails(pkt, sizeof(small_answer));
    /* The header alone. */
    struct dnswire_header h;
    assert_int_equal(dnswire_header_parse(&h, small_answer, 11), CF_EPARSE);
    assert_int_equal(dnswire_header_parse(&h, small_answer, 12), 0);
    assert_int_equal(h.ancount, 1);
}

/* msg_with_additional builds small_answer's question plus one additional RR. */
static size_t msg_with_additional(uint8_t *pkt, const uint8_t *rr, size_t rrlen, int section)
{
    memcpy(pkt, small_answer, 19);
    pkt[7] = section == DNSWIRE_SECTION_ANSWER;
    pkt[11] = section == DNSWIRE_SECTION_ADDITIONAL;
    memcpy(pkt + 19, rr, rrlen);
    return 19 + rrlen;
}

static void test_parse_opt(void **state)
{
    struct dnswire_msg m;
    uint8_t pkt[128];
    size_t n;
    (void)state;

    /* OPT: payload 4096, extended rcode 1 (BADVERS), version 0, DO, one option. */
    static const uint8_t opt[] = {0, 0, 41, 0x10, 0, 1, 0, 0x80, 0, 0, 6, 0, 10, 0, 2, 0xab, 0xcd};
    n = msg_with_additional(pkt, opt, sizeof(opt), DNSWIRE_SECTION_ADDITIONAL);
    parse_ok(&m, pkt, n);
    assert_true(m.edns.present);
    assert_int_equal(m.edns.udp_size, 4096);
    assert_int_equal(m.edns.version, 0);
    assert_int_equal(m.edns.do_bit, 1);
    assert_int_equal(m.edns.options_len, 6);
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_BADVERS);
    assert_string_equal(dnswire_rcode_str(m.hdr.rcode), "BADVERS");
    assert_int_equal(dnswire_udp_limit(&m, 1232), 1232);
    assert_int_equal(dnswire_udp_limit(&m, 65535), 4096);
    dnswire_msg_cleanup(&m);

    /* In the answer section: refused. */
    n = msg_with_additional(pkt, opt, sizeof(opt), DNSWIRE_SECTION_ANSWER);
    assert_parse_fails(pkt, n);
    /* Owned by a name other than the root. */
    static const uint8_t opt_owner[] = {1, 'x', 0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0};
    n = msg_with_additional(pkt, opt_owner, sizeof(opt_owner), DNSWIRE_SECTION_ADDITIONAL);
    assert_parse_fails(pkt, n);
    /* An option running past the RDATA. */
    static const uint8_t opt_bad[] = {0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 6, 0, 10, 0, 3, 0xab, 0xcd};
    n = msg_with_additional(pkt, opt_bad, sizeof(opt_bad), DNSWIRE_SECTION_ADDITIONAL);
    assert_parse_fails(pkt, n);
    static const uint8_t opt_short[] = {0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 3, 0, 10, 0};
    n = msg_with_additional(pkt, opt_short, sizeof(opt_short), DNSWIRE_SECTION_ADDITIONAL);
    assert_parse_fails(pkt, n);
    /* Two OPT records. */
    static const uint8_t opt_small[] = {0, 0, 41, 1, 0, 0, 0, 0, 0, 0, 0};
    n = msg_with_additional(pkt, opt_small, sizeof(opt_small), DNSWIRE_SECTION_ADDITIONAL);
    memcpy(pkt + n, opt_small, sizeof(opt_small));
    pkt[11] = 2;
    assert_parse_fails(pkt, n + sizeof(opt_small));
    /* A small payload size reads as 512 (RFC 6891 §6.2.5). */
    n = msg_with_additional(pkt, opt_small, sizeof(opt_small), DNSWIRE_SECTION_ADDITIONAL);
    parse_ok(&m, pkt, n);
    assert_int_equal(m.edns.udp_size, 256);
    assert_int_equal(dnswire_udp_limit(&m, 4096), 512);
    dnswire_msg_cleanup(&m);
    /* No EDNS: 512. */
    parse_ok(&m, small_answer, sizeof(small_answer));
    assert_int_equal(dnswire_udp_limit(&m, 4096), 512);
    dnswire_msg_cleanup(&m);
}

static void test_parse_tsig_position(void **state)
{
    struct dnswire_msg m;
    uint8_t pkt[256];
    size_t n;
    (void)state;

    /* knotd's signed answer: TSIG last, class ANY. */
    parse_ok(&m, knot_update_resp, sizeof(knot_update_resp));
    assert_true(m.has_tsig);
    assert_int_equal(m.tsig_rr_off, 27);
    dnswire_msg_cleanup(&m);
    /* The same TSIG record followed by an A record: refused. */
    n = sizeof(knot_update_resp);
    memcpy(pkt, knot_update_resp, n);
    static const uint8_t a_rr[] = {0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4};
    memcpy(pkt + n, a_rr, sizeof(a_rr));
    pkt[11] = 2;
    assert_parse_fails(pkt, n + sizeof(a_rr));
    /* A TSIG record of class IN: refused. */
    memcpy(pkt, knot_update_resp, n);
    pkt[27 + 11 + 3] = 1;
    assert_parse_fails(pkt, n);
}

/* ---- Real answers captured from knotd ---- */

static void test_knot_answers(void **state)
{
    struct dnswire_msg m;
    uint8_t name[DNSWIRE_NAME_MAX], exp[DNSWIRE_NAME_MAX], addr[16], txt[64];
    size_t len, elen;
    struct dnswire_soa soa;
    (void)state;

    /* www.acme.test A: CNAME ns1.acme.test, then ns1's A. */
    parse_ok(&m, knot_resp_www_a, sizeof(knot_resp_www_a));
    assert_int_equal(m.hdr.id, 0x9d5c);
    assert_true(m.hdr.qr && m.hdr.aa && !m.hdr.rd);
    assert_int_equal(m.hdr.rcode, 0);
    assert_int_equal(m.qdcount, 1);
    elen = wire(exp, "www.acme.test");
    assert_true(dnswire_name_equal(m.qd[0].name, m.qd[0].name_len, exp, elen));
    assert_int_equal(m.qd[0].qtype, DNSWIRE_TYPE_A);
    assert_int_equal(m.ancount, 2);
    assert_int_equal(m.rr[0].type, DNSWIRE_TYPE_CNAME);
    assert_int_equal(m.rr[0].ttl, 300);
    assert_true(dnswire_name_equal(m.rr[0].name, m.rr[0].name_len, exp, elen));
    assert_int_equal(dnswire_rdata_name(&m, &m.rr[0], name, &len), 0);
    elen = wire(exp, "ns1.acme.test");
    assert_true(dnswire_name_equal(name, len, exp, elen));
    assert_int_equal(m.rr[1].type, DNSWIRE_TYPE_A);
    assert_true(dnswire_name_equal(m.rr[1].name, m.rr[1].name_len, exp, elen));
    assert_int_equal(dnswire_rdata_a(&m.rr[1], addr), 0);
    assert_memory_equal(addr, "\x7f\0\0\1", 4);
    assert_int_equal(m.rr[2].type, DNSWIRE_TYPE_OPT);
    assert_int_equal(m.rr[2].section, DNSWIRE_SECTION_ADDITIONAL);
    assert_true(m.edns.present);
    assert_int_equal(m.edns.udp_size, 1232);
    assert_int_equal(m.edns.do_bit, 0);
    assert_int_equal(dnswire_rdata_name(&m, &m.rr[1], name, &len), -EINVAL);
    dnswire_msg_cleanup(&m);

    /* txt.acme.test TXT "hello world" "second string". */
    parse_ok(&m, knot_resp_txt, sizeof(knot_resp_txt));
    assert_int_equal(m.ancount, 1);
    assert_int_equal(dnswire_rdata_txt(&m.rr[0], txt, sizeof(txt), &len), 0);
    assert_int_equal(len, 24);
    assert_memory_equal(txt, "hello worldsecond string", 24);
    assert_int_equal(dnswire_rdata_txt(&m.rr[0], txt, 23, &len), CF_ETOOBIG);
    dnswire_msg_cleanup(&m);

    /* nope.acme.test: NXDOMAIN with the zone's SOA. */
    parse_ok(&m, knot_resp_nxdomain, sizeof(knot_resp_nxdomain));
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_NXDOMAIN);
    assert_string_equal(dnswire_rcode_str(m.hdr.rcode), "NXDOMAIN");
    assert_int_equal(m.ancount, 0);
    assert_int_equal(m.nscount, 1);
    assert_int_equal(m.rr[0].section, DNSWIRE_SECTION_AUTHORITY);
    assert_int_equal(m.rr[0].ttl, 60);
    assert_int_equal(dnswire_rdata_soa(&m, &m.rr[0], &soa), 0);
    elen = wire(exp, "ns1.acme.test");
    assert_true(dnswire_name_equal(soa.mname, soa.mname_len, exp, elen));
    elen = wire(exp, "hostmaster.acme.test");
    assert_true(dnswire_name_equal(soa.rname, soa.rname_len, exp, elen));
    assert_int_equal(soa.serial, 1);
    assert_int_equal(soa.refresh, 3600);
    assert_int_equal(soa.retry, 600);
    assert_int_equal(soa.expire, 86400);
    assert_int_equal(soa.minimum, 60);
    dnswire_msg_cleanup(&m);

    /* acme.test NS with DO: the NS in the answer, glue A and AAAA. */
    parse_ok(&m, knot_resp_ns, sizeof(knot_resp_ns));
    assert_int_equal(m.ancount, 1);
    assert_int_equal(m.arcount, 3);
    assert_int_equal(dnswire_rdata_name(&m, &m.rr[0], name, &len), 0);
    elen = wire(exp, "ns1.acme.test");
    assert_true(dnswire_name_equal(name, len, exp, elen));
    assert_int_equal(m.rr[2].type, DNSWIRE_TYPE_AAAA);
    assert_int_equal(m.rr[2].section, DNSWIRE_SECTION_ADDITIONAL);
    assert_int_equal(dnswire_rdata_aaaa(&m.rr[2], addr), 0);
    assert_memory_equal(addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16);
    assert_int_equal(m.edns.do_bit, 1);
    dnswire_msg_cleanup(&m);
}

/*
 * test_mutations flips every octet of every captured packet to a few values
 * and cuts it at every length: the parser and decoders must refuse or
 * accept, never read outside the buffer (valgrind and ASan watch that).
 */
static void test_mutations(void **state)
{
    static const struct {
        const uint8_t *p;
        size_t n;
    } pk[] = {
        {knot_resp_www_a, sizeof(knot_resp_www_a)},
        {knot_resp_txt, sizeof(knot_resp_txt)},
        {knot_resp_nxdomain, sizeof(knot_resp_nxdomain)},
        {knot_resp_ns, sizeof(knot_resp_ns)},
        {knsupdate_req, sizeof(knsupdate_req)},
        {knot_update_resp, sizeof(knot_update_resp)},
    };
    static const uint8_t vals[] = {0x00, 0x01, 0x3f, 0x40, 0x7f, 0xc0, 0xff};
    (void)state;

    for (size_t i = 0; i < sizeof(pk) / sizeof(pk[0]); i++) {
        for (size_t cut = 0; cut < pk[i].n; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, pk[i].p, cut);
            assert_parse_fails(copy, cut);
            free(copy);
        }
        for (size_t pos = 0; pos < pk[i].n; pos++) {
            for (size_t v = 0; v < sizeof(vals); v++) {
                struct dnswire_msg m;
                uint8_t *copy = malloc(pk[i].n);
                memcpy(copy, pk[i].p, pk[i].n);
                copy[pos] = vals[v];
                if (dnswire_msg_parse(&m, copy, pk[i].n) == 0) {
                    decode_all(&m);
                    dnswire_msg_cleanup(&m);
                }
                free(copy);
            }
        }
    }
}

/* dnswire_msg_parse_buf: the caller's storage when the records fit, the heap when not. */
static void test_parse_buf(void **state)
{
    uint8_t buf[2048], owner[DNSWIRE_NAME_MAX];
    size_t olen = wire(owner, "www.Example.test");
    (void)state;
    for (int n = 1; n <= 12; n += 11) {
        struct dnswire_writer w;
        struct dnswire_header h = {.id = 7, .qr = 1, .aa = 1};
        dnswire_writer_init(&w, buf, sizeof(buf));
        assert_int_equal(dnswire_write_header(&w, &h), 0);
        assert_int_equal(dnswire_write_question(&w, owner, olen, DNSWIRE_TYPE_A, DNSWIRE_CLASS_IN),
                         0);
        for (int i = 0; i < n; i++) {
            struct dnswire_rdata rd = {.type = DNSWIRE_TYPE_A};
            rd.u.a[0] = 192;
            rd.u.a[3] = (uint8_t)i;
            assert_int_equal(dnswire_write_rr(&w, DNSWIRE_SECTION_ANSWER, owner, olen,
                                              DNSWIRE_CLASS_IN, 60, &rd),
                             0);
        }
        assert_int_equal(dnswire_write_opt(&w, 1232, 0), 0);
        struct dnswire_msg a, b;
        struct dnswire_msg_buf mb;
        memset(&mb, 0xa5, sizeof(mb)); /* garbage: the parser must write what it uses */
        assert_int_equal(dnswire_msg_parse(&a, buf, w.len), 0);
        assert_int_equal(dnswire_msg_parse_buf(&b, buf, w.len, &mb), 0);
        assert_int_equal(b.borrowed, n + 1 <= DNSWIRE_MSG_BUF_RR);
        if (b.borrowed) {
            assert_ptr_equal(b.rr, mb.rr);
            assert_ptr_equal(b.qd, mb.qd);
        }
        assert_int_equal(b.qdcount, 1);
        assert_int_equal(b.qd[0].qtype, DNSWIRE_TYPE_A);
        assert_true(dnswire_name_equal(b.qd[0].name, b.qd[0].name_len, owner, olen));
        assert_int_equal(b.ancount, n);
        assert_int_equal(b.arcount, 1);
        assert_true(b.edns.present);
        for (size_t i = 0; i < (size_t)n + 1; i++) {
            assert_int_equal(a.rr[i].type, b.rr[i].type);
            assert_int_equal(a.rr[i].class, b.rr[i].class);
            assert_int_equal(a.rr[i].ttl, b.rr[i].ttl);
            assert_int_equal(a.rr[i].rdlen, b.rr[i].rdlen);
            assert_int_equal(a.rr[i].section, b.rr[i].section);
            assert_int_equal(a.rr[i].name_len, b.rr[i].name_len);
            assert_memory_equal(a.rr[i].name, b.rr[i].name, a.rr[i].name_len);
            assert_ptr_equal(a.rr[i].rdata, b.rr[i].rdata);
        }
        dnswire_msg_cleanup(&a);
        dnswire_msg_cleanup(&b);
        assert_null(b.rr);
        /* Cut short: refused, and nothing to release. */
        assert_int_equal(dnswire_msg_parse_buf(&b, buf, w.len - 3, &mb), CF_EPARSE);
        dnswire_msg_cleanup(&b);
    }
}

/* ---- Writer ---- */

static void test_round_trip(void **state)
{
    uint8_t buf[4096], owner[DNSWIRE_NAME_MAX], target[DNSWIRE_NAME_MAX], got[DNSWIRE_NAME_MAX];
    uint8_t dname[DNSWIRE_NAME_MAX], long_txt[600], txt[700], addr[16];
    size_t olen, tlen, dlen, glen, len;
    struct dnswire_writer w;
    struct dnswire_header h = {
        .id = 0xbeef, .qr = 1, .opcode = 0, .aa = 1, .rd = 1, .cd = 1, .rcode = 3};
    struct dnswire_soa soa = {
        .serial = 2024010101, .refresh = 7200, .retry = 900, .expire = 1209600, .minimum = 300};
    struct dnswire_msg m;
    (void)state;

    olen = wire(owner, "Host.Acme.Example");
    tlen = wire(target, "ns1.acme.example");
    dlen = wire(dname, "other.acme.example");
    soa.mname_len = wire(soa.mname, "ns1.acme.example");
    soa.rname_len = wire(soa.rname, "hostmaster.acme.example");
    for (size_t i = 0; i < sizeof(long_txt); i++)
        long_txt[i] = (uint8_t)('a' + i % 26);

    dnswire_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(dnswire_write_header(&w, &h), 0);
    assert_int_equal(dnswire_write_question(&w, owner, olen, DNSWIRE_TYPE_ANY, DNSWIRE_CLASS_IN),
                     0);
    struct dnswire_rdata rd[10];
    memset(rd, 0, sizeof(rd));
    rd[0].type = DNSWIRE_TYPE_A;
    memcpy(rd[0].u.a, "\xc0\x00\x02\x01", 4);
    rd[1].type = DNSWIRE_TYPE_AAAA;
    memcpy(rd[1].u.aaaa, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    rd[2].type = DNSWIRE_TYPE_NS;
    rd[2].u.name.wire = target;
    rd[2].u.name.len = tlen;
    rd[3].type = DNSWIRE_TYPE_CNAME;
    rd[3].u.name.wire = target;
    rd[3].u.name.len = tlen;
    rd[4].type = DNSWIRE_TYPE_SOA;
    rd[4].u.soa = &soa;
    rd[5].type = DNSWIRE_TYPE_TXT;
    rd[5].u.txt.data = (const uint8_t *)"v=spf1 -all";
    rd[5].u.txt.len = 11;
    rd[6].type = DNSWIRE_TYPE_TXT;
    rd[6].u.txt.data = long_txt;
    rd[6].u.txt.len = sizeof(long_txt);
    rd[7].type = DNSWIRE_TYPE_TXT; /* empty value: one empty string */
    rd[8].type = DNSWIRE_TYPE_DNAME;
    rd[8].u.name.wire = dname;
    rd[8].u.name.len = dlen;
    rd[9].type = DNSWIRE_TYPE_PTR;
    rd[9].u.name.wire = dname;
    rd[9].u.name.len = dlen;
    for (int i = 0; i < 10; i++) {
        enum dnswire_section sec = i < 4   ? DNSWIRE_SECTION_ANSWER
                                   : i < 8 ? DNSWIRE_SECTION_AUTHORITY
                                           : DNSWIRE_SECTION_ADDITIONAL;
        assert_int_equal(
            dnswire_write_rr(&w, sec, owner, olen, DNSWIRE_CLASS_IN, 60 + (uint32_t)i, &rd[i]), 0);
    }
    assert_int_equal(dnswire_write_opt(&w, 1232, 1), 0);

    parse_ok(&m, buf, w.len);
    assert_int_equal(m.hdr.id, 0xbeef);
    assert_true(m.hdr.qr && m.hdr.aa && m.hdr.rd && m.hdr.cd && !m.hdr.ra && !m.hdr.tc);
    assert_int_equal(m.hdr.rcode, 3);
    assert_int_equal(m.qdcount, 1);
    assert_int_equal(m.ancount, 4);
    assert_int_equal(m.nscount, 4);
    assert_int_equal(m.arcount, 3);
    assert_true(m.edns.present);
    assert_int_equal(m.edns.udp_size, 1232);
    assert_int_equal(m.edns.do_bit, 1);
    for (int i = 0; i < 10; i++) {
        const struct dnswire_rr *r = &m.rr[i];
        assert_int_equal(r->type, rd[i].type);
        assert_int_equal(r->class, DNSWIRE_CLASS_IN);
        assert_int_equal(r->ttl, 60 + i);
        /* The owner keeps the case it was written with. */
        assert_int_equal(r->name_len, olen);
        assert_memory_equal(r->name, owner, olen);
    }
    assert_int_equal(dnswire_rdata_a(&m.rr[0], addr), 0);
    assert_memory_equal(addr, rd[0].u.a, 4);
    assert_int_equal(dnswire_rdata_aaaa(&m.rr[1], addr), 0);
    assert_memory_equal(addr, rd[1].u.aaaa, 16);
    for (int i = 2; i < 4; i++) {
        assert_int_equal(dnswire_rdata_name(&m, &m.rr[i], got, &glen), 0);
        assert_true(dnswire_name_equal(got, glen, target, tlen));
    }
    struct dnswire_soa soa2;
    assert_int_equal(dnswire_rdata_soa(&m, &m.rr[4], &soa2), 0);
    assert_true(dnswire_name_equal(soa2.mname, soa2.mname_len, soa.mname, soa.mname_len));
    assert_true(dnswire_name_equal(soa2.rname, soa2.rname_len, soa.rname, soa.rname_len));
    assert_int_equal(soa2.serial, soa.serial);
    assert_int_equal(soa2.refresh, soa.refresh);
    assert_int_equal(soa2.retry, soa.retry);
    assert_int_equal(soa2.expire, soa.expire);
    assert_int_equal(soa2.minimum, soa.minimum);
    assert_int_equal(dnswire_rdata_txt(&m.rr[5], txt, sizeof(txt), &len), 0);
    assert_int_equal(len, 11);
    assert_memory_equal(txt, "v=spf1 -all", 11);
    /* 600 octets: strings of 255, 255 and 90. */
    assert_int_equal(m.rr[6].rdlen, 603);
    assert_int_equal(m.rr[6].rdata[0], 255);
    assert_int_equal(m.rr[6].rdata[256], 255);
    assert_int_equal(m.rr[6].rdata[512], 90);
    assert_int_equal(dnswire_rdata_txt(&m.rr[6], txt, sizeof(txt), &len), 0);
    assert_int_equal(len, sizeof(long_txt));
    assert_memory_equal(txt, long_txt, sizeof(long_txt));
    assert_int_equal(m.rr[7].rdlen, 1);
    assert_int_equal(dnswire_rdata_txt(&m.rr[7], txt, sizeof(txt), &len), 0);
    assert_int_equal(len, 0);
    /* DNAME: decoded, and written whole (RFC 6672 §2.5), unlike the PTR after it. */
    assert_int_equal(dnswire_rdata_name(&m, &m.rr[8], got, &glen), 0);
    assert_true(dnswire_name_equal(got, glen, dname, dlen));
    assert_int_equal(m.rr[8].rdlen, dlen);
    assert_int_equal(dnswire_rdata_name(&m, &m.rr[9], got, &glen), 0);
    assert_true(dnswire_name_equal(got, glen, dname, dlen));
    assert_int_equal(m.rr[9].rdlen, 2);
    /* Every owner after the question is a pointer. */
    for (int i = 0; i < 11; i++)
        assert_int_equal(buf[m.rr[i].rdata_off - 10 - 2] & 0xc0, i == 10 ? 0 : 0xc0);
    dnswire_msg_cleanup(&m);
}

static void test_writer_errors(void **state)
{
    uint8_t buf[512], name[DNSWIRE_NAME_MAX];
    size_t nlen = wire(name, "a.example");
    struct dnswire_writer w;
    struct dnswire_header h = {.id = 7};
    struct dnswire_rdata rd = {.type = DNSWIRE_TYPE_A};
    struct dnswire_msg m;
    (void)state;

    /* Nothing before the header. */
    dnswire_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(dnswire_write_question(&w, name, nlen, 1, 1), -EINVAL);
    assert_int_equal(dnswire_write_rr(&w, DNSWIRE_SECTION_ANSWER, name, nlen, 1, 0, &rd), -EINVAL);
    assert_int_equal(dnswire_writer_truncate(&w), -EINVAL);
    dnswire_writer_init(&w, buf, 11);
    assert_int_equal(dnswire_write_header(&w, &h), CF_ETOOBIG);

    /* Sections in order only; invalid names refused. */
    dnswire_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(dnswire_write_header(&w, &h), 0);
    assert_int_equal(dnswire_write_question(&w, name, nlen - 1, 1, 1), -EINVAL);
    assert_int_equal(dnswire_write_question(&w, name, nlen, 1, 1), 0);
    assert_int_equal(
        dnswire_write_rr(&w, DNSWIRE_SECTION_QUESTION, name, nlen, DNSWIRE_CLASS_IN, 0, &rd),
        -EINVAL);
    assert_int_equal(
        dnswire_write_rr(&w, DNSWIRE_SECTION_AUTHORITY, name, nlen, DNSWIRE_CLASS_IN, 0, &rd), 0);
    assert_int_equal(
        dnswire_write_rr(&w, DNSWIRE_SECTION_ANSWER, name, nlen, DNSWIRE_CLASS_IN, 0, &rd),
        -EINVAL);
    assert_int_equal(dnswire_write_question(&w, name, nlen, 1, 1), -EINVAL);
    struct dnswire_rdata bad = {.type = DNSWIRE_TYPE_CNAME};
    bad.u.name.wire = (const uint8_t *)"\3ab";
    bad.u.name.len = 3;
    size_t before = w.len;
    assert_int_equal(
        dnswire_write_rr(&w, DNSWIRE_SECTION_AUTHORITY, name, nlen, DNSWIRE_CLASS_IN, 0, &bad),
        -EINVAL);
    assert_int_equal(w.len, before);
    /* A TXT value too long for one record. */
    uint8_t *huge = calloc(1, 70000);
    struct dnswire_rdata big = {.type = DNSWIRE_TYPE_TXT};
    big.u.txt.data = huge;
    big.u.txt.len = 65400;
    uint8_t *bigbuf = malloc(80000);
    dnswire_writer_init(&w, bigbuf, 80000);
    assert_int_equal(dnswire_write_header(&w, &h), 0);
    assert_int_equal(
        dnswire_write_rr(&w, DNSWIRE_SECTION_ANSWER, name, nlen, DNSWIRE_CLASS_IN, 0, &big),
        -EINVAL);
    assert_int_equal(w.len, 12);
    big.u.txt.len = 65000;
    assert_int_equal(
        dnswire_write_rr(&w, DNSWIRE_SECTION_ANSWER, name, nlen, DNSWIRE_CLASS_IN, 0, &big), 0);
    parse_ok(&m, bigbuf, w.len);
    assert_int_equal(m.rr[0].rdlen, 65000 + 255);
    dnswire_msg_cleanup(&m);
    free(bigbuf);
    free(huge);
}

/*
 * test_writer_truncate fills a 512-octet UDP answer until it runs out of
 * room, then truncates it the way a responder does.
 */
static void test_writer_truncate(void **state)
{
    uint8_t buf[512], name[DNSWIRE_NAME_MAX], qbuf[512];
    size_t nlen = wire(name, "_acme-challenge.www.example.com"), qlen;
    struct dnswire_writer w;
    struct dnswire_msg q, m;
    int rc = 0, written = 0;
    (void)state;

    /* The query, as a client sends it. */
    assert_int_equal(dnswire_build_query(qbuf, sizeof(qbuf), &qlen, 99,
                                         "_acme-challenge.www.example.com", DNSWIRE_TYPE_TXT, 0,
                                         1232),
                     0);
    parse_ok(&q, qbuf, qlen);
    size_t limit = dnswire_udp_limit(&q, 512);
    assert_int_equal(limit, 512);

    struct dnswire_header h = {.id = q.hdr.id, .qr = 1, .aa = 1};
    dnswire_writer_init(&w, buf, limit);
    assert_int_equal(dnswire_write_header(&w, &h), 0);
    assert_int_equal(
        dnswire_write_question(&w, q.qd[0].name, q.qd[0].name_len, q.qd[0].qtype, q.qd[0].qclass),
        0);
    uint8_t value[43];
    memset(value, 'k', sizeof(value));
    struct dnswire_rdata rd = {.type = DNSWIRE_TYPE_TXT};
    rd.u.txt.data = value;
    rd.u.txt.len = sizeof(value);
    while (rc == 0) {
        size_t before = w.len;
        rc = dnswire_write_rr(&w, DNSWIRE_SECTION_ANSWER, name, nlen, DNSWIRE_CLASS_IN, 60, &rd);
        if (rc == 0)
            written++;
        else
            assert_int_equal(w.len, before); /* the failed write left nothing */
    }
    assert_int_equal(rc, CF_ETOOBIG);
    assert_true(written > 5);
    /* What was written before the failure is still a whole message. */
    parse_ok(&m, buf, w.len);
    assert_int_equal(m.ancount, written);
    dnswire_msg_cleanup(&m);

    assert_int_equal(dnswire_writer_truncate(&w), 0);
    assert_int_equal(dnswire_write_opt(&w, 1232, 0), 0);
    parse_ok(&m, buf, w.len);
    assert_true(m.hdr.tc);
    assert_true(m.hdr.qr && m.hdr.aa);
    assert_int_equal(m.qdcount, 1);
    assert_int_equal(m.ancount, 0);
    assert_int_equal(m.arcount, 1);
    assert_true(m.edns.present);
    dnswire_msg_cleanup(&m);
    /* After truncation, compression still points only at the question. */
    assert_int_equal(
        dnswire_write_rr(&w, DNSWIRE_SECTION_ADDITIONAL, name, nlen, DNSWIRE_CLASS_IN, 60, &rd), 0);
    parse_ok(&m, buf, w.len);
    assert_int_equal(m.arcount, 2);
    dnswire_msg_cleanup(&m);
    dnswire_msg_cleanup(&q);
}

/* ---- Builders ---- */

static void test_build_query(void **state)
{
    uint8_t buf[512], expect[sizeof(kdig_query_www_a)];
    size_t len;
    struct dnswire_msg m;
    (void)state;

    /* kdig's query, less the AD bit kdig sets by default (RFC 6840 §5.7). */
    memcpy(expect, kdig_query_www_a, sizeof(expect));
    expect[3] &= (uint8_t)~0x20;
    assert_int_equal(dnswire_build_query(buf, sizeof(buf), &len, 0x9d5c, "WWW.acme.test.",
                                         DNSWIRE_TYPE_A, 0, 1232),
                     0);
    assert_int_equal(len, sizeof(expect));
    assert_memory_equal(buf, expect, len);

    /* And kdig's own query parses. */
    parse_ok(&m, kdig_query_www_a, sizeof(kdig_query_www_a));
    assert_false(m.hdr.qr);
    assert_false(m.hdr.rd);
    assert_true(m.hdr.ad);
    assert_int_equal(m.edns.udp_size, 1232);
    dnswire_msg_cleanup(&m);

    /* With RD and without EDNS. */
    assert_int_equal(
        dnswire_build_query(buf, sizeof(buf), &len, 1, "example.com", DNSWIRE_TYPE_NS, 1, 0), 0);
    assert_int_equal(len, 12 + 13 + 4);
    parse_ok(&m, buf, len);
    assert_true(m.hdr.rd);
    assert_false(m.edns.present);
    assert_int_equal(m.arcount, 0);
    dnswire_msg_cleanup(&m);

    assert_int_equal(dnswire_build_query(buf, sizeof(buf), &len, 1, "a..b", DNSWIRE_TYPE_A, 0, 0),
                     CF_EPARSE);
    assert_int_equal(dnswire_build_query(buf, 28, &len, 1, "example.com", DNSWIRE_TYPE_A, 0, 0),
                     CF_ETOOBIG);
    assert_int_equal(dnswire_build_query(buf, 29, &len, 1, "example.com", DNSWIRE_TYPE_A, 0, 1232),
                     CF_ETOOBIG);
}

static struct dnswire_tsig_key test_key(void)
{
    struct dnswire_tsig_key key;
    const char *reason;
    static const char text[] = "hmac-sha256:cf-update.:" TEST_SECRET_B64 "\n";
    assert_int_equal(dnswire_tsig_key_parse(&key, text, strlen(text), &reason), 0);
    return key;
}

/* The two changes of knsupdate_req, built with this code. */
static size_t build_knsupdate_req(uint8_t *buf, size_t cap)
{
    uint8_t zone[DNSWIRE_NAME_MAX], n1[DNSWIRE_NAME_MAX], n2[DNSWIRE_NAME_MAX];
    size_t zl = wire(zone, "acme.test"), l1 = wire(n1, "_acme-challenge.h1.acme.test"),
           l2 = wire(n2, "old.acme.test"), len = 0;
    struct dnswire_update ch[2];
    memset(ch, 0, sizeof(ch));
    ch[0].op = DNSWIRE_UPDATE_ADD;
    ch[0].name = n1;
    ch[0].name_len = l1;
    ch[0].ttl = 60;
    ch[0].rdata.type = DNSWIRE_TYPE_TXT;
    ch[0].rdata.u.txt.data = (const uint8_t *)"abc";
    ch[0].rdata.u.txt.len = 3;
    ch[1].op = DNSWIRE_UPDATE_DELETE_RR;
    ch[1].name = n2;
    ch[1].name_len = l2;
    ch[1].ttl = 300; /* ignored: §2.5.4 says 0 */
    ch[1].rdata.type = DNSWIRE_TYPE_A;
    memcpy(ch[1].rdata.u.a, "\xc0\x00\x02\x01", 4);
    assert_int_equal(dnswire_build_update(buf, cap, &len, 0x4cf6, zone, zl, ch, 2), 0);
    return len;
}

/*
 * test_update_matches_knsupdate: the UPDATE knsupdate signed, rebuilt and
 * signed by this code at the same time, is the same octets: an independent
 * check of the RFC 2136 layout and of the RFC 8945 MAC.
 */
static void test_update_matches_knsupdate(void **state)
{
    struct dnswire_tsig_key key = test_key();
    struct dnswire_tsig_mac mac;
    uint8_t buf[512];
    size_t len = build_knsupdate_req(buf, sizeof(buf));
    struct dnswire_msg m;
    (void)state;

    assert_int_equal(dnswire_tsig_sign(&key, buf, sizeof(buf), &len, 1795883423, NULL, &mac), 0);
    assert_int_equal(len, sizeof(knsupdate_req));
    assert_memory_equal(buf, knsupdate_req, len);
    assert_int_equal(mac.len, 32);
    assert_int_equal(mac.time_signed, 1795883423);
    assert_memory_equal(mac.mac, knsupdate_req + len - 6 - 32, 32);

    /* Its sections, as an UPDATE. */
    parse_ok(&m, knsupdate_req, sizeof(knsupdate_req));
    assert_int_equal(m.hdr.opcode, DNSWIRE_OPCODE_UPDATE);
    assert_int_equal(m.qd[0].qtype, DNSWIRE_TYPE_SOA);
    assert_int_equal(m.nscount, 2);
    assert_int_equal(m.rr[0].class, DNSWIRE_CLASS_IN);
    assert_int_equal(m.rr[1].class, DNSWIRE_CLASS_NONE);
    assert_int_equal(m.rr[1].ttl, 0);
    dnswire_msg_cleanup(&m);

    /* A server verifies the request: no request MAC. */
    assert_int_equal(
        dnswire_tsig_verify(&key, NULL, knsupdate_req, sizeof(knsupdate_req), NULL, 1795883423), 0);
    dnswire_tsig_key_cleanup(&key);
}

static void test_update_knot_exchange(void **state)
{
    struct dnswire_tsig_key key = test_key(), other;
    struct dnswire_tsig_mac mac;
    uint8_t zone[DNSWIRE_NAME_MAX], n1[DNSWIRE_NAME_MAX], n2[DNSWIRE_NAME_MAX], buf[512];
    size_t zl = wire(zone, "acme.test"), l1 = wire(n1, "_acme-challenge.h1.acme.test"),
           l2 = wire(n2, "h2.acme.test"), len;
    const uint64_t t = 1795883439;
    uint16_t terr = 99;
    const char *reason;
    (void)state;

    /* The request knotd accepted: TXT and A added in one message. */
    struct dnswire_update ch[2];
    memset(ch, 0, sizeof(ch));
    ch[0].op = DNSWIRE_UPDATE_ADD;
    ch[0].name = n1;
    ch[0].name_len = l1;
    ch[0].ttl = 60;
    ch[0].rdata.type = DNSWIRE_TYPE_TXT;
    ch[0].rdata.u.txt.data = (const uint8_t *)"token-value-123";
    ch[0].rdata.u.txt.len = 15;
    ch[1].op = DNSWIRE_UPDATE_ADD;
    ch[1].name = n2;
    ch[1].name_len = l2;
    ch[1].ttl = 300;
    ch[1].rdata.type = DNSWIRE_TYPE_A;
    memcpy(ch[1].rdata.u.a, "\xc0\x00\x02\x07", 4);
    assert_int_equal(dnswire_build_update(buf, sizeof(buf), &len, 0x1234, zone, zl, ch, 2), 0);
    assert_int_equal(dnswire_tsig_sign(&key, buf, sizeof(buf), &len, t, NULL, &mac), 0);
    assert_int_equal(len, sizeof(knot_accepted_req));
    assert_memory_equal(buf, knot_accepted_req, len);

    /* knotd's answer verifies against the request's MAC, within the fudge. */
    assert_int_equal(
        dnswire_tsig_verify(&key, &terr, knot_update_resp, sizeof(knot_update_resp), &mac, t), 0);
    assert_int_equal(terr, 0);
    assert_int_equal(
        dnswire_tsig_verify(&key, &terr, knot_update_resp, sizeof(knot_update_resp), &mac, t + 300),
        0);
    assert_int_equal(
        dnswire_tsig_verify(&key, &terr, knot_update_resp, sizeof(knot_update_resp), &mac, t + 301),
        CF_EPROTO);
    assert_int_equal(
        dnswire_tsig_verify(&key, &terr, knot_update_resp, sizeof(knot_update_resp), &mac, t - 301),
        CF_EPROTO);
    /* Without the request MAC, or with another one, it does not. */
    assert_int_equal(
        dnswire_tsig_verify(&key, &terr, knot_update_resp, sizeof(knot_update_resp), NULL, t),
        CF_EPROTO);
    struct dnswire_tsig_mac wrong = mac;
    wrong.mac[0] ^= 1;
    assert_int_equal(
        dnswire_tsig_verify(&key, &terr, knot_update_resp, sizeof(knot_update_resp), &wrong, t),
        CF_EPROTO);
    /* Any changed octet of the answer breaks it (the ID excepted: RFC 8945 §4.3.3). */
    for (size_t i = 2; i < sizeof(knot_update_resp); i++) {
        uint8_t copy[sizeof(knot_update_resp)];
        memcpy(copy, knot_update_resp, sizeof(copy));
        copy[i] ^= 0x01;
        assert_int_not_equal(dnswire_tsig_verify(&key, &terr, copy, sizeof(copy), &mac, t), 0);
    }
    uint8_t copy[sizeof(knot_update_resp)];
    memcpy(copy, knot_update_resp, sizeof(copy));
    copy[0] ^= 0xff; /* a forwarder changed the ID: the original ID is signed */
    assert_int_equal(dnswire_tsig_verify(&key, &terr, copy, sizeof(copy), &mac, t), 0);
    /* Another secret, or another key name. */
    static const char other_text[] = "cf-update.:b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0wMTIzNDU=";
    assert_int_equal(dnswire_tsig_key_parse(&other, other_text, strlen(other_text), &reason), 0);
    assert_int_equal(
        dnswire_tsig_verify(&other, &terr, knot_update_resp, sizeof(knot_update_resp), &mac, t),
        CF_EPROTO);
    other = key;
    other.name_len = wire(other.name, "another-key");
    assert_int_equal(
        dnswire_tsig_verify(&other, &terr, knot_update_resp, sizeof(knot_update_resp), &mac, t),
        CF_EPROTO);
    /* An unsigned answer. */
    assert_int_equal(
        dnswire_tsig_verify(&key, &terr, knot_resp_txt, sizeof(knot_resp_txt), &mac, t), CF_EPROTO);
    assert_int_equal(terr, 0);
    /* knotd's refusal of a wrong secret: NOTAUTH, BADSIG, no MAC. */
    assert_int_equal(
        dnswire_tsig_verify(&key, &terr, knot_badsig_resp, sizeof(knot_badsig_resp), &mac, t + 3),
        CF_EPROTO);
    assert_int_equal(terr, DNSWIRE_RCODE_BADSIG);
    struct dnswire_msg m;
    parse_ok(&m, knot_badsig_resp, sizeof(knot_badsig_resp));
    assert_int_equal(m.hdr.rcode, DNSWIRE_RCODE_NOTAUTH);
    dnswire_msg_cleanup(&m);
    /* Malformed TSIG RDATA: cut inside the MAC. */
    memcpy(copy, knot_update_resp, sizeof(copy));
    copy[27 + 11 + 9] -= 1; /* RDLENGTH one short */
    assert_int_equal(dnswire_tsig_verify(&key, &terr, copy, sizeof(copy) - 1, &mac, t), CF_EPARSE);
    dnswire_tsig_key_cleanup(&key);
}

static void test_tsig_sign_verify(void **state)
{
    struct dnswire_tsig_key key = test_key();
    struct dnswire_tsig_mac req_mac, resp_mac;
    uint8_t q[512], r[512];
    size_t qlen, rlen, before;
    uint16_t terr;
    struct dnswire_writer w;
    struct dnswire_msg m;
    (void)state;

    assert_int_equal(
        dnswire_build_query(q, sizeof(q), &qlen, 77, "acme.test", DNSWIRE_TYPE_SOA, 0, 1232), 0);
    before = qlen;
    assert_int_equal(dnswire_tsig_sign(&key, q, sizeof(q), &qlen, 1700000000, NULL, &req_mac), 0);
    assert_int_equal(qlen, before + 11 + 10 + 13 + 10 + 32 + 6);
    parse_ok(&m, q, qlen);
    assert_true(m.has_tsig);
    assert_int_equal(m.arcount, 2);
    dnswire_msg_cleanup(&m);
    assert_int_equal(dnswire_tsig_verify(&key, &terr, q, qlen, NULL, 1700000100), 0);

    /* A response signed over the request's MAC (RFC 8945 §5.3). */
    struct dnswire_header h = {.id = 77, .qr = 1, .aa = 1};
    dnswire_writer_init(&w, r, sizeof(r));
    assert_int_equal(dnswire_write_header(&w, &h), 0);
    assert_int_equal(dnswire_write_question(&w, key.name, key.name_len, 6, 1), 0);
    rlen = w.len;
    assert_int_equal(dnswire_tsig_sign(&key, r, sizeof(r), &rlen, 1700000001, &req_mac, &resp_mac),
                     0);
    assert_int_equal(dnswire_tsig_verify(&key, &terr, r, rlen, &req_mac, 1700000001), 0);
    assert_int_equal(dnswire_tsig_verify(&key, &terr, r, rlen, NULL, 1700000001), CF_EPROTO);

    /* No room for the TSIG record. */
    rlen = w.len;
    assert_int_equal(dnswire_tsig_sign(&key, r, rlen + 80, &rlen, 1, NULL, NULL), CF_ETOOBIG);
    assert_int_equal(rlen, w.len);
    assert_int_equal(dnswire_tsig_sign(&key, r, sizeof(r), &rlen, 1, NULL, NULL), 0);
    /* Not a message. */
    rlen = 5;
    assert_int_equal(dnswire_tsig_sign(&key, r, sizeof(r), &rlen, 1, NULL, NULL), CF_EPARSE);
    dnswire_tsig_key_cleanup(&key);
}

static void test_build_update(void **state)
{
    uint8_t zone[DNSWIRE_NAME_MAX], name[DNSWIRE_NAME_MAX], out[DNSWIRE_NAME_MAX], buf[512];
    size_t zl = wire(zone, "acme.test"), nl = wire(name, "X.acme.test"), len;
    struct dnswire_update ch[4];
    struct dnswire_msg m;
    (void)state;

    memset(ch, 0, sizeof(ch));
    for (int i = 0; i < 4; i++) {
        ch[i].name = name;
        ch[i].name_len = nl;
        ch[i].rdata.type = DNSWIRE_TYPE_TXT;
        ch[i].rdata.u.txt.data = (const uint8_t *)"v";
        ch[i].rdata.u.txt.len = 1;
    }
    ch[0].op = DNSWIRE_UPDATE_DELETE_RRSET;
    ch[1].op = DNSWIRE_UPDATE_ADD;
    ch[1].ttl = 30;
    ch[2].op = DNSWIRE_UPDATE_DELETE_RR;
    ch[3].op = DNSWIRE_UPDATE_DELETE_NAME;
    assert_int_equal(dnswire_build_update(buf, sizeof(buf), &len, 5, zone, zl, ch, 4), 0);
    /* Not parse_ok: the empty TXT RDATA of a deletion is no TXT record to decode. */
    assert_int_equal(dnswire_msg_parse(&m, buf, len), 0);
    assert_int_equal(m.hdr.opcode, DNSWIRE_OPCODE_UPDATE);
    assert_false(m.hdr.qr);
    assert_int_equal(m.qdcount, 1);
    assert_true(dnswire_name_equal(m.qd[0].name, m.qd[0].name_len, zone, zl));
    assert_int_equal(m.qd[0].qtype, DNSWIRE_TYPE_SOA);
    assert_int_equal(m.qd[0].qclass, DNSWIRE_CLASS_IN);
    assert_int_equal(m.ancount, 0);
    assert_int_equal(m.nscount, 4);
    /* §2.5.2: ANY, TTL 0, no RDATA. */
    assert_int_equal(m.rr[0].class, DNSWIRE_CLASS_ANY);
    assert_int_equal(m.rr[0].type, DNSWIRE_TYPE_TXT);
    assert_int_equal(m.rr[0].ttl, 0);
    assert_int_equal(m.rr[0].rdlen, 0);
    /* §2.5.1: IN, TTL, RDATA. */
    assert_int_equal(m.rr[1].class, DNSWIRE_CLASS_IN);
    assert_int_equal(m.rr[1].ttl, 30);
    assert_int_equal(m.rr[1].rdlen, 2);
    /* §2.5.4: NONE, TTL 0, RDATA. */
    assert_int_equal(m.rr[2].class, DNSWIRE_CLASS_NONE);
    assert_int_equal(m.rr[2].ttl, 0);
    assert_int_equal(m.rr[2].rdlen, 2);
    /* §2.5.3: ANY ANY. */
    assert_int_equal(m.rr[3].class, DNSWIRE_CLASS_ANY);
    assert_int_equal(m.rr[3].type, DNSWIRE_TYPE_ANY);
    assert_int_equal(m.rr[3].rdlen, 0);
    memcpy(out, m.rr[3].name, m.rr[3].name_len);
    assert_true(dnswire_name_equal(out, m.rr[3].name_len, name, nl));
    dnswire_msg_cleanup(&m);

    /* A name outside the zone, an unknown op, a bad zone, no room. */
    uint8_t other[DNSWIRE_NAME_MAX];
    ch[0].name_len = wire(other, "acme.test.evil");
    ch[0].name = other;
    assert_int_equal(dnswire_build_update(buf, sizeof(buf), &len, 5, zone, zl, ch, 1), -EINVAL);
    ch[0].name = name;
    ch[0].name_len = nl;
    ch[0].op = (enum dnswire_update_op)42;
    assert_int_equal(dnswire_build_update(buf, sizeof(buf), &len, 5, zone, zl, ch, 1), -EINVAL);
    ch[0].op = DNSWIRE_UPDATE_ADD;
    assert_int_equal(dnswire_build_update(buf, sizeof(buf), &len, 5, zone, zl - 1, ch, 1), -EINVAL);
    assert_int_equal(dnswire_build_update(buf, 40, &len, 5, zone, zl, ch, 1), CF_ETOOBIG);
}

/* ---- Key files ---- */

static void test_key_files(void **state)
{
    struct dnswire_tsig_key key;
    const char *reason;
    uint8_t name[DNSWIRE_NAME_MAX];
    size_t nl = wire(name, "cf-update");
    (void)state;

    static const char *good[] = {
        /* BIND's tsig-keygen. */
        "key \"cf-update\" {\n\talgorithm hmac-sha256;\n\tsecret \"" TEST_SECRET_B64 "\";\n};\n",
        /* The same with comments, unquoted name and odd spacing. */
        "# generated\n// by hand\n/* block\n comment */ key CF-Update. {secret \"" TEST_SECRET_B64
        "\"; algorithm \"HMAC-SHA256.\" ;} ;",
        /* knot's keymgr -t. */
        "# hmac-sha256:cf-update:" TEST_SECRET_B64 "\nkey:\n  - id: cf-update\n    algorithm: "
        "hmac-sha256\n    secret: " TEST_SECRET_B64 "\n",
        /* knot's config with quotes and other sections around it. */
        "server:\n    listen: 127.0.0.1@53\nkey:\n  - id: \"cf-update.\"\n    algorithm: "
        "hmac-sha256 # the only one\n    secret: '" TEST_SECRET_B64 "'\nacl:\n  - id: a\n",
        /* One line. */
        "cf-update:" TEST_SECRET_B64,
        "\n  hmac-sha256:cf-update.:" TEST_SECRET_B64 "  \n\n",
        /* No padding. */
        "cf-update:ZG5zd2lyZS10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5YWI",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = dnswire_tsig_key_parse(&key, good[i], strlen(good[i]), &reason);
        if (rc != 0)
            fail_msg("key %zu: %s", i, reason);
        assert_true(dnswire_name_equal(key.name, key.name_len, name, nl));
        assert_memory_equal(key.name, name, nl); /* lower case */
        assert_int_equal(key.secret_len, 32);
        assert_memory_equal(key.secret, "dnswire-test-secret-0123456789ab", 32);
        dnswire_tsig_key_cleanup(&key);
    }

    static const struct {
        const char *text;
        const char *reason;
    } bad[] = {
        {"", "the key file is empty"},
        {"# nothing\n", "the key file is empty"},
        {"just words", "unknown key file format"},
        {"key \"k\" { algorithm hmac-md5; secret \"" TEST_SECRET_B64 "\"; };",
         "unsupported TSIG algorithm"},
        {"key \"k\" { algorithm hmac-sha2567; secret \"" TEST_SECRET_B64 "\"; };",
         "unsupported TSIG algorithm"},
        {"key \"k\" { secret \"" TEST_SECRET_B64 "\"; };", "the key block has no algorithm"},
        {"key \"k\" { algorithm hmac-sha256; };", "the key has no secret"},
        {"key \"k\" { algorithm hmac-sha256; secret \"!!!!\"; };",
         "the secret is not valid base64"},
        {"key \"k\" { algorithm hmac-sha256; secret \"QQ=\"; };", "the secret is not valid base64"},
        {"key \"k\" { algorithm hmac-sha256; secret \"\"; };", "the key has no secret"},
        {"key \"k\" { algorithm hmac-sha256; secret \"" TEST_SECRET_B64 "\";",
         "unterminated key block"},
        {"key \"k\" { algorithm hmac-sha256; secret \"" TEST_SECRET_B64 "\"; }",
         "expected ';' after the key block"},
        {"key \"k\" { algorithm hmac-sha256 secret \"x\"; };", "expected ';' after a statement"},
        {"key \"k\" { owner x; };", "unknown statement"},
        {"key \"a..b\" { algorithm hmac-sha256; secret \"" TEST_SECRET_B64 "\"; };",
         "invalid key name"},
        {"key \"k\" { algorithm hmac-sha256; secret \"" TEST_SECRET_B64
         "\"; };\nkey \"l\" { algorithm hmac-sha256; secret \"" TEST_SECRET_B64 "\"; };",
         "more than one key in the file"},
        {"key \"k\" { /* unterminated", "unterminated comment or quoted string"},
        {"key \"k\" { algorithm \"hmac-sha256; };", "unterminated comment or quoted string"},
        {"key:\n  - id: a\n    algorithm: hmac-sha256\n    secret: " TEST_SECRET_B64
         "\n  - id: b\n    algorithm: hmac-sha256\n    secret: " TEST_SECRET_B64 "\n",
         "more than one key in the file"},
        {"key:\n  - id: a\n    secret: " TEST_SECRET_B64 "\n", "the key section has no algorithm"},
        {"key:\n  - id: a\n    algorithm: hmac-sha512\n    secret: " TEST_SECRET_B64 "\n",
         "unsupported TSIG algorithm"},
        {"key:\n  - algorithm: hmac-sha256\n    secret: " TEST_SECRET_B64 "\n",
         "the key has no name"},
        {"a:b:c:d", "too many ':'"},
        {"a:" TEST_SECRET_B64 "\nb:" TEST_SECRET_B64, "more than one line"},
        {":" TEST_SECRET_B64, "the key has no name"},
        {"hmac-md5:a:" TEST_SECRET_B64, "unsupported TSIG algorithm"},
        {"a:" TEST_SECRET_B64 TEST_SECRET_B64 TEST_SECRET_B64 TEST_SECRET_B64 TEST_SECRET_B64,
         "the secret is not valid base64"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = dnswire_tsig_key_parse(&key, bad[i].text, strlen(bad[i].text), &reason);
        if (rc != CF_ECONFIG || !reason ||
            strncmp(reason, bad[i].reason, strlen(bad[i].reason)) != 0)
            fail_msg("bad key %zu: rc %d reason %s", i, rc, reason ? reason : "(null)");
        assert_int_equal(key.secret_len, 0);
    }
    /* A secret over 128 octets (the base64 is valid). */
    char big[400];
    memcpy(big, "a:", 2);
    for (size_t i = 0; i < 44; i++)
        memcpy(big + 2 + 4 * i, "QUJD", 4);
    big[2 + 4 * 44] = '\0';
    assert_int_equal(dnswire_tsig_key_parse(&key, big, strlen(big), &reason), CF_ECONFIG);
    assert_string_equal(reason, "the secret is longer than 128 octets");
    /* A NUL inside. */
    assert_int_equal(dnswire_tsig_key_parse(&key, "a:QUJD\0x", 8, &reason), CF_ECONFIG);
}

static void test_key_load(void **state)
{
    struct dnswire_tsig_key key;
    const char *reason;
    char path[] = "/tmp/test_dnswire_keyXXXXXX";
    static const char text[] =
        "key \"cf-update.\" {\n\talgorithm hmac-sha256;\n\tsecret \"" TEST_SECRET_B64 "\";\n};\n";
    (void)state;

    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(dnswire_tsig_key_load(&key, path, &reason), 0);
    assert_int_equal(key.secret_len, 32);
    dnswire_tsig_key_cleanup(&key);
    assert_int_equal(key.secret_len, 0);

    /* Over 64 KiB. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 70000; i++)
        fputc('#', f);
    fclose(f);
    assert_int_equal(dnswire_tsig_key_load(&key, path, &reason), CF_ETOOBIG);
    unlink(path);
    assert_int_equal(dnswire_tsig_key_load(&key, path, &reason), -ENOENT);
    assert_string_equal(reason, "cannot read the key file");
}

static void test_rcode_str(void **state)
{
    (void)state;
    assert_string_equal(dnswire_rcode_str(0), "NOERROR");
    assert_string_equal(dnswire_rcode_str(9), "NOTAUTH");
    assert_string_equal(dnswire_rcode_str(17), "BADKEY");
    assert_string_equal(dnswire_rcode_str(4000), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_from_text),
        cmocka_unit_test(test_name_to_text),
        cmocka_unit_test(test_name_compare),
        cmocka_unit_test(test_read_name),
        cmocka_unit_test(test_read_name_limits),
        cmocka_unit_test(test_parse_small),
        cmocka_unit_test(test_parse_opt),
        cmocka_unit_test(test_parse_tsig_position),
        cmocka_unit_test(test_parse_buf),
        cmocka_unit_test(test_knot_answers),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_writer_truncate),
        cmocka_unit_test(test_build_query),
        cmocka_unit_test(test_update_matches_knsupdate),
        cmocka_unit_test(test_update_knot_exchange),
        cmocka_unit_test(test_tsig_sign_verify),
        cmocka_unit_test(test_build_update),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_key_load),
        cmocka_unit_test(test_rcode_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
