/*
 * test_http.c - the HTTP header parsers (engine/http/http_parse.c):
 * Retry-After, Link, header lines and the collection of ACME's fields,
 * including what hostile servers send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "http.h"

#define NOW INT64_C(1700000000) /* 2023-11-14T22:13:20Z */

static int ra(int64_t *out, const char *s)
{
    return http_parse_retry_after(out, s, strlen(s), NOW);
}

static void test_retry_after_seconds(void **state)
{
    int64_t t = -1;
    (void)state;
    assert_int_equal(ra(&t, "120"), 0);
    assert_int_equal(t, NOW + 120);
    assert_int_equal(ra(&t, " \t0 "), 0);
    assert_int_equal(t, NOW);
    /* Huge values saturate at the cap instead of overflowing. */
    assert_int_equal(ra(&t, "99999999999999999999999999999999999999"), 0);
    assert_int_equal(t, NOW + HTTP_RETRY_AFTER_MAX);
    assert_int_equal(ra(&t, "2592001"), 0);
    assert_int_equal(t, NOW + HTTP_RETRY_AFTER_MAX);
    t = 7;
    assert_int_equal(ra(&t, ""), CF_EPARSE);
    assert_int_equal(ra(&t, "   "), CF_EPARSE);
    assert_int_equal(ra(&t, "-5"), CF_EPARSE);
    assert_int_equal(ra(&t, "1.5"), CF_EPARSE);
    assert_int_equal(ra(&t, "12 34"), CF_EPARSE);
    assert_int_equal(ra(&t, "0x10"), CF_EPARSE);
    assert_int_equal(ra(&t, "soon"), CF_EPARSE);
    assert_int_equal(t, 7); /* untouched on error */
    /* Not NUL-terminated: only len bytes count. */
    assert_int_equal(http_parse_retry_after(&t, "3012", 2, NOW), 0);
    assert_int_equal(t, NOW + 30);
}

static void test_retry_after_dates(void **state)
{
    int64_t t = 0;
    (void)state;
    /* 2023-11-15T00:00:00Z = 1700006400 */
    assert_int_equal(ra(&t, "Wed, 15 Nov 2023 00:00:00 GMT"), 0);
    assert_int_equal(t, INT64_C(1700006400));
    assert_int_equal(ra(&t, "Wednesday, 15-Nov-23 00:00:00 GMT"), 0);
    assert_int_equal(t, INT64_C(1700006400));
    assert_int_equal(ra(&t, "Wed Nov 15 00:00:00 2023"), 0);
    assert_int_equal(t, INT64_C(1700006400));
    /* asctime's single-digit day is padded with a space. */
    assert_int_equal(ra(&t, "Fri Dec  1 01:02:03 2023"), 0);
    assert_int_equal(t, INT64_C(1701392523));
    /* Leap day. */
    const char *leap = "Thu, 29 Feb 2024 00:00:00 GMT";
    assert_int_equal(http_parse_retry_after(&t, leap, strlen(leap), INT64_C(1709000000)), 0);
    assert_int_equal(t, INT64_C(1709164800));
    /* A date in the past means now; one far in the future is capped. */
    assert_int_equal(ra(&t, "Sun, 06 Nov 1994 08:49:37 GMT"), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(ra(&t, "Sunday, 06-Nov-94 08:49:37 GMT"), 0);
    assert_int_equal(t, NOW);
    assert_int_equal(ra(&t, "Fri, 31 Dec 9999 23:59:59 GMT"), 0);
    assert_int_equal(t, NOW + HTTP_RETRY_AFTER_MAX);
    /* Malformed dates. */
    const char *bad[] = {
        "Wed, 15 Nov 2023 00:00:00",
        "Wed, 15 Nov 2023 00:00:00 UTC",
        "Wed, 15 nov 2023 00:00:00 GMT",
        "Wed, 30 Feb 2023 00:00:00 GMT",
        "Wed, 29 Feb 2023 00:00:00 GMT",
        "Wed, 15 Nov 2023 24:00:00 GMT",
        "Wed, 15 Nov 2023 00:60:00 GMT",
        "Wed, 15 Nov 2023 00:00:61 GMT",
        "Wed, 5 Nov 2023 00:00:00 GMT",
        "Wed, 15 Nov 23 00:00:00 GMT",
        "Xyz, 15 Nov 2023 00:00:00 GMT",
        "Wed, 15 Nov 2023 00:00:00 GMTx",
        "Wed, 00 Nov 2023 00:00:00 GMT",
        "Wed, 15 Nov 1899 00:00:00 GMT",
        "Wednesday, 15-Nov-2023 00:00:00 GMT",
        "Wed Nov 15 00:00:00 23",
        "Wed Nov 15 0:00:00 2023",
        "W",
        "Wed, 15 Nov 2023 00:00:00 GMT and then some more text",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = 5;
        if (ra(&t, bad[i]) != CF_EPARSE)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(t, 5);
    }
    /* An embedded NUL is not the end of the value. */
    assert_int_equal(http_parse_retry_after(&t, "Wed\0 15 Nov 2023 00:00:00 GMT", 29, NOW),
                     CF_EPARSE);
}

struct links {
    struct http_link l[HTTP_LINKS_MAX];
    size_t n;
};

static int pl(struct links *ls, size_t max, const char *v)
{
    return http_parse_link(ls->l, max, &ls->n, v, strlen(v));
}

static void assert_link(const struct links *ls, size_t i, enum http_rel rel, const char *url)
{
    assert_true(i < ls->n);
    assert_int_equal(ls->l[i].rel, rel);
    assert_string_equal(ls->l[i].url, url);
}

static void test_link_basic(void **state)
{
    struct links ls = {.n = 0};
    (void)state;
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, "<https://ca.test/dir>;rel=\"index\""), 0);
    assert_int_equal(ls.n, 1);
    assert_link(&ls, 0, HTTP_REL_INDEX, "https://ca.test/dir");
    /* Several links in one value, OWS everywhere, unknown relations ignored. */
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX,
                        " <https://ca.test/o/1> ; rel = up , <https://ca.test/x>; rel=\"next\","
                        "<https://ca.test/c/2>;title=\"a, <b>; rel=up\";rel=\"alternate\""),
                     0);
    assert_int_equal(ls.n, 3);
    assert_link(&ls, 1, HTTP_REL_UP, "https://ca.test/o/1");
    assert_link(&ls, 2, HTTP_REL_ALTERNATE, "https://ca.test/c/2");
    http_links_free(ls.l, ls.n);
    ls.n = 0;
    /* A rel listing several types, case-insensitive; only the first rel counts. */
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX,
                        "<https://a/>; REL=\"Up  ALTERNATE\"; rel=index,,, <https://b/>;"
                        " rel=\"in\\dex\"; anchor"),
                     0);
    assert_int_equal(ls.n, 3);
    assert_link(&ls, 0, HTTP_REL_UP, "https://a/");
    assert_link(&ls, 1, HTTP_REL_ALTERNATE, "https://a/");
    assert_link(&ls, 2, HTTP_REL_INDEX, "https://b/");
    http_links_free(ls.l, ls.n);
    ls.n = 0;
    /* Relative targets are kept as sent: the client resolves them. */
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, "</acme/issuer>;rel=up"), 0);
    assert_link(&ls, 0, HTTP_REL_UP, "/acme/issuer");
    http_links_free(ls.l, ls.n);
    ls.n = 0;
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, ""), 0);
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, " , "), 0);
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, "<https://a/>"), 0);
    assert_int_equal(ls.n, 0);
}

