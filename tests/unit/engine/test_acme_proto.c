/*
 * test_acme_proto.c - the ACME message layer: directory, problems, orders,
 * authorizations, JWS, EAB, key change, dns-01 values, the nonce pool,
 * RenewalInfo objects (RFC 9773), certificate identifiers and the paused
 * answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "err.h"
#include "proto.h"

/* Pebble 2.4's directory, as served. */
static const char pebble_dir[] =
    "{\"keyChange\":\"https://127.0.10.60:14000/rollover-account-key\",\"meta\":{"
    "\"externalAccountRequired\":false,\"termsOfService\":\"data:text/"
    "plain,Do%20what%20thou%20wilt\"},"
    "\"newAccount\":\"https://127.0.10.60:14000/sign-me-up\",\"newNonce\":\"https://"
    "127.0.10.60:14000/"
    "nonce-plz\",\"newOrder\":\"https://127.0.10.60:14000/order-plz\",\"revokeCert\":\"https://"
    "127.0.10.60:14000/revoke-cert\"}";

static void test_directory(void **state)
{
    (void)state;
    struct acme_directory d;
    const char *err = NULL;
    assert_int_equal(acme_directory_parse(&d, pebble_dir, strlen(pebble_dir), &err), 0);
    assert_string_equal(d.new_order, "https://127.0.10.60:14000/order-plz");
    assert_string_equal(d.key_change, "https://127.0.10.60:14000/rollover-account-key");
    assert_string_equal(d.renewal_info, "");
    assert_int_equal(d.external_account_required, 0);
    static const char ari[] = "{\"newNonce\":\"https://ca/n\",\"newAccount\":\"https://ca/a\","
                              "\"newOrder\":\"https://ca/o\",\"renewalInfo\":\"https://ca/ari\","
                              "\"meta\":{\"externalAccountRequired\":true}}";
    assert_int_equal(acme_directory_parse(&d, ari, strlen(ari), &err), 0);
    assert_string_equal(d.renewal_info, "https://ca/ari");
    assert_int_equal(d.external_account_required, 1);
    static const char http[] = "{\"newNonce\":\"https://ca/n\",\"newAccount\":\"https://ca/a\","
                               "\"newOrder\":\"http://ca/o\"}";
    assert_int_equal(acme_directory_parse(&d, http, strlen(http), &err), CF_EPARSE);
    assert_non_null(strstr(err, "https"));
    static const char missing[] = "{\"newNonce\":\"https://ca/n\"}";
    assert_int_equal(acme_directory_parse(&d, missing, strlen(missing), &err), CF_EPARSE);
    assert_int_equal(acme_directory_parse(&d, "[1,2]", 5, &err), CF_EPARSE);
    assert_int_equal(acme_directory_parse(&d, "{\"a\":", 5, &err), CF_EPARSE);
    static const char dup[] = "{\"newOrder\":\"https://a\",\"newOrder\":\"https://b\"}";
    assert_int_equal(acme_directory_parse(&d, dup, strlen(dup), &err), CF_EPARSE);
}

static void test_problem(void **state)
{
    (void)state;
    struct acme_problem p;
    static const char doc[] =
        "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\",\"detail\":\"no\",\"status\":"
        "400,\"subproblems\":[{\"type\":\"urn:ietf:params:acme:error:caa\",\"detail\":\"CAA "
        "forbids\",\"identifier\":{\"type\":\"dns\",\"value\":\"www.example.com\"}},7]}";
    assert_int_equal(acme_problem_parse(&p, doc, strlen(doc)), 0);
    assert_true(acme_problem_is(&p, "rejectedIdentifier"));
    assert_false(acme_problem_is(&p, "rejected"));
    assert_int_equal(p.status, 400);
    assert_int_equal(p.nsub, 1);
    assert_string_equal(p.sub[0].identifier, "www.example.com");
    assert_string_equal(p.sub[0].detail, "CAA forbids");
    assert_int_equal(acme_problem_parse(&p, "{}", 2), CF_EPARSE);
    assert_int_equal(acme_problem_parse(&p, "nonsense", 8), CF_EPARSE);
}

