/*
 * test_backoff.c - failure backoff steps and jitter spread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "backoff.h"

static void test_backoff_steps(void **state)
{
    (void)state;
    assert_int_equal(sched_backoff_delay(0), 0);
    assert_int_equal(sched_backoff_delay(1), 60);
    assert_int_equal(sched_backoff_delay(2), 600);
    assert_int_equal(sched_backoff_delay(3), 6000);
    assert_int_equal(sched_backoff_delay(4), 86400);
    assert_int_equal(sched_backoff_delay(1000), 86400);
}

static void test_jitter(void **state)
{
    (void)state;
    /* Stable for a name, inside the span, and spread evenly over 24 hour buckets. */
    assert_int_equal(sched_jitter("www.example.com", 3600), sched_jitter("www.example.com", 3600));
    assert_int_equal(sched_jitter("x", 0), 0);
    size_t buckets[24] = {0};
    char name[64];
    for (int i = 0; i < 24000; i++) {
        snprintf(name, sizeof(name), "host%d.example.com", i);
        int64_t j = sched_jitter(name, 86400);
        assert_true(j >= 0 && j < 86400);
        buckets[j / 3600]++;
    }
    for (int b = 0; b < 24; b++)
        assert_true(buckets[b] > 800 && buckets[b] < 1200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_steps),
        cmocka_unit_test(test_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