static void test_link_hostile(void **state)
{
    struct links ls = {.n = 0};
    (void)state;
    /* Malformed: what came before the error is kept. */
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, "<https://a/>;rel=up, https://b/;rel=up"), CF_EPARSE);
    assert_int_equal(ls.n, 1);
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, "<https://a/;rel=up"), CF_EPARSE);
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, "<https://a/>;rel=\"up"), CF_EPARSE);
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, "<https://a/>;rel=\"up\\"), CF_EPARSE);
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, "<https://a/>;=up"), CF_EPARSE);
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, "<https://a/>;rel="), CF_EPARSE);
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, "<https://a/> junk;rel=up"), CF_EPARSE);
    assert_int_equal(ls.n, 1);
    /* Targets with spaces or controls, or too long, are skipped. */
    assert_int_equal(
        pl(&ls, HTTP_LINKS_MAX, "<https://a/ b>;rel=up,<https://a/\x01>;rel=up,<>;rel=up"), 0);
    assert_int_equal(ls.n, 1);
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "<https://a/");
    for (int i = 0; i < HTTP_URL_MAX; i++)
        buf_putc(&b, 'x');
    buf_puts(&b, ">;rel=up, <https://short/>;rel=up");
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, b.data), 0);
    assert_int_equal(ls.n, 2);
    assert_link(&ls, 1, HTTP_REL_UP, "https://short/");
    /* A rel value longer than the parser's buffer is ignored, not truncated. */
    buf_reset(&b);
    buf_puts(&b, "<https://c/>;rel=\"up");
    for (int i = 0; i < 1000; i++)
        buf_putc(&b, ' ');
    buf_puts(&b, "\"");
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, b.data), 0);
    assert_int_equal(ls.n, 2);
    /* The count is bounded. */
    buf_reset(&b);
    for (int i = 0; i < 100; i++)
        buf_printf(&b, "<https://c/%d>;rel=\"up alternate index\",", i);
    assert_int_equal(pl(&ls, HTTP_LINKS_MAX, b.data), 0);
    assert_int_equal(ls.n, HTTP_LINKS_MAX);
    assert_link(&ls, 2, HTTP_REL_UP, "https://c/0");
    assert_link(&ls, 3, HTTP_REL_ALTERNATE, "https://c/0");
    buf_cleanup(&b);
    http_links_free(ls.l, ls.n);
}

static int hl(struct http_line *l, const char *s)
{
    return http_parse_header_line(l, s, strlen(s));
}