static void test_order(void **state)
{
    (void)state;
    struct acme_order o;
    const char *err;
    static const char pending[] =
        "{\"status\":\"pending\",\"expires\":\"2026-12-01T00:00:00Z\",\"identifiers\":[{\"type\":"
        "\"dns\",\"value\":\"www.example.com\"}],\"authorizations\":[\"https://ca/authz/1\","
        "\"https://ca/authz/2\"],\"finalize\":\"https://ca/finalize/9\"}";
    assert_int_equal(acme_order_parse(&o, pending, strlen(pending), &err), 0);
    assert_int_equal(o.status, ACME_ST_PENDING);
    assert_int_equal(o.nauthz, 2);
    assert_string_equal(o.authz[1], "https://ca/authz/2");
    assert_string_equal(o.finalize, "https://ca/finalize/9");
    static const char valid_no_cert[] = "{\"status\":\"valid\",\"authorizations\":[\"https://a\"],"
                                        "\"finalize\":\"https://f\"}";
    assert_int_equal(acme_order_parse(&o, valid_no_cert, strlen(valid_no_cert), &err), CF_EPARSE);
    static const char http_authz[] = "{\"status\":\"pending\",\"authorizations\":[\"http://a\"],"
                                     "\"finalize\":\"https://f\"}";
    assert_int_equal(acme_order_parse(&o, http_authz, strlen(http_authz), &err), CF_EPARSE);
    static const char invalid[] =
        "{\"status\":\"invalid\",\"authorizations\":[\"https://a\"],\"finalize\":\"https://f\","
        "\"error\":{\"type\":\"urn:ietf:params:acme:error:unauthorized\",\"detail\":\"x\"}}";
    assert_int_equal(acme_order_parse(&o, invalid, strlen(invalid), &err), 0);
    assert_true(o.has_error);
    assert_true(acme_problem_is(&o.error, "unauthorized"));
}

