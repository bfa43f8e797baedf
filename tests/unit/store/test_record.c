/*
 * test_record.c - host record encoding: round trip, compactness, refusal of
 * newer schemas and of corrupt input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "record.h"

static void fill(struct host_record *r)
{
    host_record_init(r);
    snprintf(r->name, sizeof(r->name), "*.shop.example.co.uk");
    snprintf(r->regdom, sizeof(r->regdom), "example.co.uk");
    snprintf(r->target, sizeof(r->target), "shop.example.co.uk.acme.cdn.example.net");
    snprintf(r->customer, sizeof(r->customer), "Kunde Müller, GmbH");
    r->state = HOST_ACTIVE;
    r->reason = STOP_NONE;
    r->leftover = 1;
    r->created_at = 1795834800;
    r->state_since = 1795834900;
    r->next_action = 1800000000;
    r->deleg_result = DELEG_PROPAGATING;
    r->deleg_checked_at = 1795834801;
    r->deleg_first_ok = 1795834802;
    r->deleg_last_ok = 1795834803;
    r->deleg_bad_checks = 7;
    snprintf(r->deleg_seen, sizeof(r->deleg_seen), "elsewhere.example.org");
    r->live_result = LIVE_NOT_LIVE;
    r->live_checked_at = 1795834804;
    r->live_first_seen = 1795834805;
    r->live_last_seen = 1795834806;
    r->live_bad_checks = 3;
    r->failures = 4294967295u;
    r->first_failure_at = 1795834807;
    snprintf(r->last_error, sizeof(r->last_error), "acme: urn:ietf:params:acme:error:dns");
    snprintf(r->cert_serial, sizeof(r->cert_serial), "04a1b2c3");
    r->not_before = 1795834808;
    r->not_after = 1803610808;
    r->certs_issued = 12;
    snprintf(r->ari_cert_id, sizeof(r->ari_cert_id), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    r->ari_start = 1801000000;
    r->ari_end = 1801100000;
    r->ari_retry_after = 1795900000;
    r->renew_at = 1801050000;
    snprintf(r->order_url, sizeof(r->order_url), "https://ca.example/order/123");
    r->order_started_at = INT64_MAX;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct host_record a, b;
    struct buf enc;
    fill(&a);
    buf_init(&enc);
    host_record_encode(&enc, &a);
    assert_int_equal(host_record_decode(&b, enc.data, enc.len), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    buf_cleanup(&enc);
}

static void test_compact(void **state)
{
    (void)state;
    struct host_record a, b;
    struct buf enc;
    host_record_init(&a);
    snprintf(a.name, sizeof(a.name), "www.example.com");
    snprintf(a.regdom, sizeof(a.regdom), "example.com");
    snprintf(a.target, sizeof(a.target), "www.example.com.acme.cdn.example.net");
    a.created_at = a.state_since = a.next_action = 1795834800;
    buf_init(&enc);
    host_record_encode(&enc, &a);
    /* version + 3 strings with headers + 3 times of 5 octets each. */
    assert_true(enc.len <= 1 + (2 + 15) + (2 + 11) + (2 + 36) + 3 * 6);
    assert_int_equal(host_record_decode(&b, enc.data, enc.len), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    buf_cleanup(&enc);
}

static void test_peek_next_action(void **state)
{
    (void)state;
    struct host_record a;
    struct buf enc;
    int64_t na = -1;
    fill(&a);
    buf_init(&enc);
    host_record_encode(&enc, &a);
    assert_int_equal(host_record_next_action(enc.data, enc.len, &na), 0);
    assert_int_equal(na, a.next_action);
    a.next_action = 0;
    buf_reset(&enc);
    host_record_encode(&enc, &a);
    assert_int_equal(host_record_next_action(enc.data, enc.len, &na), 0);
    assert_int_equal(na, 0);
    const char bad[] = {1, 64, 10, 'a'}; /* a string running past the end */
    assert_int_equal(host_record_next_action(bad, sizeof(bad), &na), CF_ECORRUPT);
    enc.data[0] = STORE_SCHEMA_VERSION + 1;
    assert_int_equal(host_record_next_action(enc.data, enc.len, &na), CF_ENEWER_SCHEMA);
    buf_cleanup(&enc);
}

