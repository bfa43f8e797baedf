/*
 * test_hostname.c - normalization table, registered domains, and the
 * delegation target rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "hostname.h"

struct ncase {
    const char *in;
    const char *out; /* NULL: must be rejected */
};

static char *repeat(char *dst, char c, size_t n)
{
    memset(dst, c, n);
    dst[n] = '\0';
    return dst;
}

static void check(const char *in, size_t len, const char *want)
{
    char out[HOSTNAME_MAX + 1];
    const char *reason = NULL;
    int rc = hostname_normalize(out, in, len, &reason);
    if (want) {
        if (rc != 0)
            print_error("'%s' rejected: %s\n", in, reason);
        assert_int_equal(rc, 0);
        assert_string_equal(out, want);
    } else {
        if (rc == 0)
            print_error("'%s' accepted as '%s'\n", in, out);
        assert_int_equal(rc, CF_EHOSTNAME);
        assert_non_null(reason);
        assert_true(strlen(reason) > 5);
    }
}

static void test_table(void **state)
{
    (void)state;
    static const struct ncase cases[] = {
        {"www.example.com", "www.example.com"},
        {"WWW.Example.COM", "www.example.com"},
        {"www.example.com.", "www.example.com"},
        {"  www.example.com", NULL},
        {"www.example.com..", NULL},
        {"www..example.com", NULL},
        {".example.com", NULL},
        {"", NULL},
        {".", NULL},
        {"bücher.example", "xn--bcher-kva.example"},
        {"BÜCHER.example", "xn--bcher-kva.example"},
        {"xn--bcher-kva.example", "xn--bcher-kva.example"},
        {"xn--zz.example", NULL},     /* not a valid A-label */
        {"ab--cd.example.com", NULL}, /* reserved R-LDH form */
        {"a--b.example.com", "a--b.example.com"},
        {"_acme.example.com", NULL}, /* underscore */
        {"under_score.example.com", NULL},
        {"-lead.example.com", NULL},
        {"trail-.example.com", NULL},
        {"sp ace.example.com", NULL},
        {"192.0.2.1", NULL},
        {"2001:db8::1", NULL},
        {"1.2.3.4.example.com", "1.2.3.4.example.com"},
        {"example.123", NULL}, /* numeric TLD */
        {"localhost", NULL},   /* single label */
        {"com", NULL},
        {"co.uk", NULL}, /* public suffix */
        {"example.co.uk", "example.co.uk"},
        {"*.example.com", "*.example.com"},
        {"*.EXAMPLE.com.", "*.example.com"},
        {"*.com", NULL},
        {"*.co.uk", NULL},
        {"a.*.example.com", NULL},
        {"*example.com", NULL},
        {"**.example.com", NULL},
        {"*", NULL},
        {"www.example.test", "www.example.test"},
        {"ex\x01mple.com", NULL},
        {"caf\xc3.example.com", NULL}, /* invalid UTF-8 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check(cases[i].in, strlen(cases[i].in), cases[i].out);
    /* A NUL inside the given length is refused, not truncated. */
    check("www.exa\0mple.com", 16, NULL);
}

static void test_lengths(void **state)
{
    (void)state;
    char label[80], name[400], want[400];
    /* 63-octet labels pass, 64 do not. */
    snprintf(name, sizeof(name), "%s.example.com", repeat(label, 'a', 63));
    check(name, strlen(name), name);
    snprintf(name, sizeof(name), "%s.example.com", repeat(label, 'a', 64));
    check(name, strlen(name), NULL);

    /* Build names of exact lengths from 63-octet labels plus a tail. */
    char l63[64];
    repeat(l63, 'b', 63);
    /* 237 octets: 3*64 = 192 + "example" (45 left: 37-octet label + ".example.com"?) */
    /* 63.63.63.x.com with x sized to reach the total. */
    for (size_t total = 236; total <= 255; total++) {
        size_t x = total - 3 * 64 - 4; /* "l63." x3 + x + ".com" */
        char xl[80];
        snprintf(name, sizeof(name), "%s.%s.%s.%s.com", l63, l63, l63, repeat(xl, 'c', x));
        assert_int_equal(strlen(name), total);
        const char *expect = NULL;
        /* _acme-challenge. is 16 octets: 237 is the longest name that can be validated. */
        if (total <= HOSTNAME_BASE_MAX) {
            snprintf(want, sizeof(want), "%s", name);
            expect = want;
        }
        check(name, strlen(name), expect);
    }
    /* 253 octets with a trailing dot (254 in all) is still 253 octets: refused for length. */
    snprintf(name, sizeof(name), "%s.%s.%s.%s.com.", l63, l63, l63, repeat(label, 'c', 57));
    assert_int_equal(strlen(name), 254);
    check(name, strlen(name), NULL);
    const char *reason;
    char out[HOSTNAME_MAX + 1];
    name[253] = '\0';
    assert_int_equal(hostname_normalize(out, name, 253, &reason), CF_EHOSTNAME);
    assert_non_null(strstr(reason, "_acme-challenge"));
    /* 254 octets: over the DNS limit. */
    snprintf(name, sizeof(name), "%s.%s.%s.%s.com", l63, l63, l63, repeat(label, 'c', 58));
    assert_int_equal(strlen(name), 254);
    assert_int_equal(hostname_normalize(out, name, 254, &reason), CF_EHOSTNAME);
    assert_non_null(strstr(reason, "253"));
}

static void test_registered_domain(void **state)
{
    (void)state;
    char out[HOSTNAME_MAX + 1];
    assert_int_equal(hostname_registered_domain(out, "www.example.com"), 0);
    assert_string_equal(out, "example.com");
    assert_int_equal(hostname_registered_domain(out, "a.b.example.co.uk"), 0);
    assert_string_equal(out, "example.co.uk");
    assert_int_equal(hostname_registered_domain(out, "*.shop.example.com"), 0);
    assert_string_equal(out, "example.com");
    assert_int_equal(hostname_registered_domain(out, "x.y.example.test"), 0);
    assert_string_equal(out, "example.test");
    assert_int_equal(hostname_registered_domain(out, "co.uk"), CF_EHOSTNAME);
}

static void test_challenge_target(void **state)
{
    (void)state;
    char out[HOSTNAME_MAX + 1], out2[HOSTNAME_MAX + 1];
    const char *zone = "acme.cdn.example.net";
    assert_int_equal(hostname_challenge_target(out, "www.example.com", zone), 0);
    assert_string_equal(out, "www.example.com.acme.cdn.example.net");
    /* A wildcard shares its apex's target (and its _acme-challenge name). */
    assert_int_equal(hostname_challenge_target(out2, "*.www.example.com", zone), 0);
    assert_string_equal(out, out2);
    /* Different hosts, different targets. */
    assert_int_equal(hostname_challenge_target(out2, "www2.example.com", zone), 0);
    assert_string_not_equal(out, out2);

    /* Too long for the readable form: a hash label, deterministic, inside DNS limits. */
    char l63[64], name[300];
    memset(l63, 'q', 63);
    l63[63] = '\0';
    char l40[42];
    memset(l40, 'q', 41);
    l40[41] = '\0';
    snprintf(name, sizeof(name), "%s.%s.%s.%s.com", l63, l63, l63, l40);
    assert_int_equal(strlen(name), HOSTNAME_BASE_MAX);
    assert_int_equal(hostname_challenge_target(out, name, zone), 0);
    assert_int_equal(out[0], 'h');
    assert_int_equal(strlen(out), HOSTNAME_HASH_LABEL_LEN + 1 + strlen(zone));
    assert_int_equal(out[HOSTNAME_HASH_LABEL_LEN], '.');
    for (int i = 1; i < HOSTNAME_HASH_LABEL_LEN; i++)
        assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", out[i]));
    assert_string_equal(out + HOSTNAME_HASH_LABEL_LEN + 1, zone);
    assert_int_equal(hostname_challenge_target(out2, name, zone), 0);
    assert_string_equal(out, out2);
    name[0] = 'r';
    assert_int_equal(hostname_challenge_target(out2, name, zone), 0);
    assert_string_not_equal(out, out2);

    /*
     * The known value, computed independently with Python's hashlib and
     * base64.b32encode over the 237-octet name above.
     */
    name[0] = 'q';
    assert_int_equal(hostname_challenge_target(out, name, zone), 0);
    assert_string_equal(out, "hwv6vs5ewkn66zjtb7vb63kg5uiztlvrp.acme.cdn.example.net");
}

static void test_zone(void **state)
{
    (void)state;
    char out[HOSTNAME_MAX + 1];
    const char *reason;
    assert_int_equal(hostname_normalize_zone(out, "ACME.cdn.Example.NET.", &reason), 0);
    assert_string_equal(out, "acme.cdn.example.net");
    assert_int_equal(hostname_normalize_zone(out, "test", &reason), 0);
    assert_int_equal(hostname_normalize_zone(out, "*.cdn.example", &reason), CF_EHOSTNAME);
    assert_int_equal(hostname_normalize_zone(out, "a..b", &reason), CF_EHOSTNAME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_registered_domain),
        cmocka_unit_test(test_challenge_target),
        cmocka_unit_test(test_zone),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    hostname_psl_cleanup();
    return rc;
}
