/*
 * test_store.c - the LMDB store: permissions, due-index ordering, batch
 * atomicity, import semantics, map growth and a full map, schema refusal,
 * certificates and pending orders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "store.h"

struct fixture {
    char dir[64];
    struct store *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cf-test-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    /* A state dir below the temp dir, created by store_open itself. */
    strcat(f->dir, "/s");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[160];
    store_close(f->st);
    f->dir[strlen(f->dir) - 2] = '\0';
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void make_host(struct host_record *r, const char *name, int64_t next)
{
    host_record_init(r);
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->regdom, sizeof(r->regdom), "example.com");
    snprintf(r->target, sizeof(r->target), "%s.acme.example.net", name);
    r->created_at = 1000;
    r->next_action = next;
}

static void test_permissions(void **state)
{
    struct fixture *f = *state;
    struct stat sb;
    assert_int_equal(store_open(&f->st, f->dir, NULL), 0);
    assert_int_equal(stat(f->dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(store_path(f->st), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* An existing, too open state dir is tightened. */
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(chmod(f->dir, 0755), 0);
    assert_int_equal(store_open(&f->st, f->dir, NULL), 0);
    assert_int_equal(stat(f->dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
}

struct due_seen {
    int64_t last;
    size_t n;
    char first[64];
};

static int due_cb(void *ctx, const char *name, int64_t due)
{
    struct due_seen *s = ctx;
    assert_true(due >= s->last);
    if (s->n == 0)
        snprintf(s->first, sizeof(s->first), "%s", name);
    s->last = due;
    s->n++;
    return 0;
}

static void test_due_order(void **state)
{
    struct fixture *f = *state;
    struct host_record r;
    char name[64];
    assert_int_equal(store_open(&f->st, f->dir, NULL), 0);
    struct store_batch *b = store_batch_new(f->st);
    srand(7);
    size_t below = 0;
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "h%03d.example.com", i);
        int64_t due = 1000 + rand() % 10000;
        below += due <= 6000;
        make_host(&r, name, due);
        store_batch_put_host(b, &r);
    }
    make_host(&r, "earliest.example.com", 5);
    store_batch_put_host(b, &r);
    below++;
    assert_int_equal(store_batch_commit(b), 0);
    assert_int_equal(store_batch_count(b), 0);

    struct due_seen s = {0, 0, ""};
    assert_int_equal(store_due_iter(f->st, 6000, due_cb, &s), 0);
    assert_int_equal(s.n, below);
    assert_string_equal(s.first, "earliest.example.com");

    /* Moving a host's next action moves its index entry; none is left behind. */
    make_host(&r, "earliest.example.com", 99999);
    store_batch_put_host(b, &r);
    make_host(&r, "h000.example.com", 0); /* nothing scheduled: not indexed */
    store_batch_put_host(b, &r);
    assert_int_equal(store_batch_commit(b), 0);
    struct store_stats st;
    assert_int_equal(store_stats(f->st, &st), 0);
    assert_int_equal(st.hosts, 501);
    assert_int_equal(st.due, 500);
    memset(&s, 0, sizeof(s));
    assert_int_equal(store_due_iter(f->st, 99999, due_cb, &s), 0);
    assert_int_equal(s.n, 500);
    assert_int_equal(s.last, 99999);
    store_batch_free(b);
}

static void test_batch_atomic(void **state)
{
    struct fixture *f = *state;
    struct host_record r;
    assert_int_equal(store_open(&f->st, f->dir, NULL), 0);
    struct store_batch *b = store_batch_new(f->st);
    /* A record nobody can decode. */
    store_batch_put(b, STORE_DB_HOSTS, "bad.example.com", 15, "\x01\xff", 2);
    assert_int_equal(store_batch_commit(b), 0);

    make_host(&r, "good1.example.com", 10);
    store_batch_put_host(b, &r);
    make_host(&r, "bad.example.com", 10); /* must read the old record's due time: fails */
    store_batch_put_host(b, &r);
    make_host(&r, "good2.example.com", 10);
    store_batch_put_host(b, &r);
    assert_int_equal(store_batch_commit(b), CF_ECORRUPT);
    /* All or nothing: neither good host is there. */
    assert_int_equal(store_host_get(f->st, &r, "good1.example.com"), CF_ENOTFOUND);
    assert_int_equal(store_host_get(f->st, &r, "good2.example.com"), CF_ENOTFOUND);
    assert_int_equal(store_host_get(f->st, &r, "bad.example.com"), CF_ECORRUPT);
    store_batch_free(b);

    /* A batch dropped without commit leaves nothing. */
    b = store_batch_new(f->st);
    make_host(&r, "dropped.example.com", 10);
    store_batch_put_host(b, &r);
    store_batch_free(b);
    assert_int_equal(store_host_get(f->st, &r, "dropped.example.com"), CF_ENOTFOUND);
}

static void test_import_semantics(void **state)
{
    struct fixture *f = *state;
    struct host_record r;
    enum store_import_result res[3];
    assert_int_equal(store_open(&f->st, f->dir, NULL), 0);
    struct store_batch *b = store_batch_new(f->st);
    make_host(&r, "www.example.com", 100);
    store_batch_import_host(b, &r, &res[0]);
    assert_int_equal(store_batch_commit(b), 0);
    assert_int_equal(res[0], STORE_IMPORT_ADDED);

    /* The host moves on in its life. */
    assert_int_equal(store_host_get(f->st, &r, "www.example.com"), 0);
    r.state = HOST_ACTIVE;
    r.next_action = 5000;
    snprintf(r.cert_serial, sizeof(r.cert_serial), "abcd");
    store_batch_put_host(b, &r);
    assert_int_equal(store_batch_commit(b), 0);

    /* Importing it again changes nothing; a new customer label is taken. */
    make_host(&r, "www.example.com", 100);
    store_batch_import_host(b, &r, &res[1]);
    snprintf(r.customer, sizeof(r.customer), "acme corp");
    store_batch_import_host(b, &r, &res[2]);
    assert_int_equal(store_batch_commit(b), 0);
    assert_int_equal(res[1], STORE_IMPORT_UNCHANGED);
    assert_int_equal(res[2], STORE_IMPORT_UPDATED);
    assert_int_equal(store_host_get(f->st, &r, "www.example.com"), 0);
    assert_int_equal(r.state, HOST_ACTIVE);
    assert_int_equal(r.next_action, 5000);
    assert_string_equal(r.cert_serial, "abcd");
    assert_string_equal(r.customer, "acme corp");
    struct store_stats st;
    assert_int_equal(store_stats(f->st, &st), 0);
    assert_int_equal(st.due, 1);

    /* Deleting removes the record, its due entry and its certificate. */
    store_batch_put(b, STORE_DB_CERTS, "www.example.com", 15, "pem", 3);
    assert_int_equal(store_batch_commit(b), 0);
    store_batch_del_host(b, "www.example.com");
    assert_int_equal(store_batch_commit(b), 0);
    assert_int_equal(store_stats(f->st, &st), 0);
    assert_int_equal(st.hosts, 0);
    assert_int_equal(st.due, 0);
    struct buf out;
    buf_init(&out);
    assert_int_equal(store_get(f->st, STORE_DB_CERTS, "www.example.com", 15, &out), CF_ENOTFOUND);
    buf_cleanup(&out);
    store_batch_free(b);
}

static void fill_batch(struct store_batch *b, int start, int n)
{
    struct host_record r;
    char name[64];
    for (int i = start; i < start + n; i++) {
        snprintf(name, sizeof(name), "host-%07d.example.com", i);
        make_host(&r, name, 1000 + i);
        store_batch_put_host(b, &r);
    }
}

static void test_map_grows(void **state)
{
    struct fixture *f = *state;
    struct store_options o = {1 << 20, 0};
    struct store_stats st;
    assert_int_equal(store_open(&f->st, f->dir, &o), 0);
    struct store_batch *b = store_batch_new(f->st);
    fill_batch(b, 0, 40000);
    assert_int_equal(store_batch_commit(b), 0);
    assert_int_equal(store_stats(f->st, &st), 0);
    assert_int_equal(st.hosts, 40000);
    assert_true(st.map_bytes > (1 << 20));
    assert_true(st.used_bytes <= st.map_bytes);
    store_batch_free(b);
}

static void test_map_full(void **state)
{
    struct fixture *f = *state;
    struct store_options o = {1 << 20, 2 << 20};
    struct store_stats st;
    assert_int_equal(store_open(&f->st, f->dir, &o), 0);
    struct store_batch *b = store_batch_new(f->st);
    int committed = 0, rc = 0;
    while (rc == 0 && committed < 1000000) {
        fill_batch(b, committed, 1000);
        rc = store_batch_commit(b);
        if (rc == 0)
            committed += 1000;
    }
    assert_int_equal(rc, CF_EMAPFULL);
    assert_true(committed > 0);
    store_batch_free(b);
    /* What was committed before is intact, after a reopen too; the failed batch is not there. */
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(&f->st, f->dir, &o), 0);
    assert_int_equal(store_stats(f->st, &st), 0);
    assert_int_equal(st.hosts, committed);
    struct host_record r;
    char name[64];
    snprintf(name, sizeof(name), "host-%07d.example.com", committed - 1);
    assert_int_equal(store_host_get(f->st, &r, name), 0);
    snprintf(name, sizeof(name), "host-%07d.example.com", committed);
    assert_int_equal(store_host_get(f->st, &r, name), CF_ENOTFOUND);
}

static void test_newer_store_refused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_open(&f->st, f->dir, NULL), 0);
    struct store_batch *b = store_batch_new(f->st);
    const unsigned char v[4] = {0, 0, 0, STORE_SCHEMA_VERSION + 1};
    store_batch_put(b, STORE_DB_META, "schema", 6, v, 4);
    assert_int_equal(store_batch_commit(b), 0);
    store_batch_free(b);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(&f->st, f->dir, NULL), CF_ENEWER_SCHEMA);
    assert_null(f->st);
}