static void test_newer_schema(void **state)
{
    (void)state;
    struct host_record a, b;
    struct buf enc;
    fill(&a);
    buf_init(&enc);
    host_record_encode(&enc, &a);
    enc.data[0] = STORE_SCHEMA_VERSION + 1;
    assert_int_equal(host_record_decode(&b, enc.data, enc.len), CF_ENEWER_SCHEMA);
    buf_cleanup(&enc);
}

static void test_corrupt(void **state)
{
    (void)state;
    struct host_record a, b;
    struct buf enc;
    fill(&a);
    buf_init(&enc);
    host_record_encode(&enc, &a);
    /* Every truncation is refused or decodes to a record missing fields, never overreads. */
    for (size_t n = 0; n < enc.len; n++) {
        int rc = host_record_decode(&b, enc.data, n);
        assert_true(rc == 0 || rc == CF_ECORRUPT);
    }
    assert_int_equal(host_record_decode(&b, "", 0), CF_ECORRUPT);
    /* Version 0 does not exist. */
    const char v0[] = {0, 64, 1, 'a'};
    assert_int_equal(host_record_decode(&b, v0, sizeof(v0)), CF_ECORRUPT);
    /* Unknown tag. */
    const char unk[] = {1, 64, 1, 'a', 63, 1};
    assert_int_equal(host_record_decode(&b, unk, sizeof(unk)), CF_ECORRUPT);
    /* A string longer than its field. */
    char big[600] = {1, 64, (char)0x80, 4};
    memset(big + 4, 'a', 512);
    assert_int_equal(host_record_decode(&b, big, 4 + 512), CF_ECORRUPT);
    /* A state out of range. */
    const char st[] = {1, 64, 1, 'a', 1, 99};
    assert_int_equal(host_record_decode(&b, st, sizeof(st)), CF_ECORRUPT);
    /* An endless varint. */
    const char vi[] = {1,          4,          (char)0xff, (char)0xff, (char)0xff,
                       (char)0xff, (char)0xff, (char)0xff, (char)0xff, (char)0xff,
                       (char)0xff, (char)0xff, 1};
    assert_int_equal(host_record_decode(&b, vi, sizeof(vi)), CF_ECORRUPT);
    /* No name. */
    const char nn[] = {1, 1, 2};
    assert_int_equal(host_record_decode(&b, nn, sizeof(nn)), CF_ECORRUPT);
    buf_cleanup(&enc);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(host_state_name(HOST_AWAITING_DELEGATION), "awaiting_delegation");
    assert_int_equal(host_state_parse("active"), HOST_ACTIVE);
    assert_int_equal(stop_reason_parse("never_live"), STOP_NEVER_LIVE);
    assert_int_equal(stop_reason_parse("bogus"), -1);
    assert_string_equal(deleg_result_name(DELEG_WRONG_TARGET), "wrong_target");
    assert_string_equal(live_result_name(LIVE_NOT_LIVE), "not_live");
}

static void test_set_state(void **state)
{
    (void)state;
    struct host_record r;
    fill(&r);
    host_set_state(&r, HOST_STOPPED, STOP_OFFBOARDED, 42, "test");
    assert_int_equal(r.state, HOST_STOPPED);
    assert_int_equal(r.reason, STOP_OFFBOARDED);
    assert_int_equal(r.state_since, 42);
    host_set_state(&r, HOST_STOPPED, STOP_OFFBOARDED, 99, "again");
    assert_int_equal(r.state_since, 42); /* no change, no new timestamp */
    host_set_state(&r, HOST_DELEGATED, STOP_FAILING, 100, "re-armed");
    assert_int_equal(r.reason, STOP_NONE); /* only stopped hosts carry a reason */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_compact),
        cmocka_unit_test(test_newer_schema),     cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_peek_next_action), cmocka_unit_test(test_names),
        cmocka_unit_test(test_set_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
