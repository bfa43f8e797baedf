/*
 * test_util.c - buffers, JSON escaping, time and duration parsing, addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "err.h"
#include "timeutil.h"

static void test_json_string(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_json_string(&b, "a\"b\\c\n\x01\xc3\xa9\xff", 10);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\ufffd\"");
    buf_cleanup(&b);
}

static void test_buf_printf(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "%04d", i);
    assert_int_equal(b.len, 4000);
    assert_memory_equal(b.data + 3996, "0999", 4);
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[599] = '\0';
    buf_reset(&b);
    buf_printf(&b, "<%s>", big);
    assert_int_equal(b.len, 601);
    buf_cleanup(&b);
}

static void test_time(void **state)
{
    (void)state;
    int64_t t;
    char out[32];
    assert_int_equal(cf_time_parse(&t, "2026-11-28T03:00:00Z"), 0);
    assert_int_equal(t, 1795834800);
    assert_string_equal(cf_time_format(out, sizeof(out), t), "2026-11-28T03:00:00Z");
    assert_int_equal(cf_time_parse(&t, "2026-11-28T04:30:00.123+01:30"), 0);
    assert_int_equal(t, 1795834800);
    assert_int_equal(cf_time_parse(&t, "1970-01-01T00:00:00Z"), 0);
    assert_int_equal(t, 0);
    assert_int_equal(cf_time_parse(&t, "2024-02-29T00:00:00Z"), 0);
    assert_int_equal(cf_time_parse(&t, "2026-13-01T00:00:00Z"), CF_EPARSE);
    assert_int_equal(cf_time_parse(&t, "2026-11-28"), CF_EPARSE);
    assert_int_equal(cf_time_parse(&t, "2026-11-28T03:00:00"), CF_EPARSE);
    assert_int_equal(cf_time_parse(&t, "2026-11-28T03:00:00Zjunk"), CF_EPARSE);
}

static void test_duration(void **state)
{
    (void)state;
    int64_t d;
    assert_int_equal(cf_duration_parse(&d, "90"), 0);
    assert_int_equal(d, 90);
    assert_int_equal(cf_duration_parse(&d, "15m"), 0);
    assert_int_equal(d, 900);
    assert_int_equal(cf_duration_parse(&d, "1h30m"), 0);
    assert_int_equal(d, 5400);
    assert_int_equal(cf_duration_parse(&d, "7d"), 0);
    assert_int_equal(d, 7 * 86400);
    assert_int_equal(cf_duration_parse(&d, ""), CF_EPARSE);
    assert_int_equal(cf_duration_parse(&d, "5x"), CF_EPARSE);
    assert_int_equal(cf_duration_parse(&d, "-5m"), CF_EPARSE);
}

static void test_addr(void **state)
{
    (void)state;
    char host[64];
    int port;
    assert_int_equal(config_parse_addr("127.0.0.1:5300", host, sizeof(host), &port, 53), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 5300);
    assert_int_equal(config_parse_addr("127.0.0.1", host, sizeof(host), &port, 53), 0);
    assert_int_equal(port, 53);
    assert_int_equal(config_parse_addr("[::1]:8053", host, sizeof(host), &port, 53), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8053);
    assert_int_equal(config_parse_addr("::1", host, sizeof(host), &port, 53), 0);
    assert_int_equal(port, 53);
    assert_int_equal(config_parse_addr("example.com:53", host, sizeof(host), &port, 53),
                     CF_ECONFIG);
    assert_int_equal(config_parse_addr("127.0.0.1:0", host, sizeof(host), &port, 53), CF_ECONFIG);
    assert_int_equal(config_parse_addr("127.0.0.1:70000", host, sizeof(host), &port, 53),
                     CF_ECONFIG);
}

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(cf_strerror(CF_EHOSTNAME), "invalid hostname");
    assert_string_equal(cf_errname(CF_EMAPFULL), "CF_EMAPFULL");
    assert_string_equal(cf_errname(-2), "ENOENT");
    assert_string_equal(cf_strerror(0), "success");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_string), cmocka_unit_test(test_buf_printf),
        cmocka_unit_test(test_time),        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_addr),        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