struct txt_seen {
    char vals[4][64];
    size_t n;
};

static int txt_cb(void *ctx, const char *v, size_t len)
{
    struct txt_seen *t = ctx;
    snprintf(t->vals[t->n++], sizeof(t->vals[0]), "%.*s", (int)len, v);
    return 0;
}

static void read_txt(struct fixture *f, const char *name, struct txt_seen *t)
{
    struct buf v;
    buf_init(&v);
    memset(t, 0, sizeof(*t));
    if (store_get(f->st, STORE_DB_DNS, name, strlen(name), &v) == 0)
        assert_int_equal(store_txt_decode(v.data, v.len, txt_cb, t), 0);
    buf_cleanup(&v);
}

static void test_txt_sets(void **state)
{
    struct fixture *f = *state;
    struct txt_seen t;
    const char *name = "www.example.com.acme.cdn.test";
    assert_int_equal(store_open(&f->st, f->dir, NULL), 0);
    struct store_batch *b = store_batch_new(f->st);
    store_batch_txt_add(b, name, "digest-one");
    store_batch_txt_add(b, name, "digest-two"); /* a wildcard and its apex share the name */
    store_batch_txt_add(b, name, "digest-one"); /* idempotent */
    assert_int_equal(store_batch_commit(b), 0);
    read_txt(f, name, &t);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.vals[0], "digest-one");
    assert_string_equal(t.vals[1], "digest-two");
    store_batch_txt_del(b, name, "digest-one");
    store_batch_txt_del(b, name, "never-there");
    assert_int_equal(store_batch_commit(b), 0);
    read_txt(f, name, &t);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.vals[0], "digest-two");
    store_batch_txt_del(b, name, "digest-two");
    assert_int_equal(store_batch_commit(b), 0);
    struct buf v;
    buf_init(&v);
    assert_int_equal(store_get(f->st, STORE_DB_DNS, name, strlen(name), &v), CF_ENOTFOUND);
    buf_cleanup(&v);
    /* Corrupt sets are refused, not misread. */
    assert_int_equal(store_txt_decode("\x02\x01"
                                      "a",
                                      3, txt_cb, &t),
                     CF_ECORRUPT);
    assert_int_equal(store_txt_decode("\x01\x05"
                                      "ab",
                                      4, txt_cb, &t),
                     CF_ECORRUPT);
    store_batch_free(b);
}

