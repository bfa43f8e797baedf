/*
 * test_importer.c - import: formats, bad-line reporting with line numbers,
 * duplicates, idempotency, and streaming across arbitrary chunk borders.
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

#include "err.h"
#include "importer.h"

#define ZONE "acme.cdn.example.net"

struct fixture {
    char dir[64];
    struct store *st;
    size_t rejected_lines[64];
    char reasons[64][128];
    size_t nrej;
    size_t dup_lines[16], dup_first[16];
    size_t ndup;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cf-test-import-XXXXXX");
    if (!mkdtemp(f->dir) || store_open(&f->st, f->dir, NULL) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    store_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void on_reject(void *ctx, size_t line, const char *text, size_t len, const char *reason)
{
    struct fixture *f = ctx;
    (void)text;
    (void)len;
    if (f->nrej < 64) {
        f->rejected_lines[f->nrej] = line;
        snprintf(f->reasons[f->nrej], sizeof(f->reasons[0]), "%s", reason);
    }
    f->nrej++;
}

static void on_dup(void *ctx, size_t line, const char *host, size_t first)
{
    struct fixture *f = ctx;
    (void)host;
    if (f->ndup < 16) {
        f->dup_lines[f->ndup] = line;
        f->dup_first[f->ndup] = first;
    }
    f->ndup++;
}

/* run_import feeds text in chunks of `chunk` bytes (0 = all at once). */
static struct import_stats run_import(struct fixture *f, const char *text, size_t len, size_t chunk)
{
    f->nrej = f->ndup = 0;
    struct importer *imp = importer_new(f->st, ZONE, 1795834800, 3);
    importer_set_callbacks(imp, on_reject, on_dup, f);
    size_t step = chunk ? chunk : len;
    for (size_t off = 0; off < len; off += step)
        assert_int_equal(importer_feed(imp, text + off, off + step > len ? len - off : step), 0);
    assert_int_equal(importer_finish(imp), 0);
    struct import_stats s = *importer_stats(imp);
    importer_free(imp);
    return s;
}

static void test_plain(void **state)
{
    struct fixture *f = *state;
    static const char in[] = "# customer hosts\n"
                             "www.example.com\n"
                             "\n"
                             "Shop.Example.COM.\r\n"
                             "bad..name.com\n"
                             "  api.example.org  \n"
                             "*.example.net\n"
                             "WWW.example.com\n"
                             "192.0.2.7\n"
                             "last.example.com"; /* no final newline */
    struct import_stats s = run_import(f, in, strlen(in), 0);
    assert_int_equal(s.lines, 10);
    assert_int_equal(s.added, 5);
    assert_int_equal(s.rejected, 2);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(f->rejected_lines[0], 5);
    assert_int_equal(f->rejected_lines[1], 9);
    assert_string_equal(f->reasons[0], "empty label");
    assert_int_equal(f->dup_lines[0], 8);
    assert_int_equal(f->dup_first[0], 2);

    struct host_record r;
    assert_int_equal(store_host_get(f->st, &r, "shop.example.com"), 0);
    assert_string_equal(r.target, "shop.example.com." ZONE);
    assert_string_equal(r.regdom, "example.com");
    assert_int_equal(r.state, HOST_AWAITING_DELEGATION);
    assert_int_equal(r.next_action, 1795834800);
    assert_int_equal(store_host_get(f->st, &r, "*.example.net"), 0);
    assert_string_equal(r.target, "example.net." ZONE);

    /* Idempotent: the same input again adds nothing and resets nothing. */
    r.state = HOST_ACTIVE;
    r.next_action = 1900000000;
    struct store_batch *b = store_batch_new(f->st);
    store_batch_put_host(b, &r);
    assert_int_equal(store_batch_commit(b), 0);
    store_batch_free(b);
    s = run_import(f, in, strlen(in), 0);
    assert_int_equal(s.added, 0);
    assert_int_equal(s.unchanged, 5);
    assert_int_equal(s.rejected, 2);
    assert_int_equal(store_host_get(f->st, &r, "*.example.net"), 0);
    assert_int_equal(r.state, HOST_ACTIVE);
    assert_int_equal(r.next_action, 1900000000);
    struct store_stats st;
    assert_int_equal(store_stats(f->st, &st), 0);
    assert_int_equal(st.hosts, 5);
}