static void test_authz(void **state)
{
    (void)state;
    struct acme_authz a;
    const char *err;
    static const char doc[] =
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"example.com\"},"
        "\"wildcard\":true,\"challenges\":[{\"type\":\"http-01\",\"url\":\"https://ca/c/1\","
        "\"token\":\"t1\"},{\"type\":\"dns-01\",\"url\":\"https://ca/c/2\",\"status\":\"pending\","
        "\"token\":\"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA\"}]}";
    assert_int_equal(acme_authz_parse(&a, doc, strlen(doc), &err), 0);
    assert_int_equal(a.status, ACME_ST_PENDING);
    assert_true(a.wildcard);
    assert_true(a.has_dns01);
    assert_string_equal(a.dns01_url, "https://ca/c/2");
    assert_string_equal(a.dns01_token, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA");
    static const char bad_token[] =
        "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"e.com\"},"
        "\"challenges\":[{\"type\":\"dns-01\",\"url\":\"https://c\",\"token\":\"a\\\"b.c\"}]}";
    assert_int_equal(acme_authz_parse(&a, bad_token, strlen(bad_token), &err), CF_EPARSE);
    static const char ip[] = "{\"status\":\"pending\",\"identifier\":{\"type\":\"ip\",\"value\":"
                             "\"192.0.2.1\"},\"challenges\":[]}";
    assert_int_equal(acme_authz_parse(&a, ip, strlen(ip), &err), CF_EPARSE);
}

/* decode_member returns the base64url-decoded member of a flattened JWS. */
static void decode_member(json_t *jws, const char *name, struct buf *out)
{
    const char *v = json_string_value(json_object_get(jws, name));
    assert_non_null(v);
    assert_int_equal(crypto_b64url_decode(out, v, strlen(v)), 0);
}

static void test_jws(void **state)
{
    (void)state;
    struct crypto_key *key;
    struct buf out, prot, payload;
    assert_int_equal(crypto_key_generate(&key, CRYPTO_KEY_EC_P256), 0);
    for (int with_kid = 0; with_kid < 2; with_kid++) {
        buf_init(&out);
        buf_init(&prot);
        buf_init(&payload);
        const char *kid = with_kid ? "https://ca/acct/7" : NULL;
        assert_int_equal(acme_jws_build(&out, key, kid, "nonce-1", "https://ca/order-plz",
                                        with_kid ? "{\"identifiers\":[]}" : ""),
                         0);
        json_error_t je;
        json_t *jws = json_loads(out.data, 0, &je);
        assert_non_null(jws);
        decode_member(jws, "protected", &prot);
        json_t *ph = json_loadb(prot.data, prot.len, 0, &je);
        assert_non_null(ph);
        assert_string_equal(json_string_value(json_object_get(ph, "alg")), "ES256");
        assert_string_equal(json_string_value(json_object_get(ph, "nonce")), "nonce-1");
        assert_string_equal(json_string_value(json_object_get(ph, "url")), "https://ca/order-plz");
        if (with_kid) {
            assert_string_equal(json_string_value(json_object_get(ph, "kid")), kid);
            assert_null(json_object_get(ph, "jwk"));
        } else {
            assert_null(json_object_get(ph, "kid"));
            assert_true(json_is_object(json_object_get(ph, "jwk")));
        }
        const char *pl = json_string_value(json_object_get(jws, "payload"));
        assert_string_equal(pl, with_kid ? "eyJpZGVudGlmaWVycyI6W119" : ""); /* POST-as-GET: "" */
        /* The signature verifies over protected.payload, and not over anything else. */
        struct buf input;
        buf_init(&input);
        buf_printf(&input, "%s.%s", json_string_value(json_object_get(jws, "protected")), pl);
        const char *sig = json_string_value(json_object_get(jws, "signature"));
        assert_int_equal(crypto_jws_verify(key, sig, input.data, input.len), 0);
        input.data[input.len - 1] ^= 1;
        assert_int_not_equal(crypto_jws_verify(key, sig, input.data, input.len), 0);
        buf_cleanup(&input);
        json_decref(ph);
        json_decref(jws);
        buf_cleanup(&out);
        buf_cleanup(&prot);
        buf_cleanup(&payload);
    }
    crypto_key_free(key);
}

static void test_eab_and_key_change(void **state)
{
    (void)state;
    struct crypto_key *acct, *newk;
    assert_int_equal(crypto_key_generate(&acct, CRYPTO_KEY_EC_P256), 0);
    assert_int_equal(crypto_key_generate(&newk, CRYPTO_KEY_EC_P384), 0);
    static const unsigned char mac_key[] = "0123456789abcdef0123456789abcdef";
    struct buf out, jwk;
    buf_init(&out);
    buf_init(&jwk);
    assert_int_equal(acme_eab_build(&out, acct, "kid-1", mac_key, 32, "https://ca/new-acct"), 0);
    json_error_t je;
    json_t *eab = json_loads(out.data, 0, &je);
    assert_non_null(eab);
    /* The payload is the account key's JWK; the MAC is HMAC-SHA256 over protected.payload. */
    struct buf payload;
    buf_init(&payload);
    decode_member(eab, "payload", &payload);
    crypto_jwk_public(acct, &jwk);
    assert_int_equal(payload.len, jwk.len);
    assert_memory_equal(payload.data, jwk.data, jwk.len);
    struct buf input, want;
    buf_init(&input);
    buf_init(&want);
    buf_printf(&input, "%s.%s", json_string_value(json_object_get(eab, "protected")),
               json_string_value(json_object_get(eab, "payload")));
    unsigned char mac[CRYPTO_SHA256_LEN];
    assert_int_equal(crypto_hmac_sha256(mac, mac_key, 32, input.data, input.len), 0);
    crypto_b64url_encode(&want, mac, sizeof(mac));
    assert_string_equal(json_string_value(json_object_get(eab, "signature")), want.data);
    json_decref(eab);

    /* Key change: inner JWS by the new key, payload {account, oldKey}. */
    buf_reset(&out);
    assert_int_equal(
        acme_key_change_payload(&out, newk, acct, "https://ca/acct/1", "https://ca/key-change"), 0);
    json_t *inner = json_loads(out.data, 0, &je);
    assert_non_null(inner);
    buf_reset(&payload);
    decode_member(inner, "payload", &payload);
    json_t *pl = json_loadb(payload.data, payload.len, 0, &je);
    assert_string_equal(json_string_value(json_object_get(pl, "account")), "https://ca/acct/1");
    assert_true(json_is_object(json_object_get(pl, "oldKey")));
    buf_reset(&input);
    buf_printf(&input, "%s.%s", json_string_value(json_object_get(inner, "protected")),
               json_string_value(json_object_get(inner, "payload")));
    assert_int_equal(crypto_jws_verify(newk, json_string_value(json_object_get(inner, "signature")),
                                       input.data, input.len),
                     0);
    json_decref(pl);
    json_decref(inner);
    buf_cleanup(&out);
    buf_cleanup(&jwk);
    buf_cleanup(&payload);
    buf_cleanup(&input);
    buf_cleanup(&want);
    crypto_key_free(acct);
    crypto_key_free(newk);
}

static void test_dns01_value(void **state)
{
    (void)state;
    /* RFC 7638 §3.1's key (thumbprint NzbLsXh8...), a token from RFC 8555 §8.4's example;
     * the expected value computed independently with Python's hashlib. */
    static const char n[] =
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
        "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    struct crypto_key *key;
    struct buf v;
    assert_int_equal(crypto_key_from_rsa_public(&key, n, "AQAB"), 0);
    buf_init(&v);
    assert_int_equal(acme_dns01_value(&v, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", key), 0);
    assert_string_equal(v.data, "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8");
    buf_cleanup(&v);
    crypto_key_free(key);
}

static void test_nonce_pool(void **state)
{
    (void)state;
    static struct acme_nonce_pool p;
    char out[ACME_NONCE_MAX];
    acme_nonce_pool_init(&p);
    assert_int_equal(acme_nonce_take(&p, out), CF_ENOTFOUND);
    acme_nonce_put(&p, "abc_DEF-1");
    acme_nonce_put(&p, "bad nonce"); /* not base64url: ignored */
    acme_nonce_put(&p, "x\"y");      /* ignored */
    acme_nonce_put(&p, "second");
    assert_int_equal(acme_nonce_take(&p, out), 0);
    assert_string_equal(out, "second");
    assert_int_equal(acme_nonce_take(&p, out), 0);
    assert_string_equal(out, "abc_DEF-1");
    assert_int_equal(acme_nonce_take(&p, out), CF_ENOTFOUND);
    /* Bounded: the oldest fall out. */
    char n[32];
    for (int i = 0; i < ACME_NONCE_POOL + 10; i++) {
        snprintf(n, sizeof(n), "n%d", i);
        acme_nonce_put(&p, n);
    }
    assert_int_equal(p.count, ACME_NONCE_POOL);
    assert_int_equal(acme_nonce_take(&p, out), 0);
    snprintf(n, sizeof(n), "n%d", ACME_NONCE_POOL + 9);
    assert_string_equal(out, n);
}

/* A well-formed suggestedWindow's members, for the documents below. */
#define WINDOW "\"start\":\"2025-01-02T04:00:00Z\",\"end\":\"2025-01-03T04:00:00Z\""

static void test_renewal_info(void **state)
{
    (void)state;
    struct acme_renewal_info ri;
    const char *err = NULL;
    /* RFC 9773 §4.2's example shape. */
    static const char good[] = "{\"suggestedWindow\":{" WINDOW "},"
                               "\"explanationURL\":\"https://acme.example.com/docs/ari\"}";
    assert_int_equal(acme_renewal_info_parse(&ri, good, strlen(good), &err), 0);
    assert_int_equal(ri.start, 1735790400);
    assert_int_equal(ri.end, 1735790400 + 86400);
    assert_string_equal(ri.explanation_url, "https://acme.example.com/docs/ari");
    /* explanationURL is optional; offsets and fractions are RFC 3339. */
    static const char bare[] = "{\"suggestedWindow\":{\"start\":\"2025-01-02T05:00:00.5+01:00\","
                               "\"end\":\"2025-01-02T04:00:01Z\"},\"extra\":[1,2]}";
    assert_int_equal(acme_renewal_info_parse(&ri, bare, strlen(bare), &err), 0);
    assert_int_equal(ri.start, 1735790400);
    assert_int_equal(ri.end, 1735790401);
    assert_string_equal(ri.explanation_url, "");

    static const char *const bad[] = {
        "",
        "nonsense",
        "[]",
        "{}",
        "{\"suggestedWindow\":\"soon\"}",
        "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\"}}",
        "{\"suggestedWindow\":{\"start\":\"2025-01-02\",\"end\":\"2025-01-03\"}}",
        "{\"suggestedWindow\":{\"start\":1735790400,\"end\":1735876800}}",
        "{\"suggestedWindow\":{\"start\":\"2025-13-02T04:00:00Z\","
        "\"end\":\"2025-01-03T04:00:00Z\"}}",
        "{\"suggestedWindow\":{" WINDOW "},\"explanationURL\":42}",
        "{\"suggestedWindow\":{" WINDOW "},\"explanationURL\":\"javascript:alert(1)\"}",
        "{\"suggestedWindow\":{" WINDOW ",\"start\":\"2025-01-02T04:00:00Z\"}}", /* duplicate */
        "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\\u0000\","
        "\"end\":\"2025-01-03T04:00:00Z\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err = NULL;
        assert_int_equal(acme_renewal_info_parse(&ri, bad[i], strlen(bad[i]), &err), CF_EPARSE);
        assert_non_null(err);
        assert_int_equal(ri.start, 0);
    }
    /* §4.2: an end equal to or before the start is invalid. */
    static const char backwards[] = "{\"suggestedWindow\":{\"start\":\"2025-01-03T04:00:00Z\","
                                    "\"end\":\"2025-01-02T04:00:00Z\"}}";
    assert_int_equal(acme_renewal_info_parse(&ri, backwards, strlen(backwards), &err), CF_EPARSE);
    assert_non_null(strstr(err, "before"));
    static const char empty[] = "{\"suggestedWindow\":{\"start\":\"2025-01-03T04:00:00Z\","
                                "\"end\":\"2025-01-03T04:00:00Z\"}}";
    assert_int_equal(acme_renewal_info_parse(&ri, empty, strlen(empty), &err), CF_EPARSE);
    /* Huge documents are refused before parsing; an over-long URL too. */
    size_t n = ACME_RENEWAL_INFO_MAX + 100;
    char *huge = malloc(n + 1);
    int off = snprintf(huge, n, "{\"suggestedWindow\":{" WINDOW "},\"pad\":\"");
    memset(huge + off, 'a', n - (size_t)off - 2);
    memcpy(huge + n - 2, "\"}", 3);
    assert_int_equal(acme_renewal_info_parse(&ri, huge, n, &err), CF_EPARSE);
    assert_non_null(strstr(err, "larger"));
    off = snprintf(huge, n, "{\"suggestedWindow\":{" WINDOW "},\"explanationURL\":\"https://");
    size_t len = (size_t)off + ACME_URL_MAX + 2;
    memset(huge + off, 'a', len - (size_t)off - 2);
    memcpy(huge + len - 2, "\"}", 3);
    assert_int_equal(acme_renewal_info_parse(&ri, huge, len, &err), CF_EPARSE);
    free(huge);
}

static void test_ari_cert_id_and_paused(void **state)
{
    (void)state;
    /* RFC 9773 §4.1's example. */
    assert_true(acme_ari_cert_id_ok("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"));
    assert_false(acme_ari_cert_id_ok(""));
    assert_false(acme_ari_cert_id_ok("aYhba4dGQEHhs3uEe6CuLN4ByNQ"));
    assert_false(acme_ari_cert_id_ok(".AIdlQyE"));
    assert_false(acme_ari_cert_id_ok("aYhba4dG."));
    assert_false(acme_ari_cert_id_ok("a.b.c"));
    assert_false(acme_ari_cert_id_ok("a/../b.c"));
    assert_false(acme_ari_cert_id_ok("aYhba4dG=.AIdlQyE"));
    char long_id[ACME_ARI_CERT_ID_MAX + 8];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[10] = '.';
    long_id[sizeof(long_id) - 1] = '\0';
    assert_false(acme_ari_cert_id_ok(long_id));

    /* Let's Encrypt's paused answer, as Boulder words it, whatever the type. */
    struct acme_problem p;
    static const char paused[] =
        "{\"type\":\"urn:ietf:params:acme:error:rateLimited\",\"status\":429,\"detail\":\"Your "
        "account is temporarily prevented from requesting certificates for www.example.com and "
        "possibly others. Please visit: "
        "https://portal.letsencrypt.org/sfe/v1/unpause?jwt=abc.def.ghi\"}";
    assert_int_equal(acme_problem_parse(&p, paused, strlen(paused)), 0);
    assert_true(acme_problem_is_paused(&p));
    assert_true(acme_problem_is(&p, "rateLimited"));
    static const char paused403[] =
        "{\"type\":\"urn:ietf:params:acme:error:unauthorized\",\"status\":403,\"detail\":\"Please "
        "visit https://portal.letsencrypt.org/sfe/v1/unpause?jwt=x\"}";
    assert_int_equal(acme_problem_parse(&p, paused403, strlen(paused403)), 0);
    assert_true(acme_problem_is_paused(&p));
    /* An ordinary rate limit is not a pause. */
    static const char limited[] =
        "{\"type\":\"urn:ietf:params:acme:error:rateLimited\",\"status\":429,\"detail\":\"too many "
        "new orders (300) from this account in the last 3h0m0s, retry after 2025-01-02 "
        "04:00:00 UTC: see https://letsencrypt.org/docs/rate-limits/#new-orders-per-account\"}";
    assert_int_equal(acme_problem_parse(&p, limited, strlen(limited)), 0);
    assert_false(acme_problem_is_paused(&p));

    /* An order's expires is read; a malformed one refuses the order. */
    struct acme_order o;
    const char *err;
    static const char expiring[] =
        "{\"status\":\"ready\",\"expires\":\"2025-01-09T00:00:00Z\",\"authorizations\":"
        "[\"https://a\"],\"finalize\":\"https://f\"}";
    assert_int_equal(acme_order_parse(&o, expiring, strlen(expiring), &err), 0);
    assert_int_equal(o.expires, 1736380800);
    static const char bad_expiry[] =
        "{\"status\":\"ready\",\"expires\":\"next week\","
        "\"authorizations\":[\"https://a\"],\"finalize\":\"https://f\"}";
    assert_int_equal(acme_order_parse(&o, bad_expiry, strlen(bad_expiry), &err), CF_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directory),    cmocka_unit_test(test_problem),
        cmocka_unit_test(test_order),        cmocka_unit_test(test_authz),
        cmocka_unit_test(test_jws),          cmocka_unit_test(test_eab_and_key_change),
        cmocka_unit_test(test_dns01_value),  cmocka_unit_test(test_nonce_pool),
        cmocka_unit_test(test_renewal_info), cmocka_unit_test(test_ari_cert_id_and_paused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