static void test_header_line(void **state)
{
    struct http_line l;
    (void)state;
    assert_int_equal(hl(&l, "HTTP/2 200\r\n"), HTTP_LINE_STATUS);
    assert_int_equal(l.status, 200);
    assert_int_equal(hl(&l, "HTTP/1.1 404 Not Found\r\n"), HTTP_LINE_STATUS);
    assert_int_equal(l.status, 404);
    assert_int_equal(hl(&l, "HTTP/1.1 100\n"), HTTP_LINE_STATUS);
    assert_int_equal(hl(&l, "HTTP/1.1 20\r\n"), CF_EPARSE);
    assert_int_equal(hl(&l, "HTTP/1.1 2000\r\n"), CF_EPARSE);
    assert_int_equal(hl(&l, "HTTP/ 200\r\n"), CF_EPARSE);
    assert_int_equal(hl(&l, "HTTP/1.1 099\r\n"), CF_EPARSE);
    assert_int_equal(hl(&l, "\r\n"), HTTP_LINE_END);
    assert_int_equal(hl(&l, ""), HTTP_LINE_END);
    assert_int_equal(hl(&l, "Replay-Nonce:  abc \t\r\n"), HTTP_LINE_FIELD);
    assert_int_equal(l.name_len, 12);
    assert_memory_equal(l.name, "Replay-Nonce", 12);
    assert_int_equal(l.value_len, 3);
    assert_memory_equal(l.value, "abc", 3);
    assert_int_equal(hl(&l, "X-Empty:\r\n"), HTTP_LINE_FIELD);
    assert_int_equal(l.value_len, 0);
    assert_int_equal(hl(&l, " folded\r\n"), CF_EPARSE);
    assert_int_equal(hl(&l, "Bad Name: x\r\n"), CF_EPARSE);
    assert_int_equal(hl(&l, "Name : x\r\n"), CF_EPARSE);
    assert_int_equal(hl(&l, ": x\r\n"), CF_EPARSE);
    assert_int_equal(hl(&l, "NoColon\r\n"), CF_EPARSE);
}

static int add(struct http_hdrs *h, const char *s)
{
    return http_hdrs_add(h, s, strlen(s), NOW);
}

static void test_hdrs(void **state)
{
    struct http_hdrs h;
    (void)state;
    http_hdrs_init(&h);
    /* An interim response leaves nothing behind. */
    assert_int_equal(add(&h, "HTTP/1.1 100 Continue\r\n"), 0);
    assert_int_equal(add(&h, "Replay-Nonce: interim\r\n"), 0);
    assert_int_equal(add(&h, "\r\n"), 0);
    assert_string_equal(h.replay_nonce, "interim");
    assert_int_equal(add(&h, "HTTP/2 201\r\n"), 0);
    assert_null(h.replay_nonce);
    assert_int_equal(h.status, 201);
    assert_int_equal(add(&h, "replay-nonce: not/base64url\r\n"), 0);
    assert_null(h.replay_nonce);
    assert_int_equal(add(&h, "REPLAY-NONCE: AbC-_09\r\n"), 0);
    assert_int_equal(add(&h, "Replay-Nonce: second\r\n"), 0);
    assert_string_equal(h.replay_nonce, "AbC-_09");
    assert_int_equal(add(&h, "Location: https://ca.test/acct/1\r\n"), 0);
    assert_int_equal(add(&h, "Location: https://evil.test/\r\n"), 0);
    assert_string_equal(h.location, "https://ca.test/acct/1");
    assert_int_equal(add(&h, "Content-Type: application/json\r\n"), 0);
    assert_string_equal(h.content_type, "application/json");
    assert_int_equal(add(&h, "Retry-After: soon\r\n"), 0);
    assert_int_equal(h.retry_after, 0);
    assert_int_equal(add(&h, "Retry-After: 60\r\n"), 0);
    assert_int_equal(h.retry_after, NOW + 60);
    assert_int_equal(add(&h, "Link: <https://ca.test/dir>;rel=\"index\"\r\n"), 0);
    assert_int_equal(add(&h, "Link: <https://ca.test/c/alt>;rel=\"alternate\"\r\n"), 0);
    assert_int_equal(add(&h, "Link: garbage\r\n"), 0);
    assert_int_equal(h.nlinks, 2);
    assert_int_equal(add(&h, "garbage line\r\n"), 0);
    assert_int_equal(add(&h, "\r\n"), 0);
    http_hdrs_cleanup(&h);

    /* The header block is bounded in total. */
    http_hdrs_init(&h);
    char line[1024];
    memset(line, 'a', sizeof(line));
    memcpy(line, "X-Pad: ", 7);
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = http_hdrs_add(&h, line, sizeof(line), NOW);
    assert_int_equal(rc, CF_ETOOBIG);
    assert_true(h.bytes <= HTTP_HEADERS_MAX);
    http_hdrs_cleanup(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_seconds), cmocka_unit_test(test_retry_after_dates),
        cmocka_unit_test(test_link_basic),          cmocka_unit_test(test_link_hostile),
        cmocka_unit_test(test_header_line),         cmocka_unit_test(test_hdrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