static void test_csv(void **state)
{
    struct fixture *f = *state;
    static const char in[] = "\xef\xbb\xbf"
                             "customer,Host,notes\n"
                             "acme,www.acme.com,x\n"
                             "\"Smith, Jones & Co\",\"shop.smith.com\",\"say \"\"hi\"\"\"\n"
                             "bad,\"unterminated.com\n"
                             "ok,ok.example.com , trailing\n"
                             "only-customer\n"
                             "x,\"a\"b.com\n"
                             "\"bin\x01ary\",bin.example.com\n"
                             "utf8 Kundé,kunde.example.de\n";
    struct import_stats s = run_import(f, in, strlen(in), 0);
    assert_int_equal(s.added, 4);
    assert_int_equal(s.rejected, 4);
    assert_int_equal(f->rejected_lines[0], 4);
    assert_string_equal(f->reasons[0], "malformed CSV quoting");
    assert_int_equal(f->rejected_lines[1], 6);
    assert_string_equal(f->reasons[1], "missing host column");
    assert_int_equal(f->rejected_lines[2], 7);
    assert_int_equal(f->rejected_lines[3], 8);
    struct host_record r;
    assert_int_equal(store_host_get(f->st, &r, "shop.smith.com"), 0);
    assert_string_equal(r.customer, "Smith, Jones & Co");
    assert_int_equal(store_host_get(f->st, &r, "ok.example.com"), 0);
    assert_string_equal(r.customer, "ok");
    assert_int_equal(store_host_get(f->st, &r, "kunde.example.de"), 0);
    assert_string_equal(r.customer, "utf8 Kundé");

    /* A new customer label for an existing host is an update, not a reset. */
    static const char again[] = "host,customer\nwww.acme.com,ACME Inc\n";
    s = run_import(f, again, strlen(again), 0);
    assert_int_equal(s.updated, 1);
    assert_int_equal(store_host_get(f->st, &r, "www.acme.com"), 0);
    assert_string_equal(r.customer, "ACME Inc");
}

static void test_hostile_lines(void **state)
{
    struct fixture *f = *state;
    struct buf in;
    buf_init(&in);
    buf_puts(&in, "good1.example.com\n");
    buf_append(&in, "nul\0byte.example.com\n", 21);
    for (int i = 0; i < 10000; i++)
        buf_putc(&in, 'a');
    buf_puts(&in, ".example.com\n");
    buf_append(&in, "\xff\xfe\x00\x01junk\n", 9);
    buf_puts(&in, "caf\xe9.example.com\n"); /* Latin-1, not UTF-8 */
    buf_puts(&in, "good2.example.com\n");
    struct import_stats s = run_import(f, in.data, in.len, 0);
    assert_int_equal(s.added, 2);
    assert_int_equal(s.rejected, 4);
    assert_int_equal(f->rejected_lines[0], 2);
    assert_string_equal(f->reasons[0], "NUL byte in line");
    assert_int_equal(f->rejected_lines[1], 3);
    assert_string_equal(f->reasons[1], "line longer than 4096 octets");
    assert_int_equal(f->rejected_lines[2], 4);
    assert_int_equal(f->rejected_lines[3], 5);
    assert_string_equal(f->reasons[3], "not valid UTF-8");
    buf_cleanup(&in);
}

static void test_chunk_borders(void **state)
{
    struct fixture *f = *state;
    static const char in[] = "a1.example.com\nbad_name.example.com\na2.example.com\r\n"
                             "a3.example.com\na4.example.com\na1.example.com";
    /* Feeding byte by byte gives the same result as all at once. */
    struct import_stats s = run_import(f, in, strlen(in), 1);
    assert_int_equal(s.lines, 6);
    assert_int_equal(s.added, 4);
    assert_int_equal(s.rejected, 1);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(f->rejected_lines[0], 2);
    assert_int_equal(f->dup_lines[0], 6);
}

static void test_csv_split(void **state)
{
    (void)state;
    char out[128];
    char *fl[8];
    const char *l = " a , \"b,\"\"c\"\" \" ,,d";
    assert_int_equal(import_csv_split(out, l, strlen(l), fl, 8), 4);
    assert_string_equal(fl[0], "a");
    assert_string_equal(fl[1], "b,\"c\" ");
    assert_string_equal(fl[2], "");
    assert_string_equal(fl[3], "d");
    assert_int_equal(import_csv_split(out, "\"x", 2, fl, 8), -1);
    assert_int_equal(import_csv_split(out, "\"x\"y", 4, fl, 8), -1);
    assert_int_equal(import_csv_split(out, "a,b,c", 5, fl, 2), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_borders, setup, teardown),
        cmocka_unit_test(test_csv_split),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    hostname_psl_cleanup();
    return rc;
}