static void test_certs_and_pending(void **state)
{
    struct fixture *f = *state;
    struct host_record r;
    struct buf a, k;
    static const char chain[] = "-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n";
    static const char key[] = "-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n";
    const char *url = "https://ca.example/order/42";
    assert_int_equal(store_open(&f->st, f->dir, NULL), 0);
    struct store_batch *b = store_batch_new(f->st);
    buf_init(&a);
    buf_init(&k);

    /* Nothing yet. */
    assert_int_equal(store_get_cert(f->st, "www.example.com", &a, &k), CF_ENOTFOUND);
    assert_int_equal(store_get_pending(f->st, "www.example.com", &a, &k), CF_ENOTFOUND);

    /* A pending order without a key, then with one: the second replaces the first. */
    make_host(&r, "www.example.com", 100);
    store_batch_put_host(b, &r);
    store_batch_put_pending(b, "www.example.com", url, NULL, 0);
    assert_int_equal(store_batch_commit(b), 0);
    assert_int_equal(store_get_pending(f->st, "www.example.com", &a, &k), 0);
    assert_string_equal(a.data, url);
    assert_int_equal(k.len, 0);
    /* The pending entry is not the host's certificate, and not under the host's key. */
    assert_int_equal(store_get_cert(f->st, "www.example.com", NULL, NULL), CF_ENOTFOUND);
    buf_reset(&a);
    assert_int_equal(store_get(f->st, STORE_DB_CERTS, "!www.example.com", 16, &a), 0);
    buf_reset(&a);
    store_batch_put_pending(b, "www.example.com", url, key, strlen(key));
    assert_int_equal(store_batch_commit(b), 0);
    assert_int_equal(store_get_pending(f->st, "www.example.com", &a, &k), 0);
    assert_string_equal(a.data, url);
    assert_int_equal(k.len, strlen(key));
    assert_memory_equal(k.data, key, k.len);
    buf_reset(&a);
    buf_reset(&k);

    /* The certificate and the deletion of the pending order land in one commit. */
    store_batch_del_pending(b, "www.example.com");
    store_batch_put_cert(b, "www.example.com", chain, strlen(chain), key, strlen(key));
    store_batch_del_pending(b, "never.example.com"); /* absent: no change, no error */
    assert_int_equal(store_batch_commit(b), 0);
    assert_int_equal(store_get_pending(f->st, "www.example.com", &a, &k), CF_ENOTFOUND);
    assert_int_equal(store_get_cert(f->st, "www.example.com", &a, &k), 0);
    assert_int_equal(a.len, strlen(chain));
    assert_memory_equal(a.data, chain, a.len);
    assert_int_equal(k.len, strlen(key));
    assert_memory_equal(k.data, key, k.len);
    buf_reset(&a);
    buf_reset(&k);
    /* Only the key is wanted. */
    assert_int_equal(store_get_cert(f->st, "www.example.com", NULL, &k), 0);
    assert_int_equal(k.len, strlen(key));
    buf_reset(&k);

    /* Deleting the host removes its certificate and its pending order. */
    store_batch_put_pending(b, "www.example.com", url, NULL, 0);
    assert_int_equal(store_batch_commit(b), 0);
    store_batch_del_host(b, "www.example.com");
    assert_int_equal(store_batch_commit(b), 0);
    assert_int_equal(store_get_cert(f->st, "www.example.com", &a, &k), CF_ENOTFOUND);
    assert_int_equal(store_get_pending(f->st, "www.example.com", &a, &k), CF_ENOTFOUND);

    /* Values that do not decode are refused, nothing appended. */
    static const char *const bad[] = {
        "",                     /* empty */
        "\x02\0\0\0\0\0\0\0\0", /* unknown version */
        "\x01\0\0\0\x05"
        "ab",                           /* part longer than the value */
        "\x01\0\0\0\0",                 /* second length missing */
        "\x01\0\0\0\0\0\0\0\0x",        /* trailing octet */
        "\x01\xff\xff\xff\xff\0\0\0\0", /* absurd length */
    };
    static const size_t bad_len[] = {0, 9, 7, 5, 10, 9};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        store_batch_put(b, STORE_DB_CERTS, "bad.example.com", 15, bad[i], bad_len[i]);
        store_batch_put(b, STORE_DB_CERTS, "!bad.example.com", 16, bad[i], bad_len[i]);
        assert_int_equal(store_batch_commit(b), 0);
        assert_int_equal(store_get_cert(f->st, "bad.example.com", &a, &k), CF_ECORRUPT);
        assert_int_equal(store_get_pending(f->st, "bad.example.com", &a, &k), CF_ECORRUPT);
        assert_int_equal(a.len + k.len, 0);
    }
    /* An empty-but-well-formed certificate decodes (the caller judges it). */
    store_batch_put(b, STORE_DB_CERTS, "bad.example.com", 15, "\x01\0\0\0\0\0\0\0\0", 9);
    assert_int_equal(store_batch_commit(b), 0);
    assert_int_equal(store_get_cert(f->st, "bad.example.com", &a, &k), 0);

    /* Over the bounds: the whole commit is refused. */
    char *huge = calloc(1, STORE_PENDING_URL_MAX + 2);
    memset(huge, 'u', STORE_PENDING_URL_MAX + 1);
    make_host(&r, "other.example.com", 100);
    store_batch_put_host(b, &r);
    store_batch_put_pending(b, "other.example.com", huge, NULL, 0);
    assert_int_equal(store_batch_commit(b), CF_ETOOBIG);
    store_batch_free(b);
    b = store_batch_new(f->st);
    assert_int_equal(store_host_get(f->st, &r, "other.example.com"), CF_ENOTFOUND);
    assert_int_equal(store_get_pending(f->st, "other.example.com", &a, &k), CF_ENOTFOUND);
    free(huge);
    buf_cleanup(&a);
    buf_cleanup(&k);
    store_batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_due_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_store_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txt_sets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certs_and_pending, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
