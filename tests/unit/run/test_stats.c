/*
 * test_stats.c - the run's latency histograms (engine/run/stats.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stats.h"

/* within: v is q's true value up to the histogram's resolution (±12.5%). */
static void assert_within(uint64_t got, uint64_t want)
{
    assert_true(got >= want - want / 8 - 1 && got <= want + want / 8 + 1);
}

static void test_empty_and_small(void **state)
{
    (void)state;
    struct run_hist h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(run_hist_quantile(&h, 0.5), 0);
    for (uint64_t v = 0; v < 10; v++)
        run_hist_add(&h, v);
    /* Below 16 us every value has its own bucket. */
    assert_int_equal(run_hist_quantile(&h, 0.0), 0);
    assert_int_equal(run_hist_quantile(&h, 0.5), 5);
    assert_int_equal(run_hist_quantile(&h, 0.99), 9);
}

static void test_uniform_quantiles(void **state)
{
    (void)state;
    struct run_hist h;
    memset(&h, 0, sizeof(h));
    /* 1 ms .. 100 ms uniformly: p50 ~ 50.5 ms, p95 ~ 95 ms, p99 ~ 99 ms. */
    for (uint64_t v = 1000; v <= 100000; v += 10)
        run_hist_add(&h, v);
    assert_within(run_hist_quantile(&h, 0.50), 50500);
    assert_within(run_hist_quantile(&h, 0.95), 95000);
    assert_within(run_hist_quantile(&h, 0.99), 99000);
}

static void test_outliers_and_huge(void **state)
{
    (void)state;
    struct run_hist h;
    memset(&h, 0, sizeof(h));
    for (int i = 0; i < 990; i++)
        run_hist_add(&h, 2000);
    for (int i = 0; i < 10; i++)
        run_hist_add(&h, 5000000);
    assert_within(run_hist_quantile(&h, 0.50), 2000);
    assert_within(run_hist_quantile(&h, 0.989), 2000);
    assert_within(run_hist_quantile(&h, 0.995), 5000000);
    /* Values past the last bucket land in it instead of overflowing. */
    run_hist_add(&h, UINT64_MAX);
    assert_int_equal(h.n, 1001);
    assert_true(run_hist_quantile(&h, 1.0) > 5000000);
}

static void test_json(void **state)
{
    (void)state;
    struct run_hist h;
    struct buf b;
    memset(&h, 0, sizeof(h));
    run_hist_add(&h, 3000);
    buf_init(&b);
    run_hist_json(&b, &h);
    assert_non_null(strstr(b.data, "\"n\":1,"));
    assert_non_null(strstr(b.data, "\"p50_ms\":"));
    buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_small),
        cmocka_unit_test(test_uniform_quantiles),
        cmocka_unit_test(test_outliers_and_huge),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
